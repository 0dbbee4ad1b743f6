// dwlr (dwlr_conv2d): a depthwise convolution's kernel matrix [C, kh*kw] as u [C, r] v [r, kh*kw].
// Exact recovery of a kernel matrix of known rank; the session against a dense depthwise conv2d with
// the rebuilt kernels; the trainable layer's output against the session and its gradients against
// central finite differences; the ONNX export against onnxruntime-node; the rank search choosing it
// for the depthwise layer of a small depthwise-separable net (and no other method taking it).
import t from 'tap';
import { compressModel } from '../../../converter/compress.js';
import { dwlr, dwlrConv2d } from '../../../converter/methods/dwlr.js';
import { FACTOR_METHODS, methodFits } from '../../../converter/methods/index.js';
import type { Target } from '../../../converter/rank/target.js';
import { constant } from '../../../converter/train/tensor.js';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { dwlrKernel } from '../../../runtime/layers/dwlrConv2d.js';
import { Session } from '../../../runtime/session.js';
import { agree, chainModel, maxRelDiff, randArray, single, stored } from '../export/harness.js';
import { gradCheck, randParam } from '../train/gradcheck.js';

const C = 8;
const attrs = { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: C };

/** A [C, 9] kernel matrix of exact rank r (a product of random factors). */
function rankR(r: number): Float32Array {
  const a = randArray(C * r);
  const b = randArray(r * 9);
  const w = new Float32Array(C * 9);
  for (let c = 0; c < C; c++) for (let k = 0; k < 9; k++) {
    let s = 0;
    for (let j = 0; j < r; j++) s += a[c * r + j]! * b[j * 9 + k]!;
    w[c * 9 + k] = s;
  }
  return w;
}

function target(w: Float32Array, bias = C): Target {
  const node: GraphNode = { name: 'dw', op: 'conv2d', inputs: ['x'], outputs: ['y'], attrs, weights: { weight: 'dw.w' } };
  return { node, shape: { kind: 'conv', O: C, I: 1, kh: 3, kw: 3, depthwise: true }, weight: w, bias, denseParams: C * 9 + bias };
}

function decomposed(t0: Target, rank: number) {
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  const d = dwlr.decompose(t0, { method: 'dwlr', rank }, { seed: 0, quick: false, attrs: {}, add: (role, shape, data) => (out[role] = { shape, data }) });
  return { d, mix: out['u']!, basis: out['v']! };
}

t.test('a kernel matrix of rank 2 is recovered exactly at rank 2, and priced so', async (t) => {
  const w = rankR(2);
  const tg = target(w);
  const { d, mix, basis } = decomposed(tg, 2);
  t.equal(d.op, 'dwlr_conv2d');
  t.same(mix.shape, [C, 2]);
  t.same(basis.shape, [2, 3, 3]);
  t.ok(d.relError < 1e-5, `relError ${d.relError}`);
  const k = dwlrKernel(mix.data, basis.data, C, 2, 9);
  t.ok(maxRelDiff(k, w) < 1e-5, `rebuilt kernels ${maxRelDiff(k, w)}`);
  const c2 = dwlr.candidates(tg).find((c) => (c.spec as { rank: number }).rank === 2)!;
  t.ok(c2.err < 1e-5, 'rank 2 priced at no error');
  t.equal(c2.params, 2 * (C + 9) + C);
  const c1 = dwlr.candidates(tg).find((c) => (c.spec as { rank: number }).rank === 1)!;
  t.ok(c1.err > 1e-3, 'rank 1 is not exact');
  t.ok(decomposed(tg, 1).d.relError > 1e-3);
  t.ok(dwlr.candidates(tg).every((c) => c.params < tg.denseParams), 'only forms smaller than the dense kernels');
});

t.test('only dwlr takes a depthwise layer, and dwlr takes no other', async (t) => {
  const dw = target(rankR(3)).shape;
  const full = { kind: 'conv' as const, O: C, I: 1, kh: 3, kw: 3 };
  t.same(FACTOR_METHODS.filter((m) => methodFits(m, dw)).map((m) => m.name), ['dwlr']);
  t.notOk(FACTOR_METHODS.filter((m) => methodFits(m, full)).map((m) => m.name).includes('dwlr'));
});

function dwlrModel(rank: number, bias: boolean, a: GraphNode['attrs'] = attrs): Model {
  const w: Record<string, StoredTensor> = { u: stored('u', [C, rank]), v: stored('v', [rank, 3, 3]) };
  if (bias) w['bias'] = stored('b', [C]);
  return single('dwlr_conv2d', [C, 7, 6], w, a);
}

