// CP of a convolution kernel in the CPAC-Conv layout (Wang, Guo, Yue 2020): runtime kind
// `cp_conv2d`, a_in [R, I], k_h [R, kh], k_w [R, kw], a_out [O, R], applied as the chain 1x1
// (I -> R), depthwise kh x 1 (vertical stride/pad/dilation), depthwise 1 x kw (horizontal ones),
// 1x1 (R -> O) + bias. CP-ALS starts from SVD and keeps the best of several restarts.
import { cpConv } from '../decompose/cp.js';
import { paramsCp } from '../decompose/params.js';
import { conv, pointwise, ungrouped, type ConvAttrs } from '../export/convLayers.js';
import { expect2d, reshapedInitializer, type Emitter } from '../export/context.js';
import { convGeom } from '../export/tfliteExporter.js';
import { ladder, norm, rel, unfoldingSpectrum, type Candidate, type LayerShape } from '../rank/candidates.js';
import { convAttrs } from '../train/layers/conv2d.js';
import { ParamMaker, type InitOptions, type TrainLayer } from '../train/layers/layer.js';
import { conv2d, convParams, type Conv2dParams } from '../train/ops/conv.js';
import { reshape } from '../train/ops/shape.js';
import type { Var } from '../train/tensor.js';
import { Act } from '../tflite/schema.js';
import { matrixDims, isPointwise, type ConverterKind, type FactorMethod, type TfliteEmitter } from './method.js';

/** The runtime kind a CP of a convolution is stored as. */
export const CP_KIND = 'cp_conv2d';

/**
 * CP ranks for a conv kernel. No spectrum prices CP exactly; the estimate is the larger of the
 * rank-R truncation errors of the two channel unfoldings, a lower bound on the CP error.
 */
export function cpCandidates(w: Float32Array, shape: LayerShape & { kind: 'conv' }, bias: number): Candidate[] {
  const { O, I, kh, kw } = shape;
  const full = [O, I, kh, kw];
  const s0 = unfoldingSpectrum(w, full, [0, 1, 2, 3], 1);
  const s1 = unfoldingSpectrum(w, full, [1, 0, 2, 3], 1);
  const total = norm(w);
  const per = I + kh + kw + O;
  const maxR = Math.max(1, Math.ceil((O * I * kh * kw) / per));
  return ladder(maxR).map((r) => ({
    spec: { method: 'cp', rank: r },
    params: r * per + bias,
    err: Math.max(rel(s0.discarded(r), total), rel(s1.discarded(r), total)),
  }));
}

/** The trainable CP convolution (the chain above). */
export function cpConv2d(
  I: number, O: number, kernel: [number, number], rank: number, conv: Partial<Conv2dParams> = {}, opts: InitOptions = {},
): TrainLayer {
  const p = convParams(conv);
  if (p.group !== 1) throw new Error('train: cpConv2d needs group 1');
  const R = rank;
  const [kh, kw] = kernel;
  const pm = new ParamMaker(opts);
  // Var(W) = R std^8 with one std for all four factors: std = (target / R)^(1/8).
  const std = (pm.target(I * kh * kw) / R) ** (1 / 8);
  const aIn = pm.normalParam('a_in', [R, I], std);
  const kH = pm.normalParam('k_h', [R, kh], std);
  const kW = pm.normalParam('k_w', [R, kw], std);
  const aOut = pm.normalParam('a_out', [O, R], std);
  const b = pm.bias(O);
  const vertical: Conv2dParams = { strides: [p.strides[0], 1], pads: [p.pads[0], 0, p.pads[2], 0], dilations: [p.dilations[0], 1], group: R };
  const horizontal: Conv2dParams = { strides: [1, p.strides[1]], pads: [0, p.pads[1], 0, p.pads[3]], dilations: [1, p.dilations[1]], group: R };
  return {
    op: CP_KIND,
    attrs: convAttrs(p),
    params: pm.params,
    forward: (x: Var) => {
      const a = conv2d(x, reshape(aIn, [R, I, 1, 1]), undefined);
      const v = conv2d(a, reshape(kH, [R, 1, kh, 1]), undefined, vertical);
      const h = conv2d(v, reshape(kW, [R, 1, 1, kw]), undefined, horizontal);
      return conv2d(h, reshape(aOut, [O, R, 1, 1]), b);
    },
  };
}

