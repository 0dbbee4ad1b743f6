// `--method auto` against every single method at 5x, 10x and 20x, without fine-tuning, on the
// LeNet-5 and FC-2 fixtures and the VGG-style BatchNorm CNN of scripts/train_vgg_bn.py (when its
// ONNX file exists): test accuracy, top-1 agreement with the source on held-out calibration images
// (the measured check of convert), whether convert would warn, and convert time. Optionally, one
// fine-tuning epoch after auto (LeNet-5 at 20x, VGG at 10x by default) against the dense accuracy.
//
//   node --import tsx bench/auto.ts [--models lenet5_fashion,mlp_fashion,vgg_bn_fashion] [--ratios 5,10,20]
//        [--methods auto,svd,cp,tucker,tt,tr] [--limit 2000] [--finetune lenet5_fashion:20,vgg_bn_fashion:10]
//        [--ft-limit 60000] [--ft-epochs 1] [--ft-blockwise STEPS] [--ft-lr 1e-3] [--ft-seconds S]
//        [--readme README.md | --no-readme] [--merge] [--no-correct]
//        [--time-old DIR [--time-runs 1]]
//
// --merge keeps the rows of bench/results/auto.json that this run does not redo (run the bench in
// pieces, model by model, and merge). --time-old DIR times `convert lenet5_fashion.onnx --ratio 10`
// (auto, as a user runs it) with the CLI of DIR (a checkout of an older commit) and with this tree,
// back to back in the same run, wall and CPU time (/usr/bin/time).
//
// --ft-seconds S bounds the end-to-end fine-tuning loop (teacher included) to S seconds of wall
// time: the steps are cut to what fits at the measured pace and the cosine schedule ends there (the
// table says how many of the epoch's steps ran).
//
// Compression runs as convert --calib does: the per-channel output correction is tried and kept
// when closer to the source (rows "+ correction"); --no-correct leaves it out.
//
// The fine-tuning rows compress with auto once and keep the result in bench/out/ (a later run with
// another recipe starts from that file instead of compressing again; delete it to redo).
//
// Calibration as `convert --calib fashion-mnist`: 256 training images for the search, the next 256
// held out for the check. Writes bench/results/auto.{json,md} and the README section
// <!-- bench:auto:start --> ... <!-- bench:auto:end -->.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compressModel, correctOutputs, type Method } from '../converter/compress.js';
import { limitDataset, loadDataset } from '../converter/data/datasets.js';
import { evaluate } from '../converter/evaluate.js';
import { checkProblem } from '../converter/check.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { finetune } from '../converter/train/finetune.js';
import { writeFlm } from '../converter/writer.js';
import { readFlm } from '../runtime/format/reader.js';
import { splitValidation } from '../cli/commands/finetune.js';
import { initKernels } from '../runtime/kernels/backend.js';
import type { Model, Tensor } from '../runtime/ir.js';
import { Session } from '../runtime/session.js';
import { writeBenchResults } from './readme.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const FIXTURES = [process.env['FACTORLITE_FIXTURES'], resolve(ROOT, '..', 'shared', 'fixtures'), resolve(ROOT, '..', '..', 'shared', 'fixtures'), '/work/shared/fixtures']
  .find((d): d is string => d !== undefined && existsSync(d)) ?? '/work/shared/fixtures';
