// The firmware's adtn_dense (core/ops/adtn.c: the circuit turned into an exact MPS at load, W's
// entries formed from it per inference) against the Node runtime (adtnRuntimePlan: W expanded once at
// load from the same MPS, or the input contracted with it by class; the gate-by-gate rebuild only
// where the MPS is not small),
// through the host port's direct mode, with f32, f16 and int8 stored networks; the stored mcu plan's
// scratch is what the firmware's prepare asks for (it refuses a plan whose scratch is short); the
// MPS bonds stay within 4^ceil(depth / 2); both evaluation paths (per weight, by class) run; arity
// 3 is refused by name.
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { writeFlm } from '../../../converter/writer.js';
import { quantizeTensor } from '../../../runtime/format/dtype.js';
import { readFlm } from '../../../runtime/format/reader.js';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { adtnBonds, adtnLayout, adtnMcuPlan, adtnQubits, type AdtnPairing } from '../../../runtime/layers/adtnDense.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { argmax, buildPort, reference, runHost, seededRandom, TMP, worst } from './support.js';

const TOL = 1e-4;
const rnd = seededRandom(4242);

interface Spec { out: number; inF: number; depth: number; arity: number; pairing: AdtnPairing; bias: boolean }

/** An adtn_dense node with gates near the identity (so the state neither vanishes nor explodes). */
function adtnNode(name: string, input: string, s: Spec, dtype: 'f32' | 'f16' | 'i8', tensors: Map<string, StoredTensor>): GraphNode {
  const l = adtnLayout(adtnQubits(s.out * s.inF, s.arity), s.depth, s.arity, s.pairing);
  const D = 2 ** s.arity;
  const put = (role: string, shape: number[], f: (i: number) => number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const raw: StoredTensor = { name: `${name}.${role}`, dtype: 'f32', shape, data: Float32Array.from({ length: n }, (_, i) => f(i)) };
    tensors.set(raw.name, dtype === 'f32' || role === 'bias' ? raw : quantizeTensor(raw, dtype, dtype === 'i8' ? { perChannelAxis: 0 } : {}));
    return raw.name;
  };
  const weights: Record<string, string> = {
    start: put('start', [l.q, 2], () => 0.8 + 0.4 * rnd()),
    gates: put('gates', [l.gates, D, D], (i) => ((i % (D * D)) % (D + 1) === 0 ? 0.8 : 0) + 0.5 * rnd()),
  };
  if (s.bias) weights['bias'] = put('bias', [s.out], () => 0.3 * rnd());
  return { name, op: 'adtn_dense', inputs: [input], outputs: [`${name}.out`], attrs: { features: [s.out, s.inF], depth: s.depth, arity: s.arity, pairing: s.pairing }, weights };
}

/** x [n, 37] -> adtn (23 x 37, Q 10) -> relu -> adtn (10 x 23, Q 8) */
function model(first: Spec, second: Spec, dtype: 'f32' | 'f16' | 'i8'): Model {
  const tensors = new Map<string, StoredTensor>();
  const nodes: GraphNode[] = [
    adtnNode('a', 'x', first, dtype, tensors),
    { name: 'r', op: 'relu', inputs: ['a.out'], outputs: ['r.out'], attrs: {}, weights: {} },
    adtnNode('b', 'r.out', second, dtype, tensors),
  ];
  return { graph: { inputs: [{ name: 'x', shape: [-1, first.inF] }], outputs: ['b.out'], nodes }, tensors, metadata: {} };
}

const CASES: { name: string; first: Spec; second: Spec }[] = [
  { name: 'brickwall depth 6 / fixed depth 3', first: { out: 23, inF: 37, depth: 6, arity: 2, pairing: 'brickwall', bias: true }, second: { out: 10, inF: 23, depth: 3, arity: 2, pairing: 'fixed', bias: false } },
  { name: 'brickwall depth 1 / arity 1 depth 2', first: { out: 23, inF: 37, depth: 1, arity: 2, pairing: 'brickwall', bias: false }, second: { out: 10, inF: 23, depth: 2, arity: 1, pairing: 'brickwall', bias: true } },
];

