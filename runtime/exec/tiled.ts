// The "rebuild" product of a factor layer as a stand-alone call: the same bound product the
// session runs (bindRebuild in ./strategy.ts), on a given or an owned scratch buffer. Autotune
// (runtime/cost/autotune.ts) times it; tests compare it with the kind's contraction.
import { numel, type GraphNode, type Tensor } from '../ir.js';
import { convGeometry } from '../layers/convAttrs.js';
import { LayerError, type BoundRun, type FactorPart } from '../layers/kind.js';
import { LAYER_KINDS } from '../layers/registry.js';
import { RebuildError, type Rebuilder } from './rebuilder.js';
import { bindRebuild, rebuildScratch, type FactorContext } from './strategy.js';

export type { FactorContext } from './strategy.js';

/** Default bound on the tile: 64 KiB of f32. */
export const DEFAULT_TILE_BYTES = 64 * 1024;

/** Rows per tile so that rows x cols f32 fit in `bytes` (at least 1, at most `rows`; a multiple of 4 when >= 4). */
export function tileRowsFor(rows: number, cols: number, bytes = DEFAULT_TILE_BYTES): number {
  let t = Math.max(1, Math.floor(bytes / (4 * Math.max(1, cols))));
  if (t >= 4) t -= t % 4;
  return Math.min(rows, t);
}

export interface TiledLayer {
  rebuilder: Rebuilder;
  tileRows: number;
  /**
   * Floats of scratch `run` needs for an input of this shape (rebuildScratch in ./strategy.ts):
   * the tile, then the im2col columns and, batch > 1, a staging block. The rebuilder's own small
   * work buffers are held by it, made at prepare.
   */
  scratchFloats(inputShape: readonly number[]): number;
  /** Output shape for an input shape. */
  outputShape(inputShape: readonly number[]): number[];
  /** The session's bound product on these buffers: the returned call computes y from x and allocates nothing. */
  bind(x: Tensor, y: Tensor, scratch: Float32Array): BoundRun;
  /** Binds and runs once; `scratch` at least scratchFloats(x.shape) floats, else one is kept here. */
  run(x: Tensor, y: Tensor, scratch?: Float32Array): void;
  /** Allocating form: returns a new output. */
  apply(x: Tensor): Tensor;
}

function factorOf(node: GraphNode): FactorPart {
  const f = LAYER_KINDS.get(node.op)?.factor;
  if (!f) throw new RebuildError(node, 'not a factor kind');
  return f;
}

/** Prepares the tiled-rebuild product of a factor node; `tileRows` defaults to tileRowsFor(..). */
export function prepareTiled(node: GraphNode, ctx: FactorContext, tileRows?: number): TiledLayer {
  const factor = factorOf(node);
  const rb = factor.rebuild(node, (role) => ctx.optionalWeight(role), ctx.kernels);
  const T = Math.min(rb.rows, tileRows ?? tileRowsFor(rb.rows, rb.cols));
  if (!(Number.isInteger(T) && T >= 1)) throw new LayerError(node, `tile rows ${tileRows} must be a positive integer`);
  const bias = ctx.optionalWeight('bias');
  if (bias && bias.data.length !== rb.rows) throw new LayerError(node, `bias has ${bias.data.length} values for ${rb.rows} outputs`);
  const O = rb.rows;
  const cols = rb.cols;
  const kernel = factor.kernel?.((role) => ctx.optionalWeight(role)?.shape);
  if (factor.kernel && !kernel) throw new LayerError(node, 'missing a factor of the kernel');
  const strategy = { node: 0, use: 'rebuild' as const, rows: T };
  let own = new Float32Array(0);

  const outputShape = (s: readonly number[]): number[] => {
    if (kernel) {
      const I = cols / (kernel[0] * kernel[1]);
      if (s.length !== 4 || s[1] !== I) throw new LayerError(node, `input shape [${s}] is not [N, ${I}, H, W]`);
      const g = convGeometry(node, s[2]!, s[3]!, kernel[0], kernel[1]);
      return [s[0]!, O, g.OH, g.OW];
    }
    if (s[s.length - 1] !== cols) throw new LayerError(node, `input [${s}] does not end in ${cols}`);
    return [...s.slice(0, -1), O];
  };
  const scratchFloats = (s: readonly number[]): number => {
    const out = outputShape(s);
    return kernel ? rebuildScratch(T, cols, { N: s[0]!, P: out[2]! * out[3]! }) : rebuildScratch(T, cols, { B: numel(s) / cols });
  };
  const bind = (x: Tensor, y: Tensor, scratch: Float32Array): BoundRun => {
    const run = bindRebuild(node, ctx, () => rb, kernel, strategy, x, y, scratch);
    if (!run) throw new LayerError(node, 'rebuild product not bound');
    return run;
  };
  const run = (x: Tensor, y: Tensor, scratch?: Float32Array) => {
    if (!scratch) {
      const need = scratchFloats(x.shape);
      if (own.length < need) own = new Float32Array(need);
    }
    bind(x, y, scratch ?? own)();
  };
  return {
    rebuilder: rb, tileRows: T, scratchFloats, outputShape, bind, run,
    apply(x) {
      const s = outputShape(x.shape);
      const y = { shape: s, data: new Float32Array(numel(s)) };
      run(x, y);
      return y;
    },
  };
}
