// The attribute space of the newer ops, one small ONNX graph each, against onnxruntime-node:
// Resize in every coordinate and nearest mode (up and down, nearest and linear), Pad in each
// mode (with a non-zero value, and negative pads that crop), ConvTranspose with groups,
// dilation, strides, pads and output_padding, Slice with negative steps, Split in equal parts,
// PRelu with one slope, HardSigmoid with its own alpha/beta, and what the .flm and export keep.
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { exportOnnx } from '../../../converter/export/index.js';
import { importOnnx } from '../../../converter/onnx/import.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { Session } from '../../../runtime/session.js';
import { type ModelSpec, type NodeSpec, Rng, TOL, buildModel, compareWithOrt, float, relDiff, runOrt, str } from './fixtures/build.js';

const rng = new Rng(18);
const f32 = (name: string, data: number[], dims = [data.length]) => ({ name, dims, data: Float32Array.from(data) });
const i64 = (name: string, data: number[], dims = [data.length]) => ({ name, dims, data, int64: true });

async function check(t: Tap, what: string, spec: ModelSpec, shape: number[]): Promise<void> {
  const x = rng.tensor(shape);
  const r = await compareWithOrt(spec, { x });
  t.ok(r.diffs.y! <= TOL, `${what}: ${r.diffs.y!.toExponential(2)}`);
  // through the file and back out to ONNX
  const stored = readFlm(writeFlm(r.model));
  const again = Session.create(stored).run({ x }).y!;
  const exported = (await runOrt(exportOnnx(stored, { opset: spec.opset ?? 13 }), { x })).y!;
  t.ok(relDiff(again, r.theirs.y!) <= TOL && relDiff(exported, r.theirs.y!) <= TOL, `${what}: .flm and export agree`);
}
type Tap = Parameters<Parameters<typeof t.test>[1]>[0];

function one(opset: number, node: NodeSpec, inShape: (number | string)[], inits: ModelSpec['inits'] = []): ModelSpec {
  return { opset, inputs: [{ name: 'x', shape: inShape }], outputs: ['y'], nodes: [node], inits };
}

t.test('Resize: coordinate modes, nearest modes, linear, up and down', async (t) => {
  const coords = ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn'];
  const nearest = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];
  for (const opset of [11, 13]) {
    for (const coord of coords) {
      for (const [mode, nm] of [...nearest.map((m) => ['nearest', m]), ['linear', 'floor']] as [string, string][]) {
        if (mode === 'linear' && coord === 'tf_half_pixel_for_nn') continue;
        for (const scales of [[1, 1, 2, 3], [1, 1, 0.5, 0.75], [1, 1, 1.5, 2.5]]) {
          const ins = opset < 13 ? ['x', 'roi', 'scales'] : ['x', '', 'scales'];
          const spec = one(opset, { op: 'Resize', inputs: ins, outputs: ['y'], attrs: { mode: str(mode), coordinate_transformation_mode: str(coord), nearest_mode: str(nm) } },
            ['N', 2, 4, 6], [f32('scales', scales), f32('roi', [], [0])]);
          await check(t, `opset ${opset} ${mode} ${coord} ${nm} x[${scales.slice(2)}]`, spec, [2, 2, 4, 6]);
        }
      }
    }
  }
  const sizes = one(13, { op: 'Resize', inputs: ['x', '', '', 'sizes'], outputs: ['y'], attrs: { mode: str('linear'), coordinate_transformation_mode: str('align_corners') } },
    [1, 3, 5, 7], [i64('sizes', [1, 3, 9, 4])]);
  await check(t, 'sizes [1, 3, 9, 4] linear align_corners', sizes, [1, 3, 5, 7]);
});

