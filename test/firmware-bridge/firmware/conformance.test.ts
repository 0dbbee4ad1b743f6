// The firmware's kernels against the Node runtime (runtime/session.ts), through the host port's
// direct mode (fl-host --run: f32 LE in, f32 LE out). Two parts:
//  (1) small synthetic graphs that exercise every op and attribute the firmware runs (groups,
//      strides, pads, dilations, ceil mode, broadcasting, f16 and per-tensor / per-channel int8);
//  (2) models made by `factorlite convert` from the LeNet-5 and FC-2 fixtures with the factor
//      methods, on Fashion-MNIST test images.
// Tolerance: |device - node| <= 1e-3 * max(1, |node|) per logit (the firmware accumulates in f32,
// the reference partly in f64), and the top-1 class identical.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import type { FuseRule } from '../../../runtime/plan/fuse.js';
import { quantizeTensor } from '../../../runtime/format/dtype.js';
import { needFashion } from '../../support/require.js';
import { TMP, argmax, buildPort, convert, fashion, reference, seededRandom } from './support.js';

const TOL = 1e-3;

/** nomap: the store behaves like flash that is not memory-mapped (every read through the port,
 * per-channel scales parsed from the header when used), as on the AVR. */
function runDevice(bin: string, file: string, x: Float32Array, outLen: number, nomap = false): Float32Array {
  mkdirSync(TMP, { recursive: true });
  const inp = resolve(TMP, `in-${process.pid}.bin`);
  const out = resolve(TMP, `out-${process.pid}.bin`);
  writeFileSync(inp, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
  const r = spawnSync(bin, ['--run', file, inp, out], { encoding: 'utf8', env: { ...process.env, FL_HOST_NOMAP: nomap ? '1' : '0' } });
  if (r.status !== 0) throw new Error(`fl-host --run ${file}: ${r.stderr.trim()}`);
  const b = readFileSync(out);
  const y = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  if (y.length !== outLen) throw new Error(`fl-host wrote ${y.length} floats, expected ${outLen}`);
  return y;
}

function compare(t: Test, what: string, dev: Float32Array, ref: Float32Array, classes: number): void {
  let worst = 0;
  let agree = 0;
  const n = ref.length / classes;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(dev[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!)));
  for (let s = 0; s < n; s++) if (argmax(dev, s * classes, classes) === argmax(ref, s * classes, classes)) agree++;
  t.ok(worst <= TOL, `${what}: max scaled logit error ${worst.toExponential(2)} <= ${TOL}`);
  t.equal(agree, n, `${what}: top-1 identical on ${n} samples`);
}
type Test = typeof t;

// ---- synthetic graphs ----
const rnd = seededRandom(12345);
function tensor(name: string, shape: number[], scale = 0.5): StoredTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rnd() * scale;
  return { name, dtype: 'f32', shape, data };
}
function node(name: string, op: GraphNode['op'], inputs: string[], attrs: GraphNode['attrs'] = {}, weights: Record<string, string> = {}): GraphNode {
  return { name, op, inputs, outputs: [`${name}.out`], attrs, weights };
}
function model(input: number[], nodes: GraphNode[], tensors: StoredTensor[], dtype: 'f32' | 'f16' | 'i8'): Model {
  const m = new Map<string, StoredTensor>();
  for (const tt of tensors) {
    const q = dtype === 'f32' || tt.shape.length === 1 ? tt
      : quantizeTensor(tt, dtype, dtype === 'i8' && tt.shape[0]! > 1 ? { perChannelAxis: 0 } : {});
    m.set(tt.name, q);
  }
  return {
    graph: { inputs: [{ name: 'x', shape: [-1, ...input.slice(1)] }], outputs: [`${nodes[nodes.length - 1]!.name}.out`], nodes },
    tensors: m,
    metadata: {},
  };
}

