// Fixed-point requantisation, TensorFlow Lite Micro's scheme: a real multiplier M > 0 is stored
// as a Q31 integer m in [2^30, 2^31) and a power-of-two exponent s, M ~ m 2^-31 2^s. An int32
// accumulator x becomes round(x M) as
//   RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x 2^max(s,0), m), max(-s,0))
// with C's int32/int64 semantics. The firmware computes the same with int64 arithmetic; here the
// 62-bit product is split so that every intermediate is an exact double (no BigInt per value).

const TWO31 = 2147483648;
export const INT32_MIN = -TWO31;
export const INT32_MAX = TWO31 - 1;

export interface QuantizedMultiplier {
  /** Q31, in [2^30, 2^31) (0 when M is too small to represent). */
  mult: number;
  /** Power-of-two exponent: positive shifts left before the multiply, negative rounds right after. */
  shift: number;
}

/** M (a finite double >= 0) as a Q31 multiplier and shift (TFLM QuantizeMultiplier). */
export function quantizeMultiplier(M: number): QuantizedMultiplier {
  if (!(Number.isFinite(M) && M >= 0)) throw new RangeError(`requantisation multiplier ${M}: expected a finite number >= 0`);
  if (M === 0) return { mult: 0, shift: 0 };
  // frexp: M = q 2^e with q in [0.5, 1).
  let e = Math.floor(Math.log2(M)) + 1;
  let q = M / 2 ** e;
  if (q >= 1) { q /= 2; e++; }
  if (q < 0.5) { q *= 2; e--; }
  let m = Math.round(q * TWO31);
  if (m === TWO31) { m /= 2; e++; }
  // Right shifts beyond 31 leave nothing of any int32 product: store zero, as TFLM does.
  if (e < -31) return { mult: 0, shift: 0 };
  if (e > 30) throw new RangeError(`requantisation multiplier ${M}: too large (exponent ${e} > 30)`);
  return { mult: m, shift: e };
}

/** (a b 2 + 2^31 nudge) >> 31 as gemmlowp's SaturatingRoundingDoublingHighMul, a and b int32. */
export function srdhm(a: number, b: number): number {
  if (a === INT32_MIN && b === INT32_MIN) return INT32_MAX;
  // a b = hi 2^16 + lo with a = ah 2^16 + al, al in [0, 2^16): |hi|, |lo| < 2^47, exact.
  const al = a & 0xffff;
  const ah = (a - al) / 65536;
  const hi = ah * b;
  const lo = al * b;
  const nudge = hi * 65536 + lo >= 0 ? 1 << 30 : 1 - (1 << 30);
  // hi 2^16 = hq 2^31 + hr 2^16 with hr = hi mod 2^15 in [0, 2^15).
  const hr = ((hi % 32768) + 32768) % 32768;
  const hq = (hi - hr) / 32768;
  const r = hr * 65536 + lo + nudge; // |r| < 2^48: exact
  const rq = Math.floor(r / TWO31);
  const floorQ = hq + rq;
  const rem = r - rq * TWO31;
  // C's int64 division truncates toward zero.
  return floorQ < 0 && rem !== 0 ? floorQ + 1 : floorQ;
}

/** x / 2^exponent rounded to nearest, ties away from zero (gemmlowp RoundingDivideByPOT); x int32. */
export function roundingDivideByPOT(x: number, exponent: number): number {
  if (exponent === 0) return x;
  const mask = (1 << exponent) - 1;
  const remainder = x & mask;
  const threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/** round(x M) for an int32 accumulator x, as TFLM's MultiplyByQuantizedMultiplier. */
export function multiplyByQuantizedMultiplier(x: number, mult: number, shift: number): number {
  const left = shift > 0 ? shift : 0;
  const right = shift > 0 ? 0 : -shift;
  // x 2^left wraps like C's int32 multiply would; the converter keeps |acc| 2^left < 2^31.
  return roundingDivideByPOT(srdhm((x * 2 ** left) | 0, mult), right);
}

/** Float -> int8 with asymmetric (scale, zero point), rounding half away from zero and saturating. */
export function quantizeValue(x: number, scale: number, zeroPoint: number): number {
  const v = x / scale;
  const r = v < 0 ? -Math.round(-v) : Math.round(v);
  const q = r + zeroPoint;
  return q < -128 ? -128 : q > 127 ? 127 : Number.isNaN(q) ? zeroPoint : q;
}
