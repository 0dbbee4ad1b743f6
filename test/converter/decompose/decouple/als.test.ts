import t from 'tap';
import { decouple, evaluateDecoupled, jacobianDecoupled } from '../../../../converter/decompose/decouple/als.js';
import type { DecoupleSamples } from '../../../../converter/decompose/decouple/samples.js';
import { mulberry32, normalSource, randomNormal, relativeError } from '../../../../converter/decompose/index.js';

// A synthetic decoupled function f(x) = W g(Vᵀx) + c with known W, V and cubic branches, written
// out directly here (not through the module under test), with its analytic Jacobian.
interface Truth { m: number; n: number; r: number; D: number; v: Float64Array; w: Float64Array; coeffs: Float64Array; bias: Float64Array }

function makeTruth(seed: number, m: number, n: number, r: number, D: number): Truth {
  const normal = normalSource(mulberry32(seed));
  // Unit-ish projections for standard normal inputs, and coefficients of order 1.
  return { m, n, r, D, v: randomNormal(normal, m * r, 1 / Math.sqrt(m)), w: randomNormal(normal, n * r), coeffs: randomNormal(normal, r * D), bias: randomNormal(normal, n) };
}

function sampleTruth(tr: Truth, seed: number, N: number): DecoupleSamples {
  const { m, n, r, D } = tr;
  const normal = normalSource(mulberry32(seed));
  const x = randomNormal(normal, N * m);
  const values = new Float64Array(N * n);
  const jacobians = new Float64Array(N * n * m);
  for (let k = 0; k < N; k++) {
    for (let b = 0; b < r; b++) {
      let z = 0;
      for (let j = 0; j < m; j++) z += x[k * m + j]! * tr.v[j * r + b]!;
      let g = 0;
      let dg = 0;
      for (let d = 1; d <= D; d++) {
        const c = tr.coeffs[b * D + d - 1]!;
        g += c * z ** d;
        dg += c * d * z ** (d - 1);
      }
      for (let i = 0; i < n; i++) {
        values[k * n + i]! += tr.w[i * r + b]! * g;
        for (let j = 0; j < m; j++) jacobians[(k * n + i) * m + j]! += tr.w[i * r + b]! * dg * tr.v[j * r + b]!;
      }
    }
    for (let i = 0; i < n; i++) values[k * n + i]! += tr.bias[i]!;
  }
  return { count: N, inputs: m, outputs: n, x, values, jacobians };
}

/** |cos| of the best-matching recovered column for each true column of V. */
function columnMatch(truth: Float64Array, got: Float64Array, m: number, r: number): number[] {
  const col = (a: Float64Array, c: number) => Array.from({ length: m }, (_, j) => a[j * r + c]!);
  const cos = (a: number[], b: number[]) => {
    let ab = 0, aa = 0, bb = 0;
    a.forEach((x, i) => { ab += x * b[i]!; aa += x * x; bb += b[i]! ** 2; });
    return Math.abs(ab) / Math.sqrt(aa * bb);
  };
  return Array.from({ length: r }, (_, c) => Math.max(...Array.from({ length: r }, (_, e) => cos(col(truth, c), col(got, e)))));
}