t.test('session: the same as a dense depthwise conv2d with the rebuilt kernels', async (t) => {
  for (const a of [attrs, { strides: [2, 1], pads: [0, 1, 1, 0], dilations: [1, 2], group: C }]) {
    const m = dwlrModel(3, true, a);
    const mix = m.tensors.get('u')!.data as Float32Array;
    const basis = m.tensors.get('v')!.data as Float32Array;
    const dense = single('conv2d', [C, 7, 6], { weight: { name: 'k', dtype: 'f32', shape: [C, 1, 3, 3], data: dwlrKernel(mix, basis, C, 3, 9) }, bias: m.tensors.get('b')! }, a);
    const x = { shape: [2, C, 7, 6], data: randArray(2 * C * 42) };
    const y = Session.create(m).runBatch(x);
    const yd = Session.create(dense).runBatch(x);
    t.same(y.shape, yd.shape);
    t.equal(maxRelDiff(y.data, yd.data), 0, 'bit-identical: the same kernel runs on the same kernels');
  }
});

t.test('trainable layer: the session\'s output, and gradients against finite differences', async (t) => {
  const m = dwlrModel(2, true);
  const w = (r: string) => m.tensors.get(r)!.data as Float32Array;
  const layer = dwlrConv2d(C, [3, 3], 2, attrs as never, { weights: { u: w('u'), v: w('v'), bias: w('b') } });
  t.same(Object.keys(layer.params).sort(), ['bias', 'u', 'v']);
  t.same(layer.attrs, attrs);
  const xd = randArray(C * 42);
  const y = layer.forward(constant(xd, [1, C, 7, 6]));
  const ys = Session.create(m).runBatch({ shape: [1, C, 7, 6], data: xd });
  t.ok(maxRelDiff(y.data, ys.data) < 1e-5, `train forward vs session ${maxRelDiff(y.data, ys.data)}`);
  const x = randParam([2, C, 5, 4], 7);
  const worst = gradCheck(t, 'dwlr', () => layer.forward(x), [x, layer.params['u']!, layer.params['v']!, layer.params['bias']!]);
  t.ok(worst < 1e-2);
});

t.test('ONNX export (MatMul, Reshape, Conv with group C) against onnxruntime-node', async (t) => {
  await agree(t, dwlrModel(3, true));
  await agree(t, dwlrModel(1, false, { strides: [2, 2], pads: [1, 0, 0, 1], dilations: [1, 1], group: C }));
});

t.test('compressModel: the depthwise layer of a separable block becomes dwlr_conv2d at the rank given or searched', async (t) => {
  const dwW = stored('dw.w', [C, 1, 3, 3]);
  dwW.data = rankR(2);
  const m = chainModel([C, 7, 6], [
    { op: 'conv2d', weights: { weight: dwW, bias: stored('dw.b', [C]) }, attrs },
    { op: 'relu' },
    { op: 'conv2d', weights: { weight: stored('pw.w', [16, C, 1, 1]) }, attrs: { group: 1 } },
  ]);
  const byRanks = compressModel(m, { method: 'svd', ranks: { n0_conv2d: [2] }, check: false });
  const dw = byRanks.model.graph.nodes[0]!;
  t.equal(dw.op, 'dwlr_conv2d');
  t.same(byRanks.model.tensors.get(dw.weights['u']!)!.shape, [C, 2]);
  const x = { shape: [1, C, 7, 6], data: randArray(C * 42) };
  t.ok(maxRelDiff(Session.create(byRanks.model).runBatch(x).data, Session.create(m).runBatch(x).data) < 1e-5, 'rank 2 of a rank-2 kernel matrix changes nothing');
  const searched = compressModel(m, { method: 'auto', ratio: 1.5, check: false });
  t.equal(searched.model.graph.nodes[0]!.op, 'dwlr_conv2d', 'the search picks dwlr for the depthwise layer');
  t.throws(() => compressModel(m, { method: 'svd', ranks: { n0_conv2d: { method: 'tucker2', ranks: [1, 1] } }, check: false }), /does not apply to a depthwise/);
});

t.test('TFLite export (DEPTHWISE_CONV_2D on the rebuilt kernels) then import computes the same outputs', async (t) => {
  const { exportTflite } = await import('../../../converter/export/tflite.js');
  const { importTflite } = await import('../../../converter/tflite/index.js');
  const { toNhwc } = await import('../tflite/models.js');
  const m = dwlrModel(2, true);
  const back = importTflite(exportTflite(m).bytes);
  const x = randArray(2 * C * 42);
  const want = Session.create(m).runBatch({ shape: [2, C, 7, 6], data: x });
  const got = Session.create(back).runBatch({ shape: [2, 7, 6, C], data: toNhwc(x, 2, C, 7, 6) });
  // The import is NHWC throughout: its output [2, OH, OW, C] against the runtime's NCHW one.
  const [n, c, oh, ow] = want.shape as [number, number, number, number];
  t.same(got.shape, [n, oh, ow, c], 'NHWC output');
  const w = toNhwc(want.data, n, c, oh, ow);
  t.ok(maxRelDiff(got.data, w) < 1e-5, `max rel. diff ${maxRelDiff(got.data, w)}`);
});
