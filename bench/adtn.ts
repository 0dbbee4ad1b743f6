// Issue 12, ADTN on FC-2 (/work/shared/fixtures/mlp_fashion.onnx, 784-1024-10).
//  part 1, the runtime's paths (runtime/layers/adtnDense.ts adtnRuntimePlan): FC-2's hidden layer at
//    depth 4 (648 parameters), a 1024 x 1024 one and FC-2's at arity 3, each loaded with the old
//    rebuild, the MPS expanded into W, and the per-call contraction forced, one process each; load,
//    RSS, batch 1 and 32 latency, agreement with the rebuild; the dense FC-2 for reference. With
//    --runtime-only, results to bench/results/adtn-runtime.{json,md} and README bench:adtn-runtime.
//  part 2, accuracy: `convert --method adtn --ranks {"/f1/Gemm": [D]}` (the fit to the pretrained
//    weight, its steps and error from the converter), then `finetune --teacher` (distillation) for
//    the epochs, batch and training images given; test accuracy on Fashion-MNIST's 10,000 test
//    images in the runtime, against the dense FC-2 (the teacher) measured by the same command.
//
//   nice -n 10 node --import tsx bench/adtn.ts [--depths 4] [--epochs 1] [--batch 128] [--limit N] [--hidden-bias none|full] [--lr X]
//        [--readme README.md | --no-readme] [--runtime-only]
//
// Writes bench/results/adtn.{json,md} and the README section between the bench:adtn markers.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adtnLayout, adtnQubits, adtnRuntimePlan, ADTN_CONTRACT_MAC_COST, setAdtnRuntimeMode, type AdtnRuntimeMode } from '../runtime/layers/adtnDense.js';
import { initKernels } from '../runtime/kernels/backend.js';
import { Session } from '../runtime/session.js';
import type { Model } from '../runtime/ir.js';
import { ADTN_FIT_STEPS } from '../converter/methods/adtn.js';
import { writeBenchResults } from './readme.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'results');
const WORK = join(ROOT, 'bench', 'out', 'adtn');
const FIXTURE = resolve(process.env['FACTORLITE_FIXTURES'] ?? '/work/shared/fixtures', 'mlp_fashion.onnx');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const DEPTHS = arg('depths', '4').split(',').map(Number);
const EPOCHS = arg('epochs', '1');
const BATCH = arg('batch', '128');
const LIMIT = arg('limit', '');
const LR = arg('lr', '');
/** full | none: convert --hidden-bias (none: the hidden layer's 1,024-entry bias is dropped, the budget is the network's). */
const HIDDEN_BIAS = arg('hidden-bias', 'none');
/** Part 1 only (the runtime's paths; a few minutes), results to bench/results/adtn-runtime.{json,md} and README bench:adtn-runtime. */
const runtimeOnly = process.argv.includes('--runtime-only');
const readme = process.argv.includes('--no-readme') ? null : arg('readme', join(ROOT, 'README.md'));
const say = (m: string) => process.stderr.write(`[adtn] ${m}\n`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// ---- part 1: the runtime's paths (runtime/layers/adtnDense.ts adtnRuntimePlan), each in its own process ----
// A model: the ADTN hidden layer (features out x in), relu, a dense 10-way classifier; or the dense
// FC-2 (random weights) for reference. The child loads it with one path forced and prints JSON: load
// (Session.create) ms, RSS before the load and the process's peak, batch 1 and 32 medians, and the
// first output row (the parent compares the paths on it).
interface Shape { id: string; out: number; inF: number; depth: number; arity: number }
const SHAPES: Shape[] = [
  { id: 'fc2', out: 1024, inF: 784, depth: 4, arity: 2 },
  { id: 'square', out: 1024, inF: 1024, depth: 4, arity: 2 },
  { id: 'fc2-arity3', out: 1024, inF: 784, depth: 3, arity: 3 },
];
const PATHS = ['rebuild', 'expand', 'contract'] as const;

function shapeModel(sh: Shape | 'dense'): Model {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed / 2147483648 - 0.5);
  const f32 = (name: string, shape: number[], f: (i: number) => number) => ({ name, dtype: 'f32' as const, shape, data: Float32Array.from({ length: shape.reduce((a, v) => a * v, 1) }, (_, i) => f(i)) });
  const inF = sh === 'dense' ? 784 : sh.inF, hid = sh === 'dense' ? 1024 : sh.out;
  const tensors = new Map<string, ReturnType<typeof f32>>();
  const add = (t: ReturnType<typeof f32>) => (tensors.set(t.name, t), t.name);
  let first;
  if (sh === 'dense') {
    first = { name: 'h', op: 'dense' as const, inputs: ['x'], outputs: ['h'], attrs: {}, weights: { weight: add(f32('w1', [hid, inF], () => rnd() * 0.1)), bias: add(f32('b1', [hid], () => rnd() * 0.1)) } };
  } else {
    const l = adtnLayout(adtnQubits(sh.out * sh.inF, sh.arity), sh.depth, sh.arity, 'brickwall');
    const D = 2 ** sh.arity;
    // entries of order 1: start entries near +-1, gates near the identity
    const start = add(f32('s', [l.q, 2], () => (rnd() < 0 ? -1 : 1) * (0.9 + 0.4 * rnd())));
    const gates = add(f32('g', [l.gates, D, D], (i) => (i % (D * D) % (D + 1) === 0 ? 1 : 0) + (2 / Math.sqrt(D)) * rnd()));
    first = { name: 'h', op: 'adtn_dense' as const, inputs: ['x'], outputs: ['h'], attrs: { features: [sh.out, sh.inF], depth: sh.depth, arity: sh.arity, pairing: 'brickwall' }, weights: { start, gates } };
  }
  const nodes = [
    first,
    { name: 'r', op: 'relu' as const, inputs: ['h'], outputs: ['a'], attrs: {}, weights: {} },
    { name: 'c', op: 'dense' as const, inputs: ['a'], outputs: ['y'], attrs: {}, weights: { weight: add(f32('w2', [10, hid], () => rnd() * 0.1)), bias: add(f32('b2', [10], () => rnd() * 0.1)) } },
  ];
  return { graph: { inputs: [{ name: 'x', shape: [-1, inF] }], outputs: ['y'], nodes }, tensors, metadata: {} } as Model;
}

