// Training benchmark for issue 3, on full Fashion-MNIST (/usr/share/datasets/fashion-mnist):
//  1. FC-2 (784-1024-10) trained from scratch by `factorlite train`: dense and TT at ratio 200, same
//     epochs / batch / optimiser / seed; test accuracy on all 10,000 images (in the runtime),
//     hidden-layer compression (dense params / factorised params, bias included), wall minutes.
//  2. LeNet-5 fixture: compressModel(method auto, ratio 10, 256 training images as calibration),
//     then distillation fine-tuning (runFinetune, the step behind `convert --finetune`); params ratio,
//     accuracy before / after on the 10,000 test images, minutes.
//  3. Training throughput (images/s) of factorised LeNet-5 in our Trainer against PyTorch
//     (/usr/bin/python3 bench/torch_lenet_train.py, torch.set_num_threads(2)) on the same
//     architecture with the same factor kinds and ranks, same batch, same number of steps.
//
//   node --import tsx bench/training.ts [--quick] [--parts 1,2,3] [--limit N (part 2 fine-tuning images)]
//        [--torch-threads N (part 3's PyTorch threads, default 2; 1 is the fair peer of our one
//        thread when other processes share the cores and PyTorch's OpenMP threads stall)]
//
// Writes bench/results/training.json, bench/results/training.md and the README section between the
// bench:training markers. Parts not run keep their previous result in training.json, if any.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { log, progress } from '../cli/progress.js';
import { runFinetune } from '../converter/train/finetuneOnData.js';
import { DEFAULT_LR, TRAIN_DEFAULTS } from '../cli/commands/train.js';
import { compressModel } from '../converter/compress.js';
import { limitDataset, loadDataset } from '../converter/data/datasets.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { buildNet, paramSummary, type LayerChoice } from '../converter/train/arch.js';
import { trainKernels } from '../converter/train/kernels.js';
import { Trainer } from '../converter/train/trainer.js';
import { initKernels } from '../runtime/kernels/backend.js';
import { LAYER_KINDS } from '../runtime/layers/registry.js';
import { replaceReadmeSection } from './readme.js';
import { FIXTURES } from './lib/fixtures.js';
import { torchStages } from './lib/torchStages.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'results');
const WORK = join(ROOT, 'bench', 'out');
const FIXTURE = join(FIXTURES, 'lenet5_fashion.onnx');
const PYTHON = '/usr/bin/python3';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const quick = process.argv.includes('--quick');
const parts = new Set((arg('--parts') ?? '1,2,3').split(',').map((s) => Number(s.trim())));
const say = (msg: string) => process.stderr.write(`[training bench] ${msg}\n`);
const load = () => loadavg().map((x) => Number(x.toFixed(2)));

interface Part1Row {
  layer: string;
  ratio: number | null;
  command: string;
  ok: boolean;
  error?: string;
  accuracy?: number;
  samples?: number;
  trainSamples?: number;
  epochs?: number;
  params?: number;
  hiddenParams?: number;
  hiddenDenseParams?: number;
  hiddenCompression?: number;
  trainSeconds?: number;
  minutes?: number;
  imagesPerSecond?: number;
  loadBefore?: number[];
  loadAfter?: number[];
}

// ---- Part 1: FC-2 from scratch through the CLI (the command the issue names) ----
function runCli(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'factorlite.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.on('exit', (code) => resolve({ code: code ?? 1, stdout }));
  });
}

