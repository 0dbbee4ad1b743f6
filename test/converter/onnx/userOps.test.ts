// What the sweep of users' models (scripts/userModelsSweep.ts) found missing, checked against
// onnxruntime-node: the ELU family, Softplus (with nn.Mish's x * tanh(softplus(x))) and Softsign,
// imported as chains of ops the runtime, the firmware and export already have; and exports made
// without dynamic_axes, whose traced batch becomes a free axis only when the graph is per sample.
import t from 'tap';
import { exportOnnx } from '../../../converter/export/index.js';
import { importOnnx } from '../../../converter/onnx/import.js';
import type { Tensor } from '../../../runtime/ir.js';
import { MCU_OPS } from '../../../runtime/plan/mcu.js';
import { Session } from '../../../runtime/session.js';
import { Rng, TOL, buildModel, compareWithOrt, float, relDiff, runOrt, type ModelSpec } from './fixtures/build.js';

// Large magnitudes on both sides: exp must neither overflow nor lose the linear part.
const EDGES = [-100, -30, -5, -1, -1e-3, 0, 1e-3, 0.5, 5, 30, 88, 100];
function input(n: number): Tensor {
  const r = new Rng(3).array(n - EDGES.length, 3);
  return { shape: [2, n / 2], data: Float32Array.from([...EDGES, ...r]) };
}

const cases: Array<[string, ModelSpec['nodes']]> = [
  ['Elu', [{ op: 'Elu', inputs: ['x'], outputs: ['y'], attrs: { alpha: float(0.7) } }]],
  ['Elu default', [{ op: 'Elu', inputs: ['x'], outputs: ['y'] }]],
  ['Selu', [{ op: 'Selu', inputs: ['x'], outputs: ['y'] }]],
  ['Selu attrs', [{ op: 'Selu', inputs: ['x'], outputs: ['y'], attrs: { alpha: float(1.2), gamma: float(0.9) } }]],
  ['Celu', [{ op: 'Celu', inputs: ['x'], outputs: ['y'], attrs: { alpha: float(1.5) } }]],
  ['Softplus', [{ op: 'Softplus', inputs: ['x'], outputs: ['y'] }]],
  ['Softsign', [{ op: 'Softsign', inputs: ['x'], outputs: ['y'] }]],
  ['Mish (x * tanh(softplus(x)))', [
    { op: 'Softplus', inputs: ['x'], outputs: ['s'] },
    { op: 'Tanh', inputs: ['s'], outputs: ['th'] },
    { op: 'Mul', inputs: ['x', 'th'], outputs: ['y'] },
  ]],
];

for (const [name, nodes] of cases) {
  t.test(`${name} agrees with onnxruntime, runs on the firmware's ops, exports`, async (t) => {
    const x = input(64);
    const spec: ModelSpec = { opset: 13, inputs: [{ name: 'x', shape: ['N', 32] }], outputs: ['y'], nodes };
    const { model, diffs, ours } = await compareWithOrt(spec, { x });
    t.ok(diffs['y']! <= TOL, `rel diff ${diffs['y']!.toExponential(2)}`);
    t.ok(ours['y']!.data.every(Number.isFinite), 'finite everywhere, also at +-100');
    const lacking = model.graph.nodes.filter((n) => !MCU_OPS.has(n.op)).map((n) => n.op);
    t.same(lacking, [], 'every op of the chain is in the firmware');
    const back = (await runOrt(exportOnnx(model, { opset: 13 }), { x })).y!;
    const de = relDiff(back, ours['y']!);
    t.ok(de <= TOL, `export run by onnxruntime: ${de.toExponential(2)}`);
  });
}

/** A conv net exported at a fixed batch of 2, flattened with the folded x.view(2, -1). */
function fixedConvNet(batch: number, flatten: number[]): Uint8Array {
  const rng = new Rng(11);
  return buildModel({
    opset: 13,
    inputs: [{ name: 'input', shape: [batch, 2, 5, 5] }],
    outputs: ['output'],
    inits: [
      { name: 'w', dims: [3, 2, 3, 3], data: rng.array(54, 0.3) },
      { name: 'b', dims: [3], data: rng.array(3, 0.1) },
      { name: 'shape', dims: [2], data: flatten, int64: true },
      { name: 'fw', dims: [4, 27], data: rng.array(108, 0.2) },
      { name: 'fb', dims: [4], data: rng.array(4, 0.1) },
    ],
    nodes: [
      { op: 'Conv', inputs: ['input', 'w', 'b'], outputs: ['c'], attrs: { kernel_shape: [3, 3] } },
      { op: 'Relu', inputs: ['c'], outputs: ['r'] },
      { op: 'Reshape', inputs: ['r', 'shape'], outputs: ['f'] },
      { op: 'Gemm', inputs: ['f', 'fw', 'fb'], outputs: ['output'], attrs: { transB: 1 } },
    ],
  });
}

