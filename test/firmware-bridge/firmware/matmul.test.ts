// The firmware's matmul of two activations (core/ops/matmul.c) against the Node runtime through the
// host port's direct mode (fast and portable builds): the Gram product x x^T, a product whose left
// operand's leading axis broadcasts against the right's, and the PyTorch-exported self-similarity
// model (test/support/torch_models_norm.py Gram: softmax(q q^T / sqrt(C)) x, then a linear head),
// which used to be the example of an op the firmware lacks. Each file carries an mcu plan.
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import t from 'tap';
import { importOnnx } from '../../../converter/onnx/import.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import type { GraphNode, Model } from '../../../runtime/ir.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { Session } from '../../../runtime/session.js';
import { normModel } from '../../support/torchNormModels.js';
import { buildPort, runHost, seededRandom, TMP, worst } from './support.js';

const TOL = 1e-5;
const rnd = seededRandom(31337);

const node = (name: string, op: GraphNode['op'], inputs: string[], attrs: GraphNode['attrs'] = {}): GraphNode => ({ name, op, inputs, outputs: [`${name}.out`], attrs, weights: {} });

function model(input: number[], nodes: GraphNode[]): Model {
  return { graph: { inputs: [{ name: 'x', shape: [-1, ...input] }], outputs: [nodes[nodes.length - 1]!.outputs[0]!], nodes }, tensors: new Map(), metadata: {} };
}

const CASES: Array<[string, Model]> = [
  ['gram x x^T [1, 5, 7] @ [1, 7, 5]', model([5, 7], [node('t', 'transpose', ['x'], { perm: [0, 2, 1] }), node('m', 'matmul', ['x', 't.out'])])],
  ['broadcast [1, 3, 4, 6] @ [1, 1, 6, 4]', model([3, 4, 6], [
    node('t', 'transpose', ['x'], { perm: [0, 1, 3, 2] }),
    node('s', 'slice', ['t.out'], { axes: [1], starts: [1], ends: [2] }),
    node('m', 'matmul', ['x', 's.out']),
  ])],
  ['broadcast [1, 1, 4, 6] @ [1, 3, 6, 4]', model([3, 4, 6], [
    node('t', 'transpose', ['x'], { perm: [0, 1, 3, 2] }),
    node('s', 'slice', ['x'], { axes: [1], starts: [2], ends: [3] }),
    node('m', 'matmul', ['s.out', 't.out']),
  ])],
];

t.test('matmul of two activations on the host port = the Node runtime', async (t) => {
  const bins = { host: buildPort(t, 'host'), 'host-ref': buildPort(t, 'host-ref') };
  if (!bins.host || !bins['host-ref']) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  CASES.forEach(([what, m], i) => {
    const bytes = writeFlm(m);
    t.ok(readFlm(bytes).memoryPlan?.plans.some((p) => p.profile === 'mcu'), `${what}: an mcu plan is stored`);
    const file = resolve(TMP, `matmul-${i}.flm`);
    writeFileSync(file, bytes);
    const shape = [1, ...m.graph.inputs[0]!.shape.slice(1)];
    const x = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rnd() * 2);
    x[3] = 0; // a zero term the kernels skip
    const want = Session.create(readFlm(bytes)).runBatch({ shape, data: x }).data;
    for (const [build, bin] of Object.entries(bins)) {
      const w = worst(runHost(bin!, file, x, want.length, 'matmul'), want);
      t.ok(w <= TOL, `${what} ${build}: max scaled error ${w.toExponential(2)} <= ${TOL}`);
    }
  });
});

t.test('the PyTorch Gram model (softmax(q q^T / sqrt(C)) x) runs on the firmware', async (t) => {
  const bin = buildPort(t, 'host');
  const ex = normModel(t, 'gram', 13);
  if (!bin || !ex) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  const bytes = writeFlm(importOnnx(ex.dynamic));
  const m = readFlm(bytes);
  t.ok(m.graph.nodes.filter((n) => n.op === 'matmul').length >= 2, 'two matmuls of activations');
  t.ok(m.memoryPlan?.plans.some((p) => p.profile === 'mcu'), 'an mcu plan is stored');
  const file = resolve(TMP, 'matmul-gram.flm');
  writeFileSync(file, bytes);
  const shape = [1, ...m.graph.inputs[0]!.shape.slice(1)];
  const x = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rnd() * 2);
  const want = Session.create(m).runBatch({ shape, data: x }).data;
  const w = worst(runHost(bin, file, x, want.length, 'matmul'), want);
  t.ok(w <= 1e-4, `max scaled error ${w.toExponential(2)} <= 1e-4`);
});
