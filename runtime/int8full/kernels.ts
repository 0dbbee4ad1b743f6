// The reference integer kernels of the int8-full path: the definition the firmware's integer
// kernels must match bit for bit. Activations are Int8Array, NCHW; accumulators are exact int32
// (|sum| < 2^31 for any layer under 2^17 multiply-accumulates per output).
import type { Conv2dParams, PoolParams } from '../kernels/reference.js';
import { avgPoolWindows, convOutSize, maxPoolWindows, poolOutSize } from '../kernels/reference.js';
import { multiplyByQuantizedMultiplier } from './requant.js';
import type { Int8Stage } from './params.js';

/** Weight of a stage: q [C_out, K...] row-major, zero point 0. */
export interface StageWeight {
  q: Int8Array;
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
