import t from 'tap';
import {
  mulberry32, normalSource, randomNormal, reconstructSvd, relativeError, singularValues, truncatedSvd,
} from '../../../converter/decompose/index.js';
import { matmul } from '../../../converter/decompose/linalg.js';

const normal = normalSource(mulberry32(7));

t.test('exact recovery of a rank-3 matrix', async (t) => {
  const [rows, cols, r] = [12, 9, 3];
  const w = matmul(randomNormal(normal, rows * r), randomNormal(normal, r * cols), rows, r, cols);
  const res = truncatedSvd(w, rows, cols, r);
  t.equal(res.u.length, rows * r);
  t.equal(res.v.length, r * cols);
  t.ok(relativeError(w, reconstructSvd(res.u, res.v, rows, cols)) < 1e-4);
});

t.test('wide matrices too (ml-matrix transposes internally)', async (t) => {
  const [rows, cols, r] = [4, 15, 2];
  const w = matmul(randomNormal(normal, rows * r), randomNormal(normal, r * cols), rows, r, cols);
  const res = truncatedSvd(Float32Array.from(w), rows, cols, r);
  t.ok(relativeError(w, reconstructSvd(res.u, res.v, rows, cols)) < 1e-4);
  t.equal(res.singularValues.length, 4);
});

t.test('Eckart–Young: error equals the discarded singular values', async (t) => {
  const [rows, cols] = [10, 8];
  const w = randomNormal(normal, rows * cols);
  const s = singularValues(w, rows, cols);
  let total = 0;
  for (const v of s) total += v * v;
  t.ok(Math.abs(total - w.reduce((a, v) => a + v * v, 0)) < 1e-9 * total, 'Σσ² = ||W||²');
  for (let i = 1; i < s.length; i++) t.ok(s[i - 1]! >= s[i]!, 'descending');
  for (const r of [1, 3, 5]) {
    const res = truncatedSvd(w, rows, cols, r);
    let tail = 0;
    for (let i = r; i < s.length; i++) tail += s[i]! * s[i]!;
    const expected = Math.sqrt(tail / total);
    const measured = relativeError(w, reconstructSvd(res.u, res.v, rows, cols));
    t.ok(Math.abs(measured - expected) < 1e-5, `rank ${r}: ${measured} vs ${expected}`);
    t.ok(Math.abs(res.relError - expected) < 1e-12);
  }
});

t.test('factors are balanced: u and v carry the same column norms', async (t) => {
  const w = randomNormal(normal, 6 * 5);
  const { u, v, rank } = truncatedSvd(w, 6, 5, 2);
  for (let j = 0; j < rank; j++) {
    let nu = 0;
    let nv = 0;
    for (let i = 0; i < 6; i++) nu += u[i * rank + j]! ** 2;
    for (let i = 0; i < 5; i++) nv += v[j * 5 + i]! ** 2;
    t.ok(Math.abs(nu - nv) < 1e-5 * nu);
  }
});

t.test('degenerate inputs', async (t) => {
  const zero = truncatedSvd(new Float32Array(20), 4, 5, 2);
  t.ok([...zero.u, ...zero.v].every((x) => x === 0));
  t.equal(zero.relError, 0);
  const big = truncatedSvd(randomNormal(normal, 12), 3, 4, 10);
  t.equal(big.rank, 3, 'rank clamped to min(rows, cols)');
  t.ok(big.relError < 1e-12);
  t.ok([...big.u, ...big.v].every(Number.isFinite));
  t.throws(() => truncatedSvd(new Float32Array(5), 2, 3, 1));
});
