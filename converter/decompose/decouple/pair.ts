// Decoupling a dense → activation → dense pair: sample its values and analytic Jacobians at the
// given inputs, project wide inputs to their principal directions (samples.ts says why), fit, and
// lift V back so the result reads the layer's own input.
import { matmul } from '../linalg.js';
import { decouple, type DecoupleOptions, type DecoupleResult } from './als.js';
import { denseActSamples, principalDirections, type DenseActPair, type PrincipalDirections } from './samples.js';

export interface PairDecoupleOptions extends DecoupleOptions {
  /** Principal directions to fit in. Default: none (the full input) up to 64 inputs, else 64. */
  components?: number;
  /** How the principal directions are found (samples.ts PrincipalOptions). Default 'auto'. */
  projectionMethod?: 'exact' | 'randomized' | 'auto';
}

export interface PairDecoupleResult extends DecoupleResult {
  /** The projection used, when there was one; the errors are then those of J P, not J. */
  projection?: PrincipalDirections;
}

/** Fit f(u) = W2 σ(W1 u + b1) + b2 ≈ W g(Vᵀu) + c at the rows of u [count, inputs]. */
export function decoupleDenseAct(pair: DenseActPair, u: ArrayLike<number>, count: number, branches: number, opts: PairDecoupleOptions = {}): PairDecoupleResult {
  const m = pair.inputs;
  const p = Math.floor(opts.components ?? (m <= 64 ? m : 64));
  const projection = p < m ? principalDirections(u, count, m, p, { method: opts.projectionMethod ?? 'auto', seed: opts.seed ?? 0 }) : undefined;
  const samples = denseActSamples(pair, u, count, projection);
  const res = decouple(samples, branches, opts);
  if (!projection) return res;
  const r = res.fn.branches;
  // z = Ṽᵀ(Pᵀu) = (P Ṽ)ᵀ u
  const v = matmul(projection.basis, res.fn.v, m, projection.p, r);
  return { ...res, fn: { ...res.fn, inputs: m, v }, projection };
}