t.test('a fixed-batch export (no dynamic_axes) runs at any batch, sample by sample as onnxruntime', async (t) => {
  for (const flatten of [[2, -1], [2, 27]]) {
    const bytes = fixedConvNet(2, flatten);
    const model = importOnnx(bytes);
    t.same(model.graph.inputs[0]!.shape, [-1, 2, 5, 5], `reshape to [${flatten}]: the traced batch became free`);
    const x = new Rng(4).tensor([6, 2, 5, 5]);
    const ours = Session.create(model).run({ input: x })['output']!;
    t.same(ours.shape, [6, 4]);
    for (let i = 0; i < 6; i += 2) {
      const chunk = { shape: [2, 2, 5, 5], data: x.data.slice(i * 50, (i + 2) * 50) };
      const theirs = (await runOrt(bytes, { input: chunk })).output!;
      const d = relDiff({ shape: [2, 4], data: ours.data.slice(i * 4, (i + 2) * 4) }, theirs);
      t.ok(d <= TOL, `samples ${i}..${i + 1}: ${d.toExponential(2)}`);
    }
  }
  const one = importOnnx(fixedConvNet(1, [1, -1]));
  t.same(one.graph.inputs[0]!.shape, [-1, 2, 5, 5], 'a batch of 1 too');
});

t.test('a graph that mixes the samples of its fixed batch keeps that batch', async (t) => {
  // Reshape [2, 4] -> [1, 8] puts both samples in one row: not a per-sample graph.
  const mix = buildModel({
    opset: 13, inputs: [{ name: 'input', shape: [2, 4] }], outputs: ['output'],
    inits: [{ name: 'shape', dims: [2], data: [1, -1], int64: true }],
    nodes: [{ op: 'Reshape', inputs: ['input', 'shape'], outputs: ['output'] }],
  });
  const mixed = importOnnx(mix);
  t.same(mixed.graph.inputs[0]!.shape, [2, 4]);
  t.throws(() => Session.create(mixed).run({ input: new Rng(1).tensor([3, 4]) }),
    { code: 'SESSION_BAD_INPUT', message: /expected \[2,4\] \(the model fixes its batch at 2: export it with a dynamic batch axis/ },
    'another batch is refused saying where the fixed batch comes from');
  // A mean over the batch axis.
  const mean = buildModel({
    opset: 13, inputs: [{ name: 'input', shape: [2, 4] }], outputs: ['output'],
    nodes: [{ op: 'ReduceMean', inputs: ['input'], outputs: ['output'], attrs: { axes: [0], keepdims: 1 } }],
  });
  const m = importOnnx(mean);
  t.same(m.graph.inputs[0]!.shape, [2, 4], 'ReduceMean over axis 0 keeps the batch fixed');
  const x = new Rng(2).tensor([2, 4]);
  const d = relDiff(Session.create(m).run({ input: x })['output']!, (await runOrt(mean, { input: x })).output!);
  t.ok(d <= TOL, `and still agrees with onnxruntime: ${d.toExponential(2)}`);
});

t.test('DepthToSpace (PixelShuffle), InstanceNormalization (GroupNorm), 1-D ConvTranspose agree with onnxruntime', async (t) => {
  const rng = new Rng(21);
  const specs: Array<[string, ModelSpec, number[]]> = [];
  for (const mode of ['DCR', 'CRD']) {
    specs.push([`DepthToSpace ${mode}`, {
      opset: 13, inputs: [{ name: 'x', shape: ['N', 8, 3, 5] }], outputs: ['y'],
      nodes: [{ op: 'DepthToSpace', inputs: ['x'], outputs: ['y'], attrs: { blocksize: 2, mode } }],
    }, [2, 8, 3, 5]]);
  }
  specs.push(['InstanceNormalization, per-channel scale and bias', {
    opset: 13, inputs: [{ name: 'x', shape: ['N', 3, 4, 5] }], outputs: ['y'],
    inits: [{ name: 's', dims: [3], data: Float32Array.from([0.5, 1.5, -2]) }, { name: 'b', dims: [3], data: Float32Array.from([0.1, 0, -0.3]) }],
    nodes: [{ op: 'InstanceNormalization', inputs: ['x', 's', 'b'], outputs: ['y'], attrs: { epsilon: float(1e-3) } }],
  }, [2, 3, 4, 5]]);
  specs.push(['ConvTranspose 1-D, stride 2, pads, output_padding, dilation, groups', {
    opset: 13, inputs: [{ name: 'x', shape: ['N', 4, 9] }], outputs: ['y'],
    inits: [{ name: 'w', dims: [4, 3, 3], data: rng.array(36, 0.5) }, { name: 'b', dims: [6], data: rng.array(6, 0.1) }],
    nodes: [{ op: 'ConvTranspose', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: { strides: [2], pads: [1, 0], output_padding: [1], dilations: [2], group: 2 } }],
  }, [3, 4, 9]]);
  for (const [name, spec, shape] of specs) {
    const x = new Rng(5).tensor(shape);
    const { model, diffs, ours } = await compareWithOrt(spec, { x });
    t.ok(diffs['y']! <= TOL, `${name}: rel diff ${diffs['y']!.toExponential(2)}`);
    // The firmware runs every op these import to, the PixelShuffle's transpose included.
    const lacking: string[] = [];
    t.same(model.graph.nodes.filter((n) => !MCU_OPS.has(n.op)).map((n) => n.op), lacking, `${name}: the firmware lacks only [${lacking}]`);
    const de = relDiff((await runOrt(exportOnnx(model, { opset: 13 }), { x })).y!, ours['y']!);
    t.ok(de <= TOL, `${name}: export run by onnxruntime: ${de.toExponential(2)}`);
  }
});
