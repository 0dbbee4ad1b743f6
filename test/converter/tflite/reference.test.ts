// tfjs-tflite (TensorFlow Lite in WebAssembly, in Chromium) as the reference, both ways:
//  - factorlite's exported .tflite, run by tfjs-tflite, against factorlite's runtime on the model;
//  - a .tflite written by a second writer (flatc from JSON with a schema subset), imported by
//    factorlite and run by its runtime, against tfjs-tflite on the same file.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { exportTflite } from '../../../converter/export/tflite.js';
import { exportTfliteInt8 } from '../../../converter/export/tfliteInt8.js';
import { importTflite, readTflite } from '../../../converter/tflite/index.js';
import { TensorType } from '../../../converter/tflite/schema.js';
import type { Model } from '../../../runtime/ir.js';
import { Session } from '../../../runtime/session.js';
import { needFashion, needFixture, needPath } from '../../support/require.js';
import { limitDataset, loadDataset } from '../../../converter/data/datasets.js';
import { importOnnxFile } from '../../../converter/onnx/index.js';
import { argmaxRows } from '../../../converter/evaluate.js';
import { needTfliteReference } from '../../support/needTflite.js';
import type { TfliteReference } from '../../../bench/lib/tfliteBrowser.js';
import { randArray } from '../export/harness.js';
import { depthwiseChain, factorChain, tensorNetModels, toNhwc } from './models.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const FLATC = '/usr/bin/flatc';

