// What the decoupling fits: at N sample inputs u_k, the function values f(u_k) and the Jacobians
// ∂f/∂u at u_k. For a dense → activation → dense pair f(u) = W2 σ(W1 u + b1) + b2 the Jacobian is
// analytic, J_k = W2 diag(σ′(W1 u_k + b1)) W1, so no autodiff engine is needed.
//
// Wide inputs (m = 784 for an image) are projected to the p leading principal directions P [m, p]
// of the sample inputs: the fit then sees x_k = Pᵀu_k and J_k P. Why: the data only moves u inside
// that span, so the Jacobian along the other directions says how f behaves where no input ever
// goes; fitting it would cost n·m·N storage and m·r unknowns for V with no gain on the data, and
// would spend the few branches on directions that do not matter. A V found in the projected space
// lifts back exactly (V = P Ṽ gives the same z = Vᵀu), so the stored layer still reads u.
// The directions come from a randomized range finder when p is well below m (principalDirections).
// The Jacobians are analytic and cost one pass over the samples, so no autodiff engine is needed.
import { matmul, matmulTN, orthonormalColumns, sumSquares, symmetricEigen, thinSvd } from '../linalg.js';
import { mulberry32, normalSource, randomNormal } from '../prng.js';

export interface DecoupleSamples {
  /** N */
  count: number;
  /** m, the width of x (p after a projection). */
  inputs: number;
  /** n */
  outputs: number;
  /** [N, m] */
  x: Float64Array;
  /** [N, n], f(u_k) (not centred). */
  values: Float64Array;
  /** [N, n, m], J(k, i, j) = ∂f_i/∂x_j at x_k. */
  jacobians: Float64Array;
}

export type PairActivation = 'relu' | 'tanh' | 'sigmoid' | 'identity';

/** A dense → activation → dense pair, weights in PyTorch's Linear layout [out, in]. */
export interface DenseActPair {
  inputs: number;
  hidden: number;
  outputs: number;
  /** [hidden, inputs] */
  w1: ArrayLike<number>;
  /** [hidden] */
  b1: ArrayLike<number>;
  /** [outputs, hidden] */
  w2: ArrayLike<number>;
  /** [outputs] */
  b2: ArrayLike<number>;
  activation: PairActivation;
}

function activate(act: PairActivation, a: number): { y: number; dy: number } {
  switch (act) {
    case 'relu':
      return a > 0 ? { y: a, dy: 1 } : { y: 0, dy: 0 };
    case 'tanh': {
      const y = Math.tanh(a);
      return { y, dy: 1 - y * y };
    }
    case 'sigmoid': {
      const y = 1 / (1 + Math.exp(-a));
      return { y, dy: y * (1 - y) };
    }
    case 'identity':
      return { y: a, dy: 1 };
  }
}

/**
 * Values and Jacobians of the pair at the N rows of u [N, inputs]. With `projection` P [inputs, p]
 * the samples are expressed in the projected coordinates: x = u P and J_k P.
 */
export function denseActSamples(pair: DenseActPair, u: ArrayLike<number>, count: number, projection?: { p: number; basis: Float64Array }): DecoupleSamples {
  const { inputs: m, hidden: h, outputs: n } = pair;
  if (u.length !== count * m) throw new Error(`denseActSamples: u has ${u.length} values, expected ${count}×${m}`);
  const w1 = Float64Array.from(pair.w1);
  const p = projection ? projection.p : m;
  // W1 P [h, p]: the Jacobian's input side, projected once for all samples.
  const w1p = projection ? matmul(w1, projection.basis, h, m, p) : w1;
  const values = new Float64Array(count * n);
  const jacobians = new Float64Array(count * n * p);
  const slope = new Float64Array(h);
  const y = new Float64Array(h);
  for (let k = 0; k < count; k++) {
    for (let q = 0; q < h; q++) {
      let a = pair.b1[q]!;
      for (let j = 0; j < m; j++) a += w1[q * m + j]! * u[k * m + j]!;
      const s = activate(pair.activation, a);
      y[q] = s.y;
      slope[q] = s.dy;
    }
    for (let i = 0; i < n; i++) {
      let f = pair.b2[i]!;
      const jo = (k * n + i) * p;
      for (let q = 0; q < h; q++) {
        const w = pair.w2[i * h + q]!;
        f += w * y[q]!;
        const ws = w * slope[q]!;
        if (ws === 0) continue;
        for (let j = 0; j < p; j++) jacobians[jo + j]! += ws * w1p[q * p + j]!;
      }
      values[k * n + i] = f;
    }
  }
  const x = projection ? matmul(Float64Array.from(u), projection.basis, count, m, p) : Float64Array.from(u);
  return { count, inputs: p, outputs: n, x, values, jacobians };
}

