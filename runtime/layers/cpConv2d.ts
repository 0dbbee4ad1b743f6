import type { Conv2dParams } from '../kernels/reference.js';
import { checkNchw, convParams } from './convAttrs.js';
import { expectShape, firstInput, LayerError, type LayerKind } from './kind.js';

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
    const vertical: Conv2dParams = {
      strides: [p.strides[0], 1], pads: [p.pads[0], 0, p.pads[2], 0], dilations: [p.dilations[0], 1], group: R,
    };
    const horizontal: Conv2dParams = {
      strides: [1, p.strides[1]], pads: [0, p.pads[1], 0, p.pads[3]], dilations: [1, p.dilations[1]], group: R,
    };
    return (inputs) => {
      const x = firstInput(node, inputs);
      checkNchw(node, x.shape, I);
      const a = ctx.kernels.conv1x1(x.data, x.shape, aIn.data, R, undefined);
      const v = ctx.kernels.conv2d(a.data, a.shape, kH.data, [R, 1, kh, 1], undefined, vertical);
      const h = ctx.kernels.conv2d(v.data, v.shape, kW.data, [R, 1, 1, kw], undefined, horizontal);
      return ctx.kernels.conv1x1(h.data, h.shape, aOut.data, O, b?.data);
    };
  },
};
