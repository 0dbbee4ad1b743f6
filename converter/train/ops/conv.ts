// 2-D convolution (cross-correlation, as ONNX Conv and runtime/kernels/reference.ts) by im2col
// and matrix products per image and group. Backward: dW += dY cols^T, dcols = W^T dY, col2im.
// 1x1 convolutions with unit stride and no padding skip im2col: the input slice is the matrix.
// With the trainer on the WebAssembly kernels (../kernels.ts), the forward pass is the runtime's
// conv2d kernel and the backward pass convgrad.c's conv2d_grad, each one call for the whole batch;
// the loops here are the fallback.
import type { Conv2dParams } from '../../../runtime/kernels/reference.js';
import { convOutSize, im2col } from '../../../runtime/kernels/reference.js';
import { gemmNNAcc, gemmNTAcc, gemmTNAcc } from '../gemm.js';
import { convCall, trainWasm } from '../kernels.js';
import { gradOf, result, type Var } from '../tensor.js';
import { addBias } from './elementwise.js';

export type { Conv2dParams };

export function convParams(p: Partial<Conv2dParams> = {}): Conv2dParams {
  return { strides: p.strides ?? [1, 1], pads: p.pads ?? [0, 0, 0, 0], dilations: p.dilations ?? [1, 1], group: p.group ?? 1 };
}

interface Geometry {
  N: number; C: number; H: number; W: number; O: number; Cg: number; Og: number; G: number;
  KH: number; KW: number; OH: number; OW: number; P: number; K: number;
  sh: number; sw: number; pt: number; pl: number; dh: number; dw: number;
  direct: boolean;
}

function geometry(xShape: readonly number[], wShape: readonly number[], p: Conv2dParams): Geometry {
  if (xShape.length !== 4 || wShape.length !== 4) throw new Error(`train: conv2d needs NCHW input and OIHW weight, got [${xShape}], [${wShape}]`);
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, Cg, KH, KW] = wShape as [number, number, number, number];
  const G = p.group;
  if (C !== Cg * G || O % G !== 0) throw new Error(`train: conv2d input [${xShape}] / weight [${wShape}] do not fit group ${G}`);
  const [sh, sw] = p.strides;
  const [pt, pl, pb, pr] = p.pads;
  const [dh, dw] = p.dilations;
  const OH = convOutSize(H, KH, sh, pt, pb, dh);
  const OW = convOutSize(W, KW, sw, pl, pr, dw);
  if (OH < 1 || OW < 1) throw new Error(`train: conv2d output would be empty for input [${xShape}]`);
  const direct = KH === 1 && KW === 1 && sh === 1 && sw === 1 && pt === 0 && pl === 0 && pb === 0 && pr === 0;
  return { N, C, H, W, O, Cg, Og: O / G, G, KH, KW, OH, OW, P: OH * OW, K: Cg * KH * KW, sh, sw, pt, pl, dh, dw, direct };
}

/** The adjoint of im2col: gx[n, g*Cg + c, iy, ix] += gcols[k, p]. */
function col2im(gcols: Float32Array, n: number, g: number, q: Geometry, gx: Float32Array): void {
  const { C, H, W, Cg, KH, KW, OH, OW, P, sh, sw, pt, pl, dh, dw } = q;
  let k = 0;
  for (let c = 0; c < Cg; c++) {
    const xo = (n * C + g * Cg + c) * H * W;
    for (let ky = 0; ky < KH; ky++) {
      for (let kx = 0; kx < KW; kx++, k++) {
        const row = k * P;
        for (let oy = 0; oy < OH; oy++) {
          const iy = oy * sh - pt + ky * dh;
          if (iy < 0 || iy >= H) continue;
          const r = row + oy * OW;
          const xr = xo + iy * W;
          for (let ox = 0; ox < OW; ox++) {
            const ix = ox * sw - pl + kx * dw;
            if (ix >= 0 && ix < W) gx[xr + ix]! += gcols[r + ox]!;
          }
        }
      }
    }
  }
}

/** x [N, C, H, W] * w [O, C/group, kh, kw] (+ b [O]) -> [N, O, OH, OW]. */
export function conv2d(x: Var, w: Var, b: Var | undefined, params: Partial<Conv2dParams> = {}): Var {
  const p = convParams(params);
  const q = geometry(x.shape, w.shape, p);
  const { N, C, H, W, O, Og, G, P, K, Cg } = q;
  const xd = x.data;
  const wd = w.data;
  const out = new Float32Array(N * O * P);
  const call = convCall(x.shape, w.shape, p);
  let cols: Float32Array | undefined;
  // On wasm the bias is added by the kernel (and its gradient summed by conv2d_grad).
  const fused = trainWasm()?.conv2d(xd, wd, b ? b.data : null, out, call) ?? false;
  if (!fused) {
    cols = q.direct ? xd : new Float32Array(K * P);
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < G; g++) {
        let cOff = (n * C + g * Cg) * H * W;
        if (!q.direct) {
          im2col(xd, n, g, q, cols);
          cOff = 0;
        }
        gemmNNAcc(wd, g * Og * K, cols, cOff, out, (n * O + g * Og) * P, Og, P, K);
      }
    }
  }
  const y = result(out, [N, O, q.OH, q.OW], fused && b ? [x, w, b] : [x, w], (gOut) => {
    const gx = gradOf(x);
    const gw = gradOf(w);
    const gb = fused && b ? gradOf(b) : null;
    if (trainWasm()?.conv2dGrad(xd, wd, gOut, gx, gw, gb, call)) return;
    if (gb) {
      for (let n = 0, i = 0; n < N; n++) {
        for (let o = 0; o < O; o++) {
          let s = 0;
          for (let j = 0; j < P; j++, i++) s += gOut[i]!;
          gb[o]! += s;
        }
      }
    }
    cols ??= q.direct ? xd : new Float32Array(K * P);
    const gcols = gx && !q.direct ? new Float32Array(K * P) : undefined;
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < G; g++) {
        const oOff = (n * O + g * Og) * P;
        const xOff = (n * C + g * Cg) * H * W;
        if (gw) {
          if (q.direct) gemmNTAcc(gOut, oOff, xd, xOff, gw, g * Og * K, Og, K, P);
          else {
            im2col(xd, n, g, q, cols!);
            gemmNTAcc(gOut, oOff, cols!, 0, gw, g * Og * K, Og, K, P);
          }
        }
        if (gx) {
          if (q.direct) gemmTNAcc(wd, g * Og * K, gOut, oOff, gx, xOff, K, P, Og);
          else {
            gcols!.fill(0);
            gemmTNAcc(wd, g * Og * K, gOut, oOff, gcols!, 0, K, P, Og);
            col2im(gcols!, n, g, q, gx);
          }
        }
      }
    }
  });
  return b && !fused ? addBias(y, b, 1) : y;
}
