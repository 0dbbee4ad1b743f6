// svd_dense: W = u v (u [out, r], v [r, in]). Everything the runtime knows of the kind.
import { gemm, shapeOf } from '../cost/steps.js';
import { bindFactorDense, rebuildScratchFloats, rebuilderFor } from '../exec/strategy.js';
import { checkRange, need, RebuildError, sumFlops, type Rebuilder, type RebuildWork, type WeightLookup } from '../exec/rebuilder.js';
import { numel, type GraphNode } from '../ir.js';
import type { KernelBackend } from '../kernels/backend.js';
import { carve, expectShape, LayerError, type FactorPart, type LayerKind } from './kind.js';
import { denseShape } from './shapeRules.js';

/** W = u v: rows [r0, r1) = u[r0:r1] v, one GEMM. Serves svd_dense (v [r, in]) and svd_conv2d (v [r, I, kh, kw]). */
export function svdRebuilder(node: GraphNode, weight: WeightLookup, k: KernelBackend): Rebuilder {
  const u = need(node, weight, 'u', 2);
  const v = weight('v');
  if (!v || v.shape.length < 2) throw new RebuildError(node, 'missing or malformed v');
  const [rows, r] = u.shape as [number, number];
  if (v.shape[0] !== r) throw new RebuildError(node, `v has ${v.shape[0]} rows, u has rank ${r}`);
  const cols = numel(v.shape.slice(1));
  const work = (r0: number, r1: number): RebuildWork[] => [{ what: 'u v', flops: 2 * (r1 - r0) * r * cols, calls: r1 > r0 ? 1 : 0, m: r1 - r0 }];
  return {
    op: node.op, rows, cols, scratchFloats: 0, work,
    flops: (a, b) => sumFlops(work(a, b)),
    rowsInto(r0, r1, out, off = 0) {
      checkRange(this, r0, r1, out, off, cols);
      if (r1 > r0) k.gemmNN(u.data, v.data, r1 - r0, cols, r, out, r0 * r, 0, off);
    },
  };
}

const factor: FactorPart = {
  ranks: (_node, w) => [w('u')![1]!],
  contract(node, shapes, B) {
    const [out, r] = shapeOf(node, shapes, 'u', 2) as [number, number];
    const inF = shapeOf(node, shapes, 'v', 2)[1]!;
    return {
      steps: [
        gemm('x v^T', 1, B, r, inF, B * inF + B * r),
        gemm('t u^T', 1, B, out, r, B * r + B * out),
      ],
    };
  },
  rebuild: svdRebuilder,
};

/** Truncated-SVD dense layer: y = (x v^T) u^T + b, through the rank-r bottleneck (scratch: rows x r). */
export const svdDense: LayerKind = {
  ops: ['svd_dense'],
  attrs: {},
  outputShape: (node, ins, w) => denseShape(node, ins[0]!, w('v')[1]!, w('u')[0]!),
  prepare(node, ctx) {
    const u = ctx.weight('u');
    const v = ctx.weight('v');
    if (u.shape.length !== 2 || v.shape.length !== 2) throw new LayerError(node, 'u and v must be 2-D');
    const [out, r] = u.shape as [number, number];
    expectShape(node, 'v', v, [r, -1]);
    const inF = v.shape[1]!;
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [out]);
    const rebuilder = rebuilderFor(node, ctx, factor);
    return {
      prepareStrategy(strategy) {
        if (strategy.use === 'rebuild') rebuilder();
      },
      bind(inputs, output, scratch, strategy) {
        const { x, rebuild } = bindFactorDense(node, ctx, rebuilder, strategy, inputs, output, scratch, inF, out);
        if (rebuild) return rebuild;
        const rows = x.data.length / inF;
        const [t] = carve(node, scratch, rows * r) as [Float32Array];
        const xd = x.data;
        const y = output.data;
        const bias = b?.data;
        return () => {
          ctx.kernels.gemmNT(xd, v.data, rows, r, inF, undefined, t);
          ctx.kernels.gemmNT(t, u.data, rows, out, r, bias, y);
        };
      },
    };
  },
  scratchFloats(node, inputShapes, outputShape, weightShape, strategy) {
    if (strategy?.use === 'rebuild') return rebuildScratchFloats(node, factor, inputShapes, outputShape, weightShape, strategy);
    const u = weightShape('u');
    const x = inputShapes[0];
    if (!u || !x) return 0;
    const inF = x[x.length - 1]!;
    return (x.reduce((a, b) => a * b, 1) / inF) * u[1]!;
  },
  mcu: {
    scratchFloats(_node, inputShapes, _out, w) {
      const [, r] = w('u') as [number, number];
      const inF = w('v')[1]!;
      return (numel(inputShapes[0] ?? []) / inF) * r;
    },
    produces: 'dense',
  },
  factor,
};