/** CPAC-Conv exactly as the runtime computes it, as four ONNX Convs (two of them depthwise). */
const cpOnnx: Emitter = (ctx) => {
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

/** TFLite: 1x1 CONV_2D -> DEPTHWISE_CONV_2D kh x 1 -> DEPTHWISE_CONV_2D 1 x kw -> 1x1 CONV_2D. */
const cpTflite: TfliteEmitter = (ex, node, input, out) => {
  const x = input(0);
  const aIn = ex.weight(node, 'a_in');
  const kH = ex.weight(node, 'k_h');
  const kW = ex.weight(node, 'k_w');
  const aOut = ex.weight(node, 'a_out');
  const [R, inC] = aIn.shape as [number, number];
  const g = convGeom(node);
  const a = ex.pointwise(x, aIn.data, R, inC, undefined, `${node.name}/a_in`, `${node.name}/a_in`, Act.NONE, node);
  const vert = { strides: [g.strides[0]!, 1], pads: [g.pads[0]!, 0, g.pads[2]!, 0], dilations: [g.dilations[0]!, 1] };
  const hor = { strides: [1, g.strides[1]!], pads: [0, g.pads[1]!, 0, g.pads[3]!], dilations: [1, g.dilations[1]!] };
  const v = ex.conv(a, kH.data, [R, 1, kH.shape[1]!, 1], undefined, vert, true, `${node.name}/k_h`, `${node.name}/k_h`, Act.NONE, node);
  const h = ex.conv(v, kW.data, [R, 1, 1, kW.shape[1]!], undefined, hor, true, `${node.name}/k_w`, `${node.name}/k_w`, Act.NONE, node);
  return ex.pointwise(h, aOut.data, aOut.shape[0]!, R, ex.optionalWeight(node, 'bias')?.data, `${node.name}/a_out`, out.name, out.act, node);
};

const CP_CONV2D: ConverterKind = {
  op: CP_KIND,
  trainable: (c) => {
    const ai = c.shape('a_in'), kh = c.shape('k_h'), kw = c.shape('k_w'), ao = c.shape('a_out');
    c.need([ai, kh, kw, ao].every((s) => s.length === 2) && kh[0] === ai[0] && kw[0] === ai[0] && ao[1] === ai[0], 'a_in [R, I], k_h [R, kh], k_w [R, kw], a_out [O, R] expected');
    return cpConv2d(ai[1]!, ao[0]!, [kh[1]!, kw[1]!], ai[0]!, c.conv(), c.init);
  },
  onnx: cpOnnx,
  tflite: cpTflite,
};

export const cp: FactorMethod<'cp'> = {
  name: 'cp',
  layers: ['conv'],
  applies: (s) => s.kind === 'conv' && !isPointwise(s),
  candidates: (t) => (t.shape.kind === 'conv' ? cpCandidates(t.weight, t.shape, t.bias) : []),
  fromRanks: (_t, r) => ({ method: 'cp', rank: r[0]! }),
  ranks: (spec) => [spec.rank],
  withRanks: (_spec, r) => ({ method: 'cp', rank: r[0]! }),
  rankSlots: (t) => {
    const { rows, cols } = matrixDims(t.shape);
    return [{ idx: [0], cap: Math.max(rows, cols) }];
  },
  params: (t, spec) => {
    const s = t.shape;
    return s.kind === 'conv' ? paramsCp(s.O, s.I, s.kh, s.kw, spec.rank) + t.bias : NaN;
  },
  shapes: (t, spec) => {
    const s = t.shape;
    if (s.kind !== 'conv') throw new Error('cp decomposes conv layers only');
    const R = spec.rank;
    return { op: CP_KIND, roles: { a_in: [R, s.I], k_h: [R, s.kh], k_w: [R, s.kw], a_out: [s.O, R] } };
  },
  decompose: (t, spec, ctx) => {
    const s = t.shape;
    if (s.kind !== 'conv') throw new Error('cp decomposes conv layers only');
    // 150 ALS sweeps per restart: within 2% of the error of 500 sweeps at a third of the time.
    // The search's trial fits use one short run: an upper bound on the error of the full fit.
    const r = cpConv(t.weight, [s.O, s.I, s.kh, s.kw], spec.rank,
      ctx.quick ? { restarts: 1, seed: ctx.seed, iters: 40, tol: 1e-6 } : { restarts: 3, seed: ctx.seed, iters: 150, tol: 1e-7 });
    const R = r.aIn.length / s.I;
    ctx.add('a_in', [R, s.I], r.aIn);
    ctx.add('k_h', [R, s.kh], r.kH);
    ctx.add('k_w', [R, s.kw], r.kW);
    ctx.add('a_out', [s.O, R], r.aOut);
    return { op: CP_KIND, relError: r.relError };
  },
  kinds: [CP_CONV2D],
};
