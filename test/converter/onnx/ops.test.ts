// Each supported op and variant, imported and run in our Session against onnxruntime.
import t, { type Test } from 'tap';
import { type Init, type ModelSpec, type NodeSpec, Rng, TOL, compareWithOrt, float } from './fixtures/build.js';

const rng = new Rng(1234);
const OPSETS = [11, 13, 17];

function init(name: string, dims: number[], scale = 0.5): Init {
  return { name, dims, data: rng.array(dims.reduce((a, b) => a * b, 1), scale) };
}

function i64(name: string, data: number[]): Init {
  return { name, dims: [data.length], data, int64: true };
}

/** One node from `x` to `y`, plus initializers. */
function single(opset: number, xShape: (number | string)[], op: string, inputs: string[], attrs: NodeSpec['attrs'], inits: Init[] = []): ModelSpec {
  return { opset, inputs: [{ name: 'x', shape: xShape }], outputs: ['y'], nodes: [{ op, inputs: ['x', ...inputs], outputs: ['y'], attrs }], inits };
}

async function expectMatch(t: Test, spec: ModelSpec, xShape: number[], what: string): Promise<void> {
  const { diffs } = await compareWithOrt(spec, { x: rng.tensor(xShape) });
  for (const [k, d] of Object.entries(diffs)) t.ok(d <= TOL, `${what}: output ${k} rel diff ${d}`);
}

