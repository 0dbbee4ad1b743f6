// A layer the converter may factorise, and its full SVD (computed once, shared by the rank search).
import type { GraphNode } from '../../runtime/ir.js';
import { truncatedSvd, type TruncatedSvdResult } from '../decompose/svd.js';
import type { LayerShape } from './candidates.js';

export interface Target {
  node: GraphNode;
  shape: LayerShape;
  weight: Float32Array;
  bias: number;
  denseParams: number;
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

