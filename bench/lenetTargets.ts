// Issue 12, "Numbers to reach" on LeNet-5 (`lenet5_fashion.onnx`, the fixture's `.acc` the
// reference):
//   dense   its two dense layers (f1 800 -> 500, f2 500 -> 10) in < 1,000 parameters in total, the
//           convolutions dense, within 0.5 point of the .acc;
//   whole   the whole model >= 100x fewer parameters (c2 factorised too), within 1 point.
// Each run is one `factorlite convert` of the three-phase recipe with the image-aware reshape given
// per layer in a --ranks file ("modes": f1's input 800 = 50 channels x 4 rows x 4 columns read as
// (10, 5) channels x 4 x 4; f2's input is f1's output in f1's output modes):
//   convert --method rtt --ranks FILE --hidden-bias none --finetune fashion-mnist --phases 3
//           --block-steps B --epochs E --lr X --seed S [--max-minutes M]
// then `factorlite eval` of the written .flm on all 10,000 test images (the row's accuracy).
//
//   node --import tsx bench/lenetTargets.ts [--runs dense,whole] [--seeds 0,1] [--epochs 3]
//        [--block-steps 300] [--lr 0.02] [--max-minutes M] [--parallel] [--ranks dense=FILE,whole=FILE]
//        [--readme README.md | --no-readme]
//
// Every run is appended to bench/results/lenet-targets-history.json (runs of other invocations are
// kept), and the README block lists them all with the mean gap over seeds per recipe (--runs ''
// runs nothing and writes the block again from the history).
// Writes bench/results/lenet-targets.{json,md} and the README section between the
// bench:lenet-targets markers.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeBenchResults } from './readme.js';
import { FIXTURES } from './lib/fixtures.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'results');
const WORK = join(ROOT, 'bench', 'out');
const HISTORY = join(OUT, 'lenet-targets-history.json');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
/** The two targets: the ranks file (with the modes) and the parameter / gap limits of the issue. */
const TARGETS: Record<string, { ranks: string; what: string; maxGap: number }> = {
  dense: { ranks: 'bench/ranks/lenet5-dense-rtt-modes.json', what: 'f1 + f2 < 1,000 params, convs dense', maxGap: 0.5 },
  whole: { ranks: 'bench/ranks/lenet5-rtt-modes-100x.json', what: 'whole model >= 100x', maxGap: 1 },
};
// --ranks dense=FILE,whole=FILE: another ranks file (structure) for a target.
for (const part of arg('ranks', '').split(',').filter(Boolean)) {
  const [k, file] = part.split('=');
  if (!k || !file || !TARGETS[k]) throw new Error(`--ranks ${part}: expected dense=FILE or whole=FILE`);
  if (!existsSync(resolve(ROOT, file))) throw new Error(`--ranks ${part}: ${file} does not exist`);
  TARGETS[k]!.ranks = file;
}
const RUNS = arg('runs', 'dense,whole').split(',').filter(Boolean);
for (const r of RUNS) if (!TARGETS[r]) throw new Error(`--runs ${r}: expected dense or whole`);
const SEEDS = arg('seeds', '0,1').split(',').filter(Boolean).map(Number);
const EPOCHS = Number(arg('epochs', '3'));
const BLOCK_STEPS = Number(arg('block-steps', '300'));
const LR = Number(arg('lr', '0.02'));
const MAX_MINUTES = arg('max-minutes', '');
const PARALLEL = process.argv.includes('--parallel');
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const FIXTURE = join(FIXTURES, 'lenet5_fashion.onnx');
const say = (msg: string) => process.stderr.write(`[lenet targets] ${msg}\n`);
const load = () => loadavg().map((x) => Number(x.toFixed(2)));
const pct = (x: number | undefined | null) => (x === undefined || x === null ? '–' : `${(100 * x).toFixed(2)}%`);

