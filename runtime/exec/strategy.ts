// The "rebuild" product of a factor layer (docs/FORMAT.md section 7, `strategy`): rows
// [r0, r0 + T) of the dense weight are rebuilt from the factors into the node's scratch by the
// kind's rebuilder (its `factor.rebuild`, runtime/exec/rebuilder.ts), then multiplied with the
// session's kernels, tile after tile. Views are made at bind, so a call allocates nothing here.
// The session runs it, autotune times it (through runtime/exec/tiled.ts), and the cost model
// sizes its scratch with rebuildScratch: one code path, one formula.
//
// Scratch (floats), T = strategy.rows:
//   dense kinds  T x in  (the tile)  + B x T (a staging block, batch B > 1)
//   conv kinds   T x I*kh*kw (the tile) + I*kh*kw x OH*OW (im2col columns) + N x T x OH*OW (staging, N > 1)
// The rebuilder's own small work buffers are made once when the layer is prepared, outside the arena.
import type { GraphNode, Tensor } from '../ir.js';
import type { Conv2dParams } from '../kernels/reference.js';
import type { KernelBackend } from '../kernels/backend.js';
import type { PlanStrategy } from '../format/planTypes.js';
import { convParams } from '../layers/convAttrs.js';
import { carve, checkOutput, firstInput, LayerError, needScratch, type BoundRun, type FactorPart, type WeightShape } from '../layers/kind.js';
import type { Weight } from '../layers/weight.js';
import type { Rebuilder } from './rebuilder.js';

/** What the rebuild product needs of a layer: its kernels and its f32 factors. */
export interface FactorContext {
  kernels: KernelBackend;
  optionalWeight(role: string): Weight | undefined;
  weight(role: string): Weight;
}

/**
 * Floats of scratch of the rebuild product, T rows per tile of a weight with `cols` columns: the
 * tile, then for a conv (P = OH * OW output pixels, N samples) the im2col columns [cols, P] and,
 * when N > 1, a staging block [N, T, P]; for a dense kind (B rows of input), a staging block [B, T]
 * when B > 1. The one formula: the layer kinds, the tiled product and the cost model all use it.
 */
export function rebuildScratch(T: number, cols: number, conv: { N: number; P: number } | { B: number }): number {
  if ('P' in conv) return T * cols + cols * conv.P + (conv.N > 1 ? conv.N * T * conv.P : 0);
  return T * cols + (conv.B > 1 ? conv.B * T : 0);
}

/** Scratch floats of the rebuild product at a node's shapes (its kind's `factor.kernel` says conv or dense). */
export function rebuildScratchFloats(node: GraphNode, factor: FactorPart, inputShapes: number[][], outputShape: number[], w: WeightShape, strategy: PlanStrategy): number {
  const x = inputShapes[0]!;
  if (factor.kernel) {
    const T = Math.min(strategy.rows, outputShape[1]!);
    const k = factor.kernel(w);
    if (!k) return 0;
    return rebuildScratch(T, x[1]! * k[0] * k[1], { N: x[0]!, P: outputShape[2]! * outputShape[3]! });
  }
  const T = Math.min(strategy.rows, outputShape[outputShape.length - 1]!);
  const inF = x[x.length - 1]!;
  return rebuildScratch(T, inF, { B: x.reduce((a, b) => a * b, 1) / inF });
}

/** Per layer: its kind's rebuilder, made on first use. */
export function rebuilderFor(node: GraphNode, ctx: FactorContext, factor: FactorPart): () => Rebuilder {
  let rb: Rebuilder | undefined;
  return () => {
    if (!rb) {
      rb = factor.rebuild(node, (role) => ctx.optionalWeight(role), ctx.kernels);
    }
    return rb;
  };
}

/**
 * The start of every factorised dense layer's bind: the input must end in `inF` and the output be
 * the input with that axis replaced by `out`; then the rebuild product when the strategy asks for it.
 */
export function bindFactorDense(
  node: GraphNode, ctx: FactorContext, rebuilder: () => Rebuilder, strategy: PlanStrategy | undefined,
  inputs: Tensor[], output: Tensor, scratch: Float32Array, inF: number, out: number,
): { x: Tensor; rebuild: BoundRun | undefined } {
  const x = firstInput(node, inputs);
  if (x.shape[x.shape.length - 1] !== inF) throw new LayerError(node, `input [${x.shape}] does not end in ${inF}`);
  checkOutput(node, output, [...x.shape.slice(0, -1), out]);
  return { x, rebuild: bindRebuild(node, ctx, rebuilder, undefined, strategy, x, output, scratch) };
}

