// svd_conv2d: v [r, I, kh, kw], u [O, r]. Everything the runtime knows of the kind.
import { conv as convAttrs } from '../format/attrSpec.js';
import { conv1x1Step, convStep as convCost, shapeOf } from '../cost/steps.js';
import { bindRebuild, rebuildScratchFloats, rebuilderFor } from '../exec/strategy.js';
import type { Conv2dParams } from '../kernels/reference.js';
import { conv2dGeometry } from '../kernels/reference.js';
import { checkNchw, convGeometry, convParams, convStep, size } from './convAttrs.js';
import { carve, checkOutput, expectShape, firstInput, LayerError, type FactorPart, type LayerKind } from './kind.js';
import { convShape } from './shapeRules.js';
import { svdRebuilder } from './svdDense.js';

const factor: FactorPart = {
  ranks: (_node, w) => [w('v')![0]!],
  kernel(w) {
    const v = w('v');
    return v ? [v[2]!, v[3]!] : undefined;
  },
  contract(node, shapes, B, sample) {
    const [r, I, kh, kw] = shapeOf(node, shapes, 'v', 4) as [number, number, number, number];
    const O = shapeOf(node, shapes, 'u', 2)[0]!;
    const [, H, W] = sample as [number, number, number];
    const { OH, OW } = convGeometry(node, H, W, kh, kw);
    const p = convParams(node);
    return { steps: [convCost('conv v', B, I, H, W, r, 1, kh, kw, OH, OW, { strides: p.strides, dilations: p.dilations }), conv1x1Step('1x1 u', B, r, OH * OW, O)] };
  },
  // W = u v, the SVD of the [O, I*kh*kw] unfolding: as svd_dense.
  rebuild: svdRebuilder,
};

/** SVD of the [O, I*kh*kw] unfolding: a conv to r channels, then a 1x1 conv to O. Scratch: the r-channel map, then im2col columns. */
export const svdConv2d: LayerKind = {
  ops: ['svd_conv2d'],
  attrs: convAttrs,
  outputShape(node, ins, w) {
    const v = w('v');
    return convShape(node, ins[0]!, w('u')[0]!, v[2]!, v[3]!);
  },
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
    ctx.kernels.prepareConv?.(v.data, v.shape, p);
    const rebuilder = rebuilderFor(node, ctx, factor);
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
        const rebuild = bindRebuild(node, ctx, rebuilder, [v.shape[2]!, v.shape[3]!], strategy, x, output, scratch);
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
    if (strategy?.use === 'rebuild') return rebuildScratchFloats(node, factor, inputShapes, outputShape, weightShape, strategy);
    const v = weightShape('v');
    const x = inputShapes[0];
    if (!v || !x || v.length !== 4 || x.length !== 4) return 0;
    const g = conv2dGeometry(x, v, convParams(node) as Conv2dParams);
    return size(g.shape) + g.cols;
  },
  mcu: {
    scratchFloats: (_node, _ins, out, w) => w('v')[0]! * out[2]! * out[3]!,
    produces: 'conv-pool',
  },
  factor,
};
