// Decoupling a multivariate function by constrained ALS on its Jacobians and values:
//   f(x) ≈ W g(Vᵀx) + c,   V [m, r], W [n, r], g_r(z) = Σ_d c_rd φ_d(z)   (basis.ts)
// cost  ‖J − [[W, V, H]]‖² / ‖J‖²  +  λ ‖F − W Gᵀ‖² / ‖F‖²      (F and G centred over the samples)
// with H(k, r) = g_r′(z_kr), G(k, r) = g_r(z_kr), z = x V. One sweep:
//   coefficients  all r·D coefficients at once by linear least squares in both terms, given W, V
//                 (exact: the cost is linear in them), so H and G are the derivative and value of
//                 one function per branch;
//   W             from the stacked system of both terms;
//   V             from the Jacobian's mode-2 unfolding, then each v_r rescaled to RMS(z_r) = 1
//                 (the next coefficient step absorbs the scale).
// The V step ignores how H and G move with V, so a sweep need not lower the cost: the best
// iterate is kept. Restart 0 starts from a plain CP of the Jacobian tensor, the others at random.
import { cpAls } from '../cpAls.js';
import { matmulTN, solveRidge, sumSquares, symmetricEigen } from '../linalg.js';
import { mulberry32, normalSource, randomNormal } from '../prng.js';
import { basisRow, branchDerivative, branchValue, extendedDerivative, extendedValue, type DecoupleBasis } from './basis.js';
import type { DecoupleSamples } from './samples.js';
import { SPLINE_MIN_SIZE } from '../../../runtime/layers/flexactSpline.js';

export interface DecoupleOptions {
  /** The branch basis (basis.ts). Default 'poly'. */
  basis?: DecoupleBasis;
  /** Size D of each branch's basis: the polynomial degree, or the number of B-splines (≥ 4). Default 3 (poly), 8 (bspline). */
  degree?: number;
  /** λ, the weight of the (relative) value term against the (relative) Jacobian term. Default 1. */
  valueWeight?: number;
  /** Fits to run: the first from a CP of the Jacobians, the rest from random W, V. Default 3. */
  restarts?: number;
  /** Maximum sweeps per restart. Default 300. */
  iters?: number;
  /** Stop a restart when a sweep changes the cost by less than this (relative). Default 1e-12. */
  tol?: number;
  /** Tikhonov weight relative to the mean diagonal of each normal matrix. Default 1e-12. */
  ridge?: number;
  seed?: number;
  /**
   * How restart 0 starts: 'cp', a plain CP of the Jacobian tensor (exact on a decoupled function,
   * but 200 CP-ALS iterations over all of J), or 'directions', V from the leading eigenvectors of
   * Σ_k J_kᵀJ_k (the input directions f is most sensitive to) with identity branches and W fitted
   * to them: one pass over J, which a large layer needs. Default 'cp'.
   */
  start?: 'cp' | 'directions';
  /**
   * Warm restarts: restarts after the first start from the best state found so far, each column of
   * its V and W moved by Gaussian noise of this size relative to the column's norm, instead of from
   * random W, V. A sweep need not lower the cost (the V step ignores how H and G move with V), so
   * a fit tends to peak early and drift; a nudge from its best point searches near it rather than
   * from scratch. Default: none (random restarts).
   */
  warm?: number;
}

/** f̂(x) = W g(Vᵀx) + bias, in the samples' coordinates. */
export interface DecoupledFunction {
  inputs: number;
  outputs: number;
  branches: number;
  basis: DecoupleBasis;
  degree: number;
  /** [m, r] */
  v: Float64Array;
  /** [r, D]: coeffs[r·D + d] multiplies φ_(d+1). */
  coeffs: Float64Array;
  /** [n, r] */
  w: Float64Array;
  /** [n] */
  bias: Float64Array;
  /** [r, 2]: the range [lo, hi] of z_r on the samples; g_r continues linearly outside it. */
  range: Float64Array;
}

export interface EvaluateOptions {
  /** Continue each g_r linearly outside its range (as the flexact layer does). Default true. */
  extend?: boolean;
}