const RESULTS = join(ROOT, 'bench', 'results');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const LIMIT = Number(arg('limit', '2000'));
const MODELS = arg('models', 'lenet5_fashion,mlp_fashion,vgg_bn_fashion').split(',').filter(Boolean);
const RATIOS = arg('ratios', '5,10,20').split(',').filter(Boolean).map(Number);
const METHODS = arg('methods', 'auto,svd,cp,tucker,tt,tr').split(',').filter(Boolean) as Method[];
const METHOD_ORDER: string[] = ['auto', 'svd', 'cp', 'tucker', 'tt', 'tr'];
const FINETUNE = arg('finetune', '').split(',').filter(Boolean).map((s) => {
  const [m, r] = s.split(':');
  return { model: m!, ratio: Number(r) };
});
const FT_LIMIT = Number(arg('ft-limit', '60000'));
const FT_EPOCHS = Number(arg('ft-epochs', '1'));
const FT_BLOCKWISE = Number(arg('ft-blockwise', '0'));
const FT_LR = Number(arg('ft-lr', '1e-3'));
const FT_SECONDS = arg('ft-seconds', '') === '' ? undefined : Number(arg('ft-seconds', ''));
/** --no-correct: compress without the per-channel output correction (tried by default with calibration data). */
const CORRECT = !process.argv.includes('--no-correct');
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const MERGE = process.argv.includes('--merge');
const TIME_OLD = arg('time-old', '');
const TIME_RUNS = Number(arg('time-runs', '1'));
const log = (s: string) => process.stderr.write(`${s}\n`);

function modelPath(name: string): string | undefined {
  for (const p of [join(FIXTURES, `${name}.onnx`), join(ROOT, 'models', `${name}.onnx`)]) if (existsSync(p)) return p;
  return undefined;
}

interface Row {
  model: string;
  ratio: number;
  method: Method;
  ok: boolean;
  error?: string;
  accuracy?: number;
  agreement?: number | null;
  predictedAgreement?: number | null;
  warned?: boolean;
  kinds?: string;
  achievedRatio?: number;
  seconds?: number;
  searchSeconds?: number;
  chosen?: string;
  /** Peak resident memory of the bench process up to the end of this row (MB). */
  peakRssMb?: number;
  /** The per-channel output correction ran (converter/correct.ts). */
  corrected?: boolean;
}
interface TimeRow {
  tree: string;
  commit: string;
  wall: number;
  cpu: number;
  kept: string | null;
  agreement: number | null;
  ratio: number;
  uptimeLoad: number;
}
interface FtRow {
  model: string;
  ratio: number;
  dense: number;
  before: number;
  after: number;
  bestEpoch: number | null;
  trainSamples: number;
  seconds: number;
  /** Seconds of the auto compression before fine-tuning (0: read from bench/out/). */
  compressSeconds?: number;
  /** End-to-end epochs, block-wise steps (0: none) and base learning rate. */
  epochs?: number;
  blockwise?: number;
  lr?: number;
  /** Test accuracy (first --limit images) and validation accuracy after every epoch. */
  curve?: Array<{ epoch: number; test: number; validation: number | null; seconds: number; images?: number }>;
  validationSamples?: number;
  /** End-to-end steps run and the steps of the epochs asked for (fewer: cut by --ft-seconds). */
  steps?: number;
  plannedSteps?: number;
  maxSeconds?: number;
  /** Fine-tuning started from the output-corrected model ("before" is after the correction). */
  corrected?: boolean;
}

const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);
const recipeOf = (f: FtRow) => `${f.trainSamples}|${f.epochs ?? 1}|${f.blockwise ?? 0}|${f.lr ?? 1e-3}|${f.maxSeconds ?? ''}|${f.corrected ? 'c' : ''}`;
/** Steps run of those planned; rows before --ft-seconds ran every step of their epochs (batch 64). */
const stepsOf = (f: FtRow) => {
  const planned = f.plannedSteps ?? (f.epochs ?? 1) * Math.ceil(f.trainSamples / 64);
  return `${f.steps ?? planned} of ${planned}`;
};

/**
 * Test accuracy in a session given back at once: a session's wasm arena is otherwise freed only
 * when a finalizer runs, which waits for the event loop, and the bench runs its cells in one go.
 */
function accuracyOf(model: Model, test: Parameters<typeof evaluate>[1]): number {
  const s = Session.create(model);
  try {
    return evaluate(s, test).accuracy;
  } finally {
    s.dispose();
  }
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '–' : `${(100 * x).toFixed(2)}%`);

/** Runs `f` holding bench/results/auto.lock (pieces of the bench may run at once and merge). */
function withLock(f: () => void): void {
  const lock = join(RESULTS, 'auto.lock');
  for (let k = 0; ; k++) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (k > 600) throw new Error(`${lock} held for a minute; remove it if no bench is running`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    f();
  } finally {
    rmdirSync(lock);
  }
}

