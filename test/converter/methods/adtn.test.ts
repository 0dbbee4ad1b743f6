// ADTN (adtn_dense): the parameter count against its formula; the runtime's rebuild against a
// brute-force product of full 2^Q x 2^Q layer matrices (Kronecker products I (x) G (x) I); the
// trainable layer's weight against the runtime's and its gradients against central finite
// differences (computed in f64 from the runtime's rebuild); the fit recovering a weight built by a
// known network; the session against x W^T + b; the ONNX export against onnxruntime-node.
import t from 'tap';
import { fitAdtn } from '../../../converter/decompose/adtn.js';
import { adtnDense, adtnWeightVar } from '../../../converter/train/layers/adtn.js';
import { mul, sum } from '../../../converter/train/ops/elementwise.js';
import { backward, constant, param } from '../../../converter/train/tensor.js';
import { adtnLayout, adtnParams, adtnQubits, adtnState, adtnWeight, type AdtnPairing } from '../../../runtime/layers/adtnDense.js';
import { Session } from '../../../runtime/session.js';
import { agree, single, stored } from '../export/harness.js';

let seed = 12345;
const rnd = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
};
const randArr = (n: number, s = 1) => Float32Array.from({ length: n }, () => rnd() * s);

t.test('parameter count: 2Q + 4^k per gate, gates placed as the pairing says', async (t) => {
  // Q = 10, arity 2: brick-wall layers start at 0, 1, 0 -> 5 + 4 + 5 gates; fixed: 5 + 5 + 5.
  const b = adtnLayout(10, 3, 2, 'brickwall');
  t.same(b.layers, [[0, 2, 4, 6, 8], [1, 3, 5, 7], [0, 2, 4, 6, 8]]);
  t.equal(b.gates, 14);
  t.equal(adtnParams(b), 2 * 10 + 16 * 14);
  t.equal(adtnParams(adtnLayout(10, 3, 2, 'fixed')), 20 + 16 * 15);
  // Arity 3: layers start at 0, 1, 2 -> 3 + 3 + 2 gates of 64 entries.
  t.equal(adtnParams(adtnLayout(10, 3, 3, 'brickwall')), 20 + 64 * 8);
  // FC-2's hidden layer: 1024 x 784 = 802,816 weights -> Q = 20; depth 4 -> 2*20 + 16*(10+9+10+9).
  t.equal(adtnQubits(1024 * 784), 20);
  t.equal(adtnParams(adtnLayout(20, 4, 2, 'brickwall')), 40 + 16 * 38);
  // The trainable layer has exactly these parameters (plus its bias).
  const layer = adtnDense(784, 1024, { depth: 4 }, { bias: true });
  const n = Object.values(layer.params).reduce((a, v) => a + v.size, 0);
  t.equal(n, 40 + 16 * 38 + 1024);
  t.equal(adtnQubits(3), 2, 'at least arity indices');
});

/** The state by brute force: start = kron of the start vectors, each layer a full 2^Q matrix. */
function bruteState(q: number, depth: number, arity: number, pairing: AdtnPairing, start: Float32Array, gates: Float32Array): Float64Array {
  const N = 2 ** q;
  let s = new Float64Array([1]);
  for (let k = 0; k < q; k++) {
    const n = new Float64Array(s.length * 2);
    for (let i = 0; i < s.length; i++) for (let j = 0; j < 2; j++) n[i * 2 + j] = s[i]! * start[2 * k + j]!;
    s = n;
  }
  const D = 2 ** arity;
  let gi = 0;
  for (let m = 0; m < depth; m++) {
    // The layer's matrix: the Kronecker product, over index groups, of the gate or the identity.
    let L = new Float64Array([1]);
    let dim = 1;
    const kron = (A: Float64Array, da: number, B: Float64Array, db: number) => {
      const out = new Float64Array(da * db * da * db);
      for (let i = 0; i < da; i++) for (let j = 0; j < da; j++) for (let k = 0; k < db; k++) for (let l = 0; l < db; l++) out[(i * db + k) * da * db + j * db + l] = A[i * da + j]! * B[k * db + l]!;
      return out;
    };
    const eye2 = new Float64Array([1, 0, 0, 1]);
    const off = pairing === 'brickwall' ? m % arity : 0;
    let p = 0;
    while (p < q) {
      if (p >= off && (p - off) % arity === 0 && p + arity <= q) {
        const G = Float64Array.from(gates.subarray(gi * D * D, (gi + 1) * D * D));
        L = kron(L, dim, G, D);
        dim *= D;
        gi++;
        p += arity;
      } else {
        L = kron(L, dim, eye2, 2);
        dim *= 2;
        p++;
      }
    }
    const n = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      let a = 0;
      for (let j = 0; j < N; j++) a += L[i * N + j]! * s[j]!;
      n[i] = a;
    }
    s = n;
  }
  return s;
}