interface Row {
  target: string;
  seed: number;
  command: string;
  evalCommand: string;
  ok: boolean;
  error?: string;
  /** .acc of the fixture (fraction). */
  reference: number;
  /** Test accuracy of the written .flm by `factorlite eval`, all test images. */
  accuracy?: number;
  samples?: number;
  /** Accuracy after each phase, as convert reports it. */
  phases?: Array<{ phase: number; name: string; accuracy: number | null }>;
  params?: number;
  sourceParams?: number;
  ratio?: number;
  /** Parameters of the dense layers (f1, f2) after conversion, bias included. */
  denseLayerParams?: number;
  layers?: Array<{ name: string; op: string; ranks: number[]; paramsAfter: number }>;
  gap?: number;
  met?: boolean;
  epochs: number;
  blockSteps: number;
  lr: number;
  minutes?: number;
  /** End-to-end distillation steps run, and those of the epochs asked for (fewer: cut by --max-minutes). */
  steps?: number;
  plannedSteps?: number;
  loadBefore: number[];
  loadAfter?: number[];
  when: string;
}

function runCli(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'factorlite.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.on('exit', (code) => done({ code: code ?? 1, stdout }));
  });
}
const lastJson = (s: string) => JSON.parse(s.trim().split('\n').pop()!) as Record<string, unknown>;

async function one(target: string, seed: number): Promise<Row> {
  const t = TARGETS[target]!;
  const reference = Number(readFileSync(FIXTURE.replace(/\.onnx$/, '.acc'), 'utf8').trim());
  const file = `lenet_${target}_e${EPOCHS}_s${seed}.flm`;
  const out = join(WORK, file);
  const args = [
    'convert', FIXTURE, '--method', 'rtt', '--ranks', t.ranks, '--hidden-bias', 'none', '--finetune', 'fashion-mnist', '--phases', '3',
    '--block-steps', String(BLOCK_STEPS), '--epochs', String(EPOCHS), '--lr', String(LR), '--seed', String(seed),
    ...(MAX_MINUTES ? ['--max-minutes', MAX_MINUTES] : []), '-o', out, '--json',
  ];
  const evalArgs = ['eval', out, '--data', 'fashion-mnist', '--json'];
  const show = (a: string[]) => `factorlite ${a.join(' ').replace(FIXTURE, 'lenet5_fashion.onnx').replace(out, `bench/out/${file}`)}`;
  const row: Row = {
    target, seed, command: show(args), evalCommand: show(evalArgs), ok: false, reference, epochs: EPOCHS, blockSteps: BLOCK_STEPS, lr: LR,
    loadBefore: load(), when: new Date().toISOString(),
  };
  say(`${row.command} (load ${row.loadBefore.join(' ')})`);
  const t0 = performance.now();
  try {
    const c = await runCli(args);
    if (c.code !== 0) throw new Error(`convert exit code ${c.code}`);
    const j = lastJson(c.stdout);
    const layers = (j['layers'] as Array<{ name: string; op: string; ranks: number[]; paramsAfter: number; sourceOp: string }>);
    row.layers = layers.map((l) => ({ name: l.name, op: l.op, ranks: l.ranks, paramsAfter: l.paramsAfter }));
    row.denseLayerParams = layers.filter((l) => l.sourceOp === 'dense').reduce((s, l) => s + l.paramsAfter, 0);
    row.params = j['params'] as number;
    row.sourceParams = j['sourceParams'] as number;
    row.ratio = j['ratio'] as number;
    const ft = j['finetune'] as { steps?: number; plannedSteps?: number } | undefined;
    if (ft?.steps !== undefined) row.steps = ft.steps;
    if (ft?.plannedSteps !== undefined) row.plannedSteps = ft.plannedSteps;
    row.phases = ((j['phases'] ?? []) as Array<{ phase: number; name: string; accuracy: number | null }>).map((p) => ({ phase: p.phase, name: p.name, accuracy: p.accuracy }));
    const e = await runCli(evalArgs);
    if (e.code !== 0) throw new Error(`eval exit code ${e.code}`);
    const ej = lastJson(e.stdout);
    row.accuracy = ej['accuracy'] as number;
    row.samples = ej['samples'] as number;
    row.gap = 100 * (reference - row.accuracy);
    row.met = row.gap <= t.maxGap && (target === 'dense' ? row.denseLayerParams < 1000 : row.ratio >= 100);
    row.ok = true;
  } catch (e) {
    row.error = (e as Error).message;
  }
  row.minutes = (performance.now() - t0) / 60000;
  row.loadAfter = load();
  say(`${target} seed ${seed}: ${row.ok ? `${pct(row.accuracy)} (gap ${row.gap!.toFixed(2)} points; ${row.params} params, ${row.ratio!.toFixed(1)}x; dense layers ${row.denseLayerParams})` : `failed (${row.error})`}, ${row.minutes.toFixed(1)} min`);
  return row;
}

