// Issue 12, item 4: the bias of FC-2's hidden layer past 1000x. FC-2 (784-1024-10) trained from
// scratch on full Fashion-MNIST by `factorlite train --arch mlp`, every run with the same epochs,
// batch, optimiser and seed (the command of bench/training.ts part 1):
//   dense, bias full      the reference;
//   dense, bias none      what dropping the hidden layer's 1,024-entry bias costs a dense layer;
//   <kind> --ratio 1000 --hidden-bias none   the hidden layer, bias included, >= 1000x smaller
//                         than dense (<= 804 params): the whole budget goes to the weight.
// Test accuracy on all 10,000 images, in the runtime (the written .flm).
//
//   node --import tsx bench/fc2Bias.ts [--runs dense:full,rtt:none,dense:none,rcp:none,tt:none]
//        [--ratio 1000] [--epochs 3] [--lr 0.003] [--schedule cosine] [--distil E]
//        [--modes OUT/IN] [--seed S] [--quick] [--parallel] [--readme README.md | --no-readme]
//
// --epochs / --lr / --schedule change the one command every run uses (dense included, so the gap is
// always to a dense FC-2 trained by the same command). --distil E then fine-tunes every compressed
// run for E more epochs by distillation from this invocation's dense:full model (`finetune
// --teacher`); its row is the distilled model (the dense reference is not trained further).
// --modes OUT/IN (e.g. 4x4x8x8/4x7x4x7) is `train --modes` for every compressed run: the reshape of
// the hidden layer (default: the balanced split of chooseReshape); a run of its own takes it as a
// third field (--runs dense:full,rtt:none:8x8x4x4/4x7x4x7,rtt:none:4x4x8x8/4x7x4x7), and a fourth
// field is `train --dense-ranks` (rtt:none:8x8x4x4/4x7x4x7:3,3,2,1).
// Every invocation is appended to bench/results/fc2bias-history.json, and the README lists them all,
// then the mean and spread of the gap over seeds for every recipe run at two or more seeds.
//
// --parallel starts every run at once (each is one single-threaded process); on a shared machine
// that gets the runs done sooner, and each row's wall minutes then include the others' load.
//
// Writes bench/results/fc2bias.{json,md} and the README section between the bench:fc2bias markers.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TRAIN_DEFAULTS, DEFAULT_LR } from '../cli/commands/train.js';
import { writeBenchResults } from './readme.js';
import { chooseReshape } from '../converter/decompose/reshaped.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'results');
const WORK = join(ROOT, 'bench', 'out');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const quick = process.argv.includes('--quick');
const parallel = process.argv.includes('--parallel');
const RATIO = Number(arg('ratio', '1000'));
const MODES = arg('modes', '');
// Runs are split at a comma followed by a letter, so a run's ranks field (3,3,2,1) keeps its commas.
const RUNS = arg('runs', 'dense:full,rtt:none,dense:none,rcp:none,tt:none').split(/,(?=[a-z])/i).filter(Boolean).map((s) => {
  const [layer, bias, modes, ranks] = s.split(':');
  if (!layer || (bias !== 'full' && bias !== 'none')) throw new Error(`--runs ${s}: expected <layer>:full|none[:OUT/IN[:R,..]]`);
  return { layer, bias, modes: layer === 'dense' ? '' : modes || MODES, ranks: layer === 'dense' ? '' : ranks ?? '' };
});
const EPOCHS = Number(arg('epochs', String(TRAIN_DEFAULTS.epochs)));
const LR = Number(arg('lr', String(DEFAULT_LR[TRAIN_DEFAULTS.optimizer])));
const SCHEDULE = arg('schedule', TRAIN_DEFAULTS.schedule);
const DISTIL = Number(arg('distil', '0'));
/** --seed S: the seed of every run's initialisation and batch order (train --seed), default 0. */
const SEED = Number(arg('seed', String(TRAIN_DEFAULTS.seed)));
const HISTORY = join(OUT, 'fc2bias-history.json');
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const say = (msg: string) => process.stderr.write(`[fc2 bias bench] ${msg}\n`);
const load = () => loadavg().map((x) => Number(x.toFixed(2)));
const STARTED = `Measured from ${new Date().toISOString()} on ${cpus().length} cores, Node ${process.version}.`;
const pct = (x: number | undefined) => (x === undefined ? '–' : `${(100 * x).toFixed(2)}%`);