/** Graphs covering the firmware's ops; each ends in a flat logit vector. */
function syntheticModels(dtype: 'f32' | 'f16' | 'i8'): Array<{ name: string; model: Model; input: number[] }> {
  const out: Array<{ name: string; model: Model; input: number[] }> = [];
  // conv (groups, stride, pads, dilation) -> leaky_relu -> max_pool (ceil, pads) -> svd_conv2d -> avg_pool -> flatten -> dense
  out.push({
    name: 'conv-pools',
    input: [1, 4, 11, 10],
    model: model([1, 4, 11, 10], [
      node('c1', 'conv2d', ['x'], { strides: [2, 1], pads: [1, 2, 0, 1], dilations: [1, 2], group: 2 }, { weight: 'c1.w', bias: 'c1.b' }),
      node('a1', 'leaky_relu', ['c1.out'], { alpha: 0.1 }),
      node('p1', 'max_pool', ['a1.out'], { kernel: [2, 3], strides: [2, 2], pads: [0, 1, 1, 0], dilations: [1, 1], ceil_mode: 1 }),
      node('c2', 'svd_conv2d', ['p1.out'], { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }, { v: 'c2.v', u: 'c2.u', bias: 'c2.b' }),
      node('p2', 'avg_pool', ['c2.out'], { kernel: [2, 2], strides: [1, 2], pads: [1, 0, 0, 1], ceil_mode: 0, count_include_pad: 0 }),
      node('f', 'flatten', ['p2.out'], { axis: 1 }),
      node('d', 'dense', ['f.out'], {}, { weight: 'd.w', bias: 'd.b' }),
    ], [tensor('c1.w', [6, 2, 3, 2]), tensor('c1.b', [6]), tensor('c2.v', [3, 6, 3, 3]), tensor('c2.u', [5, 3]), tensor('c2.b', [5]),
      tensor('d.w', [7, 5 * 3 * 3]), tensor('d.b', [7])], dtype),
  });
  // tucker2 and cp convs with stride/pad/dilation, global avg pool, sigmoid, tanh, clip
  out.push({
    name: 'tucker-cp',
    input: [1, 3, 9, 9],
    model: model([1, 3, 9, 9], [
      node('t', 'tucker2_conv2d', ['x'], { strides: [1, 2], pads: [1, 0, 1, 2], dilations: [2, 1], group: 1 }, { u_in: 't.ui', core: 't.core', u_out: 't.uo', bias: 't.b' }),
      node('s', 'sigmoid', ['t.out']),
      node('c', 'cp_conv2d', ['s.out'], { strides: [2, 1], pads: [1, 1, 0, 1], dilations: [1, 2], group: 1 }, { a_in: 'c.ai', k_h: 'c.kh', k_w: 'c.kw', a_out: 'c.ao', bias: 'c.b' }),
      node('h', 'tanh', ['c.out']),
      node('g', 'global_avg_pool', ['h.out']),
      node('k', 'clip', ['g.out'], { min: -0.2, max: 0.3 }),
      node('r', 'reshape', ['k.out'], { shape: [0, -1] }),
    ], [tensor('t.ui', [2, 3]), tensor('t.core', [4, 2, 3, 2]), tensor('t.uo', [6, 4]), tensor('t.b', [6]),
      tensor('c.ai', [3, 6]), tensor('c.kh', [3, 3]), tensor('c.kw', [3, 2]), tensor('c.ao', [5, 3]), tensor('c.b', [5])], dtype),
  });
  // fused conv -> [activation] -> pool chains (the mcu plan streams them, FORMAT section 7): every
  // conv kind, each activation or none, max and avg pools with pads, ceil mode, count_include_pad,
  // overlapping windows and a window of more than 16 positions (the kernel's block size)
  out.push({
    name: 'fused-conv-pool',
    input: [1, 3, 14, 13],
    model: model([1, 3, 14, 13], [
      node('t', 'tucker2_conv2d', ['x'], { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }, { u_in: 't.ui', core: 't.core', u_out: 't.uo', bias: 't.b' }),
      node('ta', 'relu', ['t.out']),
      node('tp', 'avg_pool', ['ta.out'], { kernel: [3, 2], strides: [2, 2], pads: [1, 0, 1, 1], ceil_mode: 1, count_include_pad: 1 }),
      node('c', 'cp_conv2d', ['tp.out'], { strides: [1, 1], pads: [2, 1, 2, 1], dilations: [1, 1], group: 1 }, { a_in: 'c.ai', k_h: 'c.kh', k_w: 'c.kw', a_out: 'c.ao', bias: 'c.b' }),
      node('ca', 'clip', ['c.out'], { min: -0.2, max: 0.3 }),
      node('cp', 'max_pool', ['ca.out'], { kernel: [5, 4], strides: [1, 2], pads: [0, 1, 1, 0], dilations: [1, 1], ceil_mode: 0 }),
      node('s', 'svd_conv2d', ['cp.out'], { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }, { v: 's.v', u: 's.u', bias: 's.b' }),
      node('sa', 'tanh', ['s.out']),
      node('sp', 'max_pool', ['sa.out'], { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil_mode: 1 }),
      node('g', 'conv2d', ['sp.out'], { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 2 }, { weight: 'g.w', bias: 'g.b' }),
      node('ga', 'sigmoid', ['g.out']),
      node('gp', 'avg_pool', ['ga.out'], { kernel: [2, 1], strides: [1, 1], pads: [0, 0, 0, 0], ceil_mode: 0, count_include_pad: 0 }),
      node('l', 'conv2d', ['gp.out'], { strides: [1, 1], pads: [1, 0, 0, 0], dilations: [1, 1], group: 1 }, { weight: 'l.w', bias: 'l.b' }),
      node('la', 'leaky_relu', ['l.out'], { alpha: 0.1 }),
      node('lp', 'max_pool', ['la.out'], { kernel: [2, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], ceil_mode: 0 }),
      node('m', 'conv2d', ['lp.out'], { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 }, { weight: 'm.w' }),
      node('mp', 'max_pool', ['m.out'], { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], ceil_mode: 0 }),
      node('f', 'flatten', ['mp.out'], { axis: 1 }),
      node('d', 'dense', ['f.out'], {}, { weight: 'd.w', bias: 'd.b' }),
    ], [tensor('t.ui', [2, 3]), tensor('t.core', [4, 2, 3, 3]), tensor('t.uo', [6, 4]), tensor('t.b', [6]),
      tensor('c.ai', [3, 6]), tensor('c.kh', [3, 3]), tensor('c.kw', [3, 3]), tensor('c.ao', [5, 3]), tensor('c.b', [5]),
      tensor('s.v', [4, 5, 3, 3]), tensor('s.u', [6, 4]), tensor('s.b', [6]), tensor('g.w', [4, 3, 2, 2]), tensor('g.b', [4]),
      tensor('l.w', [3, 4, 1, 1]), tensor('l.b', [3]), tensor('m.w', [2, 3, 1, 1]), tensor('d.w', [7, 4]), tensor('d.b', [7])], dtype),
  });
  // fused dense | svd_dense -> [activation] -> dense chains (the mcu plan streams them, FORMAT
  // section 7): both producers, every activation or none, with and without biases, a chain whose
  // producer reads the previous chain's output
  out.push({
    name: 'fused-dense',
    input: [1, 20],
    model: model([1, 20], [
      node('d1', 'dense', ['x'], {}, { weight: 'd1.w', bias: 'd1.b' }),
      node('a1', 'relu', ['d1.out']),
      node('d2', 'dense', ['a1.out'], {}, { weight: 'd2.w', bias: 'd2.b' }),
      node('s1', 'svd_dense', ['d2.out'], {}, { u: 's1.u', v: 's1.v', bias: 's1.b' }),
      node('a2', 'tanh', ['s1.out']),
      node('d3', 'dense', ['a2.out'], {}, { weight: 'd3.w' }),
      node('s2', 'svd_dense', ['d3.out'], {}, { u: 's2.u', v: 's2.v' }),
      node('d4', 'dense', ['s2.out'], {}, { weight: 'd4.w', bias: 'd4.b' }),
      node('d5', 'dense', ['d4.out'], {}, { weight: 'd5.w', bias: 'd5.b' }),
      node('k', 'clip', ['d5.out'], { min: -0.3, max: 0.4 }),
      node('d6', 'dense', ['k.out'], {}, { weight: 'd6.w', bias: 'd6.b' }),
      node('s3', 'svd_dense', ['d6.out'], {}, { u: 's3.u', v: 's3.v', bias: 's3.b' }),
      node('a3', 'sigmoid', ['s3.out']),
      node('d7', 'dense', ['a3.out'], {}, { weight: 'd7.w', bias: 'd7.b' }),
      node('d8', 'dense', ['d7.out'], {}, { weight: 'd8.w' }),
      node('a4', 'leaky_relu', ['d8.out'], { alpha: 0.2 }),
      node('d9', 'dense', ['a4.out'], {}, { weight: 'd9.w', bias: 'd9.b' }),
    ], [tensor('d1.w', [24, 20]), tensor('d1.b', [24]), tensor('d2.w', [16, 24]), tensor('d2.b', [16]),
      tensor('s1.u', [18, 3]), tensor('s1.v', [3, 16]), tensor('s1.b', [18]), tensor('d3.w', [12, 18]),
      tensor('s2.u', [14, 4]), tensor('s2.v', [4, 12]), tensor('d4.w', [10, 14]), tensor('d4.b', [10]),
      tensor('d5.w', [11, 10]), tensor('d5.b', [11]), tensor('d6.w', [7, 11]), tensor('d6.b', [7]),
      tensor('s3.u', [13, 3]), tensor('s3.v', [3, 7]), tensor('s3.b', [13]), tensor('d7.w', [8, 13]), tensor('d7.b', [8]),
      tensor('d8.w', [9, 8]), tensor('d9.w', [6, 9]), tensor('d9.b', [6])], dtype),
  });
  // dense factor layers in a chain, with add/mul broadcasting of a stored tensor and softmax
  out.push({
    name: 'factor-dense',
    input: [1, 24],
    model: model([1, 24], [
      node('tt', 'tt_dense', ['x'], { out_modes: [2, 3, 2], in_modes: [2, 4, 3] }, { 'core.0': 'tt.0', 'core.1': 'tt.1', 'core.2': 'tt.2', bias: 'tt.b' }),
      node('a', 'relu', ['tt.out']),
      node('tr', 'tr_dense', ['a.out'], { out_modes: [4, 5], in_modes: [3, 4] }, { 'core.0': 'tr.0', 'core.1': 'tr.1', bias: 'tr.b' }),
      node('ad', 'add', ['tr.out', 'bias20']),
      node('ttl', 'ttl_dense', ['ad.out'], { out_modes: [3, 4], in_modes: [4, 5] }, { core: 'l.core', 'factor.0': 'l.f0', 'factor.1': 'l.f1', 'factor.2': 'l.f2', 'factor.3': 'l.f3', bias: 'l.b' }),
      node('ml', 'mul', ['ttl.out', 'gain12']),
      node('sv', 'svd_dense', ['ml.out'], {}, { u: 'sv.u', v: 'sv.v', bias: 'sv.b' }),
      node('id', 'identity', ['sv.out']),
      node('sm', 'softmax', ['id.out'], { axis: -1 }),
    ], [tensor('tt.0', [1, 2, 2, 3]), tensor('tt.1', [3, 3, 4, 2]), tensor('tt.2', [2, 2, 3, 1]), tensor('tt.b', [12]),
      tensor('tr.0', [2, 4, 3, 3]), tensor('tr.1', [3, 5, 4, 2]), tensor('tr.b', [20]), tensor('bias20', [20]),
      tensor('l.core', [2, 3, 3, 2]), tensor('l.f0', [3, 2]), tensor('l.f1', [4, 3]), tensor('l.f2', [4, 3]), tensor('l.f3', [5, 2]), tensor('l.b', [12]),
      tensor('gain12', [1, 12]), tensor('sv.u', [9, 4]), tensor('sv.v', [4, 12]), tensor('sv.b', [9])], dtype),
  });
  return out;
}

