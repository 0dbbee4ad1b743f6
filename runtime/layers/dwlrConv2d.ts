// dwlr_conv2d: a depthwise convolution whose kernel matrix is low-rank. The C per-channel kernels,
// as a matrix K [C, kh*kw], are K = u v: r shared basis kernels v [r, kh, kw] and a channel mixing
// u [C, r], so y_c = sum_j u[c, j] (x_c * v_j) + b_c (the roles are named as svd_conv2d's). Parameters
// r (C + kh kw) + C against C kh kw dense.
//
// The runtime rebuilds K once, when the layer is prepared (C kh kw r multiply-adds, less than one
// output pixel row of most layers), and then runs the plain depthwise convolution: computing the r
// basis responses per channel would cost r times the dense MACs. It is not a factor kind
// (runtime/ir.ts NETWORK_OPS): no row-tile rebuild. The firmware rebuilds K into its scratch the
// same way (core/ops/dwlr.c), at each inference.
import { conv as convAttrSpec } from '../format/attrSpec.js';
import type { GraphNode } from '../ir.js';
import { convBind, convParams } from './convAttrs.js';
import { expectShape, LayerError, type LayerKind } from './kind.js';
import { convShape } from './shapeRules.js';

/** K [C, kh*kw] = u [C, r] v [r, kh*kw], summed in f32 in the order j = 0..r-1 (as the firmware does). */
export function dwlrKernel(mix: Float32Array, basis: Float32Array, C: number, r: number, khw: number, out = new Float32Array(C * khw)): Float32Array {
  for (let c = 0; c < C; c++) {
    for (let t = 0; t < khw; t++) {
      let s = 0;
      for (let j = 0; j < r; j++) s = Math.fround(s + Math.fround(mix[c * r + j]! * basis[j * khw + t]!));
      out[c * khw + t] = s;
    }
  }
  return out;
}

/** C, r, kh, kw of a stored node (u [C, r], v [r, kh, kw], group C). */
export function dwlrDims(node: GraphNode, mix: readonly number[], basis: readonly number[], fail: (m: string) => never): { C: number; r: number; kh: number; kw: number } {
  if (mix.length !== 2 || basis.length !== 3 || mix[1] !== basis[0]) fail(`u [C, r] and v [r, kh, kw] expected, got [${mix}] and [${basis}]`);
  const C = mix[0]!;
  const group = node.attrs['group'] ?? 1;
  if (group !== C) fail(`group ${String(group)} must equal the ${C} channels of a depthwise layer`);
  return { C, r: mix[1]!, kh: basis[1]!, kw: basis[2]! };
}

export const dwlrConv2d: LayerKind = {
  ops: ['dwlr_conv2d'],
  attrs: convAttrSpec,
  outputShape(node, ins, w) {
    const m = w('u');
    const b = w('v');
    return convShape(node, ins[0]!, m[0]!, b[1]!, b[2]!);
  },
  prepare(node, ctx) {
    const p = convParams(node);
    const mix = ctx.weight('u');
    const basis = ctx.weight('v');
    const { C, r, kh, kw } = dwlrDims(node, mix.shape, basis.shape, (m) => {
      throw new LayerError(node, m);
    });
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [C]);
    const k = dwlrKernel(mix.data, basis.data, C, r, kh * kw);
    ctx.retain(k);
    const kShape = [C, 1, kh, kw];
    return { bind: convBind(node, ctx.kernels, k, kShape, C, b?.data, p) };
  },
  // core/ops/dwlr.c: the rebuilt kernels, C*kh*kw floats (not a streamed chain's conv).
  mcu: { scratchFloats: (_node, _ins, _out, w) => w('u')[0]! * w('v')[1]! * w('v')[2]! },
  scratchFloats(_node, _ins, outputShape, weightShape) {
    const bs = weightShape('v');
    if (!bs || bs.length !== 3) return 0;
    return bs[1]! * bs[2]! * outputShape[2]! * outputShape[3]!;
  },
};
