// The "rebuild" product of a factor layer: rebuild the dense weight one row tile at a time into a
// bounded scratch buffer (runtime/cost/rebuild.ts), multiply the input by the tile with the
// session's kernels, and write the tile's output columns / channels. Same contract as a layer
// kind's prepare() (runtime/layers/kind.ts), so a session can run either product for a node.
import type { GraphNode, Tensor } from '../ir.js';
import { convParams, checkNchw } from '../layers/convAttrs.js';
import { firstInput, LayerError, type LayerContext, type LayerRun } from '../layers/kind.js';
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

export interface TiledLayer {
  run: LayerRun;
  rebuilder: Rebuilder;
  tileRows: number;
  /** Bytes of scratch at a batch: the tile, the rebuilder's work buffers and (dense) a B x tileRows staging block. */
  scratchBytes(batch: number): number;
}

/** Prepares the tiled-rebuild product of a factor node; `tileRows` defaults to tileRowsFor(..). */
export function prepareTiled(node: GraphNode, ctx: LayerContext, tileRows?: number): TiledLayer {
  const rb = prepareRebuild(node, (role) => ctx.optionalWeight(role));
  const T = tileRows ?? tileRowsFor(rb.rows, rb.cols);
  if (!(Number.isInteger(T) && T >= 1)) throw new LayerError(node, `tile rows ${T} must be a positive integer`);
  const tile = new Float32Array(Math.min(T, rb.rows) * rb.cols);
  const bias = ctx.optionalWeight('bias');
  if (bias && bias.data.length !== rb.rows) throw new LayerError(node, `bias has ${bias.data.length} values for ${rb.rows} outputs`);
  const fixedBytes = 4 * (tile.length + rb.scratchFloats);
  const k = ctx.kernels;

  if (CONV_OPS.has(node.op)) {
    const p = convParams(node);
    // Weight [O, I, kh, kw]: recover I, kh, kw from the factor that carries them.
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
    const O = rb.rows;
    const run: LayerRun = (inputs) => {
      const x = firstInput(node, inputs);
      checkNchw(node, x.shape, I);
      let y: Tensor | undefined;
      for (let r0 = 0; r0 < O; r0 += T) {
        const r1 = Math.min(O, r0 + T);
        rb.rowsInto(r0, r1, tile, 0);
        const part = k.conv2d(x.data, x.shape, tile, [r1 - r0, I, kh, kw], bias?.data.subarray(r0, r1), p);
        const [N, , OH, OW] = part.shape as [number, number, number, number];
        const P = OH * OW;
        if (!y) y = { data: new Float32Array(N * O * P), shape: [N, O, OH, OW] };
        if (r1 - r0 === O) return part;
        for (let n = 0; n < N; n++) y.data.set(part.data.subarray(n * (r1 - r0) * P, (n + 1) * (r1 - r0) * P), (n * O + r0) * P);
      }
      return y!;
    };
    return { run, rebuilder: rb, tileRows: T, scratchBytes: () => fixedBytes };
  }

  const inF = rb.cols;
  const out = rb.rows;
  let partBuf = new Float32Array(0);
  const run: LayerRun = (inputs) => {
    const x = firstInput(node, inputs);
    if (x.shape[x.shape.length - 1] !== inF) throw new LayerError(node, `input [${x.shape}] does not end in ${inF}`);
    const B = x.data.length / inF;
    const y = new Float32Array(B * out);
    if (B > 1 && partBuf.length < B * T) partBuf = new Float32Array(B * T);
    for (let r0 = 0; r0 < out; r0 += T) {
      const r1 = Math.min(out, r0 + T);
      const n = r1 - r0;
      rb.rowsInto(r0, r1, tile, 0);
      const b = bias?.data.subarray(r0, r1);
      if (B === 1) {
        k.gemmNT(x.data, tile, 1, n, inF, b, y.subarray(r0, r1));
      } else {
        k.gemmNT(x.data, tile, B, n, inF, b, partBuf);
        for (let i = 0; i < B; i++) y.set(partBuf.subarray(i * n, (i + 1) * n), i * out + r0);
      }
    }
    return { data: y, shape: [...x.shape.slice(0, -1), out] };
  };
  return { run, rebuilder: rb, tileRows: T, scratchBytes: (batch) => fixedBytes + (batch > 1 ? 4 * batch * T : 0) };
}
