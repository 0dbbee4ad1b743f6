// The branch step of a flexact layer, trainable: y[..., b] = g_b(z[..., b]) with
// g_b(z) = Σ_{d=1..D} c[b, d−1] z^d, continued along its tangent outside range[b] = [lo, hi]
// (a constant: fine-tuning keeps the range the fit measured). Same definition as
// runtime/layers/flexact.ts flexactBranches.
//   ∂y/∂z   = g′(e)                               e = clamp(z, lo, hi)
//   ∂y/∂c_d = e^d + d e^(d−1) (z − e)            (the second term only outside the range)
import { splineBasis } from '../../../runtime/layers/flexactSpline.js';
import { gradOf, result, type Var } from '../tensor.js';

export function branchPolynomial(z: Var, coeffs: Var, range?: Float32Array): Var {
  if (coeffs.shape.length !== 2) throw new Error(`train: branch coefficients must be [r, D], got [${coeffs.shape}]`);
  const [r, D] = coeffs.shape as [number, number];
  if (z.shape[z.shape.length - 1] !== r) throw new Error(`train: branch input [${z.shape}] does not end in ${r}`);
  if (range && range.length !== 2 * r) throw new Error(`train: branch range has ${range.length} values, needs ${2 * r}`);
  const zd = z.data;
  const c = coeffs.data;
  const n = z.size;
  const out = new Float32Array(n);
  const clampAt = (i: number): number => {
    const zi = zd[i]!;
    if (!range) return zi;
    const b = i % r;
    const lo = range[2 * b]!;
    const hi = range[2 * b + 1]!;
    return zi < lo ? lo : zi > hi ? hi : zi;
  };
  const slopeAt = (b: number, e: number): number => {
    let s = 0;
    for (let d = D - 1; d >= 0; d--) s = s * e + (d + 1) * c[b * D + d]!;
    return s;
  };
  for (let i = 0; i < n; i++) {
    const b = i % r;
    const e = clampAt(i);
    let acc = 0;
    for (let d = D - 1; d >= 0; d--) acc = acc * e + c[b * D + d]!;
    let g = acc * e;
    if (e !== zd[i]!) g += slopeAt(b, e) * (zd[i]! - e);
    out[i] = g;
  }
  return result(out, z.shape, [z, coeffs], (g) => {
    const gz = gradOf(z);
    const gc = gradOf(coeffs);
    for (let i = 0; i < n; i++) {
      const gi = g[i]!;
      if (gi === 0) continue;
      const b = i % r;
      const e = clampAt(i);
      if (gz) gz[i]! += gi * slopeAt(b, e);
      if (gc) {
        const dz = zd[i]! - e;
        let p = 1; // e^(d-1)
        for (let d = 1; d <= D; d++) {
          gc[b * D + d - 1]! += gi * (p * e + (dz !== 0 ? d * p * dz : 0));
          p *= e;
        }
      }
    }
  });
}

/**
 * The B-spline branch step, trainable: y[..., b] = Σ_i c[b, i] N_i(e) + g′(e)(z − e), e = clamp(z)
 * into range[b], the K cubic B-splines N_i on uniform clamped knots over range[b] (runtime/layers/
 * flexactSpline.ts; the range is required and stays constant).
 *   ∂y/∂z   = g′(e)                 ∂y/∂c_i = N_i(e) + N_i′(e)(z − e)
 */
export function branchSpline(z: Var, coeffs: Var, range: Float32Array): Var {
  if (coeffs.shape.length !== 2) throw new Error(`train: branch coefficients must be [r, K], got [${coeffs.shape}]`);
  const [r, K] = coeffs.shape as [number, number];
  if (z.shape[z.shape.length - 1] !== r) throw new Error(`train: branch input [${z.shape}] does not end in ${r}`);
  if (range.length !== 2 * r) throw new Error(`train: branch range has ${range.length} values, needs ${2 * r}`);
  const zd = z.data;
  const n = z.size;
  const out = new Float32Array(n);
  // Per element: the first of its four B-splines, their values and derivatives at e, and z − e.
  const first = new Int32Array(n);
  const nv = new Float64Array(4 * n);
  const dv = new Float64Array(4 * n);
  const slope = new Float64Array(n);
  const n4 = new Float64Array(4);
  const d4 = new Float64Array(4);
  const c = coeffs.data;
  for (let i = 0; i < n; i++) {
    const b = i % r;
    const lo = range[2 * b]!;
    const hi = range[2 * b + 1]!;
    const zi = zd[i]!;
    const e = zi < lo ? lo : zi > hi ? hi : zi;
    const f = splineBasis(e, lo, hi, K, n4, d4);
    first[i] = f;
    let g = 0;
    let s = 0;
    for (let k = 0; k < 4 && f + k < K; k++) {
      nv[4 * i + k] = n4[k]!;
      dv[4 * i + k] = d4[k]!;
      g += c[b * K + f + k]! * n4[k]!;
      s += c[b * K + f + k]! * d4[k]!;
    }
    slope[i] = s;
    out[i] = g + s * (zi - e);
  }
  return result(out, z.shape, [z, coeffs], (g) => {
    const gz = gradOf(z);
    const gc = gradOf(coeffs);
    for (let i = 0; i < n; i++) {
      const gi = g[i]!;
      if (gi === 0) continue;
      if (gz) gz[i]! += gi * slope[i]!;
      if (gc) {
        const b = i % r;
        const lo = range[2 * b]!;
        const hi = range[2 * b + 1]!;
        const zi = zd[i]!;
        const dz = zi - (zi < lo ? lo : zi > hi ? hi : zi);
        const f = first[i]!;
        for (let k = 0; k < 4 && f + k < K; k++) gc[b * K + f + k]! += gi * (nv[4 * i + k]! + dv[4 * i + k]! * dz);
      }
    }
  });
}
