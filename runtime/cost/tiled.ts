// The "rebuild" product of a factor layer: rebuild the dense weight one row tile at a time into a
// bounded scratch buffer (runtime/cost/rebuild.ts), multiply the input by the tile with the
// session's kernels, and write the tile's output columns / channels into the caller's output.
// Scratch is the caller's (a session's arena) or, when not given, allocated once here.
import type { GraphNode, Tensor } from '../ir.js';
import type { KernelBackend } from '../kernels/backend.js';
import { convParams } from '../layers/convAttrs.js';
import { LayerError, type Weight } from '../layers/kind.js';
import { prepareRebuild, type Rebuilder } from './rebuild.js';

/** Default bound on the tile: 64 KiB of f32. */
export const DEFAULT_TILE_BYTES = 64 * 1024;

/** Rows per tile so that rows x cols f32 fit in `bytes` (at least 1, at most `rows`; a multiple of 4 when >= 4). */
export function tileRowsFor(rows: number, cols: number, bytes = DEFAULT_TILE_BYTES): number {
  let t = Math.max(1, Math.floor(bytes / (4 * Math.max(1, cols))));
  if (t >= 4) t -= t % 4;
  return Math.min(rows, t);
}

const CONV_OPS = new Set(['svd_conv2d', 'tucker2_conv2d', 'cp_conv2d']);

/** What the tiled product needs from a session: its kernels and the node's f32 factors. */
export interface FactorContext {
  kernels: KernelBackend;
  optionalWeight(role: string): Weight | undefined;
  weight(role: string): Weight;
}

export interface TiledLayer {
  rebuilder: Rebuilder;
  tileRows: number;
  /**
   * Floats of scratch `run` needs for an input of this shape: the tile, then a B x tileRows staging
   * block (dense kinds, batch > 1), or the tile's output channels and the im2col columns (conv
   * kinds). The rebuilder's own small work buffers are held by it, made at prepare.
   */
  scratchFloats(inputShape: readonly number[]): number;
  /** Output shape for an input shape. */
  outputShape(inputShape: readonly number[]): number[];
  /** Writes the layer's output for `x` into `y` (shape from outputShape); `scratch` at least scratchFloats(x.shape) floats, else one is kept here. Allocates nothing when given scratch. */
  run(x: Tensor, y: Tensor, scratch?: Float32Array): void;
  /** Allocating form: returns a new output. */
  apply(x: Tensor): Tensor;
}

