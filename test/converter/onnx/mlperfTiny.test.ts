// MLPerf Tiny's four reference models (ResNet-8, DS-CNN, MobileNetV1 x0.25, the FC autoencoder),
// exported by PyTorch: the dense import agrees with onnxruntime-node to 1e-4 (relative to the
// output's scale) and with PyTorch's own outputs, and eval reads their .npy inputs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { parseNpy } from '../../../converter/data/npy.js';
import { importOnnxFile } from '../../../converter/onnx/index.js';
import { Session } from '../../../runtime/session.js';
import { cliJson, python } from '../../support/cli.js';
import { MLPERF_MODELS, mlperfTinyModels } from '../../../scripts/mlperfTiny.js';
import { missing, needNumpy } from '../../support/require.js';

const EXPECT_OPS: Record<string, string[]> = {
  ic: ['conv2d', 'add', 'avg_pool'],
  kws: ['conv2d', 'avg_pool', 'dense'],
  vww: ['conv2d', 'avg_pool', 'dense'],
  ad: ['dense'],
};

let dir: string | undefined;
t.before(() => {
  try {
    python('import torch, numpy');
  } catch {
    return;
  }
  dir = mlperfTinyModels();
});

for (const name of MLPERF_MODELS) {
  t.test(`${name}: dense import agrees with onnxruntime-node and PyTorch`, async (t) => {
    if (!needNumpy(t)) return;
    if (!dir) return void missing(t, '/usr/bin/python3 cannot import torch (Debian python3-torch)');
    const x = parseNpy(readFileSync(join(dir, `${name}_x.npy`)), `${name}_x.npy`);
    const data = x.dtype === '|u1' ? x.data.map((v) => v / 255) : x.data;
    const n = Math.min(8, x.shape[0]!);
    const per = data.length / x.shape[0]!;
    const input = { shape: [n, ...x.shape.slice(1)], data: data.slice(0, n * per) };
    const ortSession = await ort.InferenceSession.create(join(dir, `${name}.onnx`));
    const want = (await ortSession.run({ input: new ort.Tensor('float32', input.data, input.shape) }))['output']!.data as Float32Array;
    const model = importOnnxFile(join(dir, `${name}.onnx`));
    const ops = new Set(model.graph.nodes.map((nd) => nd.op));
    for (const op of EXPECT_OPS[name]!) t.ok(ops.has(op), `${name} has ${op} (ops: ${[...ops].join(', ')})`);
    const got = Session.create(model).runBatch(input).data;
    t.equal(got.length, want.length, 'output size');
    const scale = Math.max(1, ...Array.from(want, Math.abs));
    let err = 0;
    for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i]! - want[i]!));
    t.ok(err / scale <= 1e-4, `max |runtime - onnxruntime| / scale = ${(err / scale).toExponential(2)} <= 1e-4`);
    const ref = parseNpy(readFileSync(join(dir, `${name}_ref.npy`)), 'ref').data;
    let errT = 0;
    for (let i = 0; i < want.length; i++) errT = Math.max(errT, Math.abs(got[i]! - ref[i]!));
    t.ok(errT / scale <= 1e-4, `max |runtime - PyTorch| / scale = ${(errT / scale).toExponential(2)} <= 1e-4`);
  });
}

t.test('eval reads each model\'s .npy inputs: PyTorch outputs as targets, IC labels as classes', async (t) => {
  if (!needNumpy(t)) return;
  if (!dir) return void missing(t, '/usr/bin/python3 cannot import torch (Debian python3-torch)');
  for (const name of ['kws', 'ad']) {
    const r = cliJson(['eval', join(dir, `${name}.onnx`), '--data', join(dir, `${name}_x.npy`), '--targets', join(dir, `${name}_ref.npy`), '--json']);
    t.equal(r.metric, 'values', name);
    t.ok(r.maxAbsError <= 1e-4, `${name}: max abs error against PyTorch ${r.maxAbsError}`);
  }
  const ic = cliJson(['eval', join(dir, 'ic.onnx'), '--data', join(dir, 'ic_x.npy'), '--labels', join(dir, 'ic_y.npy'), '--limit', '16', '--json']);
  t.equal(ic.metric, 'top1');
  t.equal(ic.samples, 16);
  // Top-1 from PyTorch's outputs on the same images.
  const ref = parseNpy(readFileSync(join(dir, 'ic_ref.npy')), 'ref').data;
  const y = parseNpy(readFileSync(join(dir, 'ic_y.npy')), 'y').data;
  let ok = 0;
  for (let i = 0; i < 16; i++) {
    let b = 0;
    for (let k = 1; k < 10; k++) if (ref[i * 10 + k]! > ref[i * 10 + b]!) b = k;
    if (b === y[i]) ok++;
  }
  t.equal(ic.correct, ok, 'same top-1 as PyTorch');
});
