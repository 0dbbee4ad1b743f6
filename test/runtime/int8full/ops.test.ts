// The integer kernels of the residual and multi-branch ops (add, concat, softmax, tables) against
// the float result on dequantised operands (within 1 LSB, equal on most elements), and the add's
// arithmetic against a BigInt oracle of TFLite's integer add (bit for bit).
import t from 'tap';
import { addInt8, concatInt8, lutInt8, softmaxInt8 } from '../../../runtime/int8full/kernels.js';
import { ADD_LEFT_SHIFT, SOFTMAX_ONE, type Int8Add, type Int8Concat } from '../../../runtime/int8full/params.js';
import { quantizeMultiplier, quantizeValue } from '../../../runtime/int8full/requant.js';

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}
const randInt8 = (n: number, r: () => number) => Int8Array.from({ length: n }, () => Math.floor(r() * 256) - 128);

// The oracle: gemmlowp's SaturatingRoundingDoublingHighMul and RoundingDivideByPOT in int64 (BigInt).
const I32_MIN = -(2n ** 31n);
function srdhmBig(a: bigint, b: bigint): bigint {
  if (a === I32_MIN && b === I32_MIN) return 2n ** 31n - 1n;
  const ab = a * b;
  const nudge = ab >= 0n ? 1n << 30n : 1n - (1n << 30n);
  return (ab + nudge) / (1n << 31n); // BigInt division truncates toward zero, as C's
}
function rdbpotBig(x: bigint, e: bigint): bigint {
  const mask = (1n << e) - 1n;
  const rem = x & mask;
  const thr = (mask >> 1n) + (x < 0n ? 1n : 0n);
  return (x >> e) + (rem > thr ? 1n : 0n);
}
function mbqmBig(x: bigint, m: number, s: number): bigint {
  const left = s > 0 ? BigInt(s) : 0n;
  const right = s > 0 ? 0n : BigInt(-s);
  return rdbpotBig(srdhmBig(x << left, BigInt(m)), right);
}

function addParams(sa: number, sb: number, so: number, min = -128, max = 127): Int8Add {
  const twice = 2 * Math.max(sa, sb);
  const ma = quantizeMultiplier(sa / twice);
  const mb = quantizeMultiplier(sb / twice);
  const mo = quantizeMultiplier(twice / (2 ** ADD_LEFT_SHIFT * so));
  return { mult: [ma.mult, mb.mult], shift: [ma.shift, mb.shift], outMult: mo.mult, outShift: mo.shift, min, max };
}

t.test('add: TFLite integer add, bit for bit against the BigInt oracle and within 1 LSB of the float sum', async (t) => {
  const r = rng(17);
  let off = 0;
  let n = 0;
  let worst = 0;
  let oracleBad = 0;
  for (let trial = 0; trial < 60; trial++) {
    const sa = Math.fround(0.002 + r() * 0.1);
    const sb = Math.fround(sa * (0.1 + r() * 5));
    const so = Math.fround((sa + sb) * (0.6 + r() * 0.8));
    const za = Math.floor(r() * 256) - 128;
    const zb = Math.floor(r() * 256) - 128;
    const zo = Math.floor(r() * 100) - 50;
    const relu = trial % 3 === 0;
    const p = addParams(sa, sb, so, relu ? zo : -128, 127);
    const a = randInt8(500, r);
    const b = randInt8(500, r);
    const out = new Int8Array(500);
    addInt8(a, za, b, zb, p, zo, out);
    for (let i = 0; i < 500; i++) {
      const L = BigInt(1 << ADD_LEFT_SHIFT);
      const sum = mbqmBig(BigInt(a[i]! - za) * L, p.mult[0], p.shift[0]) + mbqmBig(BigInt(b[i]! - zb) * L, p.mult[1], p.shift[1]);
      let o = Number(mbqmBig(sum, p.outMult, p.outShift)) + zo;
      o = Math.max(p.min, Math.min(p.max, o));
      if (o !== out[i]) oracleBad++;
      let want = quantizeValue((a[i]! - za) * sa + (b[i]! - zb) * sb, so, zo);
      if (relu) want = Math.max(want, zo);
      const d = Math.abs(want - out[i]!);
      worst = Math.max(worst, d);
      if (d) off++;
      n++;
    }
  }
  t.equal(oracleBad, 0, 'every output equals the int64 oracle');
  t.ok(worst <= 1, `at most 1 LSB from the float sum (worst ${worst})`);
  t.ok(off / n < 0.05, `${off} of ${n} off by 1`);
});