t.test('the Jacobian of a decoupled function matches central finite differences of its values', async (t) => {
  const tr = makeTruth(1, 4, 3, 2, 3);
  const fn = { inputs: 4, outputs: 3, branches: 2, basis: 'poly' as const, degree: 3, v: tr.v, coeffs: tr.coeffs, w: tr.w, bias: tr.bias, range: Float64Array.from([-1, 1, -1, 1]) };
  const x = Float64Array.from([0.3, -0.7, 1.1, 0.2]);
  const jac = jacobianDecoupled(fn, x, 1);
  const h = 1e-5;
  for (let j = 0; j < 4; j++) {
    const xp = x.slice(); xp[j]! += h;
    const xm = x.slice(); xm[j]! -= h;
    const fp = evaluateDecoupled(fn, xp, 1);
    const fm = evaluateDecoupled(fn, xm, 1);
    for (let i = 0; i < 3; i++) t.ok(Math.abs((fp[i]! - fm[i]!) / (2 * h) - jac[i * 4 + j]!) < 1e-7, `J[${i},${j}]`);
  }
  // and the module's evaluation agrees with the test's direct formula (without the linear extension)
  const s = sampleTruth(tr, 2, 5);
  t.ok(relativeError(s.values, evaluateDecoupled(fn, s.x, 5, { extend: false })) < 1e-14);
  t.ok(relativeError(s.jacobians, jacobianDecoupled(fn, s.x, 5, { extend: false })) < 1e-14);
  // with it, finite differences still hold where z is outside [-1, 1], and the value continues
  // along the tangent at the end
  const far = Float64Array.from([3, -2, 4, 1]);
  const jf = jacobianDecoupled(fn, far, 1);
  for (let j = 0; j < 4; j++) {
    const xp = far.slice(); xp[j]! += h;
    const xm = far.slice(); xm[j]! -= h;
    const fp = evaluateDecoupled(fn, xp, 1);
    const fm = evaluateDecoupled(fn, xm, 1);
    for (let i = 0; i < 3; i++) t.ok(Math.abs((fp[i]! - fm[i]!) / (2 * h) - jf[i * 4 + j]!) < 1e-6, `extended J[${i},${j}]`);
  }
  const z0 = [0, 1].map((b) => [0, 1, 2, 3].reduce((a, j) => a + far[j]! * tr.v[j * 2 + b]!, 0));
  const tangent = (b: number, z: number) => {
    const e = z < -1 ? -1 : z > 1 ? 1 : z;
    let g = 0, dg = 0;
    for (let d = 1; d <= 3; d++) { g += tr.coeffs[b * 3 + d - 1]! * e ** d; dg += tr.coeffs[b * 3 + d - 1]! * d * e ** (d - 1); }
    return g + dg * (z - e);
  };
  const yf = evaluateDecoupled(fn, far, 1);
  for (let i = 0; i < 3; i++) t.ok(Math.abs(yf[i]! - (tr.bias[i]! + tr.w[i * 2]! * tangent(0, z0[0]!) + tr.w[i * 2 + 1]! * tangent(1, z0[1]!))) < 1e-12, `extended f[${i}]`);
});

t.test('noise-free: exact recovery of a known decoupled function (r = 3, cubic branches)', async (t) => {
  const tr = makeTruth(3, 6, 5, 3, 3);
  const s = sampleTruth(tr, 4, 300);
  const res = decouple(s, 3, { degree: 3, seed: 1 });
  t.ok(res.jacobianError < 1e-9, `Jacobian error ${res.jacobianError}`);
  t.ok(res.valueError < 1e-9, `value error ${res.valueError}`);
  // The same function off the samples, and the same directions v_r up to order and scale.
  const held = sampleTruth(tr, 5, 100);
  // (the polynomial itself: held-out inputs may leave the sampled range, where the layer's form
  // continues linearly instead)
  t.ok(relativeError(held.values, evaluateDecoupled(res.fn, held.x, 100, { extend: false })) < 1e-8, 'held-out values');
  t.ok(relativeError(held.jacobians, jacobianDecoupled(res.fn, held.x, 100, { extend: false })) < 1e-8, 'held-out Jacobians');
  for (const c of columnMatch(tr.v, res.fn.v, 6, 3)) t.ok(c > 1 - 1e-9, `|cos| ${c}`);
});

