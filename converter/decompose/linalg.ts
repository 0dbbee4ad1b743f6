// Dense row-major Float64 linear algebra for the decompositions. Factorisations (SVD, eigen,
// Cholesky) come from ml-matrix; only the plain products and copies are written here.
import { CholeskyDecomposition, EigenvalueDecomposition, Matrix, QrDecomposition, SingularValueDecomposition } from 'ml-matrix';

/** A row-major weight as the converter hands it over. */
export type RealArray = Float32Array | Float64Array;

/** Copy into a fresh Float64Array (inputs may be f32, and callers must not see their data mutated). */
export function toF64(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x);
}

/** The f32 copy that goes into the model file. */
export function toF32(x: ArrayLike<number>): Float32Array {
  return Float32Array.from(x);
}

/** Squared Frobenius norm, accumulated in f64. */
export function sumSquares(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return s;
}

/** ||a - b||_F / ||a||_F, with 0 for a zero reference (never NaN). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relativeError: lengths differ (${a.length} vs ${b.length})`);
  let diff = 0;
  let ref = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    diff += d * d;
    ref += a[i]! * a[i]!;
  }
  if (ref === 0) return diff === 0 ? 0 : Infinity;
  return Math.sqrt(diff / ref);
}

/** c [m,n] = a [m,k] · b [k,n]. */
export function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p]!;
      if (aip === 0) continue;
      const bp = p * n;
      for (let j = 0; j < n; j++) c[ci + j]! += aip * b[bp + j]!;
    }
  }
  return c;
}

/** c [m,n] = aᵀ · b with a [k,m], b [k,n]. */
export function matmulTN(a: Float64Array, b: Float64Array, k: number, m: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let p = 0; p < k; p++) {
    const ap = p * m;
    const bp = p * n;
    for (let i = 0; i < m; i++) {
      const api = a[ap + i]!;
      if (api === 0) continue;
      const ci = i * n;
      for (let j = 0; j < n; j++) c[ci + j]! += api * b[bp + j]!;
    }
  }
  return c;
}

/** Transpose of a [rows, cols]. */
export function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j]!;
  return t;
}

/** The first `r` columns of a [rows, cols]. */
export function leadingColumns(a: Float64Array, rows: number, cols: number, r: number): Float64Array {
  const out = new Float64Array(rows * r);
  for (let i = 0; i < rows; i++) for (let j = 0; j < r; j++) out[i * r + j] = a[i * cols + j]!;
  return out;
}

export interface ThinSvd {
  /** [rows, k], orthonormal columns. */
  u: Float64Array;
  /** [k], descending, k = min(rows, cols). */
  s: Float64Array;
  /** [cols, k], orthonormal columns. */
  v: Float64Array;
  k: number;
}

/** Thin SVD a = u diag(s) vᵀ via ml-matrix (autoTranspose keeps wide matrices accurate). */
export function thinSvd(a: Float64Array, rows: number, cols: number): ThinSvd {
  const k = Math.min(rows, cols);
  if (sumSquares(a) === 0) {
    // ml-matrix handles zeros, but an explicit identity basis keeps the result obvious.
    const u = new Float64Array(rows * k);
    const v = new Float64Array(cols * k);
    for (let i = 0; i < k; i++) {
      u[i * k + i] = 1;
      v[i * k + i] = 1;
    }
    return { u, s: new Float64Array(k), v, k };
  }
  const svd = new SingularValueDecomposition(Matrix.from1DArray(rows, cols, a), { autoTranspose: true });
  const uM = svd.leftSingularVectors;
  const vM = svd.rightSingularVectors;
  const diag = svd.diagonal;
  const u = new Float64Array(rows * k);
  const v = new Float64Array(cols * k);
  const s = new Float64Array(k);
  for (let j = 0; j < k; j++) s[j] = Math.max(0, diag[j] ?? 0);
  for (let i = 0; i < rows; i++) for (let j = 0; j < k; j++) u[i * k + j] = uM.get(i, j);
  for (let i = 0; i < cols; i++) for (let j = 0; j < k; j++) v[i * k + j] = vM.get(i, j);
  return { u, s, v, k };
}

/** An orthonormal basis [rows, cols] of the column space of a [rows, cols] (rows ≥ cols), by Householder QR (ml-matrix). */
export function orthonormalColumns(a: Float64Array, rows: number, cols: number): Float64Array {
  const q = new QrDecomposition(Matrix.from1DArray(rows, cols, a)).orthogonalMatrix;
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[i * cols + j] = q.get(i, j);
  return out;
}

export interface SymmetricEigen {
  /** [n, n]: column j is the eigenvector of values[j]. */
  vectors: Float64Array;
  /** Descending. */
  values: Float64Array;
}

/** Eigen-decomposition of a symmetric [n, n] matrix, sorted by descending eigenvalue. */
export function symmetricEigen(g: Float64Array, n: number): SymmetricEigen {
  const evd = new EigenvalueDecomposition(Matrix.from1DArray(n, n, g), { assumeSymmetric: true });
  const raw = evd.realEigenvalues;
  const vm = evd.eigenvectorMatrix;
  const order = raw.map((_, i) => i).sort((a, b) => raw[b]! - raw[a]!);
  const vectors = new Float64Array(n * n);
  const values = new Float64Array(n);
  order.forEach((src, dst) => {
    values[dst] = raw[src]!;
    for (let i = 0; i < n; i++) vectors[i * n + dst] = vm.get(i, src);
  });
  return { vectors, values };
}

/**
 * x [rows, R] = m (g + λI)⁻¹ for a symmetric PSD g [R, R]: the ridge-regularised normal
 * equations of ALS. λ = ridge · mean(diag g), so the ridge scales with the data.
 */
export function solveRidge(m: Float64Array, g: Float64Array, rows: number, r: number, ridge: number): Float64Array {
  let trace = 0;
  for (let i = 0; i < r; i++) trace += g[i * r + i]!;
  let lambda = Math.max(ridge * (trace / r), Number.MIN_VALUE);
  const rhs = Matrix.from1DArray(r, rows, transpose(m, rows, r));
  // A tiny ridge can still lose positive definiteness to rounding; grow it until Cholesky works.
  for (let attempt = 0; attempt < 12; attempt++) {
    const reg = Float64Array.from(g);
    for (let i = 0; i < r; i++) reg[i * r + i]! += lambda;
    const chol = new CholeskyDecomposition(Matrix.from1DArray(r, r, reg));
    if (chol.isPositiveDefinite()) {
      const sol = chol.solve(rhs);
      const x = new Float64Array(rows * r);
      for (let i = 0; i < rows; i++) for (let j = 0; j < r; j++) x[i * r + j] = sol.get(j, i);
      return x;
    }
    lambda = Math.max(lambda * 100, 1e-300);
  }
  return new Float64Array(rows * r);
}
