import t from 'tap';
import {
  cpConv, cpReconstruct, mulberry32, normalSource, randomNormal, reconstructCp, relativeError,
} from '../../../converter/decompose/index.js';

const normal = normalSource(mulberry32(5));
type Shape4 = [number, number, number, number];

function randomCp(shape: Shape4, r: number): Float64Array {
  return cpReconstruct(shape.map((d) => randomNormal(normal, d * r)), shape, r);
}

t.test('exact recovery of a rank-3 kernel, in the cp_conv2d layout', async (t) => {
  const shape: Shape4 = [6, 5, 3, 3];
  const w = randomCp(shape, 3);
  const res = cpConv(Float32Array.from(w), shape, 3, { seed: 1 });
  t.same([res.aIn.length, res.kH.length, res.kW.length, res.aOut.length], [3 * 5, 3 * 3, 3 * 3, 6 * 3]);
  t.ok(res.relError < 1e-4, `relError ${res.relError}`);
  t.ok(relativeError(w, reconstructCp(res, shape)) < 1e-4);
  // The layout formula of runtime/ir.ts, written out once.
  const [o, i, y, x] = [4, 2, 1, 2];
  let s = 0;
  for (let r = 0; r < 3; r++) s += res.aOut[o * 3 + r]! * res.aIn[r * 5 + i]! * res.kH[r * 3 + y]! * res.kW[r * 3 + x]!;
  t.ok(Math.abs(s - w[((o * 5 + i) * 3 + y) * 3 + x]!) < 1e-3);
});

t.test('norms are balanced across the four factors', async (t) => {
  const shape: Shape4 = [5, 4, 3, 3];
  const res = cpConv(randomCp(shape, 2), shape, 2, { seed: 3 });
  const colNorm = (a: Float32Array, r: number, byRow: boolean, len: number) => {
    let s = 0;
    for (let k = 0; k < len; k++) s += (byRow ? a[r * len + k]! : a[k * 2 + r]!) ** 2;
    return Math.sqrt(s);
  };
  for (let r = 0; r < 2; r++) {
    const norms = [colNorm(res.aOut, r, false, 5), colNorm(res.aIn, r, true, 4), colNorm(res.kH, r, true, 3), colNorm(res.kW, r, true, 3)];
    for (const n of norms) t.ok(Math.abs(n - norms[0]!) < 1e-4 * norms[0]!, `component ${r}: ${norms.join(', ')}`);
  }
});

t.test('best of restarts is no worse than the SVD start', async (t) => {
  const shape: Shape4 = [5, 6, 3, 3];
  const w = randomNormal(normal, 5 * 6 * 9);
  const res = cpConv(w, shape, 4, { restarts: 4, seed: 9, iters: 100 });
  t.equal(res.restartErrors.length, 4);
  t.ok(res.relError <= res.restartErrors[0]! + 1e-6, `${res.relError} vs first ${res.restartErrors[0]}`);
  t.ok(Math.abs(res.relError - Math.min(...res.restartErrors)) < 1e-6);
  t.ok(res.relError < 1, 'fits better than zero');
});

t.test('deterministic for a fixed seed', async (t) => {
  const shape: Shape4 = [4, 4, 3, 3];
  const w = randomNormal(normal, 144);
  const a = cpConv(w, shape, 3, { seed: 42, iters: 50 });
  const b = cpConv(w, shape, 3, { seed: 42, iters: 50 });
  t.same([...a.aIn, ...a.kH, ...a.kW, ...a.aOut], [...b.aIn, ...b.kH, ...b.kW, ...b.aOut]);
  t.same(a.restartErrors, b.restartErrors);
});

t.test('degenerate inputs never give NaN', async (t) => {
  const shape: Shape4 = [3, 2, 3, 3];
  const zero = cpConv(new Float32Array(54), shape, 2);
  t.equal(zero.relError, 0);
  t.ok([...zero.aIn, ...zero.kH, ...zero.kW, ...zero.aOut].every((x) => x === 0));
  // R above every mode size: SVD start padded with seeded random columns, ridge keeps it solvable.
  const w = randomNormal(normal, 54);
  const big = cpConv(w, shape, 8, { iters: 100, seed: 2 });
  t.ok([...big.aIn, ...big.kH, ...big.kW, ...big.aOut].every(Number.isFinite));
  t.ok(Number.isFinite(big.relError) && big.relError < 0.5, `relError ${big.relError}`);
  // A rank-1 tensor fitted at rank 3 invites diverging components; the guard must keep it finite.
  const r1 = randomCp(shape, 1);
  const over = cpConv(r1, shape, 3, { iters: 100, seed: 4 });
  t.ok(over.relError < 1e-3, `relError ${over.relError}`);
  t.ok([...over.aIn, ...over.kH, ...over.kW, ...over.aOut].every(Number.isFinite));
});

t.test('a restart whose components blow up is stopped, and the result stays finite', async (t) => {
  // Σ_k (b in mode k, a elsewhere) has rank 4 but border rank 2: no best rank-2 fit exists, and
  // ALS chases it with ever larger, cancelling components.
  const shape: Shape4 = [3, 3, 3, 3];
  const a = shape.map((d) => randomNormal(normal, d));
  const b = shape.map((d) => randomNormal(normal, d));
  const factors = shape.map((d, k) => {
    const f = new Float64Array(d * 4);
    for (let i = 0; i < d; i++) for (let r = 0; r < 4; r++) f[i * 4 + r] = (r === k ? b : a)[k]![i]!;
    return f;
  });
  const w = cpReconstruct(factors, shape, 4);
  const res = cpConv(w, shape, 2, { blowUp: 2, iters: 3000, tol: 0, seed: 0 });
  t.ok(res.degenerate.some((d) => d), `degenerate restarts ${res.degenerate}`);
  t.ok(Number.isFinite(res.relError) && res.relError < 0.05, `relError ${res.relError}`);
  t.ok([...res.aIn, ...res.kH, ...res.kW, ...res.aOut].every(Number.isFinite));
});
