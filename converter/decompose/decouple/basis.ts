// The per-branch activation g_r(z) = Σ_d c_rd φ_d(z) of a decoupled function, in one of two bases:
// - 'poly': φ_d(z) = z^d for d = 1..D. The constant term is left out because it cannot be told
//   apart from the output bias c. The solver scales each v_r so that z = v_rᵀu has RMS 1 on the
//   samples, which keeps the monomials well conditioned up to the degrees used here (D ≤ 8 or so).
// - 'bspline': φ_i = N_i, D ≥ 4 cubic B-splines on uniform clamped knots over the branch's range
//   [lo, hi] on the samples (runtime/layers/flexactSpline.ts). They sum to one, so a constant
//   shift of a branch's coefficients is free (the bias takes it); the solver's ridge settles it.
//   Local support: a knot's coefficients only move g near it, where monomials move it everywhere.
import { splineBasis, splineValue } from '../../../runtime/layers/flexactSpline.js';

export type DecoupleBasis = 'poly' | 'bspline';

const n4 = new Float64Array(4);
const dn4 = new Float64Array(4);

/** φ_d(z) and φ_d′(z) for d < D into phi[off..off+D) and dPhi[off..off+D); [lo, hi] places the B-spline knots. */
export function basisRow(basis: DecoupleBasis, z: number, D: number, lo: number, hi: number, phi: Float64Array, dPhi: Float64Array, off: number): void {
  if (basis === 'bspline') {
    for (let d = 0; d < D; d++) {
      phi[off + d] = 0;
      dPhi[off + d] = 0;
    }
    const first = splineBasis(z, lo, hi, D, n4, dn4);
    for (let k = 0; k < 4 && first + k < D; k++) {
      phi[off + first + k] = n4[k]!;
      dPhi[off + first + k] = dn4[k]!;
    }
    return;
  }
  let p = 1;
  for (let d = 0; d < D; d++) {
    dPhi[off + d] = (d + 1) * p;
    p *= z;
    phi[off + d] = p;
  }
}

/** g(z) = Σ_d coeffs[d] φ_d(z) (a B-spline is read at z clamped into [lo, hi]). */
export function branchValue(basis: DecoupleBasis, coeffs: ArrayLike<number>, offset: number, degree: number, z: number, lo = 0, hi = 0): number {
  if (basis === 'bspline') return splineValue(coeffs, offset, degree, lo, hi, z, n4, dn4).g;
  let acc = 0;
  for (let d = degree - 1; d >= 0; d--) acc = acc * z + coeffs[offset + d]!;
  return acc * z;
}

/** g′(z) = Σ_d coeffs[d] φ_d′(z). */
export function branchDerivative(basis: DecoupleBasis, coeffs: ArrayLike<number>, offset: number, degree: number, z: number, lo = 0, hi = 0): number {
  if (basis === 'bspline') return splineValue(coeffs, offset, degree, lo, hi, z, n4, dn4).slope;
  let acc = 0;
  for (let d = degree - 1; d >= 0; d--) acc = acc * z + (d + 1) * coeffs[offset + d]!;
  return acc;
}

/**
 * g with a linear extension outside [lo, hi] (the range z took on the samples): the value and
 * slope at the nearer end, then a straight line. A polynomial fitted on the samples swings far off
 * beyond them (a degree-7 fit of a tanh pair: median error 2 %, worst of 2,000 fresh inputs 8×
 * the output scale); the line keeps an unbounded activation unbounded and a saturating one tame.
 */
export function extendedValue(basis: DecoupleBasis, coeffs: ArrayLike<number>, offset: number, degree: number, z: number, lo: number, hi: number): number {
  const c = z < lo ? lo : z > hi ? hi : z;
  const g = branchValue(basis, coeffs, offset, degree, c, lo, hi);
  return c === z ? g : g + branchDerivative(basis, coeffs, offset, degree, c, lo, hi) * (z - c);
}

/** The derivative of extendedValue: g′ inside [lo, hi], the end's slope outside. */
export function extendedDerivative(basis: DecoupleBasis, coeffs: ArrayLike<number>, offset: number, degree: number, z: number, lo: number, hi: number): number {
  return branchDerivative(basis, coeffs, offset, degree, z < lo ? lo : z > hi ? hi : z, lo, hi);
}