/** Prepares the tiled-rebuild product of a factor node; `tileRows` defaults to tileRowsFor(..). */
export function prepareTiled(node: GraphNode, ctx: FactorContext, tileRows?: number): TiledLayer {
  const k = ctx.kernels;
  const rb = prepareRebuild(node, (role) => ctx.optionalWeight(role), k);
  const T = Math.min(rb.rows, tileRows ?? tileRowsFor(rb.rows, rb.cols));
  if (!(Number.isInteger(T) && T >= 1)) throw new LayerError(node, `tile rows ${tileRows} must be a positive integer`);
  const bias = ctx.optionalWeight('bias');
  if (bias && bias.data.length !== rb.rows) throw new LayerError(node, `bias has ${bias.data.length} values for ${rb.rows} outputs`);
  const conv = CONV_OPS.has(node.op);
  const O = rb.rows;
  const cols = rb.cols;
  let own = new Float32Array(0);
  let extra: (s: readonly number[]) => number = () => 0;
  const scratchFloats = (s: readonly number[]) => T * cols + extra(s);
  const scratchFor = (s: readonly number[], given?: Float32Array) => {
    const need = scratchFloats(s);
    if (given) {
      if (given.length < need) throw new LayerError(node, `tiled rebuild needs ${need} floats of scratch, got ${given.length}`);
      return given;
    }
    if (own.length < need) own = new Float32Array(need);
    return own;
  };

  if (conv) {
    const p = convParams(node);
    let I: number, kh: number, kw: number;
    if (node.op === 'svd_conv2d') [, I, kh, kw] = ctx.weight('v').shape as [number, number, number, number];
    else if (node.op === 'tucker2_conv2d') {
      I = ctx.weight('u_in').shape[1]!;
      [, , kh, kw] = ctx.weight('core').shape as [number, number, number, number];
    } else {
      I = ctx.weight('a_in').shape[1]!;
      kh = ctx.weight('k_h').shape[1]!;
      kw = ctx.weight('k_w').shape[1]!;
    }
    const outputShape = (s: readonly number[]) => {
      if (s.length !== 4 || s[1] !== I) throw new LayerError(node, `input shape [${s}] is not [N, ${I}, H, W]`);
      const oh = Math.floor((s[2]! + p.pads[0] + p.pads[2] - p.dilations[0] * (kh - 1) - 1) / p.strides[0]) + 1;
      const ow = Math.floor((s[3]! + p.pads[1] + p.pads[3] - p.dilations[1] * (kw - 1) - 1) / p.strides[1]) + 1;
      return [s[0]!, O, oh, ow];
    };
    // Scratch: tile [T, cols] | the tile's output [N, T, P] | im2col columns [cols, P].
    extra = (s) => {
      const [N, , OH, OW] = outputShape(s) as [number, number, number, number];
      return N * T * OH * OW + cols * OH * OW;
    };
    const run = (x: Tensor, y: Tensor, scratch?: Float32Array) => {
      const [N, , OH, OW] = outputShape(x.shape) as [number, number, number, number];
      const P = OH * OW;
      const s = scratchFor(x.shape, scratch);
      const tile = s.subarray(0, T * cols);
      const part = s.subarray(T * cols, T * cols + N * T * P);
      const im2col = s.subarray(T * cols + N * T * P, T * cols + N * T * P + cols * P);
      for (let r0 = 0; r0 < O; r0 += T) {
        const r1 = Math.min(O, r0 + T);
        const n = r1 - r0;
        rb.rowsInto(r0, r1, tile, 0);
        k.conv2dInto(x.data, x.shape, tile, [n, I, kh, kw], bias?.data.subarray(r0, r1), p, part, im2col);
        for (let b = 0; b < N; b++) y.data.set(part.subarray(b * n * P, (b + 1) * n * P), (b * O + r0) * P);
      }
    };
    return {
      rebuilder: rb, tileRows: T, scratchFloats, outputShape, run,
      apply(x) {
        const s = outputShape(x.shape);
        const y = { shape: s, data: new Float32Array(s.reduce((a, b) => a * b, 1)) };
        run(x, y);
        return y;
      },
    };
  }

  const outputShape = (s: readonly number[]) => {
    if (s[s.length - 1] !== cols) throw new LayerError(node, `input [${s}] does not end in ${cols}`);
    return [...s.slice(0, -1), O];
  };
  extra = (s) => {
    const B = s.reduce((a, b) => a * b, 1) / cols;
    return B > 1 ? B * T : 0;
  };
  const run = (x: Tensor, y: Tensor, scratch?: Float32Array) => {
    outputShape(x.shape);
    const B = x.data.length / cols;
    const s = scratchFor(x.shape, scratch);
    const tile = s.subarray(0, T * cols);
    const stage = s.subarray(T * cols);
    for (let r0 = 0; r0 < O; r0 += T) {
      const r1 = Math.min(O, r0 + T);
      const n = r1 - r0;
      rb.rowsInto(r0, r1, tile, 0);
      const b = bias?.data.subarray(r0, r1);
      if (B === 1) {
        k.gemmNT(x.data, tile, 1, n, cols, b, y.data.subarray(r0, r1));
      } else {
        k.gemmNT(x.data, tile, B, n, cols, b, stage);
        for (let i = 0; i < B; i++) y.data.set(stage.subarray(i * n, (i + 1) * n), i * O + r0);
      }
    }
  };
  return {
    rebuilder: rb, tileRows: T, scratchFloats, outputShape, run,
    apply(x) {
      const s = outputShape(x.shape);
      const y = { shape: s, data: new Float32Array(s.reduce((a, b) => a * b, 1)) };
      run(x, y);
      return y;
    },
  };
}
