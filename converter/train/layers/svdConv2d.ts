import { conv2d as conv2dOp, convParams, type Conv2dParams } from '../ops/conv.js';
import { reshape } from '../ops/shape.js';
import type { Var } from '../tensor.js';
import { convAttrs } from './conv2d.js';
import { ParamMaker, type InitOptions, type TrainLayer } from './layer.js';

/** SVD convolution, runtime kind `svd_conv2d`: v [r, I, kh, kw] with the conv attributes, then 1x1 u [O, r]. */
export function svdConv2d(
  I: number, O: number, kernel: [number, number], rank: number, conv: Partial<Conv2dParams> = {}, opts: InitOptions = {},
): TrainLayer {
  const p = convParams(conv);
  if (p.group !== 1) throw new Error('train: svdConv2d needs group 1');
  const pm = new ParamMaker(opts);
  // Var(W) = r std^4 with one std for both factors: std = (target / r)^(1/4).
  const std = (pm.target(I * kernel[0] * kernel[1]) / rank) ** 0.25;
  const v = pm.normalParam('v', [rank, I, kernel[0], kernel[1]], std);
  const u = pm.normalParam('u', [O, rank], std);
  const b = pm.bias(O);
  return {
    op: 'svd_conv2d',
    attrs: convAttrs(p),
    params: pm.params,
    forward: (x: Var) => conv2dOp(conv2dOp(x, v, undefined, p), reshape(u, [O, rank, 1, 1]), b),
  };
}
