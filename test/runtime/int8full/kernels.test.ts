// The reference integer kernels against the f32 reference kernels (runtime/kernels/reference.ts)
// run on the dequantised operands: with the int32 bias dequantised exactly, the float result
// divided by the output scale differs from the integer accumulator times the requantisation
// multiplier only by f32 rounding and the Q31 multiplier's rounding, so the int8 outputs may
// differ by at most 1 (and must be equal on most elements). Max pool and relu are exact.
import t, { type Test } from 'tap';
import * as ref from '../../../runtime/kernels/reference.js';
import type { Conv2dParams, PoolParams } from '../../../runtime/kernels/reference.js';
import { avgPoolInt8, convInt8, denseInt8, globalAvgPoolInt8, maxPoolInt8, reluInt8 } from '../../../runtime/int8full/kernels.js';
import type { Int8Stage } from '../../../runtime/int8full/params.js';
import { quantizeMultiplier, quantizeValue } from '../../../runtime/int8full/requant.js';

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

const randInt8 = (n: number, r: () => number) => Int8Array.from({ length: n }, () => Math.floor(r() * 256) - 128);
const randW = (n: number, r: () => number) => Int8Array.from({ length: n }, () => Math.floor(r() * 255) - 127);

/** A stage with random scales; outScale chosen so that outputs spread over the int8 range. */
function stage(C: number, K: number, r: () => number, bias: boolean): { s: Int8Stage; wScale: Float32Array } {
  const inS = Math.fround(0.01 + r() * 0.05);
  const wScale = Float32Array.from({ length: C }, () => Math.fround(0.002 + r() * 0.02));
  const outS = Math.fround(inS * 0.01 * Math.sqrt(K) * 60 / 127);
  const mult: number[] = [];
  const shift: number[] = [];
  for (let c = 0; c < C; c++) {
    const m = quantizeMultiplier((inS * wScale[c]!) / outS);
    mult.push(m.mult);
    shift.push(m.shift);
  }
  const s: Int8Stage = { w: 'weight', in: [inS, Math.floor(r() * 40) - 20], out: [outS, Math.floor(r() * 40) - 20], mult, shift, min: -128, max: 127 };
  if (bias) s.bias = Array.from({ length: C }, () => Math.floor((r() - 0.5) * 4000));
  return { s, wScale };
}

function deq(q: Int8Array, scale: number, zp: number): Float32Array {
  return Float32Array.from(q, (v) => (v - zp) * scale);
}

function compare(t: Test, got: Int8Array, real: Float32Array, s: Int8Stage, what: string): void {
  let worst = 0;
  let diff = 0;
  for (let i = 0; i < got.length; i++) {
    const want = Math.max(s.min, Math.min(s.max, quantizeValue(real[i]!, s.out[0], s.out[1])));
    const d = Math.abs(got[i]! - want);
    worst = Math.max(worst, d);
    if (d) diff++;
  }
  t.ok(worst <= 1, `${what}: max |int8 - quantised f32| = ${worst}`);
  t.ok(diff <= Math.max(2, got.length * 0.02), `${what}: ${diff} of ${got.length} differ by 1`);
}

t.test('conv: pads, strides, dilations, groups, against the f32 conv of the dequantised operands', async (t) => {
  const r = rng(5);
  const cases: Array<[number[], number[], Conv2dParams]> = [
    [[2, 3, 9, 8], [6, 3, 3, 3], { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }],
    [[1, 4, 11, 10], [8, 2, 3, 2], { strides: [2, 1], pads: [0, 1, 2, 0], dilations: [1, 2], group: 2 }],
    [[1, 5, 7, 7], [5, 1, 5, 1], { strides: [1, 1], pads: [2, 0, 2, 0], dilations: [1, 1], group: 5 }],
    [[3, 6, 5, 5], [4, 6, 1, 1], { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 }],
  ];
  for (const [xs, ws, p] of cases) {
    const K = ws[1]! * ws[2]! * ws[3]!;
    const x = randInt8(xs.reduce((a, b) => a * b), r);
    const w = randW(ws.reduce((a, b) => a * b), r);
    const { s, wScale } = stage(ws[0]!, K, r, true);
    const wf = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) wf[i] = w[i]! * wScale[Math.floor(i / K)]!;
    const bf = Float32Array.from(s.bias!, (b, c) => b * s.in[0] * wScale[c]!);
    const real = ref.conv2d(deq(x, s.in[0], s.in[1]), xs, wf, ws, bf, p);
    const out = new Int8Array(real.data.length);
    const shape = convInt8(x, xs, { q: w, shape: ws }, p, s, out);
    t.same(shape, real.shape);
    compare(t, out, real.data, s, `conv x[${xs}] w[${ws}] group ${p.group}`);
  }
});

