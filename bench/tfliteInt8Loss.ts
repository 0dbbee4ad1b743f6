// Where the int8 TFLite export of a dense chain loses top-1 agreement: a float64 simulation of
// TFLite's int8 arithmetic (per-tensor asymmetric activations, per-channel symmetric weights, exact
// biases) on the factorlite model, with one quantisation source switched on at a time (the input,
// the weights, each intermediate tensor, the logits) and then all of them, against the model in
// float on the Fashion-MNIST test set. The real files are measured in tfjs-tflite by bench/tflite.ts;
// this script says which tensor the disagreements come from and what each remedy buys.
//
//   node --import tsx bench/tfliteInt8Loss.ts [--model bench/out/tflite_mlp_fashion_x10.flm] [--limit 10000]
//
// Ranges are min/max over 1000 training images (the export's default clipping of inner tensors is
// not simulated). Chains of flatten / dense / svd_dense / relu only.
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { limitDataset, loadDataset } from '../converter/data/datasets.js';
import { logitsRange } from '../converter/export/tfliteLogits.js';
import { tensorToFloat32 } from '../runtime/format/dtype.js';
import { readFlm } from '../runtime/format/reader.js';
import type { Model } from '../runtime/ir.js';
import { arg, numberArg } from './lib/args.js';
import { writeBenchResults } from './readme.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const MODEL = resolve(arg('model', join(ROOT, 'bench', 'out', 'tflite_mlp_fashion_x10.flm')));
const LIMIT = numberArg('limit', '10000');
const CALIB = 1000;

interface Stage { name: string; w: Float64Array; out: number; inF: number; bias: Float64Array; relu: boolean }

/** The model as a list of affine maps (an svd_dense is two: v, then u with the bias). */
function chain(model: Model): Stage[] {
  const get = (name: string | undefined): { data: Float64Array; shape: number[] } => {
    const t = name === undefined ? undefined : model.tensors.get(name);
    if (!t) throw new Error(`missing tensor ${name}`);
    return { data: Float64Array.from(tensorToFloat32(t)), shape: [...t.shape] };
  };
  const stages: Stage[] = [];
  for (const n of model.graph.nodes) {
    if (n.op === 'flatten' || n.op === 'reshape' || n.op === 'identity') continue;
    if (n.op === 'relu') { stages[stages.length - 1]!.relu = true; continue; }
    const bias = (out: number): Float64Array => (n.weights.bias ? get(n.weights.bias).data : new Float64Array(out));
    if (n.op === 'dense') {
      const w = get(n.weights.weight);
      stages.push({ name: n.name, w: w.data, out: w.shape[0]!, inF: w.shape[1]!, bias: bias(w.shape[0]!), relu: false });
    } else if (n.op === 'svd_dense') {
      const v = get(n.weights.v);
      const u = get(n.weights.u);
      stages.push({ name: `${n.name}/v`, w: v.data, out: v.shape[0]!, inF: v.shape[1]!, bias: new Float64Array(v.shape[0]!), relu: false });
      stages.push({ name: `${n.name}/u`, w: u.data, out: u.shape[0]!, inF: u.shape[1]!, bias: bias(u.shape[0]!), relu: false });
    } else throw new Error(`op ${n.op} is outside this simulation (dense chains only)`);
  }
  return stages;
}

/** Per-row symmetric int8 weights, dequantised. */
function quantRows(s: Stage): Float64Array {
  const q = new Float64Array(s.w.length);
  for (let o = 0; o < s.out; o++) {
    let m = 0;
    for (let i = 0; i < s.inF; i++) m = Math.max(m, Math.abs(s.w[o * s.inF + i]!));
    const sc = m > 0 ? m / 127 : 1;
    for (let i = 0; i < s.inF; i++) q[o * s.inF + i] = Math.round(s.w[o * s.inF + i]! / sc) * sc;
  }
  return q;
}

type Range = [number, number];
/** TFLite's asymmetric int8 over [lo, hi] (0 inside), dequantised in place. */
function fakeQuant(x: Float64Array, [lo0, hi0]: Range): void {
  const lo = Math.min(lo0, 0);
  const hi = Math.max(hi0, 0);
  const scale = (hi - lo) / 255;
  const zp = Math.max(-128, Math.min(127, Math.round(-128 - lo / scale)));
  for (let i = 0; i < x.length; i++) x[i] = (Math.max(-128, Math.min(127, Math.round(x[i]! / scale) + zp)) - zp) * scale;
}

