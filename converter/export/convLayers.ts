// Conv-shaped kinds as chains of small ONNX Convs, the same chains the runtime computes.
import { attrInts, attrNum } from '../../runtime/ir.js';
import type { OnnxAttr } from './builder.js';
import { expect2d, fail, initializer, reshapedInitializer, unsupported, type EmitContext, type Emitter, type ExportWeight } from './context.js';

interface ConvAttrs {
  strides: [number, number];
  pads: [number, number, number, number];
  dilations: [number, number];
  group: number;
}

function convAttrs(ctx: EmitContext): ConvAttrs {
  const s = attrInts(ctx.node, 'strides', [1, 1]);
  const p = attrInts(ctx.node, 'pads', [0, 0, 0, 0]);
  const d = attrInts(ctx.node, 'dilations', [1, 1]);
  const group = attrNum(ctx.node, 'group', 1);
  if (s.length !== 2 || p.length !== 4 || d.length !== 2) fail(ctx, 'conv attributes must be 2-D');
  return { strides: [s[0]!, s[1]!], pads: [p[0]!, p[1]!, p[2]!, p[3]!], dilations: [d[0]!, d[1]!], group };
}

/** One ONNX Conv; `pads` are [top, left, bottom, right] in both the IR and ONNX. */
function conv(
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
function pointwise(ctx: EmitContext, x: string, f: ExportWeight, name: string, bias?: ExportWeight, output?: string): string {
  const [o, i] = f.shape as [number, number];
  return conv(ctx, x, reshapedInitializer(ctx, f, [o, i, 1, 1], '1x1'), [1, 1], POINTWISE, name, bias, output);
}

function ungrouped(ctx: EmitContext): ConvAttrs {
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

/** Conv(v) with the conv attributes to r channels, then a 1x1 Conv(u, bias). */
export const svdConv2d: Emitter = (ctx) => {
  const a = ungrouped(ctx);
  const v = ctx.weight('v');
  const u = ctx.weight('u');
  if (v.shape.length !== 4) fail(ctx, `v must be 4-D, got [${v.shape}]`);
  expect2d(ctx, 'u', u, -1, v.shape[0]!);
  const t = conv(ctx, ctx.inputs[0]!, initializer(ctx, v), [v.shape[2]!, v.shape[3]!], a, `${ctx.node.name}/v`);
  pointwise(ctx, t, u, `${ctx.node.name}/u`, ctx.optionalWeight('bias'), ctx.output);
  return 4;
};

/** 1x1 (I -> r1), core Conv (carries stride/pad/dilation), 1x1 (r2 -> O, bias). */
export const tucker2Conv2d: Emitter = (ctx) => {
  const a = ungrouped(ctx);
  const uIn = ctx.weight('u_in');
  const core = ctx.weight('core');
  const uOut = ctx.weight('u_out');
  expect2d(ctx, 'u_in', uIn, -1, -1);
  if (core.shape.length !== 4 || core.shape[1] !== uIn.shape[0]) fail(ctx, `core has shape [${core.shape}], expected [?, ${uIn.shape[0]}, ?, ?]`);
  expect2d(ctx, 'u_out', uOut, -1, core.shape[0]!);
  const name = ctx.node.name;
  const t = pointwise(ctx, ctx.inputs[0]!, uIn, `${name}/u_in`);
  const c = conv(ctx, t, initializer(ctx, core), [core.shape[2]!, core.shape[3]!], a, `${name}/core`);
  pointwise(ctx, c, uOut, `${name}/u_out`, ctx.optionalWeight('bias'), ctx.output);
  return 4;
};

/**
 * CPAC-Conv exactly as runtime/layers/cpConv2d.ts: 1x1 (I -> R), depthwise kh x 1 with the
 * vertical stride/pad/dilation, depthwise 1 x kw with the horizontal ones, 1x1 (R -> O, bias).
 */
export const cpConv2d: Emitter = (ctx) => {
  const a = ungrouped(ctx);
  const aIn = ctx.weight('a_in');
  const kH = ctx.weight('k_h');
  const kW = ctx.weight('k_w');
  const aOut = ctx.weight('a_out');
  expect2d(ctx, 'a_in', aIn, -1, -1);
  const R = aIn.shape[0]!;
  expect2d(ctx, 'k_h', kH, R, -1);
  expect2d(ctx, 'k_w', kW, R, -1);
  expect2d(ctx, 'a_out', aOut, -1, R);
  const kh = kH.shape[1]!;
  const kw = kW.shape[1]!;
  const name = ctx.node.name;
  const vertical: ConvAttrs = {
    strides: [a.strides[0], 1], pads: [a.pads[0], 0, a.pads[2], 0], dilations: [a.dilations[0], 1], group: R,
  };
  const horizontal: ConvAttrs = {
    strides: [1, a.strides[1]], pads: [0, a.pads[1], 0, a.pads[3]], dilations: [1, a.dilations[1]], group: R,
  };
  const t = pointwise(ctx, ctx.inputs[0]!, aIn, `${name}/a_in`);
  const v = conv(ctx, t, reshapedInitializer(ctx, kH, [R, 1, kh, 1], 'kh'), [kh, 1], vertical, `${name}/k_h`);
  const h = conv(ctx, v, reshapedInitializer(ctx, kW, [R, 1, 1, kw], 'kw'), [1, kw], horizontal, `${name}/k_w`);
  pointwise(ctx, h, aOut, `${name}/a_out`, ctx.optionalWeight('bias'), ctx.output);
  return 4;
};
