// dwlr: a depthwise convolution's kernels as a low-rank product. The C kernels of a depthwise conv,
// as the matrix K [C, kh*kw], are factorised by a truncated SVD K ≈ u v: r shared basis kernels
// v [r, kh, kw] and a channel mixing u [C, r], y_c = sum_j u[c, j] (x_c * v_j).
// The error of every rank is read off K's spectrum (Eckart–Young), as for svd. Depthwise layers
// only, and only this method takes them (methods/index.ts methodFits); the rank search offers it
// to every depthwise layer beside keeping it dense. Runtime kind dwlr_conv2d (runtime/layers/dwlrConv2d.ts).
import { singularValues } from '../decompose/svd.js';
import { conv, convAttrs as onnxConvAttrs } from '../export/convLayers.js';
import { fail, initializer, type Emitter } from '../export/context.js';
import { convGeom } from '../export/tfliteExporter.js';
import { ladder, rel, Spectrum, type Candidate, type LayerShape } from '../rank/candidates.js';
import { truncatedFromFull, type Target } from '../rank/target.js';
import { convAttrs } from '../train/layers/conv2d.js';
import { ParamMaker, type InitOptions, type TrainLayer } from '../train/layers/layer.js';
import { conv2d as conv2dOp, convParams, type Conv2dParams } from '../train/ops/conv.js';
import { matmul } from '../train/ops/matmul.js';
import { reshape } from '../train/ops/shape.js';
import type { Var } from '../train/tensor.js';
import { dwlrKernel } from '../../runtime/layers/dwlrConv2d.js';
import type { ConverterKind, FactorMethod, TfliteEmitter } from './method.js';

export const DWLR_CONV2D_KIND = 'dwlr_conv2d';

type DwlrSpec = { method: 'dwlr'; rank: number };

/** Whether a layer shape is a depthwise convolution (the only shape dwlr takes). */
export function isDepthwise(s: LayerShape): boolean {
  return s.kind === 'conv' && s.depthwise === true;
}

function dwDims(t: Target): { C: number; khw: number; kh: number; kw: number } {
  const s = t.shape;
  if (s.kind !== 'conv' || !s.depthwise) throw new Error(`dwlr: layer ${t.node.name} is not a depthwise convolution`);
  return { C: s.O, khw: s.kh * s.kw, kh: s.kh, kw: s.kw };
}

/** Parameters of rank r, bias included. */
export function dwlrParams(C: number, khw: number, r: number, bias: number): number {
  return r * (C + khw) + bias;
}

/** The ladder: every rank below min(C, kh kw) that stores fewer parameters than the dense kernels. */
function candidates(t: Target): Candidate[] {
  const { C, khw } = dwDims(t);
  const sp = new Spectrum(singularValues(t.weight, C, khw));
  return ladder(Math.min(C, khw), 64)
    .map((r) => ({ spec: { method: 'dwlr', rank: r } as DwlrSpec, params: dwlrParams(C, khw, r, t.bias), err: rel(sp.discarded(r), sp.total) }))
    .filter((c) => c.params < t.denseParams) as unknown as Candidate[];
}

/** Trainable dwlr_conv2d: K = u v, reshaped [C, 1, kh, kw], then the depthwise conv (group C). */
export function dwlrConv2d(C: number, kernel: [number, number], rank: number, conv: Partial<Conv2dParams> = {}, opts: InitOptions = {}): TrainLayer {
  const p = convParams({ ...conv, group: C });
  const pm = new ParamMaker(opts);
  const khw = kernel[0] * kernel[1];
  // Var(K) = r std^4 with one std for both factors: std = (target / r)^(1/4), fan-in kh kw.
  const std = (pm.target(khw) / rank) ** 0.25;
  const mix = pm.normalParam('u', [C, rank], std);
  const basis = pm.normalParam('v', [rank, kernel[0], kernel[1]], std);
  const b = pm.bias(C);
  return {
    op: DWLR_CONV2D_KIND,
    attrs: convAttrs(p),
    params: pm.params,
    forward: (x: Var) => conv2dOp(x, reshape(matmul(mix, reshape(basis, [rank, khw])), [C, 1, kernel[0], kernel[1]]), b, p),
  };
}

