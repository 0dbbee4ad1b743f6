// Tucker-2 over a convolution's channel modes (HOSVD start, then HOOI sweeps): runtime kind
// `tucker2_conv2d`, u_in [r1, I], core [r2, r1, kh, kw], u_out [O, r2]; applied as a 1x1 conv
// (I -> r1), the core conv with the conv attributes, and a 1x1 conv (r2 -> O) + bias.
import { paramsTucker2 } from '../decompose/params.js';
import { tucker2Conv } from '../decompose/tucker2.js';
import { conv, pointwise, ungrouped } from '../export/convLayers.js';
import { expect2d, fail, initializer, type Emitter } from '../export/context.js';
import { convGeom } from '../export/tfliteExporter.js';
import { combined, norm, unfoldingSpectrum, type Candidate, type LayerShape } from '../rank/candidates.js';
import { convAttrs } from '../train/layers/conv2d.js';
import { ParamMaker, type InitOptions, type TrainLayer } from '../train/layers/layer.js';
import { conv2d, convParams, type Conv2dParams } from '../train/ops/conv.js';
import { reshape } from '../train/ops/shape.js';
import type { Var } from '../train/tensor.js';
import { Act } from '../tflite/schema.js';
import { isPointwise, type ConverterKind, type FactorMethod, type TfliteEmitter } from './method.js';

/** The runtime kind a Tucker-2 of a convolution is stored as. */
export const TUCKER2_KIND = 'tucker2_conv2d';

/** Tucker-2 ladder: both channel ranks at the same fraction of their mode, priced by the two unfoldings. */
export function tucker2Candidates(w: Float32Array, shape: LayerShape & { kind: 'conv' }, bias: number): Candidate[] {
  const { O, I, kh, kw } = shape;
  const full = [O, I, kh, kw];
  const s0 = unfoldingSpectrum(w, full, [0, 1, 2, 3], 1);
  const s1 = unfoldingSpectrum(w, full, [1, 0, 2, 3], 1);
  const total = norm(w);
  const out: Candidate[] = [];
  for (let i = 1; i <= 40; i++) {
    const a = i / 40;
    const rOut = Math.min(O, Math.max(1, Math.round(a * O)));
    const rIn = Math.min(I, Math.max(1, Math.round(a * I)));
    out.push({
      spec: { method: 'tucker2', ranks: [rOut, rIn] },
      params: rIn * I + rOut * rIn * kh * kw + O * rOut + bias,
      err: combined([s0.discarded(rOut), s1.discarded(rIn)], total),
    });
  }
  return out;
}

/** The trainable Tucker-2 convolution (runtime kind `tucker2_conv2d`). */
export function tucker2Conv2d(
  I: number, O: number, kernel: [number, number], ranks: [number, number], conv: Partial<Conv2dParams> = {}, opts: InitOptions = {},
): TrainLayer {
  const p = convParams(conv);
  if (p.group !== 1) throw new Error('train: tucker2Conv2d needs group 1');
  const [r1, r2] = ranks;
  const [kh, kw] = kernel;
  const pm = new ParamMaker(opts);
  // Var(W) = r1 r2 std^6 with one std for all three factors: std = (target / (r1 r2))^(1/6).
  const std = (pm.target(I * kh * kw) / (r1 * r2)) ** (1 / 6);
  const uIn = pm.normalParam('u_in', [r1, I], std);
  const core = pm.normalParam('core', [r2, r1, kh, kw], std);
  const uOut = pm.normalParam('u_out', [O, r2], std);
  const b = pm.bias(O);
  return {
    op: TUCKER2_KIND,
    attrs: convAttrs(p),
    params: pm.params,
    forward: (x: Var) => {
      const a = conv2d(x, reshape(uIn, [r1, I, 1, 1]), undefined);
      const c = conv2d(a, core, undefined, p);
      return conv2d(c, reshape(uOut, [O, r2, 1, 1]), b);
    },
  };
}