t.test('with noise: the fit is as good as the truth on the noisy data and close to the clean function', async (t) => {
  const tr = makeTruth(6, 6, 5, 3, 3);
  const clean = sampleTruth(tr, 7, 300);
  const eps = 1e-2;
  const normal = normalSource(mulberry32(8));
  const rms = (a: Float64Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
  const jn = randomNormal(normal, clean.jacobians.length, eps * rms(clean.jacobians));
  const fn = randomNormal(normal, clean.values.length, eps * rms(clean.values));
  const noisy: DecoupleSamples = { ...clean, jacobians: clean.jacobians.map((x, i) => x + jn[i]!), values: clean.values.map((x, i) => x + fn[i]!) };
  const res = decouple(noisy, 3, { degree: 3, seed: 1 });
  // The truth's own error against the noisy Jacobians; a least-squares fit may not do worse
  // (5% slack for ALS stopping short of the exact minimiser).
  const truthErr = relativeError(noisy.jacobians, clean.jacobians);
  t.ok(res.jacobianError <= 1.05 * truthErr, `fit ${res.jacobianError} vs truth ${truthErr}`);
  // The model has few parameters, so it averages most of the noise out: the stated bound is
  // the noise level ε itself, for the Jacobians and values of the clean function at fresh points.
  const held = sampleTruth(tr, 9, 100);
  const ej = relativeError(held.jacobians, jacobianDecoupled(res.fn, held.x, 100, { extend: false }));
  const ef = relativeError(held.values, evaluateDecoupled(res.fn, held.x, 100, { extend: false }));
  t.ok(ej < eps, `held-out Jacobian error ${ej} < ${eps}`);
  t.ok(ef < eps, `held-out value error ${ef} < ${eps}`);
});

t.test('identifiability: too few branches fit clearly worse, the true count fits exactly', async (t) => {
  const tr = makeTruth(10, 6, 5, 3, 3);
  const s = sampleTruth(tr, 11, 300);
  const right = decouple(s, 3, { degree: 3, seed: 2 });
  const fewer = decouple(s, 2, { degree: 3, seed: 2 });
  t.ok(right.jacobianError < 1e-9, `r = 3: ${right.jacobianError}`);
  t.ok(fewer.jacobianError > 1e-2, `r = 2: ${fewer.jacobianError}`);
  t.ok(fewer.valueError > 1e-2, `r = 2 values: ${fewer.valueError}`);
  t.equal(fewer.restartCosts.length, 3, 'three restarts by default');
});

t.test('the best iterate is kept: the reported errors are those of the returned function', async (t) => {
  const tr = makeTruth(12, 5, 4, 2, 3);
  const s = sampleTruth(tr, 13, 120);
  const res = decouple(s, 2, { degree: 2, seed: 3, restarts: 2, iters: 40 });
  const ej = relativeError(s.jacobians, jacobianDecoupled(res.fn, s.x, 120));
  t.ok(Math.abs(ej - res.jacobianError) < 1e-12);
  t.ok(Math.min(...res.restartCosts) <= res.jacobianError ** 2 + res.valueError ** 2 + 1e-15);
});

// B-spline branches (basis 'bspline'): the truth's g_r is a cubic spline on uniform clamped knots
// over the range its z takes on the samples, evaluated here by de Boor's algorithm; the solver
// places its knots the same way on its own (rescaled) z, so the truth is within its reach.
function deBoorKnots(lo: number, hi: number, K: number): number[] {
  const M = K - 3;
  return [lo, lo, lo, ...Array.from({ length: M + 1 }, (_, i) => (i === M ? hi : lo + ((hi - lo) * i) / M)), hi, hi, hi];
}
function deBoorAt(tk: number[], c: number[], x: number, p = 3): number {
  let k = p;
  while (k < c.length - 1 && !(x < tk[k + 1]!)) k++;
  const d = Array.from({ length: p + 1 }, (_, j) => c[j + k - p]!);
  for (let r = 1; r <= p; r++)
    for (let j = p; j >= r; j--) {
      const a = (x - tk[j + k - p]!) / (tk[j + 1 + k - r]! - tk[j + k - p]!);
      d[j] = (1 - a) * d[j - 1]! + a * d[j]!;
    }
  return d[p]!;
}
/** g′ as the degree-2 spline with coefficients 3 (c_{i+1} − c_i) / (t_{i+4} − t_{i+1}) on the inner knots. */
function deBoorSlope(tk: number[], c: number[], x: number): number {
  const q = c.slice(1).map((ci, i) => (3 * (ci - c[i]!)) / (tk[i + 4]! - tk[i + 1]!));
  return deBoorAt(tk.slice(1, -1), q, x, 2);
}

function sampleSplineTruth(tr: Truth, seed: number, N: number, ranges?: Float64Array): { s: DecoupleSamples; ranges: Float64Array } {
  const { m, n, r, D: K } = tr;
  const normal = normalSource(mulberry32(seed));
  const x = randomNormal(normal, N * m);
  const z = new Float64Array(N * r);
  for (let k = 0; k < N; k++) for (let b = 0; b < r; b++) for (let j = 0; j < m; j++) z[k * r + b]! += x[k * m + j]! * tr.v[j * r + b]!;
  const rg = ranges ?? Float64Array.from({ length: 2 * r }, (_, i) => {
    const col = Array.from({ length: N }, (_, k) => z[k * r + (i >> 1)]!);
    return i % 2 === 0 ? Math.min(...col) : Math.max(...col);
  });
  const values = new Float64Array(N * n);
  const jacobians = new Float64Array(N * n * m);
  for (let k = 0; k < N; k++) {
    for (let b = 0; b < r; b++) {
      const tk = deBoorKnots(rg[2 * b]!, rg[2 * b + 1]!, K);
      const c = Array.from(tr.coeffs.subarray(b * K, (b + 1) * K));
      const zz = Math.min(Math.max(z[k * r + b]!, rg[2 * b]!), rg[2 * b + 1]!);
      const g = deBoorAt(tk, c, zz);
      const dg = deBoorSlope(tk, c, zz);
      for (let i = 0; i < n; i++) {
        values[k * n + i]! += tr.w[i * r + b]! * g;
        for (let j = 0; j < m; j++) jacobians[(k * n + i) * m + j]! += tr.w[i * r + b]! * dg * tr.v[j * r + b]!;
      }
    }
    for (let i = 0; i < n; i++) values[k * n + i]! += tr.bias[i]!;
  }
  return { s: { count: N, inputs: m, outputs: n, x, values, jacobians }, ranges: rg };
}

t.test('B-spline branches: exact recovery of a known spline-decoupled function, and a wrong r fits worse', async (t) => {
  const K = 6;
  const tr = makeTruth(11, 6, 5, 3, K);
  const { s } = sampleSplineTruth(tr, 12, 400);
  const res = decouple(s, 3, { basis: 'bspline', degree: K, seed: 1 });
  t.equal(res.fn.basis, 'bspline');
  t.ok(res.jacobianError < 1e-6, `Jacobian error ${res.jacobianError}`);
  t.ok(res.valueError < 1e-6, `value error ${res.valueError}`);
  for (const c of columnMatch(tr.v, res.fn.v, 6, 3)) t.ok(c > 1 - 1e-6, `|cos| ${c}`);
  // Off the samples, inside the sampled ranges (the truth is clamped there too; beyond, the layer's
  // tangent and the truth's clamp differ by design).
  const { ranges } = sampleSplineTruth(tr, 12, 400);
  const held = sampleSplineTruth(tr, 13, 200, ranges).s;
  const inside: number[] = [];
  for (let k = 0; k < 200; k++) {
    let ok = true;
    for (let b = 0; b < 3; b++) {
      let z = 0;
      for (let j = 0; j < 6; j++) z += held.x[k * 6 + j]! * tr.v[j * 3 + b]!;
      if (z < ranges[2 * b]! || z > ranges[2 * b + 1]!) ok = false;
    }
    if (ok) inside.push(k);
  }
  t.ok(inside.length >= 100, `${inside.length} of 200 held-out inputs inside every range`);
  const xs = Float64Array.from(inside.flatMap((k) => Array.from(held.x.subarray(k * 6, k * 6 + 6))));
  const want = Float64Array.from(inside.flatMap((k) => Array.from(held.values.subarray(k * 5, k * 5 + 5))));
  t.ok(relativeError(want, evaluateDecoupled(res.fn, xs, inside.length)) < 1e-5, 'held-out values inside the ranges');
  const fewer = decouple(s, 2, { basis: 'bspline', degree: K, seed: 1 });
  t.ok(fewer.jacobianError > 1e-2 && fewer.jacobianError > 1e4 * res.jacobianError, `r = 2: Jacobian error ${fewer.jacobianError}`);
});
