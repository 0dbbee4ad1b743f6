// Plain conv2d as one ONNX Conv, and the Conv helpers the conv-shaped factor kinds chain
// (their emitters live with their method, converter/methods/).
import { attrInts, attrNum } from '../../runtime/ir.js';
import type { OnnxAttr } from './builder.js';
import { expect2d, fail, initializer, reshapedInitializer, unsupported, type EmitContext, type Emitter, type ExportWeight } from './context.js';

export interface ConvAttrs {
  strides: [number, number];
  pads: [number, number, number, number];
  dilations: [number, number];
  group: number;
}

export function convAttrs(ctx: EmitContext): ConvAttrs {
  const s = attrInts(ctx.node, 'strides', [1, 1]);
  const p = attrInts(ctx.node, 'pads', [0, 0, 0, 0]);
  const d = attrInts(ctx.node, 'dilations', [1, 1]);
  const group = attrNum(ctx.node, 'group', 1);
  if (s.length !== 2 || p.length !== 4 || d.length !== 2) fail(ctx, 'conv attributes must be 2-D');
  return { strides: [s[0]!, s[1]!], pads: [p[0]!, p[1]!, p[2]!, p[3]!], dilations: [d[0]!, d[1]!], group };
}

/** One ONNX Conv; `pads` are [top, left, bottom, right] in both the IR and ONNX. */
export function conv(
  ctx: EmitContext, x: string, w: string, kernel: [number, number], a: ConvAttrs, name: string, bias?: ExportWeight, output?: string,
): string {
  const attrs: Record<string, OnnxAttr> = {
    kernel_shape: kernel, strides: a.strides, pads: a.pads, dilations: a.dilations, group: a.group,
  };
  const ins = [x, w];
  if (bias) ins.push(initializer(ctx, bias));
  return ctx.b.node('Conv', ins, name, attrs, output);
}

const POINTWISE: ConvAttrs = { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 };

/** A 2-D factor [O, I] as a 1x1 conv kernel [O, I, 1, 1]. */
export function pointwise(ctx: EmitContext, x: string, f: ExportWeight, name: string, bias?: ExportWeight, output?: string): string {
  const [o, i] = f.shape as [number, number];
  return conv(ctx, x, reshapedInitializer(ctx, f, [o, i, 1, 1], '1x1'), [1, 1], POINTWISE, name, bias, output);
}

export function ungrouped(ctx: EmitContext): ConvAttrs {
  const a = convAttrs(ctx);
  if (a.group !== 1) unsupported(ctx, 'a grouped conv cannot be factorised');
  return a;
}

export const conv2d: Emitter = (ctx) => {
  const w = ctx.weight('weight');
  if (w.shape.length !== 4) fail(ctx, `weight must be 4-D, got [${w.shape}]`);
  const k: [number, number] = [w.shape[2]!, w.shape[3]!];
  conv(ctx, ctx.inputs[0]!, initializer(ctx, w), k, convAttrs(ctx), ctx.node.name, ctx.optionalWeight('bias'), ctx.output);
  return 4;
};
