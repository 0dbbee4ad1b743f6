// The trainable flexact layer: its backward against central finite differences (gradcheck.ts),
// and its forward against the runtime kind on the same tensors.
import t from 'tap';
import { flexact } from '../../../converter/train/layers/flexact.js';
import { branchPolynomial, branchSpline } from '../../../converter/train/ops/branch.js';
import { noGrad, param } from '../../../converter/train/tensor.js';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { Session } from '../../../runtime/session.js';
import { gradCheck, randParam } from './gradcheck.js';

t.test('branchPolynomial: gradients of z and the coefficients, inside the range and beyond it', async (t) => {
  const z = randParam([5, 3], 1, 1.2);
  const c = randParam([3, 4], 2, 0.5);
  gradCheck(t, 'no range', () => branchPolynomial(z, c), [z, c], { eps: 1e-3, tol: 5e-3 });
  // Ends placed so that no z lies within eps of them (the tangent joins with a continuous slope,
  // but the second derivative jumps there).
  const range = Float32Array.from([-0.31, 0.27, -0.52, 0.44, -0.15, 0.63]);
  for (let i = 0; i < z.size; i++) {
    const b = i % 3;
    for (const end of [range[2 * b]!, range[2 * b + 1]!]) if (Math.abs(z.data[i]! - end) < 0.01) z.data[i]! += 0.03;
  }
  let outside = 0;
  for (let i = 0; i < z.size; i++) if (z.data[i]! < range[2 * (i % 3)]! || z.data[i]! > range[2 * (i % 3) + 1]!) outside++;
  t.ok(outside >= 5, `${outside} of 15 values beyond the range`);
  gradCheck(t, 'ranged', () => branchPolynomial(z, c, range), [z, c], { eps: 1e-3, tol: 5e-3 });
});

t.test('the flexact layer: gradients of its input and every parameter', async (t) => {
  const layer = flexact(6, 4, 3, 3, { seed: 3, range: Float32Array.from([-0.4, 0.4, -0.8, 0.3, -0.2, 0.9]) });
  const x = randParam([5, 6], 4);
  const p = layer.params;
  t.same(Object.keys(p).sort(), ['bias', 'coeffs', 'range', 'v', 'w']);
  t.notOk(p['range']!.requiresGrad, 'the range is a constant');
  p['bias']!.data.set([0.1, -0.2, 0.3, 0.05]);
  gradCheck(t, 'flexact', () => layer.forward(x), [x, p['v']!, p['w']!, p['coeffs']!, p['bias']!], { eps: 1e-3, tol: 1e-2 });
});

t.test('the trainable form computes what the runtime kind computes, on a rank-3 input too', async (t) => {
  const range = Float32Array.from([-0.5, 0.5, -1, 0.2, -0.3, 0.3, -2, 2]);
  const layer = flexact(7, 5, 4, 4, { seed: 9, range });
  layer.params['bias']!.data.set([0.3, -0.1, 0.2, 0, 0.4]);
  layer.params['coeffs']!.data.set(randParam([4, 4], 10, 0.5).data);
  const tensors = new Map<string, StoredTensor>();
  const weights: Record<string, string> = {};
  for (const [role, v] of Object.entries(layer.params)) {
    tensors.set(role, { name: role, dtype: 'f32', shape: [...v.shape], data: Float32Array.from(v.data) });
    weights[role] = role;
  }
  for (const sample of [[7], [3, 7]]) {
    const node: GraphNode = { name: 'fx', op: 'flexact', inputs: ['x'], outputs: ['y'], attrs: layer.attrs, weights };
    const model: Model = { graph: { inputs: [{ name: 'x', shape: [-1, ...sample] }], outputs: ['y'], nodes: [node] }, tensors, metadata: {} };
    const shape = [2, ...sample];
    const x = randParam(shape, 11, 1.5);
    const want = Session.create(model).runBatch({ shape, data: x.data });
    const got = noGrad(() => layer.forward(param(Float32Array.from(x.data), shape)));
    t.same(got.shape, want.shape);
    let scale = 1e-6, d = 0;
    for (let i = 0; i < want.data.length; i++) scale = Math.max(scale, Math.abs(want.data[i]!));
    for (let i = 0; i < want.data.length; i++) d = Math.max(d, Math.abs(got.data[i]! - want.data[i]!));
    t.ok(d / scale < 1e-5, `[${shape}]: max diff ${(d / scale).toExponential(2)} of the output scale`);
  }
});

