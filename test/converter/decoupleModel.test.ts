// convert --method decouple as a library step: which pairs it finds, the flexact model it writes
// against onnxruntime on the dense original (fresh inputs the fit never saw), the parameter and SVD
// bookkeeping, the trainable form against the runtime, and the typed refusals.
import t from 'tap';
import { importOnnx } from '../../converter/onnx/index.js';
import { decoupleModel, findDecouplePairs, svdAtBudget } from '../../converter/decoupleModel.js';
import { CompressError, sourceParams } from '../../converter/compress.js';
import { flexactParams, parseBasis } from '../../converter/methods/decouple.js';
import { fromModel } from '../../converter/train/fromModel.js';
import { constant } from '../../converter/train/tensor.js';
import { Session } from '../../runtime/session.js';
import { exportOnnx } from '../../converter/export/index.js';
import type { Model, Tensor } from '../../runtime/ir.js';
import { buildModel, Rng, runOrt } from './onnx/fixtures/build.js';
import { normalInputs, pairModel } from './decouple/pairModel.js';

const load = (bytes: Uint8Array): Model => importOnnx(bytes, { sourceName: 'pair.onnx' });

/** max |a − b| / max |b| over all outputs, and the top-1 agreement of rows of `cols`. */
function compare(a: Float32Array, b: Float32Array, cols: number): { rel: number; agree: number } {
  let d = 0;
  let s = 0;
  for (let i = 0; i < b.length; i++) {
    d += (a[i]! - b[i]!) ** 2;
    s += b[i]! ** 2;
  }
  let same = 0;
  const rows = b.length / cols;
  const arg = (v: Float32Array, k: number) => {
    let best = 0;
    for (let i = 1; i < cols; i++) if (v[k * cols + i]! > v[k * cols + best]!) best = i;
    return best;
  };
  for (let k = 0; k < rows; k++) if (arg(a, k) === arg(b, k)) same++;
  return { rel: Math.sqrt(d / s), agree: same / rows };
}

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return e instanceof CompressError ? e.code : `not a CompressError: ${(e as Error).message}`;
  }
  return undefined;
};

t.test('pairs: dense → act → dense chains whose middle values nothing else reads', async (t) => {
  const rng = new Rng(1);
  const gemm = (name: string, x: string, y: string) => ({ op: 'Gemm', name, inputs: [x, `${name}.w`, `${name}.b`], outputs: [y], attrs: { transB: 1 } });
  const inits = (name: string, o: number, i: number) => [{ name: `${name}.w`, dims: [o, i], data: rng.array(o * i) }, { name: `${name}.b`, dims: [o], data: rng.array(o) }];
  // fc1 → relu → fc2 → tanh → fc3: two pairs sharing fc2, as in LeNet-5's classifier.
  const chain = load(buildModel({
    inputs: [{ name: 'x', shape: ['n', 6] }], outputs: ['y'],
    nodes: [gemm('fc1', 'x', 'h1'), { op: 'Relu', inputs: ['h1'], outputs: ['a1'], name: 'r1' }, gemm('fc2', 'a1', 'h2'),
      { op: 'Tanh', inputs: ['h2'], outputs: ['a2'], name: 't2' }, gemm('fc3', 'a2', 'y')],
    inits: [...inits('fc1', 9, 6), ...inits('fc2', 8, 9), ...inits('fc3', 3, 8)],
  }));
  const pairs = findDecouplePairs(chain);
  t.same(pairs.map((p) => [p.first.name, p.activation.op, p.second.name, p.inputs, p.hidden, p.outputs]),
    [['fc1', 'relu', 'fc2', 6, 9, 8], ['fc2', 'tanh', 'fc3', 9, 8, 3]]);
  t.equal(pairs[0]!.params, 9 * 6 + 9 + 8 * 9 + 8);
  // The hidden activation is also a graph output: not replaceable.
  const exposed = load(buildModel({
    inputs: [{ name: 'x', shape: ['n', 6] }], outputs: ['y', 'a1'],
    nodes: [gemm('fc1', 'x', 'h1'), { op: 'Relu', inputs: ['h1'], outputs: ['a1'], name: 'r1' }, gemm('fc2', 'a1', 'y')],
    inits: [...inits('fc1', 9, 6), ...inits('fc2', 3, 9)],
  }));
  t.same(findDecouplePairs(exposed), []);
  // A skip connection reads the pre-activation too: not replaceable.
  const skip = load(buildModel({
    inputs: [{ name: 'x', shape: ['n', 6] }], outputs: ['y'],
    nodes: [gemm('fc1', 'x', 'h1'), { op: 'Relu', inputs: ['h1'], outputs: ['a1'], name: 'r1' }, gemm('fc2', 'a1', 'h2'),
      { op: 'Add', inputs: ['h2', 'h1'], outputs: ['y'], name: 'add' }],
    inits: [...inits('fc1', 9, 6), ...inits('fc2', 9, 9)],
  }));
  t.same(findDecouplePairs(skip), []);
});