export interface DecoupleResult {
  fn: DecoupledFunction;
  /** ‖J − Ĵ‖ / ‖J‖ on the samples. */
  jacobianError: number;
  /** ‖F − F̂‖ / ‖F − mean F‖ on the samples (the mean is free through the bias). */
  valueError: number;
  /** Best cost reached by each restart, in order. */
  restartCosts: number[];
  /** Sweeps run by the restart that won. */
  sweeps: number;
}

interface State {
  v: Float64Array;
  w: Float64Array;
  coeffs: Float64Array;
}

/** f̂ at the rows of x [count, m]: [count, n]. */
export function evaluateDecoupled(fn: DecoupledFunction, x: ArrayLike<number>, count: number, opts: EvaluateOptions = {}): Float64Array {
  const { inputs: m, outputs: n, branches: r, degree: D } = fn;
  const extend = opts.extend ?? true;
  const out = new Float64Array(count * n);
  const g = new Float64Array(r);
  for (let k = 0; k < count; k++) {
    for (let b = 0; b < r; b++) {
      let z = 0;
      for (let j = 0; j < m; j++) z += x[k * m + j]! * fn.v[j * r + b]!;
      const lo = fn.range[2 * b]!, hi = fn.range[2 * b + 1]!;
      g[b] = extend ? extendedValue(fn.basis, fn.coeffs, b * D, D, z, lo, hi) : branchValue(fn.basis, fn.coeffs, b * D, D, z, lo, hi);
    }
    for (let i = 0; i < n; i++) {
      let y = fn.bias[i]!;
      for (let b = 0; b < r; b++) y += fn.w[i * r + b]! * g[b]!;
      out[k * n + i] = y;
    }
  }
  return out;
}

/** ∂f̂/∂x at the rows of x: [count, n, m]. */
export function jacobianDecoupled(fn: DecoupledFunction, x: ArrayLike<number>, count: number, opts: EvaluateOptions = {}): Float64Array {
  const { inputs: m, outputs: n, branches: r, degree: D } = fn;
  const extend = opts.extend ?? true;
  const out = new Float64Array(count * n * m);
  for (let k = 0; k < count; k++)
    for (let b = 0; b < r; b++) {
      let z = 0;
      for (let j = 0; j < m; j++) z += x[k * m + j]! * fn.v[j * r + b]!;
      const lo = fn.range[2 * b]!, hi = fn.range[2 * b + 1]!;
      const h = extend ? extendedDerivative(fn.basis, fn.coeffs, b * D, D, z, lo, hi) : branchDerivative(fn.basis, fn.coeffs, b * D, D, z, lo, hi);
      for (let i = 0; i < n; i++) {
        const s = h * fn.w[i * r + b]!;
        const o = (k * n + i) * m;
        for (let j = 0; j < m; j++) out[o + j]! += s * fn.v[j * r + b]!;
      }
    }
  return out;
}

const dotOut = { buf: new Float64Array(0) };

/** [r]: the dot products of a[ao, ao + len) with each row of b [r, len], in four partial sums. */
function dotRows(a: Float64Array, ao: number, b: Float64Array, len: number, r: number): Float64Array {
  if (dotOut.buf.length !== r) dotOut.buf = new Float64Array(r);
  const out = dotOut.buf;
  for (let c = 0; c < r; c++) {
    const bo = c * len;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    let j = 0;
    for (; j + 3 < len; j += 4) {
      s0 += a[ao + j]! * b[bo + j]!;
      s1 += a[ao + j + 1]! * b[bo + j + 1]!;
      s2 += a[ao + j + 2]! * b[bo + j + 2]!;
      s3 += a[ao + j + 3]! * b[bo + j + 3]!;
    }
    for (; j < len; j++) s0 += a[ao + j]! * b[bo + j]!;
    out[c] = s0 + s1 + (s2 + s3);
  }
  return out;
}

class Problem {
  readonly N: number;
  readonly m: number;
  readonly n: number;
  readonly r: number;
  readonly D: number;
  readonly fc: Float64Array;
  readonly meanF: Float64Array;
  readonly jNormSq: number;
  readonly fNormSq: number;
  /** μ = λ ‖J‖² / ‖Fc‖²: the weight that makes both terms relative. */
  readonly mu: number;

