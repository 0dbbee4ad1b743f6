// B-spline branches of the flexact kind (runtime/layers/flexactSpline.ts, flexactBranches with basis
// 'bspline') against an oracle written out here: the knot vector listed explicitly, each B-spline
// by the recursive Cox–de Boor definition, g by de Boor's algorithm, and g′ as the derivative
// spline's sum. Then the layer through a .flm round trip against the oracle, and what the reader
// and prepare refuse.
import t from 'tap';
import { mulberry32, normalSource, randomNormal } from '../../converter/decompose/index.js';
import { writeFlm } from '../../converter/writer.js';
import { readFlm } from '../../runtime/format/reader.js';
import type { GraphNode, Model, StoredTensor } from '../../runtime/ir.js';
import { flexactBranches } from '../../runtime/layers/flexact.js';
import { splineBasis } from '../../runtime/layers/flexactSpline.js';
import { Session } from '../../runtime/session.js';

/** Clamped uniform cubic knots over [lo, hi] for K B-splines: 4 × lo, K − 4 interior, 4 × hi. */
function knots(lo: number, hi: number, K: number): number[] {
  const M = K - 3;
  const t: number[] = [lo, lo, lo];
  for (let i = 0; i <= M; i++) t.push(i === M ? hi : lo + ((hi - lo) * i) / M);
  t.push(hi, hi, hi);
  return t;
}

/** N_{i,p}(x) by the recursive definition (0/0 = 0); x = hi belongs to the last non-empty interval. */
function N(t: number[], i: number, p: number, x: number): number {
  if (p === 0) {
    const last = t[t.length - 1]!;
    if (x === last) return t[i]! < x && t[i + 1]! === x ? 1 : 0;
    return t[i]! <= x && x < t[i + 1]! ? 1 : 0;
  }
  const a = t[i + p]! - t[i]!;
  const b = t[i + p + 1]! - t[i + 1]!;
  return (a > 0 ? ((x - t[i]!) / a) * N(t, i, p - 1, x) : 0) + (b > 0 ? ((t[i + p + 1]! - x) / b) * N(t, i + 1, p - 1, x) : 0);
}

/** g(x) by de Boor's algorithm (knot span, then three rounds of affine combinations). */
function deBoor(t: number[], c: number[], x: number): number {
  const p = 3;
  let k = p;
  while (k < c.length - 1 && !(x < t[k + 1]!)) k++;
  const d = [0, 1, 2, 3].map((j) => c[j + k - p]!);
  for (let r = 1; r <= p; r++)
    for (let j = p; j >= r; j--) {
      const alpha = (x - t[j + k - p]!) / (t[j + 1 + k - r]! - t[j + k - p]!);
      d[j] = (1 - alpha) * d[j - 1]! + alpha * d[j]!;
    }
  return d[p]!;
}

/** g′(x) = Σ_i 3 (c_{i+1} − c_i) / (t_{i+4} − t_{i+1}) N_{i+1,2}(x). */
function deBoorSlope(t: number[], c: number[], x: number): number {
  let s = 0;
  for (let i = 0; i < c.length - 1; i++) s += (3 * (c[i + 1]! - c[i]!)) / (t[i + 4]! - t[i + 1]!) * N(t, i + 1, 2, x);
  return s;
}

t.test('splineBasis: the four non-zero B-splines and their derivatives, as defined', async (t) => {
  const normal = normalSource(mulberry32(5));
  const n = new Float64Array(4);
  const dn = new Float64Array(4);
  let worst = 0, worstD = 0, checked = 0;
  for (const K of [4, 5, 8, 13, 16]) {
    const lo = normal() - 1, hi = lo + 0.5 + Math.abs(normal()) * 3;
    const tk = knots(lo, hi, K);
    const xs = [lo, hi, ...Array.from({ length: 60 }, (_, i) => lo + ((hi - lo) * (i + 0.37)) / 60), ...tk.slice(4, K)];
    for (const x of xs) {
      const first = splineBasis(x, lo, hi, K, n, dn);
      let sum = 0;
      for (let i = 0; i < K; i++) {
        const k = i - first;
        const ours = k >= 0 && k < 4 ? n[k]! : 0;
        worst = Math.max(worst, Math.abs(ours - N(tk, i, 3, x)));
        sum += ours;
        // N′_{i,3} from the degree-2 B-splines, by definition.
        const a = tk[i + 3]! - tk[i]!, b = tk[i + 4]! - tk[i + 1]!;
        const want = 3 * ((a > 0 ? N(tk, i, 2, x) / a : 0) - (b > 0 ? N(tk, i + 1, 2, x) / b : 0));
        worstD = Math.max(worstD, Math.abs((k >= 0 && k < 4 ? dn[k]! : 0) - want) * (hi - lo));
        checked++;
      }
      t.ok(Math.abs(sum - 1) < 1e-12, `K ${K}: the B-splines sum to one at ${x.toFixed(4)}`);
    }
  }
  t.ok(worst < 1e-12, `values: worst difference ${worst.toExponential(2)} over ${checked} (K, i, x)`);
  t.ok(worstD < 1e-10, `derivatives: worst difference ${worstD.toExponential(2)} (scaled by the range's width)`);
  // Clamped ends: g(lo) = c_0 and g(hi) = c_{K−1}; a range of zero width is the constant c_0.
  const f = splineBasis(-2, -2, 1, 7, n, dn);
  t.same([f, n[0]], [0, 1]);
  const l = splineBasis(1, -2, 1, 7, n, dn);
  t.same([l + 3, n[3]], [6, 1]);
  t.equal(splineBasis(0.3, 0.3, 0.3, 7, n, dn), 0);
  t.same([...n, ...dn], [1, 0, 0, 0, 0, 0, 0, 0]);
});

