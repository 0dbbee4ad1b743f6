// convert --quant int8-full on the LeNet-5 fixture: the integer path (runtime/int8full, the
// definition) against the f32 compressed model it was calibrated from, on Fashion-MNIST test
// images it never saw; the file round trip; every chain intermediate calibrated on its own.
import t, { type Test } from 'tap';
import { compressModel } from '../../../converter/compress.js';
import { limitDataset, loadDataset } from '../../../converter/data/datasets.js';
import { argmaxRows } from '../../../converter/evaluate.js';
import { quantizeInt8Full } from '../../../converter/int8Full.js';
import { importOnnxFile } from '../../../converter/onnx/index.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { INT8_FULL_KEY, INT8_STAGES, readInt8Full } from '../../../runtime/int8full/params.js';
import { Int8Session } from '../../../runtime/int8full/session.js';
import type { Model, Tensor } from '../../../runtime/ir.js';
import { Session } from '../../../runtime/session.js';
import { needFashion, needFixture } from '../../support/require.js';

const TEST_IMAGES = 2000;

function top1(y: Float32Array, rows: number): Uint8Array {
  const out = new Uint8Array(rows);
  argmaxRows(y, rows, y.length / rows, out, 0);
  return out;
}

function agreement(a: Uint8Array, b: Uint8Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

function check(t: Test, f32: Model, calib: Tensor, test: Tensor, labels: Uint8Array, min: number, label: string): Model {
  const full = quantizeInt8Full(f32, calib);
  // The file as written and read back runs the same integers.
  const back = readFlm(writeFlm(full));
  const q = readInt8Full(back);
  for (const n of back.graph.nodes) {
    const plan = INT8_STAGES[n.op];
    if (!plan) continue;
    const stages = q.nodes[n.name]!;
    t.equal(stages.length, plan.length, `${label} ${n.name} (${n.op}): ${plan.length} stages`);
    for (let k = 0; k + 1 < stages.length; k++) {
      t.not(stages[k]!.out[0], stages[k]!.in[0], `${label} ${n.name}: intermediate ${k} has its own scale`);
    }
    for (const [role] of plan) t.equal(back.tensors.get(n.weights[role]!)!.dtype, 'i8', `${label} ${n.name}.${role} is int8`);
  }
  const rows = test.shape[0]!;
  const want = Session.create(f32, { retainWeights: false }).runBatch(test).data;
  const s = Int8Session.create(back);
  const got = s.runBatch(test).data;
  const few = { shape: [100, ...test.shape.slice(1)], data: test.data.subarray(0, 100 * 784) };
  const again = Int8Session.create(full).runBatch(few).data;
  t.same(Array.from(got.subarray(0, again.length)), Array.from(again), `${label}: the file read back gives the same outputs`);
  const a = agreement(top1(got, rows), top1(want, rows));
  const accF = agreement(top1(want, rows), labels);
  const accQ = agreement(top1(got, rows), labels);
  t.ok(a >= min, `${label}: int8-full agrees with the f32 compressed model on ${(100 * a).toFixed(2)}% of ${rows} test images (>= ${100 * min}%); accuracy ${(100 * accQ).toFixed(2)}% vs f32 ${(100 * accF).toFixed(2)}%`);
  // The int8 outputs are the dequantised values: integers times the output scale. Checked on the
  // first 100 images (the same ones as the file round trip): a second integer run over all of them
  // took half of this file's time and checks the same identity.
  const [scale, zp] = q.values[back.graph.outputs[0]!]!;
  const ints = s.runInt8(s.quantizeInput(few))[back.graph.outputs[0]!]!;
  t.equal(ints.data.length, again.length);
  t.ok(ints.data.every((v, i) => Math.abs((v - zp) * scale - got[i]!) < 1e-6), `${label}: runBatch = dequantised runInt8 on ${few.shape[0]} images`);
  return full;
}

t.test('LeNet-5 x10 int8-full agrees with its f32 compressed model', async (t) => {
  const onnx = needFixture(t, 'lenet5_fashion.onnx');
  if (!onnx || !needFashion(t)) return;
  const dense = importOnnxFile(onnx);
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), 256);
  const calib = { shape: [256, 1, 28, 28], data: train.images };
  const ds = limitDataset(loadDataset('fashion-mnist', 'test'), TEST_IMAGES);
  const test = { shape: [ds.count, 1, 28, 28], data: ds.images };
  // The forms `convert --ratio 10` (auto) picks for this fixture: cp 92 for conv2, svd 21 for fc1.
  const x10 = compressModel(dense, { method: 'auto', ranks: { '/c2/Conv': { method: 'cp', ranks: [92] }, '/f1/Gemm': { method: 'svd', ranks: [21] } }, check: false }).model;
  t.same(x10.graph.nodes.filter((n) => n.op === 'cp_conv2d' || n.op === 'svd_dense').map((n) => n.name), ['/c2/Conv', '/f1/Gemm']);
  check(t, x10, calib, test, ds.labels, 0.97, 'x10 cp/svd');
  // The other chain kinds: svd_conv2d and tucker2_conv2d.
  const svd = compressModel(dense, { method: 'svd', ranks: { '/c2/Conv': 8, '/f1/Gemm': 8 }, check: false }).model;
  t.ok(svd.graph.nodes.some((n) => n.op === 'svd_conv2d'));
  check(t, svd, calib, test, ds.labels, 0.95, 'svd 8/8');
  const tucker = compressModel(dense, { method: 'auto', ranks: { '/c2/Conv': { method: 'tucker', ranks: [12, 16] }, '/f1/Gemm': { method: 'svd', ranks: [16] } }, check: false }).model;
  t.ok(tucker.graph.nodes.some((n) => n.op === 'tucker2_conv2d'));
  const full = check(t, tucker, calib, test, ds.labels, 0.95, 'tucker');
  t.equal(full.metadata['convert.quant'], 'int8-full');
  t.ok(full.metadata[INT8_FULL_KEY]);
});