t.test('dense against the f32 GEMM; the clamp folds a relu', async (t) => {
  const r = rng(9);
  const [B, N, K] = [5, 7, 33];
  const x = randInt8(B * K, r);
  const w = randW(N * K, r);
  const { s, wScale } = stage(N, K, r, true);
  const wf = Float32Array.from(w, (v, i) => v * wScale[Math.floor(i / K)]!);
  const bf = Float32Array.from(s.bias!, (b, c) => b * s.in[0] * wScale[c]!);
  const real = new Float32Array(B * N);
  ref.gemmNT(deq(x, s.in[0], s.in[1]), wf, B, N, K, bf, real);
  const out = new Int8Array(B * N);
  denseInt8(x, B, { q: w, shape: [N, K] }, s, out);
  compare(t, out, real, s, 'dense');
  const relu = { ...s, min: s.out[1] };
  const folded = new Int8Array(B * N);
  denseInt8(x, B, { q: w, shape: [N, K] }, relu, folded);
  const separate = new Int8Array(B * N);
  reluInt8(out, s.out[1], separate);
  t.same(Array.from(folded), Array.from(separate), 'clamp at the zero point = relu after');
});

t.test('pools', async (t) => {
  const r = rng(13);
  const xs = [2, 3, 7, 6];
  const x = randInt8(2 * 3 * 7 * 6, r);
  const zp = -7;
  const scale = 0.03;
  const xf = deq(x, scale, zp);
  const p: PoolParams = { kernel: [3, 2], strides: [2, 2], pads: [1, 0, 1, 1], dilations: [1, 1], ceilMode: true };
  const mf = ref.maxPool(xf, xs, p);
  const mq = new Int8Array(mf.data.length);
  maxPoolInt8(x, xs, p, mq);
  t.same(Array.from(deq(mq, scale, zp)), Array.from(mf.data), 'max pool exact');
  for (const inc of [false, true]) {
    const af = ref.avgPool(xf, xs, p, inc);
    const aq = new Int8Array(af.data.length);
    avgPoolInt8(x, xs, p, inc, zp, aq);
    // Integer means often sit exactly on a tie that the f32 path sees a hair off: within 1 there.
    let worst = 0;
    for (let i = 0; i < aq.length; i++) worst = Math.max(worst, Math.abs(aq[i]! - quantizeValue(af.data[i]!, scale, zp)));
    t.ok(worst <= 1, `avg pool (count_include_pad ${inc}) within 1 of the quantised f32 average`);
  }
  const gf = ref.globalAvgPool(xf, xs);
  const gq = new Int8Array(6);
  globalAvgPoolInt8(x, xs, zp, gq);
  t.ok(Array.from(gq).every((v, i) => Math.abs(v - quantizeValue(gf.data[i]!, scale, zp)) <= 1), 'global average pool within 1');
  // Ties round away from zero: means of -1.5 and 2.5 (in units of the scale) -> -2 and 3.
  const tie = new Int8Array(2);
  globalAvgPoolInt8(Int8Array.of(-1 + zp, -2 + zp, 2 + zp, 3 + zp), [1, 2, 1, 2], zp, tie);
  t.same(Array.from(tie), [-2 + zp, 3 + zp]);
});
