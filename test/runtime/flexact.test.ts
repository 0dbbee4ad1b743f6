// The flexact layer kind (runtime/layers/flexact.ts) against a direct f64 evaluation of
// y = Σ_b w[:, b] g_b(v_b · x) + bias written out here, through a .flm round trip; and against the
// decoupling solver's own evaluation of the function it fitted.
import t from 'tap';
import { evaluateDecoupled, type DecoupledFunction } from '../../converter/decompose/decouple/als.js';
import { mulberry32, normalSource, randomNormal } from '../../converter/decompose/index.js';
import { writeFlm } from '../../converter/writer.js';
import { readFlm } from '../../runtime/format/reader.js';
import type { GraphNode, Model, StoredTensor } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';

const f32 = (name: string, shape: number[], data: ArrayLike<number>): StoredTensor => ({ name, dtype: 'f32', shape, data: Float32Array.from(data) });

function flexactModel(inF: number, out: number, r: number, D: number, seed: number, withBias = true): { model: Model; v: Float32Array; w: Float32Array; c: Float32Array; b: Float32Array } {
  const normal = normalSource(mulberry32(seed));
  const v = Float32Array.from(randomNormal(normal, r * inF, 1 / Math.sqrt(inF)));
  const w = Float32Array.from(randomNormal(normal, out * r));
  const c = Float32Array.from(randomNormal(normal, r * D, 0.5));
  const b = withBias ? Float32Array.from(randomNormal(normal, out)) : new Float32Array(out);
  const weights: Record<string, string> = { v: 'v', w: 'w', coeffs: 'c' };
  const tensors = new Map<string, StoredTensor>([['v', f32('v', [r, inF], v)], ['w', f32('w', [out, r], w)], ['c', f32('c', [r, D], c)]]);
  if (withBias) {
    weights['bias'] = 'b';
    tensors.set('b', f32('b', [out], b));
  }
  const node: GraphNode = { name: 'fx', op: 'flexact', inputs: ['x'], outputs: ['y'], attrs: { basis: 'poly', degree: D }, weights };
  return { model: { graph: { inputs: [{ name: 'x', shape: [-1, inF] }], outputs: ['y'], nodes: [node] }, tensors, metadata: {} }, v, w, c, b };
}

function direct(m: ReturnType<typeof flexactModel>, x: Float32Array, rows: number, inF: number, out: number, r: number, D: number): Float64Array {
  const y = new Float64Array(rows * out);
  for (let k = 0; k < rows; k++)
    for (let i = 0; i < out; i++) {
      let s = m.b[i]!;
      for (let br = 0; br < r; br++) {
        let z = 0;
        for (let j = 0; j < inF; j++) z += m.v[br * inF + j]! * x[k * inF + j]!;
        let g = 0;
        for (let d = 1; d <= D; d++) g += m.c[br * D + d - 1]! * z ** d;
        s += m.w[i * r + br]! * g;
      }
      y[k * out + i] = s;
    }
  return y;
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 1e-6, d = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d / scale;
}

t.test('flexact runs as its direct definition, after a .flm round trip', async (t) => {
  for (const [inF, out, r, D, bias] of [[9, 4, 3, 3, true], [16, 5, 6, 5, false], [7, 2, 1, 1, true]] as const) {
    const m = flexactModel(inF, out, r, D, inF * 10 + D, bias);
    const model = readFlm(writeFlm(m.model));
    const rows = 6;
    const x = Float32Array.from(randomNormal(normalSource(mulberry32(r)), rows * inF));
    const y = Session.create(model).runBatch({ shape: [rows, inF], data: x });
    t.same(y.shape, [rows, out]);
    const diff = maxRel(y.data, direct(m, x, rows, inF, out, r, D));
    t.ok(diff < 1e-5, `in ${inF} out ${out} r ${r} D ${D}: max diff ${diff.toExponential(2)} of the output scale`);
  }
});

t.test('flexact reproduces the solver evaluation of the same function', async (t) => {
  const m = flexactModel(8, 3, 4, 3, 99);
  // The solver keeps V as [m, r]; the layer stores v as [r, in].
  const vt = new Float64Array(8 * 4);
  for (let b = 0; b < 4; b++) for (let j = 0; j < 8; j++) vt[j * 4 + b] = m.v[b * 8 + j]!;
  const fn: DecoupledFunction = { inputs: 8, outputs: 3, branches: 4, basis: 'poly', degree: 3, v: vt, coeffs: Float64Array.from(m.c), w: Float64Array.from(m.w), bias: Float64Array.from(m.b) };
  const x = Float32Array.from(randomNormal(normalSource(mulberry32(3)), 5 * 8));
  const y = Session.create(m.model).runBatch({ shape: [5, 8], data: x });
  t.ok(maxRel(y.data, evaluateDecoupled(fn, x, 5)) < 1e-5);
});

t.test('flexact refuses coefficients that do not match its degree or branches', async (t) => {
  const m = flexactModel(5, 2, 3, 3, 7);
  m.model.graph.nodes[0]!.attrs['degree'] = 4;
  t.throws(() => Session.create(m.model), { code: 'LAYER_INVALID' });
  const m2 = flexactModel(5, 2, 3, 3, 7);
  m2.model.tensors.set('w', f32('w', [2, 4], new Float32Array(8)));
  t.throws(() => Session.create(m2.model), { code: 'LAYER_INVALID' });
  const m3 = flexactModel(5, 2, 3, 3, 7);
  m3.model.graph.nodes[0]!.attrs['degree'] = 0;
  t.throws(() => readFlm(writeFlm(m3.model)), { code: 'FLM_ATTR_RANGE' });
  const m4 = flexactModel(5, 2, 3, 3, 7);
  m4.model.graph.nodes[0]!.attrs['basis'] = 'bspline';
  t.throws(() => readFlm(writeFlm(m4.model)), /basis/);
});