export interface PrincipalDirections {
  p: number;
  /** [m, p], orthonormal columns, by descending variance. */
  basis: Float64Array;
  /** Share of the inputs' (centred) variance the p directions hold. */
  energy: number;
}

export interface PrincipalOptions {
  /**
   * 'exact': eigenvectors of the m×m covariance (m²N for the covariance, then an m×m
   * eigen-decomposition: 7 of a 35 s FC-2 fit at m = 784). 'randomized': a randomized range finder
   * (Halko, Martinsson and Tropp 2011, algorithm 4.4): the centred inputs C [N, m] times a Gaussian
   * [m, l = p + oversample], `powerIters` = q rounds of Cᵀ and C with re-orthonormalisation, then the SVD of
   * the small Qᵀ C; about (2q + 2) N m l operations and no m×m matrix. The error of the subspace
   * falls as (σ_(l+1) / σ_p)^(2q+1). Fashion-MNIST's spectrum decays slowly around p = 64, hence the
   * generous defaults (l = 96, q = 4 there: 3.5e-5 of the variance short of the exact directions,
   * at half the exact path's time). 'auto' (default): randomized when l ≤ m / 2, exact otherwise. A randomized result whose p-th singular value is
   * (numerically) zero falls back to exact, which completes a rank-deficient basis properly.
   */
  method?: 'exact' | 'randomized' | 'auto';
  /** Extra random columns beyond p. Default max(10, ⌈p/2⌉). */
  oversample?: number;
  /** Power iterations. Default 4. */
  powerIters?: number;
  /** Seed of the Gaussian test matrix. Default 0. */
  seed?: number;
}

function centredRows(u: ArrayLike<number>, count: number, m: number): Float64Array {
  const c = Float64Array.from(u);
  for (let j = 0; j < m; j++) {
    let mean = 0;
    for (let i = 0; i < count; i++) mean += c[i * m + j]!;
    mean /= count;
    for (let i = 0; i < count; i++) c[i * m + j]! -= mean;
  }
  return c;
}

/** The p leading principal directions of the rows of u [N, m] (eigenvectors of the covariance). */
export function principalDirections(u: ArrayLike<number>, count: number, m: number, p: number, opts: PrincipalOptions = {}): PrincipalDirections {
  const k = Math.max(1, Math.min(m, Math.floor(p)));
  const l = Math.min(m, count, k + Math.max(0, Math.floor(opts.oversample ?? Math.max(10, Math.ceil(k / 2)))));
  const method = opts.method ?? 'auto';
  const c = centredRows(u, count, m);
  if (method === 'randomized' || (method === 'auto' && 2 * l <= m && l <= count)) {
    const fast = randomizedDirections(c, count, m, k, l, Math.max(0, Math.floor(opts.powerIters ?? 4)), opts.seed ?? 0);
    if (fast) return fast;
  }
  const cov = matmulTN(c, c, count, m, m);
  const eig = symmetricEigen(cov, m);
  const basis = new Float64Array(m * k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) basis[i * k + j] = eig.vectors[i * m + j]!;
  let total = 0;
  let kept = 0;
  eig.values.forEach((v, j) => {
    const pos = Math.max(0, v);
    total += pos;
    if (j < k) kept += pos;
  });
  return { p: k, basis, energy: total > 0 ? kept / total : 1 };
}

/** The range finder on the centred c [N, m] with l ≥ k columns; null when it finds fewer than k directions. */
function randomizedDirections(c: Float64Array, count: number, m: number, k: number, l: number, powerIters: number, seed: number): PrincipalDirections | null {
  if (l < k) return null;
  const omega = randomNormal(normalSource(mulberry32(seed)), m * l);
  let q = orthonormalColumns(matmul(c, omega, count, m, l), count, l);
  for (let it = 0; it < powerIters; it++) {
    const side = orthonormalColumns(matmulTN(c, q, count, m, l), m, l);
    q = orthonormalColumns(matmul(c, side, count, m, l), count, l);
  }
  // C ≈ Q (Qᵀ C); the right singular vectors of the small l×m Qᵀ C are the directions.
  const svd = thinSvd(matmulTN(q, c, count, l, m), l, m);
  const s = svd.s;
  if (!(s[k - 1]! > 1e-10 * s[0]!)) return null;
  const basis = new Float64Array(m * k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) basis[i * k + j] = svd.v[i * svd.k + j]!;
  let kept = 0;
  for (let j = 0; j < k; j++) kept += s[j]! ** 2;
  const total = sumSquares(c);
  return { p: k, basis, energy: total > 0 ? Math.min(1, kept / total) : 1 };
}
