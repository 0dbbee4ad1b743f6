// PyTorch-exported models (test/support/torch_models.py) on the firmware's kernels, against the
// Node runtime, through the host port's direct mode: the residual net (dense, and factorised at
// ratio 2, where each block input stays alive across its branch for the Add), the 1-D CNN
// (its convs and pools run as 2-D kinds over [N, C, 1, L]), the encoder-decoder (ConvTranspose,
// skip Concat, nearest and bilinear Resize), the depthwise-separable net (PReLU, HardSwish,
// HardSigmoid, ReduceMean), the average-pool net (reflect Pad) and the normalisation net (Slice,
// LogSoftmax). A model with a node the firmware refuses (adtn_dense of arity 3) gets no "mcu" plan. Tolerance as in
// conformance.test.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import t from 'tap';
import { compressModel } from '../../../converter/compress.js';
import { importOnnx } from '../../../converter/onnx/import.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import type { Model } from '../../../runtime/ir.js';
import { LAYER_KINDS } from '../../../runtime/layers/registry.js';
import { mcuProfile, mcuRefusal, MCU_OPS } from '../../../runtime/plan/mcu.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { Session } from '../../../runtime/session.js';
import { Rng } from '../../converter/onnx/fixtures/build.js';
import { torchModel } from '../../support/torchModels.js';
import { buildPort, runHost, TMP } from './support.js';

const TOL = 1e-3;

t.test('residual and 1-D PyTorch models on the firmware agree with the Node runtime', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  // four calibration samples rather than the default 32 keep the rank search quick
  const calib = (m: Model) => new Rng(9).tensor([4, ...m.graph.inputs[0]!.shape.slice(1)]);
  const cases: Array<[string, 'resnet' | 'conv1d' | 'unet' | 'dsnet' | 'avgpad' | 'norm', (m: Model) => Model]> = [
    ['resnet dense', 'resnet', (m) => m],
    ['resnet svd ratio 2', 'resnet', (m) => compressModel(m, { method: 'svd', ratio: 2, calibration: calib(m) }).model],
    ['conv1d dense', 'conv1d', (m) => m],
    ['conv1d auto ratio 2', 'conv1d', (m) => compressModel(m, { method: 'auto', ratio: 2, calibration: calib(m) }).model],
    ['unet dense', 'unet', (m) => m],
    ['dsnet dense', 'dsnet', (m) => m],
    ['avgpad dense', 'avgpad', (m) => m],
    ['norm dense', 'norm', (m) => m],
  ];
  for (const [what, name, make] of cases) {
    const ex = torchModel(t, name, 13);
    if (!ex) return;
    const model = make(importOnnx(ex.bytes));
    const bytes = writeFlm(model);
    const stored = readFlm(bytes);
    const mcu = stored.memoryPlan?.plans.find((p) => p.profile === 'mcu');
    t.ok(mcu, `${what}: the file has an mcu plan`);
    if (what === 'conv1d dense') {
      t.same(mcu?.values.filter((v) => v.fused).length, 4, 'both 1-D conv -> relu -> pool runs stream as fused chains');
    }
    const file = resolve(TMP, `torch-${what.replace(/ /g, '-')}.flm`);
    writeFileSync(file, bytes);
    const n = 3;
    const shape = [n, ...ex.inputShape.slice(1)];
    const x = new Rng(21).tensor(shape);
    const ref = Session.create(stored).runBatch({ shape, data: x.data }).data;
    const dev = runHost(bin, file, x.data, ref.length, 'torch');
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(dev[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!)));
    t.ok(worst <= TOL, `${what}: max scaled error ${worst.toExponential(2)} <= ${TOL}`);
  }
});

t.test('a model with a node the firmware refuses gets no mcu plan', async (t) => {
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  // The f32 firmware runs every kind of the runtime (MCU_OPS is all of them), but core/ops/adtn.c
  // refuses an ADTN of arity 3 or 4 (UNSUPPORTED, adtn.test.ts), which the Node runtime runs.
  // features [3, 4]: 12 weights, Q = 4; depth 1, arity 3, brick-wall: one gate, at 0.
  const model = (arity: 2 | 3): Model => ({
    graph: {
      inputs: [{ name: 'x', shape: [-1, 4] }],
      outputs: ['a.out'],
      nodes: [
        { name: 'a', op: 'adtn_dense', inputs: ['x'], outputs: ['a.out'], attrs: { features: [3, 4], depth: 1, arity, pairing: 'brickwall' }, weights: { start: 'a.start', gates: 'a.gates' } },
      ],
    },
    tensors: new Map([
      ['a.start', { name: 'a.start', dtype: 'f32', shape: [4, 2], data: Float32Array.from({ length: 8 }, (_, i) => 0.5 + 0.1 * i) }],
      ['a.gates', { name: 'a.gates', dtype: 'f32', shape: [arity === 3 ? 1 : 2, 2 ** arity, 2 ** arity], data: Float32Array.from({ length: (arity === 3 ? 1 : 2) * 4 ** arity }, (_, i) => Math.sin(i)) }],
    ]),
    metadata: {},
  });
  t.ok([...LAYER_KINDS.values()].every((k) => MCU_OPS.has(k.ops[0])), 'the f32 firmware runs every kind');
  const three = readFlm(writeFlm(model(3)));
  t.notOk(three.memoryPlan?.plans.some((p) => p.profile === 'mcu'), 'adtn_dense arity 3: no mcu plan');
  t.match(mcuRefusal(three.graph.nodes[0]!, three), /arity 3/, 'the refusal names the arity');
  const y = Session.create(three).runBatch({ shape: [1, 4], data: Float32Array.from([1, -2, 0.5, 3]) });
  t.same(y.shape, [1, 3], 'the Node runtime runs it');
  t.ok(y.data.every(Number.isFinite) && y.data.some((v) => v !== 0), 'finite, non-zero outputs');
  // The same layer at arity 2 gets one (the planner refuses the node, not the kind).
  const two = readFlm(writeFlm(model(2)));
  t.ok(two.memoryPlan?.plans.some((p) => p.profile === 'mcu'), 'adtn_dense arity 2: an mcu plan');
});
