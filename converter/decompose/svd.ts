// Truncated SVD for dense layers and for conv kernels flattened to [O, I*kh*kw]
// (svd_dense / svd_conv2d in runtime/ir.ts).
import { type RealArray, thinSvd, toF64 } from './linalg.js';

export interface TruncatedSvdResult {
  /** [rows, r] = U_r sqrt(S_r) */
  u: Float32Array;
  /** [r, cols] = sqrt(S_r) V_rᵀ */
  v: Float32Array;
  /** Every singular value of w, descending (length min(rows, cols)). */
  singularValues: Float64Array;
  /** Rank used: the requested rank clamped to [1, min(rows, cols)]. */
  rank: number;
  /** sqrt(Σ discarded σ²)/||W||_F: the Eckart–Young optimum at this rank. */
  relError: number;
}

function checkMatrix(w: RealArray, rows: number, cols: number, who: string): void {
  if (w.length !== rows * cols) throw new Error(`${who}: weight length ${w.length} != ${rows}x${cols}`);
}

/** Best rank-r approximation w [rows, cols] ≈ u·v, with sqrt(σ) split into both factors for balance. */
export function truncatedSvd(w: RealArray, rows: number, cols: number, rank: number): TruncatedSvdResult {
  checkMatrix(w, rows, cols, 'truncatedSvd');
  const { u: U, s, v: V, k } = thinSvd(toF64(w), rows, cols);
  const r = Math.max(1, Math.min(Math.floor(rank), k));
  const u = new Float32Array(rows * r);
  const v = new Float32Array(r * cols);
  for (let j = 0; j < r; j++) {
    const root = Math.sqrt(s[j]!);
    for (let i = 0; i < rows; i++) u[i * r + j] = U[i * k + j]! * root;
    for (let i = 0; i < cols; i++) v[j * cols + i] = V[i * k + j]! * root;
  }
  let total = 0;
  let discarded = 0;
  for (let j = 0; j < k; j++) {
    total += s[j]! * s[j]!;
    if (j >= r) discarded += s[j]! * s[j]!;
  }
  return { u, v, singularValues: s, rank: r, relError: total === 0 ? 0 : Math.sqrt(discarded / total) };
}

/** All singular values of w [rows, cols], descending: the spectrum used to choose a rank. */
export function singularValues(w: RealArray, rows: number, cols: number): Float64Array {
  checkMatrix(w, rows, cols, 'singularValues');
  return thinSvd(toF64(w), rows, cols).s;
}

/** Dense W [rows, cols] = u [rows, r] · v [r, cols] (tests and error reports only). */
export function reconstructSvd(u: ArrayLike<number>, v: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const r = u.length / rows;
  const w = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let p = 0; p < r; p++) {
      const a = u[i * r + p]!;
      for (let j = 0; j < cols; j++) w[i * cols + j]! += a * v[p * cols + j]!;
    }
  return w;
}
