// Models with the element-wise and normalisation layers of modern PyTorch nets
// (test/support/torch_models_norm.py): GELU exact (Erf) and tanh, SiLU and a lone erf, LayerNorm
// (the opset < 17 decomposition and LayerNormalization), BatchNorm1d after Linear, and an
// attention-free MLP-mixer block, and the plain element-wise and reduce ops. Each at opsets 11, 13 and 17, with a dynamic and a fixed batch
// axis: imported, run on the reference and WebAssembly kernels, written to .flm and read back,
// exported to ONNX again, and compared with onnxruntime-node on the original file to 1e-4
// relative error. Then --ratio 2 on the LayerNorm/GELU MLPs.
import t, { type Test } from 'tap';
import { compressModel } from '../../../converter/compress.js';
import { exportOnnx } from '../../../converter/export/index.js';
import { importOnnx } from '../../../converter/onnx/import.js';
import { writeFlm } from '../../../converter/writer.js';
import type { Model, OpName, Tensor } from '../../../runtime/ir.js';
import { MCU_OPS } from '../../../runtime/plan/mcu.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { hasWasmSimd, referenceBackend, wasmBackend, type KernelBackend } from '../../../runtime/kernels/backend.js';
import { erf, geluExact } from '../../../runtime/layers/norm.js';
import { Session } from '../../../runtime/session.js';
import { CHECKED_MODELS, NORM_OPSETS, normModel, type CheckedModel } from '../../support/torchNormModels.js';
import { type ModelSpec, Rng, TOL, compareWithOrt, relDiff, runOrt } from './fixtures/build.js';

async function backends(): Promise<Array<[string, KernelBackend]>> {
  const out: Array<[string, KernelBackend]> = [['reference', referenceBackend]];
  if (hasWasmSimd()) out.push(['wasm', await wasmBackend()]);
  return out;
}

function run(model: Model, x: Tensor, backend: KernelBackend): Tensor {
  const y = Session.create(model, { backend, retainWeights: false }).run({ input: x }).output;
  if (!y) throw new Error('no output');
  return y;
}

const opsOf = (m: Model): string[] => m.graph.nodes.map((n) => n.op);
const count = (m: Model, op: string): number => opsOf(m).filter((o) => o === op).length;

/** What each model must import to (beyond agreeing with onnxruntime). */
const STRUCTURE: Record<CheckedModel, (t: Test, m: Model, opset: number) => void> = {
  gelu: (t, m) => {
    t.same(m.graph.nodes.filter((n) => n.op === 'gelu').map((n) => n.attrs.approximate), ['none', 'tanh'], 'exact and tanh GELU, one node each');
    t.same(opsOf(m), ['dense', 'gelu', 'dense', 'gelu', 'dense'], 'nothing of the decompositions is left');
  },
  silu: (t, m) => {
    t.equal(count(m, 'sigmoid'), 2, 'F.silu and x * sigmoid(x)');
    t.equal(count(m, 'erf'), 1, 'a lone erf stays erf');
  },
  layernorm: (t, m, opset) => {
    const ln = m.graph.nodes.filter((n) => n.op === 'layer_norm');
    t.equal(ln.length, 2, 'two LayerNorms, one node each');
    t.same(ln.map((n) => n.attrs.axis), [-1, -1]);
    t.ok(Math.abs((ln[1]!.attrs.epsilon as number) - 1e-6) < 1e-12, 'epsilon carried');
    t.ok(ln[0]!.weights.scale && ln[0]!.weights.bias, 'affine LayerNorm has scale and bias');
    if (opset < 17) t.same(ln[1]!.weights, {}, 'LayerNorm without the affine part has no weights');
    t.notOk(opsOf(m).some((o) => o === 'mul' || o === 'add'), 'no element-wise op left of the decomposition');
  },
  bn1d: (t, m) => {
    t.equal(count(m, 'dense'), 3, 'three Linear layers');
    t.same(opsOf(m).slice(0, 2), ['dense', 'relu'], 'BatchNorm1d right after a Linear folded into it');
    t.equal(count(m, 'add'), 1, 'BatchNorm1d after SiLU is one per-channel affine');
  },
  mixer: (t, m) => {
    t.equal(count(m, 'layer_norm'), 3, 'three LayerNorms');
    t.same(m.graph.nodes.filter((n) => n.op === 'layer_norm').map((n) => n.attrs.axis), [-1, -1, -2], 'the last over tokens and channels');
    t.equal(count(m, 'gelu'), 2);
    t.equal(count(m, 'add'), 2, 'two residual adds');
  },
  elementwise: (t, m) => {
    for (const op of ['sqrt', 'abs', 'exp', 'log', 'reciprocal', 'pow', 'clip']) t.ok(opsOf(m).includes(op), op);
    t.same(m.graph.nodes.filter((n) => n.op === 'reduce').map((n) => n.attrs.op), ['mean', 'max', 'sum'], 'three reduces');
    t.equal(count(m, 'reciprocal'), 3, 'reciprocal, the negative power and the Div of two activations');
    t.ok(m.graph.nodes.some((n) => n.op === 'pow' && n.attrs.exponent === 1.5), 'pow(a, -1.5) as pow 1.5 then reciprocal');
  },
};