interface Row {
  layer: string;
  bias: string;
  ratio: number | null;
  command: string;
  ok: boolean;
  error?: string;
  accuracy?: number;
  samples?: number;
  hiddenParams?: number;
  hiddenDenseParams?: number;
  hiddenCompression?: number;
  ranks?: number[];
  op?: string;
  /** The trained .flm in bench/out. */
  file?: string;
  /** The hidden layer's reshape, out modes / in modes (train --modes, or its default). */
  modes?: string;
  minutes?: number;
  /** With --distil: accuracy before distillation (the train command's), and the finetune command. */
  trainedAccuracy?: number;
  distilCommand?: string;
  /** finetune's kept checkpoint by validation accuracy (epoch 0: the distillation did not help there). */
  distilBest?: number | null;
  loadBefore?: number[];
  loadAfter?: number[];
}

/** The .flm a run writes in bench/out. */
function fileOf(r: (typeof RUNS)[number]): string {
  return `fc2_${r.layer}_${r.bias}_e${EPOCHS}${SEED !== TRAIN_DEFAULTS.seed ? `_s${SEED}` : ''}${r.modes ? `_${r.modes.replace('/', '-')}` : ''}${r.ranks ? `_r${r.ranks.replaceAll(',', '-')}` : ''}.flm`;
}

