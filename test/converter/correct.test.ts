// The per-channel output correction (converter/correct.ts) and its use in compressModel.
// Exact recovery: the source's conv1 [6, 3, 3, 3] has rank 2 and fc [5, 4] rank 2, so an SVD form
// holds them exactly; the "compressed" model is that exact form with every output channel scaled
// (0.5..2) and shifted, the drift a folded BatchNorm sees after factorisation. The correction must
// give back the source's outputs, computed by the runtime from the source model itself.
import t from 'tap';
import { compressModel, CompressError } from '../../converter/compress.js';
import { correctChannels, correctableLayers } from '../../converter/correct.js';
import type { GraphNode, Model, StoredTensor, Tensor } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import { initKernels } from '../../runtime/kernels/backend.js';
import { Rng } from './onnx/fixtures/build.js';

await initKernels();
const rng = new Rng(21);

function product(u: Float32Array, v: Float32Array, rows: number, r: number, cols: number): Float32Array {
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let k = 0; k < r; k++) for (let j = 0; j < cols; j++) w[i * cols + j]! += u[i * r + k]! * v[k * cols + j]!;
  return w;
}

const u1 = rng.array(6 * 2, 1);
const v1 = rng.array(2 * 27, 0.5);
const uf = rng.array(5 * 2, 1);
const vf = rng.array(2 * 4, 1);
const conv = { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 };

function source(): Model {
  const tensors = new Map<string, StoredTensor>();
  const put = (name: string, shape: number[], data: Float32Array) => tensors.set(name, { name, dtype: 'f32', shape, data });
  put('conv1.weight', [6, 3, 3, 3], product(u1, v1, 6, 2, 27));
  put('conv1.bias', [6], rng.array(6, 0.2));
  put('conv2.weight', [4, 6, 3, 3], rng.array(4 * 54, 0.3));
  put('conv2.bias', [4], rng.array(4, 0.1));
  put('fc.weight', [5, 4], product(uf, vf, 5, 2, 4));
  put('fc.bias', [5], rng.array(5, 0.1));
  const nodes: GraphNode[] = [
    { name: 'conv1', op: 'conv2d', inputs: ['x'], outputs: ['c1'], attrs: { ...conv }, weights: { weight: 'conv1.weight', bias: 'conv1.bias' } },
    { name: 'act1', op: 'relu', inputs: ['c1'], outputs: ['r1'], attrs: {}, weights: {} },
    { name: 'conv2', op: 'conv2d', inputs: ['r1'], outputs: ['c2'], attrs: { ...conv }, weights: { weight: 'conv2.weight', bias: 'conv2.bias' } },
    { name: 'act2', op: 'relu', inputs: ['c2'], outputs: ['r2'], attrs: {}, weights: {} },
    { name: 'pool', op: 'global_avg_pool', inputs: ['r2'], outputs: ['p'], attrs: {}, weights: {} },
    { name: 'flat', op: 'flatten', inputs: ['p'], outputs: ['f'], attrs: { axis: 1 }, weights: {} },
    { name: 'fc', op: 'dense', inputs: ['f'], outputs: ['y'], attrs: {}, weights: { weight: 'fc.weight', bias: 'fc.bias' } },
  ];
  return { graph: { inputs: [{ name: 'x', shape: [-1, 3, 8, 8] }], outputs: ['y'], nodes }, tensors, metadata: {} };
}

const scales1 = Float32Array.from({ length: 6 }, (_, i) => [0.5, 2, 0.8, 1.6, 1.1, 0.6][i]!);
const shifts1 = rng.array(6, 0.5);
const scalesF = Float32Array.from([1.7, 0.55, 1.2, 0.9, 1.4]);
const shiftsF = rng.array(5, 0.5);

