// Shared plumbing of TT-matrix and tensor-ring layers: the interleaved (i_k, j_k) tensor view of
// a weight matrix, and contraction of a chain of cores [r_k, m_k n_k, r_{k+1}].
import { numel } from '../../runtime/ir.js';
import { leadingColumns, matmul } from './linalg.js';
import { permuteAxes } from './modeProduct.js';

function checkModes(outModes: readonly number[], inModes: readonly number[], length: number, who: string): void {
  if (outModes.length !== inModes.length || outModes.length === 0)
    throw new Error(`${who}: out_modes and in_modes must be non-empty and of equal length`);
  if (numel(outModes) * numel(inModes) !== length)
    throw new Error(`${who}: weight length ${length} != prod(out_modes) * prod(in_modes) = ${numel(outModes) * numel(inModes)}`);
}

/** W [Π m, Π n] -> tensor [m_0 n_0, m_1 n_1, ...] with index pairs (i_k, j_k) interleaved. */
export function interleave(w: ArrayLike<number>, outModes: readonly number[], inModes: readonly number[], who: string): Float64Array {
  checkModes(outModes, inModes, w.length, who);
  const d = outModes.length;
  const perm = outModes.flatMap((_, k) => [k, d + k]);
  return permuteAxes(w, [...outModes, ...inModes], perm);
}

/** Inverse of interleave: tensor [m_0 n_0, ...] -> W [Π m, Π n]. */
export function deinterleave(t: ArrayLike<number>, outModes: readonly number[], inModes: readonly number[]): Float64Array {
  const d = outModes.length;
  const shape = outModes.flatMap((m, k) => [m, inModes[k]!]);
  const perm = [...outModes.map((_, k) => 2 * k), ...outModes.map((_, k) => 2 * k + 1)];
  return permuteAxes(t, shape, perm.slice(0, 2 * d));
}

/** Product of cores [r_k, dim_k, r_{k+1}] along the chain: P [r_first, Π dim, r_last]. */
export function chainProduct(cores: readonly ArrayLike<number>[], ranks: readonly number[], dims: readonly number[]): Float64Array {
  let p: Float64Array = Float64Array.from(cores[0]!);
  let span = dims[0]!;
  for (let k = 1; k < cores.length; k++) {
    // [r_first·span, r_k] x [r_k, dim_k·r_{k+1}] flattens to [r_first, span, dim_k, r_{k+1}].
    p = matmul(p, Float64Array.from(cores[k]!), ranks[0]! * span, ranks[k]!, dims[k]! * ranks[k + 1]!);
    span *= dims[k]!;
  }
  return p;
}

/** Tensor [dim_0, ..., dim_{d-1}] = trace(G_0[:, i_0, :] ... G_{d-1}[:, i_{d-1}, :]). */
export function ringContract(cores: readonly ArrayLike<number>[], ranks: readonly number[], dims: readonly number[]): Float64Array {
  const p = chainProduct(cores, ranks, dims);
  const r0 = ranks[0]!;
  const rLast = ranks[cores.length]!;
  if (rLast !== r0) throw new Error(`ringContract: closing rank ${rLast} != first rank ${r0}`);
  const n = numel(dims);
  const t = new Float64Array(n);
  for (let a = 0; a < r0; a++) for (let i = 0; i < n; i++) t[i]! += p[(a * n + i) * r0 + a]!;
  return t;
}

/**
 * One step of the sequential SVDs of TT-SVD and TR-SVD: keep the leading r left singular vectors as
 * the core [rows, r]; the remainder diag(s_r) V_rᵀ [r, cols] carries on to the next core.
 */
export function splitLeading(
  u: Float64Array, s: Float64Array, v: Float64Array, rows: number, cols: number, full: number, r: number,
): { core: Float64Array; rest: Float64Array; discarded: number } {
  let discarded = 0;
  for (let i = r; i < full; i++) discarded += s[i]! * s[i]!;
  const rest = new Float64Array(r * cols);
  for (let a = 0; a < r; a++) for (let j = 0; j < cols; j++) rest[a * cols + j] = s[a]! * v[j * full + a]!;
  return { core: leadingColumns(u, rows, full, r), rest, discarded };
}
