// The thin layer between runtime/kernels/wasmKernels.ts and the thread pool: the same exports as
// the single-threaded module (gemm_nt / gemm_nn / gemm_tn, conv2d, conv1x1), each call split into
// slices that run at once on the main thread and the pool's workers, all on the one shared memory.
// runtime/cost/threads.ts says how many threads a call gets; small calls run on the calling thread
// exactly as before. Slices never overlap in the output, so no result depends on timing.
//
//   GEMM          rows in blocks of 4 (the micro-kernel's height; each slice keeps >= 4 rows, so
//                 every output is summed in the same order as single-threaded), or, with fewer
//                 than 8 rows (batch 1), columns in blocks of 16
//   conv2d        batch images (N >= 2); at batch 1, groups (grouped / depthwise) or output
//                 channels in blocks of 4 (the direct kernels' and Winograd's tile of output
//                 channels, so a 16-channel layer splits too; each slice redoes its im2col or
//                 padded copy or input transform, so only big layers split)
//   conv1x1       batch images, or output channels in blocks of 4
// Per call nothing is allocated: slices are written into the pool's shared control words.
import { MIN_MACS_PER_THREAD, sliceStart, threadsFor } from '../cost/threads.js';
import type { ThreadPool } from './threads.js';

type Ptr = number;

/** The exports of kernels-mt.wasm that the split calls use (besides those wasmKernels.ts calls directly). */
export interface ThreadedModuleExports {
  gemm_block(a: Ptr, rsa: number, csa: number, b: Ptr, rsb: number, csb: number, M: number, N: number, K: number, bias: Ptr, out: Ptr, ldc: number): void;
  conv2d(x: Ptr, w: Ptr, bias: Ptr, out: Ptr, cols: Ptr, N: number, C: number, H: number, W: number, O: number,
    KH: number, KW: number, G: number, sh: number, sw: number, pt: number, pl: number, dh: number, dw: number,
    OH: number, OW: number): void;
  conv1x1(x: Ptr, w: Ptr, bias: Ptr, out: Ptr, N: number, C: number, HW: number, O: number): void;
}

/** Export names the pool may call, by the index the calls below use. */
export const POOL_EXPORTS = ['gemm_block', 'conv2d', 'conv1x1'] as const;
const GEMM = 0, CONV = 1, CONV1X1 = 2;
/** Output channels per unit of a batch-1 convolution's split (slices start at multiples of it). */
export const OC_BLOCK = 4;

export interface SplitKernels {
  gemm_nt(a: Ptr, b: Ptr, M: number, N: number, K: number, bias: Ptr, out: Ptr): void;
  gemm_nn(a: Ptr, b: Ptr, M: number, N: number, K: number, out: Ptr): void;
  gemm_tn(a: Ptr, b: Ptr, M: number, N: number, K: number, out: Ptr): void;
  conv2d: ThreadedModuleExports['conv2d'];
  conv1x1: ThreadedModuleExports['conv1x1'];
  /**
   * Gives the workers a conv2d call of these sizes would use their im2col scratch now: call it
   * before staging the call's operands (a new block goes where staging would be).
   */
  reserveConv(N: number, C: number, O: number, G: number, KH: number, KW: number, OH: number, OW: number): void;
  /** Caps the threads a call may take (1: everything on the calling thread); at most pool size + 1. */
  setCap(threads: number): void;
  cap(): number;
  /** The most threads any call took since the last resetUsed() (sessions record it per node). */
  used(): number;
  resetUsed(): void;
}

/**
 * Wraps the main instance's exports `x`. `colsFor(w, floats)` gives worker w an im2col scratch
 * block of at least `floats` floats (kept and reused; it grows memory only when a bigger layer
 * first runs, i.e. during a session's warm-up).
 */
