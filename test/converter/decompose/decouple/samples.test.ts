import t from 'tap';
import { evaluateDecoupled } from '../../../../converter/decompose/decouple/als.js';
import { decoupleDenseAct } from '../../../../converter/decompose/decouple/pair.js';
import { denseActSamples, principalDirections, type DenseActPair, type PairActivation } from '../../../../converter/decompose/decouple/samples.js';
import { mulberry32, normalSource, randomNormal, relativeError } from '../../../../converter/decompose/index.js';

function makePair(seed: number, m: number, h: number, n: number, activation: PairActivation): DenseActPair {
  const normal = normalSource(mulberry32(seed));
  return {
    inputs: m, hidden: h, outputs: n, activation,
    w1: randomNormal(normal, h * m, 1 / Math.sqrt(m)), b1: randomNormal(normal, h, 0.3),
    w2: randomNormal(normal, n * h, 1 / Math.sqrt(h)), b2: randomNormal(normal, n, 0.3),
  };
}

/** The pair evaluated directly, one input at a time. */
function forward(pair: DenseActPair, u: ArrayLike<number>): number[] {
  const act = (a: number) => pair.activation === 'relu' ? Math.max(0, a) : pair.activation === 'tanh' ? Math.tanh(a)
    : pair.activation === 'sigmoid' ? 1 / (1 + Math.exp(-a)) : a;
  const y = Array.from({ length: pair.hidden }, (_, q) => {
    let a = pair.b1[q]!;
    for (let j = 0; j < pair.inputs; j++) a += pair.w1[q * pair.inputs + j]! * u[j]!;
    return act(a);
  });
  return Array.from({ length: pair.outputs }, (_, i) => y.reduce((s, v, q) => s + pair.w2[i * pair.hidden + q]! * v, pair.b2[i]!));
}

t.test('analytic Jacobians of dense → σ → dense match central finite differences', async (t) => {
  for (const act of ['tanh', 'sigmoid', 'relu', 'identity'] as const) {
    const pair = makePair(1, 5, 7, 3, act);
    const u = randomNormal(normalSource(mulberry32(2)), 4 * 5);
    const s = denseActSamples(pair, u, 4);
    const h = 1e-6;
    let worst = 0;
    for (let k = 0; k < 4; k++) {
      const uk = Array.from(u.subarray(k * 5, k * 5 + 5));
      const f = forward(pair, uk);
      for (let i = 0; i < 3; i++) t.ok(Math.abs(f[i]! - s.values[k * 3 + i]!) < 1e-12);
      for (let j = 0; j < 5; j++) {
        const up = uk.slice(); up[j]! += h;
        const um = uk.slice(); um[j]! -= h;
        const fp = forward(pair, up);
        const fm = forward(pair, um);
        // (ReLU: random points lie off the kinks by far more than h.)
        for (let i = 0; i < 3; i++) worst = Math.max(worst, Math.abs((fp[i]! - fm[i]!) / (2 * h) - s.jacobians[(k * 3 + i) * 5 + j]!));
      }
    }
    t.ok(worst < 1e-7, `${act}: worst |J − FD| ${worst}`);
  }
});

t.test('projected samples are J P and u P; inputs on a subspace keep all their variance', async (t) => {
  const m = 12, p = 4, N = 60;
  const normal = normalSource(mulberry32(3));
  // Inputs on a random 4-dimensional subspace of R^12.
  const basis = randomNormal(normal, p * m);
  const coords = randomNormal(normal, N * p);
  const u = new Float64Array(N * m);
  for (let k = 0; k < N; k++) for (let j = 0; j < m; j++) for (let c = 0; c < p; c++) u[k * m + j]! += coords[k * p + c]! * basis[c * m + j]!;
  const pd = principalDirections(u, N, m, p);
  t.ok(pd.energy > 1 - 1e-12, `energy ${pd.energy}`);
  const pair = makePair(4, m, 9, 3, 'tanh');
  const full = denseActSamples(pair, u, N);
  const proj = denseActSamples(pair, u, N, pd);
  t.equal(proj.inputs, p);
  t.same(proj.values, full.values);
  // J P computed here from the full Jacobian
  const jp = new Float64Array(N * 3 * p);
  for (let q = 0; q < N * 3; q++) for (let c = 0; c < p; c++) for (let j = 0; j < m; j++) jp[q * p + c]! += full.jacobians[q * m + j]! * pd.basis[j * p + c]!;
  t.ok(relativeError(jp, proj.jacobians) < 1e-12);
});

t.test('a tanh pair with as many hidden neurons as branches decouples; higher degree fits better', async (t) => {
  // W2 tanh(W1 u + b1) + b2 is itself decoupled with g_r = tanh(z + b1_r): only the polynomial's
  // approximation of tanh on the data's range (pre-activations reach about ±3) is left: a degree-7
  // polynomial follows tanh there to a few per cent, its derivative (degree 6) less closely.
  const pair = makePair(5, 6, 3, 4, 'tanh');
  const N = 300;
  const u = randomNormal(normalSource(mulberry32(6)), N * 6);
  const cubic = decoupleDenseAct(pair, u, N, 3, { degree: 3, seed: 1 });
  const seventh = decoupleDenseAct(pair, u, N, 3, { degree: 7, seed: 1 });
  t.ok(seventh.jacobianError < cubic.jacobianError, `D=7 ${seventh.jacobianError} < D=3 ${cubic.jacobianError}`);
  t.ok(seventh.jacobianError < 0.1, `D=7 Jacobian error ${seventh.jacobianError}`);
  t.ok(seventh.valueError < 0.05, `D=7 value error ${seventh.valueError}`);
});

t.test('a wide input is fitted in its principal directions and V reads the original input', async (t) => {
  const m = 80, p = 5, N = 200;
  const normal = normalSource(mulberry32(7));
  const basis = randomNormal(normal, p * m, 1 / Math.sqrt(m));
  const coords = randomNormal(normal, N * p);
  const u = new Float64Array(N * m);
  for (let k = 0; k < N; k++) for (let j = 0; j < m; j++) for (let c = 0; c < p; c++) u[k * m + j]! += coords[k * p + c]! * basis[c * m + j]!;
  const pair = makePair(8, m, 2, 3, 'tanh');
  const res = decoupleDenseAct(pair, u, N, 2, { degree: 5, components: p, seed: 1 });
  t.equal(res.projection?.p, p);
  t.equal(res.fn.inputs, m);
  t.equal(res.fn.v.length, m * 2);
  // The lifted function, evaluated on the raw inputs, gives the pair's values.
  const direct = new Float64Array(N * 3);
  for (let k = 0; k < N; k++) forward(pair, u.subarray(k * m, (k + 1) * m)).forEach((y, i) => { direct[k * 3 + i] = y; });
  const err = relativeError(direct, evaluateDecoupled(res.fn, u, N));
  t.ok(err < 0.05, `values through the lifted V: ${err}`);
  t.ok(res.jacobianError < 0.05, `projected Jacobian error ${res.jacobianError}`);
});