t.test('the MPS bonds: within 4^ceil(depth / 2) (2^depth at even depth), 2^k from the left and 2^(Q-k) from the right', async (t) => {
  for (const [q, depth] of [[20, 4], [20, 6], [10, 3], [9, 7]] as const) {
    const { bonds } = adtnBonds(adtnLayout(q, depth, 2, 'brickwall'));
    t.equal(bonds.length, q + 1);
    t.ok(bonds.every((r, k) => r <= 4 ** Math.ceil(depth / 2) && r <= 2 ** k && r <= 2 ** (q - k)), `Q ${q} depth ${depth}: bonds ${bonds.join(' ')}`);
  }
  // FC-2's hidden layer at depth 4: bonds of at most 16, cores of 16 x 2 x 16 floats at most
  const fc2 = adtnBonds(adtnLayout(adtnQubits(1024 * 784), 4, 2, 'brickwall'));
  t.equal(Math.max(...fc2.bonds), 16);
  t.ok(fc2.coreMax.every((c) => c <= 512));
  // the models below run both of the firmware's paths: per weight, and by class (input summed first)
  const paths = CASES.flatMap((c) => [c.first, c.second]).map((s) => adtnMcuPlan(adtnLayout(adtnQubits(s.out * s.inF, s.arity), s.depth, s.arity, s.pairing), s.out, s.inF).z);
  t.ok(paths.includes(true) && paths.includes(false), `paths ${paths.join(' ')}`);
  // FC-2's hidden layer by class: fewer multiply-adds than its dense product (802,816)
  const p = adtnMcuPlan(adtnLayout(adtnQubits(1024 * 784), 4, 2, 'brickwall'), 1024, 784);
  t.same([p.z, p.b, p.classes], [true, 9, 49]);
  t.ok(p.work < 1024 * 784, `work ${p.work}`);
});

t.test('adtn_dense on the host port = the Node runtime', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  const n = 4;
  for (const c of CASES) {
    for (const dtype of ['f32', 'f16', 'i8'] as const) {
      const file = resolve(TMP, `adtn-${CASES.indexOf(c)}-${dtype}.flm`);
      const bytes = writeFlm(model(c.first, c.second, dtype));
      writeFileSync(file, bytes);
      t.ok(readFlm(bytes).memoryPlan?.plans.some((p) => p.profile === 'mcu'), `${c.name} ${dtype}: an mcu plan is stored`);
      const x = Float32Array.from({ length: n * c.first.inF }, () => rnd());
      const ref = reference(file, x, n);
      const dev = runHost(bin, file, x, ref.length, 'adtn');
      const w = worst(dev, ref);
      let scale = 0;
      for (const v of ref) scale = Math.max(scale, Math.abs(v));
      t.ok(scale > 1e-3, `${c.name} ${dtype}: outputs not vanishing (max |y| ${scale.toExponential(2)})`);
      t.ok(w <= TOL, `${c.name} ${dtype}: max scaled error ${w.toExponential(2)} <= ${TOL}`);
      let agree = 0;
      for (let s = 0; s < n; s++) if (argmax(dev, s * 10, 10) === argmax(ref, s * 10, 10)) agree++;
      t.equal(agree, n, `${c.name} ${dtype}: top-1 identical`);
    }
  }
});

t.test('the firmware refuses arity 3 by name', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  mkdirSync(TMP, { recursive: true });
  const m = model({ out: 23, inF: 37, depth: 2, arity: 3, pairing: 'brickwall', bias: false }, CASES[0]!.second, 'f32');
  const file = resolve(TMP, 'adtn-arity3.flm');
  writeFileSync(file, writeFlm(m, { memoryPlan: 'none' }));
  const r = (() => {
    try {
      runHost(bin, file, new Float32Array(37), 10, 'adtn');
      return 'ran';
    } catch (e) {
      return String(e);
    }
  })();
  t.match(r, /UNSUPPORTED.*arity/, `refused: ${r.split('\n')[0]}`);
});