/** One `convert --ratio 10` of LeNet-5 (auto) by the CLI of `tree`, timed by /usr/bin/time. */
function timeConvert(tree: string): TimeRow {
  const out = join(tmpdir(), `factorlite-bench-auto-${process.pid}.flm`);
  const fixture = join(FIXTURES, 'lenet5_fashion.onnx');
  const load = loadavg()[0]!;
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S', process.execPath, join(tree, 'bin', 'factorlite.js'), 'convert', fixture, '-o', out, '--ratio', '10', '--json'],
    { cwd: tree, encoding: 'utf8', maxBuffer: 1 << 26 });
  rmSync(out, { force: true });
  const m = /TIME ([0-9.]+) ([0-9.]+) ([0-9.]+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`convert in ${tree} failed: ${r.stderr.slice(-400)}`);
  const j = JSON.parse(r.stdout) as { ratio: number; check?: { agreement: number | null }; allocator?: { search?: { chosen: string } } };
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: tree, encoding: 'utf8' }).stdout.trim();
  return {
    tree, commit, wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), kept: j.allocator?.search?.chosen ?? null,
    agreement: j.check?.agreement ?? null, ratio: j.ratio, uptimeLoad: load,
  };
}

interface Results {
  commands: string[];
  limit: number;
  dense: Record<string, number>;
  rows: Row[];
  finetune: FtRow[];
  time: TimeRow[];
}

/** The rows of an earlier run that this one does not redo (--merge). */
function previous(): Results | undefined {
  const path = join(RESULTS, 'auto.json');
  if (!MERGE || !existsSync(path)) return undefined;
  const j = JSON.parse(readFileSync(path, 'utf8')) as Partial<Results> & { command?: string };
  return {
    commands: j.commands ?? (j.command ? [j.command] : []), limit: j.limit ?? 0, dense: j.dense ?? {},
    rows: j.rows ?? [], finetune: j.finetune ?? [], time: j.time ?? [],
  };
}

