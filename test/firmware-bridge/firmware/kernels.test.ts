// The fast kernel loops (core/ops/rows.c, FL_FAST_KERNELS: the Cortex-M4's and the host's default)
// against the Node runtime, and against the portable loops they replace. Graphs made to walk every
// branch of the fast loops: output rows in blocks of 8 and 4 and the edge columns, strides and
// dilations (the strided block), groups, a kernel plane of more than 64 taps (the portable loop
// takes it), 1x1 stages of more than 64 input channels (weights widened a run at a time), and the
// fused conv -> [activation] -> pool chains a pooled row at a time (max and avg pools, overlapping
// windows, ceil mode, pads, count_include_pad, a last 1x1 of rank > 64, and rows too wide for the
// row buffer, which take the old chain kernel); f32, f16 and per-channel int8 weights.
// Checks: the host build with the fast loops gives the very floats of the host-ref build (portable
// loops: each output takes the same terms in the same order); both and the Cortex-M4 build under
// QEMU are within 1e-3 * max(1, |node|) of the Node runtime (as conformance.test.ts).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { quantizeTensor } from '../../../runtime/format/dtype.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { TMP, buildPort, openDevice, randomTensor, referenceOf, seededRandom, worst } from './support.js';

const TOL = 1e-3;

const rnd = seededRandom(4242);
const tensor = randomTensor(rnd);
function node(name: string, op: GraphNode['op'], inputs: string[], attrs: GraphNode['attrs'] = {}, weights: Record<string, string> = {}): GraphNode {
  return { name, op, inputs, outputs: [`${name}.out`], attrs, weights };
}
function model(input: number[], nodes: GraphNode[], tensors: StoredTensor[], dtype: 'f32' | 'f16' | 'i8'): Model {
  const m = new Map<string, StoredTensor>();
  for (const tt of tensors) {
    const q = dtype === 'f32' || tt.shape.length === 1 ? tt : quantizeTensor(tt, dtype, dtype === 'i8' ? { perChannelAxis: 0 } : {});
    m.set(tt.name, q);
  }
  return { graph: { inputs: [{ name: 'x', shape: [-1, ...input.slice(1)] }], outputs: [`${nodes[nodes.length - 1]!.name}.out`], nodes }, tensors: m, metadata: {} };
}
const conv = (s: number[], p: number[], d = [1, 1], group = 1) => ({ strides: s, pads: p, dilations: d, group });

interface Case { name: string; input: number[]; model: Model; fused?: string[] }