t.test('Conv variants', async (t) => {
  const cases: [string, number[], number[], Record<string, number[] | number | string>, boolean][] = [
    // name, x shape, weight dims, attrs, bias
    ['plain 3x3 with bias', [2, 3, 9, 9], [4, 3, 3, 3], {}, true],
    ['asymmetric pads, no bias', [2, 3, 8, 7], [5, 3, 3, 2], { pads: [1, 0, 2, 1] }, false],
    ['strided', [2, 3, 11, 10], [4, 3, 3, 3], { strides: [2, 3], pads: [1, 1, 1, 1] }, true],
    ['dilated', [2, 2, 12, 12], [3, 2, 3, 3], { dilations: [2, 3], pads: [2, 1, 2, 1] }, true],
    ['grouped', [2, 4, 7, 7], [6, 2, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, true],
    ['depthwise', [2, 4, 8, 8], [4, 1, 3, 3], { group: 4, strides: [2, 2], pads: [1, 1, 1, 1] }, true],
    ['depthwise multiplier 2', [1, 3, 6, 6], [6, 1, 3, 3], { group: 3 }, false],
    ['auto_pad SAME_UPPER strided', [2, 3, 9, 8], [4, 3, 4, 3], { auto_pad: 'SAME_UPPER', strides: [2, 2] }, true],
    ['auto_pad SAME_LOWER', [2, 3, 9, 8], [4, 3, 4, 2], { auto_pad: 'SAME_LOWER' }, true],
    ['auto_pad VALID', [2, 3, 9, 8], [4, 3, 3, 3], { auto_pad: 'VALID', strides: [2, 1] }, false],
    ['1x1 with kernel_shape', [2, 5, 4, 4], [3, 5, 1, 1], { kernel_shape: [1, 1] }, true],
  ];
  for (const opset of OPSETS) {
    for (const [name, x, w, attrs, bias] of cases) {
      const inits = [init('w', w), ...(bias ? [init('b', [w[0]!])] : [])];
      const spec = single(opset, ['N', ...x.slice(1)], 'Conv', bias ? ['w', 'b'] : ['w'], attrs, inits);
      await expectMatch(t, spec, x, `opset ${opset} ${name}`);
    }
  }
});

t.test('Gemm variants', async (t) => {
  for (const opset of OPSETS) {
    const cases: [string, Record<string, unknown>, Init, Init | undefined][] = [
      ['transB=1', { transB: 1 }, init('B', [6, 5]), init('C', [6])],
      ['transB=0', {}, init('B', [5, 6]), init('C', [6])],
      ['alpha/beta, C [1,6]', { transB: 1, alpha: float(0.5), beta: float(2) }, init('B', [6, 5]), init('C', [1, 6])],
      ['alpha, transB=0, scalar C', { alpha: float(-1.5) }, init('B', [5, 6]), { name: 'C', dims: [], data: new Float32Array([0.75]) }],
      ['no C', { transB: 1 }, init('B', [6, 5]), undefined],
      ['float_data weights', { transB: 1 }, { ...init('B', [6, 5]), floatData: true }, { ...init('C', [6]), floatData: true }],
    ];
    for (const [name, attrs, B, C] of cases) {
      const spec = single(opset, ['N', 5], 'Gemm', C ? ['B', 'C'] : ['B'], attrs as never, C ? [B, C] : [B]);
      await expectMatch(t, spec, [3, 5], `opset ${opset} Gemm ${name}`);
    }
  }
});

t.test('MatMul: constant right operand, MatMul+Add, two activations', async (t) => {
  for (const opset of OPSETS) {
    await expectMatch(t, single(opset, ['N', 7], 'MatMul', ['W'], {}, [init('W', [7, 4])]), [3, 7], `opset ${opset} 2-D`);
    await expectMatch(t, single(opset, ['N', 3, 7], 'MatMul', ['W'], {}, [init('W', [7, 4])]), [2, 3, 7], `opset ${opset} 3-D`);
    const withAdd: ModelSpec = {
      opset, inputs: [{ name: 'x', shape: ['N', 7] }], outputs: ['y'],
      nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['h'] }, { op: 'Add', inputs: ['b', 'h'], outputs: ['y'] }],
      inits: [init('W', [7, 4]), init('b', [4])],
    };
    const r = await compareWithOrt(withAdd, { x: rng.tensor([3, 7]) });
    t.ok(r.diffs.y! <= TOL, `opset ${opset} MatMul+Add diff ${r.diffs.y}`);
    t.same(r.model.graph.nodes.map((n) => n.op), ['dense'], 'Add folded into the dense bias');
    const twoAct: ModelSpec = {
      opset, inputs: [{ name: 'x', shape: ['N', 3, 4] }], outputs: ['y'],
      nodes: [
        { op: 'Transpose', inputs: ['x'], outputs: ['xt'], attrs: { perm: [0, 2, 1] } },
        { op: 'MatMul', inputs: ['x', 'xt'], outputs: ['y'] },
      ],
    };
    const r2 = await compareWithOrt(twoAct, { x: rng.tensor([2, 3, 4]) });
    t.ok(r2.diffs.y! <= TOL, `opset ${opset} x @ x^T diff ${r2.diffs.y}`);
    t.same(r2.model.graph.nodes.map((n) => n.op), ['transpose', 'matmul']);
  }
});

t.test('Add, Mul, Sub, Div, Neg with constant and activation operands', async (t) => {
  for (const opset of OPSETS) {
    const x = ['N', 3, 4, 5];
    const cases: [string, ModelSpec][] = [
      ['Add per-channel const', single(opset, x, 'Add', ['c'], {}, [init('c', [3, 1, 1])])],
      ['Mul const first', { ...single(opset, x, 'Mul', [], {}, [init('c', [5])]), nodes: [{ op: 'Mul', inputs: ['c', 'x'], outputs: ['y'] }] }],
      ['Add scalar const', single(opset, x, 'Add', ['c'], {}, [{ name: 'c', dims: [], data: new Float32Array([2.5]) }])],
      ['Mul x*x', single(opset, x, 'Mul', ['x'], {})],
      ['Sub const', single(opset, x, 'Sub', ['c'], {}, [init('c', [4, 1])])],
      ['Sub const - x', { ...single(opset, x, 'Sub', [], {}, [init('c', [3, 1, 1])]), nodes: [{ op: 'Sub', inputs: ['c', 'x'], outputs: ['y'] }] }],
      ['Div const', single(opset, x, 'Div', ['c'], {}, [{ name: 'c', dims: [1], data: new Float32Array([4]) }])],
      ['Neg', single(opset, x, 'Neg', [], {})],
      ['Sub x - relu(x)', {
        opset, inputs: [{ name: 'x', shape: x }], outputs: ['y'],
        nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['r'] }, { op: 'Sub', inputs: ['x', 'r'], outputs: ['y'] }],
      }],
    ];
    for (const [name, spec] of cases) await expectMatch(t, spec, [2, 3, 4, 5], `opset ${opset} ${name}`);
  }
});