interface Variant { label: string; quantWeights: boolean; tensors: Set<number>; biasCorrect?: boolean; logitsTop1?: boolean; centred?: boolean }

/**
 * The chain with each linear output that feeds only another linear map (no relu between) centred per
 * channel on its calibration mid-range: bias_k -= c, bias_{k+1} += W_{k+1} c. The float result is
 * the same; the tensor between them gets one narrow per-tensor range instead of the union of
 * off-centre channel ranges.
 */
function centre(stages: Stage[], cal: Float64Array[], rows: number): Stage[] {
  const out = stages.map((s) => ({ ...s, bias: Float64Array.from(s.bias) }));
  for (let k = 0; k + 1 < out.length; k++) {
    const s = out[k]!;
    if (s.relu) continue;
    const next = out[k + 1]!;
    const t = cal[k + 1]!;
    for (let c = 0; c < s.out; c++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let r = 0; r < rows; r++) { const v = t[r * s.out + c]!; lo = Math.min(lo, v); hi = Math.max(hi, v); }
      const mid = (lo + hi) / 2;
      s.bias[c]! -= mid;
      for (let o = 0; o < next.out; o++) next.bias[o]! += next.w[o * next.inF + c]! * mid;
    }
  }
  return out;
}

/** Every tensor of the chain (0 = input, k = output of stage k) for n rows. */
function forward(stages: Stage[], weights: Float64Array[], biases: Float64Array[], x: Float32Array, n: number, quant: Map<number, Range>): Float64Array[] {
  const t0 = Float64Array.from(x.subarray(0, n * stages[0]!.inF));
  if (quant.has(0)) fakeQuant(t0, quant.get(0)!);
  const ts = [t0];
  stages.forEach((s, k) => {
    const a = ts[k]!;
    const y = new Float64Array(n * s.out);
    const w = weights[k]!;
    const b = biases[k]!;
    for (let r = 0; r < n; r++) for (let o = 0; o < s.out; o++) {
      let acc = b[o]!;
      const wo = o * s.inF;
      const ar = r * s.inF;
      for (let i = 0; i < s.inF; i++) acc += a[ar + i]! * w[wo + i]!;
      y[r * s.out + o] = s.relu && acc < 0 ? 0 : acc;
    }
    const q = quant.get(k + 1);
    if (q) fakeQuant(y, q);
    ts.push(y);
  });
  return ts;
}

function argmax(y: Float64Array, r: number, c: number): number {
  let best = 0;
  for (let j = 1; j < c; j++) if (y[r * c + j]! > y[r * c + best]!) best = j;
  return best;
}

/** What one variant needs of a chain: its float and rounded weights, biases, calibration values and ranges. */
function prepare(stages: Stage[], train: { images: Float32Array; count: number }) {
  const floatW = stages.map((s) => s.w);
  const floatB = stages.map((s) => s.bias);
  const cal = forward(stages, floatW, floatB, train.images, train.count, new Map());
  const ranges: Range[] = cal.map((t) => [t.reduce((m, v) => Math.min(m, v), Infinity), t.reduce((m, v) => Math.max(m, v), -Infinity)]);
  const qW = stages.map(quantRows);
  // Bias correction: the expected output shift (Wq - W) E[x] over the calibration inputs, taken off.
  const corrected = stages.map((s, k) => {
    const mean = new Float64Array(s.inF);
    const a = cal[k]!;
    for (let r = 0; r < train.count; r++) for (let i = 0; i < s.inF; i++) mean[i]! += a[r * s.inF + i]! / train.count;
    const b = Float64Array.from(s.bias);
    for (let o = 0; o < s.out; o++) for (let i = 0; i < s.inF; i++) b[o]! -= (qW[k]![o * s.inF + i]! - s.w[o * s.inF + i]!) * mean[i]!;
    return b;
  });
  const C = stages[stages.length - 1]!.out;
  const top1Range = logitsRange(Float32Array.from(cal[stages.length]!), train.count, C);
  return { stages, floatW, floatB, qW, corrected, ranges, top1Range };
}