async function part1(): Promise<Record<string, unknown>> {
  const epochs = TRAIN_DEFAULTS.epochs;
  const runs: Array<{ layer: LayerChoice; ratio?: number }> = [{ layer: 'dense' }, { layer: 'tt', ratio: 200 }];
  const rows: Part1Row[] = [];
  for (const r of runs) {
    const out = join(WORK, `train_mlp_${r.layer}.flm`);
    const args = [
      'train', '--arch', 'mlp', '--layer', r.layer, ...(r.ratio ? ['--ratio', String(r.ratio)] : []),
      '--data', 'fashion-mnist', '--epochs', String(epochs), '--batch', String(TRAIN_DEFAULTS.batch),
      '--optimizer', TRAIN_DEFAULTS.optimizer, '--seed', String(TRAIN_DEFAULTS.seed),
      ...(quick ? ['--limit', '6000', '--eval-limit', '2000'] : []),
      '-o', out, '--json', '--no-progress',
    ];
    const command = `factorlite ${args.join(' ').replace(out, `bench/out/train_mlp_${r.layer}.flm`)}`;
    say(`part 1: ${command} (load ${load().join(' ')})`);
    const loadBefore = load();
    const t0 = performance.now();
    const res = await runCli(args);
    const minutes = (performance.now() - t0) / 60000;
    const row: Part1Row = { layer: r.layer, ratio: r.ratio ?? null, command, ok: false, minutes, loadBefore, loadAfter: load() };
    try {
      if (res.code !== 0) throw new Error(`exit code ${res.code}`);
      const j = JSON.parse(res.stdout.trim().split('\n').pop()!) as Record<string, number>;
      Object.assign(row, {
        ok: true, accuracy: j['accuracy'], samples: j['samples'], trainSamples: j['trainSamples'], epochs: j['epochs'],
        params: j['params'], hiddenParams: j['hiddenParams'], hiddenDenseParams: j['hiddenDenseParams'],
        hiddenCompression: j['hiddenCompression'], trainSeconds: j['trainSeconds'], imagesPerSecond: j['imagesPerSecond'],
      });
    } catch (e) {
      row.error = (e as Error).message;
    }
    say(`part 1: ${r.layer}: ${row.ok ? `accuracy ${(100 * row.accuracy!).toFixed(2)}%, hidden ${row.hiddenCompression!.toFixed(1)}x, ` : `failed (${row.error}), `}${minutes.toFixed(2)} min`);
    rows.push(row);
  }
  const dense = rows[0]!, tt = rows[1]!;
  const gap = dense.ok && tt.ok ? 100 * (dense.accuracy! - tt.accuracy!) : null;
  return {
    epochs, batch: TRAIN_DEFAULTS.batch, optimizer: TRAIN_DEFAULTS.optimizer, lr: DEFAULT_LR[TRAIN_DEFAULTS.optimizer],
    schedule: TRAIN_DEFAULTS.schedule, seed: TRAIN_DEFAULTS.seed, rows,
    targets: {
      hiddenCompressionAtLeast200: tt.ok ? tt.hiddenCompression! >= 200 : null,
      accuracyGapPoints: gap,
      withinOnePoint: gap === null ? null : gap <= 1,
      ttUnderTenMinutes: tt.ok ? tt.minutes! < 10 : null,
    },
  };
}

