// The runtime's ADTN through the MPS (runtime/layers/adtnMps.ts): the MPS expanded into W against a
// brute-force product of full 2^Q x 2^Q layer matrices and against the gate-by-gate rebuild
// (adtnWeight), for gates of arity 1 to 4; its bonds against the shape-only count (mpsShape) and,
// at arity 2, the firmware's (adtnBonds); the per-call contraction against x W^T + b in f64; the
// three session paths against each other and the ONNX export (rebuilt W) in onnxruntime-node; the
// plan's choice on FC-2's hidden layer and on a 1024 x 1024 one.
import t from 'tap';
import { adtnBonds, adtnLayout, adtnQubits, adtnRuntimePlan, adtnWeight, setAdtnRuntimeMode, type AdtnPairing, type AdtnRuntimeMode } from '../../../runtime/layers/adtnDense.js';
import { adtnMps, contractionScratch, contractRows, expandMps, mpsShape, prepareContraction } from '../../../runtime/layers/adtnMps.js';
import { Session } from '../../../runtime/session.js';
import { agree, single, stored } from '../../converter/export/harness.js';

let seed = 4242;
const rnd = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
};
const randArr = (n: number) => Float32Array.from({ length: n }, rnd);

/** The state by full matrices: start = (x) start_k, then each gate as I_(2^p) (x) G (x) I, dense. */
function bruteState(q: number, depth: number, arity: number, pairing: AdtnPairing, start: Float32Array, gates: Float32Array): Float64Array {
  const N = 2 ** q, D = 2 ** arity;
  let s = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let v = 1;
    for (let k = 0; k < q; k++) v *= start[2 * k + ((n >> (q - 1 - k)) & 1)]!;
    s[n] = v;
  }
  const l = adtnLayout(q, depth, arity, pairing);
  let gi = 0;
  for (const layer of l.layers) {
    for (const p of layer) {
      const M = new Float64Array(N * N);
      const sh = q - p - arity;
      for (let i = 0; i < N; i++)
        for (let j = 0; j < N; j++) {
          const outside = ~(((D - 1) << sh) >>> 0);
          if ((i & outside) !== (j & outside)) continue;
          M[i * N + j] = gates[gi * D * D + ((i >> sh) & (D - 1)) * D + ((j >> sh) & (D - 1))]!;
        }
      const ns = new Float64Array(N);
      for (let i = 0; i < N; i++) {
        let a = 0;
        for (let j = 0; j < N; j++) a += M[i * N + j]! * s[j]!;
        ns[i] = a;
      }
      s = ns;
      gi++;
    }
  }
  return s;
}

const CASES: [number, number, number, number, AdtnPairing][] = [
  // out, in, depth, arity, pairing
  [3, 5, 3, 2, 'brickwall'],
  [10, 12, 5, 2, 'brickwall'],
  [5, 13, 3, 2, 'fixed'],
  [6, 11, 3, 1, 'fixed'],
  [7, 9, 5, 3, 'brickwall'],
  [9, 7, 4, 3, 'fixed'],
  [8, 16, 4, 4, 'brickwall'],
  [5, 20, 2, 4, 'fixed'],
];

t.test('the MPS expanded equals the brute-force state and the gate-by-gate rebuild, arity 1 to 4', async (t) => {
  for (const [out, inF, depth, arity, pairing] of CASES) {
    const l = adtnLayout(adtnQubits(out * inF, arity), depth, arity, pairing);
    const start = randArr(2 * l.q), gates = randArr(l.gates * 4 ** arity);
    const m = adtnMps(l, start, gates);
    const w = expandMps(m, out * inF);
    const ref = adtnWeight(l, start, gates, out, inF);
    const bf = bruteState(l.q, depth, arity, pairing, start, gates);
    let worst = 0, scale = 0, same = 0;
    for (let i = 0; i < w.length; i++) {
      worst = Math.max(worst, Math.abs(w[i]! - bf[i]!));
      scale = Math.max(scale, Math.abs(bf[i]!));
      if (w[i] === ref[i]) same++;
    }
    const tag = `${out}x${inF} depth ${depth} arity ${arity} ${pairing}`;
    t.ok(worst <= 1e-6 * scale, `${tag}: against brute force ${worst / scale}`);
    // The same f64 sums in another order, then rounded to f32: equal or one f32 step apart.
    let ulps = 0;
    for (let i = 0; i < w.length; i++) ulps = Math.max(ulps, Math.abs(w[i]! - ref[i]!) / (Math.abs(ref[i]!) * 2 ** -23 || 1e-30));
    t.ok(ulps <= 1, `${tag}: against the rebuild ${same}/${w.length} equal, within ${ulps.toFixed(2)} f32 steps`);
    const sh = mpsShape(l);
    t.same(sh.r, m.r, `${tag}: mpsShape's bonds are the built ones`);
    t.equal(sh.work, m.work, `${tag}: and its count`);
    if (arity <= 2) t.same(m.r, adtnBonds(l).bonds, `${tag}: the firmware's bonds (adtnBonds)`);
    t.ok(m.r.every((r, k) => r <= 2 ** Math.min(k, l.q - k)), `${tag}: bonds within 2^min(k, Q - k)`);
  }
});

