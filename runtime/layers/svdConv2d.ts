import { checkNchw, convParams } from './convAttrs.js';
import { expectShape, firstInput, LayerError, type LayerKind } from './kind.js';

/** SVD of the [O, I*kh*kw] unfolding: a conv to r channels, then a 1x1 conv to O. */
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
    return (inputs) => {
      const x = firstInput(node, inputs);
      checkNchw(node, x.shape, I);
      const t = ctx.kernels.conv2d(x.data, x.shape, v.data, v.shape, undefined, p);
      return ctx.kernels.conv1x1(t.data, t.shape, u.data, O, b?.data);
    };
  },
};