// ---- Part 2: LeNet-5 fixture, compress x10 (auto) + distillation fine-tuning ----
async function part2(): Promise<Record<string, unknown>> {
  const accPath = FIXTURE.replace(/\.onnx$/, '.acc');
  const reference = Number(readFileSync(accPath, 'utf8').trim());
  const limit = arg('--limit') !== undefined ? Number(arg('--limit')) : quick ? 2000 : undefined;
  const evalLimit = quick ? 1000 : undefined;
  say(`part 2: compress ${FIXTURE} --method auto --ratio 10 (load ${load().join(' ')})`);
  const loadBefore = load();
  const t0 = performance.now();
  const source = importOnnxFile(FIXTURE);
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), 256);
  const calibration = { shape: [train.count, ...train.shape], data: train.images };
  const { model, report } = compressModel(source, { method: 'auto', ratio: 10, calibration });
  const compressSeconds = (performance.now() - t0) / 1000;
  say(`part 2: ${report.sourceParams} -> ${report.params} params (${report.ratio.toFixed(2)}x) in ${compressSeconds.toFixed(1)} s; fine-tuning`);
  const t1 = performance.now();
  const { summary } = runFinetune(model, source, {
    data: 'fashion-mnist', epochs: 1, ...(limit !== undefined ? { limit } : {}), ...(evalLimit !== undefined ? { evalLimit } : {}), verbose: true,
  }, { log, progress: (title, total) => progress(title, total) });
  const finetuneSeconds = (performance.now() - t1) / 1000;
  const minutes = (performance.now() - t0) / 60000;
  const gap = summary.accuracy === null ? null : 100 * (reference - summary.accuracy);
  say(`part 2: accuracy ${summary.accuracyBefore} -> ${summary.accuracy} (reference ${reference}), ${minutes.toFixed(2)} min`);
  return {
    fixture: 'lenet5_fashion.onnx', referenceAccuracy: reference, method: 'auto', targetRatio: 10, calibration: 256,
    command: `factorlite convert ../shared/fixtures/lenet5_fashion.onnx --ratio 10 --finetune fashion-mnist -o l.flm (same steps, in-process)`,
    sourceParams: report.sourceParams, params: report.params, ratio: report.ratio,
    layers: report.layers.map((l) => ({ name: l.name, op: l.op, ranks: l.ranks, paramsBefore: l.paramsBefore, paramsAfter: l.paramsAfter })),
    teacherAccuracy: summary.teacherAccuracy, accuracyBefore: summary.accuracyBefore, accuracy: summary.accuracy,
    samples: summary.samples, trainSamples: summary.trainSamples, epochs: summary.epochs, batch: summary.batch, lr: summary.lr,
    temperature: summary.temperature, alpha: summary.alpha,
    compressSeconds, finetuneSeconds, minutes, loadBefore, loadAfter: load(),
    targets: { ratioAtLeast10: report.ratio >= 10, accuracyGapPoints: gap, withinOnePoint: gap === null ? null : gap <= 1 },
  };
}

