// The Tucker tensor layer (TTL; Calvi, Mandic et al. 2019) of a dense weight: W [out, in] seen as
// a tensor [m_0..m_{p-1}, n_0..n_{q-1}] in Tucker form, core [r_0..r_{p+q-1}] and one factor per
// mode, factor.k [dim_k, r_k]: runtime kind `ttl_dense` (out_modes / in_modes attributes).
import { attrInts, numel } from '../../runtime/ir.js';
import { paramsTtl } from '../decompose/params.js';
import { tuckerTensorLayer } from '../decompose/ttl.js';
import { asRows, expect2d, fail, initializer, reshapedInitializer, type Emitter } from '../export/context.js';
import { combined, denseModes, norm, unfoldingSpectrum, type Candidate, type LayerShape } from '../rank/candidates.js';
import { leadOf, ParamMaker, type InitOptions, type TrainLayer } from '../train/layers/layer.js';
import { contract } from '../train/ops/contract.js';
import { addBias } from '../train/ops/elementwise.js';
import { reshape } from '../train/ops/shape.js';
import type { Var } from '../train/tensor.js';
import type { ConverterKind, FactorMethod } from './method.js';
import { tensorNetTflite } from './tensorChain.js';

/** The runtime kind a Tucker tensor layer is stored as. */
export const TTL_KIND = 'ttl_dense';

/** Mode split of the TTL: two modes each side. */
const TTL_PARTS = 2;

/** TTL ladder: every rank at the same fraction of its mode, priced by the mode unfoldings. */
export function ttlCandidates(w: Float32Array, shape: LayerShape & { kind: 'dense' }, bias: number, parts = 2): Candidate[] {
  const { outModes, inModes } = denseModes(shape.out, shape.in, parts);
  const full = [...outModes, ...inModes];
  const spectra = full.map((_, k) => unfoldingSpectrum(w, full, [k, ...full.map((__, j) => j).filter((j) => j !== k)], 1));
  const total = norm(w);
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (let i = 1; i <= 40; i++) {
    const a = i / 40;
    const ranks = full.map((d) => Math.min(d, Math.max(1, Math.round(a * d))));
    const key = ranks.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({
      spec: { method: 'ttl', outModes, inModes, ranks },
      params: ranks.reduce((p, r) => p * r, 1) + full.reduce((s, d, k) => s + d * ranks[k]!, 0) + bias,
      err: combined(spectra.map((sp, k) => sp.discarded(ranks[k]!)), total),
    });
  }
  return out;
}

/**
 * Tucker tensor layer, runtime kind `ttl_dense`: W [out, in] seen as [m_0..m_{p-1}, n_0..n_{q-1}]
 * = core [r_0..r_{p+q-1}] x_k factor.k [dim_k, r_k]. `ranks` has p + q entries (outputs first).
 * The input is projected on each input mode, through the core, then expanded on each output mode.
 */
export function ttlDense(outModes: number[], inModes: number[], ranks: number[], opts: InitOptions = {}): TrainLayer {
  const p = outModes.length;
  const q = inModes.length;
  if (p < 1 || q < 1 || ranks.length !== p + q) throw new Error(`train: ttl_dense needs ${p + q} ranks for ${p} out and ${q} in modes`);
  const dims = [...outModes, ...inModes];
  const pm = new ParamMaker(opts);
  // Var(W) = (prod r_k) std^(2(p+q+1)) with one std for core and factors: std = (target / prod r)^(1/(2(p+q+1))).
  const std = (pm.target(numel(inModes)) / numel(ranks)) ** (1 / (2 * (p + q + 1)));
  const core = pm.normalParam('core', ranks, std);
  const factors = dims.map((dim, k) => pm.normalParam(`factor.${k}`, [dim, ranks[k]!], std));
  const out = numel(outModes);
  const b = pm.bias(out);
  const inF = numel(inModes);
  return {
    op: TTL_KIND,
    attrs: { out_modes: [...outModes], in_modes: [...inModes] },
    params: pm.params,
    forward: (x: Var) => {
      const lead = leadOf(x, inF, TTL_KIND);
      const B = x.size / inF;
      // [B, n_0..n_{q-1}] -> [B, s_0..s_{q-1}]: each step eats axis 1 and appends its rank.
      let z = reshape(x, [B, ...inModes]);
      for (let k = 0; k < q; k++) z = contract(z, [1], factors[p + k]!, [0]);
      z = contract(z, [...Array(q).keys()].map((i) => i + 1), core, [...Array(q).keys()].map((i) => i + p));
      // [B, r_0..r_{p-1}] -> [B, m_0..m_{p-1}] the same way.
      for (let k = 0; k < p; k++) z = contract(z, [1], factors[k]!, [1]);
      const y = reshape(z, [...lead, out]);
      return b ? addBias(y, b, -1) : y;
    },
  };
}