/** ONNX: MatMul(u, v as [r, kh*kw]) -> Reshape [C, 1, kh, kw] -> Conv(group C, bias): the factors stay factors. */
const dwlrOnnx: Emitter = (ctx) => {
  const mix = ctx.weight('u');
  const basis = ctx.weight('v');
  if (mix.shape.length !== 2 || basis.shape.length !== 3 || mix.shape[1] !== basis.shape[0]) {
    fail(ctx, `u [C, r] and v [r, kh, kw] expected, got [${mix.shape}] and [${basis.shape}]`);
  }
  const [C, r] = mix.shape as [number, number];
  const [, kh, kw] = basis.shape as [number, number, number];
  const a = onnxConvAttrs(ctx);
  if (a.group !== C) fail(ctx, `group ${a.group} must equal the ${C} channels`);
  const name = ctx.node.name;
  const bflat = ctx.b.float(`${basis.tensor.name}:2d`, [r, kh * kw], basis.data, `${basis.tensor.name}\u00002d`);
  const k = ctx.b.node('MatMul', [initializer(ctx, mix), bflat], `${name}/kernel`);
  const w = ctx.b.node('Reshape', [k, ctx.b.int64('shape', [C, 1, kh, kw])], `${name}/kernel4d`);
  conv(ctx, ctx.inputs[0]!, w, [kh, kw], a, name, ctx.optionalWeight('bias'), ctx.output);
  return 4;
};

/** TFLite: DEPTHWISE_CONV_2D with the rebuilt kernels (TFLite has no op that keeps the factors). */
const dwlrTflite: TfliteEmitter = (ex, node, input, out) => {
  const mix = ex.weight(node, 'u');
  const basis = ex.weight(node, 'v');
  const [C, r] = mix.shape as [number, number];
  const [, kh, kw] = basis.shape as [number, number, number];
  const k = dwlrKernel(mix.data, basis.data, C, r, kh * kw);
  return ex.conv(input(0), k, [C, 1, kh, kw], ex.optionalWeight(node, 'bias')?.data, convGeom(node), true, node.name, out.name, out.act, node);
};

const DWLR_CONV2D: ConverterKind = {
  op: DWLR_CONV2D_KIND,
  trainable: (c) => {
    const m = c.shape('u'), b = c.shape('v');
    c.need(m.length === 2 && b.length === 3 && m[1] === b[0], 'u [C, r] and v [r, kh, kw] expected');
    const p = c.conv();
    c.need(p.group === m[0], `group ${p.group} must equal the ${m[0]} channels`);
    return dwlrConv2d(m[0]!, [b[1]!, b[2]!], m[1]!, p, c.init);
  },
  onnx: dwlrOnnx,
  tflite: dwlrTflite,
};

export const dwlr: FactorMethod<'dwlr'> = {
  name: 'dwlr',
  layers: ['conv'],
  depthwise: true,
  applies: isDepthwise,
  candidates,
  fromRanks: (t, r) => {
    if (!isDepthwise(t.shape)) return 'dwlr takes depthwise convolutions only';
    if (r.length !== 1) return 'expected one rank';
    const { C, khw } = dwDims(t);
    if (r[0]! > Math.min(C, khw)) return `rank ${r[0]} above min(C, kh*kw) = ${Math.min(C, khw)}`;
    return { method: 'dwlr', rank: r[0]! };
  },
  ranks: (spec) => [spec.rank],
  withRanks: (_spec, r) => ({ method: 'dwlr', rank: r[0]! }),
  rankSlots: (t) => {
    const { C, khw } = dwDims(t);
    return [{ idx: [0], cap: Math.min(C, khw) }];
  },
  params: (t, spec) => {
    const { C, khw } = dwDims(t);
    return dwlrParams(C, khw, spec.rank, t.bias);
  },
  shapes: (t, spec) => {
    const { C, kh, kw } = dwDims(t);
    return { op: DWLR_CONV2D_KIND, roles: { u: [C, spec.rank], v: [spec.rank, kh, kw] } };
  },
  decompose: (t, spec, ctx) => {
    const { C, kh, kw } = dwDims(t);
    const r = truncatedFromFull(t, spec.rank); // the [C, kh*kw] matrix: the target's [O, I*kh*kw] unfolding with I = 1
    ctx.add('u', [C, r.rank], r.u);
    ctx.add('v', [r.rank, kh, kw], r.v);
    return { op: DWLR_CONV2D_KIND, relError: r.relError };
  },
  kinds: [DWLR_CONV2D],
};
