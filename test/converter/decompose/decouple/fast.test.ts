// The decoupling solver's fast paths against the exact ones they replace: the sweep cost without
// forming Ĵ against the cost from Ĵ in full, and the randomized range finder's principal
// directions (and a whole fit through them) against the covariance's eigenvectors.
import t from 'tap';
import { decouple, decoupleCosts, evaluateDecoupled, jacobianDecoupled, type DecoupledFunction } from '../../../../converter/decompose/decouple/als.js';
import { decoupleDenseAct } from '../../../../converter/decompose/decouple/pair.js';
import { denseActSamples, principalDirections, type DenseActPair, type PrincipalDirections } from '../../../../converter/decompose/decouple/samples.js';
import { limitDataset, loadDataset } from '../../../../converter/data/datasets.js';
import { mulberry32, normalSource, randomNormal, relativeError } from '../../../../converter/decompose/index.js';
import { needFashion } from '../../../support/require.js';

function randomPair(seed: number, m: number, h: number, n: number): DenseActPair {
  const normal = normalSource(mulberry32(seed));
  return {
    inputs: m, hidden: h, outputs: n, activation: 'tanh',
    w1: randomNormal(normal, h * m, 1 / Math.sqrt(m)), b1: randomNormal(normal, h, 0.3),
    w2: randomNormal(normal, n * h, 1 / Math.sqrt(h)), b2: randomNormal(normal, n, 0.3),
  };
}

function randomFunction(seed: number, m: number, n: number, r: number, basis: 'poly' | 'bspline', D: number): DecoupledFunction {
  const normal = normalSource(mulberry32(seed));
  const range = new Float64Array(2 * r);
  for (let b = 0; b < r; b++) {
    range[2 * b] = -1e6;
    range[2 * b + 1] = 1e6;
  }
  return {
    inputs: m, outputs: n, branches: r, basis, degree: D, v: randomNormal(normal, m * r, 1 / Math.sqrt(m)),
    coeffs: randomNormal(normal, r * D), w: randomNormal(normal, n * r), bias: randomNormal(normal, n), range,
  };
}

/** Inputs [N, m] with singular values 0.8^j along random orthogonal-ish directions, plus an offset. */
function decayingInputs(seed: number, N: number, m: number, rank: number): Float64Array {
  const normal = normalSource(mulberry32(seed));
  const dirs = randomNormal(normal, rank * m, 1 / Math.sqrt(m));
  const coords = randomNormal(normal, N * rank);
  const u = new Float64Array(N * m);
  for (let k = 0; k < N; k++)
    for (let c = 0; c < rank; c++) {
      const s = coords[k * rank + c]! * 0.8 ** c;
      for (let j = 0; j < m; j++) u[k * m + j]! += s * dirs[c * m + j]!;
    }
  for (let j = 0; j < m; j++) for (let k = 0; k < N; k++) u[k * m + j]! += 0.1 * j;
  return u;
}

/** ‖AᵀB‖²_F / p for two orthonormal bases [m, p]: 1 when they span the same subspace. */
function overlap(a: PrincipalDirections, b: PrincipalDirections, m: number): number {
  const p = a.p;
  let s = 0;
  for (let x = 0; x < p; x++)
    for (let y = 0; y < p; y++) {
      let d = 0;
      for (let j = 0; j < m; j++) d += a.basis[j * p + x]! * b.basis[j * p + y]!;
      s += d * d;
    }
  return s / p;
}

t.test('the sweep cost without forming Ĵ matches the cost from Ĵ in full', async (t) => {
  const m = 24, n = 6, N = 150;
  const pair = randomPair(1, m, 20, n);
  const s = denseActSamples(pair, randomNormal(normalSource(mulberry32(2)), N * m), N);
  for (const [basis, D] of [['poly', 3], ['poly', 5], ['bspline', 8]] as const)
    for (const r of [1, 4, 9]) {
      const fn = randomFunction(10 * r + D, m, n, r, basis, D);
      for (const lambda of [1, 0.1]) {
        const c = decoupleCosts(s, fn, lambda);
        t.ok(Math.abs(c.expanded - c.direct) <= 1e-10 * c.direct, `${basis}:${D} r=${r} λ=${lambda}: ${c.expanded} vs ${c.direct}`);
      }
    }
  // An exact state: the expansion would lose its digits to cancellation, so the direct cost is used.
  const truth = randomFunction(7, m, n, 3, 'poly', 3);
  const x = randomNormal(normalSource(mulberry32(8)), N * m);
  const exact = { count: N, inputs: m, outputs: n, x, values: evaluateDecoupled(truth, x, N), jacobians: jacobianDecoupled(truth, x, N) };
  const c = decoupleCosts(exact, truth);
  t.equal(c.expanded, c.direct);
  t.ok(c.direct < 1e-24, `exact state's cost ${c.direct}`);
});

