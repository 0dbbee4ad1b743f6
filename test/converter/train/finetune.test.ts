// Fine-tuning: fromModel builds a trainable network from any runtime graph that computes what the
// Session computes (every factor kind, every non-parametric op, f16/int8 weights, lenet5 compressed
// by each method), toModel writes it back, the whole student's gradient matches finite
// differences, distillation raises the accuracy of a heavily compressed lenet5, the block-wise
// phase lowers every block's error, and the finetune command's arguments and JSON.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { finetuneCommand, parseFinetuneArgs, type FinetuneArgs } from '../../../cli/commands/finetune.js';
import { compressModel, type Method } from '../../../converter/compress.js';
import { limitDataset, loadDataset } from '../../../converter/data/datasets.js';
import { importOnnxFile } from '../../../converter/onnx/index.js';
import { quantizeModel } from '../../../converter/quantize.js';
import { buildNet, type ArchName, type LayerChoice } from '../../../converter/train/arch.js';
import { finetune } from '../../../converter/train/finetune.js';
import { fromModel } from '../../../converter/train/fromModel.js';
import { constant, noGrad } from '../../../converter/train/tensor.js';
import { writeFlmFile } from '../../../converter/writer.js';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { initKernels } from '../../../runtime/kernels/backend.js';
import { Session } from '../../../runtime/session.js';
import { needFashion, needFixture } from '../../support/require.js';
import { gradCheck, maxRelDiff, randn } from './gradcheck.js';
import { readFileSync } from 'node:fs';
import { capture } from '../../support/capture.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-finetune-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
await initKernels();

/** Trainable forward vs the runtime on the same model and input. */
function agree(t: Test, model: Model, x: { shape: number[]; data: Float32Array }, what: string): void {
  const ref = Session.create(model, { retainWeights: false }).runBatch(x);
  const tm = fromModel(model);
  const y = noGrad(() => tm.forward(constant(x.data, x.shape)));
  t.same(y.shape, ref.shape, `${what}: shape`);
  const d = maxRelDiff(y.data, ref.data);
  t.ok(d < 1e-4, `${what}: trainable forward = Session.runBatch (rel. diff ${d.toExponential(2)})`);
  const back = Session.create(tm.toModel(), { retainWeights: false }).runBatch(x);
  t.ok(maxRelDiff(back.data, ref.data) < 1e-4, `${what}: toModel() runs the same`);
}

const images = (n: number, seed: number) => ({ shape: [n, 1, 28, 28], data: randn(n * 784, seed).map((v) => Math.abs(v) * 0.5) });

t.test('fromModel: every layer kind of the trainable architectures, f32 / f16 / int8', async (t) => {
  const combos: Array<[ArchName, LayerChoice]> = [
    ['mlp', 'dense'], ['mlp', 'svd'], ['mlp', 'tucker'], ['mlp', 'tt'], ['mlp', 'tr'],
    ['lenet5', 'svd'], ['lenet5', 'cp'], ['lenet5', 'tucker'],
  ];
  const x = images(3, 1);
  const ops = new Set<string>();
  for (const [arch, layer] of combos) {
    const model = buildNet({ arch, layer, ratio: 20, seed: 3 }).toModel();
    // Non-zero biases, so that bias handling is checked too.
    for (const [name, tn] of model.tensors) if (name.endsWith('.bias')) (tn.data as Float32Array).set(randn(tn.data.length, 9, 0.1));
    model.graph.nodes.forEach((n) => ops.add(n.op));
    agree(t, model, x, `${arch}/${layer}`);
    if (arch === 'lenet5') {
      agree(t, quantizeModel(model, 'f16'), x, `${arch}/${layer} f16`);
      agree(t, quantizeModel(model, 'int8'), x, `${arch}/${layer} int8`);
    }
  }
  for (const op of ['dense', 'conv2d', 'svd_dense', 'svd_conv2d', 'tucker2_conv2d', 'cp_conv2d', 'tt_dense', 'tr_dense', 'ttl_dense']) {
    t.ok(ops.has(op), `covered ${op}`);
  }
});

