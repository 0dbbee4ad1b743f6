// General N-way Tucker: HOSVD start, then HOOI sweeps. Tucker-2 (conv channels) and the Tucker
// tensor layer both call this, choosing which modes to compress.
import { numel } from '../../runtime/ir.js';
import { leadingColumns, relativeError, sumSquares, symmetricEigen, transpose } from './linalg.js';
import { modeGram, modeMultiply } from './modeProduct.js';

export interface TuckerOptions {
  /** Maximum HOOI sweeps after the HOSVD start (0 = plain HOSVD). Default 25. */
  iters?: number;
  /** Stop when a sweep improves the relative error by less than this. Default 1e-7. */
  tol?: number;
}

export interface TuckerResult {
  /** Core with shape `coreShape` (rank for compressed modes, full dim for kept ones). */
  core: Float64Array;
  coreShape: number[];
  /** factor k [dim_k, r_k] with orthonormal columns, or null for a mode left whole. */
  factors: (Float64Array | null)[];
  /** Ranks actually used: requested ranks clamped to [1, dim_k]. */
  ranks: number[];
  relError: number;
  /** Relative error of the HOSVD start, before any HOOI sweep. */
  hosvdRelError: number;
  /** sqrt(Σ_modes Σ discarded σ²)/||X||: the classical HOSVD bound. */
  hosvdBound: number;
  sweeps: number;
}

/** Leading r eigenvectors of the mode Gram, plus the energy of the discarded ones. */
function leadingModeVectors(x: Float64Array, shape: readonly number[], mode: number, r: number): { u: Float64Array; discarded: number } {
  const dim = shape[mode]!;
  const eig = symmetricEigen(modeGram(x, shape, mode), dim);
  let discarded = 0;
  for (let i = r; i < dim; i++) discarded += Math.max(0, eig.values[i]!);
  return { u: leadingColumns(eig.vectors, dim, dim, r), discarded };
}

/** x ×_k U_kᵀ for every mode k with a factor, except `skip`. */
function project(
  x: Float64Array,
  shape: readonly number[],
  factors: readonly (Float64Array | null)[],
  ranks: readonly number[],
  skip = -1,
): { data: Float64Array; shape: number[] } {
  let cur: { data: Float64Array; shape: number[] } = { data: x, shape: shape.slice() };
  factors.forEach((u, k) => {
    if (u === null || k === skip) return;
    cur = modeMultiply(cur.data, cur.shape, k, transpose(u, shape[k]!, ranks[k]!), ranks[k]!);
  });
  return cur;
}

/** Relative error from ||X||² − ||core||², valid because the factors are orthonormal. */
function fitError(normSq: number, core: Float64Array): number {
  if (normSq === 0) return 0;
  return Math.sqrt(Math.max(0, normSq - sumSquares(core)) / normSq);
}

/**
 * Tucker decomposition of x [shape] with ranks[k] for mode k, or null to leave mode k whole.
 * HOSVD (leading eigenvectors of each mode Gram), then HOOI until the fit stops improving.
 */
export function tucker(
  x: Float64Array,
  shape: readonly number[],
  ranks: readonly (number | null)[],
  opts: TuckerOptions = {},
): TuckerResult {
  if (ranks.length !== shape.length) throw new Error(`tucker: ${ranks.length} ranks for a ${shape.length}-way tensor`);
  if (x.length !== numel(shape)) throw new Error(`tucker: data length ${x.length} != numel [${shape.join(',')}]`);
  const iters = opts.iters ?? 25;
  const tol = opts.tol ?? 1e-7;
  const used = shape.map((d, k) => {
    const r = ranks[k];
    return r === null || r === undefined ? d : Math.max(1, Math.min(Math.floor(r), d));
  });
  const modes = ranks.flatMap((r, k) => (r === null ? [] : [k]));
  const normSq = sumSquares(x);

  const factors: (Float64Array | null)[] = shape.map(() => null);
  let discardedTotal = 0;
  for (const k of modes) {
    const { u, discarded } = leadingModeVectors(x, shape, k, used[k]!);
    factors[k] = u;
    discardedTotal += discarded;
  }
  let core = project(x, shape, factors, used);
  const hosvdRelError = fitError(normSq, core.data);
  const hosvd = { factors: factors.slice(), core, err: hosvdRelError };
  let best = hosvd;

  let sweeps = 0;
  // One compressed mode has nothing to alternate with: HOSVD is already optimal there.
  for (let it = 0; it < iters && modes.length > 1 && best.err > 0; it++) {
    sweeps++;
    for (const k of modes) {
      const y = project(x, shape, factors, used, k);
      factors[k] = leadingModeVectors(y.data, y.shape, k, used[k]!).u;
    }
    core = project(x, shape, factors, used);
    const err = fitError(normSq, core.data);
    const improved = best.err - err;
    if (err < best.err) best = { factors: factors.slice(), core, err };
    if (improved < tol) break;
  }

  // The norm identity loses digits near an exact fit, so the reported errors are measured directly.
  const measured = (c: { data: Float64Array; shape: number[] }, f: (Float64Array | null)[]) =>
    relativeError(x, tuckerReconstruct(c.data, c.shape, f, shape));
  return {
    core: best.core.data,
    coreShape: best.core.shape,
    factors: best.factors,
    ranks: used,
    relError: measured(best.core, best.factors),
    hosvdRelError: measured(hosvd.core, hosvd.factors),
    hosvdBound: normSq === 0 ? 0 : Math.sqrt(discardedTotal / normSq),
    sweeps,
  };
}

/** Dense x = core ×_k factor_k for every mode with a factor. */
export function tuckerReconstruct(
  core: ArrayLike<number>,
  coreShape: readonly number[],
  factors: readonly (ArrayLike<number> | null)[],
  dims: readonly number[],
): Float64Array {
  let cur: { data: Float64Array; shape: number[] } = { data: Float64Array.from(core), shape: coreShape.slice() };
  factors.forEach((u, k) => {
    if (u === null) return;
    cur = modeMultiply(cur.data, cur.shape, k, Float64Array.from(u), dims[k]!);
  });
  return cur.data;
}