// ---- Part 3: throughput of factorised LeNet-5, ours against PyTorch ----
async function part3(): Promise<Record<string, unknown>> {
  const layer: LayerChoice = 'cp';
  const batch = 64, warmup = quick ? 3 : 10, steps = quick ? 20 : 100;
  const repeats = Number(arg('--repeats') ?? (quick ? 1 : 3));
  const net0 = buildNet({ arch: 'lenet5', layer, ratio: 10, seed: 0 });
  const sum = paramSummary(net0);
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), batch * (warmup + steps));
  const lr = DEFAULT_LR.adam;
  // The peer builds each layer from its stages (its kind's ONNX chain); conv-shaped kinds take rank-4 input.
  const model0 = net0.toModel();
  const layers = net0.layers.map((l) => {
    const node = model0.graph.nodes.find((n) => n.name === l.name)!;
    const rank = 'strides' in (LAYER_KINDS.get(node.op)?.attrs ?? {}) ? 4 : 2;
    return { name: l.name, op: l.op, ranks: l.ranks, params: l.params, stages: torchStages(model0, node, rank) };
  });
  const torchThreads = Number(arg('--torch-threads') ?? 2);
  const cfg = { batch, steps, warmup, threads: torchThreads, lr, seed: 0, data: '/usr/share/datasets/fashion-mnist', layers };

  const oursRuns: Array<{ seconds: number; imagesPerSecond: number; loadBefore: number[]; loadAfter: number[] }> = [];
  const torchRuns: Array<Record<string, unknown>> = [];
  let torchError: string | undefined;
  if (!existsSync(PYTHON)) torchError = `${PYTHON} not found`;
  // Ours and PyTorch alternate, `repeats` times each, and the medians are compared: one run of
  // either can be slowed down by whatever else shares the two cores (a CI run, say).
  for (let rep = 0; rep < repeats; rep++) {
    const net = buildNet({ arch: 'lenet5', layer, ratio: 10, seed: 0 });
    const trainer = new Trainer(net, train, undefined, { epochs: 1, batch, optimizer: { kind: 'adam', lr }, schedule: { kind: 'constant' }, seed: 0 });
    say(`part 3 (${rep + 1}/${repeats}): ours, lenet5 --layer ${layer} --ratio 10 (${sum.params} params), ${warmup} + ${steps} steps of ${batch} (load ${load().join(' ')})`);
    const loadOurs = load();
    let tStart = 0, tEnd = 0;
    await trainer.run({
      onProgress: (p) => {
        if (p.batch === warmup - 1) tStart = performance.now();
        if (p.batch === warmup + steps - 1) tEnd = performance.now();
        if ((p.batch + 1) % 20 === 0) say(`part 3: ours step ${p.batch + 1}/${warmup + steps}, loss ${p.loss.toFixed(4)}`);
      },
    });
    const seconds = (tEnd - tStart) / 1000;
    oursRuns.push({ seconds, imagesPerSecond: (batch * steps) / seconds, loadBefore: loadOurs, loadAfter: load() });
    say(`part 3: ours ${oursRuns[oursRuns.length - 1]!.imagesPerSecond.toFixed(0)} images/s`);
    if (torchError) continue;
    say(`part 3 (${rep + 1}/${repeats}): PyTorch, same layers ${JSON.stringify(layers.map((l) => `${l.name}:${l.op}[${l.ranks.join(',')}]`))} (load ${load().join(' ')})`);
    const loadTorch = load();
    const r = spawnSync(PYTHON, [join(ROOT, 'bench', 'torch_lenet_train.py'), JSON.stringify(cfg)], {
      cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, OMP_NUM_THREADS: String(torchThreads) },
    });
    if (r.status === 0) {
      torchRuns.push({ ...(JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>), loadBefore: loadTorch, loadAfter: load() });
      say(`part 3: PyTorch ${(torchRuns[torchRuns.length - 1]!['imagesPerSecond'] as number).toFixed(0)} images/s`);
    } else torchError = `exit ${r.status}: ${r.error?.message ?? ''}`;
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const ours = { imagesPerSecond: median(oursRuns.map((x) => x.imagesPerSecond)), runs: oursRuns };
  const torch = torchRuns.length
    ? { torch: torchRuns[0]!['torch'], threads: torchRuns[0]!['threads'], imagesPerSecond: median(torchRuns.map((x) => x['imagesPerSecond'] as number)), runs: torchRuns }
    : null;
  const torchIps = torch ? (torch['imagesPerSecond'] as number) : null;
  const ratio = torchIps ? ours.imagesPerSecond / torchIps : null;
  say(`part 3: PyTorch ${torchIps?.toFixed(0) ?? `not measured (${torchError})`} images/s; ratio ${ratio?.toFixed(3) ?? '-'}`);
  return {
    arch: 'lenet5', layer, ratio: 10, params: sum.params, layers, batch, warmup, steps, repeats, optimizer: 'adam', lr, trainKernels: trainKernels(),
    ours, torch, ...(torchError ? { torchError } : {}), oursOverTorch: ratio,
    targets: { ratioAtLeastHalf: ratio === null ? null : ratio >= 0.5 },
  };
}

// ---- Report ----
const pct = (x: unknown) => (typeof x === 'number' ? `${(100 * x).toFixed(2)}%` : '-');
const f = (x: unknown, d = 2) => (typeof x === 'number' ? x.toFixed(d) : '-');
const yes = (x: unknown) => (x === true ? 'met' : x === false ? 'missed' : 'not measured');