function runCli(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'factorlite.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.on('exit', (code) => done({ code: code ?? 1, stdout }));
  });
}

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const rows: Row[] = [];
  const one = async (r: (typeof RUNS)[number]): Promise<void> => {
    const ratio = r.layer === 'dense' ? null : RATIO;
    const file = fileOf(r);
    const out = join(WORK, file);
    const args = [
      'train', '--arch', 'mlp', '--layer', r.layer, ...(ratio ? ['--ratio', String(ratio)] : []), ...(r.modes ? ['--modes', r.modes] : []), ...(r.ranks ? ['--dense-ranks', r.ranks] : []), '--hidden-bias', r.bias,
      '--data', 'fashion-mnist', '--epochs', String(EPOCHS), '--batch', String(TRAIN_DEFAULTS.batch),
      '--optimizer', TRAIN_DEFAULTS.optimizer, '--lr', String(LR), '--schedule', SCHEDULE, '--seed', String(SEED),
      ...(quick ? ['--limit', '6000', '--eval-limit', '2000'] : []),
      '-o', out, '--json', '--no-progress',
    ];
    const command = `factorlite ${args.join(' ').replace(out, `bench/out/${file}`)}`;
    say(`${command} (load ${load().join(' ')})`);
    const row: Row = { layer: r.layer, bias: r.bias, ratio, command, ok: false, loadBefore: load(), file, ...(r.modes ? { modes: r.modes } : {}) };
    const t0 = performance.now();
    const res = await runCli(args);
    row.minutes = (performance.now() - t0) / 60000;
    row.loadAfter = load();
    try {
      if (res.code !== 0) throw new Error(`exit code ${res.code}`);
      const j = JSON.parse(res.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
      const hidden = (j['layers'] as Array<{ hidden: boolean; op: string; ranks: number[]; outModes?: number[]; inModes?: number[] }>).find((l) => l.hidden)!;
      Object.assign(row, {
        ok: true, accuracy: j['accuracy'], samples: j['samples'], hiddenParams: j['hiddenParams'], hiddenDenseParams: j['hiddenDenseParams'],
        hiddenCompression: j['hiddenCompression'], op: hidden.op, ranks: hidden.ranks,
        ...(hidden.outModes ? { modes: `${hidden.outModes.join('x')}/${hidden.inModes!.join('x')}` } : {}),
      });
    } catch (e) {
      row.error = (e as Error).message;
    }
    say(`${r.layer} bias ${r.bias}: ${row.ok ? `${pct(row.accuracy)}, hidden ${row.hiddenParams} params (${row.hiddenCompression!.toFixed(1)}x)` : `failed (${row.error})`}, ${row.minutes.toFixed(2)} min`);
    rows.push(row);
    // Written after every run: a stopped bench keeps the runs it finished.
    report(rows, rows.length < RUNS.length);
  };
  if (parallel) await Promise.all(RUNS.map(one));
  else for (const r of RUNS) await one(r);
  if (DISTIL > 0) {
    const teacher = rows.find((r) => r.layer === 'dense' && r.bias === 'full' && r.ok);
    if (!teacher) throw new Error('--distil needs a dense:full run in --runs (the teacher)');
    const teacherFile = join(WORK, teacher.file!);
    for (const row of rows.filter((r) => r.ok && r.layer !== 'dense')) {
      const stem = row.file!.replace(/\.flm$/, '');
      const src = join(WORK, `${stem}.flm`);
      const dst = join(WORK, `${stem}_distil${DISTIL}.flm`);
      const args = ['finetune', src, '--teacher', teacherFile, '--data', 'fashion-mnist', '--epochs', String(DISTIL), '--batch', String(TRAIN_DEFAULTS.batch), ...(quick ? ['--limit', '6000', '--eval-limit', '2000'] : []), '-o', dst, '--json', '--no-progress'];
      row.distilCommand = `factorlite ${args.join(' ').replaceAll(`${WORK}/`, 'bench/out/')}`;
      say(row.distilCommand);
      const t0 = performance.now();
      const res = await runCli(args);
      row.minutes! += (performance.now() - t0) / 60000;
      if (res.code !== 0) {
        row.ok = false;
        row.error = `finetune exit code ${res.code}`;
        continue;
      }
      const j = JSON.parse(res.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
      row.trainedAccuracy = row.accuracy;
      row.accuracy = j['accuracy'] as number;
      // finetune returns the best checkpoint by validation: epoch 0 is the model as trained.
      row.distilBest = j['bestEpoch'] as number | null;
      say(`${row.layer} bias ${row.bias}: distilled ${pct(row.trainedAccuracy)} -> ${pct(row.accuracy)}`);
    }
    report(rows, false);
  }
}

interface Invocation {
  date: string;
  epochs: number;
  lr: number;
  schedule: string;
  distil: number;
  /** Seed of every run (absent before --seed: 0). */
  seed?: number;
  quick: boolean;
  command: string;
  rows: Row[];
}

/** The earlier invocations (the first, from before the history file, is read from fc2bias.json). */
function history(): Invocation[] {
  if (existsSync(HISTORY)) return JSON.parse(readFileSync(HISTORY, 'utf8')) as Invocation[];
  const first = join(OUT, 'fc2bias.json');
  if (!existsSync(first)) return [];
  const j = JSON.parse(readFileSync(first, 'utf8')) as { quick: boolean; epochs: number; rows: Row[] };
  return [{ date: '2026-12-06T19:16', epochs: j.epochs, lr: 0.003, schedule: 'cosine', distil: 0, quick: j.quick, command: 'node --import tsx bench/fc2Bias.ts --parallel --runs rtt:none,dense:full,dense:none', rows: j.rows }];
}
const PAST = history();

function report(done: Row[], partial: boolean): void {
  const at = (r: Row) => RUNS.findIndex((x) => r.file === fileOf(x));
  const rows = [...done].sort((a, b) => at(a) - at(b));
  const ref = rows.find((r) => r.layer === 'dense' && r.bias === 'full' && r.ok);
  const gap = (r: Row) => (ref && r.ok ? 100 * (ref.accuracy! - r.accuracy!) : undefined);
  const target = Math.floor(803840 / 1000);
  const lines = [
    STARTED,
    '',
    `FC-2 (784-1024-10) on Fashion-MNIST trained from scratch by \`factorlite train --arch mlp\` (${EPOCHS} epochs, batch ${TRAIN_DEFAULTS.batch}, ${TRAIN_DEFAULTS.optimizer} lr ${LR}, ${SCHEDULE}, seed ${SEED}${quick ? ', --quick: 6000 training / 2000 test images' : ''}${DISTIL ? `; the compressed runs then distilled ${DISTIL} epoch(s) from the dense:full run by \`factorlite finetune --teacher\`` : ''}); accuracy of the written .flm in the runtime. \`--hidden-bias none\`: the hidden layer has no bias and its whole budget goes to the weight; the compression is against the dense layer with its bias (803,840). Made by \`node --import tsx bench/fc2Bias.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}\`.`,
    '',
    '| hidden layer | hidden bias | kind, ranks | test accuracy | test images | hidden params | compression | gap to dense | wall min | load before |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => (r.ok
      ? `| ${r.layer}${r.ratio ? ` --ratio ${r.ratio}` : ''} | ${r.bias} | ${r.op}${r.ranks!.length ? ` [${r.ranks!.join(', ')}]` : ''}${r.modes ? `, modes ${r.modes}` : ''} | ${pct(r.accuracy)} | ${r.samples} | ${r.hiddenParams} | ${r.hiddenCompression!.toFixed(1)}× | ${gap(r) === undefined ? '–' : `${gap(r)!.toFixed(2)}`} | ${r.minutes!.toFixed(2)} | ${r.loadBefore!.join(' ')} |`
      : `| ${r.layer} | ${r.bias} | failed: ${r.error} | | | | | | ${r.minutes!.toFixed(2)} | ${r.loadBefore!.join(' ')} |`)),
    '',
    `Target (issue 12): hidden layer, bias included, ≤ ${target} params (≥ 1000×) within 1 point of dense: ` +
      (rows.filter((r) => r.ok && r.layer !== 'dense').map((r) => `${r.layer} ${r.hiddenParams! <= target && gap(r) !== undefined && gap(r)! <= 1 ? 'met' : 'not met'} (${r.hiddenParams} params, gap ${gap(r)?.toFixed(2) ?? '–'} points)`).join('; ') || 'no run') + '.',
  ];
  if (partial) lines.push('', `(${rows.length} of ${RUNS.length} runs so far.)`);
  const self: Invocation = {
    date: STARTED.slice(14, 30), epochs: EPOCHS, lr: LR, schedule: SCHEDULE, distil: DISTIL, seed: SEED, quick,
    command: `node --import tsx bench/fc2Bias.ts ${process.argv.slice(2).join(' ')}`, rows,
  };
  const all = [...PAST, self];
  lines.push('', 'Every invocation so far (bench/results/fc2bias-history.json); each gap is to the dense:full FC-2 of the same invocation, trained by the same command:', '');
  lines.push('| measured | command | hidden layer | recipe | hidden params | accuracy | dense | gap | target |', '|---|---|---|---|---|---|---|---|---|');
  for (const inv of all) {
    const dense = inv.rows.find((r) => r.layer === 'dense' && r.bias === 'full' && r.ok);
    for (const r of inv.rows.filter((x) => x.ok && x.layer !== 'dense')) {
      const g = dense ? 100 * (dense.accuracy! - r.accuracy!) : undefined;
      const recipe = `${inv.epochs} ep, lr ${inv.lr}, ${inv.schedule}${inv.seed ? `, seed ${inv.seed}` : ""}${inv.distil ? `, + ${inv.distil} ep distil (${pct(r.trainedAccuracy)} before${r.distilBest !== undefined && r.distilBest !== null ? `, kept epoch ${r.distilBest}` : ''})` : ''}${inv.quick ? ', quick' : ''}`;
      lines.push(`| ${inv.date} | \`${inv.command}\` | ${r.layer} ${r.op} [${r.ranks?.join(', ')}]${r.modes ? `, modes ${r.modes}` : ''}, bias ${r.bias} | ${recipe} | ${r.hiddenParams} | ${pct(r.accuracy)} | ${pct(dense?.accuracy)} | ${g === undefined ? '–' : g.toFixed(2)} | ${inv.quick ? 'quick run, not judged' : r.hiddenParams! <= target && g !== undefined && g <= 1 ? 'met' : 'not met'} |`);
    }
  }
  lines.push(...seedSummary(all, target));
  writeFileSync(HISTORY, `${JSON.stringify(all, null, 1)}\n`);
  writeBenchResults(OUT, 'fc2bias', { ratio: RATIO, quick, epochs: EPOCHS, lr: LR, schedule: SCHEDULE, distil: DISTIL, partial, rows }, lines.join('\n'), README);
}

