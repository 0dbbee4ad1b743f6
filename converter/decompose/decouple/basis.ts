// The per-branch activation g_r(z) = Σ_d c_rd φ_d(z) of a decoupled function. The polynomial basis
// is φ_d(z) = z^d for d = 1..D: the constant term is left out because it cannot be told apart from
// the output bias c. The solver scales each v_r so that z = v_rᵀu has RMS 1 on the samples, which
// keeps the monomials well conditioned up to the degrees used here (D ≤ 8 or so).

export type DecoupleBasis = 'poly';

/** φ_d(z) for d = 1..degree into out[0..degree). */
export function basisValues(z: number, degree: number, out: Float64Array, offset = 0): void {
  let p = z;
  for (let d = 0; d < degree; d++) {
    out[offset + d] = p;
    p *= z;
  }
}

/** φ_d′(z) = d z^(d−1) for d = 1..degree into out[0..degree). */
export function basisDerivatives(z: number, degree: number, out: Float64Array, offset = 0): void {
  let p = 1;
  for (let d = 0; d < degree; d++) {
    out[offset + d] = (d + 1) * p;
    p *= z;
  }
}

/** g(z) = Σ_d coeffs[d] z^(d+1), by Horner. */
export function branchValue(coeffs: ArrayLike<number>, offset: number, degree: number, z: number): number {
  let acc = 0;
  for (let d = degree - 1; d >= 0; d--) acc = acc * z + coeffs[offset + d]!;
  return acc * z;
}

/** g′(z) = Σ_d (d+1) coeffs[d] z^d, by Horner. */
export function branchDerivative(coeffs: ArrayLike<number>, offset: number, degree: number, z: number): number {
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
export function extendedValue(coeffs: ArrayLike<number>, offset: number, degree: number, z: number, lo: number, hi: number): number {
  const c = z < lo ? lo : z > hi ? hi : z;
  const g = branchValue(coeffs, offset, degree, c);
  return c === z ? g : g + branchDerivative(coeffs, offset, degree, c) * (z - c);
}

/** The derivative of extendedValue: g′ inside [lo, hi], the end's slope outside. */
export function extendedDerivative(coeffs: ArrayLike<number>, offset: number, degree: number, z: number, lo: number, hi: number): number {
  return branchDerivative(coeffs, offset, degree, z < lo ? lo : z > hi ? hi : z);
}