function markdown(r: Record<string, any>): string {
  const L: string[] = [];
  L.push(
    `Measured ${r.date} on ${r.cpus} cores (${r.cpuModel}), Node ${r.node}, ${r.kernels}; ` +
      `load average at the start ${r.loadStart.join(' ')}${r.quick ? '; **--quick run (subsets), not the full measurement**' : ''}. ` +
      'Command: `' + r.command + '`.',
    '',
  );
  for (const k of ['1', '2', '3']) {
    const p = r.parts[k];
    if (p?.measuredAt) L.push(`- part ${k} measured ${p.measuredAt} by \`${p.command}\`, load average at its start ${p.loadStart.join(' ')}`);
  }
  L.push('');
  const p1 = r.parts['1'];
  L.push('**FC-2 (784-1024-10) on Fashion-MNIST, trained from scratch** by `factorlite train --arch mlp` ' +
    (p1 ? `(${p1.epochs} epochs, batch ${p1.batch}, ${p1.optimizer} lr ${p1.lr}, ${p1.schedule}, seed ${p1.seed}); accuracy of the written .flm in the runtime:` : ''), '');
  if (!p1) L.push('Not measured.', '');
  else {
    L.push('| hidden layer | test accuracy | test images | hidden params (dense) | hidden compression | wall min |', '|---|---|---|---|---|---|');
    for (const row of p1.rows as Part1Row[]) {
      const name = row.layer === 'dense' ? 'dense' : `${row.layer} --ratio ${row.ratio}`;
      if (!row.ok) L.push(`| ${name} | failed: ${row.error} | - | - | - | ${f(row.minutes)} |`);
      else L.push(`| ${name} | ${pct(row.accuracy)} | ${row.samples} | ${row.hiddenParams} (${row.hiddenDenseParams}) | ${f(row.hiddenCompression, 1)}x | ${f(row.minutes)} |`);
    }
    const t = p1.targets;
    L.push('', `Targets: hidden layer ≥ 200× smaller: ${yes(t.hiddenCompressionAtLeast200)}; TT within 1 point of dense: ${yes(t.withinOnePoint)} ` +
      `(gap ${f(t.accuracyGapPoints)} points); TT trained in < 10 min: ${yes(t.ttUnderTenMinutes)}.`, '');
  }
  const p2 = r.parts['2'];
  L.push('**LeNet-5 fixture, decomposed and fine-tuned**: `compressModel` (method auto, ratio 10, 256 training images as calibration), ' +
    'then distillation from the ONNX original (`runFinetune`, the step of `convert --finetune fashion-mnist`)' +
    (p2 ? ` — ${p2.epochs} epoch on ${p2.trainSamples} training images, batch ${p2.batch}, lr ${p2.lr}, T ${p2.temperature}, alpha ${p2.alpha}:` : ':'), '');
  if (!p2) L.push('Not measured.', '');
  else {
    L.push('| params (source) | ratio | layers | reference `.acc` | before fine-tuning | after | test images | compress s | fine-tune s | wall min |', '|---|---|---|---|---|---|---|---|---|---|');
    const kinds = (p2.layers as Array<{ name: string; op: string; ranks: number[] }>).map((l) => `${l.name} ${l.op}${l.ranks.length ? ` [${l.ranks.join(',')}]` : ''}`).join(', ');
    L.push(`| ${p2.params} (${p2.sourceParams}) | ${f(p2.ratio)}x | ${kinds} | ${pct(p2.referenceAccuracy)} | ${pct(p2.accuracyBefore)} | ${pct(p2.accuracy)} | ${p2.samples} | ${f(p2.compressSeconds, 1)} | ${f(p2.finetuneSeconds, 1)} | ${f(p2.minutes)} |`);
    L.push('', `Targets: ≥ 10× fewer params: ${yes(p2.targets.ratioAtLeast10)}; within 1 point of \`.acc\`: ${yes(p2.targets.withinOnePoint)} (gap ${f(p2.targets.accuracyGapPoints)} points).`, '');
  }
  const p3 = r.parts['3'];
  L.push('**Training throughput, factorised LeNet-5** (`buildNet({ arch: \'lenet5\', layer: \'cp\', ratio: 10 })`: CP conv in the CPAC layout + truncated-SVD dense), ' +
    `against PyTorch training the same layers at the same ranks (\`bench/torch_lenet_train.py\`, \`torch.set_num_threads(${p3?.torch?.threads ?? 2})\`), Adam, same batch, in one run; ` +
    `our products on ${p3?.trainKernels === 'js' ? 'the JS loops' : p3?.trainKernels === 'wasm' ? 'the WebAssembly SIMD kernels (converter/train/kernels.ts)' : '(engine not recorded)'}; ` +
    `the two alternate ${p3?.repeats ?? ''} times and the medians are compared (load averages per run in training.json):`, '');
  if (!p3) L.push('Not measured.', '');
  else {
    const layers = (p3.layers as Array<{ name: string; op: string; ranks: number[] }>).map((l) => `${l.name} ${l.op}${l.ranks.length ? ` [${l.ranks.join(',')}]` : ''}`).join(', ');
    L.push('| engine | layers | batch | steps (after warm-up) | images/s |', '|---|---|---|---|---|');
    L.push(`| factorlite Trainer | ${layers} | ${p3.batch} | ${p3.steps} (${p3.warmup}) | ${f(p3.ours.imagesPerSecond, 0)} (runs: ${p3.ours.runs.map((x: { imagesPerSecond: number }) => x.imagesPerSecond.toFixed(0)).join(', ')}) |`);
    L.push(`| PyTorch ${p3.torch?.torch ?? ''} | same | ${p3.batch} | ${p3.steps} (${p3.warmup}) | ${p3.torch ? `${f(p3.torch.imagesPerSecond, 0)} (runs: ${p3.torch.runs.map((x: { imagesPerSecond: number }) => x.imagesPerSecond.toFixed(0)).join(', ')})` : `not measured (${p3.torchError})`} |`);
    L.push('', `Ratio ours / PyTorch: **${f(p3.oursOverTorch)}×** (aim ≥ 0.5×: ${yes(p3.targets.ratioAtLeastHalf)}).`, '');
    L.push('Measure this on a quiet machine: when another process shares the two cores, PyTorch\'s two OpenMP threads slow down about 30× ' +
      '(132 images/s against ours 367 in a first full run at 05:50 UTC while a CI test run was going on, load average 2.97), which flips the ratio; ' +
      'the load averages of every run are in training.json.', '');
  }
  return L.join('\n').trimEnd();
}

