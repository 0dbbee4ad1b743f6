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
import { matmul, matmulTN, symmetricEigen } from '../linalg.js';

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

/** The p leading principal directions of the rows of u [N, m] (eigenvectors of the covariance). */
export function principalDirections(u: ArrayLike<number>, count: number, m: number, p: number): PrincipalDirections {
  const k = Math.max(1, Math.min(m, Math.floor(p)));
  const c = Float64Array.from(u);
  for (let j = 0; j < m; j++) {
    let mean = 0;
    for (let i = 0; i < count; i++) mean += c[i * m + j]!;
    mean /= count;
    for (let i = 0; i < count; i++) c[i * m + j]! -= mean;
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
