import type { Conv2dParams } from '../kernels/reference.js';
import { conv2dGeometry } from '../kernels/reference.js';
import { checkNchw, convParams, convStep, size } from './convAttrs.js';
import { bindRebuild, rebuildScratchFloats, rebuilderFor } from './strategy.js';
import { carve, checkOutput, expectShape, firstInput, LayerError, type LayerKind } from './kind.js';

/** SVD of the [O, I*kh*kw] unfolding: a conv to r channels, then a 1x1 conv to O. Scratch: the r-channel map, then im2col columns. */
export const svdConv2d: LayerKind = {
  ops: ['svd_conv2d'],
  prepare(node, ctx) {
    const p = convParams(node);
    if (p.group !== 1) throw new LayerError(node, 'grouped conv cannot be factorised by SVD');
    const v = ctx.weight('v');
    const u = ctx.weight('u');
    if (v.shape.length !== 4 || u.shape.length !== 2) throw new LayerError(node, 'v must be 4-D and u 2-D');
    const [r, I] = v.shape as [number, number];
    expectShape(node, 'u', u, [-1, r]);
    const O = u.shape[0]!;
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [O]);
    const rebuilder = rebuilderFor(node, ctx);
    return {
      prepareStrategy(strategy) {
        if (strategy.use === 'rebuild') rebuilder();
      },
      bind(inputs, output, scratch, strategy) {
        const x = firstInput(node, inputs);
        checkNchw(node, x.shape, I);
        const g = convStep(node, x.shape, v.shape, p);
        const tShape = g.shape;
        checkOutput(node, output, [tShape[0]!, O, tShape[2]!, tShape[3]!]);
        const rebuild = bindRebuild(node, ctx, rebuilder, strategy, x, output, scratch);
        if (rebuild) return rebuild;
        const [t, cols] = carve(node, scratch, size(tShape), g.cols) as [Float32Array, Float32Array];
        const xd = x.data;
        const xs = x.shape;
        const y = output.data;
        const bias = b?.data;
        return () => {
          ctx.kernels.conv2dInto(xd, xs, v.data, v.shape, undefined, p, t, cols);
          ctx.kernels.conv1x1Into(t, tShape, u.data, O, bias, y);
        };
      },
    };
  },
  scratchFloats(node, inputShapes, outputShape, weightShape, strategy) {
    if (strategy?.use === 'rebuild') return rebuildScratchFloats(node, inputShapes, outputShape, weightShape, strategy);
    const v = weightShape('v');
    const x = inputShapes[0];
    if (!v || !x || v.length !== 4 || x.length !== 4) return 0;
    const g = conv2dGeometry(x, v, convParams(node) as Conv2dParams);
    return size(g.shape) + g.cols;
  },
};