async function main(): Promise<void> {
  let kernels = '';
  await initKernels((line) => {
    kernels = line;
    say(line);
  });
  mkdirSync(WORK, { recursive: true });
  mkdirSync(OUT, { recursive: true });
  // A --quick smoke test writes under bench/out, never over the committed results.
  const outDir = quick ? WORK : OUT;
  const base = quick ? 'training-quick' : 'training';
  const jsonPath = join(outDir, `${base}.json`);
  // Parts not asked for keep their last result (so that --parts can complete a run).
  const prev = existsSync(jsonPath) ? (JSON.parse(readFileSync(jsonPath, 'utf8')) as { parts?: Record<string, unknown> }) : {};
  const result: Record<string, any> = {
    date: new Date().toISOString(),
    quick,
    command: `node --import tsx bench/training.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    kernels,
    loadStart: load(),
    parts: { ...(prev.parts ?? {}) } as Record<string, unknown>,
  };
  const t0 = performance.now();
  const jobs: Array<[number, () => Promise<Record<string, unknown>>]> = [[1, part1], [2, part2], [3, part3]];
  for (const [n, fn] of jobs) {
    if (!parts.has(n)) continue;
    const t = performance.now();
    try {
      const loadAtStart = load();
      result.parts[String(n)] = { ...(await fn()), wallMinutes: (performance.now() - t) / 60000, measuredAt: new Date(Date.now() - (performance.now() - t)).toISOString(), command: result.command, loadStart: loadAtStart };
    } catch (e) {
      say(`part ${n} failed: ${(e as Error).stack ?? (e as Error).message}`);
      delete result.parts[String(n)];
    }
    // Write after every part, so that a run cut short keeps what finished.
    result.minutes = (performance.now() - t0) / 60000;
    writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
    const md = markdown(result);
    writeFileSync(join(outDir, `${base}.md`), `${md}\n`);
    if (!quick) replaceReadmeSection(join(ROOT, 'README.md'), 'bench:training', md);
  }
  say(`done in ${((performance.now() - t0) / 60000).toFixed(1)} min; wrote ${outDir}/${base}.{json,md}${quick ? '' : ' and the README section'}`);
}

main().catch((e) => {
  process.stderr.write(`bench/training: ${(e as Error).stack ?? (e as Error).message}\n`);
  process.exitCode = 1;
});
