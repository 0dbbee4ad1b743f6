// Every non-parametric op, exported and run in onnxruntime against the factorlite runtime.
import onnxProto from 'onnx-proto';
import t from 'tap';
import { exportOnnx } from '../../../converter/export/index.js';
import { agree, chainModel, stored, type NodeSpec } from './harness.js';

const { onnx } = onnxProto;
const img = [3, 7, 6];

const cases: [string, number[], NodeSpec[]][] = [
  ['relu', img, [{ op: 'relu' }]],
  ['leaky_relu', img, [{ op: 'leaky_relu', attrs: { alpha: 0.2 } }]],
  ['leaky_relu default alpha', img, [{ op: 'leaky_relu' }]],
  ['sigmoid', img, [{ op: 'sigmoid' }]],
  ['tanh', img, [{ op: 'tanh' }]],
  ['clip min and max', img, [{ op: 'clip', attrs: { min: -0.1, max: 0.2 } }]],
  ['clip max only', img, [{ op: 'clip', attrs: { max: 0.1 } }]],
  ['clip min only', img, [{ op: 'clip', attrs: { min: 0 } }]],
  ['max_pool', img, [{ op: 'max_pool', attrs: { kernel: [2, 2], strides: [2, 2] } }]],
  ['max_pool pads, ceil, dilation', img, [{ op: 'max_pool', attrs: { kernel: [3, 2], strides: [2, 1], pads: [1, 0, 1, 1], dilations: [1, 2], ceil_mode: 1 } }]],
  ['avg_pool', img, [{ op: 'avg_pool', attrs: { kernel: [2, 2], strides: [2, 2] } }]],
  ['avg_pool pads excluded', img, [{ op: 'avg_pool', attrs: { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } }]],
  ['avg_pool pads included, ceil', img, [{ op: 'avg_pool', attrs: { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1, ceil_mode: 1 } }]],
  ['global_avg_pool', img, [{ op: 'global_avg_pool' }]],
  ['flatten', img, [{ op: 'flatten', attrs: { axis: 1 } }]],
  ['flatten axis 2', img, [{ op: 'flatten', attrs: { axis: 2 } }]],
  ['reshape with 0 and -1', img, [{ op: 'reshape', attrs: { shape: [0, -1, 6] } }]],
  ['transpose', img, [{ op: 'transpose', attrs: { perm: [0, 2, 3, 1] } }]],
  ['softmax last axis', [10], [{ op: 'softmax', attrs: { axis: -1 } }]],
  ['softmax middle axis', [4, 5], [{ op: 'softmax', attrs: { axis: 1 } }]],
  ['add a stored constant', img, [{ op: 'add', inputs: ['v_prev', 'c'], constants: [stored('c', [3, 1, 1])] }]],
  ['mul a stored constant', img, [{ op: 'mul', inputs: ['c', 'v_prev'], constants: [stored('c', [7, 6], 'f16')] }]],
  ['add two activations', img, [{ op: 'relu' }, { op: 'add', inputs: ['x', 'v0'] }]],
  ['mul two activations', img, [{ op: 'sigmoid' }, { op: 'mul', inputs: ['v0', 'x'] }]],
  ['matmul of two activations', [4, 3], [{ op: 'transpose', attrs: { perm: [0, 2, 1] } }, { op: 'matmul', inputs: ['x', 'v0'] }]],
  ['identity', img, [{ op: 'identity' }]],
  ['a small CNN', [1, 12, 12], [
    { op: 'conv2d', weights: { weight: stored('w1', [4, 1, 3, 3]), bias: stored('b1', [4]) }, attrs: { pads: [1, 1, 1, 1] } },
    { op: 'relu' },
    { op: 'max_pool', attrs: { kernel: [2, 2], strides: [2, 2] } },
    { op: 'cp_conv2d', weights: { a_in: stored('ai', [3, 4]), k_h: stored('kh', [3, 3]), k_w: stored('kw', [3, 3]), a_out: stored('ao', [6, 3]) } },
    { op: 'tanh' },
    { op: 'flatten' },
    { op: 'tt_dense', weights: { 'core.0': stored('g0', [1, 2, 6, 2]), 'core.1': stored('g1', [2, 5, 16, 1]) }, attrs: { out_modes: [2, 5], in_modes: [6, 16] } },
    { op: 'softmax', attrs: { axis: 1 } },
  ]],
];

/** `v_prev` in a spec's inputs stands for the chain's input (the first node reads x). */
function build(sample: number[], specs: NodeSpec[]) {
  return chainModel(sample, specs.map((s) => (s.inputs ? { ...s, inputs: s.inputs.map((i) => (i === 'v_prev' ? 'x' : i)) } : s)));
}

for (const [name, sample, specs] of cases) {
  t.test(name, async (t) => {
    const m = build(sample, specs);
    await agree(t, m);
    if (specs.some((s) => s.op === 'softmax' || s.op === 'clip')) await agree(t, m, { opset: 11 });
  });
}

t.test('a stored constant becomes an initializer under its own name', async (t) => {
  const m = build(img, [{ op: 'add', inputs: ['x', 'bias_c'], constants: [stored('bias_c', [3, 1, 1], 'i8')] }]);
  const g = onnx.ModelProto.decode(exportOnnx(m)).graph!;
  t.same(g.initializer.map((i) => i.name), ['bias_c']);
  t.same(g.node[0]!.input, ['x', 'bias_c']);
  t.equal(g.input[0]!.type!.tensorType!.shape!.dim![0]!.dimParam, 'batch');
  t.same(g.input[0]!.type!.tensorType!.shape!.dim!.slice(1).map((d) => Number(d.dimValue)), img);
});

t.test('an unknown value is a typed error', async (t) => {
  const m = build(img, [{ op: 'add', inputs: ['x', 'nowhere'] }]);
  t.throws(() => exportOnnx(m), { code: 'EXPORT_BAD_MODEL' });
});
