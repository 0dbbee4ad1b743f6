import t from 'tap';
import {
  mulberry32, normalSource, randomNormal, reconstructTr, relativeError, tensorRing,
} from '../../../converter/decompose/index.js';

const normal = normalSource(mulberry32(21));

function randomTr(m: number[], n: number[], ranks: number[]): Float64Array {
  const cores = m.map((mk, k) => randomNormal(normal, ranks[k]! * mk * n[k]! * ranks[k + 1]!));
  return reconstructTr(cores, m, n, ranks);
}

t.test('exact recovery at the true ring ranks (TR-SVD start, then TR-ALS)', async (t) => {
  const m = [2, 3, 2];
  const n = [3, 2, 2];
  const ranks = [2, 3, 2, 2];
  const w = randomTr(m, n, ranks);
  const res = tensorRing(Float32Array.from(w), m, n, { ranks: [2, 3, 2], alsSweeps: 500, tol: 0 });
  t.same(res.ranks, ranks);
  t.same(res.cores.map((c) => c.length), [2 * 6 * 3, 3 * 6 * 2, 2 * 4 * 2]);
  t.ok(res.relError < 1e-4, `relError ${res.relError} after ${res.alsSweeps} sweeps`);
  t.ok(relativeError(w, reconstructTr(res.cores, m, n, res.ranks)) < 1e-4);
});

t.test('error bound: relError ≤ TR-SVD bound, ALS only improves', async (t) => {
  const m = [3, 2, 2];
  const n = [2, 2, 3];
  const w = randomNormal(normal, 12 * 12);
  const plain = tensorRing(w, m, n, { maxRank: 3, alsSweeps: 0 });
  const refined = tensorRing(w, m, n, { maxRank: 3, alsSweeps: 10 });
  t.ok(plain.ranks.every((r) => r <= 3));
  t.equal(plain.ranks[0], plain.ranks[3], 'ring closes');
  t.ok(plain.relError <= plain.errorBound + 1e-6, `${plain.relError} ≤ ${plain.errorBound}`);
  t.ok(refined.relError <= plain.relError + 1e-6, `ALS ${refined.relError} ≤ TR-SVD ${plain.relError}`);
  for (const eps of [0.1, 0.4]) {
    const res = tensorRing(w, m, n, { eps, alsSweeps: 0 });
    t.ok(res.relError <= eps, `eps ${eps}: relError ${res.relError}, ranks ${res.ranks}`);
  }
});

t.test('the first rank is split as r_0·r_1, balanced', async (t) => {
  const w = randomNormal(normal, 16 * 16);
  const res = tensorRing(w, [4, 4], [4, 4], { maxRank: 2, alsSweeps: 0 });
  t.same(res.ranks, [2, 2, 2]);
});

t.test('deterministic and finite on degenerate inputs', async (t) => {
  const zero = tensorRing(new Float32Array(36), [2, 3], [3, 2], { maxRank: 2 });
  t.equal(zero.relError, 0);
  t.ok(zero.cores.every((c) => c.every(Number.isFinite)));
  const w = randomNormal(normal, 36);
  const big = tensorRing(w, [2, 3], [3, 2], { ranks: [9, 9] });
  t.ok(big.ranks[0]! * big.ranks[1]! <= 6, `first ranks ${big.ranks} fit the 6-row unfolding`);
  t.ok(big.cores.every((c) => c.every(Number.isFinite)));
  const a = tensorRing(w, [2, 3], [3, 2], { maxRank: 2 });
  const b = tensorRing(w, [2, 3], [3, 2], { maxRank: 2 });
  t.same(a.cores.map((c) => [...c]), b.cores.map((c) => [...c]));
});
