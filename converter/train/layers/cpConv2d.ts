import { conv2d, convParams, type Conv2dParams } from '../ops/conv.js';
import { reshape } from '../ops/shape.js';
import type { Var } from '../tensor.js';
import { convAttrs } from './conv2d.js';
import { ParamMaker, type InitOptions, type TrainLayer } from './layer.js';

/**
 * CP convolution in the CPAC-Conv layout, runtime kind `cp_conv2d`: a_in [R, I], k_h [R, kh],
 * k_w [R, kw], a_out [O, R], applied as the chain 1x1 (I -> R), depthwise kh x 1 (vertical
 * stride/pad/dilation), depthwise 1 x kw (horizontal ones), 1x1 (R -> O) + bias.
 */
export function cpConv2d(
  I: number, O: number, kernel: [number, number], rank: number, conv: Partial<Conv2dParams> = {}, opts: InitOptions = {},
): TrainLayer {
  const p = convParams(conv);
  if (p.group !== 1) throw new Error('train: cpConv2d needs group 1');
  const R = rank;
  const [kh, kw] = kernel;
  const pm = new ParamMaker(opts);
  // Var(W) = R std^8 with one std for all four factors: std = (target / R)^(1/8).
  const std = (pm.target(I * kh * kw) / R) ** (1 / 8);
  const aIn = pm.normalParam('a_in', [R, I], std);
  const kH = pm.normalParam('k_h', [R, kh], std);
  const kW = pm.normalParam('k_w', [R, kw], std);
  const aOut = pm.normalParam('a_out', [O, R], std);
  const b = pm.bias(O);
  const vertical: Conv2dParams = { strides: [p.strides[0], 1], pads: [p.pads[0], 0, p.pads[2], 0], dilations: [p.dilations[0], 1], group: R };
  const horizontal: Conv2dParams = { strides: [1, p.strides[1]], pads: [0, p.pads[1], 0, p.pads[3]], dilations: [1, p.dilations[1]], group: R };
  return {
    op: 'cp_conv2d',
    attrs: convAttrs(p),
    params: pm.params,
    forward: (x: Var) => {
      const a = conv2d(x, reshape(aIn, [R, I, 1, 1]), undefined);
      const v = conv2d(a, reshape(kH, [R, 1, kh, 1]), undefined, vertical);
      const h = conv2d(v, reshape(kW, [R, 1, 1, kw]), undefined, horizontal);
      return conv2d(h, reshape(aOut, [O, R, 1, 1]), b);
    },
  };
}