t.test('concat: each input rescaled to the output quantisation, within 1 LSB', async (t) => {
  const r = rng(5);
  for (let trial = 0; trial < 10; trial++) {
    const shapes = [[2, 3, 4, 5], [2, 2, 4, 5], [2, 1, 4, 5]];
    const q = shapes.map(() => [Math.fround(0.01 + r() * 0.1), Math.floor(r() * 200) - 100] as [number, number]);
    const out: [number, number] = [Math.fround(0.05 + r() * 0.1), Math.floor(r() * 60) - 30];
    const xs = shapes.map((s) => randInt8(s.reduce((a, b) => a * b, 1), r));
    const m = q.map(([s]) => quantizeMultiplier(s / out[0]));
    const p: Int8Concat = { mult: m.map((x) => x.mult), shift: m.map((x) => x.shift) };
    const y = new Int8Array(2 * 6 * 20);
    concatInt8(xs, shapes, 1, q.map((x) => x[1]), p, out[1], y);
    // Float concat on the dequantised inputs, quantised to the output.
    let worst = 0;
    for (let n = 0; n < 2; n++) {
      let c0 = 0;
      xs.forEach((x, k) => {
        const C = shapes[k]![1]!;
        for (let c = 0; c < C; c++) for (let i = 0; i < 20; i++) {
          const real = (x[(n * C + c) * 20 + i]! - q[k]![1]) * q[k]![0];
          worst = Math.max(worst, Math.abs(quantizeValue(real, out[0], out[1]) - y[(n * 6 + c0 + c) * 20 + i]!));
        }
        c0 += C;
      });
    }
    t.ok(worst <= 1, `trial ${trial}: worst ${worst} LSB`);
  }
});

t.test('softmax: integer exp table, within 1 LSB of the float softmax (output 1/256, -128)', async (t) => {
  const r = rng(9);
  let worst = 0;
  let off = 0;
  for (let trial = 0; trial < 40; trial++) {
    const s = Math.fround(0.01 + r() * 0.2);
    const zp = Math.floor(r() * 100) - 50;
    const exp = Array.from({ length: 256 }, (_, d) => Math.round(SOFTMAX_ONE * Math.exp(-d * s)));
    const C = 2 + Math.floor(r() * 20);
    const inner = trial % 2 ? 3 : 1;
    const x = randInt8(4 * C * inner, r);
    const y = new Int8Array(x.length);
    softmaxInt8(x, 4, C, inner, exp, y);
    for (let o = 0; o < 4; o++) for (let j = 0; j < inner; j++) {
      const v = Array.from({ length: C }, (_, c) => (x[(o * C + c) * inner + j]! - zp) * s);
      const mx = Math.max(...v);
      const e = v.map((z) => Math.exp(z - mx));
      const S = e.reduce((a, b) => a + b, 0);
      for (let c = 0; c < C; c++) {
        const d = Math.abs(quantizeValue(e[c]! / S, 1 / 256, -128) - y[(o * C + c) * inner + j]!);
        worst = Math.max(worst, d);
        if (d) off++;
      }
    }
  }
  t.ok(worst <= 1, `worst ${worst} LSB (${off} off by 1)`);
});

t.test('lut: out = table[q + 128]', async (t) => {
  const lut = Array.from({ length: 256 }, (_, k) => 127 - k);
  const x = Int8Array.from([-128, -1, 0, 127]);
  const y = new Int8Array(4);
  lutInt8(x, lut, y);
  t.same([...y], [127, 0, -1, -128]);
});