t.test('contracting per call = x W^T + b (f64), blocks inside rows and across them', async (t) => {
  for (const [out, inF, depth, arity, pairing] of [...CASES, [12, 32, 4, 2, 'brickwall'] as const, [4, 48, 3, 2, 'brickwall'] as const]) {
    const l = adtnLayout(adtnQubits(out * inF, arity), depth, arity, pairing);
    const start = randArr(2 * l.q), gates = randArr(l.gates * 4 ** arity);
    const m = adtnMps(l, start, gates);
    const W = bruteState(l.q, depth, arity, pairing, start, gates);
    const ct = prepareContraction(m, out, inF);
    const rows = 3;
    const x = randArr(rows * inF), bias = randArr(out);
    const y = new Float32Array(rows * out);
    contractRows(ct, x, rows, out, inF, bias, y, contractionScratch(ct, out));
    let worst = 0, scale = 0;
    for (let r = 0; r < rows; r++)
      for (let o = 0; o < out; o++) {
        let a = bias[o]!;
        for (let i = 0; i < inF; i++) a += x[r * inF + i]! * W[o * inF + i]!;
        worst = Math.max(worst, Math.abs(a - y[r * out + o]!));
        scale = Math.max(scale, Math.abs(a));
      }
    t.ok(worst <= 1e-6 * scale, `${out}x${inF} depth ${depth} arity ${arity} ${pairing} (b ${ct.b}, ${ct.classes} classes): ${worst / scale}`);
  }
});

t.test('the three session paths agree, and with the ONNX export in onnxruntime-node', async (t) => {
  for (const [out, inF, depth, arity] of [[6, 10, 3, 2], [7, 9, 3, 3], [8, 16, 2, 4], [16, 64, 4, 2]] as const) {
    const l = adtnLayout(adtnQubits(out * inF, arity), depth, arity, 'brickwall');
    // entries of W of order 1 (a product of Q start entries near 1, gates near unit norm), so that
    // the paths' differences are not lost under the bias
    const st = Float32Array.from({ length: 2 * l.q }, () => (rnd() < 0 ? -1 : 1) * (0.9 + 0.4 * rnd()));
    const D = 2 ** arity;
    const gt = Float32Array.from({ length: l.gates * D * D }, (_, i) => (i % (D * D) % (D + 1) === 0 ? 1 : 0) + (2 / Math.sqrt(D)) * rnd());
    const weights = {
      start: { name: 'a.start', dtype: 'f32' as const, shape: [l.q, 2], data: st },
      gates: { name: 'a.gates', dtype: 'f32' as const, shape: [l.gates, D, D], data: gt },
      bias: stored('a.bias', [out]),
    };
    const model = single('adtn_dense', [inF], weights, { features: [out, inF], depth, arity, pairing: 'brickwall' });
    const x = { shape: [4, inF], data: randArr(4 * inF) };
    const ys: Float32Array[] = [];
    const tag = `${out}x${inF} depth ${depth} arity ${arity}`;
    for (const mode of ['rebuild', 'expand', 'contract'] as AdtnRuntimeMode[]) {
      const prev = setAdtnRuntimeMode(mode);
      try {
        ys.push(Session.create(model).runBatch(x).data);
        if (mode !== 'rebuild') await agree(t, model, { opset: 13 });
      } finally {
        setAdtnRuntimeMode(prev);
      }
    }
    let scale = 0;
    for (const v of ys[0]!) scale = Math.max(scale, Math.abs(v));
    t.ok(scale > 1, `${tag}: outputs of order ${scale.toFixed(1)}, above the bias's 0.5`);
    for (const [i, mode] of ['expand', 'contract'].entries()) {
      let d = 0, equal = 0;
      for (let j = 0; j < ys[0]!.length; j++) {
        d = Math.max(d, Math.abs(ys[i + 1]![j]! - ys[0]![j]!));
        if (ys[i + 1]![j] === ys[0]![j]) equal++;
      }
      t.ok(d <= 1e-6 * scale, `${tag}: ${mode} against the rebuild ${(d / scale).toExponential(2)} (${equal}/${ys[0]!.length} equal)`);
    }
    t.match(adtnRuntimePlan(l, out, inF).mode, /^(expand|contract|rebuild)$/, `${tag}: a plan`);
  }
});

t.test('the plan: FC-2 expands W, 1024 x 1024 contracts, a deep wide circuit rebuilds', async (t) => {
  const fc2 = adtnRuntimePlan(adtnLayout(adtnQubits(1024 * 784), 4, 2, 'brickwall'), 1024, 784);
  t.equal(fc2.mode, 'expand', fc2.why);
  t.ok(fc2.mpsWork + fc2.expandWork < fc2.rebuildWork / 10, 'at least 10x fewer multiply-adds than the rebuild');
  t.same(fc2.bonds, adtnBonds(adtnLayout(20, 4, 2, 'brickwall')).bonds, "FC-2's bonds are the firmware's (16 at most)");
  const a3 = adtnRuntimePlan(adtnLayout(adtnQubits(1024 * 784, 3), 3, 3, 'brickwall'), 1024, 784);
  t.equal(a3.mode, 'expand', `arity 3 on FC-2: ${a3.why}`);
  const sq = adtnRuntimePlan(adtnLayout(20, 4, 2, 'brickwall'), 1024, 1024);
  t.equal(sq.mode, 'contract', sq.why);
  const deep = adtnRuntimePlan(adtnLayout(12, 12, 4, 'brickwall'), 64, 64);
  t.equal(deep.mode, 'rebuild', deep.why);
  t.ok(deep.mpsWork + deep.expandWork > deep.rebuildWork, 'its MPS costs more than the rebuild');
});
