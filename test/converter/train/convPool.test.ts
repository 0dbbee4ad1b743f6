// Gradient oracle tests of convolution, pooling, batch norm and dropout; forward passes are
// also compared with the runtime's reference kernels.
import t from 'tap';
import { mulberry32 } from '../../../converter/decompose/prng.js';
import { avgPool, batchNorm, BatchNormState, conv2d, dropout, globalAvgPool, maxPool } from '../../../converter/train/index.js';
import { backward, noGrad, param } from '../../../converter/train/tensor.js';
import * as ref from '../../../runtime/kernels/reference.js';
import { gradCheck, maxRelDiff, randParam, spacedParam } from './gradcheck.js';

const convCases: Array<{ name: string; x: number[]; w: number[]; p: Partial<ref.Conv2dParams> }> = [
  { name: '3x3 pad 1', x: [2, 3, 6, 5], w: [4, 3, 3, 3], p: { pads: [1, 1, 1, 1] } },
  { name: 'stride 2, asymmetric pads, dilation 2', x: [1, 2, 9, 8], w: [3, 2, 3, 2], p: { strides: [2, 2], pads: [1, 0, 2, 1], dilations: [2, 2] } },
  { name: 'groups 2', x: [2, 4, 5, 5], w: [6, 2, 3, 3], p: { pads: [1, 1, 1, 1], group: 2 } },
  { name: 'depthwise', x: [2, 3, 6, 6], w: [3, 1, 3, 3], p: { strides: [2, 1], pads: [1, 1, 1, 1], group: 3 } },
  { name: 'depthwise kh x 1', x: [1, 4, 7, 5], w: [4, 1, 3, 1], p: { pads: [1, 0, 1, 0], group: 4 } },
  { name: '1x1 (no im2col)', x: [2, 5, 4, 3], w: [3, 5, 1, 1], p: {} },
];

t.test('conv2d: gradients of input, weight and bias; forward equals the runtime kernel', async (t) => {
  convCases.forEach((c, i) => {
    const x = randParam(c.x, 100 + i);
    const w = randParam(c.w, 200 + i, 0.5);
    const b = randParam([c.w[0]!], 300 + i);
    const full: ref.Conv2dParams = { strides: c.p.strides ?? [1, 1], pads: c.p.pads ?? [0, 0, 0, 0], dilations: c.p.dilations ?? [1, 1], group: c.p.group ?? 1 };
    const y = conv2d(x, w, b, c.p);
    const r = ref.conv2d(x.data, x.shape, w.data, w.shape, b.data, full);
    t.same(y.shape, r.shape, `${c.name}: shape`);
    t.ok(maxRelDiff(y.data, r.data) < 1e-5, `${c.name}: forward matches reference`);
    gradCheck(t, `conv2d ${c.name}`, () => conv2d(x, w, b, c.p), [x, w, b]);
  });
});

t.test('max pool, average pool, global average pool', async (t) => {
  const x = spacedParam([2, 2, 5, 6], 40, 0.05);
  const cases = [
    { kernel: [2, 2] as [number, number] },
    { kernel: [3, 3] as [number, number], strides: [2, 2] as [number, number], pads: [1, 1, 1, 1] as [number, number, number, number] },
    { kernel: [2, 3] as [number, number], strides: [2, 2] as [number, number], ceilMode: true },
    { kernel: [2, 2] as [number, number], strides: [1, 2] as [number, number], dilations: [2, 1] as [number, number] },
  ];
  for (const c of cases) {
    const full: ref.PoolParams = { kernel: c.kernel, strides: c.strides ?? c.kernel, pads: c.pads ?? [0, 0, 0, 0], dilations: c.dilations ?? [1, 1], ceilMode: c.ceilMode ?? false };
    const y = maxPool(x, c);
    t.same(Array.from(y.data), Array.from(ref.maxPool(x.data, x.shape, full).data), `max ${JSON.stringify(c)} forward`);
    gradCheck(t, `maxPool ${JSON.stringify(c)}`, () => maxPool(x, c), [x], { eps: 1e-3 });
    if (!c.dilations) {
      for (const countIncludePad of [false, true]) {
        const a = avgPool(x, { ...c, countIncludePad });
        t.ok(maxRelDiff(a.data, ref.avgPool(x.data, x.shape, full, countIncludePad).data) < 1e-6, `avg ${JSON.stringify(c)} ${countIncludePad} forward`);
        gradCheck(t, `avgPool ${JSON.stringify(c)} includePad=${countIncludePad}`, () => avgPool(x, { ...c, countIncludePad }), [x]);
      }
    }
  }
  gradCheck(t, 'globalAvgPool', () => globalAvgPool(x), [x]);
  t.same(globalAvgPool(x).shape, [2, 2, 1, 1]);
});