for (const name of CHECKED_MODELS) {
  t.test(`${name}: PyTorch export agrees with onnxruntime-node`, async (t) => {
    for (const opset of NORM_OPSETS) {
      const ex = normModel(t, name, opset);
      if (!ex) return;
      for (const [kind, bytes, batch] of [['dynamic batch', ex.dynamic, 3], ['fixed batch', ex.fixed, ex.inputShape[0]!]] as const) {
        const x = new Rng(opset + batch).tensor([batch, ...ex.inputShape.slice(1)]);
        const theirs = (await runOrt(bytes, { input: x })).output!;
        const model = importOnnx(bytes, { sourceName: `${name}.onnx` });
        STRUCTURE[name](t, model, opset);
        const stored = readFlm(writeFlm(model));
        t.equal(stored.memoryPlan?.plans?.some((p) => p.profile === 'mcu') ?? false, opsOf(model).every((o) => MCU_OPS.has(o as OpName)),
          'an mcu plan exactly when the firmware runs every op');
        for (const [bk, backend] of await backends()) {
          const d = relDiff(run(model, x, backend), theirs);
          t.ok(d <= TOL, `opset ${opset}, ${kind}, ${bk}: rel diff ${d.toExponential(2)} <= ${TOL}`);
          const ds = relDiff(run(stored, x, backend), theirs);
          t.ok(ds <= TOL, `opset ${opset}, ${kind}, ${bk}, through .flm: rel diff ${ds.toExponential(2)}`);
        }
        for (const eo of [11, 17, 20]) {
          const back = (await runOrt(exportOnnx(stored, { opset: eo }), { input: x })).output!;
          const de = relDiff(back, theirs);
          t.ok(de <= TOL, `opset ${opset}, ${kind}, exported at ${eo}, run by onnxruntime: rel diff ${de.toExponential(2)}`);
        }
      }
    }
  });
}

t.test('erf and exact GELU keep their relative accuracy in the tails', async (t) => {
  // Reference values of erf (Abramowitz and Stegun, table 7.1) and of Phi(x) = (1 + erf(x / sqrt 2)) / 2.
  for (const [x, v] of [[0.5, 0.5204998778], [1, 0.8427007929], [2, 0.9953222650], [-1.5, -0.9661051465]] as const) {
    t.ok(Math.abs(erf(x) - v) < 2e-7, `erf(${x}) = ${erf(x)}`);
  }
  // Phi(-4) = 3.167124183e-5, Phi(-6) = 9.865876450e-10: relative, not absolute, accuracy.
  for (const [x, phi] of [[-4, 3.167124183e-5], [-6, 9.86587645e-10]] as const) {
    const rel = Math.abs(geluExact(x) / x - phi) / phi;
    t.ok(rel < 1e-6, `gelu(${x}) relative error ${rel.toExponential(2)}`);
  }
});

