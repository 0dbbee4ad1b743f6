// The method registry (converter/methods/): every registered method has every part, every runtime
// factor kind has its converter parts, and on a small layer of each shape a method takes, its
// parts agree with each other and with the runtime: the ladder's parameter count is params(), the
// stored factors count exactly that, the user's ranks give back the same form, and the trainable
// form built from the decomposed node computes what the runtime Session computes.
import t, { type Test } from 'tap';
import { canExport } from '../../../converter/export/index.js';
import { CONVERTER_KINDS, converterKind, FACTOR_METHODS, FAMILIES, methodFits, methodOf, type FactorMethod } from '../../../converter/methods/index.js';
import type { LayerShape } from '../../../converter/rank/candidates.js';
import type { Target } from '../../../converter/rank/target.js';
import { fromModel } from '../../../converter/train/fromModel.js';
import { noGrad } from '../../../converter/train/index.js';
import { constant } from '../../../converter/train/tensor.js';
import { FACTOR_OPS, numel, OP_IDS, type GraphNode, type Model, type OpName, type StoredTensor } from '../../../runtime/ir.js';
import { initKernels } from '../../../runtime/kernels/backend.js';
import { Session } from '../../../runtime/session.js';
import { maxRelDiff, randn } from '../train/gradcheck.js';

await initKernels();

const PARTS = ['applies', 'candidates', 'fromRanks', 'ranks', 'withRanks', 'rankSlots', 'params', 'decompose'] as const;

t.test('every registered method has every part, and every kind its trainable form and export', async (t) => {
  t.ok(FACTOR_METHODS.length >= 6, 'svd, tucker2, cp, tt, tr, ttl at least');
  const names = new Set<string>();
  for (const m of FACTOR_METHODS) {
    t.notOk(names.has(m.name), `${m.name}: registered once`);
    names.add(m.name);
    t.ok(m.layers.length > 0, `${m.name}: names the layer shapes it decomposes`);
    for (const p of PARTS) t.equal(typeof (m as unknown as Record<string, unknown>)[p], 'function', `${m.name}: has ${p}`);
    t.ok(m.kinds.length > 0, `${m.name}: writes at least one runtime kind`);
    t.equal(methodOf(m.name), m, `${m.name}: found by name`);
  }
  const ops = new Set<string>();
  for (const k of CONVERTER_KINDS) {
    t.notOk(ops.has(k.op), `${k.op}: one converter record`);
    ops.add(k.op);
    t.ok(k.op in OP_IDS, `${k.op}: a runtime kind`);
    t.equal(typeof k.trainable, 'function', `${k.op}: has a trainable form`);
    t.equal(typeof k.onnx, 'function', `${k.op}: has an ONNX export`);
  }
  for (const op of FACTOR_OPS) t.ok(converterKind(op), `runtime factor kind ${op} has converter parts`);
  for (const op of Object.keys(OP_IDS) as OpName[]) t.ok(canExport(op), `${op}: export knows it`);
  for (const [family, pick] of Object.entries(FAMILIES)) {
    for (const [shape, name] of Object.entries(pick)) {
      t.ok(methodOf(name).layers.includes(shape as LayerShape['kind']), `--method ${family} on a ${shape} layer uses ${name}, which takes it`);
    }
  }
});

const DENSE: LayerShape = { kind: 'dense', out: 12, in: 18 };
const CONV: LayerShape = { kind: 'conv', O: 6, I: 4, kh: 3, kw: 2 };
const DEPTHWISE: LayerShape = { kind: 'conv', O: 6, I: 1, kh: 3, kw: 2, depthwise: true };

function target(shape: LayerShape, seed: number): { t: Target; model: Model; sample: number[] } {
  const dims = shape.kind === 'dense' ? [shape.out, shape.in] : [shape.O, shape.I, shape.kh, shape.kw];
  const out = dims[0]!;
  const weight = randn(numel(dims), seed);
  const tensors = new Map<string, StoredTensor>([
    ['l.weight', { name: 'l.weight', dtype: 'f32', shape: dims, data: weight }],
    ['l.bias', { name: 'l.bias', dtype: 'f32', shape: [out], data: randn(out, seed + 1) }],
  ]);
  const attrs: GraphNode['attrs'] = shape.kind === 'conv' ? { strides: [1, 1], pads: [1, 0, 1, 1], dilations: [1, 1], group: shape.depthwise ? shape.O : 1 } : {};
  const node: GraphNode = {
    name: 'l', op: shape.kind === 'dense' ? 'dense' : 'conv2d', inputs: ['x'], outputs: ['y'], attrs, weights: { weight: 'l.weight', bias: 'l.bias' },
  };
  const sample = shape.kind === 'dense' ? [shape.in] : [shape.depthwise ? shape.O : shape.I, 7, 6];
  const model: Model = {
    graph: { inputs: [{ name: 'x', shape: [-1, ...sample] }], outputs: ['y'], nodes: [node] },
    tensors, metadata: {},
  };
  return { t: { node, shape, weight, bias: out, denseParams: numel(dims) + out }, model, sample };
}

