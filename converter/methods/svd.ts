// Truncated SVD of a layer's weight as a matrix [out, in·kh·kw] (Eckart–Young: the error of every
// rank is read exactly off the spectrum). Dense layers become `svd_dense` (u [out, r], v [r, in]);
// convolutions `svd_conv2d` (v [r, I, kh, kw] with the conv attributes, then a 1x1 u [O, r]).
import { paramsSvd } from '../decompose/params.js';
import { singularValues } from '../decompose/svd.js';
import { conv, pointwise, ungrouped } from '../export/convLayers.js';
import { expect2d, fail, initializer, linear, type Emitter } from '../export/context.js';
import { convGeom } from '../export/tfliteExporter.js';
import { dims, ladder, rel, Spectrum, type Candidate, type LayerShape } from '../rank/candidates.js';
import { fullSvd, truncatedFromFull } from '../rank/target.js';
import { convAttrs } from '../train/layers/conv2d.js';
import { ParamMaker, type InitOptions, type TrainLayer } from '../train/layers/layer.js';
import { conv2d as conv2dOp, convParams, type Conv2dParams } from '../train/ops/conv.js';
import { linear as linearOp } from '../train/ops/matmul.js';
import { reshape } from '../train/ops/shape.js';
import type { Var } from '../train/tensor.js';
import { Act } from '../tflite/schema.js';
import { matrixDims, type ConverterKind, type FactorMethod, type TfliteEmitter } from './method.js';

/** The runtime kinds a truncated SVD of a dense layer and of a convolution are stored as. */
export const SVD_DENSE_KIND = 'svd_dense';
export const SVD_CONV2D_KIND = 'svd_conv2d';

/** The SVD ladder: a geometric ladder of ranks priced exactly by the spectrum. */
export function svdCandidates(w: Float32Array, shape: LayerShape, bias: number, singular?: Float64Array): Candidate[] {
  const { rows, cols } = dims(shape);
  const sp = new Spectrum(singular ?? singularValues(w, rows, cols));
  return ladder(sp.length, 64).map((r) => ({
    spec: { method: 'svd', rank: r },
    params: r * (rows + cols) + bias,
    err: rel(sp.discarded(r), sp.total),
  }));
}

/** Truncated-SVD dense, runtime kind `svd_dense`: u [out, r], v [r, in], y = (x v^T) u^T + b. */
export function svdDense(inF: number, outF: number, rank: number, opts: InitOptions = {}): TrainLayer {
  const pm = new ParamMaker(opts);
  // Var(W) = r std_u^2 std_v^2, so std_u = std_v = (target / r)^(1/4).
  const std = (pm.target(inF) / rank) ** 0.25;
  const u = pm.normalParam('u', [outF, rank], std);
  const v = pm.normalParam('v', [rank, inF], std);
  const b = pm.bias(outF);
  return { op: SVD_DENSE_KIND, attrs: {}, params: pm.params, forward: (x: Var) => linearOp(linearOp(x, v), u, b) };
}

/** SVD convolution, runtime kind `svd_conv2d`: v [r, I, kh, kw] with the conv attributes, then 1x1 u [O, r]. */
export function svdConv2d(
  I: number, O: number, kernel: [number, number], rank: number, conv: Partial<Conv2dParams> = {}, opts: InitOptions = {},
): TrainLayer {
  const p = convParams(conv);
  if (p.group !== 1) throw new Error('train: svdConv2d needs group 1');
  const pm = new ParamMaker(opts);
  // Var(W) = r std^4 with one std for both factors: std = (target / r)^(1/4).
  const std = (pm.target(I * kernel[0] * kernel[1]) / rank) ** 0.25;
  const v = pm.normalParam('v', [rank, I, kernel[0], kernel[1]], std);
  const u = pm.normalParam('u', [O, rank], std);
  const b = pm.bias(O);
  return {
    op: SVD_CONV2D_KIND,
    attrs: convAttrs(p),
    params: pm.params,
    forward: (x: Var) => conv2dOp(conv2dOp(x, v, undefined, p), reshape(u, [O, rank, 1, 1]), b),
  };
}

/** y = (x v^T) u^T + b: two Gemms through the rank-r bottleneck. */
const svdDenseOnnx: Emitter = (ctx) => {
  const u = ctx.weight('u');
  const v = ctx.weight('v');
  expect2d(ctx, 'u', u, -1, -1);
  expect2d(ctx, 'v', v, u.shape[1]!, -1);
  const rank = ctx.ranks[0]!;
  const t = linear(ctx, ctx.inputs[0]!, rank, v, undefined, `${ctx.node.name}/v`);
  linear(ctx, t, rank, u, ctx.optionalWeight('bias'), `${ctx.node.name}/u`, ctx.output);
  return rank;
};

