// Issue 12, ADTN on FC-2 (/work/shared/fixtures/mlp_fashion.onnx, 784-1024-10).
//  part 1, runtime choice: the hidden layer's network at depth D rebuilt once at load (then one GEMM
//    per batch) against contracting the network for every batch (a full rebuild per batch: each
//    input's product needs every entry of W). Median of 3 runs each, batch 1 and 64, ratio reported.
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
import { adtnLayout, adtnParams, adtnQubits, adtnWeight } from '../runtime/layers/adtnDense.js';
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
/** Part 1 only (the runtime choice; a minute), results to bench/results/adtn-runtime.{json,md}. */
const runtimeOnly = process.argv.includes('--runtime-only');
const readme = process.argv.includes('--no-readme') ? null : arg('readme', join(ROOT, 'README.md'));
const say = (m: string) => process.stderr.write(`[adtn] ${m}\n`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// ---- part 1: rebuild once at load vs contract per batch ----
function part1(depth: number) {
  const out = 1024, inF = 784;
  const l = adtnLayout(adtnQubits(out * inF), depth, 2, 'brickwall');
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed / 2147483648 - 0.5);
  const start = Float32Array.from({ length: 2 * l.q }, rnd);
  const gates = Float32Array.from({ length: l.gates * 16 }, () => rnd() * 0.5);
  const rebuild: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    adtnWeight(l, start, gates, out, inF);
    rebuild.push(performance.now() - t0);
  }
  const model: Model = {
    graph: { inputs: [{ name: 'x', shape: [-1, inF] }], outputs: ['y'], nodes: [{ name: 'h', op: 'adtn_dense', inputs: ['x'], outputs: ['y'], attrs: { features: [out, inF], depth, arity: 2, pairing: 'brickwall' }, weights: { start: 's', gates: 'g' } }] },
    tensors: new Map([['s', { name: 's', dtype: 'f32', shape: [l.q, 2], data: start }], ['g', { name: 'g', dtype: 'f32', shape: [l.gates, 4, 4], data: gates }]]),
    metadata: {},
  };
  const t0 = performance.now();
  const sess = Session.create(model);
  const load = performance.now() - t0;
  const rows = [];
  for (const B of [1, 64]) {
    const x = { shape: [B, inF], data: Float32Array.from({ length: B * inF }, rnd) };
    sess.runBatch(x);
    const gemm: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t1 = performance.now();
      sess.runBatch(x);
      gemm.push(performance.now() - t1);
    }
    const perBatchLoad = median(gemm);
    const perBatchContract = median(rebuild) + perBatchLoad;
    rows.push({ batch: B, rebuildAtLoadMs: perBatchLoad, contractPerBatchMs: perBatchContract, ratio: perBatchContract / perBatchLoad });
  }
  return { depth, q: l.q, gates: l.gates, params: adtnParams(l), rebuildMs: median(rebuild), sessionLoadMs: load, rows };
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
const date = new Date().toISOString();
const load = loadavg()[0]!.toFixed(1);
say(`start ${date}, load ${load}`);
const p1 = DEPTHS.map(part1);
for (const p of p1) say(`part 1 depth ${p.depth}: rebuild ${p.rebuildMs.toFixed(0)} ms`);
const p2 = [];
if (!runtimeOnly) for (const d of DEPTHS) p2.push(await part2(d));
const L: string[] = [];
L.push(`ADTN on FC-2's hidden layer (1024 x 784 -> Q = 20 indices of dimension 2, arity-2 gates, brick-wall), measured ${date.slice(0, 16)} UTC, load ${load} at the start, by \`nice -n 10 node --import tsx bench/adtn.ts --depths ${DEPTHS.join(',')} --epochs ${EPOCHS} --batch ${BATCH}${LIMIT ? ` --limit ${LIMIT}` : ''}${LR ? ` --lr ${LR}` : ''} --hidden-bias ${HIDDEN_BIAS}${runtimeOnly ? ' --runtime-only' : ''}\`.`);
L.push('');
L.push('Runtime choice (per batch, ms, median): the weight rebuilt once at load, then a GEMM, against contracting the network for every batch.');
L.push('');
L.push('| depth | gates | params | rebuild (ms) | batch | rebuilt at load | contracted per batch | ratio |');
L.push('|---|---|---|---|---|---|---|---|');
for (const p of p1) for (const r of p.rows) L.push(`| ${p.depth} | ${p.gates} | ${p.params} | ${p.rebuildMs.toFixed(0)} | ${r.batch} | ${r.rebuildAtLoadMs.toFixed(2)} | ${r.contractPerBatchMs.toFixed(1)} | ${r.ratio.toFixed(0)}x |`);
if (p2.length > 0) L.push('');
if (p2.length > 0) L.push(`Accuracy (Fashion-MNIST test, ${p2[0]?.samples ?? '-'} images, the runtime): convert fits the network to the pretrained weight (at most ${ADTN_FIT_STEPS} Adam steps on the scale-free loss, given up a quarter of the way when the error is still above 0.99), falls back to the random start at the target variance when the fit's error stays above 0.9 (start column), hidden bias ${HIDDEN_BIAS === 'none' ? 'dropped' : 'kept'}; then \`finetune --teacher\` distils from the dense FC-2.`);
if (p2.length > 0) L.push('');
if (p2.length > 0) L.push('| depth | hidden params (bias incl.) | hidden layer compression | whole model | fit error | start | after fit | after finetune | dense FC-2 | gap (points) | train images x epochs | minutes (convert + finetune) |');
if (p2.length > 0) L.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of p2) {
  L.push(`| ${r.depth} | ${r.hiddenParams} | ${r.hiddenRatio.toFixed(1)}x | ${r.modelParams} (${r.modelRatio.toFixed(1)}x) | ${r.fitError.toFixed(4)} | ${r.init} | ${pct(r.accuracyAfterFit)} | ${pct(r.accuracy)} | ${pct(r.teacherAccuracy)} | ${(100 * (r.teacherAccuracy - r.accuracy)).toFixed(2)} | ${r.trainSamples} x ${r.epochs} | ${r.convertMin.toFixed(1)} + ${r.finetuneMin.toFixed(1)} |`);
}
writeBenchResults(OUT, runtimeOnly ? 'adtn-runtime' : 'adtn', { date, load, depths: DEPTHS, epochs: EPOCHS, batch: BATCH, limit: LIMIT || null, part1: p1, part2: p2 }, L.join('\n'), runtimeOnly ? null : readme);
