// The requantisation of the int8-full path against independent oracles: gemmlowp's
// SaturatingRoundingDoublingHighMul and RoundingDivideByPOT written over BigInt with C's int64
// semantics (truncating division, arithmetic shift), and the real multiplier in float64.
import t from 'tap';
import {
  INT32_MAX, INT32_MIN, multiplyByQuantizedMultiplier, quantizeMultiplier, quantizeValue, roundingDivideByPOT, srdhm,
} from '../../../runtime/int8full/requant.js';

function srdhmBig(a: number, b: number): number {
  if (a === INT32_MIN && b === INT32_MIN) return INT32_MAX;
  const ab = BigInt(a) * BigInt(b);
  const nudge = ab >= 0n ? 1n << 30n : 1n - (1n << 30n);
  return Number((ab + nudge) / (1n << 31n)); // BigInt division truncates toward zero, as C's
}

function rdbpBig(x: number, e: number): number {
  const bx = BigInt(x);
  const mask = (1n << BigInt(e)) - 1n;
  const rem = bx & mask;
  const threshold = (mask >> 1n) + (bx < 0n ? 1n : 0n);
  return Number((bx >> BigInt(e)) + (rem > threshold ? 1n : 0n));
}

/** xorshift32 over int32, deterministic. */
function ints(n: number, seed: number, bits = 32): number[] {
  let s = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out.push(bits === 32 ? s | 0 : (s | 0) >> (32 - bits));
  }
  return out;
}

const EDGES = [0, 1, -1, 2, -2, 65535, 65536, -65536, -65537, 1 << 30, -(1 << 30), INT32_MAX, INT32_MIN, INT32_MIN + 1, 123456789, -987654321];

t.test('srdhm equals the int64 oracle bit for bit', async (t) => {
  const as = [...EDGES, ...ints(3000, 7), ...ints(1000, 8, 20)];
  const bs = [...EDGES, ...ints(60, 9), 1 << 30, INT32_MAX, 1518500250];
  let bad = 0;
  for (const a of as) for (const b of bs) if (srdhm(a, b) !== srdhmBig(a, b)) bad++;
  t.equal(bad, 0, `${as.length * bs.length} pairs`);
  t.equal(srdhm(INT32_MIN, INT32_MIN), INT32_MAX, 'the one saturating case');
});

t.test('roundingDivideByPOT equals the oracle, ties away from zero', async (t) => {
  let bad = 0;
  const xs = [...EDGES, ...ints(5000, 11)];
  for (const x of xs) for (let e = 0; e <= 31; e++) if (roundingDivideByPOT(x, e) !== rdbpBig(x, e)) bad++;
  t.equal(bad, 0);
  t.equal(roundingDivideByPOT(5, 1), 3);
  t.equal(roundingDivideByPOT(-5, 1), -3);
  t.equal(roundingDivideByPOT(-6, 2), -2);
});

t.test('quantizeMultiplier: Q31 in [2^30, 2^31) within half a unit of M', async (t) => {
  const Ms = [1e-9, 3.7e-6, 0.000123, 0.0042, 0.25, 0.5, 0.7071, 0.99999999999, 1, 1.5, 3.999, 1234.5];
  for (let i = 0; i < 500; i++) Ms.push(Math.exp(-18 + 20 * ((i * 0.6180339887) % 1)));
  for (const M of Ms) {
    const { mult, shift } = quantizeMultiplier(M);
    if (M < 2 ** -32) continue;
    t.ok(mult >= 2 ** 30 && mult < 2 ** 31, `M=${M}: mult ${mult} in range`);
    const back = mult * 2 ** (shift - 31);
    t.ok(Math.abs(back - M) <= 2 ** (shift - 32) * (1 + 1e-12), `M=${M}: ${back}`);
  }
  t.same(quantizeMultiplier(0), { mult: 0, shift: 0 });
  t.same(quantizeMultiplier(1e-12), { mult: 0, shift: 0 }, 'below 2^-32 the product rounds to nothing');
  t.throws(() => quantizeMultiplier(-1));
  t.throws(() => quantizeMultiplier(NaN));
});

t.test('multiplyByQuantizedMultiplier: the composed oracle exactly, and round(x M) within 1', async (t) => {
  const accs = [...EDGES.filter((x) => Math.abs(x) < 2 ** 24), ...ints(2000, 21, 24)];
  let bad = 0;
  let far = 0;
  for (let i = 0; i < 200; i++) {
    const M = Math.exp(-14 + 14 * ((i * 0.7548776662) % 1)); // 8e-7 .. 1
    const { mult, shift } = quantizeMultiplier(M);
    for (const x of accs) {
      const got = multiplyByQuantizedMultiplier(x, mult, shift);
      const left = Math.max(shift, 0);
      const want = rdbpBig(srdhmBig(Number(BigInt.asIntN(32, BigInt(x) << BigInt(left))), mult), Math.max(-shift, 0));
      if (got !== want) bad++;
      if (Math.abs(got - x * M) > 1) far++;
    }
  }
  t.equal(bad, 0, 'equal to the BigInt composition');
  t.equal(far, 0, 'within 1 of the float64 product');
});

t.test('quantizeValue rounds half away from zero and saturates', async (t) => {
  t.equal(quantizeValue(0, 0.1, -5), -5);
  t.equal(quantizeValue(0.25, 0.1, 0), 3);
  t.equal(quantizeValue(-0.25, 0.1, 0), -3);
  t.equal(quantizeValue(0.05, 0.1, 0), 1, '0.5 rounds away');
  t.equal(quantizeValue(-0.05, 0.1, 0), -1);
  t.equal(quantizeValue(1e9, 0.1, 0), 127);
  t.equal(quantizeValue(-1e9, 0.1, 10), -128);
});
