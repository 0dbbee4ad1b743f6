// The reference integer kernels of the int8-full path: the definition the firmware's integer
// kernels must match bit for bit. Activations are Int8Array, NCHW; accumulators are exact int32
// (|sum| < 2^31 for any layer under 2^17 multiply-accumulates per output).
import type { Conv2dParams, PoolParams } from '../kernels/reference.js';
import { avgPoolWindows, convOutSize, maxPoolWindows, poolOutSize } from '../kernels/reference.js';
import { multiplyByQuantizedMultiplier } from './requant.js';
import { ADD_LEFT_SHIFT, type Int8Add, type Int8Concat, type Int8Stage } from './params.js';

/** Weight of a stage: q [C_out, K...] row-major, zero point 0 (int32: dwlr's exact kernels u v). */
export interface StageWeight {
  q: Int8Array | Int32Array;
  shape: number[];
}

function requant(acc: number, s: Int8Stage, c: number): number {
  const v = multiplyByQuantizedMultiplier(acc, s.mult[c]!, s.shift[c]!) + s.out[1];
  return v < s.min ? s.min : v > s.max ? s.max : v;
}

/** out[b, n] = requant(sum_k (x[b, k] - zp_in) w[n, k] + bias[n]). */
export function denseInt8(x: Int8Array, batch: number, w: StageWeight, s: Int8Stage, out: Int8Array): void {
  const N = w.shape[0]!;
  const K = w.q.length / N;
  const zp = s.in[1];
  for (let b = 0; b < batch; b++) {
    const xo = b * K;
    for (let n = 0; n < N; n++) {
      let acc = s.bias ? s.bias[n]! : 0;
      const wo = n * K;
      for (let k = 0; k < K; k++) acc += (x[xo + k]! - zp) * w.q[wo + k]!;
      out[b * N + n] = requant(acc, s, n);
    }
  }
}

/** NCHW conv (ONNX Conv, cross-correlation); padding holds the input zero point, i.e. real 0. */
export function convInt8(x: Int8Array, xShape: readonly number[], w: StageWeight, p: Conv2dParams, s: Int8Stage, out: Int8Array): number[] {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, Cg, KH, KW] = w.shape as [number, number, number, number];
  const [sh, sw] = p.strides;
  const [pt, pl, pb, pr] = p.pads;
  const [dh, dw] = p.dilations;
  const OH = convOutSize(H, KH, sh, pt, pb, dh);
  const OW = convOutSize(W, KW, sw, pl, pr, dw);
  const Og = O / p.group;
  const zp = s.in[1];
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      const bias = s.bias ? s.bias[o]! : 0;
      const oo = (n * O + o) * OH * OW;
      for (let oy = 0; oy < OH; oy++) {
        for (let ox = 0; ox < OW; ox++) {
          let acc = bias;
          for (let c = 0; c < Cg; c++) {
            const xo = (n * C + g * Cg + c) * H * W;
            const wo = (o * Cg + c) * KH * KW;
            for (let ky = 0; ky < KH; ky++) {
              const iy = oy * sh - pt + ky * dh;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < KW; kx++) {
                const ix = ox * sw - pl + kx * dw;
                if (ix < 0 || ix >= W) continue;
                acc += (x[xo + iy * W + ix]! - zp) * w.q[wo + ky * KW + kx]!;
              }
            }
          }
          out[oo + oy * OW + ox] = requant(acc, s, o);
        }
      }
    }
  }
  return [N, O, OH, OW];
}

/** Integer division rounded to nearest, ties away from zero (TFLite's average pool rounding). */
function divRound(sum: number, count: number): number {
  const half = Math.floor(count / 2);
  return sum >= 0 ? Math.floor((sum + half) / count) : -Math.floor((-sum + half) / count);
}

export function maxPoolInt8(x: Int8Array, xShape: readonly number[], p: PoolParams, out: Int8Array): void {
  maxPoolWindows(x, xShape, p, out, -128);
}

/** Average of (q - zp) over the window (the count as the float kernel takes it), plus zp. */
export function avgPoolInt8(x: Int8Array, xShape: readonly number[], p: PoolParams, countIncludePad: boolean, zp: number, out: Int8Array): void {
  avgPoolWindows(x, xShape, p, countIncludePad, out, (sum, count, real) => {
    // The sum of (q - zp) over the real inputs; an all-padding window is zp.
    const v = count > 0 ? divRound(sum - zp * real, count) + zp : zp;
    return v < -128 ? -128 : v > 127 ? 127 : v;
  });
}