t.test('batch norm: train mode gradients and running statistics; eval mode', async (t) => {
  const x = randParam([4, 3, 2, 3], 50, 2);
  const gamma = randParam([3], 51);
  const beta = randParam([3], 52);
  // The forward updates running stats each call; gradients do not depend on them in train mode.
  gradCheck(t, 'batchNorm2d train', () => batchNorm(x, gamma, beta, new BatchNormState(3), true), [x, gamma, beta], { eps: 1e-2 });
  const x1 = randParam([6, 4], 53);
  const g1 = randParam([4], 54);
  const b1 = randParam([4], 55);
  gradCheck(t, 'batchNorm1d train', () => batchNorm(x1, g1, b1, new BatchNormState(4), true), [x1, g1, b1], { eps: 1e-2 });
  const st = new BatchNormState(3, 0.1);
  const y = batchNorm(x, gamma, beta, st, true);
  // Channel 1: running mean = 0.1 * batch mean, running var = 0.9 + 0.1 * unbiased var.
  const vals: number[] = [];
  for (let n = 0; n < 4; n++) for (let j = 0; j < 6; j++) vals.push(x.data[(n * 3 + 1) * 6 + j]!);
  const mu = vals.reduce((a, b) => a + b, 0) / vals.length;
  const v = vals.reduce((a, b) => a + (b - mu) ** 2, 0) / vals.length;
  t.ok(Math.abs(st.runningMean[1]! - 0.1 * mu) < 1e-6, 'running mean');
  t.ok(Math.abs(st.runningVar[1]! - (0.9 + (0.1 * v * vals.length) / (vals.length - 1))) < 1e-5, 'running var (unbiased)');
  const y0 = (x.data[(0 * 3 + 1) * 6]! - mu) / Math.sqrt(v + 1e-5) * gamma.data[1]! + beta.data[1]!;
  t.ok(Math.abs(y.data[6]! - y0) < 1e-5, 'normalised value');
  st.runningMean.set([0.3, -0.2, 0.1]);
  st.runningVar.set([1.5, 0.7, 2.0]);
  gradCheck(t, 'batchNorm eval', () => batchNorm(x, gamma, beta, st, false), [x, gamma, beta]);
  const before = Float32Array.from(st.runningMean);
  batchNorm(x, gamma, beta, st, false);
  t.same(Array.from(st.runningMean), Array.from(before), 'eval leaves the running stats alone');
});

t.test('dropout: seeded mask, inverted scaling, gradient, eval is identity', async (t) => {
  const x = randParam([8, 50], 60);
  gradCheck(t, 'dropout', () => dropout(x, 0.3, mulberry32(7), true), [x]);
  const a = dropout(x, 0.3, mulberry32(7), true).data;
  const b = dropout(x, 0.3, mulberry32(7), true).data;
  t.same(Array.from(a), Array.from(b), 'same seed, same mask');
  let zeros = 0;
  let badScale = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === 0) zeros++;
    else if (Math.abs(a[i]! - x.data[i]! / 0.7) > 1e-5) badScale++;
  }
  t.equal(badScale, 0, 'kept values are scaled by 1 / (1 - p)');
  t.ok(Math.abs(zeros / a.length - 0.3) < 0.06, `drop rate ${zeros / a.length}`);
  t.equal(dropout(x, 0.3, mulberry32(7), false), x, 'eval returns the input');
  const y = noGrad(() => dropout(x, 0.5, mulberry32(1), true));
  t.equal(y.requiresGrad, false);
  const p = param(Float32Array.of(1, 2, 3, 4), [4]);
  const d = dropout(p, 0.5, mulberry32(3), true);
  backward(d, Float32Array.of(1, 1, 1, 1));
  t.same(Array.from(p.grad!), Array.from(d.data).map((v, i) => v / p.data[i]!), 'gradient is the mask');
});