/** A graph of every non-parametric op, with constant operands and a matmul of two activations. */
function opsModel(): Model {
  const tensors = new Map<string, StoredTensor>();
  const put = (name: string, shape: number[], seed: number, s = 0.5) => {
    tensors.set(name, { name, dtype: 'f32', shape, data: randn(shape.reduce((a, b) => a * b, 1), seed, s) });
  };
  put('c.weight', [4, 2, 3, 3], 1);
  put('c.bias', [4], 2);
  put('scale', [1, 4, 1, 1], 3);
  put('shift', [4, 1, 1], 4);
  put('d.u', [6, 2], 5);
  put('d.v', [2, 4], 6);
  const nodes: GraphNode[] = [];
  let v = 'input';
  let k = 0;
  const node = (op: GraphNode['op'], attrs: GraphNode['attrs'] = {}, extra: string[] = [], weights: Record<string, string> = {}, inputs?: string[]) => {
    const out = `v${k++}`;
    nodes.push({ name: `n${k}`, op, inputs: inputs ?? [v, ...extra], outputs: [out], attrs, weights });
    v = out;
    return out;
  };
  node('conv2d', { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }, [], { weight: 'c.weight', bias: 'c.bias' });
  node('mul', {}, ['scale']);
  node('add', {}, ['shift']);
  const a = node('leaky_relu', { alpha: 0.1 });
  node('avg_pool', { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 1, 1], ceil_mode: 0, count_include_pad: 0 });
  node('clip', { min: -0.3, max: 0.4 });
  const b = node('max_pool', { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], ceil_mode: 0 });
  node('tanh');
  node('identity');
  const g = node('global_avg_pool', {}, [], {}, [a]);
  // b [N, 4, 2, 2] -> [N, 4, 4]; g [N, 4, 1, 1] -> [N, 1, 4]; matmul -> [N, 1, 4].
  const r = node('reshape', { shape: [0, 4, -1] }, [], {}, [b]);
  const gt = node('transpose', { perm: [0, 2, 3, 1] }, [], {}, [g]);
  const g3 = node('reshape', { shape: [0, 1, 4] }, [], {}, [gt]);
  node('matmul', {}, [], {}, [g3, r]);
  node('sigmoid');
  node('flatten', { axis: 1 });
  node('svd_dense', {}, [], { u: 'd.u', v: 'd.v' });
  node('softmax', { axis: -1 });
  nodes[nodes.length - 1]!.outputs = ['probs'];
  return { graph: { inputs: [{ name: 'input', shape: [-1, 2, 8, 8] }], outputs: ['probs'], nodes }, tensors, metadata: {} };
}

t.test('fromModel: non-parametric ops, constant operands, matmul; errors', async (t) => {
  const model = opsModel();
  const x = { shape: [2, 2, 8, 8], data: randn(256, 7) };
  agree(t, model, x, 'ops graph');
  const tm = fromModel(model);
  t.same(Object.keys(tm.params).sort(), ['c.bias', 'c.weight', 'd.u', 'd.v', 'scale', 'shift'], 'weights and constant operands are parameters');
  t.equal(Object.keys(fromModel(model, { trainConstants: false }).params).length, 4);
  t.same(Object.keys(tm.factorParams()).sort(), ['d.u', 'd.v']);

  const shared = structuredClone(model.graph);
  shared.nodes[shared.nodes.length - 2]!.weights = { u: 'd.u', v: 'd.v', bias: 'c.bias' };
  t.throws(() => fromModel({ ...model, graph: shared }), /shared with node/);
  const missingW = structuredClone(model.graph);
  missingW.nodes[0]!.weights = { weight: 'nope' };
  t.throws(() => fromModel({ ...model, graph: missingW }), /stored tensor nope is missing/);
});

t.test('gradient of the whole student forward matches finite differences', async (t) => {
  // Conv with bias, constant mul/add operands, pooling, clip, tanh, a matmul of two activations,
  // a factor dense (svd) and a softmax: d sum(R * probs) / d every parameter.
  const tm = fromModel(opsModel());
  const x = constant(randn(2 * 2 * 8 * 8, 11), [2, 2, 8, 8]);
  const worst = gradCheck(t, 'ops graph', () => tm.forward(x), Object.values(tm.params), { eps: 1e-2, tol: 2e-2, maxPerInput: 12 });
  t.ok(worst < 2e-2);
});