function checkMethod(t: Test, m: FactorMethod, shape: LayerShape, seed: number): void {
  const { t: tg, model, sample } = target(shape, seed);
  const cands = m.candidates(tg);
  t.ok(cands.length > 0, 'a non-empty rank ladder');
  t.ok(cands.every((c) => c.spec.method === m.name), 'every rung is of this method');
  t.ok(cands.every((c) => c.params === m.params(tg, c.spec as never)), 'ladder parameter counts = params()');
  const c = cands[Math.floor(cands.length / 2)]!;
  const spec = c.spec as never;
  const ranks = m.ranks(spec);
  t.ok(ranks.length > 0 && ranks.every((r) => Number.isInteger(r) && r >= 1), `ranks [${ranks}]`);
  t.same(m.withRanks(spec, ranks), spec, 'withRanks(ranks(spec)) is the spec');
  t.same(m.fromRanks(tg, ranks), spec, 'the same ranks written by a user give the same form');
  for (const slot of m.rankSlots(tg, spec)) {
    t.ok(slot.idx.every((i) => i >= 0 && i < ranks.length) && slot.cap >= 1, `rank slot [${slot.idx}] cap ${slot.cap}`);
  }
  const tensors: StoredTensor[] = [];
  const weights: Record<string, string> = { bias: 'l.bias' };
  const attrs = { ...tg.node.attrs };
  const d = m.decompose(tg, spec, {
    seed, quick: true, attrs,
    add: (role, s, data) => {
      t.equal(data.length, numel(s), `${role}: data fills its shape`);
      tensors.push({ name: `l.${role}`, dtype: 'f32', shape: s, data });
      weights[role] = `l.${role}`;
    },
  });
  t.ok(m.kinds.some((k) => k.op === d.op), `decomposes into one of its kinds (${d.op})`);
  if (d.init === 'random') {
    // ADTN's fallback: the fit captured nothing (error above 0.9), so the layer starts at random with
    // the target variance, and relError is that start's error (about 1 or more), not the fit's.
    t.ok(d.fitError !== undefined && d.fitError > 0.9, `fell back to the random start after a fit error of ${d.fitError?.toFixed(3)}`);
    t.ok(Number.isFinite(d.relError) && d.relError >= 0.9, `relative error of the random start ${d.relError.toFixed(3)}`);
  } else {
    t.ok(d.relError >= 0 && d.relError < 1, `relative error ${d.relError.toFixed(3)}`);
  }
  t.equal(tensors.reduce((s, x) => s + numel(x.shape), 0) + tg.bias, m.params(tg, spec), 'stored factors + bias = params()');
  if (m.shapes) {
    // The arena fit (converter/rank/arenaFit.ts) sizes firmware scratch from these, unbuilt.
    const f = m.shapes(tg, spec);
    t.equal(f.op, d.op, `shapes() names the kind decompose writes (${d.op})`);
    t.same(f.roles, Object.fromEntries(tensors.map((x) => [x.name.slice(2), x.shape])), 'shapes() = the stored factors\' shapes');
  }

  // The decomposed layer in the runtime, and its trainable form started from the same factors.
  const node: GraphNode = { ...tg.node, op: d.op, attrs, weights };
  const all = new Map(tensors.map((x) => [x.name, x]));
  all.set('l.bias', model.tensors.get('l.bias')!);
  const fm: Model = { graph: { ...model.graph, nodes: [node] }, tensors: all, metadata: {} };
  const x = { shape: [2, ...sample], data: randn(2 * numel(sample), seed + 7) };
  const ref = Session.create(fm, { retainWeights: false }).runBatch(x);
  const y = noGrad(() => fromModel(fm).forward(constant(x.data, x.shape)));
  t.same(y.shape, ref.shape, 'trainable output shape = runtime');
  const diff = maxRelDiff(y.data, ref.data);
  t.ok(diff < 1e-4, `trainable forward = runtime Session (rel. diff ${diff.toExponential(2)})`);
}

for (const m of FACTOR_METHODS) {
  for (const shape of [DENSE, CONV, DEPTHWISE]) {
    if (!methodFits(m, shape)) continue;
    t.test(`${m.name} on a ${shape.kind === 'conv' && shape.depthwise ? 'depthwise' : shape.kind} layer: ladder, params, ranks, factors and trainable form agree`, async (t) => {
      checkMethod(t, m, shape, 11 + FACTOR_METHODS.indexOf(m));
    });
  }
}
