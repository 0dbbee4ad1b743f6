// Whole models: PyTorch-style shape chains, fused layers, pooling mixes and the real fixtures.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { importOnnxFile } from '../../../converter/onnx/index.js';
import { type Init, type ModelSpec, type NodeSpec, Rng, TOL, compareWithOrt, float } from './fixtures/build.js';

const rng = new Rng(99);
const OPSETS = [11, 13, 17];
import { FIXTURES } from '../../support/require.js';

function init(name: string, dims: number[], scale = 0.3): Init {
  return { name, dims, data: rng.array(dims.reduce((a, b) => a * b, 1), scale) };
}
const i64 = (name: string, data: (number | bigint)[], dims = [data.length]): Init => ({ name, dims, data, int64: true });
const i64Const = (name: string, data: (number | bigint)[], dims = [data.length]): NodeSpec =>
  ({ op: 'Constant', inputs: [], outputs: [name], attrs: { value: { kind: 'tensor', v: i64(`${name}_v`, data, dims) } } });

/** Unsqueeze with axes as an attribute (opset < 13) or a constant input. */
function unsqueeze(opset: number, input: string, output: string, axes: number[], extra: NodeSpec[]): NodeSpec {
  if (opset < 13) return { op: 'Unsqueeze', inputs: [input], outputs: [output], attrs: { axes } };
  extra.push(i64Const(`${output}_axes`, axes));
  return { op: 'Unsqueeze', inputs: [input, `${output}_axes`], outputs: [output] };
}