  constructor(readonly s: DecoupleSamples, readonly basis: DecoupleBasis, r: number, D: number, lambda: number, readonly ridge: number) {
    this.N = s.count;
    this.m = s.inputs;
    this.n = s.outputs;
    this.r = r;
    this.D = D;
    const { N, n } = this;
    this.meanF = new Float64Array(n);
    for (let k = 0; k < N; k++) for (let i = 0; i < n; i++) this.meanF[i]! += s.values[k * n + i]! / N;
    this.fc = new Float64Array(N * n);
    for (let k = 0; k < N; k++) for (let i = 0; i < n; i++) this.fc[k * n + i] = s.values[k * n + i]! - this.meanF[i]!;
    this.jNormSq = sumSquares(s.jacobians);
    this.fNormSq = sumSquares(this.fc);
    this.mu = this.fNormSq > 0 && this.jNormSq > 0 ? (lambda * this.jNormSq) / this.fNormSq : lambda;
  }

  /** z = x V [N, r]. */
  projections(v: Float64Array): Float64Array {
    const { N, m, r } = this;
    const z = new Float64Array(N * r);
    for (let k = 0; k < N; k++)
      for (let j = 0; j < m; j++) {
        const xj = this.s.x[k * m + j]!;
        if (xj === 0) continue;
        for (let b = 0; b < r; b++) z[k * r + b]! += xj * v[j * r + b]!;
      }
    return z;
  }

  /** Rescale each v_r so that z_r has RMS 1 (a zero column stays zero). */
  normalise(v: Float64Array): void {
    const { N, m, r } = this;
    if (this.jvCache?.v === v) this.jvCache = null;
    const z = this.projections(v);
    for (let b = 0; b < r; b++) {
      let ss = 0;
      for (let k = 0; k < N; k++) ss += z[k * r + b]! ** 2;
      const rms = Math.sqrt(ss / N);
      if (rms > 0) for (let j = 0; j < m; j++) v[j * r + b]! /= rms;
    }
  }

