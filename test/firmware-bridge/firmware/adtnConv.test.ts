// The firmware's adtn_conv2d (core/ops/adtnconv.c: the circuit's state formed once at load in f32, in
// the node's tables, then the conv loops) against the Node runtime (W expanded from the exact MPS in
// f64 sums), through the host port's direct mode and its portable-loop build (host-ref), with f32,
// f16 and int8 stored circuits, arity 1, 2 and 3, strided, padded and dilated convs; the stored mcu
// plan's table count matches what the firmware allocates (it refuses a plan short of it).
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { writeFlm } from '../../../converter/writer.js';
import { quantizeTensor } from '../../../runtime/format/dtype.js';
import { readFlm } from '../../../runtime/format/reader.js';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { adtnLayout, adtnQubits, type AdtnPairing } from '../../../runtime/layers/adtnDense.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { argmax, buildPort, reference, runHost, seededRandom, TMP, worst } from './support.js';

const TOL = 1e-4;
const rnd = seededRandom(5151);

interface Spec { ws: [number, number, number, number]; depth: number; arity: number; pairing: AdtnPairing; bias: boolean; geo: Record<string, number[]>; pixels?: number }

/** An adtn_conv2d node with gates near the identity (so the state neither vanishes nor explodes). */
function convNode(name: string, input: string, s: Spec, dtype: 'f32' | 'f16' | 'i8', tensors: Map<string, StoredTensor>): GraphNode {
  const l = adtnLayout(adtnQubits(s.ws.reduce((a, b) => a * b, 1), s.arity), s.depth, s.arity, s.pairing);
  const D = 2 ** s.arity;
  const put = (role: string, shape: number[], f: (i: number) => number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const raw: StoredTensor = { name: `${name}.${role}`, dtype: 'f32', shape, data: Float32Array.from({ length: n }, (_, i) => f(i)) };
    tensors.set(raw.name, dtype === 'f32' || role === 'bias' ? raw : quantizeTensor(raw, dtype, dtype === 'i8' ? { perChannelAxis: 0 } : {}));
    return raw.name;
  };
  const weights: Record<string, string> = {
    start: put('start', [l.q, 2], () => 0.8 + 0.3 * rnd()),
    gates: put('gates', [l.gates, D, D], (i) => ((i % (D * D)) % (D + 1) === 0 ? 0.8 : 0) + 0.4 * rnd()),
  };
  if (s.bias) weights['bias'] = put('bias', [s.ws[0]], () => 0.3 * rnd());
  return { name, op: 'adtn_conv2d', inputs: [input], outputs: [`${name}.out`], attrs: { ...s.geo, group: 1, weight_shape: [...s.ws], depth: s.depth, arity: s.arity, pairing: s.pairing }, weights };
}

/** x [n, 3, 10, 10] -> adtn conv -> relu -> adtn conv -> flatten -> dense 10 */
function model(first: Spec, second: Spec, dtype: 'f32' | 'f16' | 'i8'): Model {
  const tensors = new Map<string, StoredTensor>();
  const a = convNode('a', 'x', first, dtype, tensors);
  const b = convNode('b', 'r.out', second, dtype, tensors);
  const ins = second.ws[0] * second.pixels!;
  tensors.set('d.weight', { name: 'd.weight', dtype: 'f32', shape: [10, ins], data: Float32Array.from({ length: 10 * ins }, () => 0.3 * rnd()) });
  const nodes: GraphNode[] = [
    a,
    { name: 'r', op: 'relu', inputs: ['a.out'], outputs: ['r.out'], attrs: {}, weights: {} },
    b,
    { name: 'f', op: 'flatten', inputs: ['b.out'], outputs: ['f.out'], attrs: { axis: 1 }, weights: {} },
    { name: 'd', op: 'dense', inputs: ['f.out'], outputs: ['d.out'], attrs: {}, weights: { weight: 'd.weight' } },
  ];
  return { graph: { inputs: [{ name: 'x', shape: [-1, 3, 10, 10] }], outputs: ['d.out'], nodes }, tensors, metadata: {} };
}

const pad1 = { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] };
const CASES: { name: string; first: Spec; second: Spec }[] = [
  {
    name: 'brickwall depth 3 (pad 1) / fixed depth 2 (stride 2, dilation (1, 2))',
    first: { ws: [6, 3, 3, 3], depth: 3, arity: 2, pairing: 'brickwall', bias: true, geo: pad1 },
    // 10x10 -> stride 2, kernel 3x3 dilated (1, 2), pads [1, 0, 0, 1]: OH 5, OW 4
    second: { ws: [5, 6, 3, 3], depth: 2, arity: 2, pairing: 'fixed', bias: false, geo: { strides: [2, 2], pads: [1, 0, 0, 1], dilations: [1, 2] }, pixels: 20 },
  },
  {
    name: 'arity 1 depth 2 / arity 3 depth 2',
    first: { ws: [4, 3, 3, 3], depth: 2, arity: 1, pairing: 'brickwall', bias: false, geo: pad1 },
    second: { ws: [4, 4, 5, 5], depth: 2, arity: 3, pairing: 'brickwall', bias: true, geo: { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1] }, pixels: 36 },
  },
];

t.test('adtn_conv2d on the host port (fast and portable loops) = the Node runtime', async (t) => {
  const bins = { host: buildPort(t, 'host'), 'host-ref': buildPort(t, 'host-ref') };
  if (!bins.host || !bins['host-ref']) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  const n = 3;
  for (const c of CASES) {
    for (const dtype of ['f32', 'f16', 'i8'] as const) {
      const file = resolve(TMP, `adtnconv-${CASES.indexOf(c)}-${dtype}.flm`);
      const bytes = writeFlm(model(c.first, c.second, dtype));
      writeFileSync(file, bytes);
      t.ok(readFlm(bytes).memoryPlan?.plans.some((p) => p.profile === 'mcu'), `${c.name} ${dtype}: an mcu plan is stored`);
      const x = Float32Array.from({ length: n * 300 }, () => rnd());
      const ref = reference(file, x, n);
      let scale = 0;
      for (const v of ref) scale = Math.max(scale, Math.abs(v));
      t.ok(scale > 1e-2, `${c.name} ${dtype}: outputs not vanishing (max |y| ${scale.toExponential(2)})`);
      for (const [port, bin] of Object.entries(bins)) {
        const dev = runHost(bin!, file, x, ref.length, `adtnconv-${port}`);
        const w = worst(dev, ref);
        t.ok(w <= TOL, `${c.name} ${dtype} ${port}: max scaled error ${w.toExponential(2)} <= ${TOL}`);
        let agree = 0;
        for (let s = 0; s < n; s++) if (argmax(dev, s * 10, 10) === argmax(ref, s * 10, 10)) agree++;
        t.equal(agree, n, `${c.name} ${dtype} ${port}: top-1 identical`);
      }
    }
  }
});