function inputOf(B: number, inF: number) {
  let seed = 11;
  return { shape: [B, inF], data: Float32Array.from({ length: B * inF }, () => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed / 2147483648 - 0.5)) };
}

/** The plan's own choice (nothing forced), or null for the dense model. */
function planOf(id: string) {
  const sh = SHAPES.find((s) => s.id === id);
  if (!sh) return null;
  const p = adtnRuntimePlan(adtnLayout(adtnQubits(sh.out * sh.inF, sh.arity), sh.depth, sh.arity, 'brickwall'), sh.out, sh.inF);
  return { mode: p.mode, why: p.why, gemmPerRow: p.gemmPerRow, contractPerRow: p.contractPerRow, bonds: p.bonds };
}

/** One model, one path: load time and memory, in a fresh process. */
async function child(id: string, path: string): Promise<void> {
  await initKernels();
  const sh = id === 'dense' ? 'dense' : SHAPES.find((s) => s.id === id)!;
  const model = shapeModel(sh);
  const inF = sh === 'dense' ? 784 : sh.inF;
  const plan = planOf(id);
  if (sh !== 'dense') setAdtnRuntimeMode(path as AdtnRuntimeMode);
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const sess = Session.create(model);
  const loadMs = performance.now() - t0;
  const row = Array.from(sess.runBatch(inputOf(1, inF)).data);
  const peakRss = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ id, path, plan, loadMs, rssBefore, peakRss, row }));
}

/**
 * Latency of every model and path in one process, the runs interleaved round-robin (so that the
 * machine's load falls on all alike): median of 60 rounds at batch 1 and 15 at batch 32.
 */