function cases(dtype: 'f32' | 'f16' | 'i8'): Case[] {
  return [
    {
      // rows of 25 outputs: blocks of 8, 8, 4, single columns and the edges; a strided, dilated,
      // grouped conv (the strided block of 4); a 9x8 kernel plane (72 taps: the portable loop); tucker2
      name: 'rows',
      input: [1, 3, 12, 25],
      model: model([1, 3, 12, 25], [
        node('c1', 'conv2d', ['x'], conv([1, 1], [1, 1, 1, 1]), { weight: 'c1.w', bias: 'c1.b' }),
        node('r1', 'relu', ['c1.out']),
        node('c2', 'conv2d', ['r1.out'], conv([2, 2], [0, 1, 1, 0], [1, 2], 2), { weight: 'c2.w' }),
        node('c3', 'conv2d', ['c2.out'], conv([1, 1], [4, 4, 4, 4]), { weight: 'c3.w', bias: 'c3.b' }),
        node('t', 'tucker2_conv2d', ['c3.out'], conv([1, 1], [1, 1, 1, 1]), { u_in: 't.ui', core: 't.core', u_out: 't.uo', bias: 't.b' }),
        node('f', 'flatten', ['t.out'], { axis: 1 }),
        node('d', 'dense', ['f.out'], {}, { weight: 'd.w', bias: 'd.b' }),
      ], [tensor('c1.w', [4, 3, 3, 3]), tensor('c1.b', [4]), tensor('c2.w', [6, 2, 3, 2]), tensor('c3.w', [3, 6, 9, 8], 0.1), tensor('c3.b', [3]),
        tensor('t.ui', [2, 3]), tensor('t.core', [3, 2, 3, 3]), tensor('t.uo', [5, 3]), tensor('t.b', [5]), tensor('d.w', [7, 5 * 6 * 13], 0.1), tensor('d.b', [7])], dtype),
    },
    {
      // 1x1 stages over 70 and 68 input channels (two runs of widened weights), svd and cp convs
      name: 'wide-1x1',
      input: [1, 70, 3, 3],
      model: model([1, 70, 3, 3], [
        node('t', 'tucker2_conv2d', ['x'], conv([1, 1], [1, 1, 1, 1]), { u_in: 't.ui', core: 't.core', u_out: 't.uo', bias: 't.b' }),
        node('s', 'svd_conv2d', ['t.out'], conv([1, 1], [0, 0, 0, 0]), { v: 's.v', u: 's.u' }),
        node('c', 'cp_conv2d', ['s.out'], conv([1, 1], [1, 1, 1, 1]), { a_in: 'c.ai', k_h: 'c.kh', k_w: 'c.kw', a_out: 'c.ao', bias: 'c.b' }),
        node('f', 'flatten', ['c.out'], { axis: 1 }),
        node('d', 'dense', ['f.out'], {}, { weight: 'd.w', bias: 'd.b' }),
      ], [tensor('t.ui', [4, 70], 0.2), tensor('t.core', [6, 4, 3, 3]), tensor('t.uo', [68, 6]), tensor('t.b', [68]),
        tensor('s.v', [5, 68, 1, 1], 0.2), tensor('s.u', [9, 5]), tensor('c.ai', [3, 9]), tensor('c.kh', [3, 3]), tensor('c.kw', [3, 3]),
        tensor('c.ao', [4, 3]), tensor('c.b', [4]), tensor('d.w', [5, 36]), tensor('d.b', [5])], dtype),
    },
    {
      // fused chains, a pooled row at a time: conv2d -> relu -> max_pool; svd of rank 70 (the last
      // 1x1 widened in runs) -> tanh -> overlapping avg_pool with pads; tucker2 -> leaky_relu ->
      // dilated max_pool with unequal strides; cp -> sigmoid -> avg_pool in ceil mode without the pads
      name: 'chains',
      input: [1, 2, 16, 20],
      model: model([1, 2, 16, 20], [
        node('c', 'conv2d', ['x'], conv([1, 1], [2, 2, 2, 2]), { weight: 'c.w', bias: 'c.b' }),
        node('ca', 'relu', ['c.out']),
        node('cp', 'max_pool', ['ca.out'], { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil_mode: 0 }),
        node('s', 'svd_conv2d', ['cp.out'], conv([1, 1], [1, 1, 1, 1]), { v: 's.v', u: 's.u', bias: 's.b' }),
        node('sa', 'tanh', ['s.out']),
        node('sp', 'avg_pool', ['sa.out'], { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], ceil_mode: 0, count_include_pad: 1 }),
        node('t', 'tucker2_conv2d', ['sp.out'], conv([1, 1], [1, 0, 1, 0]), { u_in: 't.ui', core: 't.core', u_out: 't.uo', bias: 't.b' }),
        node('ta', 'leaky_relu', ['t.out'], { alpha: 0.1 }),
        node('tp', 'max_pool', ['ta.out'], { kernel: [2, 2], strides: [2, 1], pads: [0, 0, 0, 0], dilations: [2, 1], ceil_mode: 0 }),
        node('k', 'cp_conv2d', ['tp.out'], conv([1, 1], [1, 1, 1, 1]), { a_in: 'k.ai', k_h: 'k.kh', k_w: 'k.kw', a_out: 'k.ao', bias: 'k.b' }),
        node('ka', 'sigmoid', ['k.out']),
        node('kp', 'avg_pool', ['ka.out'], { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 1, 1], ceil_mode: 1, count_include_pad: 0 }),
        node('f', 'flatten', ['kp.out'], { axis: 1 }),
        node('d', 'dense', ['f.out'], {}, { weight: 'd.w', bias: 'd.b' }),
      ], [tensor('c.w', [3, 2, 5, 5], 0.3), tensor('c.b', [3]), tensor('s.v', [70, 3, 3, 3], 0.3), tensor('s.u', [4, 70], 0.2), tensor('s.b', [4]),
        tensor('t.ui', [3, 4]), tensor('t.core', [3, 3, 3, 3]), tensor('t.uo', [5, 3]), tensor('t.b', [5]),
        tensor('k.ai', [2, 5]), tensor('k.kh', [2, 3]), tensor('k.kw', [2, 3]), tensor('k.ao', [3, 2]), tensor('k.b', [3]),
        tensor('d.w', [6, 3 * 2 * 4]), tensor('d.b', [6])], dtype),
      fused: ['c.out', 'ca.out', 'k.out', 'ka.out', 's.out', 'sa.out', 't.out', 'ta.out'],
    },
    {
      // a pooled row made from 3 conv rows of 100: more than the 256-float row buffer, so the
      // fast build runs this chain with the old kernel
      name: 'wide-pool',
      input: [1, 1, 6, 100],
      model: model([1, 1, 6, 100], [
        node('c', 'conv2d', ['x'], conv([1, 1], [1, 1, 1, 1]), { weight: 'c.w', bias: 'c.b' }),
        node('cp', 'max_pool', ['c.out'], { kernel: [3, 3], strides: [3, 3], pads: [0, 0, 0, 0], dilations: [1, 1], ceil_mode: 0 }),
        node('f', 'flatten', ['cp.out'], { axis: 1 }),
        node('d', 'dense', ['f.out'], {}, { weight: 'd.w', bias: 'd.b' }),
      ], [tensor('c.w', [2, 1, 3, 3]), tensor('c.b', [2]), tensor('d.w', [4, 2 * 2 * 33], 0.2), tensor('d.b', [4])], dtype),
      fused: ['c.out'],
    },
    {
      // DS-CNN's shapes (MLPerf Tiny KWS): maps 5 wide (narrower than a row block: the portable
      // loop), a depthwise 3x3, a grouped pointwise conv (the 1x1 column loop over the plane) and a
      // pointwise conv of 70 input channels (two runs of widened weights) -> relu -> avg_pool chain
      name: 'ds-cnn',
      input: [1, 1, 13, 10],
      model: model([1, 1, 13, 10], [
        node('c0', 'conv2d', ['x'], conv([2, 2], [1, 1, 1, 1]), { weight: 'c0.w', bias: 'c0.b' }),
        node('r0', 'relu', ['c0.out']),
        node('dw', 'conv2d', ['r0.out'], conv([1, 1], [1, 1, 1, 1], [1, 1], 70), { weight: 'dw.w', bias: 'dw.b' }),
        node('r1', 'relu', ['dw.out']),
        node('pg', 'conv2d', ['r1.out'], conv([1, 1], [0, 0, 0, 0], [1, 1], 2), { weight: 'pg.w', bias: 'pg.b' }),
        node('r2', 'relu', ['pg.out']),
        node('pw', 'conv2d', ['r2.out'], conv([1, 1], [0, 0, 0, 0]), { weight: 'pw.w', bias: 'pw.b' }),
        node('r3', 'relu', ['pw.out']),
        node('ap', 'avg_pool', ['r3.out'], { kernel: [2, 5], strides: [2, 5], pads: [0, 0, 0, 0], ceil_mode: 0, count_include_pad: 0 }),
        node('f', 'flatten', ['ap.out'], { axis: 1 }),
        node('d', 'dense', ['f.out'], {}, { weight: 'd.w', bias: 'd.b' }),
      ], [tensor('c0.w', [70, 1, 4, 4]), tensor('c0.b', [70]), tensor('dw.w', [70, 1, 3, 3]), tensor('dw.b', [70]),
        tensor('pg.w', [70, 35, 1, 1], 0.2), tensor('pg.b', [70]), tensor('pw.w', [6, 70, 1, 1], 0.2), tensor('pw.b', [6]),
        tensor('d.w', [4, 18]), tensor('d.b', [4])], dtype),
      fused: ['pw.out', 'r3.out'],
    },
  ];
}