t.test('activations', async (t) => {
  for (const opset of OPSETS) {
    const x = ['N', 6];
    const cases: [string, ModelSpec][] = [
      ['Relu', single(opset, x, 'Relu', [], {})],
      ['LeakyRelu default', single(opset, x, 'LeakyRelu', [], {})],
      ['LeakyRelu 0.2', single(opset, x, 'LeakyRelu', [], { alpha: float(0.2) })],
      ['Sigmoid', single(opset, x, 'Sigmoid', [], {})],
      ['Tanh', single(opset, x, 'Tanh', [], {})],
      ['Clip min/max', single(opset, x, 'Clip', ['lo', 'hi'], {}, [
        { name: 'lo', dims: [], data: new Float32Array([-0.5]) }, { name: 'hi', dims: [], data: new Float32Array([0.7]) }])],
      ['Clip min only', single(opset, x, 'Clip', ['lo'], {}, [{ name: 'lo', dims: [], data: new Float32Array([0]) }])],
      ['Clip max only', single(opset, x, 'Clip', ['', 'hi'], {}, [{ name: 'hi', dims: [], data: new Float32Array([6]) }])],
      ['Clip none', single(opset, x, 'Clip', [], {})],
    ];
    for (const [name, spec] of cases) await expectMatch(t, spec, [4, 6], `opset ${opset} ${name}`);
  }
});

t.test('Softmax axes under both semantics', async (t) => {
  for (const opset of OPSETS) {
    await expectMatch(t, single(opset, ['N', 10], 'Softmax', [], {}), [3, 10], `opset ${opset} default axis 2-D`);
    await expectMatch(t, single(opset, ['N', 3, 5], 'Softmax', [], { axis: -1 }), [2, 3, 5], `opset ${opset} axis -1`);
    // axis 1 of a 3-D tensor: flattened [N, 15] softmax before opset 13, per-axis from 13.
    await expectMatch(t, single(opset, ['N', 3, 5], 'Softmax', [], { axis: 1 }), [2, 3, 5], `opset ${opset} axis 1`);
    await expectMatch(t, single(opset, ['N', 2, 3, 4], 'Softmax', [], { axis: 2 }), [2, 2, 3, 4], `opset ${opset} axis 2 of 4-D`);
  }
});

