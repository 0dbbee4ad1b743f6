// End-to-end: LeNet-5 (the shared fixture) compressed by one method, exported, and run by
// onnxruntime on the export and by the factorlite runtime on the model, on Fashion-MNIST.
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import type { Test } from 'tap';
import { compressModel, type Method } from '../../../converter/compress.js';
import { limitDataset, loadDataset } from '../../../converter/data/datasets.js';
import { argmaxRows, evaluate } from '../../../converter/evaluate.js';
import { exportOnnx } from '../../../converter/export/index.js';
import { importOnnxFile } from '../../../converter/onnx/index.js';
import { FACTOR_OPS, numel, type Model } from '../../../runtime/ir.js';
import { Session } from '../../../runtime/session.js';
import { needFashion, needFixture } from '../../support/require.js';

const { onnx } = onnxProto;
export const SAMPLES = 2000;
export const MIN_AGREEMENT = 0.999;

let source: Model | undefined;

/** Largest initializer of the export that comes from each factorised layer's tensors, vs its dense weight. */
function checkNoDenseWeight(t: Test, dense: Model, compressed: Model, bytes: Uint8Array): void {
  const inits = onnx.ModelProto.decode(bytes).graph!.initializer.map((i) => ({
    name: i.name!, size: i.dims.reduce((a: number, d) => a * Number(d), 1),
  }));
  const factorised = compressed.graph.nodes.filter((n) => FACTOR_OPS.has(n.op));
  t.ok(factorised.length > 0, 'the model has factorised layers');
  let smallestDense = Infinity;
  for (const node of factorised) {
    const orig = dense.graph.nodes.find((n) => n.name === node.name);
    const w = orig && dense.tensors.get(orig.weights['weight'] ?? '');
    if (!w) {
      t.fail(`no dense source for ${node.name}`);
      continue;
    }
    const full = numel(w.shape);
    smallestDense = Math.min(smallestDense, full);
    const own = inits.filter((i) => Object.values(node.weights).some((tn) => i.name === tn || i.name.startsWith(`${tn}:`)));
    t.ok(own.length > 0, `${node.name} (${node.op}) exports its factors`);
    const largest = Math.max(...own.map((i) => i.size));
    t.ok(largest < full, `${node.name} (${node.op}): largest factor initializer ${largest} < dense weight ${full}`);
  }
  // The largest factorised layer's dense weight appears nowhere in the graph.
  const biggest = Math.max(...factorised.map((n) => numel(dense.tensors.get(dense.graph.nodes.find((m) => m.name === n.name)!.weights['weight']!)!.shape)));
  t.ok(inits.every((i) => i.size < biggest), `no initializer has ${biggest} elements or more`);
}

export async function lenetAgreement(t: Test, method: Method): Promise<void> {
  const path = needFixture(t, 'lenet5_fashion.onnx');
  if (!path || !needFashion(t)) return;
  source ??= importOnnxFile(path);
  const { model } = compressModel(source, { method, ratio: 5 });
  const bytes = exportOnnx(model);
  checkNoDenseWeight(t, source, model, bytes);

  const ds = limitDataset(loadDataset('fashion-mnist', 'test'), SAMPLES);
  const ours = evaluate(Session.create(model), ds, { batch: 100 });
  const session = await ort.InferenceSession.create(bytes);
  const per = numel(ds.shape);
  const theirs = new Uint8Array(ds.count);
  for (let start = 0; start < ds.count; start += 100) {
    const n = Math.min(100, ds.count - start);
    const x = new ort.Tensor('float32', ds.images.subarray(start * per, (start + n) * per), [n, ...ds.shape]);
    const y = (await session.run({ [session.inputNames[0]!]: x }))[session.outputNames[0]!]!;
    argmaxRows(y.data as Float32Array, n, y.data.length / n, theirs, start);
  }
  await session.release();
  let same = 0;
  let correct = 0;
  for (let i = 0; i < ds.count; i++) {
    if (theirs[i] === ours.predictions[i]) same++;
    if (theirs[i] === ds.labels[i]) correct++;
  }
  const agreement = same / ds.count;
  t.ok(agreement >= MIN_AGREEMENT, `${method}: top-1 agreement ${(agreement * 100).toFixed(2)}% over ${ds.count} images (runtime ${(ours.accuracy * 100).toFixed(2)}%, onnxruntime ${(correct / ds.count * 100).toFixed(2)}%)`);
}