t.test('branchSpline: gradients of z and the coefficients, between knots, beyond the range', async (t) => {
  const K = 7;
  const range = Float32Array.from([-0.9, 0.8, -0.4, 1.1, -1.3, 0.2]);
  const z = randParam([6, 3], 12, 1.3);
  const c = randParam([3, K], 13, 0.7);
  // Keep every z at least eps away from a knot and the ends (the third derivative jumps there).
  for (let i = 0; i < z.size; i++) {
    const b = i % 3;
    const lo = range[2 * b]!, hi = range[2 * b + 1]!;
    for (let j = 0; j <= K - 3; j++) {
      const knot = lo + ((hi - lo) * j) / (K - 3);
      if (Math.abs(z.data[i]! - knot) < 0.01) z.data[i]! += 0.025;
    }
  }
  let outside = 0;
  for (let i = 0; i < z.size; i++) if (z.data[i]! < range[2 * (i % 3)]! || z.data[i]! > range[2 * (i % 3) + 1]!) outside++;
  t.ok(outside >= 3, `${outside} of 18 values beyond the range`);
  gradCheck(t, 'bspline', () => branchSpline(z, c, range), [z, c], { eps: 1e-3, tol: 5e-3 });
});

t.test('the B-spline flexact layer: gradients, the identity start, and the runtime kind', async (t) => {
  const range = Float32Array.from([-0.6, 0.6, -1, 0.3, -0.3, 0.9]);
  const start = flexact(5, 4, 3, 6, { seed: 4, basis: 'bspline', range });
  t.same(start.attrs, { basis: 'bspline', degree: 6 });
  // The start's branches are the identity on their range (Greville abscissae as coefficients).
  const z = param(Float32Array.from([-0.5, 0.1, 0.8, 0.55, -0.9, -0.2]), [2, 3]);
  const g = noGrad(() => branchSpline(z, start.params['coeffs']!, range));
  for (let i = 0; i < 6; i++) t.ok(Math.abs(g.data[i]! - z.data[i]!) < 1e-6, `g(${z.data[i]}) = ${g.data[i]}`);
  t.throws(() => flexact(5, 4, 3, 6, { basis: 'bspline' }), /range/);

  const layer = flexact(6, 4, 3, 6, { seed: 3, basis: 'bspline', range });
  layer.params['coeffs']!.data.set(randParam([3, 6], 14, 0.5).data);
  layer.params['bias']!.data.set([0.1, -0.2, 0.3, 0.05]);
  const x = randParam([5, 6], 4);
  const p = layer.params;
  gradCheck(t, 'flexact bspline', () => layer.forward(x), [x, p['v']!, p['w']!, p['coeffs']!, p['bias']!], { eps: 1e-3, tol: 1e-2 });

  const tensors = new Map<string, StoredTensor>();
  const weights: Record<string, string> = {};
  for (const [role, v] of Object.entries(layer.params)) {
    tensors.set(role, { name: role, dtype: 'f32', shape: [...v.shape], data: Float32Array.from(v.data) });
    weights[role] = role;
  }
  const node: GraphNode = { name: 'fx', op: 'flexact', inputs: ['x'], outputs: ['y'], attrs: layer.attrs, weights };
  const model: Model = { graph: { inputs: [{ name: 'x', shape: [-1, 6] }], outputs: ['y'], nodes: [node] }, tensors, metadata: {} };
  const xs = randParam([9, 6], 15, 1.5);
  const want = Session.create(model).runBatch({ shape: [9, 6], data: xs.data });
  const got = noGrad(() => layer.forward(param(Float32Array.from(xs.data), [9, 6])));
  let scale = 1e-6, d = 0;
  for (let i = 0; i < want.data.length; i++) scale = Math.max(scale, Math.abs(want.data[i]!));
  for (let i = 0; i < want.data.length; i++) d = Math.max(d, Math.abs(got.data[i]! - want.data[i]!));
  t.ok(d / scale < 1e-5, `max diff ${(d / scale).toExponential(2)} of the output scale`);
});

t.test('fine-tuning steps: v relative to each row\'s norm, a coefficient of z^d relative to reach^d, never above plain Adam', async (t) => {
  // Rows of norm 0.2 and 3 (the fit's v_b are small: z_b has RMS 1), ranges reaching 2 and 0.5.
  const v = new Float32Array(2 * 4);
  v.set([0.1, 0.1, 0.1, 0.1], 0);
  v.set([1.5, 1.5, 1.5, 1.5], 4);
  const range = Float32Array.from([-2, 1, -0.25, 0.5]);
  const layer = flexact(4, 3, 2, 3, { weights: { v }, range });
  t.same(Array.from(layer.params['v']!.lrScale!).map((x) => +x.toFixed(6)), [0.2, 0.2, 0.2, 0.2, 1, 1, 1, 1]);
  t.same(Array.from(layer.params['coeffs']!.lrScale!).map((x) => +x.toFixed(6)), [0.5, 0.25, 0.125, 1, 1, 1]);
  t.equal(layer.params['w']!.lrScale, null);
  // B-splines are bounded by one on their range: their coefficients step as they are.
  const spline = flexact(4, 3, 2, 5, { weights: { v }, range, basis: 'bspline' });
  t.equal(spline.params['coeffs']!.lrScale, null);
});