t.test('randomized principal directions match the exact ones on a decaying spectrum', async (t) => {
  const N = 300, m = 200;
  const u = decayingInputs(3, N, m, 60);
  for (const p of [8, 16]) {
    const exact = principalDirections(u, N, m, p, { method: 'exact' });
    const fast = principalDirections(u, N, m, p, { method: 'randomized', seed: 4 });
    const auto = principalDirections(u, N, m, p, { seed: 4 });
    t.same(auto.basis, fast.basis, 'auto takes the randomized path when p + oversample ≤ m / 2');
    // With l = p + 10 columns and q = 4 power iterations the subspace error goes as
    // (σ_(l+1)/σ_p)^9 = 0.8^99 ≈ 2.5e-10 here.
    t.ok(exact.energy - fast.energy < 1e-9, `p=${p}: energy ${fast.energy} vs exact ${exact.energy}`);
    t.ok(fast.energy <= exact.energy + 1e-12, 'the exact directions hold the most variance');
    t.ok(1 - overlap(exact, fast, m) < 1e-8, `p=${p}: 1 − overlap ${1 - overlap(exact, fast, m)}`);
    // Orthonormal columns.
    let worst = 0;
    for (let x = 0; x < p; x++)
      for (let y = 0; y < p; y++) {
        let d = 0;
        for (let j = 0; j < m; j++) d += fast.basis[j * p + x]! * fast.basis[j * p + y]!;
        worst = Math.max(worst, Math.abs(d - (x === y ? 1 : 0)));
      }
    t.ok(worst < 1e-12, `orthonormal: ${worst}`);
  }
});

t.test('inputs of lower rank than p fall back to the exact directions', async (t) => {
  const N = 100, m = 60;
  const u = decayingInputs(5, N, m, 3);
  const exact = principalDirections(u, N, m, 5, { method: 'exact' });
  const fast = principalDirections(u, N, m, 5, { method: 'randomized' });
  t.same(fast.basis, exact.basis);
  t.ok(fast.energy > 1 - 1e-12, `energy ${fast.energy}`);
});

t.test('a fit through the randomized projection matches the fit through the exact one', async (t) => {
  const N = 300, m = 200;
  const u = decayingInputs(6, N, m, 60);
  const pair = randomPair(7, m, 12, 4);
  const opts = { degree: 3, components: 16, start: 'directions' as const, restarts: 1, iters: 30, seed: 1 };
  const exact = decoupleDenseAct(pair, u, N, 3, { ...opts, projectionMethod: 'exact' });
  const fast = decoupleDenseAct(pair, u, N, 3, { ...opts, projectionMethod: 'randomized' });
  t.ok(Math.abs(fast.jacobianError - exact.jacobianError) < 1e-6, `J error ${fast.jacobianError} vs ${exact.jacobianError}`);
  t.ok(Math.abs(fast.valueError - exact.valueError) < 1e-6, `F error ${fast.valueError} vs ${exact.valueError}`);
  const d = relativeError(evaluateDecoupled(exact.fn, u, N), evaluateDecoupled(fast.fn, u, N));
  t.ok(d < 1e-6, `the two fitted functions on the inputs: ${d}`);
});

t.test('Fashion-MNIST, p = 64: the randomized directions hold the exact ones\' variance to 1e-4', async (t) => {
  if (!needFashion(t)) return;
  const N = 1000, m = 784, p = 64;
  const u = limitDataset(loadDataset('fashion-mnist', 'test'), N).images;
  const exact = principalDirections(u, N, m, p, { method: 'exact' });
  const fast = principalDirections(u, N, m, p);
  // Measured: 3.5e-5 of the variance short and 1 − overlap 1e-3 on the training images (the
  // spectrum decays slowly around the 64th direction).
  t.ok(exact.energy - fast.energy < 1e-4, `energy ${fast.energy} vs exact ${exact.energy}`);
  t.ok(1 - overlap(exact, fast, m) < 5e-3, `1 − overlap ${1 - overlap(exact, fast, m)}`);
});

t.test('warm restarts: the first fit is unchanged, the later ones start near the best, an exact fit stays exact', async (t) => {
  const m = 24, n = 6, N = 200;
  const pair = randomPair(11, m, 20, n);
  const s = denseActSamples(pair, randomNormal(normalSource(mulberry32(12)), N * m), N);
  const one = decouple(s, 3, { degree: 3, restarts: 1, iters: 40, seed: 2 });
  const warm = decouple(s, 3, { degree: 3, restarts: 4, iters: 40, seed: 2, warm: 0.3 });
  t.equal(warm.restartCosts.length, 4);
  t.equal(warm.restartCosts[0], one.restartCosts[0], 'restart 0 does not depend on the later ones');
  t.ok(Math.min(...warm.restartCosts) <= one.restartCosts[0]!, 'the best of the restarts is kept');
  const reported = warm.jacobianError ** 2 + warm.valueError ** 2;
  t.ok(Math.abs(reported - Math.min(...warm.restartCosts)) <= 1e-9 * reported, `reported ${reported} vs best ${Math.min(...warm.restartCosts)}`);
  // A known decoupled function (cubic branches) is recovered exactly with warm restarts too.
  const truth = randomFunction(13, 8, 5, 3, 'poly', 3);
  const x = randomNormal(normalSource(mulberry32(14)), 300 * 8);
  const exact = { count: 300, inputs: 8, outputs: 5, x, values: evaluateDecoupled(truth, x, 300), jacobians: jacobianDecoupled(truth, x, 300) };
  const rec = decouple(exact, 3, { degree: 3, restarts: 3, seed: 1, warm: 0.3 });
  t.ok(rec.jacobianError < 1e-9 && rec.valueError < 1e-9, `J ${rec.jacobianError}, F ${rec.valueError}`);
});