t.test('lenet5 fixture compressed by svd/tucker/cp/tt/tr: trainable forward = runtime; distillation raises accuracy', async (t) => {
  const onnx = needFixture(t, 'lenet5_fashion.onnx');
  if (!onnx || !needFashion(t)) return;
  const dense = importOnnxFile(onnx);
  const test = limitDataset(loadDataset('fashion-mnist', 'test'), 1000);
  const x = { shape: [8, 1, 28, 28], data: test.images.subarray(0, 8 * 784) };
  agree(t, dense, x, 'dense');
  // Explicit ranks keep the rank search out of the test; svd 8/8 is what --ratio 20 picks (20.6x).
  const ranks: Record<string, Record<string, unknown>> = {
    svd: { '/c2/Conv': 8, '/f1/Gemm': 8 }, tucker: { '/c2/Conv': [6, 8], '/f1/Gemm': 4 }, cp: { '/c2/Conv': 8, '/f1/Gemm': 8 },
    tt: { '/c2/Conv': [6, 8], '/f1/Gemm': 4 }, tr: { '/c2/Conv': [6, 8], '/f1/Gemm': 3 },
  };
  const models: Record<string, Model> = {};
  for (const [method, r] of Object.entries(ranks)) {
    const { model, report } = compressModel(dense, { method: method as Method, ranks: r });
    t.ok(report.ratio > 5, `${method}: ${report.ratio.toFixed(1)}x`);
    models[method] = model;
    agree(t, model, x, `lenet5 ${method}`);
  }

  const train = limitDataset(loadDataset('fashion-mnist', 'train'), 1000);
  const r = finetune(models['svd']!, dense, train, test, { epochs: 2, seed: 1 });
  t.ok(r.before && r.after && r.teacher, 'before, after, teacher accuracies');
  t.ok(r.after!.accuracy >= r.before!.accuracy + 0.01,
    `svd 20x: ${(100 * r.before!.accuracy).toFixed(1)}% -> ${(100 * r.after!.accuracy).toFixed(1)}% (teacher ${(100 * r.teacher!.accuracy).toFixed(1)}%)`);
  t.equal(r.history.length, 2);
  t.equal(r.model.metadata['finetune.epochs'], 2);
  // The returned model is f32, the student's graph, and gives the reported accuracy in a Session.
  t.same(r.model.graph.nodes.map((n) => n.op), models['svd']!.graph.nodes.map((n) => n.op));
  t.ok([...r.model.tensors.values()].every((tn) => tn.dtype === 'f32'));

  // Block-wise phase only: every factor block gets closer to the teacher's activation there.
  const b = finetune(models['tt']!, dense, limitDataset(train, 256), undefined, { epochs: 0, blockwise: true, blockSteps: 25, batch: 32 });
  t.same(b.blocks.map((k) => k.op).sort(), ['tt_dense', 'tucker2_conv2d']);
  for (const k of b.blocks) t.ok(k.relErrorAfter < k.relErrorBefore, `block ${k.node}: ${k.relErrorBefore.toFixed(4)} -> ${k.relErrorAfter.toFixed(4)}`);
});


t.test('finetune command: argument errors, one JSON object', async (t) => {
  const student = join(dir, 'student.flm');
  const teacher = join(dir, 'teacher.flm');
  const dense = buildNet({ arch: 'lenet5', layer: 'dense', seed: 2 }).toModel();
  const { model: compressed } = compressModel(dense, { method: 'svd', ranks: { conv2: 4, fc1: 4 } });
  await writeFlmFile(dense, teacher);
  await writeFlmFile(compressed, student);
  const base: FinetuneArgs = { teacher, data: 'mnist', output: join(dir, 'out.flm'), progress: false };
  const bad: Array<[Partial<FinetuneArgs>, RegExp]> = [
    [{ epochs: 'two' }, /--epochs two: expected an integer/],
    [{ epochs: '0' }, /--epochs 0 needs --blockwise/],
    [{ lr: '-1' }, /--lr -1/],
    [{ alpha: '1.5' }, /--alpha 1.5: expected a number in \[0, 1\]/],
    [{ temperature: '0' }, /--temperature 0/],
    [{ blockSteps: '10' }, /--block-steps needs --blockwise/],
    [{ batch: '0' }, /--batch 0/],
    [{ output: join(dir, 'x.onnx') }, /must be a .flm/],
    [{ teacher: join(dir, 'none.onnx') }, /does not exist/],
    [{ data: join(dir, 'nodata') }, /--data/],
  ];
  for (const [over, re] of bad) await t.rejects(finetuneCommand(student, { ...base, ...over }), { code: /BAD_/, message: re }, re.source);
  t.throws(() => parseFinetuneArgs({ data: 'mnist', seed: '-1' }), /--seed -1/);

  const args: FinetuneArgs = { ...base, epochs: '1', limit: '200', evalLimit: '200', json: true, seed: '3' };
  const { out } = await capture(() => finetuneCommand(student, args));
  const lines = out.trim().split('\n');
  t.equal(lines.length, 1, 'one line on stdout');
  const j = JSON.parse(lines[0]!);
  t.match(j, {
    input: student, teacher, output: args.output, data: 'mnist', trainSamples: 200, samples: 200, epochs: 1, seed: 3,
    blockwise: false, accuracyBefore: Number, accuracy: Number, teacherAccuracy: Number, params: Number, ratio: Number, seconds: Number,
  });
  t.equal(j.history.length, 1);
  t.equal(j.plannedSteps, 4, '1 epoch of 200 images in batches of 64 asked for');
  t.equal(j.steps, 4, 'every step run (no time bound)');
  t.ok(j.ratio > 1, `params ratio ${j.ratio}`);
  const written = readFlm(readFileSync(args.output));
  t.equal(written.metadata['finetune.epochs'], 1);
  t.equal(written.graph.nodes.find((n) => n.name === 'fc1')?.op, 'svd_dense');
  t.equal(written.graph.nodes.find((n) => n.name === 'conv2')?.op, 'svd_conv2d');
});