export function splitKernels(
  x: ThreadedModuleExports, pool: ThreadPool, colsFor: (w: number, floats: number, grow: boolean) => Ptr,
  /** Multiply-adds a slice must carry (runtime/cost/threads.ts); 0 splits every call that can split (tests). */
  minMacs = MIN_MACS_PER_THREAD,
): SplitKernels {
  let cap = pool.size + 1;
  let used = 1;

  /** out = bias + a b with the strides of gemm_acc; split by rows or columns when it pays. */
  function gemm(a: Ptr, rsa: number, csa: number, b: Ptr, rsb: number, csb: number, M: number, N: number, K: number, bias: Ptr, out: Ptr): void {
    const macs = M * N * K;
    const rowUnits = M >> 2;
    const byRows = rowUnits >= 2;
    const units = byRows ? rowUnits : (N + 15) >> 4;
    const t = threadsFor(macs, units, cap, minMacs);
    if (t > used) used = t;
    if (t <= 1) {
      x.gemm_block(a, rsa, csa, b, rsb, csb, M, N, K, bias, out, N);
      return;
    }
    const edge = byRows ? M : N;
    const step = byRows ? 4 : 16;
    const lo = (i: number) => step * sliceStart(i, t, units);
    const hi = (i: number) => (i === t - 1 ? edge : Math.min(edge, step * sliceStart(i + 1, t, units)));
    for (let i = 0; i < t - 1; i++) {
      const s = lo(i), n = hi(i) - s;
      if (byRows) pool.set(i, GEMM, a + 4 * s * rsa, rsa, csa, b, rsb, csb, n, N, K, bias, out + 4 * s * N, N);
      else pool.set(i, GEMM, a, rsa, csa, b + 4 * s * csb, rsb, csb, M, n, K, bias ? bias + 4 * s : 0, out + 4 * s, N);
    }
    pool.idleFrom(t - 1);
    const s = lo(t - 1), n = edge - s;
    pool.dispatch(() => {
      if (byRows) x.gemm_block(a + 4 * s * rsa, rsa, csa, b, rsb, csb, n, N, K, bias, out + 4 * s * N, N);
      else x.gemm_block(a, rsa, csa, b + 4 * s * csb, rsb, csb, M, n, K, bias ? bias + 4 * s : 0, out + 4 * s, N);
    });
  }

  function conv2d(px: Ptr, pw: Ptr, pbias: Ptr, po: Ptr, pcols: Ptr, N: number, C: number, H: number, W: number, O: number,
    KH: number, KW: number, G: number, sh: number, sw: number, pt: number, pl: number, dh: number, dw: number, OH: number, OW: number): void {
    const Cg = C / G, Og = O / G, P = OH * OW;
    // What a slice is: 0 batch images, 1 groups, 2 blocks of OC_BLOCK output channels.
    const mode = N >= 2 ? 0 : G > 1 ? 1 : 2;
    const units = mode === 0 ? N : mode === 1 ? G : Math.floor(O / OC_BLOCK);
    const nCols = Cg * KH * KW * P;
    let t = convThreads(N, C, O, G, KH, KW, OH, OW);
    // Without its scratch (reserveConv found no room) a worker cannot take a slice.
    for (let w = 0; w < t - 1; w++) if (colsFor(w, nCols, false) === 0) t = 1;
    if (t > used) used = t;
    if (t <= 1) {
      x.conv2d(px, pw, pbias, po, pcols, N, C, H, W, O, KH, KW, G, sh, sw, pt, pl, dh, dw, OH, OW);
      return;
    }
    const edge = mode === 0 ? N : mode === 1 ? G : O;
    const step = mode === 2 ? OC_BLOCK : 1;
    // Slice i on worker w (w < 0: this thread). Plain arguments: nothing allocated per call.
    const slice = (i: number, w: number) => {
      const s = step * sliceStart(i, t, units);
      const n = (i === t - 1 ? edge : Math.min(edge, step * sliceStart(i + 1, t, units))) - s;
      const cols = w < 0 ? pcols : colsFor(w, nCols, false);
      let x0 = px, w0 = pw, b0 = pbias, o0 = po, n0 = N, c0 = C, oc = O, g0 = G;
      if (mode === 0) {
        x0 = px + 4 * s * C * H * W;
        o0 = po + 4 * s * O * P;
        n0 = n;
      } else if (mode === 1) {
        x0 = px + 4 * s * Cg * H * W;
        w0 = pw + 4 * s * Og * Cg * KH * KW;
        b0 = pbias ? pbias + 4 * s * Og : 0;
        o0 = po + 4 * s * Og * P;
        c0 = n * Cg;
        oc = n * Og;
        g0 = n;
      } else {
        w0 = pw + 4 * s * Cg * KH * KW;
        b0 = pbias ? pbias + 4 * s : 0;
        o0 = po + 4 * s * P;
        oc = n;
      }
      if (w < 0) x.conv2d(x0, w0, b0, o0, cols, n0, c0, H, W, oc, KH, KW, g0, sh, sw, pt, pl, dh, dw, OH, OW);
      else pool.set(w, CONV, x0, w0, b0, o0, cols, n0, c0, H, W, oc, KH, KW, g0, sh, sw, pt, pl, dh, dw, OH, OW);
    };
    for (let i = 0; i < t - 1; i++) slice(i, i);
    pool.idleFrom(t - 1);
    pool.dispatch(() => slice(t - 1, -1));
  }

  function convThreads(N: number, C: number, O: number, G: number, KH: number, KW: number, OH: number, OW: number): number {
    const units = N >= 2 ? N : G > 1 ? G : Math.floor(O / OC_BLOCK);
    return threadsFor(N * O * OH * OW * (C / G) * KH * KW, units, cap, minMacs);
  }

  function conv1x1(px: Ptr, pw: Ptr, pbias: Ptr, po: Ptr, N: number, C: number, HW: number, O: number): void {
    const macs = N * O * HW * C;
    const byBatch = N >= 2;
    const units = byBatch ? N : Math.floor(O / OC_BLOCK);
    const t = threadsFor(macs, units, cap, minMacs);
    if (t > used) used = t;
    if (t <= 1) {
      x.conv1x1(px, pw, pbias, po, N, C, HW, O);
      return;
    }
    const edge = byBatch ? N : O;
    const step = byBatch ? 1 : OC_BLOCK;
    const slice = (i: number, w: number) => {
      const s = step * sliceStart(i, t, units);
      const n = (i === t - 1 ? edge : Math.min(edge, step * sliceStart(i + 1, t, units))) - s;
      if (w < 0) {
        if (byBatch) x.conv1x1(px + 4 * s * C * HW, pw, pbias, po + 4 * s * O * HW, n, C, HW, O);
        else x.conv1x1(px, pw + 4 * s * C, pbias ? pbias + 4 * s : 0, po + 4 * s * HW, 1, C, HW, n);
      } else if (byBatch) pool.set(w, CONV1X1, px + 4 * s * C * HW, pw, pbias, po + 4 * s * O * HW, n, C, HW, O);
      else pool.set(w, CONV1X1, px, pw + 4 * s * C, pbias ? pbias + 4 * s : 0, po + 4 * s * HW, 1, C, HW, n);
    };
    for (let i = 0; i < t - 1; i++) slice(i, i);
    pool.idleFrom(t - 1);
    pool.dispatch(() => slice(t - 1, -1));
  }

  return {
    gemm_nt: (a, b, M, N, K, bias, out) => gemm(a, K, 1, b, 1, K, M, N, K, bias, out),
    gemm_nn: (a, b, M, N, K, out) => gemm(a, K, 1, b, N, 1, M, N, K, 0, out),
    gemm_tn: (a, b, M, N, K, out) => gemm(a, 1, M, b, N, 1, M, N, K, 0, out),
    conv2d,
    conv1x1,
    reserveConv(N, C, O, G, KH, KW, OH, OW) {
      const t = convThreads(N, C, O, G, KH, KW, OH, OW);
      for (let w = 0; w < t - 1; w++) colsFor(w, (C / G) * KH * KW * OH * OW, true);
    },
    setCap(threads) {
      cap = Math.max(1, Math.min(pool.size + 1, Math.floor(threads)));
    },
    cap: () => cap,
    used: () => used,
    resetUsed() {
      used = 1;
    },
  };
}
