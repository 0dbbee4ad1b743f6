import t from 'tap';
import {
  mulberry32, normalSource, randomNormal, reconstructTt, ttSvd,
} from '../../../converter/decompose/index.js';

const normal = normalSource(mulberry32(3));

function randomTt(m: number[], n: number[], ranks: number[]): { w: Float64Array; cores: Float64Array[] } {
  const cores = m.map((mk, k) => randomNormal(normal, ranks[k]! * mk * n[k]! * ranks[k + 1]!));
  return { w: reconstructTt(cores, m, n, ranks), cores };
}

t.test('exact recovery at the true TT ranks', async (t) => {
  const m = [2, 3, 2];
  const n = [3, 2, 2];
  const ranks = [1, 3, 2, 1];
  const { w } = randomTt(m, n, ranks);
  const res = ttSvd(Float32Array.from(w), m, n, { ranks });
  t.same(res.ranks, ranks);
  t.same(res.cores.map((c) => c.length), [1 * 6 * 3, 3 * 6 * 2, 2 * 4 * 1]);
  t.ok(res.relError < 1e-4, `relError ${res.relError}`);
  // Without a cap, the exact ranks are found from the spectra.
  const auto = ttSvd(w, m, n, { eps: 1e-6 });
  t.same(auto.ranks, ranks);
});

t.test('core layout follows ir.ts: W[i,j] = G0[:,i0,j0,:]·G1[:,i1,j1,:]', async (t) => {
  const m = [2, 3];
  const n = [2, 2];
  const w = randomNormal(normal, 6 * 4);
  const { cores, ranks } = ttSvd(w, m, n, {});
  const r = ranks[1]!;
  let worst = 0;
  for (let i0 = 0; i0 < 2; i0++)
    for (let i1 = 0; i1 < 3; i1++)
      for (let j0 = 0; j0 < 2; j0++)
        for (let j1 = 0; j1 < 2; j1++) {
          let s = 0;
          for (let a = 0; a < r; a++) s += cores[0]![(i0 * 2 + j0) * r + a]! * cores[1]![((a * 3 + i1) * 2 + j1)]!;
          worst = Math.max(worst, Math.abs(s - w[(i0 * 3 + i1) * 4 + j0 * 2 + j1]!));
        }
  t.ok(worst < 1e-5, `worst ${worst}`);
});

t.test('eps bound: relative error ≤ eps', async (t) => {
  const m = [4, 2, 3];
  const n = [2, 3, 4];
  const w = randomNormal(normal, 24 * 24);
  for (const eps of [0.05, 0.2, 0.5, 0.8]) {
    const res = ttSvd(w, m, n, { eps });
    t.ok(res.relError <= eps, `eps ${eps}: relError ${res.relError}, ranks ${res.ranks}`);
    t.ok(res.relError <= res.errorBound + 1e-6);
  }
  const capped = ttSvd(w, m, n, { maxRank: 2 });
  t.ok(capped.ranks.every((r) => r <= 2));
  t.ok(capped.relError <= capped.errorBound + 1e-6);
});

t.test('degenerate inputs', async (t) => {
  const zero = ttSvd(new Float32Array(36), [2, 3], [3, 2], { eps: 0.1 });
  t.same(zero.ranks, [1, 1, 1]);
  t.equal(zero.relError, 0);
  t.ok(zero.cores.every((c) => c.every(Number.isFinite)));
  const w = randomNormal(normal, 36);
  const big = ttSvd(w, [2, 3], [3, 2], { ranks: [1, 50, 1] });
  t.same(big.ranks, [1, 6, 1], 'rank capped by the unfolding');
  t.ok(big.relError < 1e-6);
  const one = ttSvd(w, [6], [6], { eps: 0.1 });
  t.same(one.ranks, [1, 1]);
  t.ok(one.relError < 1e-6);
  t.throws(() => ttSvd(w, [2, 3], [3, 3]));
});