/**
 * The bound rebuild product, or undefined for "contract" (the layer's own contraction). `kernel`
 * is the conv kinds' [kh, kw] (their `factor.kernel`); undefined for a dense kind.
 */
export function bindRebuild(
  node: GraphNode, ctx: FactorContext, rebuilder: () => Rebuilder, kernel: [number, number] | undefined,
  strategy: PlanStrategy | undefined, x: Tensor, output: Tensor, scratch: Float32Array,
): BoundRun | undefined {
  if (!strategy || strategy.use !== 'rebuild') return undefined;
  const rb = rebuilder();
  const O = rb.rows;
  const cols = rb.cols;
  const T = Math.min(strategy.rows, O);
  if (!(T >= 1)) throw new LayerError(node, `rebuild tile of ${strategy.rows} rows`);
  const bias = ctx.optionalWeight('bias')?.data;
  const y = output.data;
  const kernels = ctx.kernels;
  const starts: number[] = [];
  for (let r0 = 0; r0 < O; r0 += T) starts.push(r0);

  if (kernel) {
    const p: Conv2dParams = convParams(node);
    const [N, I] = x.shape as [number, number];
    const [, , OH, OW] = output.shape as [number, number, number, number];
    const P = OH * OW;
    const kk = cols / I;
    const k = kernel;
    if (k[0] * k[1] !== kk) throw new LayerError(node, 'rebuild: kernel shape does not match the rebuilder');
    needScratch(node, scratch, rebuildScratch(T, cols, { N, P }));
    const [tile, im2col, stage] = carve(node, scratch, T * cols, cols * P, N > 1 ? N * T * P : 0) as [Float32Array, Float32Array, Float32Array];
    // Per tile: its weight view [n, I, kh, kw] and where its output goes.
    const tiles = starts.map((r0) => {
      const n = Math.min(T, O - r0);
      return {
        r0, n, wShape: [n, I, k[0], k[1]],
        w: tile.subarray(0, n * cols),
        out: N === 1 ? y.subarray(r0 * P, (r0 + n) * P) : stage.subarray(0, N * n * P),
      };
    });
    const xd = x.data;
    const xs = x.shape;
    return () => {
      for (let t = 0; t < tiles.length; t++) {
        const e = tiles[t]!;
        rb.rowsInto(e.r0, e.r0 + e.n, tile, 0);
        kernels.conv2dInto(xd, xs, e.w, e.wShape, undefined, p, e.out, im2col);
        if (N > 1) {
          const src = e.out;
          for (let b = 0; b < N; b++) {
            const from = b * e.n * P;
            const to = (b * O + e.r0) * P;
            for (let i = 0; i < e.n * P; i++) y[to + i] = src[from + i]!;
          }
        }
      }
      if (bias) {
        for (let b = 0; b < N; b++) {
          for (let o = 0; o < O; o++) {
            const v = bias[o]!;
            const base = (b * O + o) * P;
            for (let i = 0; i < P; i++) y[base + i]! += v;
          }
        }
      }
    };
  }

  const B = x.data.length / cols;
  needScratch(node, scratch, rebuildScratch(T, cols, { B }));
  const [tile, stage] = carve(node, scratch, T * cols, B > 1 ? B * T : 0) as [Float32Array, Float32Array];
  const tiles = starts.map((r0) => {
    const n = Math.min(T, O - r0);
    return { r0, n, out: B === 1 ? y.subarray(r0, r0 + n) : stage.subarray(0, B * n) };
  });
  const xd = x.data;
  return () => {
    for (let t = 0; t < tiles.length; t++) {
      const e = tiles[t]!;
      rb.rowsInto(e.r0, e.r0 + e.n, tile, 0);
      kernels.gemmNT(xd, tile, B, e.n, cols, undefined, e.out);
      if (B > 1) {
        const src = e.out;
        for (let b = 0; b < B; b++) for (let i = 0; i < e.n; i++) y[b * O + e.r0 + i] = src[b * e.n + i]!;
      }
    }
    if (bias) for (let i = 0; i < y.length; i++) y[i]! += bias[i % O]!;
  };
}