/** 1x1 (I -> r1), core Conv (carries stride/pad/dilation), 1x1 (r2 -> O, bias). */
const tucker2Onnx: Emitter = (ctx) => {
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

/** TFLite: 1x1 CONV_2D -> CONV_2D (core) -> 1x1 CONV_2D. */
const tucker2Tflite: TfliteEmitter = (ex, node, input, out) => {
  const x = input(0);
  const uIn = ex.weight(node, 'u_in');
  const core = ex.weight(node, 'core');
  const uOut = ex.weight(node, 'u_out');
  const [r1, inC] = uIn.shape as [number, number];
  const a = ex.pointwise(x, uIn.data, r1, inC, undefined, `${node.name}/u_in`, `${node.name}/u_in`, Act.NONE, node);
  const m = ex.conv(a, core.data, core.shape, undefined, convGeom(node), false, `${node.name}/core`, `${node.name}/core`, Act.NONE, node);
  return ex.pointwise(m, uOut.data, uOut.shape[0]!, core.shape[0]!, ex.optionalWeight(node, 'bias')?.data, `${node.name}/u_out`, out.name, out.act, node);
};

const TUCKER2_CONV2D: ConverterKind = {
  op: TUCKER2_KIND,
  trainable: (c) => {
    const ui = c.shape('u_in'), k = c.shape('core'), uo = c.shape('u_out');
    c.need(ui.length === 2 && k.length === 4 && uo.length === 2 && k[1] === ui[0] && k[0] === uo[1], 'u_in [r1, I], core [r2, r1, kh, kw], u_out [O, r2] expected');
    return tucker2Conv2d(ui[1]!, uo[0]!, [k[2]!, k[3]!], [ui[0]!, uo[1]!], c.conv(), c.init);
  },
  onnx: tucker2Onnx,
  tflite: tucker2Tflite,
};

export const tucker2: FactorMethod<'tucker2'> = {
  name: 'tucker2',
  layers: ['conv'],
  applies: (s) => s.kind === 'conv' && !isPointwise(s),
  candidates: (t) => (t.shape.kind === 'conv' ? tucker2Candidates(t.weight, t.shape, t.bias) : []),
  fromRanks: (_t, r) => ({ method: 'tucker2', ranks: [r[0]!, r[1] ?? r[0]!] }),
  ranks: (spec) => [...spec.ranks],
  withRanks: (_spec, r) => ({ method: 'tucker2', ranks: [r[0]!, r[1]!] }),
  rankSlots: (t) => {
    const s = t.shape;
    return s.kind === 'conv' ? [{ idx: [0], cap: Math.min(s.O, s.I * s.kh * s.kw) }, { idx: [1], cap: Math.min(s.I, s.O * s.kh * s.kw) }] : [];
  },
  params: (t, spec) => {
    const s = t.shape;
    return s.kind === 'conv' ? paramsTucker2(s.O, s.I, s.kh, s.kw, spec.ranks[0], spec.ranks[1]) + t.bias : NaN;
  },
  shapes: (t, spec) => {
    const s = t.shape;
    if (s.kind !== 'conv') throw new Error('tucker2 decomposes conv layers only');
    const [rOut, rIn] = spec.ranks;
    return { op: TUCKER2_KIND, roles: { u_in: [rIn, s.I], core: [rOut, rIn, s.kh, s.kw], u_out: [s.O, rOut] } };
  },
  decompose: (t, spec, ctx) => {
    const s = t.shape;
    if (s.kind !== 'conv') throw new Error('tucker2 decomposes conv layers only');
    const r = tucker2Conv(t.weight, [s.O, s.I, s.kh, s.kw], spec.ranks);
    const [rOut, rIn] = [r.uOut.length / s.O, r.uIn.length / s.I];
    ctx.add('u_in', [rIn, s.I], r.uIn);
    ctx.add('core', [rOut, rIn, s.kh, s.kw], r.core);
    ctx.add('u_out', [s.O, rOut], r.uOut);
    return { op: TUCKER2_KIND, relError: r.relError };
  },
  kinds: [TUCKER2_CONV2D],
};
