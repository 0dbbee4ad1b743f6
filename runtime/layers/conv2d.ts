import { conv } from '../format/attrSpec.js';
import { convBind, convParams } from './convAttrs.js';
import { expectShape, LayerError, type LayerKind } from './kind.js';
import { convShape } from './shapeRules.js';

/** Convolution kept dense (any group count, including depthwise). Scratch: im2col columns of one group. */
export const conv2d: LayerKind = {
  ops: ['conv2d'],
  attrs: conv,
  outputShape(node, ins, w) {
    const s = w('weight');
    return convShape(node, ins[0]!, s[0]!, s[2]!, s[3]!);
  },
  mcu: { produces: 'conv-pool' },
  prepare(node, ctx) {
    const p = convParams(node);
    const w = ctx.weight('weight');
    if (w.shape.length !== 4) throw new LayerError(node, `weight must be 4-D, got [${w.shape}]`);
    const [O, Cg] = w.shape as [number, number];
    if (O % p.group !== 0) throw new LayerError(node, `${O} filters do not split into ${p.group} groups`);
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [O]);
    ctx.kernels.prepareConv?.(w.data, w.shape, p);
    return { bind: convBind(node, ctx.kernels, w.data, w.shape, Cg * p.group, b?.data, p) };
  },
  scratchFloats(_node, _inputShapes, outputShape, weightShape) {
    const w = weightShape('weight');
    if (!w || w.length !== 4) return 0;
    const Cg = w[1]!;
    return Cg * w[2]! * w[3]! * outputShape[2]! * outputShape[3]!;
  },
};