/** Conv -> Relu -> MaxPool -> x.view(x.size(0), -1) -> Gemm, as torch.onnx.export writes it. */
function viewNet(opset: number): ModelSpec {
  const pre: NodeSpec[] = [];
  const un = unsqueeze(opset, 'n', 'n1', [0], pre);
  return {
    opset,
    inputs: [{ name: 'input', shape: ['batch', 1, 12, 12] }],
    outputs: ['logits'],
    nodes: [
      { op: 'Conv', name: '/c1/Conv', inputs: ['input', 'c1.weight', 'c1.bias'], outputs: ['c1'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
      { op: 'Relu', name: '/Relu', inputs: ['c1'], outputs: ['r1'] },
      { op: 'MaxPool', name: '/MaxPool', inputs: ['r1'], outputs: ['p1'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
      { op: 'Shape', name: '/Shape', inputs: ['p1'], outputs: ['s'] },
      i64Const('idx0', [0], []),
      { op: 'Gather', name: '/Gather', inputs: ['s', 'idx0'], outputs: ['n'], attrs: { axis: 0 } },
      ...pre,
      un,
      i64Const('minus1', [-1]),
      { op: 'Concat', name: '/Concat', inputs: ['n1', 'minus1'], outputs: ['shape'], attrs: { axis: 0 } },
      { op: 'Reshape', name: '/Reshape', inputs: ['p1', 'shape'], outputs: ['flat'] },
      { op: 'Gemm', name: '/fc/Gemm', inputs: ['flat', 'fc.weight', 'fc.bias'], outputs: ['logits'], attrs: { transB: 1 } },
    ],
    inits: [init('c1.weight', [4, 1, 3, 3]), init('c1.bias', [4]), init('fc.weight', [10, 144]), init('fc.bias', [10])],
  };
}

t.test('PyTorch view(x.size(0), -1) chain folds to reshape [0, -1]', async (t) => {
  for (const opset of OPSETS) {
    const r = await compareWithOrt(viewNet(opset), { input: rng.tensor([5, 1, 12, 12]) });
    t.ok(r.diffs.logits! <= TOL, `opset ${opset} diff ${r.diffs.logits}`);
    const nodes = r.model.graph.nodes;
    t.same(nodes.map((n) => n.op), ['conv2d', 'relu', 'max_pool', 'reshape', 'dense']);
    t.same(nodes[3]!.attrs.shape, [0, -1]);
    t.same(r.model.graph.inputs, [{ name: 'input', shape: [-1, 1, 12, 12] }]);
    t.equal(r.model.metadata['source.params'], 4 * 9 + 4 + 1440 + 10);
  }
});

t.test('shape chains with Slice, Cast, Squeeze and arithmetic on dims', async (t) => {
  for (const opset of OPSETS) {
    const pre: NodeSpec[] = [];
    const sliceIns = opset < 13 ? ['s', 'st', 'en'] : ['s', 'st', 'en', 'ax'];
    const spec: ModelSpec = {
      opset,
      inputs: [{ name: 'x', shape: ['N', 2, 3, 4] }],
      outputs: ['y'],
      nodes: [
        { op: 'Shape', inputs: ['x'], outputs: ['s'] },
        i64Const('st', [1]), i64Const('en', [9223372036854775807n]), i64Const('ax', [0]),
        // dims 1.. -> [2, 3, 4]; their product 24 via Gather + Mul
        { op: 'Slice', inputs: sliceIns, outputs: ['tail'] },
        i64Const('g0', [0], []), i64Const('g1', [1], []), i64Const('g2', [2], []),
        { op: 'Gather', inputs: ['tail', 'g0'], outputs: ['d1'] },
        { op: 'Gather', inputs: ['tail', 'g1'], outputs: ['d2'] },
        { op: 'Gather', inputs: ['tail', 'g2'], outputs: ['d3'] },
        { op: 'Mul', inputs: ['d1', 'd2'], outputs: ['d12'] },
        { op: 'Mul', inputs: ['d12', 'd3'], outputs: ['d123'] },
        unsqueeze(opset, 'd123', 'd123u', [0], pre),
        // batch dim: Slice [0:1] of the shape, Cast to float and back
        i64Const('z', [0]), i64Const('one', [1]),
        { op: 'Slice', inputs: opset < 13 ? ['s', 'z', 'one'] : ['s', 'z', 'one', 'z'], outputs: ['bs'] },
        { op: 'Cast', inputs: ['bs'], outputs: ['bsf'], attrs: { to: 1 } },
        { op: 'Cast', inputs: ['bsf'], outputs: ['bsi'], attrs: { to: 7 } },
        ...pre,
        { op: 'Concat', inputs: ['bsi', 'd123u'], outputs: ['shape'], attrs: { axis: 0 } },
        { op: 'Reshape', inputs: ['x', 'shape'], outputs: ['flat'] },
        { op: 'Relu', inputs: ['flat'], outputs: ['y'] },
      ],
    };
    const r = await compareWithOrt(spec, { x: rng.tensor([3, 2, 3, 4]) });
    t.ok(r.diffs.y! <= TOL, `opset ${opset} diff ${r.diffs.y}`);
    t.same(r.model.graph.nodes.find((n) => n.op === 'reshape')?.attrs.shape, [0, 24]);
  }
});

t.test('constants: Constant nodes, Squeeze/Unsqueeze/Transpose on constants', async (t) => {
  for (const opset of OPSETS) {
    const pre: NodeSpec[] = [];
    const cbias: Init = init('cb', [3]);
    const spec: ModelSpec = {
      opset,
      inputs: [{ name: 'x', shape: ['N', 3, 4, 4] }],
      outputs: ['y'],
      nodes: [
        { op: 'Constant', inputs: [], outputs: ['half'], attrs: { value: { kind: 'tensor', v: { name: 'h', dims: [], data: new Float32Array([0.5]) } } } },
        { op: 'Mul', inputs: ['x', 'half'], outputs: ['xh'] },
        unsqueeze(opset, 'cb', 'cb3', [1, 2], pre),
        ...pre,
        { op: 'Add', inputs: ['xh', 'cb3'], outputs: ['xa'] },
        { op: 'Transpose', inputs: ['wT'], outputs: ['w'], attrs: { perm: [1, 0, 2, 3] } },
        { op: 'Conv', inputs: ['xa', 'w'], outputs: ['y'] },
      ],
      inits: [cbias, init('wT', [3, 5, 1, 1])],
    };
    const r = await compareWithOrt(spec, { x: rng.tensor([2, 3, 4, 4]) });
    t.ok(r.diffs.y! <= TOL, `opset ${opset} diff ${r.diffs.y}`);
    t.same(r.model.graph.nodes.map((n) => n.op), ['mul', 'add', 'conv2d']);
  }
});

t.test('a pooling mix: MaxPool(pads) -> AveragePool(ceil, include pad) -> GlobalAveragePool', async (t) => {
  for (const opset of OPSETS) {
    const spec: ModelSpec = {
      opset,
      inputs: [{ name: 'x', shape: ['N', 3, 15, 13] }],
      outputs: ['y'],
      nodes: [
        { op: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: ['c1'], attrs: { strides: [1, 1], pads: [1, 1, 1, 1] } },
        { op: 'MaxPool', inputs: ['c1'], outputs: ['m'], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } },
        { op: 'AveragePool', inputs: ['m'], outputs: ['a'], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 0, 1, 0], ceil_mode: 1, count_include_pad: 1 } },
        { op: 'AveragePool', inputs: ['a'], outputs: ['a2'], attrs: { kernel_shape: [2, 2], strides: [1, 1], ceil_mode: 1 } },
        { op: 'Conv', inputs: ['a2', 'w2'], outputs: ['c2'], attrs: { group: 4 } },
        { op: 'GlobalAveragePool', inputs: ['c2'], outputs: ['g'] },
        { op: 'Flatten', inputs: ['g'], outputs: ['f'] },
        { op: 'Gemm', inputs: ['f', 'fw', 'fb'], outputs: ['z'], attrs: { transB: 1, beta: float(0.5) } },
        { op: 'Softmax', inputs: ['z'], outputs: ['y'], attrs: { axis: 1 } },
      ],
      inits: [init('w1', [4, 3, 3, 3]), init('b1', [4]), init('w2', [8, 1, 1, 1]), init('fw', [6, 8]), init('fb', [6])],
    };
    const r = await compareWithOrt(spec, { x: rng.tensor([3, 3, 15, 13]) });
    t.ok(r.diffs.y! <= TOL, `opset ${opset} diff ${r.diffs.y}`);
  }
});

t.test('conv variants stacked: strided, dilated, grouped, depthwise, with BN after each', async (t) => {
  for (const opset of OPSETS) {
    const bn = (p: string, c: number): Init[] => [
      init(`${p}.g`, [c]), init(`${p}.b`, [c]), init(`${p}.m`, [c]),
      { name: `${p}.v`, dims: [c], data: Float32Array.from(rng.array(c), (v) => Math.abs(v) + 0.2) },
    ];
    const block = (i: string, w: string, o: string, attrs: NodeSpec['attrs']): NodeSpec[] => [
      { op: 'Conv', inputs: [i, w], outputs: [`${o}.c`], attrs },
      { op: 'BatchNormalization', inputs: [`${o}.c`, `${w}.g`, `${w}.b`, `${w}.m`, `${w}.v`], outputs: [`${o}.bn`] },
      { op: 'Clip', inputs: [`${o}.bn`, 'lo', 'hi'], outputs: [o] },
    ];
    const spec: ModelSpec = {
      opset,
      inputs: [{ name: 'x', shape: ['N', 4, 16, 16] }],
      outputs: ['y'],
      nodes: [
        ...block('x', 'a', 'h1', { strides: [2, 2], pads: [1, 1, 1, 1] }),
        ...block('h1', 'd', 'h2', { group: 8, pads: [1, 1, 1, 1] }),
        ...block('h2', 'g', 'h3', { group: 2, dilations: [2, 2], pads: [2, 2, 2, 2] }),
        ...block('h3', 'p', 'y', {}),
      ],
      inits: [
        init('a', [8, 4, 3, 3]), ...bn('a', 8), init('d', [8, 1, 3, 3]), ...bn('d', 8),
        init('g', [6, 4, 3, 3]), ...bn('g', 6), init('p', [5, 6, 1, 1]), ...bn('p', 5),
        { name: 'lo', dims: [], data: new Float32Array([0]) }, { name: 'hi', dims: [], data: new Float32Array([6]) },
      ],
    };
    const r = await compareWithOrt(spec, { x: rng.tensor([2, 4, 16, 16]) });
    t.ok(r.diffs.y! <= TOL, `opset ${opset} diff ${r.diffs.y}`);
    t.same(r.model.graph.nodes.map((n) => n.op), ['conv2d', 'clip', 'conv2d', 'clip', 'conv2d', 'clip', 'conv2d', 'clip']);
  }
});

t.test('MLP with MatMul+Add layers, BN1d and a Dropout', async (t) => {
  for (const opset of OPSETS) {
    const spec: ModelSpec = {
      opset,
      inputs: [{ name: 'x', shape: ['N', 12] }],
      outputs: ['y'],
      nodes: [
        { op: 'MatMul', inputs: ['x', 'w1'], outputs: ['m1'] },
        { op: 'Add', inputs: ['m1', 'b1'], outputs: ['a1'] },
        { op: 'BatchNormalization', inputs: ['a1', 'g', 'be', 'mu', 'va'], outputs: ['n1'] },
        { op: 'Tanh', inputs: ['n1'], outputs: ['t1'] },
        { op: 'Dropout', inputs: ['t1'], outputs: ['d1'] },
        { op: 'MatMul', inputs: ['d1', 'w2'], outputs: ['m2'] },
        { op: 'Add', inputs: ['b2', 'm2'], outputs: ['y'] },
      ],
      inits: [
        init('w1', [12, 16]), init('b1', [16]), init('g', [16]), init('be', [16]), init('mu', [16]),
        { name: 'va', dims: [16], data: Float32Array.from(rng.array(16), (v) => v * v + 0.1) },
        init('w2', [16, 3]), init('b2', [1, 3]),
      ],
    };
    const r = await compareWithOrt(spec, { x: rng.tensor([4, 12]) });
    t.ok(r.diffs.y! <= TOL, `opset ${opset} diff ${r.diffs.y}`);
    t.same(r.model.graph.nodes.map((n) => n.op), ['dense', 'tanh', 'dense']);
    t.same(r.model.graph.outputs, ['y']);
  }
});

for (const name of ['lenet5_fashion', 'mlp_fashion']) {
  t.test(`fixture ${name}.onnx matches onnxruntime on a batch of 8`, async (t) => {
    const bytes = readFileSync(`${FIXTURES}/${name}.onnx`);
    const data = new Float32Array(8 * 28 * 28);
    for (let i = 0; i < data.length; i++) data[i] = rng.uniform();
    const r = await compareWithOrt(bytes, { input: { shape: [8, 1, 28, 28], data } });
    t.ok(r.diffs.logits! <= TOL, `logits rel diff ${r.diffs.logits}`);
    t.same(r.ours.logits!.shape, [8, 10]);
    const model = importOnnxFile(`${FIXTURES}/${name}.onnx`);
    t.equal(model.metadata['source.model'], `${name}.onnx`);
    t.equal(model.metadata['source.producer'], 'pytorch 1.13.0');
    t.equal(model.metadata['source.opset'], 13);
    t.equal(model.metadata['source.params'], name === 'mlp_fashion' ? 814090 : 431080);
    t.ok([...model.tensors.keys()].every((k) => /^(c1|c2|f1|f2)\.(weight|bias)$/.test(k)), 'initializer names kept');
  });
}
