// Max and average pooling over NCHW, with the runtime's padding and ceil-mode rules.
// Max pooling remembers the winning input index of each window for its backward.
import { maxPoolWindows, poolOutSize, type PoolParams } from '../../../runtime/kernels/reference.js';
import { trainWasm, type PoolCall } from '../kernels.js';
import { gradOf, result, type Var } from '../tensor.js';

export interface PoolOptions {
  kernel: [number, number];
  /** Defaults to the kernel. */
  strides?: [number, number];
  /** [top, left, bottom, right] */
  pads?: [number, number, number, number];
  dilations?: [number, number];
  ceilMode?: boolean;
}

function dims(x: Var): [number, number, number, number] {
  if (x.shape.length !== 4) throw new Error(`train: pooling needs NCHW input, got [${x.shape}]`);
  return x.shape as [number, number, number, number];
}

export function maxPool(x: Var, o: PoolOptions): Var {
  const [N, C, H, W] = dims(x);
  const [KH, KW] = o.kernel;
  const [sh, sw] = o.strides ?? o.kernel;
  const [pt, pl, pb, pr] = o.pads ?? [0, 0, 0, 0];
  const [dh, dw] = o.dilations ?? [1, 1];
  const OH = poolOutSize(H, KH, sh, pt, pb, dh, o.ceilMode ?? false);
  const OW = poolOutSize(W, KW, sw, pl, pr, dw, o.ceilMode ?? false);
  const xd = x.data;
  const out = new Float32Array(N * C * OH * OW);
  const params: PoolParams = { kernel: [KH, KW], strides: [sh, sw], pads: [pt, pl, pb, pr], dilations: [dh, dw], ceilMode: o.ceilMode ?? false };
  // On the wasm kernels the backward finds each window's maximum again instead of keeping its index.
  const call: PoolCall = { NC: N * C, H, W, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw };
  if (trainWasm()?.maxPool(xd, out, call)) {
    return result(out, [N, C, OH, OW], [x], (g) => {
      const gx = gradOf(x);
      if (gx && !trainWasm()?.maxPoolGrad(xd, g, gx, call)) maxPoolGradJs(xd, x.shape, params, g, gx);
    });
  }
  const arg = new Int32Array(out.length);
  maxPoolWindows(xd, x.shape, params, out, -Infinity, arg);
  return result(out, [N, C, OH, OW], [x], (g) => {
    const gx = gradOf(x);
    if (gx) scatterToArgmax(arg, g, gx);
  });
}

/** Each output's gradient to the input that won its window (none for an all-padding window). */
function scatterToArgmax(arg: Int32Array, g: Float32Array, gx: Float32Array): void {
  for (let i = 0; i < g.length; i++) {
    const at = arg[i]!;
    if (at >= 0) gx[at]! += g[i]!;
  }
}

/** The wasm path's backward on the JS loops (the trainer switched engines between forward and backward). */
function maxPoolGradJs(xd: Float32Array, xShape: readonly number[], p: PoolParams, g: Float32Array, gx: Float32Array): void {
  const arg = new Int32Array(g.length);
  maxPoolWindows(xd, xShape, p, new Float32Array(g.length), -Infinity, arg);
  scatterToArgmax(arg, g, gx);
}

export function avgPool(x: Var, o: PoolOptions & { countIncludePad?: boolean }): Var {
  const [N, C, H, W] = dims(x);
  const [KH, KW] = o.kernel;
  const [sh, sw] = o.strides ?? o.kernel;
  const [pt, pl, pb, pr] = o.pads ?? [0, 0, 0, 0];
  const ceil = o.ceilMode ?? false;
  const includePad = o.countIncludePad ?? false;
  const OH = poolOutSize(H, KH, sh, pt, pb, 1, ceil);
  const OW = poolOutSize(W, KW, sw, pl, pr, 1, ceil);
  // Window bounds per output row / column, shared by forward and backward.
  const win = (O: number, s: number, p: number, k: number, size: number, padEnd: number) => {
    const lo = new Int32Array(O), hi = new Int32Array(O), span = new Int32Array(O);
    for (let i = 0; i < O; i++) {
      const a = i * s - p;
      const b = Math.min(a + k, size + padEnd);
      lo[i] = Math.max(a, 0);
      hi[i] = Math.min(b, size);
      span[i] = includePad ? b - a : hi[i]! - lo[i]!;
    }
    return { lo, hi, span };
  };
  const ry = win(OH, sh, pt, KH, H, pb);
  const rx = win(OW, sw, pl, KW, W, pr);
  const xd = x.data;
  const out = new Float32Array(N * C * OH * OW);
  for (let nc = 0, i = 0; nc < N * C; nc++) {
    const xo = nc * H * W;
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++, i++) {
        let s = 0;
        for (let iy = ry.lo[oy]!; iy < ry.hi[oy]!; iy++) for (let ix = rx.lo[ox]!; ix < rx.hi[ox]!; ix++) s += xd[xo + iy * W + ix]!;
        const count = ry.span[oy]! * rx.span[ox]!;
        out[i] = count > 0 ? s / count : 0;
      }
    }
  }
  return result(out, [N, C, OH, OW], [x], (g) => {
    const gx = gradOf(x);
    if (!gx) return;
    for (let nc = 0, i = 0; nc < N * C; nc++) {
      const xo = nc * H * W;
      for (let oy = 0; oy < OH; oy++) {
        for (let ox = 0; ox < OW; ox++, i++) {
          const count = ry.span[oy]! * rx.span[ox]!;
          if (count === 0) continue;
          const v = g[i]! / count;
          for (let iy = ry.lo[oy]!; iy < ry.hi[oy]!; iy++) for (let ix = rx.lo[ox]!; ix < rx.hi[ox]!; ix++) gx[xo + iy * W + ix]! += v;
        }
      }
    }
  });
}

/** Mean over H and W: [N, C, H, W] -> [N, C, 1, 1]. */
export function globalAvgPool(x: Var): Var {
  const [N, C, H, W] = dims(x);
  const S = H * W;
  const out = new Float32Array(N * C);
  for (let nc = 0; nc < N * C; nc++) {
    let s = 0;
    for (let i = 0; i < S; i++) s += x.data[nc * S + i]!;
    out[nc] = s / S;
  }
  return result(out, [N, C, 1, 1], [x], (g) => {
    const gx = gradOf(x);
    if (!gx) return;
    for (let nc = 0; nc < N * C; nc++) {
      const v = g[nc]! / S;
      for (let i = 0; i < S; i++) gx[nc * S + i]! += v;
    }
  });
}