function inputs(c: Case, n: number): Float32Array {
  const x = new Float32Array(n * c.input.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = rnd() * 2;
  return x;
}


function runHost(bin: string, file: string, x: Float32Array, nomap: boolean): Float32Array | string {
  const inp = resolve(TMP, `kern-in-${process.pid}.bin`);
  const out = resolve(TMP, `kern-out-${process.pid}.bin`);
  writeFileSync(inp, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
  const r = spawnSync(bin, ['--run', file, inp, out], { encoding: 'utf8', env: { ...process.env, FL_HOST_NOMAP: nomap ? '1' : '0' } });
  if (r.status !== 0) return r.stderr.trim();
  const b = readFileSync(out);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

const DTYPES = ['f32', 'f16', 'i8'] as const;

t.test('host: the fast loops give the portable loops\' floats, and both agree with the Node runtime', async (t) => {
  const fast = buildPort(t, 'host');
  const ref = fast && buildPort(t, 'host-ref');
  if (!fast || !ref) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  for (const dtype of DTYPES) {
    for (const c of cases(dtype)) {
      const bytes = writeFlm(c.model);
      if (c.fused) {
        const plan = readFlm(bytes).memoryPlan?.plans.find((p) => p.profile === 'mcu');
        t.same(plan?.values.filter((v) => v.fused).map((v) => v.name).sort(), c.fused, `${c.name} ${dtype}: the mcu plan streams the conv -> pool chains`);
      }
      const file = resolve(TMP, `kern-${c.name}-${dtype}.flm`);
      writeFileSync(file, bytes);
      const n = 2;
      const x = inputs(c, n);
      const want = referenceOf(bytes, x, n, c.input);
      for (const nomap of [false, true]) {
        const what = `${c.name} ${dtype}${nomap ? ' (store read through the port)' : ''}`;
        const a = runHost(fast, file, x, nomap);
        const b = runHost(ref, file, x, nomap);
        if (typeof a === 'string' || typeof b === 'string') {
          t.fail(`${what}: fl-host --run failed: ${typeof a === 'string' ? a : b}`);
          continue;
        }
        t.equal(a.length, want.length, `${what}: ${want.length} outputs`);
        let same = a.length === b.length;
        for (let i = 0; same && i < a.length; i++) same = a[i] === b[i];
        t.ok(same, `${what}: the fast loops give exactly the portable loops' outputs`);
        t.ok(worst(a, want) <= TOL, `${what}: fast loops within ${TOL} of the Node runtime (${worst(a, want).toExponential(2)})`);
        t.ok(worst(b, want) <= TOL, `${what}: portable loops within ${TOL} of the Node runtime (${worst(b, want).toExponential(2)})`);
      }
    }
  }
});

t.test('cortex-m4 under QEMU: the fast loops (VMLA) agree with the Node runtime', async (t) => {
  const frames = await openDevice(t);
  if (!frames) return;
  for (const dtype of DTYPES) {
    for (const c of cases(dtype)) {
      const bytes = writeFlm(c.model);
      const end = await frames.upload(bytes);
      t.equal(end.kind, 0x84, `${c.name} ${dtype}: upload_end accepted ${end.kind === 0x84 ? '' : JSON.stringify(end.body)}`);
      if (end.kind !== 0x84) continue;
      const x = inputs(c, 1);
      const want = referenceOf(bytes, x, 1, c.input);
      const inf = await frames.call(0x05, { id: 1, x: new Uint8Array(x.buffer, x.byteOffset, x.byteLength), dtype: 'f32' }, 60000);
      t.equal(inf.kind, 0x85, `${c.name} ${dtype}: infer answered ${inf.kind === 0xff ? JSON.stringify(inf.body) : ''}`);
      if (inf.kind !== 0x85) continue;
      const yb = inf.body['y'] as Uint8Array;
      const y = new Float32Array(yb.buffer.slice(yb.byteOffset, yb.byteOffset + yb.byteLength));
      t.equal(y.length, want.length, `${c.name} ${dtype}: ${want.length} outputs`);
      t.ok(worst(y, want) <= TOL, `${c.name} ${dtype} on the Cortex-M4: within ${TOL} of the Node runtime (${worst(y, want).toExponential(2)}, ${inf.body['cycles']} instructions)`);
    }
  }
});

// The fast loops are chosen by shape (a pointwise conv by the 1x1 column loop, rows narrower than 8
// by the portable loop): on DS-CNN's shapes the fast build must not run more instructions than the
// portable one (QEMU -icount counts are exact). The row kernels on 5-wide maps took 2.6x the
// portable loops' instructions on KWS (103.93 M against 39.62 M) and this fails on them.
t.test('cortex-m4 under QEMU: on DS-CNN shapes the fast build runs no more instructions than the portable loops', async (t) => {
  const c = cases('i8').find((k) => k.name === 'ds-cnn')!;
  const bytes = writeFlm(c.model);
  const x = inputs(c, 1);
  const counts: Record<string, number> = {};
  const outs: Record<string, Float32Array> = {};
  for (const target of ['cortex-m4', 'cortex-m4-ref'] as const) {
    const frames = await openDevice(t, target);
    if (!frames) return;
    const end = await frames.upload(bytes);
    t.equal(end.kind, 0x84, `${target}: upload_end accepted`);
    const inf = await frames.call(0x05, { id: 1, x: new Uint8Array(x.buffer, x.byteOffset, x.byteLength), dtype: 'f32' }, 60000);
    t.equal(inf.kind, 0x85, `${target}: infer answered ${inf.kind === 0xff ? JSON.stringify(inf.body) : ''}`);
    if (inf.kind !== 0x85) return;
    const yb = inf.body['y'] as Uint8Array;
    outs[target] = new Float32Array(yb.buffer.slice(yb.byteOffset, yb.byteOffset + yb.byteLength));
    counts[target] = Number(inf.body['cycles']);
  }
  const a = outs['cortex-m4']!, b = outs['cortex-m4-ref']!;
  t.ok(a.length === b.length && a.every((v, i) => v === b[i]), 'the fast build gives exactly the portable build\'s outputs');
  t.ok(counts['cortex-m4']! <= counts['cortex-m4-ref']!, `fast ${counts['cortex-m4']} instructions <= portable ${counts['cortex-m4-ref']}`);
});
