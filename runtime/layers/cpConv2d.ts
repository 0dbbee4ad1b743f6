import type { Conv2dParams } from '../kernels/reference.js';
import { conv2dGeometry } from '../kernels/reference.js';
import { checkNchw, convParams, convStep, size } from './convAttrs.js';
import { bindRebuild, rebuildScratchFloats, rebuilderFor } from './strategy.js';
import { carve, checkOutput, expectShape, firstInput, LayerError, type LayerKind } from './kind.js';

function steps(p: Conv2dParams, R: number): { vertical: Conv2dParams; horizontal: Conv2dParams } {
  return {
    vertical: { strides: [p.strides[0], 1], pads: [p.pads[0], 0, p.pads[2], 0], dilations: [p.dilations[0], 1], group: R },
    horizontal: { strides: [1, p.strides[1]], pads: [0, p.pads[1], 0, p.pads[3]], dilations: [1, p.dilations[1]], group: R },
  };
}

/** Scratch floats: the three R-channel maps, then the larger depthwise step's im2col columns. */
function cpScratch(xShape: readonly number[], R: number, kh: number, kw: number, p: Conv2dParams) {
  const { vertical, horizontal } = steps(p, R);
  const aShape = [xShape[0]!, R, xShape[2]!, xShape[3]!];
  const gv = conv2dGeometry(aShape, [R, 1, kh, 1], vertical);
  const gh = conv2dGeometry(gv.shape, [R, 1, 1, kw], horizontal);
  return { aShape, vShape: gv.shape, hShape: gh.shape, cols: Math.max(gv.cols, gh.cols), vertical, horizontal };
}

/**
 * CPAC-Conv: the CP kernel applied as a chain of small convolutions,
 * 1x1 (I -> R), depthwise kh x 1, depthwise 1 x kw, 1x1 (R -> O).
 * The vertical step carries the vertical stride/pad/dilation, the horizontal step the horizontal ones.
 */
export const cpConv2d: LayerKind = {
  ops: ['cp_conv2d'],
  prepare(node, ctx) {
    const p = convParams(node);
    if (p.group !== 1) throw new LayerError(node, 'grouped conv cannot be CP factorised');
    const aIn = ctx.weight('a_in');
    const kH = ctx.weight('k_h');
    const kW = ctx.weight('k_w');
    const aOut = ctx.weight('a_out');
    if ([aIn, kH, kW, aOut].some((w) => w.shape.length !== 2)) throw new LayerError(node, 'CP factors must be 2-D');
    const [R, I] = aIn.shape as [number, number];
    expectShape(node, 'k_h', kH, [R, -1]);
    expectShape(node, 'k_w', kW, [R, -1]);
    expectShape(node, 'a_out', aOut, [-1, R]);
    const kh = kH.shape[1]!;
    const kw = kW.shape[1]!;
    const O = aOut.shape[0]!;
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [O]);
    const khShape = [R, 1, kh, 1];
    const kwShape = [R, 1, 1, kw];
    const rebuilder = rebuilderFor(node, ctx);
    return {
      prepareStrategy(strategy) {
        if (strategy.use === 'rebuild') rebuilder();
      },
      bind(inputs, output, scratch, strategy) {
        const x = firstInput(node, inputs);
        checkNchw(node, x.shape, I);
        const s = cpScratch(x.shape, R, kh, kw, p);
        convStep(node, s.vShape, kwShape, s.horizontal);
        if (!(s.vShape[2]! >= 1)) throw new LayerError(node, `output would be empty for input [${x.shape}]`);
        checkOutput(node, output, [s.hShape[0]!, O, s.hShape[2]!, s.hShape[3]!]);
        const rebuild = bindRebuild(node, ctx, rebuilder, strategy, x, output, scratch);
        if (rebuild) return rebuild;
        const [a, v, h, cols] = carve(node, scratch, size(s.aShape), size(s.vShape), size(s.hShape), s.cols) as Float32Array[] as [Float32Array, Float32Array, Float32Array, Float32Array];
        const { aShape, vShape, hShape, vertical, horizontal } = s;
        const xd = x.data;
        const xs = x.shape;
        const y = output.data;
        const bias = b?.data;
        return () => {
          ctx.kernels.conv1x1Into(xd, xs, aIn.data, R, undefined, a);
          ctx.kernels.conv2dInto(a, aShape, kH.data, khShape, undefined, vertical, v, cols);
          ctx.kernels.conv2dInto(v, vShape, kW.data, kwShape, undefined, horizontal, h, cols);
          ctx.kernels.conv1x1Into(h, hShape, aOut.data, O, bias, y);
        };
      },
    };
  },
  scratchFloats(node, inputShapes, outputShape, weightShape, strategy) {
    if (strategy?.use === 'rebuild') return rebuildScratchFloats(node, inputShapes, outputShape, weightShape, strategy);
    const aIn = weightShape('a_in');
    const kH = weightShape('k_h');
    const kW = weightShape('k_w');
    const x = inputShapes[0];
    if (!aIn || !kH || !kW || !x || x.length !== 4) return 0;
    const s = cpScratch(x, aIn[0]!, kH[1]!, kW[1]!, convParams(node));
    return size(s.aShape) + size(s.vShape) + size(s.hShape) + s.cols;
  },
};
