// N-way CP by alternating least squares, with the guards CP-ALS needs in practice: an SVD start,
// random restarts, a ridge on the normal equations and a stop for diverging components.
import { numel } from '../../runtime/ir.js';
import { leadingColumns, matmul, matmulTN, relativeError, solveRidge, sumSquares, symmetricEigen } from './linalg.js';
import { modeGram } from './modeProduct.js';
import { mulberry32, normalSource, randomNormal } from './prng.js';

export interface CpOptions {
  /** Fits to run; the first starts from the SVD of each unfolding, the rest at random. Default 3. */
  restarts?: number;
  /** Maximum ALS sweeps per restart. Default 500. */
  iters?: number;
  /** Seed of the PRNG behind random starts and padding. Default 0. */
  seed?: number;
  /** Stop a restart when a sweep changes the relative error by less than this. Default 1e-10. */
  tol?: number;
  /** Tikhonov weight, relative to the mean diagonal of the normal matrix. Default 1e-9. */
  ridge?: number;
  /** A restart stops when a component's norm exceeds this many times ||X||_F (degeneracy). Default 100. */
  blowUp?: number;
}

export interface CpAlsResult {
  /** factor k [dim_k, R], column norms balanced across the factors. */
  factors: Float64Array[];
  relError: number;
  /** Best relative error reached by each restart, in order. */
  restartErrors: number[];
  /** Which restarts were stopped for diverging component norms. */
  degenerate: boolean[];
}

/** Rows of the Khatri–Rao product of factors [dim_k, R], first factor outermost: [Π dim, R]. */
function khatriRao(factors: readonly Float64Array[], dims: readonly number[], r: number): Float64Array {
  let acc = new Float64Array(r).fill(1);
  let rows = 1;
  factors.forEach((a, k) => {
    const d = dims[k]!;
    const next = new Float64Array(rows * d * r);
    for (let p = 0; p < rows; p++)
      for (let i = 0; i < d; i++) {
        const o = (p * d + i) * r;
        for (let c = 0; c < r; c++) next[o + c] = acc[p * r + c]! * a[i * r + c]!;
      }
    acc = next;
    rows *= d;
  });
  return acc;
}

/** MTTKRP for mode n: M [dim_n, R] = X_(n) · (Khatri–Rao of the other factors). */
function mttkrp(x: Float64Array, dims: readonly number[], factors: readonly Float64Array[], n: number, r: number): Float64Array {
  const dim = dims[n]!;
  const left = numel(dims.slice(0, n));
  const right = numel(dims.slice(n + 1));
  const krLeft = khatriRao(factors.slice(0, n), dims.slice(0, n), r);
  const krRight = khatriRao(factors.slice(n + 1), dims.slice(n + 1), r);
  const t = matmul(x, krRight, left * dim, right, r);
  const m = new Float64Array(dim * r);
  for (let l = 0; l < left; l++)
    for (let i = 0; i < dim; i++) {
      const o = (l * dim + i) * r;
      for (let c = 0; c < r; c++) m[i * r + c]! += t[o + c]! * krLeft[l * r + c]!;
    }
  return m;
}

/** Hadamard product of the Gram matrices [R, R] of every factor except `skip`. */
function gramHadamard(grams: readonly Float64Array[], r: number, skip: number): Float64Array {
  const v = new Float64Array(r * r).fill(1);
  grams.forEach((g, k) => {
    if (k === skip) return;
    for (let i = 0; i < r * r; i++) v[i]! *= g[i]!;
  });
  return v;
}

function columnNorms(a: Float64Array, rows: number, r: number): Float64Array {
  const norms = new Float64Array(r);
  for (let i = 0; i < rows; i++) for (let c = 0; c < r; c++) norms[c]! += a[i * r + c]! * a[i * r + c]!;
  return norms.map(Math.sqrt);
}

/** Unit columns (zero columns stay zero); the dropped scale is recovered by the next ALS update. */
function normaliseColumns(a: Float64Array, rows: number, r: number): void {
  const norms = columnNorms(a, rows, r);
  for (let i = 0; i < rows; i++) for (let c = 0; c < r; c++) if (norms[c]! > 0) a[i * r + c]! /= norms[c]!;
}

/** Leading left singular vectors of each unfolding, padded with random columns beyond the mode size. */
function svdStart(x: Float64Array, dims: readonly number[], r: number, normal: () => number): Float64Array[] {
  return dims.map((d, k) => {
    const eig = symmetricEigen(modeGram(x, dims, k), d);
    const lead = leadingColumns(eig.vectors, d, d, Math.min(r, d));
    const a = randomNormal(normal, d * r, 1 / Math.sqrt(d));
    for (let i = 0; i < d; i++) for (let c = 0; c < Math.min(r, d); c++) a[i * r + c] = lead[i * Math.min(r, d) + c]!;
    return a;
  });
}

/** Balance each component's norm equally across the factors, keeping signs in the vectors. */
function balanceNorms(factors: Float64Array[], dims: readonly number[], r: number): void {
  const norms = factors.map((a, k) => columnNorms(a, dims[k]!, r));
  for (let c = 0; c < r; c++) {
    let total = 1;
    for (const n of norms) total *= n[c]!;
    const share = Math.pow(total, 1 / factors.length);
    factors.forEach((a, k) => {
      const n = norms[k]![c]!;
      const scale = n > 0 && total > 0 ? share / n : 0;
      for (let i = 0; i < dims[k]!; i++) a[i * r + c]! *= scale;
    });
  }
}