t.test('pooling', async (t) => {
  for (const opset of OPSETS) {
    const x = ['N', 3, 9, 10];
    const cases: [string, ModelSpec][] = [
      ['MaxPool 2x2', single(opset, x, 'MaxPool', [], { kernel_shape: [2, 2], strides: [2, 2] })],
      ['MaxPool pads', single(opset, x, 'MaxPool', [], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })],
      ['MaxPool ceil_mode', single(opset, x, 'MaxPool', [], { kernel_shape: [2, 3], strides: [2, 2], ceil_mode: 1 })],
      ['MaxPool dilations', single(opset, x, 'MaxPool', [], { kernel_shape: [2, 2], dilations: [2, 2], pads: [1, 0, 1, 0] })],
      ['MaxPool SAME_UPPER', single(opset, x, 'MaxPool', [], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' })],
      ['AveragePool', single(opset, x, 'AveragePool', [], { kernel_shape: [3, 3], strides: [2, 2] })],
      ['AveragePool pads exclude', single(opset, x, 'AveragePool', [], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })],
      ['AveragePool pads include', single(opset, x, 'AveragePool', [], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 })],
      ['AveragePool ceil_mode', single(opset, x, 'AveragePool', [], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 })],
      ['AveragePool ceil_mode + pads + include', single(opset, x, 'AveragePool', [], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: 1 })],
      ['GlobalAveragePool', single(opset, x, 'GlobalAveragePool', [], {})],
      ['ReduceMean [2, 3] keepdims', single(opset, x, 'ReduceMean', [], { axes: [2, 3] })],
      ['ReduceMean [-1, -2] no keepdims', single(opset, x, 'ReduceMean', [], { axes: [-1, -2], keepdims: 0 })],
    ];
    for (const [name, spec] of cases) await expectMatch(t, spec, [2, 3, 9, 10], `opset ${opset} ${name}`);
  }
});

t.test('shape ops on activations', async (t) => {
  for (const opset of OPSETS) {
    const x = ['N', 2, 3, 4];
    type Axes = { attrs: NodeSpec['attrs']; inputs: string[]; inits: Init[] };
    const axes = (a: number[]): Axes => (opset < 13 ? { attrs: { axes: a }, inputs: [], inits: [] }
      : { attrs: {}, inputs: ['axes'], inits: [i64('axes', a)] });
    const un = axes([1, 4]);
    const sq = axes([1]);
    const cases: [string, ModelSpec][] = [
      ['Flatten axis 1', single(opset, x, 'Flatten', [], {})],
      ['Flatten axis 2', single(opset, x, 'Flatten', [], { axis: 2 })],
      ['Flatten axis 0', single(opset, x, 'Flatten', [], { axis: 0 })],
      ['Reshape initializer', single(opset, x, 'Reshape', ['s'], {}, [i64('s', [0, 6, -1])])],
      ['Reshape to [-1, 12]', single(opset, x, 'Reshape', ['s'], {}, [i64('s', [-1, 12])])],
      ['Transpose', single(opset, x, 'Transpose', [], { perm: [0, 3, 1, 2] })],
      ['Unsqueeze', single(opset, x, 'Unsqueeze', un.inputs, un.attrs, un.inits)],
      ['Squeeze', { ...single(opset, ['N', 1, 3, 4], 'Squeeze', sq.inputs, sq.attrs, sq.inits) }],
      ['Identity', single(opset, x, 'Identity', [], {})],
      ['Dropout', {
        opset, inputs: [{ name: 'x', shape: x }], outputs: ['y'],
        nodes: [{ op: 'Dropout', inputs: ['x'], outputs: ['d'] }, { op: 'Relu', inputs: ['d'], outputs: ['y'] }],
      }],
    ];
    for (const [name, spec] of cases) {
      const shape = name === 'Squeeze' ? [2, 1, 3, 4] : [2, 2, 3, 4];
      await expectMatch(t, spec, shape, `opset ${opset} ${name}`);
    }
  }
});