function maxAbs(a: Float32Array, b: Float32Array): number {
  let d = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

async function exported(t: Test, ref: TfliteReference, name: string, model: Model): Promise<void> {
  const { bytes } = exportTflite(model);
  const [c, h, w] = model.graph.inputs[0]!.shape.slice(1) as [number, number, number];
  const n = 4;
  const x = randArray(n * c * h * w);
  const ours = Session.create(model).runBatch({ shape: [n, c, h, w], data: x });
  const theirs = await ref.run(bytes, [1, h, w, c], toNhwc(x, n, c, h, w), n);
  const d = maxAbs(ours.data, theirs.values);
  t.ok(d <= 1e-4, `${name}: tfjs-tflite on the export vs factorlite on the model, max difference ${d.toExponential(2)} <= 1e-4`);
  // The other direction on the same file: factorlite imports it and agrees with tfjs-tflite.
  const back = Session.create(importTflite(bytes)).runBatch({ shape: [n, h, w, c], data: toNhwc(x, n, c, h, w) });
  const d2 = maxAbs(back.data, theirs.values);
  t.ok(d2 <= 1e-4, `${name}: factorlite on the imported file vs tfjs-tflite, max difference ${d2.toExponential(2)} <= 1e-4`);
}

const bytesOf = (a: Float32Array): number[] => Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

/** The JSON model for flatc: conv SAME+relu, depthwise VALID, add per-channel constant, max pool, reshape, fc, softmax. */
function secondWriterJson(): { json: string; w: Record<string, Float32Array> } {
  const w = {
    conv: randArray(3 * 3 * 3 * 2), convB: randArray(3), dw: randArray(3 * 3 * 3), dwB: randArray(3),
    addK: randArray(3), fc: randArray(4 * 12), fcB: randArray(4),
  };
  const shape = Int32Array.of(1, 12);
  const tensors = [
    { shape: [1, 6, 6, 2], type: 'FLOAT32', buffer: 1, name: 'image' },
    { shape: [3, 3, 3, 2], type: 'FLOAT32', buffer: 2, name: 'conv/filter' },
    { shape: [3], type: 'FLOAT32', buffer: 3, name: 'conv/bias' },
    { shape: [1, 6, 6, 3], type: 'FLOAT32', buffer: 4, name: 'conv' },
    { shape: [1, 3, 3, 3], type: 'FLOAT32', buffer: 5, name: 'dw/filter' },
    { shape: [3], type: 'FLOAT32', buffer: 6, name: 'dw/bias' },
    { shape: [1, 4, 4, 3], type: 'FLOAT32', buffer: 7, name: 'dw' },
    { shape: [3], type: 'FLOAT32', buffer: 8, name: 'add/k' },
    { shape: [1, 4, 4, 3], type: 'FLOAT32', buffer: 9, name: 'add' },
    { shape: [1, 2, 2, 3], type: 'FLOAT32', buffer: 10, name: 'pool' },
    { shape: [2], type: 'INT32', buffer: 11, name: 'reshape/shape' },
    { shape: [1, 12], type: 'FLOAT32', buffer: 12, name: 'flat' },
    { shape: [4, 12], type: 'FLOAT32', buffer: 13, name: 'fc/weights' },
    { shape: [4], type: 'FLOAT32', buffer: 14, name: 'fc/bias' },
    { shape: [1, 4], type: 'FLOAT32', buffer: 15, name: 'fc' },
    { shape: [1, 4], type: 'FLOAT32', buffer: 16, name: 'probs' },
  ];
  const data: (number[] | undefined)[] = [undefined, undefined, bytesOf(w.conv), bytesOf(w.convB), undefined, bytesOf(w.dw), bytesOf(w.dwB),
    undefined, bytesOf(w.addK), undefined, undefined, Array.from(new Uint8Array(shape.buffer)), undefined, bytesOf(w.fc), bytesOf(w.fcB), undefined, undefined];
  const codes = [3, 4, 0, 17, 22, 9, 25]; // CONV_2D, DEPTHWISE_CONV_2D, ADD, MAX_POOL_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX
  const model = {
    version: 3,
    description: 'second writer: flatc',
    operator_codes: codes.map((c) => ({ deprecated_builtin_code: c, builtin_code: c, version: 1 })),
    subgraphs: [{
      name: 'main',
      tensors,
      inputs: [0],
      outputs: [15],
      operators: [
        { opcode_index: 0, inputs: [0, 1, 2], outputs: [3], builtin_options_type: 'Conv2DOptions', builtin_options: { padding: 'SAME', stride_w: 1, stride_h: 1, fused_activation_function: 'RELU' } },
        { opcode_index: 1, inputs: [3, 4, 5], outputs: [6], builtin_options_type: 'DepthwiseConv2DOptions', builtin_options: { padding: 'VALID', stride_w: 1, stride_h: 1, depth_multiplier: 1 } },
        { opcode_index: 2, inputs: [6, 7], outputs: [8], builtin_options_type: 'AddOptions', builtin_options: { fused_activation_function: 'RELU6' } },
        { opcode_index: 3, inputs: [8], outputs: [9], builtin_options_type: 'Pool2DOptions', builtin_options: { padding: 'VALID', stride_w: 2, stride_h: 2, filter_width: 2, filter_height: 2 } },
        { opcode_index: 4, inputs: [9, 10], outputs: [11], builtin_options_type: 'ReshapeOptions', builtin_options: { new_shape: [1, 12] } },
        { opcode_index: 5, inputs: [11, 12, 13], outputs: [14], builtin_options_type: 'FullyConnectedOptions', builtin_options: { fused_activation_function: 'RELU_N1_TO_1' } },
        { opcode_index: 6, inputs: [14], outputs: [15], builtin_options_type: 'SoftmaxOptions', builtin_options: { beta: 1.5 } },
      ],
    }],
    buffers: data.map((d) => (d ? { data: d } : {})),
  };
  return { json: JSON.stringify(model), w };
}

t.test('tfjs-tflite and factorlite agree on factorlite exports and on a second writer\'s file', async (t) => {
  const ref = await needTfliteReference(t);
  if (!ref) return;
  await t.test('exports', async (t) => {
    await exported(t, ref, 'factor chain (svd, tucker2, cp, conv, pools, dense)', factorChain());
    await exported(t, ref, 'depthwise chain (PAD, add, mul, sigmoid, relu6, mean)', depthwiseChain());
    for (const [name, model] of tensorNetModels()) await exported(t, ref, name, model);
  });
  await t.test('int8 export (calibrated) runs in tfjs-tflite close to the float model', async (t) => {
    for (const [name, model] of [['factor chain', factorChain()], ['depthwise chain', depthwiseChain()], ...tensorNetModels()] as const) {
      const [c, h, w] = model.graph.inputs[0]!.shape.slice(1) as [number, number, number];
      const cal = randArray(64 * c * h * w);
      const { bytes } = exportTfliteInt8(model, { calibration: { shape: [64, c, h, w], data: cal } });
      const f = readTflite(bytes);
      const acts = f.subgraphs[0]!.tensors.filter((x) => !f.subgraphs[0]!.inputs.includes(x.index) && !f.subgraphs[0]!.outputs.includes(x.index) && (f.buffers[x.buffer]?.length ?? 0) === 0);
      t.ok(acts.every((x) => x.type === TensorType.INT8), `${name}: every inner activation is int8`);
      const n = 8;
      const x = cal.subarray(0, n * c * h * w);
      const ours = Session.create(model).runBatch({ shape: [n, c, h, w], data: x });
      const theirs = await ref.run(bytes, [1, h, w, c], toNhwc(x, n, c, h, w), n);
      let scale = 0;
      for (const v of ours.data) scale = Math.max(scale, Math.abs(v));
      const d = maxAbs(ours.data, theirs.values) / scale;
      t.ok(d <= 0.06, `${name}: int8 in tfjs-tflite vs float factorlite, max difference ${(100 * d).toFixed(2)}% of the output scale <= 6%`);
      // Import of the int8 file: weights stay int8 with their scales, the graph runs on real values.
      const imported = importTflite(bytes);
      const i8 = [...imported.tensors.values()].filter((w) => w.dtype === 'i8');
      t.ok(i8.length > 0 && i8.every((w) => w.quant !== undefined), `${name}: ${i8.length} int8 weights imported with their scales`);
      t.ok(imported.metadata['tflite.activation_quant'] !== undefined, `${name}: activation scales kept in metadata`);
      const back = Session.create(imported).runBatch({ shape: [n, h, w, c], data: toNhwc(x, n, c, h, w) });
      const d2 = maxAbs(back.data, theirs.values) / scale;
      t.ok(d2 <= 0.06, `${name}: factorlite on the imported int8 file vs tfjs-tflite, ${(100 * d2).toFixed(2)}% <= 6%`);
    }
  });
  await t.test('16x8 export (int16 activations, int8 weights) runs in tfjs-tflite close to the float model', async (t) => {
    for (const [name, model] of [['factor chain', factorChain()], ['depthwise chain', depthwiseChain()], ...tensorNetModels()] as const) {
      const [c, h, w] = model.graph.inputs[0]!.shape.slice(1) as [number, number, number];
      const cal = randArray(64 * c * h * w);
      const { bytes } = exportTfliteInt8(model, { calibration: { shape: [64, c, h, w], data: cal }, activationBits: 16 });
      const f = readTflite(bytes);
      const sg = f.subgraphs[0]!;
      const acts = sg.tensors.filter((x) => !sg.inputs.includes(x.index) && !sg.outputs.includes(x.index) && (f.buffers[x.buffer]?.length ?? 0) === 0);
      t.ok(acts.every((x) => x.type === TensorType.INT16 && x.quant?.zeroPoint.every((z) => z === 0)), `${name}: every inner activation is int16, zero point 0`);
      const n = 8;
      const x = cal.subarray(0, n * c * h * w);
      const ours = Session.create(model).runBatch({ shape: [n, c, h, w], data: x });
      const theirs = await ref.run(bytes, [1, h, w, c], toNhwc(x, n, c, h, w), n);
      let scale = 0;
      for (const v of ours.data) scale = Math.max(scale, Math.abs(v));
      const d = maxAbs(ours.data, theirs.values) / scale;
      t.ok(d <= 0.03, `${name}: 16x8 in tfjs-tflite vs float factorlite, max difference ${(100 * d).toFixed(2)}% of the output scale <= 3%`);
      const back = Session.create(importTflite(bytes)).runBatch({ shape: [n, h, w, c], data: toNhwc(x, n, c, h, w) });
      const d2 = maxAbs(back.data, theirs.values) / scale;
      t.ok(d2 <= 0.03, `${name}: factorlite on the imported 16x8 file vs tfjs-tflite, ${(100 * d2).toFixed(2)}% <= 3%`);
    }
  });
  await t.test('int8 classifier outputs: the top-1 range against min/max on FC-2 (fixture) and Fashion-MNIST', async (t) => {
    const onnx = needFixture(t, 'mlp_fashion.onnx');
    if (!onnx || !needFashion(t)) return;
    const model = importOnnxFile(onnx);
    const train = limitDataset(loadDataset('fashion-mnist', 'train'), 1000);
    const test = limitDataset(loadDataset('fashion-mnist', 'test'), 2000);
    const n = test.count;
    const calibration = { shape: [train.count, ...train.shape], data: train.images };
    const ours = new Uint8Array(n);
    argmaxRows(Session.create(model).runBatch({ shape: [n, ...test.shape], data: test.images }).data, n, 10, ours, 0);
    const measure = async (outputs: 'top1' | 'full'): Promise<{ agree: number; ties: number }> => {
      const { bytes } = exportTfliteInt8(model, { calibration, classes: 10, outputs });
      const theirs = await ref.run(bytes, [1, 28, 28, 1], test.images, n);
      const top = new Uint8Array(n);
      argmaxRows(theirs.values, n, 10, top, 0);
      let agree = 0;
      let ties = 0;
      for (let i = 0; i < n; i++) {
        if (top[i] === ours[i]) agree++;
        const row = theirs.values.subarray(i * 10, i * 10 + 10);
        if (row.filter((v) => v === row[top[i]!]).length > 1) ties++;
      }
      return { agree: agree / n, ties };
    };
    const full = await measure('full');
    const top1 = await measure('top1');
    t.ok(top1.ties < full.ties, `int8 outputs with tied top logits: ${top1.ties} (top-1 range) against ${full.ties} (min/max) of ${n} test images`);
    t.ok(top1.agree > full.agree, `top-1 agreement with the f32 runtime: ${(100 * top1.agree).toFixed(2)}% against ${(100 * full.agree).toFixed(2)}%`);
    t.ok(top1.agree >= 0.99, `int8 FC-2 agrees with the f32 runtime on ${(100 * top1.agree).toFixed(2)}% >= 99% of ${n} test images`);
  });
  await t.test('a .tflite written by flatc from JSON', async (t) => {
    if (!needPath(t, FLATC, 'flatc (Debian package flatbuffers-compiler)')) return;
    const dir = mkdtempSync(join(tmpdir(), 'factorlite-flatc-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const { json } = secondWriterJson();
    writeFileSync(join(dir, 'second.json'), json);
    const r = spawnSync(FLATC, ['-b', '-o', dir, join(HERE, 'tflite-subset.fbs'), join(dir, 'second.json')], { encoding: 'utf8' });
    if (r.status !== 0) {
      t.fail(`flatc failed: ${r.stderr}`);
      return;
    }
    const bytes = readFileSync(join(dir, 'second.tflite'));
    const model = importTflite(bytes);
    t.same(model.graph.inputs[0]!.shape, [-1, 6, 6, 2], 'input keeps the file\'s NHWC shape');
    const n = 5;
    const x = randArray(n * 6 * 6 * 2);
    const ours = Session.create(model).runBatch({ shape: [n, 6, 6, 2], data: x });
    const theirs = await ref.run(bytes, [1, 6, 6, 2], x, n);
    t.same(theirs.outShape, [1, 4], 'tfjs-tflite output shape');
    const d = maxAbs(ours.data, theirs.values);
    t.ok(d <= 1e-5, `factorlite on the imported file vs tfjs-tflite, max difference ${d.toExponential(2)} <= 1e-5`);
  });
});

