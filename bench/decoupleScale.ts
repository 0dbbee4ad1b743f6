// How long one decoupling fit takes at FC-2's hidden-layer shape (784 → 1024 → 10, random
// weights, ReLU, inputs on a 100-dimensional subspace so that the principal projection matters),
// projected to 64 directions, for a few N and r: one restart, a fixed number of sweeps, so the
// times compare per sweep. Prints only. Run: npx tsx bench/decoupleScale.ts [sweeps]
import { decoupleDenseAct } from '../converter/decompose/decouple/pair.js';
import { mulberry32, normalSource, randomNormal } from '../converter/decompose/index.js';

const sweeps = Number(process.argv[2] ?? 10);
const normal = normalSource(mulberry32(1));
const [m, h, n] = [784, 1024, 10];
const pair = {
  inputs: m, hidden: h, outputs: n, activation: 'relu' as const,
  w1: randomNormal(normal, h * m, Math.sqrt(2 / m)), b1: randomNormal(normal, h, 0.1),
  w2: randomNormal(normal, n * h, Math.sqrt(1 / h)), b2: randomNormal(normal, n, 0.1),
};
const basis = randomNormal(normal, 100 * m, 1 / Math.sqrt(100));
function inputs(N: number): Float64Array {
  const c = randomNormal(normal, N * 100);
  const u = new Float64Array(N * m);
  for (let k = 0; k < N; k++) for (let a = 0; a < 100; a++) {
    const s = c[k * 100 + a]!;
    for (let j = 0; j < m; j++) u[k * m + j]! += s * basis[a * m + j]!;
  }
  return u;
}
for (const [N, r] of [[500, 16], [1000, 16], [500, 32]] as const) {
  const u = inputs(N);
  const t0 = performance.now();
  const fit = decoupleDenseAct(pair, u, N, r, { degree: 3, restarts: 1, iters: sweeps, tol: 0, components: 64 });
  const ms = performance.now() - t0;
  console.log(`N=${N} r=${r} p=64 D=3: ${sweeps} sweeps ${ms.toFixed(0)} ms (projection, samples, CP start included); J err ${fit.jacobianError.toFixed(3)}, F err ${fit.valueError.toFixed(3)}, energy kept ${fit.projection?.energy.toFixed(3)}`);
}
