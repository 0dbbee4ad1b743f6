// TR-ALS sweeps (Zhao et al. 2016) that refine tensor-ring cores at fixed ranks, one core at a
// time by least squares against the product of all the others.
import { numel } from '../../runtime/ir.js';
import { matmul, matmulTN, relativeError, solveRidge, transpose } from './linalg.js';
import { chainProduct, ringContract } from './ttLayout.js';

export interface TrAlsOptions {
  sweeps: number;
  /** Stop when a sweep lowers the relative error by less than this. */
  tol: number;
  /** Tikhonov weight relative to the mean diagonal of the normal matrix. */
  ridge: number;
}

/** One least-squares update of core k [r_k, dim_k, r_{k+1}] given the others. */
function updateCore(t: Float64Array, dims: readonly number[], cores: Float64Array[], ranks: readonly number[], k: number, ridge: number): Float64Array {
  const d = dims.length;
  const order = [...Array(d).keys()].map((j) => (k + 1 + j) % d).slice(0, d - 1);
  const subRanks = [...order.map((j) => ranks[j]!), ranks[k]!];
  const subDims = order.map((j) => dims[j]!);
  const rk = ranks[k]!;
  const rk1 = ranks[k + 1]!;
  const n = numel(subDims);
  // Z [r_{k+1}, N, r_k]: the ring with core k removed, starting right after it.
  const z = chainProduct(order.map((j) => cores[j]!), subRanks, subDims);
  const q = new Float64Array(n * rk * rk1);
  for (let b = 0; b < rk1; b++)
    for (let j = 0; j < n; j++) for (let a = 0; a < rk; a++) q[j * rk * rk1 + a * rk1 + b] = z[(b * n + j) * rk + a]!;
  // Cyclic shift of the tensor so that mode k comes first: [dim_k, N].
  const left = numel(dims.slice(0, k));
  const tk = transpose(t, left, t.length / left);
  const m = matmul(tk, q, dims[k]!, n, rk * rk1);
  const g = solveRidge(m, matmulTN(q, q, n, rk * rk1, rk * rk1), dims[k]!, rk * rk1, ridge);
  const core = new Float64Array(rk * dims[k]! * rk1);
  for (let i = 0; i < dims[k]!; i++)
    for (let a = 0; a < rk; a++) for (let b = 0; b < rk1; b++) core[(a * dims[k]! + i) * rk1 + b] = g[i * rk * rk1 + a * rk1 + b]!;
  return core;
}

/** Refine cores in place of a copy; a sweep is kept only if it lowers the error. */
export function trAls(
  t: Float64Array,
  dims: readonly number[],
  start: readonly Float64Array[],
  ranks: readonly number[],
  opts: TrAlsOptions,
): { cores: Float64Array[]; relError: number; sweeps: number } {
  let best = { cores: start.slice(), err: relativeError(t, ringContract(start, ranks, dims)) };
  let sweeps = 0;
  if (dims.length < 2) return { cores: best.cores, relError: best.err, sweeps };
  for (let s = 0; s < opts.sweeps && best.err > 0; s++) {
    const cores = best.cores.slice();
    for (let k = 0; k < dims.length; k++) cores[k] = updateCore(t, dims, cores, ranks, k, opts.ridge);
    const err = relativeError(t, ringContract(cores, ranks, dims));
    if (!(err < best.err)) break;
    sweeps++;
    const gain = best.err - err;
    best = { cores, err };
    if (gain < opts.tol) break;
  }
  return { cores: best.cores, relError: best.err, sweeps };
}