  /** [r, 2]: the range [lo, hi] of each column of z [N, r] (where the B-spline knots go). */
  ranges(z: Float64Array): Float64Array {
    const { N, r } = this;
    const range = new Float64Array(2 * r);
    for (let b = 0; b < r; b++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let k = 0; k < N; k++) {
        lo = Math.min(lo, z[k * r + b]!);
        hi = Math.max(hi, z[k * r + b]!);
      }
      range[2 * b] = Number.isFinite(lo) ? lo : 0;
      range[2 * b + 1] = Number.isFinite(hi) ? hi : 0;
    }
    return range;
  }

  /** H [N, r] and centred G [N, r], plus the column means of G, for the given coefficients (fitted at this z). */
  branches(z: Float64Array, coeffs: Float64Array): { h: Float64Array; g: Float64Array; meanG: Float64Array } {
    const { N, r, D, basis } = this;
    const range = this.ranges(z);
    const h = new Float64Array(N * r);
    const g = new Float64Array(N * r);
    const meanG = new Float64Array(r);
    for (let k = 0; k < N; k++)
      for (let b = 0; b < r; b++) {
        const zz = z[k * r + b]!;
        const lo = range[2 * b]!, hi = range[2 * b + 1]!;
        h[k * r + b] = branchDerivative(basis, coeffs, b * D, D, zz, lo, hi);
        const gv = branchValue(basis, coeffs, b * D, D, zz, lo, hi);
        g[k * r + b] = gv;
        meanG[b]! += gv / N;
      }
    for (let k = 0; k < N; k++) for (let b = 0; b < r; b++) g[k * r + b]! -= meanG[b]!;
    return { h, g, meanG };
  }

  /** The last jv: a sweep reads J V for the same V three times (coefficients, error, next W step). */
  private jvCache: { v: Float64Array; jv: Float64Array } | null = null;

  /** J_k V for every k: [N, n, r]. Cached by the identity of v (normalise drops the cache of the V it rescales). */
  jv(v: Float64Array): Float64Array {
    if (this.jvCache?.v === v) return this.jvCache.jv;
    const out = this.jvCompute(v);
    this.jvCache = { v, jv: out };
    return out;
  }

  private jvCompute(v: Float64Array): Float64Array {
    const { N, n, m, r } = this;
    const out = new Float64Array(N * n * r);
    const J = this.s.jacobians;
    // Dot products of each Jacobian row with each column of V (held as rows of Vᵀ), four partial
    // sums: about 1.5× the speed of the axpy form, which stores after every multiply.
    const vt = new Float64Array(r * m);
    for (let j = 0; j < m; j++) for (let b = 0; b < r; b++) vt[b * m + j] = v[j * r + b]!;
    const rows = N * n;
    for (let q = 0; q < rows; q++) out.set(dotRows(J, q * m, vt, m, r), q * r);
    return out;
  }

  /** Jᵀ unfolded [m, N·n] (built once, for the V step's long dot products). */
  private jtCache: Float64Array | null = null;

  private jt(): Float64Array {
    if (this.jtCache) return this.jtCache;
    const { N, n, m } = this;
    const rows = N * n;
    const J = this.s.jacobians;
    const t = new Float64Array(m * rows);
    for (let q = 0; q < rows; q++) for (let j = 0; j < m; j++) t[j * rows + q] = J[q * m + j]!;
    this.jtCache = t;
    return t;
  }

  /** The coefficient step: all r·D coefficients by least squares, given W and V. */
  fitCoefficients(w: Float64Array, v: Float64Array): Float64Array {
    const { N, n, m, r, D, mu } = this;
    const RD = r * D;
    const z = this.projections(v);
    const range = this.ranges(z);
    const jv = this.jv(v);
    const dPhi = new Float64Array(N * RD);
    const phi = new Float64Array(N * RD);
    for (let k = 0; k < N; k++)
      for (let b = 0; b < r; b++) basisRow(this.basis, z[k * r + b]!, D, range[2 * b]!, range[2 * b + 1]!, phi, dPhi, k * RD + b * D);
    for (let c = 0; c < RD; c++) {
      let mean = 0;
      for (let k = 0; k < N; k++) mean += phi[k * RD + c]!;
      mean /= N;
      for (let k = 0; k < N; k++) phi[k * RD + c]! -= mean;
    }
    const wtw = matmulTN(w, w, n, r, r);
    const vtv = matmulTN(v, v, m, r, r);
    const s1 = matmulTN(dPhi, dPhi, N, RD, RD);
    const s2 = matmulTN(phi, phi, N, RD, RD);
    const a = new Float64Array(RD * RD);
    for (let p = 0; p < RD; p++)
      for (let q = 0; q < RD; q++) {
        const rb = Math.floor(p / D);
        const sb = Math.floor(q / D);
        const ww = wtw[rb * r + sb]!;
        a[p * RD + q] = ww * (vtv[rb * r + sb]! * s1[p * RD + q]! + mu * s2[p * RD + q]!);
      }
    // rhs(r, d) = Σ_k φ′_d(z_kr) w_rᵀ J_k v_r + μ Σ_k φc_d(z_kr) w_rᵀ Fc_k
    const rhs = new Float64Array(RD);
    for (let k = 0; k < N; k++)
      for (let b = 0; b < r; b++) {
        let aj = 0;
        let af = 0;
        for (let i = 0; i < n; i++) {
          aj += w[i * r + b]! * jv[(k * n + i) * r + b]!;
          af += w[i * r + b]! * this.fc[k * n + i]!;
        }
        const o = k * RD + b * D;
        for (let d = 0; d < D; d++) rhs[b * D + d]! += dPhi[o + d]! * aj + mu * phi[o + d]! * af;
      }
    return solveRidge(rhs, a, 1, RD, this.ridge);
  }

  /** The W step from both terms. */
  fitW(v: Float64Array, h: Float64Array, g: Float64Array): Float64Array {
    const { N, n, m, r, mu } = this;
    const jv = this.jv(v);
    const mm = new Float64Array(n * r);
    for (let k = 0; k < N; k++)
      for (let i = 0; i < n; i++)
        for (let b = 0; b < r; b++)
          mm[i * r + b]! += jv[(k * n + i) * r + b]! * h[k * r + b]! + mu * this.fc[k * n + i]! * g[k * r + b]!;
    const vtv = matmulTN(v, v, m, r, r);
    const hth = matmulTN(h, h, N, r, r);
    const gtg = matmulTN(g, g, N, r, r);
    const gram = new Float64Array(r * r);
    for (let i = 0; i < r * r; i++) gram[i] = vtv[i]! * hth[i]! + mu * gtg[i]!;
    return solveRidge(mm, gram, n, r, this.ridge);
  }

  /** The V step from the Jacobian's mode-2 unfolding: M [m, r] = J₍₂₎ (H ⊙ W), by long dot products over (k, i). */
  fitV(w: Float64Array, h: Float64Array): Float64Array {
    const { N, n, m, r } = this;
    const rows = N * n;
    const jt = this.jt();
    // (H ⊙ W)ᵀ [r, N·n]: column (k, i) of branch b is w_ib h_kb.
    const xt = new Float64Array(r * rows);
    for (let k = 0; k < N; k++)
      for (let i = 0; i < n; i++) for (let b = 0; b < r; b++) xt[b * rows + k * n + i] = w[i * r + b]! * h[k * r + b]!;
    const mm = new Float64Array(m * r);
    for (let j = 0; j < m; j++) mm.set(dotRows(jt, j * rows, xt, rows, r), j * r);
    const wtw = matmulTN(w, w, n, r, r);
    const hth = matmulTN(h, h, N, r, r);
    const gram = new Float64Array(r * r);
    for (let i = 0; i < r * r; i++) gram[i] = wtw[i]! * hth[i]!;
    return solveRidge(mm, gram, m, r, this.ridge);
  }

  /** The decoupled function a state stands for (bias = mean F − W mean G). */
  toFunction(st: State): DecoupledFunction {
    const { n, r, D } = this;
    const z = this.projections(st.v);
    const { meanG } = this.branches(z, st.coeffs);
    const bias = Float64Array.from(this.meanF);
    for (let i = 0; i < n; i++) for (let b = 0; b < r; b++) bias[i]! -= st.w[i * r + b]! * meanG[b]!;
    const range = this.ranges(z);
    return { inputs: this.m, outputs: n, branches: r, basis: this.basis, degree: D, v: st.v.slice(), coeffs: st.coeffs.slice(), w: st.w.slice(), bias, range };
  }

  /**
   * The cost of a state without forming Ĵ: ‖J − Ĵ‖² = ‖J‖² − 2 Σ_k ⟨J_k V, W diag(h_k)⟩ + Σ_bc (WᵀW ∘ VᵀV ∘ HᵀH)_bc
   * (N n r + N r² operations, where forming Ĵ takes N n m r), and the value term from G directly.
   * The expansion loses what lies below about 1e-16 ‖J‖² to cancellation, so a state whose Jacobian
   * term comes out under 1e-6 is measured directly (errors) instead: an exact fit keeps its digits.
   */
  sweepCost(st: State): number {
    const { N, n, m, r, mu } = this;
    const z = this.projections(st.v);
    const { h, g } = this.branches(z, st.coeffs);
    const jv = this.jv(st.v);
    let cross = 0;
    for (let k = 0; k < N; k++)
      for (let i = 0; i < n; i++) {
        const o = (k * n + i) * r;
        for (let b = 0; b < r; b++) cross += jv[o + b]! * st.w[i * r + b]! * h[k * r + b]!;
      }
    const wtw = matmulTN(st.w, st.w, n, r, r);
    const vtv = matmulTN(st.v, st.v, m, r, r);
    const hth = matmulTN(h, h, N, r, r);
    let hat = 0;
    for (let q = 0; q < r * r; q++) hat += wtw[q]! * vtv[q]! * hth[q]!;
    const dj = this.jNormSq - 2 * cross + hat;
    const jRel = this.jNormSq > 0 ? dj / this.jNormSq : dj;
    if (!(jRel >= 1e-6)) return Number.isFinite(jRel) ? this.errors(st).cost : Infinity;
    let df = 0;
    for (let k = 0; k < N; k++)
      for (let i = 0; i < n; i++) {
        let y = 0;
        for (let b = 0; b < r; b++) y += st.w[i * r + b]! * g[k * r + b]!;
        df += (this.fc[k * n + i]! - y) ** 2;
      }
    const fRel = this.fNormSq > 0 ? df / this.fNormSq : df;
    const lambda = this.fNormSq > 0 && this.jNormSq > 0 ? (mu * this.fNormSq) / this.jNormSq : mu;
    const cost = jRel + lambda * fRel;
    return Number.isFinite(cost) ? cost : Infinity;
  }

  /** The two relative errors of a state, measured directly. */
  errors(st: State): { jacobianError: number; valueError: number; cost: number } {
    const fn = this.toFunction(st);
    const jHat = jacobianDecoupled(fn, this.s.x, this.N);
    const fHat = evaluateDecoupled(fn, this.s.x, this.N);
    let dj = 0;
    for (let i = 0; i < jHat.length; i++) dj += (this.s.jacobians[i]! - jHat[i]!) ** 2;
    let df = 0;
    for (let i = 0; i < fHat.length; i++) df += (this.s.values[i]! - fHat[i]!) ** 2;
    const jacobianError = this.jNormSq > 0 ? Math.sqrt(dj / this.jNormSq) : Math.sqrt(dj);
    const valueError = this.fNormSq > 0 ? Math.sqrt(df / this.fNormSq) : Math.sqrt(df);
    const lambda = this.fNormSq > 0 && this.jNormSq > 0 ? (this.mu * this.fNormSq) / this.jNormSq : this.mu;
    const cost = jacobianError ** 2 + lambda * valueError ** 2;
    return { jacobianError, valueError, cost: Number.isFinite(cost) ? cost : Infinity };
  }
}