async function main(): Promise<void> {
  await initKernels();
  const time: TimeRow[] = [];
  const train = loadDataset('fashion-mnist', 'train');
  const test = limitDataset(loadDataset('fashion-mnist', 'test'), LIMIT);
  const per = 784;
  const calibration: Tensor = { shape: [256, 1, 28, 28], data: train.images.subarray(0, 256 * per) };
  const holdout: Tensor = { shape: [256, 1, 28, 28], data: train.images.subarray(256 * per, 512 * per) };
  const rows: Row[] = [];
  const ft: FtRow[] = [];
  const dense: Record<string, number> = {};
  const sources: Record<string, Model> = {};
  // Written after every row, so that a run cut short keeps what it measured (merged under a lock:
  // several pieces may run at once).
  const flush = (): void => {
    withLock(() => {
      const cmd = `node --import tsx bench/auto.ts ${process.argv.slice(2).join(' ')}`.trim();
      const prev = previous();
      if (prev && prev.limit && prev.rows.length && rows.length && prev.limit !== test.count) throw new Error(`--merge: the earlier rows used --limit ${prev.limit}, this run ${test.count}`);
      const redo = (r: { model: string; ratio: number }, m?: string) => (x: { model: string; ratio: number; method?: string }) => x.model === r.model && x.ratio === r.ratio && (m === undefined || x.method === m);
      const allRows = [...(prev?.rows ?? []).filter((p) => !rows.some((r) => redo(r, r.method)(p) && !!r.corrected === !!p.corrected)), ...rows];
      const allFt = [...(prev?.finetune ?? []).filter((p) => !ft.some((f) => redo(f)(p) && recipeOf(f) === recipeOf(p))), ...ft];
      const allTime = time.length ? time : prev?.time ?? [];
      const order = ['lenet5_fashion', 'mlp_fashion', 'vgg_bn_fashion'];
      const rank = (m: string) => (order.indexOf(m) < 0 ? order.length : order.indexOf(m));
      allRows.sort((a, b) => rank(a.model) - rank(b.model) || a.model.localeCompare(b.model) || a.ratio - b.ratio || METHOD_ORDER.indexOf(a.method) - METHOD_ORDER.indexOf(b.method) || Number(!!a.corrected) - Number(!!b.corrected));
      const allDense = { ...(prev?.dense ?? {}), ...dense };
      const commands = prev?.commands.includes(cmd) ? prev.commands : [...(prev?.commands ?? []), cmd];
      const lines = [
        `Made by ${commands.map((c) => `\`${c}\``).join(', then ')}. No fine-tuning in the first table. Accuracy on the first ${test.count} Fashion-MNIST test images in the factorlite runtime; agreement: top-1 agreement with the source on 256 held-out training images (the check \`convert\` prints); "warns": convert prints a warning (agreement below 90%, or another finding of its check: see convert).`,
        '',
        '| model | ratio | method | kinds | accuracy | dense | agreement (predicted) | warns | best single − auto | convert s | peak RSS MB |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
      ];
      for (const r of allRows) {
        const same = allRows.filter((x) => x.model === r.model && x.ratio === r.ratio && x.method !== 'auto' && x.ok);
        const best = same.length ? Math.max(...same.map((x) => x.accuracy!)) : NaN;
        const gap = r.method === 'auto' && r.ok && Number.isFinite(best) ? `${(100 * (best - r.accuracy!)).toFixed(2)}` : '';
        lines.push(r.ok
          ? `| ${r.model} | ${r.ratio} | ${r.method}${r.chosen ? ` (kept ${r.chosen})` : ''}${r.corrected ? ' + correction' : ''} | ${r.kinds || '–'} | ${pct(r.accuracy)} | ${pct(allDense[r.model])} | ${pct(r.agreement)} (${pct(r.predictedAgreement)}) | ${r.warned ? 'yes' : 'no'} | ${gap} | ${r.seconds!.toFixed(1)} | ${r.peakRssMb ?? '–'} |`
          : `| ${r.model} | ${r.ratio} | ${r.method} | – | failed: ${r.error!.slice(0, 80)} | | | | | | |`);
      }
      const silent = allRows.filter((r) => r.ok && r.agreement !== null && r.agreement! < 0.5 && !r.warned);
      lines.push('', `Results below 50% agreement without a warning: ${silent.length}.`);
      // Where auto misses the issue's target: best single method − 0.5 point.
      const misses: string[] = [];
      for (const a of allRows.filter((r) => r.method === 'auto' && r.ok)) {
        const same = allRows.filter((x) => x.model === a.model && x.ratio === a.ratio && x.method !== 'auto' && x.ok);
        if (!same.length) continue;
        const best = same.reduce((p, x) => (x.accuracy! > p.accuracy! ? x : p));
        if (a.accuracy! < best.accuracy! - 0.005) misses.push(`${a.model} at ${a.ratio}x (auto ${pct(a.accuracy)}, ${best.method} ${pct(best.accuracy)})`);
      }
      lines.push('', `auto below the best single method − 0.5 point: ${misses.length ? misses.join('; ') : 'nowhere in this table'}.`);
      if (allFt.length) {
        lines.push('', 'Fine-tuning after auto (distillation from the dense model, Adam, cosine schedule; "output correction": started from the model after the per-channel output correction of convert, and "auto, no fine-tuning" is after it; the checkpoint kept is the best on the held-out validation images; "seconds": compression, when that run compressed, plus fine-tuning; "compress s" 0: the compressed model came from an earlier run (bench/out/)):', '',
          '| model | ratio | output correction | dense | auto, no fine-tuning | auto + fine-tuning (best checkpoint) | epochs | steps run | block-wise steps | lr | epoch kept | training images | seconds | compress s |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
        for (const f of allFt) lines.push(`| ${f.model} | ${f.ratio} | ${f.corrected ? 'yes' : 'no'} | ${pct(f.dense)} | ${pct(f.before)} | ${pct(f.after)} | ${f.epochs ?? 1} | ${stepsOf(f)}${f.maxSeconds !== undefined ? ` (bound ${f.maxSeconds} s)` : ''} | ${f.blockwise ?? 0} | ${f.lr ?? 1e-3} | ${f.bestEpoch ?? '–'} | ${f.trainSamples} | ${f.seconds.toFixed(0)} | ${f.compressSeconds === undefined ? '–' : f.compressSeconds.toFixed(0)} |`);
        const curves = allFt.filter((f) => f.curve?.length);
        if (curves.length) {
          lines.push('', 'Accuracy after each epoch of those runs (test: the first test images as above; validation: the held-out training images the checkpoint is chosen on):', '',
            '| model | ratio | output correction | training images | epoch | images trained on | test accuracy | validation accuracy | epoch seconds |', '|---|---|---|---|---|---|---|---|---|');
          for (const f of curves) for (const c of f.curve!) lines.push(`| ${f.model} | ${f.ratio} | ${f.corrected ? 'yes' : 'no'} | ${f.trainSamples} | ${c.epoch} | ${c.images ?? f.trainSamples} | ${pct(c.test)} | ${pct(c.validation)} | ${c.seconds.toFixed(0)} |`);
        }
      }
      if (allTime.length) {
        lines.push('', 'Time of `factorlite convert lenet5_fashion.onnx -o x.flm --ratio 10 --json` (auto, synthetic calibration, the CLI\'s default search bound), the commits run back to back in one bench run (/usr/bin/time; the machine is shared, so the load average at the start of each run is given and wall time is inflated by it):', '',
          '| commit | wall s | CPU s | load | plan kept | agreement | ratio |', '|---|---|---|---|---|---|---|');
        for (const t of allTime) lines.push(`| ${t.commit}${t.tree === ROOT ? ' (this tree)' : ''} | ${t.wall.toFixed(1)} | ${t.cpu.toFixed(1)} | ${t.uptimeLoad.toFixed(1)} | ${t.kept ?? '–'} | ${pct(t.agreement)} | ${t.ratio.toFixed(2)} |`);
      }
      const results: Results = { commands, limit: test.count, dense: allDense, rows: allRows, finetune: allFt, time: allTime };
      writeBenchResults(RESULTS, 'auto', results, lines.join('\n'), README);
    });
  };
  if (TIME_OLD) {
    for (let k = 0; k < TIME_RUNS; k++) {
      for (const tree of [resolve(TIME_OLD), ROOT]) {
        const row = timeConvert(tree);
        time.push(row);
        flush();
        log(`convert --ratio 10 lenet5_fashion with ${row.commit}: ${row.wall.toFixed(1)} s wall, ${row.cpu.toFixed(1)} s CPU (load ${row.uptimeLoad.toFixed(1)})`);
      }
    }
  }
  for (const name of MODELS) {
    const path = modelPath(name);
    if (!path) {
      log(`skip ${name}: no ONNX file (fixtures or models/; run scripts/train_vgg_bn.py for the VGG model)`);
      continue;
    }
    const model = importOnnxFile(path);
    sources[name] = model;
    dense[name] = accuracyOf(model, test);
    log(`${name}: dense ${pct(dense[name])} on ${test.count} test images`);
    for (const ratio of RATIOS) {
      for (const method of METHODS) {
        const t0 = performance.now();
        try {
          const { model: out, report } = compressModel(model, { method, ratio, calibration, holdout, ...(CORRECT ? {} : { correct: false }) });
          const seconds = (performance.now() - t0) / 1000;
          const accuracy = accuracyOf(out, test);
          const c = report.check!;
          rows.push({
            model: name, ratio, method, ok: true, accuracy, agreement: c.agreement, predictedAgreement: c.predictedAgreement,
            warned: checkProblem(c) !== null,
            kinds: [...new Set(report.layers.filter((l) => l.method !== 'dense').map((l) => l.op))].join('+'),
            achievedRatio: report.ratio, seconds, peakRssMb: peakRssMb(), ...(report.correction?.kept ? { corrected: true } : {}), ...(report.search ? { searchSeconds: report.search.seconds, chosen: report.search.chosen } : {}),
          });
          log(`${name} ${ratio}x ${method}: ${pct(accuracy)} (agreement ${pct(c.agreement)}) in ${seconds.toFixed(1)} s`);
          flush();
        } catch (e) {
          rows.push({ model: name, ratio, method, ok: false, error: (e as Error).message });
          log(`${name} ${ratio}x ${method}: ${(e as Error).message}`);
          flush();
        }
      }
    }
  }
  for (const f of FINETUNE) {
    const model = sources[f.model];
    if (!model) continue;
    const t0 = performance.now();
    const cached = join(ROOT, 'bench', 'out', `auto-${f.model}-${f.ratio}x.flm`);
    let out: Model;
    let compressSeconds = 0;
    if (existsSync(cached) && statSync(cached).mtimeMs > statSync(modelPath(f.model)!).mtimeMs) {
      out = readFlm(readFileSync(cached));
      log(`${f.model} ${f.ratio}x auto: read ${cached} (compressed by an earlier run)`);
    } else {
      // Cached before the correction, which is cheap to redo.
      out = compressModel(model, { method: 'auto', ratio: f.ratio, calibration, holdout, correct: false }).model;
      mkdirSync(dirname(cached), { recursive: true });
      writeFileSync(cached, writeFlm(out));
      compressSeconds = (performance.now() - t0) / 1000;
    }
    // The cache holds the plain factorisation; the correction (seconds) is redone here, as convert would.
    const c = correctOutputs(model, out, { calibration, ...(CORRECT ? {} : { correct: false }), log });
    out = c.model;
    const corrected = c.correction?.kept === true;
    const { train: tr, validation } = splitValidation(train, FT_LIMIT < train.count ? FT_LIMIT : undefined);
    log(`${f.model} ${f.ratio}x auto: compressed in ${((performance.now() - t0) / 1000).toFixed(1)} s; fine-tuning on ${tr.count} images (${validation?.count ?? 0} held out)`);
    let lastLogged = 0;
    const r = finetune(out, model, tr, test, {
      epochs: FT_EPOCHS, lr: FT_LR, ...(FT_SECONDS !== undefined ? { maxSeconds: FT_SECONDS } : {}), ...(FT_BLOCKWISE > 0 ? { blockwise: true, blockSteps: FT_BLOCKWISE } : {}), ...(validation ? { validation } : {}), log,
      onProgress: (p) => {
        if (performance.now() - lastLogged < 60_000) return;
        lastLogged = performance.now();
        log(`  ${p.phase} epoch ${p.epoch + 1}/${p.epochs} step ${p.step + 1}/${p.steps}: loss ${p.loss.toFixed(4)}${p.accuracy !== undefined ? `, train accuracy ${pct(p.accuracy)}` : ''}`);
      },
      onEpoch: (e) => log(`  epoch ${e.epoch}: test ${pct(e.testAccuracy)}, validation ${pct(e.validationAccuracy)} (${e.seconds.toFixed(0)} s)`),
    });
    ft.push({
      model: f.model, ratio: f.ratio, dense: dense[f.model]!, before: r.before!.accuracy, after: r.after!.accuracy,
      bestEpoch: r.best?.epoch ?? null, trainSamples: tr.count, seconds: (performance.now() - t0) / 1000, compressSeconds,
      epochs: FT_EPOCHS, blockwise: FT_BLOCKWISE, lr: FT_LR, steps: r.steps, plannedSteps: r.plannedSteps, ...(corrected ? { corrected } : {}),
      ...(FT_SECONDS !== undefined ? { maxSeconds: FT_SECONDS } : {}), ...(validation ? { validationSamples: validation.count } : {}),
      curve: r.history.map((e) => ({ epoch: e.epoch, test: e.testAccuracy ?? NaN, validation: e.validationAccuracy ?? null, seconds: e.seconds, images: e.images })),
    });
    flush();
    log(`${f.model} ${f.ratio}x auto + ${FT_EPOCHS} epoch(s): ${pct(r.before!.accuracy)} -> ${pct(r.after!.accuracy)} (dense ${pct(dense[f.model])})`);
  }

  flush();
}

await main();