t.test('synthetic graphs: every op the firmware runs, f32 / f16 / int8 weights', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  for (const dtype of ['f32', 'f16', 'i8'] as const) {
    for (const { name, model: m, input } of syntheticModels(dtype)) {
      const file = resolve(TMP, `synthetic-${name}-${dtype}.flm`);
      const bytes = writeFlm(m);
      writeFileSync(file, bytes);
      if (name === 'fused-conv-pool') {
        // the firmware runs this graph as streamed chains: every pre-pool value is fused
        const plan = readFlm(bytes).memoryPlan?.plans.find((p) => p.profile === 'mcu');
        const fused = plan?.values.filter((v) => v.fused).map((v) => v.name) ?? [];
        t.same(fused.sort(), ['c.out', 'ca.out', 'g.out', 'ga.out', 'l.out', 'la.out', 'm.out', 's.out', 'sa.out', 't.out', 'ta.out'],
          `${name} ${dtype}: the mcu plan fuses the conv -> [act] -> pool intermediates`);
      }
      if (name === 'fused-dense') {
        // the hidden vectors of the six dense chains are never stored
        const plan = readFlm(bytes).memoryPlan?.plans.find((p) => p.profile === 'mcu');
        const fused = plan?.values.filter((v) => v.fused).map((v) => v.name) ?? [];
        t.same(fused.sort(), ['a1.out', 'a2.out', 'a3.out', 'a4.out', 'd1.out', 'd5.out', 'd8.out', 'k.out', 's1.out', 's2.out', 's3.out'],
          `${name} ${dtype}: the mcu plan fuses the dense chains' intermediates`);
      }
      const n = 3;
      const per = input.reduce((a, b) => a * b, 1);
      const x = new Float32Array(n * per);
      for (let i = 0; i < x.length; i++) x[i] = rnd() * 2;
      const ref = reference(file, x, n);
      const classes = ref.length / n;
      for (const nomap of [false, true]) {
        const dev = runDevice(bin, file, x, ref.length, nomap);
        compare(t, `${name} ${dtype}${nomap ? ' (store read through the port)' : ''}`, dev, ref, classes);
      }
    }
  }
});

