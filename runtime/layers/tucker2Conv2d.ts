import { conv2dGeometry } from '../kernels/reference.js';
import { checkNchw, convParams, convStep, size } from './convAttrs.js';
import { bindRebuild, rebuildScratchFloats, rebuilderFor } from './strategy.js';
import { carve, checkOutput, expectShape, firstInput, LayerError, type LayerKind } from './kind.js';

/**
 * Tucker-2 conv: 1x1 (I -> r1), core conv (r1 -> r2, carries stride/pad/dilation), 1x1 (r2 -> O).
 * Scratch: the r1-channel map, the r2-channel map, the core conv's im2col columns.
 */
export const tucker2Conv2d: LayerKind = {
  ops: ['tucker2_conv2d'],
  prepare(node, ctx) {
    const p = convParams(node);
    if (p.group !== 1) throw new LayerError(node, 'grouped conv cannot be Tucker-2 factorised');
    const uIn = ctx.weight('u_in');
    const core = ctx.weight('core');
    const uOut = ctx.weight('u_out');
    if (uIn.shape.length !== 2 || core.shape.length !== 4 || uOut.shape.length !== 2) {
      throw new LayerError(node, 'u_in, u_out must be 2-D and core 4-D');
    }
    const [r1, I] = uIn.shape as [number, number];
    const r2 = core.shape[0]!;
    expectShape(node, 'core', core, [r2, r1, -1, -1]);
    expectShape(node, 'u_out', uOut, [-1, r2]);
    const O = uOut.shape[0]!;
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
        const aShape = [x.shape[0]!, r1, x.shape[2]!, x.shape[3]!];
        const g = convStep(node, aShape, core.shape, p);
        const cShape = g.shape;
        checkOutput(node, output, [cShape[0]!, O, cShape[2]!, cShape[3]!]);
        const rebuild = bindRebuild(node, ctx, rebuilder, strategy, x, output, scratch);
        if (rebuild) return rebuild;
        const [a, c, cols] = carve(node, scratch, size(aShape), size(cShape), g.cols) as [Float32Array, Float32Array, Float32Array];
        const xd = x.data;
        const xs = x.shape;
        const y = output.data;
        const bias = b?.data;
        return () => {
          ctx.kernels.conv1x1Into(xd, xs, uIn.data, r1, undefined, a);
          ctx.kernels.conv2dInto(a, aShape, core.data, core.shape, undefined, p, c, cols);
          ctx.kernels.conv1x1Into(c, cShape, uOut.data, O, bias, y);
        };
      },
    };
  },
  scratchFloats(node, inputShapes, outputShape, weightShape, strategy) {
    if (strategy?.use === 'rebuild') return rebuildScratchFloats(node, inputShapes, outputShape, weightShape, strategy);
    const core = weightShape('core');
    const x = inputShapes[0];
    if (!core || !x || core.length !== 4 || x.length !== 4) return 0;
    const aShape = [x[0]!, core[1]!, x[2]!, x[3]!];
    const g = conv2dGeometry(aShape, core, convParams(node));
    return size(aShape) + size(g.shape) + g.cols;
  },
};