/** Dense tensor Σ_r ∘_k factor_k[:, r] with factors [dim_k, R]. */
export function cpReconstruct(factors: readonly ArrayLike<number>[], dims: readonly number[], r: number): Float64Array {
  const f64 = factors.map((a) => Float64Array.from(a));
  const krRest = khatriRao(f64.slice(1), dims.slice(1), r);
  const rest = numel(dims.slice(1));
  const out = new Float64Array(dims[0]! * rest);
  for (let i = 0; i < dims[0]!; i++)
    for (let j = 0; j < rest; j++) {
      let s = 0;
      for (let c = 0; c < r; c++) s += f64[0]![i * r + c]! * krRest[j * r + c]!;
      out[i * rest + j] = s;
    }
  return out;
}

interface Restart {
  factors: Float64Array[];
  err: number;
  degenerate: boolean;
}

function runAls(x: Float64Array, dims: readonly number[], r: number, start: Float64Array[], normSq: number, o: Required<CpOptions>): Restart {
  const n = dims.length;
  const factors: Float64Array[] = start.map((a) => Float64Array.from(a));
  const grams: Float64Array[] = factors.map((a, k) => matmulTN(a, a, dims[k]!, r, r));
  let best: Restart = { factors: factors.map((a) => a.slice()), err: Infinity, degenerate: false };
  let prev = Infinity;
  for (let it = 0; it < o.iters; it++) {
    let lastM: Float64Array = new Float64Array(0);
    for (let k = 0; k < n; k++) {
      const m = mttkrp(x, dims, factors, k, r);
      const a = solveRidge(m, gramHadamard(grams, r, k), dims[k]!, r, o.ridge);
      // Every factor but the last is kept unit-norm; the last carries the component weights.
      if (k < n - 1) normaliseColumns(a, dims[k]!, r);
      factors[k] = a;
      grams[k] = matmulTN(a, a, dims[k]!, r, r);
      lastM = m;
    }
    const weights = columnNorms(factors[n - 1]!, dims[n - 1]!, r);
    if (Math.max(...weights) > o.blowUp * Math.sqrt(normSq)) return { ...best, degenerate: true };
    // ||X − X̂||² = ||X||² − 2<X, X̂> + ||X̂||², all from quantities the sweep already has.
    let inner = 0;
    const last = factors[n - 1]!;
    for (let i = 0; i < last.length; i++) inner += lastM[i]! * last[i]!;
    let hatSq = 0;
    for (const v of gramHadamard(grams, r, -1)) hatSq += v;
    const err = Math.sqrt(Math.max(0, normSq - 2 * inner + hatSq) / normSq);
    if (!Number.isFinite(err)) return { ...best, degenerate: true };
    if (err < best.err) best = { factors: factors.map((a) => a.slice()), err, degenerate: false };
    if (Math.abs(prev - err) < o.tol || err < 1e-12) break;
    prev = err;
  }
  return best;
}

/** CP of x [dims] at rank R by ALS; the best of `restarts` fits, norms balanced across factors. */
export function cpAls(x: Float64Array, dims: readonly number[], rank: number, opts: CpOptions = {}): CpAlsResult {
  const r = Math.max(1, Math.floor(rank));
  const o: Required<CpOptions> = {
    restarts: Math.max(1, opts.restarts ?? 3),
    iters: opts.iters ?? 500,
    seed: opts.seed ?? 0,
    tol: opts.tol ?? 1e-10,
    ridge: opts.ridge ?? 1e-9,
    blowUp: opts.blowUp ?? 100,
  };
  const normSq = sumSquares(x);
  if (normSq === 0) {
    return { factors: dims.map((d) => new Float64Array(d * r)), relError: 0, restartErrors: [0], degenerate: [false] };
  }
  const normal = normalSource(mulberry32(o.seed));
  const restarts: Restart[] = [];
  for (let k = 0; k < o.restarts; k++) {
    const start = k === 0 ? svdStart(x, dims, r, normal) : dims.map((d) => randomNormal(normal, d * r, 1 / Math.sqrt(d)));
    const fit = runAls(x, dims, r, start, normSq, o);
    // The sweep's error formula cancels near an exact fit; rank restarts by the measured error.
    const err = Number.isFinite(fit.err) ? relativeError(x, cpReconstruct(fit.factors, dims, r)) : Infinity;
    restarts.push({ ...fit, err });
  }
  let best = restarts[0]!;
  for (const s of restarts) if (s.err < best.err) best = s;
  const factors = best.factors.map((a) => a.slice());
  if (!Number.isFinite(best.err)) factors.forEach((a) => a.fill(0));
  balanceNorms(factors, dims, r);
  return {
    factors,
    relError: relativeError(x, cpReconstruct(factors, dims, r)),
    restartErrors: restarts.map((s) => s.err),
    degenerate: restarts.map((s) => s.degenerate),
  };
}