t.test('BatchNormalization', async (t) => {
  const bn = (c: number): Init[] => [
    init('g', [c]), init('beta', [c]), init('mean', [c]),
    { name: 'var', dims: [c], data: Float32Array.from(rng.array(c), (v) => Math.abs(v) + 0.5) },
  ];
  for (const opset of OPSETS) {
    const alone = single(opset, ['N', 3, 4, 4], 'BatchNormalization', ['g', 'beta', 'mean', 'var'], { epsilon: float(1e-3) }, bn(3));
    const r = await compareWithOrt(alone, { x: rng.tensor([2, 3, 4, 4]) });
    t.ok(r.diffs.y! <= TOL, `opset ${opset} standalone BN diff ${r.diffs.y}`);
    t.same(r.model.graph.nodes.map((n) => n.op), ['mul', 'add']);
    t.same(r.model.tensors.get(r.model.graph.nodes[0]!.inputs[1]!)!.shape, [3, 1, 1]);

    const afterConv: ModelSpec = {
      opset, inputs: [{ name: 'x', shape: ['N', 2, 6, 6] }], outputs: ['y'],
      nodes: [
        { op: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['c'], attrs: { pads: [1, 1, 1, 1] } },
        { op: 'BatchNormalization', inputs: ['c', 'g', 'beta', 'mean', 'var'], outputs: ['bn'] },
        { op: 'Relu', inputs: ['bn'], outputs: ['y'] },
      ],
      inits: [init('w', [3, 2, 3, 3]), init('b', [3]), ...bn(3)],
    };
    const r2 = await compareWithOrt(afterConv, { x: rng.tensor([2, 2, 6, 6]) });
    t.ok(r2.diffs.y! <= TOL, `opset ${opset} conv+BN diff ${r2.diffs.y}`);
    t.same(r2.model.graph.nodes.map((n) => n.op), ['conv2d', 'relu'], 'BN folded into conv');

    const afterGemm: ModelSpec = {
      opset, inputs: [{ name: 'x', shape: ['N', 5] }], outputs: ['y'],
      nodes: [
        { op: 'Gemm', inputs: ['x', 'w'], outputs: ['h'], attrs: { transB: 1 } },
        { op: 'BatchNormalization', inputs: ['h', 'g', 'beta', 'mean', 'var'], outputs: ['y'] },
      ],
      inits: [init('w', [4, 5]), ...bn(4)],
    };
    const r3 = await compareWithOrt(afterGemm, { x: rng.tensor([3, 5]) });
    t.ok(r3.diffs.y! <= TOL, `opset ${opset} gemm+BN diff ${r3.diffs.y}`);
    t.same(r3.model.graph.nodes.map((n) => n.op), ['dense'], 'BN folded into dense');

    const shared: ModelSpec = {
      opset, inputs: [{ name: 'x', shape: ['N', 2, 5, 5] }], outputs: ['y', 'c'],
      nodes: [
        { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'] },
        { op: 'BatchNormalization', inputs: ['c', 'g', 'beta', 'mean', 'var'], outputs: ['y'] },
      ],
      inits: [init('w', [3, 2, 3, 3]), ...bn(3)],
    };
    const r4 = await compareWithOrt(shared, { x: rng.tensor([2, 2, 5, 5]) });
    t.ok(r4.diffs.y! <= TOL && r4.diffs.c! <= TOL, `opset ${opset} conv output also a graph output: ${JSON.stringify(r4.diffs)}`);
    t.same(r4.model.graph.nodes.map((n) => n.op), ['conv2d', 'mul', 'add'], 'BN kept when the conv output has another reader');

    const viaIdentity: ModelSpec = {
      opset, inputs: [{ name: 'x', shape: ['N', 2, 5, 5] }], outputs: ['y', 'r'],
      nodes: [
        { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'] },
        { op: 'Identity', inputs: ['c'], outputs: ['i'] },
        { op: 'BatchNormalization', inputs: ['i', 'g', 'beta', 'mean', 'var'], outputs: ['y'] },
        { op: 'Relu', inputs: ['c'], outputs: ['r'] },
      ],
      inits: [init('w', [3, 2, 3, 3]), ...bn(3)],
    };
    const r5 = await compareWithOrt(viaIdentity, { x: rng.tensor([2, 2, 5, 5]) });
    t.ok(r5.diffs.y! <= TOL && r5.diffs.r! <= TOL, `opset ${opset} conv read by Identity->BN and by Relu: ${JSON.stringify(r5.diffs)}`);
    t.same(r5.model.graph.nodes.map((n) => n.op), ['conv2d', 'mul', 'add', 'relu'], 'no fold through an Identity when the conv has another reader');
  }
});
