// A layer the converter may factorise, and its full SVD (computed once, shared by the rank search).
import type { GraphNode } from '../../runtime/ir.js';
import { truncatedSvd, type TruncatedSvdResult } from '../decompose/svd.js';
import type { LayerShape } from './candidates.js';

/** A given reshape of a layer (convert --modes): out = T_1..T_M, in = S_1..S_M, paired by position. */
export interface LayerModes {
  out: number[];
  in: number[];
}

export interface Target {
  node: GraphNode;
  shape: LayerShape;
  weight: Float32Array;
  bias: number;
  denseParams: number;
  /**
   * The reshape the tensorial methods (rcp/rtk/rtt/rtr; tt/tr for dense layers) use for this
   * layer instead of their default split (convert --modes); checked against the shape by
   * compressModel.
   */
  modes?: LayerModes;
}

/** The full SVD of a target's [rows, cols] unfolding, computed once and shared. */
const svdCache = new WeakMap<Target, TruncatedSvdResult>();
export function fullSvd(t: Target): TruncatedSvdResult {
  let r = svdCache.get(t);
  if (!r) {
    const s = t.shape;
    const rows = s.kind === 'dense' ? s.out : s.O;
    const cols = s.kind === 'dense' ? s.in : s.I * s.kh * s.kw;
    r = truncatedSvd(t.weight, rows, cols, Math.min(rows, cols));
    svdCache.set(t, r);
  }
  return r;
}


/**
 * The rank-r truncated SVD of a target from its cached full SVD: the same numbers truncatedSvd(w,
 * rows, cols, r) gives (both truncate one thin SVD), without decomposing the weight again.
 */
export function truncatedFromFull(t: Target, rank: number): TruncatedSvdResult {
  const full = fullSvd(t);
  const k = full.rank;
  const rows = full.u.length / k;
  const cols = full.v.length / k;
  const r = Math.max(1, Math.min(Math.floor(rank), k));
  const u = new Float32Array(rows * r);
  for (let i = 0; i < rows; i++) for (let j = 0; j < r; j++) u[i * r + j] = full.u[i * k + j]!;
  const v = full.v.slice(0, r * cols);
  const s = full.singularValues;
  let total = 0;
  let discarded = 0;
  for (let j = 0; j < s.length; j++) {
    total += s[j]! * s[j]!;
    if (j >= r) discarded += s[j]! * s[j]!;
  }
  return { u, v, singularValues: s, rank: r, relError: total === 0 ? 0 : Math.sqrt(discarded / total) };
}