t.test('converted fixtures on Fashion-MNIST', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin || !needFashion(t)) return;
  const specs: Array<['lenet5' | 'mlp', string, string]> = [
    ['lenet5', 'tt', 'int8'], // conv2d, tucker2_conv2d, tt_dense, dense; int8 per-channel
    ['lenet5', 'cp', 'f16'], // cp_conv2d, svd_dense; f16
    ['mlp', 'tr', 'int8'], // tr_dense
    ['lenet5', 'svd', 'f16'], // svd_conv2d, svd_dense; f16
  ];
  const n = 8;
  const { f32 } = fashion(n);
  for (const [fixture, method, quant] of specs) {
    const file = await convert(t, fixture, method, quant);
    if (!file) continue;
    const ref = reference(file, f32, n);
    for (const nomap of [false, true]) {
      const dev = runDevice(bin, file, f32, ref.length, nomap);
      compare(t, `${fixture} ${method} ${quant}${nomap ? ' (store read through the port)' : ''}`, dev, ref, 10);
    }
  }
});

t.test('the firmware refuses a plan that fuses a chain it does not stream', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  const m = model([1, 6], [
    node('d', 'dense', ['x'], {}, { weight: 'd.w', bias: 'd.b' }),
    node('sm', 'softmax', ['d.out'], { axis: -1 }),
    node('e', 'dense', ['sm.out'], {}, { weight: 'e.w' }),
  ], [tensor('d.w', [5, 6]), tensor('d.b', [5]), tensor('e.w', [4, 5])], 'f32');
  // a planner that believes the device streams dense -> softmax (not an activation the firmware
  // allows in a chain) and dense -> [act] -> dense: its plan fuses d.out
  const fake: FuseRule = { name: 'dense-softmax', producers: new Set(['dense']), consumers: new Set(['softmax']), oneRow: true };
  registerProfile({ ...mcuProfile, fuses: [fake] });
  let bytes: Uint8Array;
  try {
    bytes = writeFlm(m);
  } finally {
    registerProfile(mcuProfile);
  }
  const plan = readFlm(bytes).memoryPlan?.plans.find((p) => p.profile === 'mcu');
  t.same(plan?.values.filter((v) => v.fused).map((v) => v.name), ['d.out'], 'the stored mcu plan fuses d.out');
  const file = resolve(TMP, 'fused-refused.flm');
  mkdirSync(TMP, { recursive: true });
  writeFileSync(file, bytes);
  const err = (() => {
    try {
      runDevice(bin, file, new Float32Array(6), 4);
      return 'ran';
    } catch (e) {
      return String(e);
    }
  })();
  t.match(err, /FLM_MEMORY_PLAN/, `refused at prepare: ${err.split('\n')[0]}`);
  // the same graph planned by the real profile fuses nothing and runs
  const good = resolve(TMP, 'fused-none.flm');
  writeFileSync(good, writeFlm(m));
  t.notOk(readFlm(readFileSync(good)).memoryPlan?.plans.find((p) => p.profile === 'mcu')?.values.some((v) => v.fused), 'the mcu profile fuses nothing here');
  const x = new Float32Array([0.5, -1, 0.25, 2, -0.75, 1]);
  compare(t, 'dense -> softmax -> dense unfused', runDevice(bin, good, x, 4), reference(good, x, 1), 4);
});