// Compression of the dense layers around LayerNorm and GELU: the factorised model runs the same
// on our kernels as its ONNX export does in onnxruntime; the wide MLP (ranks of tens at ratio 2)
// stays close to the dense model. The mixer's layers are so small that ratio 2 leaves ranks of
// 1 to 4, so only its correctness is checked.
for (const name of ['widemlp', 'mixer'] as const) {
  t.test(`${name}: compressed at ratio 2 runs${name === 'widemlp' ? ' and stays close to the dense model' : ''}`, async (t) => {
    const ex = normModel(t, name, 13);
    if (!ex) return;
    const dense = importOnnx(ex.dynamic);
    const { model, report } = compressModel(dense, { method: 'svd', ratio: 2 });
    const factored = report.layers.filter((l) => l.op !== l.sourceOp);
    t.ok(factored.length >= 2, `${factored.length} layers factorised: ${factored.map((l) => `${l.name} -> ${l.op}`).join(', ')}`);
    t.equal(count(model, 'layer_norm'), count(dense, 'layer_norm'), 'LayerNorms kept');
    t.equal(count(model, 'gelu'), count(dense, 'gelu'), 'GELUs kept');
    const stored = readFlm(writeFlm(model));
    const x = new Rng(5).tensor([4, ...ex.inputShape.slice(1)]);
    const ort = (await runOrt(exportOnnx(stored, { opset: 13 }), { input: x })).output!;
    for (const [bk, backend] of await backends()) {
      const d = relDiff(run(stored, x, backend), ort);
      t.ok(d <= TOL, `${bk}: factorised model vs onnxruntime on its export: ${d.toExponential(2)}`);
    }
    if (name === 'widemlp') {
      const drift = relDiff(run(stored, x, referenceBackend), (await runOrt(ex.dynamic, { input: x })).output!);
      t.ok(drift < 0.05, `output within 5% of the dense model's scale at ratio 2 (${drift.toFixed(4)})`);
    }
  });
}

// Constant subgraphs users' exports still hold: Expand, Tile, Exp, Log, Abs of constants fold to
// one stored operand (hand-built, since PyTorch's exporter folds its own), checked against onnxruntime.
t.test('Expand, Tile, Exp, Log and Abs of constants fold', async (t) => {
  const rng = new Rng(21);
  for (const opset of [11, 13, 17]) {
    const spec: ModelSpec = {
      opset,
      inputs: [{ name: 'x', shape: ['batch', 3, 4] }],
      outputs: ['y'],
      inits: [
        { name: 'row', dims: [1, 4], data: rng.array(4, 1) },
        { name: 'col', dims: [3, 1], data: rng.array(3, 1) },
        { name: 'shape', dims: [2], data: [3, 4], int64: true },
        { name: 'reps', dims: [2], data: [3, 2], int64: true },
      ],
      nodes: [
        { op: 'Expand', inputs: ['row', 'shape'], outputs: ['e'] },
        { op: 'Abs', inputs: ['col'], outputs: ['ac'] },
        { op: 'Exp', inputs: ['ac'], outputs: ['ec'] },
        { op: 'Log', inputs: ['ec'], outputs: ['lc'] },
        { op: 'Tile', inputs: ['lc', 'reps'], outputs: ['tl'] },
        { op: 'Slice', inputs: ['tl', 'zero', 'three'], outputs: ['ts'] },
        { op: 'Add', inputs: ['x', 'e'], outputs: ['a'] },
        { op: 'Mul', inputs: ['a', 'ts'], outputs: ['y'] },
      ],
    };
    // Tile [3, 1] by [3, 2] gives [9, 2]; the Slice keeps [3, 1] of it.
    spec.inits!.push({ name: 'zero', dims: [2], data: [0, 0], int64: true }, { name: 'three', dims: [2], data: [3, 1], int64: true });
    const { diffs, model } = await compareWithOrt(spec, { x: rng.tensor([2, 3, 4]) });
    t.ok(diffs.y! <= TOL, `opset ${opset}: rel diff ${diffs.y}`);
    t.same(model.graph.nodes.map((n) => n.op), ['add', 'mul'], 'the constant subgraph folded into stored operands');
  }
});