async function latencyChild(): Promise<void> {
  await initKernels();
  const sessions: { id: string; path: string; sess: Session; inF: number }[] = [];
  sessions.push({ id: 'dense', path: 'gemm', sess: Session.create(shapeModel('dense')), inF: 784 });
  for (const sh of SHAPES) {
    for (const p of PATHS) {
      setAdtnRuntimeMode(p);
      sessions.push({ id: sh.id, path: p, sess: Session.create(shapeModel(sh)), inF: sh.inF });
    }
  }
  setAdtnRuntimeMode('auto');
  const res: Record<string, Record<string, number>> = {};
  for (const [B, rounds] of [[1, 60], [32, 15]] as const) {
    const xs = sessions.map((s) => inputOf(B, s.inF));
    const times = sessions.map(() => [] as number[]);
    for (let i = 0; i < 3; i++) sessions.forEach((s, j) => s.sess.runBatch(xs[j]!));
    for (let r = 0; r < rounds; r++) {
      sessions.forEach((s, j) => {
        const t1 = performance.now();
        s.sess.runBatch(xs[j]!);
        times[j]!.push(performance.now() - t1);
      });
    }
    sessions.forEach((s, j) => {
      const o = (res[`${s.id}/${s.path}`] ??= {});
      o[B] = median(times[j]!);
      o[`min${B}`] = Math.min(...times[j]!);
    });
  }
  process.stdout.write(JSON.stringify(res));
}

function runChild(id: string, path: string): Promise<any> {
  return new Promise((res, rej) => {
    const c = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...(id === 'latency' ? ['--latency-child'] : ['--child', id, path])], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', (code) => (code === 0 ? res(JSON.parse(out)) : rej(new Error(`child ${id} ${path}: exit code ${code}`))));
  });
}

async function part1() {
  const rows: any[] = [];
  rows.push(await runChild('dense', 'gemm'));
  for (const sh of SHAPES) {
    for (const p of PATHS) {
      const r = await runChild(sh.id, p);
      say(`part 1: ${sh.id} ${p}: load ${r.loadMs.toFixed(0)} ms, peak RSS ${(r.peakRss / 2 ** 20).toFixed(1)} MB`);
      rows.push(r);
    }
  }
  const lat = await runChild('latency', '');
  for (const r of rows) {
    r.batch1Ms = lat[`${r.id}/${r.path}`][1];
    r.batch32Ms = lat[`${r.id}/${r.path}`][32];
    r.batch1MinMs = lat[`${r.id}/${r.path}`]['min1'];
    r.batch32MinMs = lat[`${r.id}/${r.path}`]['min32'];
  }
  // agreement of the paths on the first output row, against the rebuild (the definition)
  for (const sh of SHAPES) {
    const ref = rows.find((r) => r.id === sh.id && r.path === 'rebuild').row as number[];
    const scale = Math.max(...ref.map(Math.abs));
    for (const r of rows.filter((x) => x.id === sh.id)) r.maxRelDiff = Math.max(...ref.map((v, i) => Math.abs(v - r.row[i]))) / scale;
  }
  // the measured constant: time per multiply-add of the contraction over the GEMM's, batch 1 (FC-2 and square)
  const ks = SHAPES.filter((s) => s.arity === 2).map((sh) => {
    const e = rows.find((r) => r.id === sh.id && r.path === 'expand'), c = rows.find((r) => r.id === sh.id && r.path === 'contract');
    return (c.batch1MinMs / c.plan.contractPerRow) / (e.batch1MinMs / e.plan.gemmPerRow);
  });
  return { rows, contractMacCost: ks, shapes: SHAPES };
}

// ---- part 2: convert + finetune by the CLI ----
function run(args: string[]): Promise<any> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'factorlite.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => (code === 0 ? res(JSON.parse(out)) : rej(new Error(`factorlite ${args.join(' ')}: exit code ${code}`))));
  });
}

