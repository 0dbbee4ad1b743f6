import type { AttrValue } from '../../../runtime/ir.js';
import { conv2d as conv2dOp, convParams, type Conv2dParams } from '../ops/conv.js';
import type { Var } from '../tensor.js';
import { ParamMaker, type InitOptions, type TrainLayer } from './layer.js';

/** The node attributes of conv-shaped runtime kinds. */
export function convAttrs(p: Conv2dParams): Record<string, AttrValue> {
  return { strides: [...p.strides], pads: [...p.pads], dilations: [...p.dilations], group: p.group };
}

/** Convolution, runtime kind `conv2d`: weight [O, I/group, kh, kw]. */
export function conv2d(
  I: number, O: number, kernel: [number, number], conv: Partial<Conv2dParams> = {}, opts: InitOptions = {},
): TrainLayer {
  const p = convParams(conv);
  const pm = new ParamMaker(opts);
  const fanIn = (I / p.group) * kernel[0] * kernel[1];
  // Var(W) = std^2 = gain / (I/group kh kw).
  const w = pm.normalParam('weight', [O, I / p.group, kernel[0], kernel[1]], Math.sqrt(pm.target(fanIn)));
  const b = pm.bias(O);
  return { op: 'conv2d', attrs: convAttrs(p), params: pm.params, forward: (x: Var) => conv2dOp(x, w, b, p) };
}
