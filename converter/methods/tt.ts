// TT-matrix of a dense weight (TT-SVD with a rank per unfolding): runtime kind `tt_dense`, cores
// core.k [r_k, m_k, n_k, r_{k+1}] with r_0 = r_d = 1. What it shares with the tensor ring is in
// methods/tensorChain.ts.
import { numel } from '../../runtime/ir.js';
import { paramsTt } from '../decompose/params.js';
import { chainParams, combined, denseModes, ladder, norm, ttSpectra, type Candidate, type LayerShape } from '../rank/candidates.js';
import { ParamMaker, type InitOptions, type TrainLayer } from '../train/layers/layer.js';
import type { Var } from '../train/tensor.js';
import type { LayerModes } from '../rank/target.js';
import type { ConverterKind, FactorMethod, SpecOf } from './method.js';
import { CHAIN_PARTS, chainDecompose, chainForward, chainFromRanks, chainOfNode, chainOnnx, chainRankSlots, checkModes, tensorNetTflite, TT_KIND } from './tensorChain.js';

export function ttCandidates(w: Float32Array, shape: LayerShape & { kind: 'dense' }, bias: number, parts = 3, modes?: LayerModes): Candidate[] {
  const { outModes, inModes } = modes ? { outModes: [...modes.out], inModes: [...modes.in] } : denseModes(shape.out, shape.in, parts);
  const spectra = ttSpectra(w, outModes, inModes);
  const total = norm(w);
  const maxRank = Math.max(...spectra.map((s) => s.length));
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (const r of ladder(maxRank)) {
    const ranks = [1, ...spectra.map((s) => Math.min(r, s.length)), 1];
    const key = ranks.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({
      spec: { method: 'tt', outModes, inModes, ranks },
      params: chainParams(outModes, inModes, ranks) + bias,
      err: combined(spectra.map((sp, k) => sp.discarded(ranks[k + 1]!)), total),
    });
  }
  return out;
}

/**
 * TT-matrix dense, runtime kind `tt_dense`: core.k [r_k, m_k, n_k, r_{k+1}], r_0 = r_d = 1.
 * `ranks` are the inner ranks r_1..r_{d-1}.
 */
export function ttDense(outModes: number[], inModes: number[], ranks: number[], opts: InitOptions = {}): TrainLayer {
  const d = outModes.length;
  checkModes(outModes, inModes, ranks, d - 1);
  const r = [1, ...ranks, 1];
  const pm = new ParamMaker(opts);
  // Var(W) = (r_1 .. r_{d-1}) std^(2d) with one std for all cores: std = (target / prod r)^(1/(2d)).
  const std = (pm.target(numel(inModes)) / numel(ranks)) ** (1 / (2 * d));
  const cores = outModes.map((m, k) => pm.normalParam(`core.${k}`, [r[k]!, m, inModes[k]!, r[k + 1]!], std));
  const b = pm.bias(numel(outModes));
  return {
    op: TT_KIND,
    attrs: { out_modes: [...outModes], in_modes: [...inModes] },
    params: pm.params,
    forward: (x: Var) => chainForward(x, cores, outModes, inModes, false, b),
  };
}

const TT_DENSE: ConverterKind = {
  op: TT_KIND,
  trainable: (c) => {
    const { outModes, inModes, ranks } = chainOfNode(c);
    return ttDense(outModes, inModes, ranks.slice(1), c.init);
  },
  onnx: chainOnnx(false),
  tflite: tensorNetTflite,
};

export const tt: FactorMethod<'tt'> = {
  name: 'tt',
  layers: ['dense'],
  applies: (s) => s.kind === 'dense',
  candidates: (t) => (t.shape.kind === 'dense' ? ttCandidates(t.weight, t.shape, t.bias, CHAIN_PARTS, t.modes) : []),
  fromRanks: (t, r) => chainFromRanks<SpecOf<'tt'>>(t, r, 'tt'),
  ranks: (spec) => [...spec.ranks],
  withRanks: (spec, r) => ({ ...spec, ranks: r }),
  rankSlots: (_t, spec) => chainRankSlots(spec),
  params: (t, spec) => paramsTt(spec.outModes, spec.inModes, spec.ranks) + t.bias,
  decompose: (t, spec, ctx) => chainDecompose(t, spec, ctx),
  kinds: [TT_DENSE],
};