/**
 * V from the r leading eigenvectors of Σ_k J_kᵀJ_k [m, m] (random columns past m), each branch the
 * identity, and W from the W step at that state (H = 1, G = centred z).
 */
function directionsStart(pb: Problem, normal: () => number): { v: Float64Array; w: Float64Array } {
  const { N, n, m, r } = pb;
  const J = pb.s.jacobians;
  const gram = new Float64Array(m * m);
  for (let k = 0; k < N; k++)
    for (let i = 0; i < n; i++) {
      const o = (k * n + i) * m;
      for (let a = 0; a < m; a++) {
        const ja = J[o + a]!;
        if (ja === 0) continue;
        const go = a * m;
        for (let b = a; b < m; b++) gram[go + b]! += ja * J[o + b]!;
      }
    }
  for (let a = 0; a < m; a++) for (let b = a + 1; b < m; b++) gram[b * m + a] = gram[a * m + b]!;
  const eig = symmetricEigen(gram, m);
  const v = new Float64Array(m * r);
  for (let b = 0; b < r; b++)
    for (let j = 0; j < m; j++) v[j * r + b] = b < m ? eig.vectors[j * m + b]! : normal() / Math.sqrt(m);
  pb.normalise(v);
  const z = pb.projections(v);
  const h = new Float64Array(N * r).fill(1);
  const g = z.slice();
  for (let b = 0; b < r; b++) {
    let mean = 0;
    for (let k = 0; k < N; k++) mean += z[k * r + b]! / N;
    for (let k = 0; k < N; k++) g[k * r + b]! -= mean;
  }
  return { v, w: pb.fitW(v, h, g) };
}