t.test('decouple an exactly 3-branch tanh pair: the flexact model against onnxruntime on the dense original', async (t) => {
  const pm = pairModel({ branches: 3 });
  const model = load(pm.onnx);
  const fit = normalInputs(600, pm.inputs, 11);
  const hold = normalInputs(200, pm.inputs, 12);
  const { model: out, report } = decoupleModel(model, { neurons: 3, basis: 'poly:7', samples: fit, holdout: hold, data: 'calibration', sweeps: 150 });
  t.equal(report.pairs.length, 1);
  const p = report.pairs[0]!;
  t.same(p.nodes, ['/fc1/Gemm', '/act/Act', '/fc2/Gemm']);
  t.equal(out.graph.nodes.length, 1);
  t.equal(out.graph.nodes[0]!.op, 'flexact');
  // Parameters: what the stored tensors hold, and the formula.
  t.equal(p.paramsAfter, flexactParams(12, 5, 3, 7));
  t.equal(report.params, sourceParams(out));
  t.equal(report.params, p.paramsAfter);
  t.equal(report.sourceParams, 12 * 12 + 12 + 5 * 12 + 5);
  t.ok(p.jacobianError < 0.1 && p.valueError < 0.05, `fit errors J ${p.jacobianError}, F ${p.valueError}`);

  // Fresh inputs, neither fitted nor held out: our runtime on the flexact model vs ORT on the dense ONNX.
  const fresh = normalInputs(1000, pm.inputs, 13);
  const ours = Session.create(out).runBatch(fresh).data;
  const theirs = (await runOrt(pm.onnx, { input: fresh }))['logits']!.data;
  const c = compare(ours, theirs, pm.outputs);
  t.ok(c.rel < 0.05, `relative output error ${c.rel} on fresh inputs (held-out value error of the fit ${p.heldOutValueError})`);
  t.ok(c.rel < 2 * p.heldOutValueError + 0.01, `fresh error ${c.rel} agrees with the reported held-out error ${p.heldOutValueError}`);
  t.ok(c.agree >= 0.95, `top-1 agreement with the dense original ${c.agree}`);
  t.ok(report.check && report.check.agreement! >= 0.95, `the report's check ${report.check?.agreement}`);

  // One branch fewer than the function has cannot do as well (identifiability at the model level).
  const { report: under } = decoupleModel(model, { neurons: 2, basis: 'poly:7', samples: fit, holdout: hold, data: 'calibration', sweeps: 150 });
  t.ok(under.pairs[0]!.heldOutValueError > 3 * p.heldOutValueError, `r=2 held out ${under.pairs[0]!.heldOutValueError} vs r=3 ${p.heldOutValueError}`);

  // Truncated SVD within the same 83 parameters: rank 1 (24 + 17 biases + 17 = 58; rank 2 takes 99).
  t.same(p.svd && { rank: p.svd.rank, params: p.svd.params }, { rank: 1, params: 58 });
  t.ok(p.svd!.heldOutValueError > 5 * p.heldOutValueError, `SVD rank 1: ${p.svd!.heldOutValueError} vs decoupled ${p.heldOutValueError}`);
});

