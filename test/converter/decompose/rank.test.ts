import t from 'tap';
import {
  factorModes, paramsCp, paramsSvd, paramsTr, paramsTt, paramsTtl, paramsTucker2, rankForEnergy, rankForTail,
} from '../../../converter/decompose/index.js';
import { permuteAxes } from '../../../converter/decompose/modeProduct.js';
import { deinterleave, interleave } from '../../../converter/decompose/ttLayout.js';

t.test('rankForEnergy', async (t) => {
  const s = [3, 2, 1, 0]; // energies 9, 4, 1, 0 of 14
  t.equal(rankForEnergy(s, 0.5), 1);
  t.equal(rankForEnergy(s, 0.9), 2);
  t.equal(rankForEnergy(s, 0.99), 3);
  t.equal(rankForEnergy(s, 1), 3);
  t.equal(rankForEnergy([0, 0], 0.9), 1, 'a zero spectrum still gives a usable rank');
  t.equal(rankForEnergy(new Float64Array([1e-3, 1e-4, 1e-5]), 1), 3);
});

t.test('rankForTail', async (t) => {
  const s = [3, 2, 1, 0.5];
  t.equal(rankForTail(s, 0), 4);
  t.equal(rankForTail(s, 0.25), 3);
  t.equal(rankForTail(s, 1.25), 2);
  t.equal(rankForTail(s, 100), 1);
  t.equal(rankForTail(s, 0, 2), 2);
});

t.test('factorModes splits as evenly as possible', async (t) => {
  t.same(factorModes(784, 2), [28, 28]);
  t.same(factorModes(784, 3), [7, 8, 14]);
  t.same(factorModes(800, 3), [8, 10, 10]);
  t.same(factorModes(500, 3), [5, 10, 10]);
  t.same(factorModes(1024, 2), [32, 32]);
  t.same(factorModes(1024, 4), [4, 4, 8, 8]);
  t.same(factorModes(10, 1), [10]);
  t.same(factorModes(10, 3), [1, 2, 5]);
  t.same(factorModes(7, 2), [1, 7]);
  t.same(factorModes(1, 2), [1, 1]);
  for (const [n, p] of [[784, 4], [1000, 3], [96, 5]] as const) t.equal(factorModes(n, p).reduce((a, b) => a * b, 1), n);
  t.throws(() => factorModes(0, 2));
});

t.test('parameter counts', async (t) => {
  t.equal(paramsSvd(100, 50, 4), 600);
  t.equal(paramsTucker2(64, 32, 3, 3, 16, 8), 8 * 32 + 16 * 8 * 9 + 64 * 16);
  t.equal(paramsCp(64, 32, 3, 3, 10), 10 * (32 + 3 + 3 + 64));
  t.equal(paramsTt([4, 8], [7, 4], [1, 3, 1]), 4 * 7 * 3 + 3 * 8 * 4);
  t.equal(paramsTr([4, 8], [7, 4], [2, 3]), 2 * 28 * 3 + 3 * 32 * 2);
  t.equal(paramsTr([4, 8], [7, 4], [2, 3, 2]), 2 * 28 * 3 + 3 * 32 * 2);
  t.equal(paramsTtl([4, 8], [7], [2, 3, 4]), 24 + 4 * 2 + 8 * 3 + 7 * 4);
});

t.test('permuteAxes and the interleaved TT view', async (t) => {
  const x = Float64Array.from({ length: 24 }, (_, i) => i);
  const y = permuteAxes(x, [2, 3, 4], [2, 0, 1]);
  // y[c, a, b] = x[a, b, c]
  t.equal(y[(3 * 2 + 1) * 3 + 2], x[(1 * 3 + 2) * 4 + 3]);
  const m = [2, 3];
  const n = [4, 2];
  const w = Float64Array.from({ length: 48 }, (_, i) => i);
  const tt = interleave(w, m, n, 'test');
  // T[i0, j0, i1, j1] = W[i0*3+i1, j0*2+j1]
  t.equal(tt[((1 * 4 + 2) * 3 + 2) * 2 + 1], w[(1 * 3 + 2) * 8 + 2 * 2 + 1]);
  t.same([...deinterleave(tt, m, n)], [...w]);
});
