// The B-spline branch basis of a flexact layer (basis 'bspline'): K cubic B-splines on a clamped,
// uniform knot vector over the branch's range [lo, hi] (so the knots are implied by the stored
// range and K, nothing else is stored):
//   M = K − 3 intervals of width h = (hi − lo) / M;  knot t_j = lo + clamp(j − 3, 0, M)·h, j = 0..K+3
//   g(z) = Σ_{i<K} c_i N_i(z) on [lo, hi]  (c_0 = g(lo), c_{K−1} = g(hi): the knots are clamped)
// Outside the range the layer continues g along its tangent, as for polynomials.
// N_i come from the Cox–de Boor triangle (four are non-zero at any z); derivatives from the
// degree-2 row of the same triangle.

/** Cubic: the degree of every B-spline branch. */
export const SPLINE_DEGREE = 3;
/** Fewest B-splines a branch may have (K ≥ degree + 1). */
export const SPLINE_MIN_SIZE = SPLINE_DEGREE + 1;

/**
 * The four non-zero B-splines at x ∈ [lo, hi] (clamped into it) and their derivatives: writes
 * n[0..4), dn[0..4) for N_{first..first+3} and returns `first`. A range of zero width (a branch z
 * never moved) makes g the constant c_0.
 */
export function splineBasis(x: number, lo: number, hi: number, K: number, n: Float64Array, dn: Float64Array): number {
  const M = K - SPLINE_DEGREE;
  if (!(hi > lo)) {
    n.fill(0);
    dn.fill(0);
    n[0] = 1;
    return 0;
  }
  const h = (hi - lo) / M;
  const knot = (j: number): number => lo + Math.min(Math.max(j - SPLINE_DEGREE, 0), M) * h;
  const xc = x < lo ? lo : x > hi ? hi : x;
  // Span s with t_s ≤ x < t_{s+1}, s in [3, K − 1] (x = hi falls in the last interval).
  const s = SPLINE_DEGREE + Math.min(Math.max(Math.floor((xc - lo) / h), 0), M - 1);
  // Cox–de Boor (The NURBS Book, A2.2), keeping the degree-2 row for the derivatives.
  const left = [0, 0, 0, 0];
  const right = [0, 0, 0, 0];
  const N = [1, 0, 0, 0];
  const N2 = [0, 0, 0];
  for (let j = 1; j <= SPLINE_DEGREE; j++) {
    left[j] = xc - knot(s + 1 - j);
    right[j] = knot(s + j) - xc;
    let saved = 0;
    for (let r = 0; r < j; r++) {
      const temp = N[r]! / (right[r + 1]! + left[j - r]!);
      N[r] = saved + right[r + 1]! * temp;
      saved = left[j - r]! * temp;
    }
    N[j] = saved;
    if (j === SPLINE_DEGREE - 1) for (let r = 0; r < SPLINE_DEGREE; r++) N2[r] = N[r]!;
  }
  // N'_{i,3} = 3 (N_{i,2} / (t_{i+3} − t_i) − N_{i+1,2} / (t_{i+4} − t_{i+1})); N2[k] is N_{s−2+k,2}.
  const first = s - SPLINE_DEGREE;
  for (let k = 0; k <= SPLINE_DEGREE; k++) {
    const i = first + k;
    const a = k >= 1 ? N2[k - 1]! / (knot(i + 3) - knot(i)) : 0;
    const b = k <= SPLINE_DEGREE - 1 ? N2[k]! / (knot(i + 4) - knot(i + 1)) : 0;
    n[k] = N[k]!;
    dn[k] = SPLINE_DEGREE * (a - b);
  }
  return first;
}

/** g(x) and g′(x) of one branch (coefficients coeffs[off..off+K)), x clamped into [lo, hi]. */
export function splineValue(coeffs: ArrayLike<number>, off: number, K: number, lo: number, hi: number, x: number, n: Float64Array, dn: Float64Array): { g: number; slope: number } {
  const first = splineBasis(x, lo, hi, K, n, dn);
  let g = 0;
  let slope = 0;
  for (let k = 0; k <= SPLINE_DEGREE && first + k < K; k++) {
    const c = coeffs[off + first + k]!;
    g += c * n[k]!;
    slope += c * dn[k]!;
  }
  return { g, slope };
}