async function main(): Promise<void> {
  const model = readFlm(readFileSync(MODEL));
  const stages = chain(model);
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), CALIB);
  const test = limitDataset(loadDataset('fashion-mnist', 'test'), LIMIT);
  const K = stages.length;
  const C = stages[K - 1]!.out;
  const plain = prepare(stages, train);
  const centred = prepare(centre(stages, forward(stages, plain.floatW, plain.floatB, train.images, train.count, new Map()), train.count), train);
  const ref = forward(stages, plain.floatW, plain.floatB, test.images, test.count, new Map())[K]!;
  const all = new Set(Array.from({ length: K + 1 }, (_, k) => k));
  const name = (k: number): string => (k === 0 ? 'input' : k === K ? 'logits' : `${stages[k - 1]!.name} output`);
  const range = (r: Range): string => `[${r.map((v) => v.toFixed(2)).join(', ')}]`;
  const variants: Variant[] = [
    { label: 'weights only (int8 per channel)', quantWeights: true, tensors: new Set() },
    ...[...all].map((k) => ({ label: `${name(k)} only ${range(plain.ranges[k]!)}`, quantWeights: false, tensors: new Set([k]) })),
    { label: 'everything (min/max ranges, as before)', quantWeights: true, tensors: all },
    { label: 'everything but the logits', quantWeights: true, tensors: new Set([...all].filter((k) => k !== K)) },
    { label: `everything, logits on the top-1 range ${range(plain.top1Range)}`, quantWeights: true, tensors: all, logitsTop1: true },
    { label: 'everything, bias correction', quantWeights: true, tensors: all, biasCorrect: true },
    { label: 'everything, top-1 logits range + bias correction', quantWeights: true, tensors: all, logitsTop1: true, biasCorrect: true },
    ...[...all].filter((k) => k > 0 && k < K && !stages[k - 1]!.relu).map((k) => ({ label: `centred: ${name(k)} only ${range(centred.ranges[k]!)}`, quantWeights: false, tensors: new Set([k]), centred: true })),
    { label: 'centred: everything', quantWeights: true, tensors: all, centred: true },
    { label: `centred: everything, top-1 logits range + bias correction (the export's default)`, quantWeights: true, tensors: all, logitsTop1: true, biasCorrect: true, centred: true },
  ];
  const rows = [];
  for (const v of variants) {
    const p = v.centred ? centred : plain;
    const quant = new Map<number, Range>();
    for (const k of v.tensors) quant.set(k, k === K && v.logitsTop1 ? p.top1Range : p.ranges[k]!);
    const y = forward(p.stages, v.quantWeights ? p.qW : p.floatW, v.biasCorrect ? p.corrected : p.floatB, test.images, test.count, quant)[K]!;
    let disagree = 0;
    let tied = 0;
    for (let r = 0; r < test.count; r++) {
      if (argmax(y, r, C) !== argmax(ref, r, C)) disagree++;
      const row = Array.from(y.subarray(r * C, (r + 1) * C));
      const m = Math.max(...row);
      if (row.filter((e) => e === m).length > 1) tied++;
    }
    rows.push({ variant: v.label, disagreements: disagree, agreement: 1 - disagree / test.count, tiedRows: tied });
    process.stderr.write(`${JSON.stringify(rows[rows.length - 1])}\n`);
  }
  const md = [
    `Simulated int8 (float64, TFLite's rounding) of \`${relative(ROOT, MODEL)}\` (${stages.map((s) => `${s.name} ${s.inF}→${s.out}`).join(', ')}),`,
    `against the same model in float on ${test.count} Fashion-MNIST test images; ranges from ${CALIB} training images (min/max).`,
    '',
    '"Centred": each linear output read only by another linear map (the rank-r bottleneck) moved by its per-channel mid-range, folded into the two biases (converter/export/tfliteCentre.ts).',
    '',
    '| quantised | disagreements | agreement | rows with tied top logits |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.variant} | ${r.disagreements} | ${(100 * r.agreement).toFixed(2)}% | ${r.tiedRows} |`),
  ].join('\n');
  writeBenchResults(join(ROOT, 'bench', 'results'), 'tflite-int8-loss', { date: new Date().toISOString(), model: relative(ROOT, MODEL), rows }, md, null);
  process.stdout.write(`${md}\n`);
}

await main();
