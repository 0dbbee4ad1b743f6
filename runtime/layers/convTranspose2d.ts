// conv_transpose2d: ONNX ConvTranspose with explicit pads (the gradient of a convolution with
// respect to its input). Each input pixel scatters its kernel-weighted values into the output.
import { attrInts, attrNum, type GraphNode } from '../ir.js';
import { ATTR_INT_MAX, conv } from '../format/attrSpec.js';
import { checkOutput, expectShape, firstInput, LayerError, type LayerKind } from './kind.js';

export interface ConvTransposeParams {
  strides: number[]; pads: number[]; dilations: number[]; outputPadding: number[]; group: number;
}

export function convTransposeParams(node: GraphNode): ConvTransposeParams {
  const p = {
    strides: attrInts(node, 'strides', [1, 1]),
    pads: attrInts(node, 'pads', [0, 0, 0, 0]),
    dilations: attrInts(node, 'dilations', [1, 1]),
    outputPadding: attrInts(node, 'output_padding', [0, 0]),
    group: attrNum(node, 'group', 1),
  };
  if (p.strides.length !== 2 || p.pads.length !== 4 || p.dilations.length !== 2 || p.outputPadding.length !== 2) {
    throw new LayerError(node, 'conv_transpose2d attributes must be 2-D');
  }
  return p;
}

/** Output [N, O, OH, OW] for input [N, C, H, W] and weight [C, O/group, kh, kw]. */
export function convTransposeShape(node: GraphNode, x: readonly number[], w: readonly number[]): number[] {
  const p = convTransposeParams(node);
  if (x.length !== 4) throw new LayerError(node, `input [${x}] is not [N, C, H, W]`);
  if (w.length !== 4 || w[0] !== x[1]) throw new LayerError(node, `weight [${w}] does not take ${x[1]} channels`);
  const size = (a: number): number =>
    p.strides[a]! * (x[a + 2]! - 1) + p.outputPadding[a]! + (w[a + 2]! - 1) * p.dilations[a]! + 1 - p.pads[a]! - p.pads[a + 2]!;
  const out = [x[0]!, w[1]! * p.group, size(0), size(1)];
  if (out[2]! < 1 || out[3]! < 1) throw new LayerError(node, `output [${out}] is empty`);
  return out;
}

export const convTranspose2d: LayerKind = {
  ops: ['conv_transpose2d'],
  mcu: {},
  attrs: { ...conv, output_padding: { type: 'ints', len: 2, min: 0, max: ATTR_INT_MAX } },
  // As ONNX: output_padding below the stride or the dilation of its axis (else it only adds a
  // border of bias: a 65535 there made a 25 MB output from a 6 x 6 input).
  checkAttrs(a, fail) {
    const op = (a['output_padding'] as number[] | undefined) ?? [0, 0];
    const st = (a['strides'] as number[] | undefined) ?? [1, 1];
    const dl = (a['dilations'] as number[] | undefined) ?? [1, 1];
    op.forEach((p, i) => {
      if (p >= Math.max(st[i] ?? 1, dl[i] ?? 1)) fail('FLM_ATTR_RANGE', `output_padding[${i}] ${p} must be below the stride ${st[i] ?? 1} or the dilation ${dl[i] ?? 1}`);
    });
  },
  outputShape: (node, ins, w) => convTransposeShape(node, ins[0]!, w('weight')),
  prepare(node, ctx) {
    const p = convTransposeParams(node);
    const w = ctx.weight('weight');
    if (w.shape.length !== 4) throw new LayerError(node, `weight must be 4-D, got [${w.shape}]`);
    const [C, Og, KH, KW] = w.shape as [number, number, number, number];
    if (C % p.group !== 0) throw new LayerError(node, `${C} input channels do not split into ${p.group} groups`);
    const O = Og * p.group;
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [O]);
    return {
      bind(inputs, output) {
        const x = firstInput(node, inputs);
        const shape = convTransposeShape(node, x.shape, w.shape);
        checkOutput(node, output, shape);
        const [N, , H, W] = x.shape as [number, number, number, number];
        const [, , OH, OW] = shape as [number, number, number, number];
        const [sh, sw] = p.strides as [number, number];
        const [dh, dw] = p.dilations as [number, number];
        const [pt, pl] = p.pads as [number, number];
        const Cg = C / p.group;
        const xd = x.data;
        const wd = w.data;
        const y = output.data;
        const bias = b?.data;
        return () => {
          for (let n = 0; n < N; n++) {
            for (let o = 0; o < O; o++) {
              const yo = (n * O + o) * OH * OW;
              y.fill(bias ? bias[o]! : 0, yo, yo + OH * OW);
            }
            for (let g = 0; g < p.group; g++) {
              for (let ci = 0; ci < Cg; ci++) {
                const c = g * Cg + ci;
                const xo = (n * C + c) * H * W;
                for (let og = 0; og < Og; og++) {
                  const o = g * Og + og;
                  const yo = (n * O + o) * OH * OW;
                  const wo = (c * Og + og) * KH * KW;
                  for (let iy = 0; iy < H; iy++) {
                    for (let ky = 0; ky < KH; ky++) {
                      const oy = iy * sh - pt + ky * dh;
                      if (oy < 0 || oy >= OH) continue;
                      for (let ix = 0; ix < W; ix++) {
                        const v = xd[xo + iy * W + ix]!;
                        for (let kx = 0; kx < KW; kx++) {
                          const ox = ix * sw - pl + kx * dw;
                          if (ox < 0 || ox >= OW) continue;
                          y[yo + oy * OW + ox]! += v * wd[wo + ky * KW + kx]!;
                        }
                      }
                    }
                  }
                }
              }
            }
          }
        };
      },
    };
  },
};
