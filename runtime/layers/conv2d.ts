import { checkNchw, convParams } from './convAttrs.js';
import { expectShape, firstInput, LayerError, type LayerKind } from './kind.js';

/** Convolution kept dense (any group count, including depthwise). */
export const conv2d: LayerKind = {
  ops: ['conv2d'],
  prepare(node, ctx) {
    const p = convParams(node);
    const w = ctx.weight('weight');
    if (w.shape.length !== 4) throw new LayerError(node, `weight must be 4-D, got [${w.shape}]`);
    const [O, Cg] = w.shape as [number, number];
    if (O % p.group !== 0) throw new LayerError(node, `${O} filters do not split into ${p.group} groups`);
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [O]);
    return (inputs) => {
      const x = firstInput(node, inputs);
      checkNchw(node, x.shape, Cg * p.group);
      return ctx.kernels.conv2d(x.data, x.shape, w.data, w.shape, b?.data, p);
    };
  },
};