/** conv1 and fc in SVD form holding the exact weights, each output channel scaled and shifted. */
function drifted(src: Model): Model {
  const tensors = new Map(src.tensors);
  const put = (name: string, shape: number[], data: Float32Array) => tensors.set(name, { name, dtype: 'f32', shape, data });
  const rows = (u: Float32Array, s: Float32Array, r: number) => u.map((x, i) => x * s[Math.floor(i / r)]!);
  put('conv1.u', [6, 2], rows(u1, scales1, 2));
  put('conv1.v', [2, 3, 3, 3], v1);
  put('conv1.bias', [6], src.tensors.get('conv1.bias')!.data.map((b, c) => (b as number) * scales1[c]! + shifts1[c]!) as Float32Array);
  put('fc.u', [5, 2], rows(uf, scalesF, 2));
  put('fc.v', [2, 4], vf);
  put('fc.bias', [5], src.tensors.get('fc.bias')!.data.map((b, c) => (b as number) * scalesF[c]! + shiftsF[c]!) as Float32Array);
  tensors.delete('conv1.weight');
  tensors.delete('fc.weight');
  const nodes = src.graph.nodes.map((n): GraphNode => n.name === 'conv1'
    ? { ...n, op: 'svd_conv2d', weights: { u: 'conv1.u', v: 'conv1.v', bias: 'conv1.bias' } }
    : n.name === 'fc' ? { ...n, op: 'svd_dense', weights: { u: 'fc.u', v: 'fc.v', bias: 'fc.bias' } } : n);
  return { graph: { ...src.graph, nodes }, tensors, metadata: {} };
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

const src = source();
const bad = drifted(src);
const x: Tensor = rng.tensor([96, 3, 8, 8]);
const test: Tensor = rng.tensor([64, 3, 8, 8]);
const want = Session.create(src).runBatch(test).data;

t.test('exact recovery of per-channel scale and shift drift (conv and dense)', async (t) => {
  t.same(correctableLayers(src, bad).map((n) => n.name), ['conv1', 'fc']);
  const before = maxRelDiff(Session.create(bad).runBatch(test).data, want);
  t.ok(before > 0.2, `the drifted model is off the source (${before.toFixed(3)})`);
  const badU = bad.tensors.get('conv1.u')!.data.slice();
  const badBias = bad.tensors.get('conv1.bias')!.data.slice();
  const { model, report } = correctChannels(src, bad, x, { chunk: 40 });
  const after = maxRelDiff(Session.create(model).runBatch(test).data, want);
  t.ok(after < 1e-4, `corrected outputs match the source on unseen inputs (max rel. diff ${after.toExponential(2)})`);
  t.equal(report.samples, 96);
  t.same(report.layers.map((l) => [l.name, l.op, l.channels, l.scaled]), [['conv1', 'svd_conv2d', 6, true], ['fc', 'svd_dense', 5, true]]);
  // The scales applied undo the drift: 1 / 2 .. 1 / 0.5 for conv1.
  t.ok(Math.abs(report.layers[0]!.scaleMin - 0.5) < 1e-3 && Math.abs(report.layers[0]!.scaleMax - 2) < 1e-3, `conv1 scales ${report.layers[0]!.scaleMin}..${report.layers[0]!.scaleMax}`);
  t.ok(report.layers[0]!.meanDrift > 0.01, `conv1 mean drift ${report.layers[0]!.meanDrift.toFixed(3)} sd`);
  // The input models are left as they were.
  t.same(bad.tensors.get('conv1.u')!.data, badU);
  t.same(bad.tensors.get('conv1.bias')!.data, badBias);
  t.equal(model.graph.nodes.length, src.graph.nodes.length, 'no node added');
});

t.test('affine mode recovers the same drift', async (t) => {
  const { model } = correctChannels(src, bad, x, { mode: 'affine' });
  const after = maxRelDiff(Session.create(model).runBatch(test).data, want);
  t.ok(after < 1e-4, `max rel. diff ${after.toExponential(2)}`);
});

t.test('a layer without a bias gets one; scales are clamped', async (t) => {
  const noBias = drifted(src);
  noBias.graph = { ...noBias.graph, nodes: noBias.graph.nodes.map((n) => (n.name === 'fc' ? { ...n, weights: { u: 'fc.u', v: 'fc.v' } } : n)) };
  const { model, report } = correctChannels(src, noBias, x, { maxScale: 1.5 });
  const fc = model.graph.nodes.find((n) => n.name === 'fc')!;
  t.equal(fc.weights['bias'], 'fc.bias', 'bias tensor named after the layer');
  t.equal(model.tensors.get('fc.bias')!.shape[0], 5);
  t.ok(report.layers[0]!.scaleMin >= 1 / 1.5 - 1e-6 && report.layers[0]!.scaleMax <= 1.5 + 1e-6, 'clamped to [1/1.5, 1.5]');
});

t.test('shift-only kinds: the channel means of a TT layer match the source on the calibration data', async (t) => {
  // The classifier's dense fc in TT form: its output index spans several cores, so no scale.
  const big = source();
  const { model: tt } = compressModel(big, { method: 'tt', ranks: { fc: [1] }, check: false });
  t.equal(tt.graph.nodes.find((n) => n.name === 'fc')!.op, 'tt_dense');
  const { model, report } = correctChannels(big, tt, x);
  t.equal(report.layers.find((r) => r.name === 'fc')!.scaled, false, 'TT takes the shift only');
  const mean = (m: Model) => {
    const y = Session.create(m).runBatch(x).data;
    const s = new Float64Array(5);
    for (let i = 0; i < y.length; i++) s[i % 5]! += y[i]! / 96;
    return s;
  };
  const a = mean(model);
  const b = mean(big);
  for (let c = 0; c < 5; c++) t.ok(Math.abs(a[c]! - b[c]!) < 1e-4 * (1 + Math.abs(b[c]!)), `channel ${c}: mean ${a[c]!.toFixed(5)} vs source ${b[c]!.toFixed(5)}`);
});

t.test('compressModel: tried with calibration, kept only when closer to the source', async (t) => {
  const m = source();
  const cal: Tensor = rng.tensor([128, 3, 8, 8]);
  const { report } = compressModel(m, { method: 'svd', ranks: { conv1: 1, conv2: 2, fc: 1 }, calibration: cal, check: false });
  const c = report.correction!;
  t.ok(c, 'correction tried');
  t.ok(c.before && c.after, 'compared on the calibration samples');
  const closer = c.before!.agreement !== c.after!.agreement ? c.after!.agreement! > c.before!.agreement! : c.after!.outputError < c.before!.outputError;
  t.equal(c.kept, closer, `kept = ${c.kept}: agreement ${c.before!.agreement} -> ${c.after!.agreement}, error ${c.before!.outputError.toFixed(4)} -> ${c.after!.outputError.toFixed(4)}`);
  const off = compressModel(m, { method: 'svd', ranks: { conv1: 1, conv2: 2, fc: 1 }, calibration: cal, check: false, correct: false });
  t.equal(off.report.correction, undefined, 'correct: false does not try');
  const none = compressModel(m, { method: 'svd', ranks: { conv1: 1, conv2: 2, fc: 1 }, check: false });
  t.equal(none.report.correction, undefined, 'no calibration data, no correction');
  const forced = compressModel(m, { method: 'svd', ranks: { conv1: 1, conv2: 2, fc: 1 }, calibration: cal, check: false, correct: true });
  t.equal(forced.report.correction?.kept, true, 'correct: true keeps it');
  t.same(forced.model.metadata['convert.correction'], { mode: 'moments', samples: 128, layers: ['conv1', 'conv2', 'fc'] });
  let err: unknown;
  try {
    compressModel(m, { method: 'svd', ranks: { conv1: 1 }, correct: true });
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof CompressError && err.code === 'BAD_OPTIONS', `correct: true without calibration: ${(err as Error)?.message}`);
});