t.test('runtime rebuild = brute-force product of the layer matrices', async (t) => {
  for (const [q, depth, arity, pairing] of [[6, 3, 2, 'brickwall'], [7, 4, 2, 'fixed'], [7, 3, 3, 'brickwall']] as const) {
    const l = adtnLayout(q, depth, arity, pairing);
    const start = randArr(2 * q, 2);
    const gates = randArr(l.gates * 4 ** arity);
    const got = adtnState(l, start, gates);
    const want = bruteState(q, depth, arity, pairing, start, gates);
    let worst = 0, scale = 0;
    for (let i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      scale = Math.max(scale, Math.abs(want[i]!));
    }
    t.ok(scale > 0 && worst <= 1e-12 * Math.max(1, scale), `Q ${q} depth ${depth} arity ${arity} ${pairing}: max diff ${worst} (scale ${scale})`);
    // W is the head of the state, row-major.
    const w = adtnWeight(l, start, gates, 3, 5);
    t.ok(w.every((v, i) => Math.abs(v - want[i]!) <= 1e-6 * Math.max(1, Math.abs(want[i]!))), 'W [3, 5] is the first 15 entries');
  }
});

t.test('trainable weight = runtime rebuild; gradients = central finite differences', async (t) => {
  for (const [q, depth, arity, pairing, rows, cols] of [[5, 3, 2, 'brickwall', 4, 7], [6, 2, 3, 'fixed', 5, 12]] as const) {
    const l = adtnLayout(q, depth, arity, pairing);
    const start = param(randArr(2 * q, 2), [q, 2], 'start');
    const gates = param(randArr(l.gates * 4 ** arity), [l.gates, 2 ** arity, 2 ** arity], 'gates');
    const c = randArr(rows * cols);
    const W = adtnWeightVar(l, start, gates, rows, cols);
    const ref = adtnWeight(l, start.data, gates.data, rows, cols);
    t.ok(W.data.every((v, i) => Math.abs(v - ref[i]!) <= 1e-5 * Math.max(1e-3, Math.abs(ref[i]!))), 'forward matches the runtime');
    backward(sum(mul(W, constant(c, [rows, cols]))));
    const loss = () => {
      const s = adtnState(l, start.data, gates.data);
      let a = 0;
      for (let i = 0; i < rows * cols; i++) a += c[i]! * s[i]!;
      return a;
    };
    for (const v of [start, gates]) {
      let worst = 0, big = 0;
      for (let i = 0; i < v.size; i++) {
        const o = v.data[i]!;
        const h = 1e-2;
        v.data[i] = o + h;
        const a = loss();
        v.data[i] = o - h;
        const b = loss();
        v.data[i] = o;
        // The loss is multilinear in the parameters: the central difference is exact up to rounding.
        const fd = (a - b) / (2 * h);
        worst = Math.max(worst, Math.abs(fd - v.grad![i]!));
        big = Math.max(big, Math.abs(fd));
      }
      t.ok(big > 0 && worst <= 1e-4 * big, `${v.name} (Q ${q}, arity ${arity}): max |grad - fd| ${worst.toExponential(2)} of ${big.toExponential(2)}`);
    }
  }
});

t.test('the fit recovers a weight built by a known network of the same shape', async (t) => {
  const l = adtnLayout(adtnQubits(16 * 16), 3, 2, 'brickwall');
  const w = adtnWeight(l, randArr(2 * l.q, 2), randArr(l.gates * 16), 16, 16);
  const f = fitAdtn(w, 16, 16, { depth: 3, steps: 1500, lr: 0.01, seed: 1 });
  t.ok(f.relErrorStart > 0.5, `starts far: ${f.relErrorStart}`);
  t.ok(f.relError < 0.1, `relative error ${f.relError} after 1500 steps`);
  // The fitted parameters rebuild to what the fit reports.
  const back = adtnWeight(f.layout, f.start, f.gates, 16, 16);
  let d = 0, n = 0;
  for (let i = 0; i < w.length; i++) {
    d += (back[i]! - w[i]!) ** 2;
    n += w[i]! ** 2;
  }
  t.ok(Math.abs(Math.sqrt(d / n) - f.relError) < 1e-3, `rebuilt error ${Math.sqrt(d / n)} = reported ${f.relError}`);
});

t.test('session: adtn_dense = x W^T + b; ONNX export (rebuilt weight, Gemm) agrees in onnxruntime', async (t) => {
  const out = 6, inF = 10;
  const l = adtnLayout(adtnQubits(out * inF), 3, 2, 'brickwall');
  const weights = { start: stored('a.start', [l.q, 2]), gates: stored('a.gates', [l.gates, 4, 4]), bias: stored('a.bias', [out]) };
  const attrs = { features: [out, inF], depth: 3, arity: 2, pairing: 'brickwall' };
  const model = single('adtn_dense', [inF], weights, attrs);
  const W = adtnWeight(l, weights.start.data as Float32Array, weights.gates.data as Float32Array, out, inF);
  const x = randArr(3 * inF);
  const y = Session.create(model).runBatch({ shape: [3, inF], data: x }).data;
  let worst = 0;
  for (let r = 0; r < 3; r++) {
    for (let o = 0; o < out; o++) {
      let a = (weights.bias.data as Float32Array)[o]!;
      for (let i = 0; i < inF; i++) a += x[r * inF + i]! * W[o * inF + i]!;
      worst = Math.max(worst, Math.abs(a - y[r * out + o]!));
    }
  }
  t.ok(worst < 1e-5, `session vs x W^T + b: ${worst}`);
  await agree(t, model, { opset: 13 });
  // A wrong gates shape is a one-line layer error naming the shape expected.
  const bad = single('adtn_dense', [inF], { ...weights, gates: stored('g', [l.gates - 1, 4, 4]) }, attrs);
  t.throws(() => Session.create(bad), /gates has shape \[\d+,4,4\], expected \[\d+, 4, 4\]/);
});
