// CP significance: each term's value is the Frobenius norm of its rank-1 kernel, computed here from
// the full tensor; a term scaled x10 ranks first; feature-map sums follow the formula.
import t from 'tap';
import { cpSignificance, type CpFactors } from '../../../converter/explain/cp.js';
import { randArray, rng } from './helpers.js';

function factors(seed: number): CpFactors {
  const r = rng(seed);
  const R = 6, I = 4, O = 5, kh = 3, kw = 3;
  return { R, I, O, kh, kw, aIn: randArray(R * I, r), kH: randArray(R * kh, r), kW: randArray(R * kw, r), aOut: randArray(O * R, r) };
}

/** ||W_r||_F of the rank-1 tensor W_r[o,i,y,x] = a_out[o,r] a_in[r,i] k_h[r,y] k_w[r,x], summed entry by entry. */
function termNorm(f: CpFactors, r: number): number {
  let s = 0;
  for (let o = 0; o < f.O; o++) for (let i = 0; i < f.I; i++) for (let y = 0; y < f.kh; y++) for (let x = 0; x < f.kw; x++) {
    s += (f.aOut[o * f.R + r]! * f.aIn[r * f.I + i]! * f.kH[r * f.kh + y]! * f.kW[r * f.kw + x]!) ** 2;
  }
  return Math.sqrt(s);
}

t.test('term significance is the norm of each rank-1 term', async (t) => {
  const f = factors(3);
  const s = cpSignificance(f);
  t.equal(s.termSignificance.length, f.R);
  for (let r = 0; r < f.R; r++) t.ok(Math.abs(s.termSignificance[r]! - termNorm(f, r)) < 1e-9 * Math.max(1, termNorm(f, r)), `term ${r}`);
  const sorted = [...s.termOrder].map((r) => s.termSignificance[r]!);
  t.ok(sorted.every((v, k) => k === 0 || v <= sorted[k - 1]!), 'termOrder is by decreasing significance');
  // Output map o: sum_r |a_out[o,r]| * (norm of the rest of term r) = sum_r ||W_r[o]||_F.
  for (let o = 0; o < f.O; o++) {
    let want = 0;
    for (let r = 0; r < f.R; r++) want += Math.abs(f.aOut[o * f.R + r]!) * termNorm(f, r) / Math.hypot(...Array.from({ length: f.O }, (_, q) => f.aOut[q * f.R + r]!));
    t.ok(Math.abs(s.outputMaps[o]! - want) < 1e-9 * Math.max(1, want), `output map ${o}`);
  }
  t.equal(s.inputMaps.length, f.I);
});

t.test('a term scaled x10 ranks first', async (t) => {
  for (const target of [0, 2, 5]) {
    const f = factors(9);
    const before = cpSignificance(f).termSignificance[target]!;
    for (let i = 0; i < f.I; i++) f.aIn[target * f.I + i]! *= 10;
    const s = cpSignificance(f);
    t.equal(s.termOrder[0], target, `term ${target} first`);
    t.ok(Math.abs(s.termSignificance[target]! - 10 * before) < 1e-6 * 10 * before, 'its significance is 10x');
  }
});
