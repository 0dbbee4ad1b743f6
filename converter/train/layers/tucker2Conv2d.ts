import { conv2d, convParams, type Conv2dParams } from '../ops/conv.js';
import { reshape } from '../ops/shape.js';
import type { Var } from '../tensor.js';
import { convAttrs } from './conv2d.js';
import { ParamMaker, type InitOptions, type TrainLayer } from './layer.js';

/**
 * Tucker-2 convolution, runtime kind `tucker2_conv2d`: u_in [r1, I], core [r2, r1, kh, kw],
 * u_out [O, r2]; 1x1 (I -> r1), core conv with the conv attributes, 1x1 (r2 -> O) + bias.
 */
export function tucker2Conv2d(
  I: number, O: number, kernel: [number, number], ranks: [number, number], conv: Partial<Conv2dParams> = {}, opts: InitOptions = {},
): TrainLayer {
  const p = convParams(conv);
  if (p.group !== 1) throw new Error('train: tucker2Conv2d needs group 1');
  const [r1, r2] = ranks;
  const [kh, kw] = kernel;
  const pm = new ParamMaker(opts);
  // Var(W) = r1 r2 std^6 with one std for all three factors: std = (target / (r1 r2))^(1/6).
  const std = (pm.target(I * kh * kw) / (r1 * r2)) ** (1 / 6);
  const uIn = pm.normalParam('u_in', [r1, I], std);
  const core = pm.normalParam('core', [r2, r1, kh, kw], std);
  const uOut = pm.normalParam('u_out', [O, r2], std);
  const b = pm.bias(O);
  return {
    op: 'tucker2_conv2d',
    attrs: convAttrs(p),
    params: pm.params,
    forward: (x: Var) => {
      const a = conv2d(x, reshape(uIn, [r1, I, 1, 1]), undefined);
      const c = conv2d(a, core, undefined, p);
      return conv2d(c, reshape(uOut, [O, r2, 1, 1]), b);
    },
  };
}