const ttlOnnx: Emitter = (ctx) => {
  const outModes = attrInts(ctx.node, 'out_modes');
  const inModes = attrInts(ctx.node, 'in_modes');
  const p = outModes.length;
  const q = inModes.length;
  const core = ctx.weight('core');
  if (core.shape.length !== p + q) fail(ctx, `core must have ${p + q} modes, got [${core.shape}]`);
  const dims = [...outModes, ...inModes];
  const factors = dims.map((dim, k) => {
    const f = ctx.weight(`factor.${k}`);
    expect2d(ctx, `factor.${k}`, f, dim, core.shape[k]!);
    return f;
  });
  const rOut = core.shape.slice(0, p);
  const sIn = core.shape.slice(p);
  const out = numel(outModes);
  const inF = numel(inModes);
  const bias = ctx.optionalWeight('bias');
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== out)) fail(ctx, `bias has shape [${bias.shape}], expected [${out}]`);
  const rank = ctx.ranks[0]!;
  const name = ctx.node.name;
  const { rows, finish } = asRows(ctx, ctx.inputs[0]!, rank, inF);
  let z = rows;
  for (let k = 0; k < q; k++) {
    const f = factors[p + k]!;
    const post = numel(inModes.slice(k + 1));
    z = ctx.b.node('Reshape', [z, ctx.b.int64('shape', [-1, inModes[k]!, post])], `${name}/in${k}`);
    // F_k is [n_k, s_k]; the left operand contracts n_k, so it goes in transposed.
    const ft = new Float32Array(f.data.length);
    for (let a = 0; a < inModes[k]!; a++) for (let s = 0; s < sIn[k]!; s++) ft[s * inModes[k]! + a] = f.data[a * sIn[k]! + s]!;
    z = ctx.b.node('MatMul', [ctx.b.float(`${f.tensor.name}:T`, [sIn[k]!, inModes[k]!], ft, `${f.tensor.name}\u0000T`), z], `${name}/mode${p + k}`);
  }
  z = ctx.b.node('Reshape', [z, ctx.b.int64('shape', [-1, numel(sIn)])], `${name}/s`);
  const coreMat = { ...core, shape: [numel(rOut), numel(sIn)] };
  z = ctx.b.node('Gemm', [z, reshapedInitializer(ctx, coreMat, coreMat.shape, 'unfolded')], `${name}/core`, { transB: 1 });
  for (let k = 0; k < p; k++) {
    const post = numel(rOut.slice(k + 1));
    z = ctx.b.node('Reshape', [z, ctx.b.int64('shape', [-1, rOut[k]!, post])], `${name}/out${k}`);
    z = ctx.b.node('MatMul', [initializer(ctx, factors[k]!), z], `${name}/mode${k}`);
  }
  finish(z, out, bias);
  return rank;
};

const TTL_DENSE: ConverterKind = {
  op: TTL_KIND,
  trainable: (c) => ttlDense(attrInts(c.node, 'out_modes'), attrInts(c.node, 'in_modes'), c.shape('core'), c.init),
  onnx: ttlOnnx,
  tflite: tensorNetTflite,
};

export const ttl: FactorMethod<'ttl'> = {
  name: 'ttl',
  layers: ['dense'],
  applies: (s) => s.kind === 'dense',
  candidates: (t) => (t.shape.kind === 'dense' ? ttlCandidates(t.weight, t.shape, t.bias, TTL_PARTS) : []),
  fromRanks: (t, r) => {
    if (t.shape.kind !== 'dense') return 'method ttl does not apply to a conv layer';
    const { outModes, inModes } = denseModes(t.shape.out, t.shape.in, TTL_PARTS);
    const n = outModes.length + inModes.length;
    return { method: 'ttl', outModes, inModes, ranks: r.length === n ? r : new Array<number>(n).fill(r[0]!) };
  },
  ranks: (spec) => [...spec.ranks],
  withRanks: (spec, r) => ({ ...spec, ranks: r }),
  rankSlots: (_t, spec) => {
    const dims = [...spec.outModes, ...spec.inModes];
    const total = numel(dims);
    return dims.map((d, k) => ({ idx: [k], cap: Math.min(d, total / d) }));
  },
  params: (t, spec) => paramsTtl(spec.outModes, spec.inModes, spec.ranks) + t.bias,
  decompose: (t, spec, ctx) => {
    const r = tuckerTensorLayer(t.weight, spec.outModes, spec.inModes, spec.ranks);
    ctx.add('core', r.ranks, r.core);
    const dims = [...spec.outModes, ...spec.inModes];
    r.factors.forEach((f, k) => ctx.add(`factor.${k}`, [dims[k]!, r.ranks[k]!], f));
    ctx.attrs['out_modes'] = spec.outModes;
    ctx.attrs['in_modes'] = spec.inModes;
    return { op: TTL_KIND, relError: r.relError };
  },
  kinds: [TTL_DENSE],
};
