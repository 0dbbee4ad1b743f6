// Element types of stored tensors: f16 <-> f32 bits, dequantisation to f32, and quantisation
// (used by the writer side). int8 is symmetric: real = q * scale, q in [-127, 127].

import { numel, type DType, type Quant, type StoredTensor } from '../ir.js';
import { FlmError } from './errors.js';

const f32Box = new Float32Array(1);
const u32Box = new Uint32Array(f32Box.buffer);

/** f32 -> IEEE binary16 bits, round to nearest even; overflow gives +-inf, NaN stays NaN. */
export function f32ToF16Bits(value: number): number {
  f32Box[0] = value;
  const x = u32Box[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value = h * 2^-24 with h = m >> shift, m the 24-bit significand.
    const shift = 126 - exp;
    if (shift > 24) return sign;
    const m = mant | 0x800000;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h; // h may reach 0x400: the smallest normal, which is the right encoding.
  }
  let bits = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (bits & 1) === 1)) bits++; // a carry into the exponent is correct, up to inf
  return sign | bits;
}

/** IEEE binary16 bits -> number (exact). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m !== 0 ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

let f16Table: Float32Array | undefined;
/** All 65536 halves as f32 (256 KiB), built the first time an f16 tensor is widened. */
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

export function f16ArrayToF32(src: Uint16Array): Float32Array {
  const table = f16ToF32Table();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return out;
}

export function f32ArrayToF16(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]!);
  return out;
}

/** [outer, channels, inner] around `axis` of a row-major shape. */
function splitAt(shape: readonly number[], axis: number): [number, number, number] {
  return [numel(shape.slice(0, axis)), shape[axis]!, numel(shape.slice(axis + 1))];
}

/** f32: the stored array itself (zero-copy). f16 / i8: a new, dequantised Float32Array. */
export function tensorToFloat32(t: StoredTensor): Float32Array {
  if (t.dtype === 'f32') return t.data as Float32Array;
  if (t.dtype === 'f16') return f16ArrayToF32(t.data as Uint16Array);
  const q = t.data as Int8Array;
  const scale = t.quant?.scale;
  if (!scale || scale.length === 0) throw new FlmError('FLM_BAD_QUANT', `tensor ${t.name}: i8 without a scale`);
  const out = new Float32Array(q.length);
  const axis = t.quant?.axis;
  if (axis === undefined) {
    const s = scale[0]!;
    for (let i = 0; i < q.length; i++) out[i] = q[i]! * s;
    return out;
  }
  const [outer, channels, inner] = splitAt(t.shape, axis);
  let i = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const s = scale[c]!;
      for (let k = 0; k < inner; k++, i++) out[i] = q[i]! * s;
    }
  }
  return out;
}

function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/**
 * Re-encode a tensor as `dtype`. i8 is symmetric with scale = max|x| / 127, one per tensor or
 * one per index of `perChannelAxis`; an all-zero slice gets scale 1. Non-finite values are refused.
 */
export function quantizeTensor(t: StoredTensor, dtype: DType, opts: { perChannelAxis?: number } = {}): StoredTensor {
  const x = tensorToFloat32(t);
  const base = { name: t.name, shape: [...t.shape] };
  if (dtype === 'f32') return { ...base, dtype, data: t.dtype === 'f32' ? Float32Array.from(x) : x };
  if (dtype === 'f16') return { ...base, dtype, data: f32ArrayToF16(x) };
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i]!)) throw new FlmError('FLM_BAD_QUANT', `tensor ${t.name}: element ${i} is ${x[i]}, cannot quantise to i8`);
  }
  const axis = opts.perChannelAxis;
  if (axis !== undefined && !(Number.isInteger(axis) && axis >= 0 && axis < t.shape.length)) {
    throw new FlmError('FLM_BAD_QUANT', `tensor ${t.name}: per-channel axis ${axis} is outside 0..${t.shape.length - 1}`);
  }
  const [outer, channels, inner] = axis === undefined ? [1, 1, x.length] : splitAt(t.shape, axis);
  const maxAbs = new Float64Array(channels);
  let i = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      for (let k = 0; k < inner; k++, i++) maxAbs[c] = Math.max(maxAbs[c]!, Math.abs(x[i]!));
    }
  }
  const scale = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const s = Math.fround(maxAbs[c]! / 127);
    scale[c] = s > 0 && Number.isFinite(s) ? s : 1;
  }
  const q = new Int8Array(x.length);
  i = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const s = scale[c]!;
      for (let k = 0; k < inner; k++, i++) q[i] = Math.max(-127, Math.min(127, roundHalfAway(x[i]! / s)));
    }
  }
  const quant: Quant = axis === undefined ? { scale } : { scale, axis };
  return { ...base, dtype, data: q, quant };
}