/** Conv(v) with the conv attributes to r channels, then a 1x1 Conv(u, bias). */
const svdConv2dOnnx: Emitter = (ctx) => {
  const a = ungrouped(ctx);
  const v = ctx.weight('v');
  const u = ctx.weight('u');
  if (v.shape.length !== 4) fail(ctx, `v must be 4-D, got [${v.shape}]`);
  expect2d(ctx, 'u', u, -1, v.shape[0]!);
  const t = conv(ctx, ctx.inputs[0]!, initializer(ctx, v), [v.shape[2]!, v.shape[3]!], a, `${ctx.node.name}/v`);
  pointwise(ctx, t, u, `${ctx.node.name}/u`, ctx.optionalWeight('bias'), ctx.output);
  return 4;
};

/** TFLite: FULLY_CONNECTED (v, no bias) -> FULLY_CONNECTED (u, bias). */
const svdDenseTflite: TfliteEmitter = (ex, node, input, out) => {
  const u = ex.weight(node, 'u');
  const v = ex.weight(node, 'v');
  const [r, i] = v.shape as [number, number];
  const mid = ex.fullyConnected(input(0), v.data, r, i, undefined, `${node.name}/v`, `${node.name}/v`, Act.NONE, node);
  return ex.fullyConnected(mid, u.data, u.shape[0]!, r, ex.optionalWeight(node, 'bias')?.data, `${node.name}/u`, out.name, out.act, node);
};

/** TFLite: CONV_2D (v, the conv's geometry) -> 1x1 CONV_2D (u, bias). */
const svdConv2dTflite: TfliteEmitter = (ex, node, input, out) => {
  const x = input(0);
  const v = ex.weight(node, 'v');
  const u = ex.weight(node, 'u');
  const r = v.shape[0]!;
  const mid = ex.conv(x, v.data, v.shape, undefined, convGeom(node), false, `${node.name}/v`, `${node.name}/v`, Act.NONE, node);
  return ex.pointwise(mid, u.data, u.shape[0]!, r, ex.optionalWeight(node, 'bias')?.data, `${node.name}/u`, out.name, out.act, node);
};

const SVD_DENSE: ConverterKind = {
  op: SVD_DENSE_KIND,
  trainable: (c) => {
    const u = c.shape('u'), v = c.shape('v');
    c.need(u.length === 2 && v.length === 2 && u[1] === v[0], 'u [out, r] and v [r, in] expected');
    return svdDense(v[1]!, u[0]!, u[1]!, c.init);
  },
  onnx: svdDenseOnnx,
  tflite: svdDenseTflite,
};

const SVD_CONV2D: ConverterKind = {
  op: SVD_CONV2D_KIND,
  trainable: (c) => {
    const u = c.shape('u'), v = c.shape('v');
    c.need(u.length === 2 && v.length === 4 && u[1] === v[0], 'v [r, I, kh, kw] and u [O, r] expected');
    return svdConv2d(v[1]!, u[0]!, [v[2]!, v[3]!], v[0]!, c.conv(), c.init);
  },
  onnx: svdConv2dOnnx,
  tflite: svdConv2dTflite,
};

export const svd: FactorMethod<'svd'> = {
  name: 'svd',
  layers: ['dense', 'conv'],
  applies: () => true,
  candidates: (t) => svdCandidates(t.weight, t.shape, t.bias, fullSvd(t).singularValues),
  fromRanks: (_t, r) => ({ method: 'svd', rank: r[0]! }),
  ranks: (spec) => [spec.rank],
  withRanks: (_spec, r) => ({ method: 'svd', rank: r[0]! }),
  rankSlots: (t) => {
    const { rows, cols } = matrixDims(t.shape);
    return [{ idx: [0], cap: Math.min(rows, cols) }];
  },
  params: (t, spec) => {
    const { rows, cols } = matrixDims(t.shape);
    return paramsSvd(rows, cols, spec.rank) + t.bias;
  },
  shapes: (t, spec) => {
    const s = t.shape;
    const { rows, cols } = matrixDims(s);
    return s.kind === 'dense'
      ? { op: SVD_DENSE_KIND, roles: { u: [rows, spec.rank], v: [spec.rank, cols] } }
      : { op: SVD_CONV2D_KIND, roles: { v: [spec.rank, s.I, s.kh, s.kw], u: [rows, spec.rank] } };
  },
  decompose: (t, spec, ctx) => {
    const s = t.shape;
    const { rows, cols } = matrixDims(s);
    const r = truncatedFromFull(t, spec.rank); // = truncatedSvd(t.weight, rows, cols, rank), from the cached full SVD
    if (s.kind === 'dense') {
      ctx.add('u', [rows, r.rank], r.u);
      ctx.add('v', [r.rank, cols], r.v);
      return { op: SVD_DENSE_KIND, relError: r.relError };
    }
    ctx.add('v', [r.rank, s.I, s.kh, s.kw], r.v);
    ctx.add('u', [rows, r.rank], r.u);
    return { op: SVD_CONV2D_KIND, relError: r.relError };
  },
  kinds: [SVD_DENSE, SVD_CONV2D],
};
