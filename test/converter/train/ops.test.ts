// Gradient oracle tests of the pointwise, shape, matrix, contraction and loss ops.
import t from 'tap';
import {
  add, addBias, contract, flatten, gelu, klDistillation, leakyRelu, linear, matmul, mean, mul, permute,
  relu, reshape, scale, sigmoid, softmaxCrossEntropy, sub, sum, tanh, transpose,
} from '../../../converter/train/index.js';
import { backward, constant, noGrad, param } from '../../../converter/train/tensor.js';
import { gradCheck, randParam, spacedParam } from './gradcheck.js';

t.test('activations', async (t) => {
  const x = spacedParam([3, 7], 1, 0.1);
  gradCheck(t, 'relu', () => relu(x), [x], { eps: 1e-3 });
  gradCheck(t, 'leakyRelu', () => leakyRelu(x, 0.1), [x], { eps: 1e-3 });
  const y = randParam([3, 7], 2);
  gradCheck(t, 'tanh', () => tanh(y), [y]);
  gradCheck(t, 'sigmoid', () => sigmoid(y), [y]);
  gradCheck(t, 'gelu', () => gelu(y), [y]);
  // GELU values from PyTorch: gelu(1) = 0.8413447, gelu(-0.5) = -0.1542688, gelu(2.5) = 2.4844758.
  const g = gelu(constant(Float32Array.of(1, -0.5, 2.5), [3])).data;
  t.ok(Math.abs(g[0]! - 0.8413447) < 1e-6 && Math.abs(g[1]! + 0.1542688) < 1e-6 && Math.abs(g[2]! - 2.4844758) < 1e-6, `gelu values ${g}`);
});

t.test('add / sub / mul with broadcasting, bias, scale, sum, mean', async (t) => {
  const a = randParam([2, 3, 4], 3);
  const b = randParam([3, 1], 4);
  const c = randParam([2, 3, 4], 5);
  const d = randParam([4], 6);
  gradCheck(t, 'add same shape', () => add(a, c), [a, c]);
  gradCheck(t, 'add broadcast', () => add(a, b), [a, b]);
  gradCheck(t, 'sub broadcast', () => sub(d, a), [d, a]);
  gradCheck(t, 'mul broadcast', () => mul(a, b), [a, b]);
  gradCheck(t, 'mul same shape', () => mul(a, c), [a, c]);
  const bias3 = randParam([3], 7);
  gradCheck(t, 'addBias axis 1', () => addBias(a, bias3, 1), [a, bias3]);
  gradCheck(t, 'addBias last axis', () => addBias(a, d, -1), [a, d]);
  gradCheck(t, 'scale', () => scale(a, -2.5), [a]);
  gradCheck(t, 'sum', () => sum(mul(a, a)), [a]);
  gradCheck(t, 'mean', () => mean(mul(a, c)), [a, c]);
  t.same(add(a, b).shape, [2, 3, 4]);
  t.throws(() => add(a, randParam([2, 4], 1)), /cannot broadcast/);
});

t.test('reshape, flatten, transpose, permute', async (t) => {
  const x = randParam([2, 3, 4, 5], 8);
  gradCheck(t, 'reshape', () => mul(reshape(x, [6, -1]), randParam([6, 20], 9)), [x]);
  gradCheck(t, 'flatten', () => tanh(flatten(x)), [x]);
  gradCheck(t, 'transpose', () => tanh(transpose(x, 1, 3)), [x]);
  gradCheck(t, 'permute', () => tanh(permute(x, [2, 0, 3, 1])), [x]);
  const p = permute(x, [2, 0, 3, 1]);
  t.same(p.shape, [4, 2, 5, 3]);
  // p[k, i, l, j] = x[i, j, k, l]
  t.equal(p.data[((1 * 2 + 1) * 5 + 3) * 3 + 2], x.data[((1 * 3 + 2) * 4 + 1) * 5 + 3]);
  t.throws(() => reshape(x, [7, -1]), /cannot reshape/);
});

t.test('matmul (batched, broadcast) and linear', async (t) => {
  const a = randParam([4, 5], 10);
  const b = randParam([5, 3], 11);
  gradCheck(t, 'matmul 2-D', () => matmul(a, b), [a, b]);
  const ab = randParam([2, 3, 4, 5], 12);
  gradCheck(t, 'matmul batched @ weight', () => matmul(ab, b), [ab, b]);
  const l = randParam([2, 1, 4, 5], 13);
  const r = randParam([3, 5, 2], 14);
  gradCheck(t, 'matmul broadcast leads', () => matmul(l, r), [l, r]);
  t.same(matmul(l, r).shape, [2, 3, 4, 2]);
  // One entry written out: out[1, 2, 3, 1] = sum_k l[1, 0, 3, k] r[2, k, 1].
  const o = matmul(l, r).data;
  let s = 0;
  for (let k = 0; k < 5; k++) s += l.data[(1 * 4 + 3) * 5 + k]! * r.data[(2 * 5 + k) * 2 + 1]!;
  t.ok(Math.abs(o[((1 * 3 + 2) * 4 + 3) * 2 + 1]! - s) < 1e-5);
  const x = randParam([2, 3, 7], 15);
  const w = randParam([6, 7], 16);
  const bias = randParam([6], 17);
  gradCheck(t, 'linear', () => linear(x, w, bias), [x, w, bias]);
});