/** a [rows, cols] with each column moved by Gaussian noise of RMS `size` × (its norm / √rows). */
function perturbColumns(a: Float64Array, rows: number, cols: number, size: number, normal: () => number): Float64Array {
  const out = a.slice();
  for (let c = 0; c < cols; c++) {
    let ss = 0;
    for (let i = 0; i < rows; i++) ss += a[i * cols + c]! ** 2;
    const scale = size * Math.sqrt(ss / rows) || size / Math.sqrt(rows);
    for (let i = 0; i < rows; i++) out[i * cols + c]! += scale * normal();
  }
  return out;
}

function run(pb: Problem, start: { v: Float64Array; w: Float64Array }, iters: number, tol: number): { best: State; cost: number; sweeps: number } {
  const v = start.v.slice();
  let w: Float64Array = start.w.slice();
  pb.normalise(v);
  let st: State = { v, w, coeffs: pb.fitCoefficients(w, v) };
  let best = { best: st, cost: pb.sweepCost(st), sweeps: 0 };
  let prev = best.cost;
  for (let it = 1; it <= iters; it++) {
    const z = pb.projections(st.v);
    const { h, g } = pb.branches(z, st.coeffs);
    w = pb.fitW(st.v, h, g);
    const vNew = pb.fitV(w, h);
    pb.normalise(vNew);
    st = { v: vNew, w, coeffs: pb.fitCoefficients(w, vNew) };
    const cost = pb.sweepCost(st);
    if (!Number.isFinite(cost)) break;
    if (cost < best.cost) best = { best: st, cost, sweeps: it };
    if (Math.abs(prev - cost) <= tol * Math.max(prev, 1e-300) || cost < 1e-22) break;
    prev = cost;
  }
  return best;
}

