// The oracle of the training tests: an op's backward against central finite differences of its
// forward. The loss is sum(out * R) for a fixed random R, accumulated in f64; the forward runs in
// f32, so eps is 1e-2..1e-3 and the tolerance is a relative error of the whole gradient vector.
import type { Test } from 'tap';
import { mulberry32, normalSource } from '../../../converter/decompose/prng.js';
import { backward, noGrad, param, type Var } from '../../../converter/train/tensor.js';

export function randn(n: number, seed: number, scale = 1): Float32Array {
  const normal = normalSource(mulberry32(seed));
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = normal() * scale;
  return a;
}

export function randParam(shape: number[], seed: number, scale = 1): Var {
  return param(randn(shape.reduce((a, b) => a * b, 1), seed, scale), shape);
}

/** Distinct values at least `gap` apart in random order, for kinks (relu, max) that eps must not cross. */
export function spacedParam(shape: number[], seed: number, gap = 0.02): Var {
  const n = shape.reduce((a, b) => a * b, 1);
  const u = mulberry32(seed);
  const vals = Array.from({ length: n }, (_, i) => (i - (n - 1) / 2) * gap + gap / 4);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(u() * (i + 1));
    [vals[i], vals[j]] = [vals[j]!, vals[i]!];
  }
  return param(Float32Array.from(vals), shape);
}

export interface GradCheckOptions {
  eps?: number;
  /** Relative error ||analytic - numeric|| / ||numeric|| allowed (default 1e-2). */
  tol?: number;
  /** Check at most this many entries of each input (spread evenly), to keep tests fast. */
  maxPerInput?: number;
}

/** Checks d sum(f() * R) / d input for every input against central differences; returns the worst error. */
export function gradCheck(t: Test, name: string, f: () => Var, inputs: Var[], o: GradCheckOptions = {}): number {
  const eps = o.eps ?? 1e-2;
  const tol = o.tol ?? 1e-2;
  const maxPer = o.maxPerInput ?? 64;
  const out = f();
  const R = randn(out.size, 12345);
  for (const v of inputs) v.grad = null;
  backward(out, R);
  const analytic = inputs.map((v) => Float64Array.from(v.grad ?? new Float32Array(v.size)));
  const loss = (): number => noGrad(() => {
    const y = f().data;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i]! * R[i]!;
    return s;
  });
  let worst = 0;
  inputs.forEach((v, vi) => {
    const step = Math.max(1, Math.floor(v.size / maxPer));
    let num2 = 0;
    let diff2 = 0;
    let ana2 = 0;
    for (let i = 0; i < v.size; i += step) {
      const keep = v.data[i]!;
      v.data[i] = keep + eps;
      const lp = loss();
      v.data[i] = keep - eps;
      const lm = loss();
      v.data[i] = keep;
      const numeric = (lp - lm) / (2 * eps);
      const a = analytic[vi]![i]!;
      num2 += numeric * numeric;
      ana2 += a * a;
      diff2 += (a - numeric) ** 2;
    }
    const rel = Math.sqrt(diff2) / Math.max(Math.sqrt(num2), Math.sqrt(ana2), 1e-12);
    worst = Math.max(worst, rel);
    t.ok(rel < tol && Math.sqrt(ana2) > 0, `${name}: input ${vi} [${v.shape}] rel err ${rel.toExponential(2)} < ${tol} (|grad| ${Math.sqrt(ana2).toExponential(2)})`);
  });
  return worst;
}

export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / Math.max(den, 1e-30);
}