function render(rows: Row[]): string {
  const head = `Measured on ${cpus().length} cores (shared; load average before and after each run in lenet-targets.json), Node ${process.version}.`;
  const lines = [
    head,
    '',
    'Issue 12 on LeNet-5 (`lenet5_fashion.onnx`, `.acc` the reference): rtt with the image-aware reshape of each layer given in a `--ranks` file (`"modes"`), no hidden bias, and the three-phase recipe in one `convert`; accuracy by `factorlite eval` of the written file on all 10,000 test images.',
    '`dense`: f1 and f2 in < 1,000 parameters in total (bias included), the convolutions dense (target: within 0.5 point of `.acc`). `whole`: the whole model ≥ 100× (c2 rtt too; target: within 1 point).',
    '',
    '| target | seed | params | ratio | dense layers | after decompose | after block-wise | after distil | eval | gap to .acc | met | epochs | distil steps run | lr | minutes |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const ph = (n: number) => pct(r.phases?.find((p) => p.phase === n)?.accuracy);
      return r.ok
        ? `| ${r.target} | ${r.seed} | ${r.params} | ${r.ratio!.toFixed(1)}× | ${r.denseLayerParams} | ${ph(1)} | ${ph(2)} | ${ph(3)} | ${pct(r.accuracy)} | ${r.gap!.toFixed(2)} | ${r.met ? 'yes' : 'no'} | ${r.epochs} | ${r.steps !== undefined ? `${r.steps} of ${r.plannedSteps}` : '–'} | ${r.lr} | ${r.minutes!.toFixed(1)} |`
        : `| ${r.target} | ${r.seed} | failed: ${r.error} | | | | | | | | | ${r.epochs} | | ${r.lr} | ${r.minutes?.toFixed(1) ?? ''} |`;
    }),
  ];
  // Mean and spread of the gap over seeds, per recipe (target, ranks file, epochs, lr, block steps).
  const groups = new Map<string, Row[]>();
  for (const r of rows.filter((x) => x.ok)) {
    const k = `${r.target} | ${r.command.match(/--ranks (\S+)/)?.[1]?.replace('bench/ranks/', '') ?? ''} | ${r.epochs} | ${r.lr} | ${r.blockSteps}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const multi = [...groups].filter(([, rs]) => rs.length >= 2);
  if (multi.length) {
    lines.push('', '| target | ranks file | epochs | lr | block steps | seeds | mean gap | min | max |', '|---|---|---|---|---|---|---|---|---|');
    for (const [k, rs] of multi) {
      const g = rs.map((r) => r.gap!);
      lines.push(`| ${k} | ${rs.map((r) => r.seed).join(', ')} | ${(g.reduce((a, b) => a + b, 0) / g.length).toFixed(2)} | ${Math.min(...g).toFixed(2)} | ${Math.max(...g).toFixed(2)} |`);
    }
  }
  lines.push('', 'Made by (each run is the convert then the eval below):', '', ...[...new Set(rows.map((r) => `    ${r.command}\n    ${r.evalCommand}`))]);
  return lines.join('\n');
}

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const readHistory = (): Row[] => (existsSync(HISTORY) ? (JSON.parse(readFileSync(HISTORY, 'utf8')) as Row[]) : []);
  const done: Row[] = [];
  let saved = 0;
  // The history is read again at each save, so that two invocations running at once (for example
  // one per target) each append their rows instead of the later one writing back a stale copy.
  const save = () => {
    const all = [...readHistory(), ...done.slice(saved)];
    saved = done.length;
    mkdirSync(OUT, { recursive: true });
    writeFileSync(HISTORY, `${JSON.stringify(all, null, 1)}\n`);
    writeBenchResults(OUT, 'lenet-targets', { rows: all }, render(all), README);
  };
  const jobs = RUNS.flatMap((t) => SEEDS.map((s) => [t, s] as const));
  const go = async ([t, s]: readonly [string, number]) => {
    done.push(await one(t, s));
    save();
  };
  if (PARALLEL) await Promise.all(jobs.map(go));
  else for (const j of jobs) await go(j);
  // --runs '' runs nothing and writes the tables again from the history.
  if (jobs.length === 0) save();
}

await main();