t.test('the firmware refuses a conv chain cut at its activation (conv fused, relu stored, pool apart)', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  const m = model([1, 2, 6, 6], [
    node('c', 'conv2d', ['x'], { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 }, { weight: 'c.w', bias: 'c.b' }),
    node('r', 'relu', ['c.out']),
    node('p', 'max_pool', ['r.out'], { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil_mode: 0 }),
    node('f', 'flatten', ['p.out'], { axis: 1 }),
  ], [tensor('c.w', [3, 2, 3, 3]), tensor('c.b', [3])], 'f32');
  // a planner that believes the device streams conv2d -> relu: its plan fuses c.out alone
  const fake: FuseRule = { name: 'conv-relu', producers: new Set(['conv2d']), consumers: new Set(['relu']), oneRow: false };
  registerProfile({ ...mcuProfile, fuses: [fake] });
  let bytes: Uint8Array;
  try {
    bytes = writeFlm(m);
  } finally {
    registerProfile(mcuProfile);
  }
  const plan = readFlm(bytes).memoryPlan?.plans.find((p) => p.profile === 'mcu');
  t.same(plan?.values.filter((v) => v.fused).map((v) => v.name), ['c.out'], 'the stored mcu plan fuses c.out only');
  const file = resolve(TMP, 'fused-conv-cut.flm');
  mkdirSync(TMP, { recursive: true });
  writeFileSync(file, bytes);
  const x = new Float32Array(72);
  for (let i = 0; i < x.length; i++) x[i] = rnd();
  const err = (() => {
    try {
      runDevice(bin, file, x, 12);
      return 'ran';
    } catch (e) {
      return String(e);
    }
  })();
  t.match(err, /FLM_MEMORY_PLAN/, `refused at prepare: ${err.split('\n')[0]}`);
  // planned by the real profile the whole chain is fused, and runs
  const good = resolve(TMP, 'fused-conv-whole.flm');
  writeFileSync(good, writeFlm(m));
  t.same(readFlm(readFileSync(good)).memoryPlan?.plans.find((p) => p.profile === 'mcu')?.values.filter((v) => v.fused).map((v) => v.name), ['c.out', 'r.out'], 'the mcu profile fuses conv and relu outputs');
  compare(t, 'conv -> relu -> max_pool fused', runDevice(bin, good, x, 12), reference(good, x, 1), 12);
});