t.test('contract: matrix product, several axes, outer product, reordered output', async (t) => {
  const a = randParam([3, 4], 20);
  const b = randParam([4, 5], 21);
  const c = contract(a, [1], b, [0]);
  const m = matmul(a, b);
  t.same(c.shape, [3, 5]);
  t.same(Array.from(c.data), Array.from(m.data));
  gradCheck(t, 'contract ij,jk', () => contract(a, [1], b, [0]), [a, b]);
  const x = randParam([2, 3, 4, 5], 22);
  const g = randParam([5, 6, 3], 23);
  // out[a, c, e] = sum_{b, d} x[a, b, c, d] g[d, e, b]; then reorder to [e, a, c].
  gradCheck(t, 'contract abcd,deb->eac', () => contract(x, [1, 3], g, [2, 0], [2, 0, 1]), [x, g]);
  const y = contract(x, [1, 3], g, [2, 0], [2, 0, 1]);
  t.same(y.shape, [6, 2, 4]);
  let s = 0;
  for (let bb = 0; bb < 3; bb++) for (let dd = 0; dd < 5; dd++) s += x.data[((1 * 3 + bb) * 4 + 2) * 5 + dd]! * g.data[(dd * 6 + 4) * 3 + bb]!;
  t.ok(Math.abs(y.data[(4 * 2 + 1) * 4 + 2]! - s) < 1e-5, 'entry [4, 1, 2]');
  const u = randParam([3], 24);
  const v = randParam([2, 2], 25);
  gradCheck(t, 'outer product', () => contract(u, [], v, []), [u, v]);
  t.same(contract(u, [], v, []).shape, [3, 2, 2]);
  t.throws(() => contract(a, [0], b, [0]), /sizes differ/);
});

t.test('softmax cross-entropy and KL distillation', async (t) => {
  const z = randParam([4, 5], 30, 2);
  const labels = [0, 3, 4, 1];
  gradCheck(t, 'cross-entropy', () => softmaxCrossEntropy(z, labels), [z], { eps: 1e-3 });
  // Value against the definition.
  let ref = 0;
  for (let n = 0; n < 4; n++) {
    let s = 0;
    for (let c = 0; c < 5; c++) s += Math.exp(z.data[n * 5 + c]!);
    ref += Math.log(s) - z.data[n * 5 + labels[n]!]!;
  }
  t.ok(Math.abs(softmaxCrossEntropy(z, labels).data[0]! - ref / 4) < 1e-5);
  t.throws(() => softmaxCrossEntropy(z, [0, 1, 5, 0]), /label 5/);
  const teacher = randParam([4, 5], 31, 2).data;
  gradCheck(t, 'KL distillation T=3', () => klDistillation(z, teacher, 3), [z], { eps: 1e-3 });
  gradCheck(t, 'KL distillation T=1', () => klDistillation(z, constant(teacher, [4, 5]), 1), [z], { eps: 1e-3 });
  t.ok(Math.abs(klDistillation(z, z.data, 2).data[0]!) < 1e-6, 'zero against itself');
  // Value against the definition: T^2 / N sum p_t (log p_t - log p_s).
  const T = 3;
  let kl = 0;
  for (let n = 0; n < 4; n++) {
    const sm = (v: ArrayLike<number>) => {
      const e = Array.from({ length: 5 }, (_, c) => Math.exp(v[n * 5 + c]! / T));
      const s = e.reduce((p, q) => p + q, 0);
      return e.map((q) => q / s);
    };
    const pt = sm(teacher);
    const ps = sm(z.data);
    for (let c = 0; c < 5; c++) kl += pt[c]! * Math.log(pt[c]! / ps[c]!);
  }
  t.ok(Math.abs(klDistillation(z, teacher, T).data[0]! - (T * T * kl) / 4) < 1e-5);
});

t.test('backward: shared inputs accumulate, noGrad records nothing, errors', async (t) => {
  const x = param(Float32Array.of(1, 2, 3), [3]);
  // d/dx sum(x*x + 3x) = 2x + 3
  backward(sum(add(mul(x, x), scale(x, 3))));
  t.same(Array.from(x.grad!), [5, 7, 9]);
  const y = noGrad(() => mul(x, x));
  t.equal(y.requiresGrad, false);
  t.equal(y.backwardFn, null);
  t.throws(() => backward(y), /does not depend/);
  t.throws(() => backward(mul(x, x)), /needs a seed/);
  // A deep chain must not overflow the stack.
  let z = x;
  for (let i = 0; i < 20000; i++) z = scale(z, 1);
  x.grad = null;
  backward(sum(z));
  t.same(Array.from(x.grad!), [1, 1, 1]);
});