export function globalAvgPoolInt8(x: Int8Array, xShape: readonly number[], zp: number, out: Int8Array): void {
  const NC = xShape[0]! * xShape[1]!;
  const S = x.length / NC;
  for (let nc = 0; nc < NC; nc++) {
    let s = 0;
    for (let i = 0; i < S; i++) s += x[nc * S + i]! - zp;
    const v = divRound(s, S) + zp;
    out[nc] = v < -128 ? -128 : v > 127 ? 127 : v;
  }
}

export function reluInt8(x: Int8Array, zp: number, out: Int8Array): void {
  for (let i = 0; i < x.length; i++) out[i] = x[i]! < zp ? zp : x[i]!;
}

// ---- Kernels for residual, multi-branch and output ops (added with issue 17's residual and
// depthwise nets). The functions above are unchanged: the firmware's port matches them bit for bit.

/**
 * TFLite's integer add of two same-shape int8 tensors: each (q - zp) is shifted left by
 * ADD_LEFT_SHIFT and scaled by its input multiplier, the sum by the output multiplier, then the
 * output zero point is added and the result clamped to [min, max].
 */
export function addInt8(a: Int8Array, zpA: number, b: Int8Array, zpB: number, p: Int8Add, zpOut: number, out: Int8Array): void {
  const left = 2 ** ADD_LEFT_SHIFT;
  for (let i = 0; i < out.length; i++) {
    const sa = multiplyByQuantizedMultiplier((a[i]! - zpA) * left, p.mult[0], p.shift[0]);
    const sb = multiplyByQuantizedMultiplier((b[i]! - zpB) * left, p.mult[1], p.shift[1]);
    const v = multiplyByQuantizedMultiplier(sa + sb, p.outMult, p.outShift) + zpOut;
    out[i] = v < p.min ? p.min : v > p.max ? p.max : v;
  }
}

/** One input of a concat, rescaled: out = clamp(round((q - zp_in) M) + zp_out) into `out` at `at`. */
export function rescaleInt8(x: Int8Array, zpIn: number, mult: number, shift: number, zpOut: number, out: Int8Array, at: number, count: number, from: number): void {
  for (let i = 0; i < count; i++) {
    const v = multiplyByQuantizedMultiplier(x[from + i]! - zpIn, mult, shift) + zpOut;
    out[at + i] = v < -128 ? -128 : v > 127 ? 127 : v;
  }
}

/**
 * Concat along `axis` of int8 tensors with shapes `shapes` (equal but for the axis), each input
 * rescaled to the output's quantisation.
 */
export function concatInt8(xs: Int8Array[], shapes: readonly (readonly number[])[], axis: number, zps: readonly number[], p: Int8Concat, zpOut: number, out: Int8Array): void {
  const outer = shapes[0]!.slice(0, axis).reduce((s, d) => s * d, 1);
  const rows = shapes.map((s) => s.slice(axis).reduce((a, d) => a * d, 1));
  const total = rows.reduce((a, b) => a + b, 0);
  for (let o = 0; o < outer; o++) {
    let at = o * total;
    xs.forEach((x, k) => {
      rescaleInt8(x, zps[k]!, p.mult[k]!, p.shift[k]!, zpOut, out, at, rows[k]!, o * rows[k]!);
      at += rows[k]!;
    });
  }
}

/** out[i] = lut[x[i] + 128]: an element-wise op tabulated over the 256 inputs. */
export function lutInt8(x: Int8Array, lut: readonly number[], out: Int8Array): void {
  for (let i = 0; i < x.length; i++) out[i] = lut[x[i]! + 128]!;
}

/**
 * Integer softmax over an axis of `inner`-strided rows of length C: with d = max - q (0..255) and
 * the exp table e (e[0] = 2^16), out = clamp(floor((256 e[d] + floor(S / 2)) / S) - 128) where
 * S = sum of e[d] over the row; the output quantisation is (1/256, -128). Exact in 32-bit
 * unsigned arithmetic for C < 2^15.
 */
export function softmaxInt8(x: Int8Array, outer: number, C: number, inner: number, exp: readonly number[], out: Int8Array): void {
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      const base = o * C * inner + j;
      let mx = -128;
      for (let c = 0; c < C; c++) if (x[base + c * inner]! > mx) mx = x[base + c * inner]!;
      let sum = 0;
      for (let c = 0; c < C; c++) sum += exp[mx - x[base + c * inner]!]!;
      const half = Math.floor(sum / 2);
      for (let c = 0; c < C; c++) {
        const v = Math.floor((256 * exp[mx - x[base + c * inner]!]! + half) / sum) - 128;
        out[base + c * inner] = v > 127 ? 127 : v;
      }
    }
  }
}
