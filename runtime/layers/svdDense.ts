import { bindFactorDense, rebuildScratchFloats, rebuilderFor } from './strategy.js';
import { carve, expectShape, LayerError, type LayerKind } from './kind.js';

/** Truncated-SVD dense layer: y = (x v^T) u^T + b, through the rank-r bottleneck (scratch: rows x r). */
export const svdDense: LayerKind = {
  ops: ['svd_dense'],
  prepare(node, ctx) {
    const u = ctx.weight('u');
    const v = ctx.weight('v');
    if (u.shape.length !== 2 || v.shape.length !== 2) throw new LayerError(node, 'u and v must be 2-D');
    const [out, r] = u.shape as [number, number];
    expectShape(node, 'v', v, [r, -1]);
    const inF = v.shape[1]!;
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [out]);
    const rebuilder = rebuilderFor(node, ctx);
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
    if (strategy?.use === 'rebuild') return rebuildScratchFloats(node, inputShapes, outputShape, weightShape, strategy);
    const u = weightShape('u');
    const x = inputShapes[0];
    if (!u || !x) return 0;
    const inF = x[x.length - 1]!;
    return (x.reduce((a, b) => a * b, 1) / inF) * u[1]!;
  },
};