t.test('Pad: constant with a value, reflect, edge, negative pads', async (t) => {
  const cases: Array<[string, number[], number]> = [
    ['constant', [0, 0, 1, 2, 0, 0, 3, 0], 0.5],
    ['reflect', [0, 0, 2, 1, 0, 0, 1, 3], 0],
    ['edge', [0, 1, 2, 0, 0, 0, 0, 4], 0],
    ['constant', [0, 0, -1, 2, 0, 0, 1, -2], 0],
  ];
  for (const opset of [11, 13, 17]) {
    for (const [mode, pads, value] of cases) {
      const spec = one(opset, { op: 'Pad', inputs: ['x', 'pads', 'value'], outputs: ['y'], attrs: { mode: str(mode) } },
        ['N', 2, 5, 6], [i64('pads', pads), f32('value', [value], [])]);
      await check(t, `opset ${opset} ${mode} [${pads}] value ${value}`, spec, [2, 2, 5, 6]);
    }
  }
  // a zero pad before a MaxPool is not folded (the pool would skip the zeros)
  const maxAfter: ModelSpec = {
    opset: 13, inputs: [{ name: 'x', shape: ['N', 1, 5, 5] }], outputs: ['y'],
    nodes: [
      { op: 'Pad', inputs: ['x', 'pads'], outputs: ['p'] },
      { op: 'MaxPool', inputs: ['p'], outputs: ['y'], attrs: { kernel_shape: [3, 3], strides: [2, 2] } },
    ],
    inits: [i64('pads', [0, 0, 1, 1, 0, 0, 1, 1])],
  };
  // onnxruntime's default graph optimisation fuses this Pad into the MaxPool (wrong for negative
  // inputs), so the reference here is onnxruntime with optimisation off.
  const x = { shape: [2, 1, 5, 5], data: rng.tensor([2, 1, 5, 5]).data.map((v) => v - 3) };
  const bytes = buildModel(maxAfter);
  const sess = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled' });
  const want = (await sess.run({ x: new ort.Tensor('float32', x.data, x.shape) })).y!;
  const model = importOnnx(bytes);
  const got = Session.create(model).run({ x }).y!;
  const d = relDiff(got, { shape: [...want.dims], data: want.data as Float32Array });
  t.ok(d <= TOL, `zero pad + MaxPool on negative inputs: ${d}`);
  t.ok(Array.from(got.data).some((v) => v === 0), 'the padded zeros win some windows');
  t.same(model.graph.nodes.map((n) => n.op), ['pad', 'max_pool']);
});

t.test('ConvTranspose: groups, dilation, strides, pads, output_padding', async (t) => {
  const cases: Array<{ g: number; s: number[]; d: number[]; p: number[]; op: number[]; k: number[] }> = [
    { g: 1, s: [2, 2], d: [1, 1], p: [0, 0, 0, 0], op: [0, 0], k: [2, 2] },
    { g: 2, s: [2, 1], d: [1, 2], p: [1, 0, 0, 1], op: [1, 0], k: [3, 2] },
    { g: 4, s: [3, 3], d: [1, 1], p: [1, 1, 1, 1], op: [2, 1], k: [3, 3] },
  ];
  for (const c of cases) {
    const C = 4;
    const Og = 3;
    const w = { name: 'w', dims: [C, Og, c.k[0]!, c.k[1]!], data: rng.array(C * Og * c.k[0]! * c.k[1]!, 0.4) };
    const b = { name: 'b', dims: [Og * c.g], data: rng.array(Og * c.g, 0.4) };
    const spec = one(13, { op: 'ConvTranspose', inputs: ['x', 'w', 'b'], outputs: ['y'],
      attrs: { group: c.g, strides: c.s, dilations: c.d, pads: c.p, output_padding: c.op, kernel_shape: c.k } }, ['N', C, 4, 5], [w, b]);
    await check(t, `group ${c.g} strides [${c.s}] dilations [${c.d}] pads [${c.p}] output_padding [${c.op}]`, spec, [2, C, 4, 5]);
  }
});

t.test('Slice with negative steps, Split in equal parts, PRelu, HardSigmoid, LogSoftmax', async (t) => {
  const sliceSpec = one(13, { op: 'Slice', inputs: ['x', 'st', 'en', 'ax', 'sp'], outputs: ['y'] }, ['N', 3, 6, 7],
    [i64('st', [-1, 5]), i64('en', [-100, 0]), i64('ax', [3, 2]), i64('sp', [-2, -1])]);
  await check(t, 'Slice steps [-2, -1]', sliceSpec, [2, 3, 6, 7]);
  const split: ModelSpec = {
    opset: 13, inputs: [{ name: 'x', shape: ['N', 6, 4] }], outputs: ['y'],
    nodes: [
      { op: 'Split', inputs: ['x'], outputs: ['a', 'b', 'c'], attrs: { axis: 1 } },
      { op: 'Concat', inputs: ['c', 'a', 'b'], outputs: ['y'], attrs: { axis: 2 } },
    ],
  };
  await check(t, 'Split in three, concatenated in another order on another axis', split, [2, 6, 4]);
  await check(t, 'PRelu with one slope', one(13, { op: 'PRelu', inputs: ['x', 's'], outputs: ['y'] }, ['N', 3, 4], [f32('s', [0.3], [1])]), [2, 3, 4]);
  await check(t, 'HardSigmoid alpha 0.3 beta 0.4', one(13, { op: 'HardSigmoid', inputs: ['x'], outputs: ['y'], attrs: { alpha: float(0.3), beta: float(0.4) } }, ['N', 5]), [3, 5]);
  await check(t, 'HardSwish', one(14, { op: 'HardSwish', inputs: ['x'], outputs: ['y'] }, ['N', 5]), [3, 5]);
  for (const opset of [11, 13]) {
    await check(t, `LogSoftmax axis 1 of rank 3, opset ${opset}`, one(opset, { op: 'LogSoftmax', inputs: ['x'], outputs: ['y'], attrs: { axis: 1 } }, ['N', 4, 3]), [2, 4, 3]);
  }
});