/**
 * Mean and spread over seeds: the history's runs grouped by recipe (layer, ranks, modes, bias,
 * epochs, lr, schedule, distillation; quick runs left out), one gap per seed (the latest invocation
 * of that seed, each gap to the dense:full of its own invocation), for every recipe run at two or more
 * seeds. The target holds on average when the mean gap is <= 1 point.
 */
const DEFAULT_LAYOUT = chooseReshape(1024, 784);
/** The hidden layer's layout when no --modes is given (FC-2: 4x4x8x8/7x7x4x4). */
const DEFAULT_MODES = `${DEFAULT_LAYOUT.tModes.join('x')}/${DEFAULT_LAYOUT.sModes.join('x')}`;

function seedSummary(all: Invocation[], target: number): string[] {
  const groups = new Map<string, { row: Row; recipe: string; bySeed: Map<number, { acc: number; dense: number }> }>();
  for (const inv of all) {
    if (inv.quick) continue;
    const dense = inv.rows.find((r) => r.layer === 'dense' && r.bias === 'full' && r.ok);
    if (!dense) continue;
    for (const r of inv.rows.filter((x) => x.ok && x.layer !== 'dense')) {
      const recipe = `${inv.epochs} ep, lr ${inv.lr}, ${inv.schedule}${inv.distil ? `, + ${inv.distil} ep distil` : ''}`;
      // Rows from before the bench recorded the layout used the default one (chooseReshape).
      const modes = r.modes ?? (['rcp', 'rtk', 'rtt', 'rtr'].includes(r.layer) ? DEFAULT_MODES : '');
      const key = [r.layer, r.op, r.ranks?.join('-'), modes, r.bias, r.hiddenParams, recipe].join('|');
      const g = groups.get(key) ?? { row: { ...r, modes }, recipe, bySeed: new Map() };
      g.bySeed.set(inv.seed ?? 0, { acc: r.accuracy!, dense: dense.accuracy! });
      groups.set(key, g);
    }
  }
  const multi = [...groups.values()].filter((g) => g.bySeed.size >= 2);
  if (!multi.length) return [];
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const out = [
    '',
    'Over seeds (same history; per recipe run at two or more seeds, the latest run of each seed; sd is the sample standard deviation of the gap):',
    '',
    '| hidden layer | recipe | hidden params | gap by seed | mean accuracy | mean dense | mean gap | gap min–max | gap sd | target on average |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const { row: r, recipe, bySeed } of multi) {
    const seeds = [...bySeed.entries()].sort((a, b) => a[0] - b[0]);
    const gaps = seeds.map(([, v]) => 100 * (v.dense - v.acc));
    const m = mean(gaps);
    const sd = Math.sqrt(gaps.reduce((a, x) => a + (x - m) ** 2, 0) / (gaps.length - 1));
    out.push(`| ${r.layer} ${r.op} [${r.ranks?.join(', ')}]${r.modes ? `, modes ${r.modes}` : ''}, bias ${r.bias} | ${recipe} | ${r.hiddenParams} | ${seeds.map(([s], i) => `s${s}: ${gaps[i]!.toFixed(2)}`).join(', ')} | ${pct(mean(seeds.map(([, v]) => v.acc)))} | ${pct(mean(seeds.map(([, v]) => v.dense)))} | ${m.toFixed(2)} | ${Math.min(...gaps).toFixed(2)}–${Math.max(...gaps).toFixed(2)} | ${sd.toFixed(2)} | ${r.hiddenParams! <= target && m <= 1 ? 'met' : 'not met'} (${seeds.length} seeds) |`);
  }
  return out;
}

await main();
