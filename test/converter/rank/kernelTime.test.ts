// --prefer speed's measured prices (converter/rank/kernelTime.ts): each form of a layer is built
// as the one-node model the runtime runs (checked here against the dense layer it stands for, on
// the reference kernels, with factors that rebuild that weight exactly), timed on the wasm
// kernels, once per distinct shape; a form it cannot build falls back to the cost model; and
// compressModel reports measured compute only when it timed. No assertion reads a time's value
// beyond its being a positive number.
import t from 'tap';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { numel } from '../../../runtime/ir.js';
import { referenceBackend, wasmBackend } from '../../../runtime/kernels/backend.js';
import { Session } from '../../../runtime/session.js';
import { formNode, kernelTimer } from '../../../converter/rank/kernelTime.js';
import { formCost } from '../../../converter/rank/compute.js';
import type { Target } from '../../../converter/rank/target.js';
import { compressModel } from '../../../converter/compress.js';

const conv = { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 };
const O = 8, I = 6, H = 10, W = 10;
const node: GraphNode = { name: 'c', op: 'conv2d', inputs: ['in'], outputs: ['out'], attrs: conv, weights: { weight: 'c.w' } };
const weight = new Float32Array(O * I * 9).map((_, i) => Math.sin(i * 0.91));
const target: Target = { node, shape: { kind: 'conv', O, I, kh: 3, kw: 3 }, weight, bias: 0, denseParams: weight.length };
const sample = [I, H, W];

function runOne(n: GraphNode, tensors: Map<string, StoredTensor>, x: Float32Array): Float32Array {
  const m: Model = { graph: { inputs: [{ name: 'x', shape: [1, ...sample] }], outputs: ['y'], nodes: [n] }, tensors, metadata: {} };
  const s = Session.create(m, { backend: referenceBackend, retainWeights: false });
  return s.run({ x: { shape: [1, ...sample], data: x } }).y!.data;
}

t.test('the timed one-node model is the layer the runtime runs', async (t) => {
  const x = new Float32Array(numel(sample)).map((_, i) => Math.cos(i * 0.3));
  const dense = formNode(target, { method: 'dense' })!;
  t.same(dense.roles, { weight: [O, I, 3, 3] });
  const ref = runOne(dense.node, new Map([['weight', { name: 'weight', dtype: 'f32', shape: [O, I, 3, 3], data: weight }]]), x);
  t.equal(ref.length, O * H * W, 'same-padded 3x3: O x H x W outputs');
  // svd at full rank (O = 8 <= I*9): u [O, O] = identity, v [O, I*9] = the weight; the form's node gives the dense output.
  const svd = formNode(target, { method: 'svd', rank: O })!;
  t.equal(svd.node.op, 'svd_conv2d');
  t.same(svd.node.attrs, conv, 'the layer\'s conv attributes carried over');
  const tensors = new Map<string, StoredTensor>();
  for (const [role, shape] of Object.entries(svd.roles)) {
    const n = numel(shape);
    const data = shape[1] === O && shape[0] === O ? new Float32Array(n).map((_, i) => (i % (O + 1) === 0 ? 1 : 0)) : n === weight.length ? weight : new Float32Array(n);
    tensors.set(role, { name: role, dtype: 'f32', shape: [...shape], data });
  }
  t.same(Object.values(svd.roles).map(numel).sort((a, b) => a - b), [O * O, weight.length], 'svd roles: u [O, r] and v [r, I*kh*kw]');
  const y = runOne(svd.node, tensors, x);
  let diff = 0;
  for (let i = 0; i < y.length; i++) diff = Math.max(diff, Math.abs(y[i]! - ref[i]!));
  t.ok(diff < 1e-4, `svd form at full rank matches the dense layer (max |diff| ${diff})`);
});

t.test('forms are timed on the kernels once per shape; unknown forms fall back to the model', async (t) => {
  const timer = kernelTimer(await wasmBackend(), { runs: 3, warmup: 1 });
  const specs = [{ method: 'dense' as const }, { method: 'cp' as const, rank: 5 }, { method: 'svd' as const, rank: 3 }, { method: 'tucker2' as const, ranks: [4, 4] as [number, number] }];
  for (const spec of specs) {
    const us = timer(target, spec, sample);
    t.ok(us !== undefined && Number.isFinite(us) && us > 0, `${spec.method}: timed (${us} µs)`);
  }
  t.equal(timer.timed(), specs.length, 'one timing per distinct form');
  timer(target, { method: 'cp', rank: 5 }, sample);
  t.equal(timer.timed(), specs.length, 'the same form again comes from the cache');
  const priced = formCost(target, { method: 'cp', rank: 5 }, 100, sample, undefined, timer);
  t.equal(priced.measured, true);
  t.equal(priced.us, timer(target, { method: 'cp', rank: 5 }, sample), 'formCost takes the measured time');
  t.ok(priced.macs > 0, 'multiply-adds still counted by the cost model');
  // tt has no unbuilt factor shapes: no form to time, the cost model prices it.
  const tt = formCost(target, { method: 'tt', outModes: [2, 4], inModes: [2, 3], ranks: [1, 2, 1] }, 100, sample, undefined, timer);
  t.notOk(tt.measured, 'a form without factor shapes is priced by the model');
});

t.test('compressModel --prefer speed reports measured compute only when it timed', async (t) => {
  const m: Model = {
    graph: {
      inputs: [{ name: 'in', shape: [-1, I, H, W] }], outputs: ['out'],
      nodes: [node],
    },
    tensors: new Map([['c.w', { name: 'c.w', dtype: 'f32', shape: [O, I, 3, 3], data: weight }]]),
    metadata: {},
  };
  const kernels = compressModel(m, { method: 'svd', ratio: 2, prefer: 'speed', check: false }).report;
  t.equal(kernels.compute?.measured, true, 'priceBy kernels (default): timed');
  t.ok(kernels.compute!.us > 0 && kernels.compute!.sourceUs > 0);
  const model = compressModel(m, { method: 'svd', ratio: 2, prefer: 'speed', check: false, priceBy: 'model' }).report;
  t.notOk(model.compute?.measured, 'priceBy model: predicted');
  const acc = compressModel(m, { method: 'svd', ratio: 2, check: false }).report;
  t.notOk(acc.compute?.measured, '--prefer accuracy: predicted');
});
