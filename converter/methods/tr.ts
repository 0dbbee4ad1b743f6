// Tensor ring of a dense weight (TR-SVD, then ALS sweeps): runtime kind `tr_dense`, cores
// core.k [r_k, m_k, n_k, r_{k+1}] with r_d = r_0, W = trace(G_0 .. G_{d-1}). What it shares with
// the tensor train is in methods/tensorChain.ts.
import { numel } from '../../runtime/ir.js';
import { paramsTr } from '../decompose/params.js';
import { chainParams, combined, denseModes, ladder, norm, ttSpectra, type Candidate, type LayerShape } from '../rank/candidates.js';
import { ParamMaker, type InitOptions, type TrainLayer } from '../train/layers/layer.js';
import type { Var } from '../train/tensor.js';
import type { LayerModes } from '../rank/target.js';
import type { ConverterKind, FactorMethod, SpecOf } from './method.js';
import { CHAIN_PARTS, chainDecompose, chainForward, chainFromRanks, chainOfNode, chainOnnx, chainRankSlots, checkModes, tensorNetTflite, TR_KIND } from './tensorChain.js';

/**
 * Tensor ring with boundary rank r0 = 2 and inner ranks r: TR-SVD splits the first unfolding's
 * rank as r0·r1. The estimate prices the unfoldings at ranks [r0·r1, r2, ...]; it is a proxy.
 */
export function trCandidates(w: Float32Array, shape: LayerShape & { kind: 'dense' }, bias: number, parts = 3, modes?: LayerModes): Candidate[] {
  const { outModes, inModes } = modes ? { outModes: [...modes.out], inModes: [...modes.in] } : denseModes(shape.out, shape.in, parts);
  const spectra = ttSpectra(w, outModes, inModes);
  const total = norm(w);
  const r0 = 2;
  const maxRank = Math.max(...spectra.map((s) => s.length));
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (const r of ladder(Math.max(1, Math.floor(maxRank / r0)))) {
    const inner = spectra.map((s, k) => Math.max(1, Math.min(r, k === 0 ? Math.floor(s.length / r0) : s.length)));
    const ranks = [r0, ...inner, r0];
    const key = ranks.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    const effective = spectra.map((_, k) => (k === 0 ? r0 * ranks[1]! : ranks[k + 1]!));
    out.push({
      spec: { method: 'tr', outModes, inModes, ranks },
      params: chainParams(outModes, inModes, ranks) + bias,
      err: combined(spectra.map((sp, k) => sp.discarded(effective[k]!)), total),
    });
  }
  return out;
}

/**
 * Tensor-ring dense, runtime kind `tr_dense`: core.k [r_k, m_k, n_k, r_{k+1}] with r_d = r_0,
 * W = trace(G_0 .. G_{d-1}). `ranks` are r_0..r_{d-1}.
 */
export function trDense(outModes: number[], inModes: number[], ranks: number[], opts: InitOptions = {}): TrainLayer {
  const d = outModes.length;
  checkModes(outModes, inModes, ranks, d);
  const r = [...ranks, ranks[0]!];
  const pm = new ParamMaker(opts);
  // Var(W) = (r_0 .. r_{d-1}) std^(2d) (the trace sums over r_0 too): std = (target / prod r)^(1/(2d)).
  const std = (pm.target(numel(inModes)) / numel(ranks)) ** (1 / (2 * d));
  const cores = outModes.map((m, k) => pm.normalParam(`core.${k}`, [r[k]!, m, inModes[k]!, r[k + 1]!], std));
  const b = pm.bias(numel(outModes));
  return {
    op: TR_KIND,
    attrs: { out_modes: [...outModes], in_modes: [...inModes] },
    params: pm.params,
    forward: (x: Var) => chainForward(x, cores, outModes, inModes, true, b),
  };
}

const TR_DENSE: ConverterKind = {
  op: TR_KIND,
  trainable: (c) => {
    const { outModes, inModes, ranks } = chainOfNode(c);
    return trDense(outModes, inModes, ranks, c.init);
  },
  onnx: chainOnnx(true),
  tflite: tensorNetTflite,
};

export const tr: FactorMethod<'tr'> = {
  name: 'tr',
  layers: ['dense'],
  applies: (s) => s.kind === 'dense',
  candidates: (t) => (t.shape.kind === 'dense' ? trCandidates(t.weight, t.shape, t.bias, CHAIN_PARTS, t.modes) : []),
  fromRanks: (t, r) => chainFromRanks<SpecOf<'tr'>>(t, r, 'tr'),
  ranks: (spec) => [...spec.ranks],
  withRanks: (spec, r) => ({ ...spec, ranks: r }),
  rankSlots: (_t, spec) => chainRankSlots(spec),
  params: (t, spec) => paramsTr(spec.outModes, spec.inModes, spec.ranks) + t.bias,
  decompose: (t, spec, ctx) => chainDecompose(t, spec, ctx),
  kinds: [TR_DENSE],
};