t.test('against truncated SVD at the same parameter count', async (t) => {
  // FC-2's hidden pair at r = 16, D = 3 (12,794 parameters): both weights at rank 4, W2 factored.
  t.same(svdAtBudget({ inputs: 784, hidden: 1024, outputs: 10 }, 1034, flexactParams(784, 10, 16, 3)), { rank: 4, params: 4 * 1808 + 1034 + 4 * 1034, secondDense: false });
  t.equal(svdAtBudget({ inputs: 12, hidden: 24, outputs: 5 }, 29, 93), null);
  // W2 kept dense once its factors would cost more: n h = 50 < 6 (5 + 10).
  t.same(svdAtBudget({ inputs: 30, hidden: 10, outputs: 5 }, 15, 310), { rank: 6, params: 6 * 40 + 15 + 50, secondDense: true });
  // A 2-branch tanh pair with 40 inputs: rank 1 (74 parameters) fits in the flexact layer's 109 and
  // loses one of the two input directions the function depends on; the decoupling keeps both.
  const pm = pairModel({ inputs: 40, branches: 2, seed: 9 });
  const model = load(pm.onnx);
  const { report } = decoupleModel(model, { neurons: 2, basis: 'poly:5', samples: normalInputs(400, 40, 1), holdout: normalInputs(200, 40, 2), data: 'calibration', sweeps: 100 });
  const p = report.pairs[0]!;
  t.equal(p.paramsAfter, 109);
  t.same(p.svd && { rank: p.svd.rank, params: p.svd.params }, { rank: 1, params: 48 + 13 + 13 });
  t.ok(p.svd!.heldOutValueError > 2 * p.heldOutValueError, `SVD rank 1: ${p.svd!.heldOutValueError}, decoupled: ${p.heldOutValueError}`);
});

t.test('the trainable form of the written model computes what the runtime does (fine-tuning starts there)', async (t) => {
  const pm = pairModel({ branches: 2, inputs: 8, activation: 'Relu', seed: 5 });
  const model = load(pm.onnx);
  const { model: out } = decoupleModel(model, { neurons: 2, basis: 'poly:3', samples: normalInputs(300, 8, 1), holdout: normalInputs(50, 8, 2), data: 'calibration', sweeps: 40 });
  // Inputs 3x wider than the samples: many z fall outside the stored range, on the tangent.
  const x: Tensor = normalInputs(64, 8, 3);
  for (let i = 0; i < x.data.length; i++) x.data[i]! *= 3;
  const y = Session.create(out).runBatch(x).data;
  const net = fromModel(out);
  const yt = net.forward(constant(x.data, x.shape)).data;
  let d = 0;
  let s = 0;
  for (let i = 0; i < y.length; i++) {
    d = Math.max(d, Math.abs(y[i]! - yt[i]!));
    s = Math.max(s, Math.abs(y[i]!));
  }
  t.ok(d <= 1e-5 * Math.max(1, s), `trainable vs runtime: max diff ${d} (scale ${s})`);
  const range = Object.entries(net.params).filter(([k]) => k.endsWith('.range'));
  t.ok(range.every(([, v]) => !v.requiresGrad), 'the range is no trained parameter');
});