async function part2(depth: number) {
  mkdirSync(WORK, { recursive: true });
  const ranks = join(WORK, `ranks${depth}.json`);
  writeFileSync(ranks, JSON.stringify({ '/f1/Gemm': [depth] }));
  const conv = join(WORK, `adtn${depth}.flm`);
  const tuned = join(WORK, `adtn${depth}-ft.flm`);
  const t0 = performance.now();
  const c = await run(['convert', FIXTURE, '-o', conv, '--method', 'adtn', '--ranks', ranks, '--hidden-bias', HIDDEN_BIAS, '--calib', 'fashion-mnist', '--json']);
  const convertMin = (performance.now() - t0) / 60000;
  const hidden = c.layers.find((l: any) => l.name === '/f1/Gemm');
  say(`depth ${depth}: fit error ${hidden.fitError ?? hidden.relError}${hidden.init === 'random' ? ' (captured nothing: the random start at the target variance instead)' : ''}, ${hidden.paramsAfter} params, ${convertMin.toFixed(1)} min`);
  const t1 = performance.now();
  const f = await run(['finetune', conv, '--teacher', FIXTURE, '--data', 'fashion-mnist', '--epochs', EPOCHS, '--batch', BATCH, ...(LIMIT ? ['--limit', LIMIT] : []), ...(LR ? ['--lr', LR] : []), '-o', tuned, '--json']);
  const finetuneMin = (performance.now() - t1) / 60000;
  return {
    depth, hiddenParams: hidden.paramsAfter, hiddenDense: hidden.paramsBefore, hiddenRatio: hidden.paramsBefore / hidden.paramsAfter,
    modelParams: c.params, modelRatio: c.ratio, fitSteps: ADTN_FIT_STEPS, fitError: hidden.fitError ?? hidden.relError, init: hidden.init ?? 'fit',
    accuracyAfterFit: f.accuracyBefore, accuracy: f.accuracy, teacherAccuracy: f.teacherAccuracy, samples: f.samples,
    trainSamples: f.trainSamples, epochs: f.epochs, batch: f.batch, convertMin, finetuneMin,
  };
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);
if (process.argv.includes('--latency-child')) {
  await latencyChild();
  process.exit(0);
}
if (process.argv.includes('--child')) {
  const i = process.argv.indexOf('--child');
  await child(process.argv[i + 1]!, process.argv[i + 2]!);
  process.exit(0);
}
const date = new Date().toISOString();
const load = loadavg()[0]!.toFixed(1);
say(`start ${date}, load ${load}`);
const p1 = await part1();
const loadEnd = loadavg()[0]!.toFixed(1);
const p2 = [];
if (!runtimeOnly) for (const d of DEPTHS) p2.push(await part2(d));
const L: string[] = [];
const mb = (b: number) => (b / 2 ** 20).toFixed(1);
const cmd = `nice -n 10 node --import tsx bench/adtn.ts${runtimeOnly ? ' --runtime-only' : ` --depths ${DEPTHS.join(',')} --epochs ${EPOCHS} --batch ${BATCH}${LIMIT ? ` --limit ${LIMIT}` : ''}${LR ? ` --lr ${LR}` : ''} --hidden-bias ${HIDDEN_BIAS}`}`;
L.push(`The runtime's ADTN paths (runtime/layers/adtnDense.ts adtnRuntimePlan), measured ${date.slice(0, 16)} UTC, load ${load} at the start and ${loadEnd} at the end of this part, by \`${cmd}\`. Load and memory: each row its own process (wasm kernels): a model of the ADTN hidden layer (brick-wall; start entries near ±1, gates near the identity), relu and a dense 10-way classifier, loaded with one path forced; \`rebuild\` is the previous runtime (the 2^Q state gate by gate in f64, then W). Load: \`Session.create\`; RSS: before the load, and the process's peak (\`resourceUsage().maxRSS\`); latency: every model and path in one further process, runs interleaved round-robin, median and (in brackets) fastest of 60 rounds at batch 1 and 15 at batch 32 (at this load a run over a millisecond is often preempted: the fastest is what the path costs, the median what the load added); diff: the first output row against \`rebuild\`'s, relative to its largest entry. * marks the plan's choice.`);
L.push('');
L.push('| model | hidden layer | path | load (ms) | RSS before load (MB) | peak RSS (MB) | batch 1 (ms) | batch 32 (ms) | diff vs rebuild |');
L.push('|---|---|---|---|---|---|---|---|---|');
for (const r of p1.rows) {
  const sh = p1.shapes.find((s) => s.id === r.id);
  const hidden = sh ? `adtn ${sh.out}x${sh.inF}, depth ${sh.depth}, arity ${sh.arity}` : 'dense 1024x784';
  const star = r.plan && r.plan.mode === r.path ? '*' : '';
  L.push(`| ${r.id === 'dense' ? 'FC-2 dense' : r.id} | ${hidden} | ${r.path}${star} | ${r.loadMs.toFixed(0)} | ${mb(r.rssBefore)} | ${mb(r.peakRss)} | ${r.batch1Ms.toFixed(3)} (${r.batch1MinMs.toFixed(3)}) | ${r.batch32Ms.toFixed(2)} (${r.batch32MinMs.toFixed(2)}) | ${r.maxRelDiff === undefined ? '-' : r.maxRelDiff.toExponential(1)} |`);
}
L.push('');
for (const sh of p1.shapes) {
  const pl = p1.rows.find((r: any) => r.id === sh.id && r.plan).plan;
  const e = p1.rows.find((r) => r.id === sh.id && r.path === 'expand'), c = p1.rows.find((r) => r.id === sh.id && r.path === 'contract');
  const dl = e.loadMs - c.loadMs, d1 = c.batch1MinMs - e.batch1MinMs;
  const d32 = c.batch32MinMs - e.batch32MinMs;
  const be = d1 > 0 && dl > 0
    ? `expanding pays back its longer load after ${Math.ceil(dl / d1)} batch-1 calls${d32 > 0 ? ` or ${Math.ceil(dl / d32)} batch-32 calls` : ''}`
    : d1 <= 0 ? `contracting is as fast or faster at batch 1 (${c.batch1MinMs.toFixed(3)} against ${e.batch1MinMs.toFixed(3)} ms) and loads ${dl > 0 ? 'sooner' : 'as fast or slower'}${d32 > 0 ? `; at batch 32 the GEMM is ahead (${e.batch32MinMs.toFixed(2)} against ${c.batch32MinMs.toFixed(2)} ms)` : ''}` : 'expanding loads as fast and runs faster';
  L.push(`- ${sh.id}: bonds up to ${Math.max(...pl.bonds)}; per input row the GEMM costs ${pl.gemmPerRow} multiply-adds, contracting ${pl.contractPerRow}; the plan takes \`${pl.mode}\` (${pl.why}); measured (fastest runs): ${be}.`);
}
L.push(`- The constant ADTN_CONTRACT_MAC_COST (${ADTN_CONTRACT_MAC_COST}): time per multiply-add of the contraction over the GEMM's at batch 1 (fastest runs), measured here as ${p1.contractMacCost.map((k: number) => k.toFixed(1)).join(' (fc2) and ')} (square).`);
if (p2.length > 0) L.push('');
if (p2.length > 0) L.push(`Accuracy (Fashion-MNIST test, ${p2[0]?.samples ?? '-'} images, the runtime): convert fits the network to the pretrained weight (at most ${ADTN_FIT_STEPS} Adam steps on the scale-free loss, given up a quarter of the way when the error is still above 0.99), falls back to the random start at the target variance when the fit's error stays above 0.9 (start column), hidden bias ${HIDDEN_BIAS === 'none' ? 'dropped' : 'kept'}; then \`finetune --teacher\` distils from the dense FC-2.`);
if (p2.length > 0) L.push('');
if (p2.length > 0) L.push('| depth | hidden params (bias incl.) | hidden layer compression | whole model | fit error | start | after fit | after finetune | dense FC-2 | gap (points) | train images x epochs | minutes (convert + finetune) |');
if (p2.length > 0) L.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of p2) {
  L.push(`| ${r.depth} | ${r.hiddenParams} | ${r.hiddenRatio.toFixed(1)}x | ${r.modelParams} (${r.modelRatio.toFixed(1)}x) | ${r.fitError.toFixed(4)} | ${r.init} | ${pct(r.accuracyAfterFit)} | ${pct(r.accuracy)} | ${pct(r.teacherAccuracy)} | ${(100 * (r.teacherAccuracy - r.accuracy)).toFixed(2)} | ${r.trainSamples} x ${r.epochs} | ${r.convertMin.toFixed(1)} + ${r.finetuneMin.toFixed(1)} |`);
}
writeBenchResults(OUT, runtimeOnly ? 'adtn-runtime' : 'adtn', { date, load, loadEnd, depths: DEPTHS, epochs: EPOCHS, batch: BATCH, limit: LIMIT || null, part1: { ...p1, rows: p1.rows.map(({ row: _row, ...r }: any) => r) }, part2: p2 }, L.join('\n'), readme);