t.test('flexactBranches with B-splines: de Boor inside the range, the tangent beyond it', async (t) => {
  const normal = normalSource(mulberry32(8));
  const r = 3, rows = 50;
  for (const K of [4, 6, 11, 16]) {
    const range = Float32Array.from([-1.5, 0.7, -0.2, 2.5, 0.25, 0.25]);
    const coeffs = Float32Array.from(randomNormal(normal, r * K));
    const z = Float32Array.from({ length: rows * r }, () => normal() * 1.6);
    const out = Float32Array.from(z);
    flexactBranches(out, coeffs, rows, r, K, range, 'bspline');
    let worst = 0, outside = 0;
    for (let k = 0; k < rows; k++)
      for (let b = 0; b < r; b++) {
        const lo = range[2 * b]!, hi = range[2 * b + 1]!;
        const c = Array.from(coeffs.subarray(b * K, (b + 1) * K));
        const x = z[k * r + b]!;
        let want: number;
        if (!(hi > lo)) want = c[0]!;
        else {
          const tk = knots(lo, hi, K);
          const e = Math.min(Math.max(x, lo), hi);
          want = deBoor(tk, c, e) + (e === x ? 0 : deBoorSlope(tk, c, e) * (x - e));
          if (e !== x) outside++;
        }
        worst = Math.max(worst, Math.abs(out[k * r + b]! - want) / (1 + Math.abs(want)));
      }
    t.ok(outside >= 20, `K ${K}: ${outside} of ${rows * 2} ranged values beyond their range`);
    t.ok(worst < 1e-6, `K ${K}: worst relative difference ${worst.toExponential(2)}`);
  }
  t.throws(() => flexactBranches(new Float32Array(3), new Float32Array(12), 1, 3, 4, undefined, 'bspline'), /range/);
});

function splineModel(inF: number, out: number, r: number, K: number, seed: number): { model: Model; v: Float32Array; w: Float32Array; c: Float32Array; b: Float32Array; range: Float32Array } {
  const normal = normalSource(mulberry32(seed));
  const f32 = (name: string, shape: number[], data: ArrayLike<number>): StoredTensor => ({ name, dtype: 'f32', shape, data: Float32Array.from(data) });
  const v = Float32Array.from(randomNormal(normal, r * inF, 1 / Math.sqrt(inF)));
  const w = Float32Array.from(randomNormal(normal, out * r));
  const c = Float32Array.from(randomNormal(normal, r * K));
  const b = Float32Array.from(randomNormal(normal, out));
  const range = Float32Array.from({ length: 2 * r }, (_, i) => (i % 2 === 0 ? -0.8 + 0.1 * (i >> 1) : 0.6 + 0.2 * (i >> 1)));
  const node: GraphNode = { name: 'fx', op: 'flexact', inputs: ['x'], outputs: ['y'], attrs: { basis: 'bspline', degree: K }, weights: { v: 'v', w: 'w', coeffs: 'c', bias: 'b', range: 'rg' } };
  const tensors = new Map<string, StoredTensor>([
    ['v', f32('v', [r, inF], v)], ['w', f32('w', [out, r], w)], ['c', f32('c', [r, K], c)], ['b', f32('b', [out], b)], ['rg', f32('rg', [r, 2], range)],
  ]);
  return { model: { graph: { inputs: [{ name: 'x', shape: [-1, inF] }], outputs: ['y'], nodes: [node] }, tensors, metadata: {} }, v, w, c, b, range };
}

t.test('a B-spline flexact layer runs as its definition, after a .flm round trip', async (t) => {
  const [inF, out, r, K, rows] = [9, 4, 3, 7, 20];
  const m = splineModel(inF, out, r, K, 31);
  const x = Float32Array.from(randomNormal(normalSource(mulberry32(32)), rows * inF));
  const y = Session.create(readFlm(writeFlm(m.model))).runBatch({ shape: [rows, inF], data: x });
  let worst = 0, scale = 1e-6;
  for (let k = 0; k < rows; k++)
    for (let i = 0; i < out; i++) {
      let s = m.b[i]!;
      for (let b = 0; b < r; b++) {
        let z = 0;
        for (let j = 0; j < inF; j++) z += m.v[b * inF + j]! * x[k * inF + j]!;
        const lo = m.range[2 * b]!, hi = m.range[2 * b + 1]!;
        const tk = knots(lo, hi, K);
        const c = Array.from(m.c.subarray(b * K, (b + 1) * K));
        const e = Math.min(Math.max(z, lo), hi);
        s += m.w[i * r + b]! * (deBoor(tk, c, e) + deBoorSlope(tk, c, e) * (z - e));
      }
      scale = Math.max(scale, Math.abs(s));
      worst = Math.max(worst, Math.abs(y.data[k * out + i]! - s));
    }
  t.ok(worst / scale < 1e-5, `max diff ${(worst / scale).toExponential(2)} of the output scale`);
});

t.test('B-spline flexact: the reader wants at least 4 B-splines, prepare wants the range', async (t) => {
  const m = splineModel(5, 2, 3, 4, 7);
  m.model.graph.nodes[0]!.attrs['degree'] = 3;
  m.model.tensors.set('c', { name: 'c', dtype: 'f32', shape: [3, 3], data: new Float32Array(9) });
  t.throws(() => readFlm(writeFlm(m.model)), { code: 'FLM_ATTR_RANGE' });
  const m2 = splineModel(5, 2, 3, 4, 7);
  delete m2.model.graph.nodes[0]!.weights['range'];
  m2.model.tensors.delete('rg');
  t.throws(() => Session.create(m2.model), { code: 'LAYER_INVALID' });
});