t.test('refusals: no pair, neurons not fewer, bad basis', async (t) => {
  const pm = pairModel({ branches: 4 });
  const model = load(pm.onnx);
  const opts = { samples: normalInputs(100, 12, 1), holdout: normalInputs(20, 12, 2), data: 'calibration' as const, sweeps: 2 };
  const rng = new Rng(2);
  const single = load(buildModel({
    inputs: [{ name: 'x', shape: ['n', 6] }], outputs: ['y'],
    nodes: [{ op: 'Gemm', name: 'fc', inputs: ['x', 'w', 'b'], outputs: ['h'], attrs: { transB: 1 } }, { op: 'Relu', name: 'r', inputs: ['h'], outputs: ['y'] }],
    inits: [{ name: 'w', dims: [4, 6], data: rng.array(24) }, { name: 'b', dims: [4], data: rng.array(4) }],
  }));
  t.equal(codeOf(() => decoupleModel(single, { ...opts, neurons: 2, samples: { shape: [10, 6], data: rng.array(60) }, holdout: { shape: [4, 6], data: rng.array(24) } })), 'NO_PAIR');
  t.equal(codeOf(() => decoupleModel(model, { ...opts, neurons: 16 })), 'BAD_NEURONS', 'as many neurons as hidden units');
  t.equal(codeOf(() => decoupleModel(model, { ...opts, neurons: 13 })), 'BAD_NEURONS', 'more neurons than inputs (16 hidden, 12 inputs)');
  t.equal(codeOf(() => decoupleModel(model, { ...opts, neurons: 3, samples: normalInputs(5, 12, 1) })), 'BAD_NEURONS', 'too few samples for 3 neurons');
  t.equal(codeOf(() => decoupleModel(model, { ...opts, neurons: 0 })), 'BAD_NEURONS');
  for (const b of ['bspline:3', 'bspline:17', 'poly:0', 'poly:17', 'cubic', 'poly:', 'chebyshev:3']) t.equal(codeOf(() => parseBasis(b)), 'BAD_BASIS', b);
  t.same(parseBasis('poly:5'), { basis: 'poly', degree: 5 });
  t.same(parseBasis('bspline:4'), { basis: 'bspline', degree: 4 });
});

t.test('B-spline branches: the 3-branch tanh pair at bspline:8 against onnxruntime on the dense original, trained and exported', async (t) => {
  const pm = pairModel({ branches: 3 });
  const model = load(pm.onnx);
  const { model: out, report } = decoupleModel(model, {
    neurons: 3, basis: 'bspline:8', samples: normalInputs(600, pm.inputs, 11), holdout: normalInputs(200, pm.inputs, 12), data: 'calibration', sweeps: 150,
  });
  const p = report.pairs[0]!;
  t.same([p.basis, p.degree, out.graph.nodes[0]!.attrs['basis'], out.graph.nodes[0]!.attrs['degree']], ['bspline', 8, 'bspline', 8]);
  t.equal(p.paramsAfter, flexactParams(12, 5, 3, 8));
  t.equal(report.params, sourceParams(out));
  t.ok(p.jacobianError < 0.1 && p.valueError < 0.05, `fit errors J ${p.jacobianError}, F ${p.valueError}`);
  const fresh = normalInputs(1000, pm.inputs, 13);
  const ours = Session.create(out).runBatch(fresh).data;
  const theirs = (await runOrt(pm.onnx, { input: fresh }))['logits']!.data;
  const c = compare(ours, theirs, pm.outputs);
  t.ok(c.rel < 0.05, `relative output error ${c.rel} on fresh inputs (held-out value error of the fit ${p.heldOutValueError})`);
  t.ok(c.agree >= 0.95, `top-1 agreement with the dense original ${c.agree}`);
  // The trainable form and the ONNX export of the written model, on inputs 3x wider (many z on the tangent).
  const wide: Tensor = normalInputs(64, pm.inputs, 14);
  for (let i = 0; i < wide.data.length; i++) wide.data[i]! *= 3;
  const y = Session.create(out).runBatch(wide).data;
  const yt = fromModel(out).forward(constant(wide.data, wide.shape)).data;
  const yo = (await runOrt(exportOnnx(out), { input: wide }))['logits']!.data;
  let dt = 0, dO = 0, sc = 1;
  for (let i = 0; i < y.length; i++) {
    sc = Math.max(sc, Math.abs(y[i]!));
    dt = Math.max(dt, Math.abs(y[i]! - yt[i]!));
    dO = Math.max(dO, Math.abs(y[i]! - yo[i]!));
  }
  t.ok(dt <= 1e-5 * sc, `trainable vs runtime: max diff ${dt} (scale ${sc})`);
  t.ok(dO <= 1e-4 * sc, `onnxruntime on the export vs runtime: max diff ${dO} (scale ${sc})`);
});