/**
 * The cost of a decoupled function on the samples two ways: `expanded`, as the solver's sweeps
 * measure it (Problem.sweepCost, without forming Ĵ), and `direct`, from Ĵ and F̂ formed in full.
 * For checking the sweeps' shortcut; fn's own range and bias are ignored (the samples set them).
 */
export function decoupleCosts(samples: DecoupleSamples, fn: DecoupledFunction, valueWeight = 1): { expanded: number; direct: number } {
  const pb = new Problem(samples, fn.basis, fn.branches, fn.degree, valueWeight, 1e-12);
  const st: State = { v: fn.v.slice(), w: fn.w.slice(), coeffs: fn.coeffs.slice() };
  return { expanded: pb.sweepCost(st), direct: pb.errors(st).cost };
}

/** Decouple the sampled function into r branches of D basis functions each (polynomial degree D, or D B-splines). */
export function decouple(samples: DecoupleSamples, branches: number, opts: DecoupleOptions = {}): DecoupleResult {
  const r = Math.max(1, Math.floor(branches));
  const basis = opts.basis ?? 'poly';
  const D = Math.max(basis === 'bspline' ? SPLINE_MIN_SIZE : 1, Math.floor(opts.degree ?? (basis === 'bspline' ? 8 : 3)));
  const restarts = Math.max(1, Math.floor(opts.restarts ?? 3));
  const iters = opts.iters ?? 300;
  const tol = opts.tol ?? 1e-12;
  const { count: N, inputs: m, outputs: n } = samples;
  if (samples.x.length !== N * m || samples.values.length !== N * n || samples.jacobians.length !== N * n * m)
    throw new Error(`decouple: sample sizes do not match N=${N}, m=${m}, n=${n}`);
  const pb = new Problem(samples, basis, r, D, opts.valueWeight ?? 1, opts.ridge ?? 1e-12);
  const normal = normalSource(mulberry32(opts.seed ?? 0));
  const costs: number[] = [];
  let best: { best: State; cost: number; sweeps: number } | undefined;
  for (let s = 0; s < restarts; s++) {
    let start: { v: Float64Array; w: Float64Array };
    if (s === 0 && opts.start === 'directions') {
      start = directionsStart(pb, normal);
    } else if (s === 0) {
      // The Jacobian tensor [N, n, m] is itself CP of rank r with factors H, W, V.
      const cp = cpAls(samples.jacobians, [N, n, m], r, { restarts: 1, iters: 200, seed: opts.seed ?? 0 });
      start = { w: Float64Array.from(cp.factors[1]!), v: Float64Array.from(cp.factors[2]!) };
    } else if (opts.warm !== undefined && opts.warm > 0 && best) {
      start = { w: perturbColumns(best.best.w, n, r, opts.warm, normal), v: perturbColumns(best.best.v, m, r, opts.warm, normal) };
    } else {
      start = { w: randomNormal(normal, n * r, 1 / Math.sqrt(r)), v: randomNormal(normal, m * r, 1 / Math.sqrt(m)) };
    }
    const fit = run(pb, start, iters, tol);
    costs.push(fit.cost);
    if (!best || fit.cost < best.cost) best = fit;
  }
  const fn = pb.toFunction(best!.best);
  const { jacobianError, valueError } = pb.errors(best!.best);
  return { fn, jacobianError, valueError, restartCosts: costs, sweeps: best!.sweeps };
}
