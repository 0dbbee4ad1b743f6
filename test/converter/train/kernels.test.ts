// The trainer's WebAssembly SIMD products (converter/train/kernels.ts) against the JS loops they
// replace: each accumulating GEMM variant (nn, nt, tn) on shapes that cross the packed kernel's
// edges and blocks, and conv2d's forward and both backward products (input gradient through
// col2im, weight gradient, and the fused bias) on every path of convgrad.c, relu and max pooling
// forward and backward. Also: the dispatch really reaches wasm,
// and the JS fallback is what runs when the module is refused.
import t from 'tap';
import { gemmNNAcc, gemmNNAccJs, gemmNTAccJs, gemmTNAccJs, WASM_MIN_MACS } from '../../../converter/train/gemm.js';
import {
  loadTrainWasm, setTrainKernels, trainKernels, trainKernelStats, trainWasm, type GemmKind,
} from '../../../converter/train/kernels.js';
import { relu } from '../../../converter/train/ops/activation.js';
import { conv2d } from '../../../converter/train/ops/conv.js';
import { maxPool, type PoolOptions } from '../../../converter/train/ops/pool.js';
import { backward, param, type Var } from '../../../converter/train/tensor.js';
import type { Conv2dParams } from '../../../runtime/kernels/reference.js';
import { hasWasmSimd } from '../../../runtime/kernels/backend.js';
import { missing } from '../../support/require.js';
import { maxRelDiff, randn } from './gradcheck.js';

const JS: Record<GemmKind, typeof gemmNNAccJs> = { nn: gemmNNAccJs, nt: gemmNTAccJs, tn: gemmTNAccJs };

t.test('wasm gemmAcc nn / nt / tn equal the JS loops (accumulating, with offsets)', async (t) => {
  if (!hasWasmSimd()) return missing(t, 'this Node has no WebAssembly SIMD');
  const w = loadTrainWasm();
  // [M, N, K]: below the micro-kernel's 4 rows (the small-M path), ragged edges of 4 x 8 tiles,
  // K past the 256-deep packing block, N past one 8-wide panel, and a single column.
  const shapes: Array<[number, number, number]> = [[1, 37, 19], [3, 8, 300], [4, 8, 1], [5, 13, 7], [17, 33, 260], [64, 50, 20], [20, 1, 9], [9, 120, 600]];
  let seed = 1;
  for (const kind of ['nn', 'nt', 'tn'] as const) {
    for (const [M, N, K] of shapes) {
      const aOff = 3, bOff = 5, cOff = 7;
      const A = randn(aOff + M * K + 2, seed++);
      const B = randn(bOff + K * N + 2, seed++);
      const C0 = randn(cOff + M * N + 2, seed++);
      const want = C0.slice();
      JS[kind](A, aOff, B, bOff, want, cOff, M, N, K);
      const got = C0.slice();
      t.ok(w.gemmAcc(kind, A, aOff, B, bOff, got, cOff, M, N, K), `${kind} ${M}x${N}x${K}: ran on wasm`);
      const d = maxRelDiff(got, want);
      t.ok(d < 2e-6 * Math.sqrt(K) + 1e-6, `${kind} ${M}x${N}x${K}: max rel diff ${d.toExponential(2)}`);
      t.same(Array.from(got.subarray(0, cOff)), Array.from(C0.subarray(0, cOff)), `${kind} ${M}x${N}x${K}: nothing written before C`);
      t.same(Array.from(got.subarray(cOff + M * N)), Array.from(C0.subarray(cOff + M * N)), `${kind} ${M}x${N}x${K}: nothing written after C`);
    }
  }
});

t.test('gemmNNAcc dispatches to wasm above WASM_MIN_MACS, to the JS loops when told', async (t) => {
  if (!hasWasmSimd()) return missing(t, 'this Node has no WebAssembly SIMD');
  const M = 16, N = 32, K = 16;
  t.ok(M * N * K >= WASM_MIN_MACS);
  const A = randn(M * K, 7), B = randn(K * N, 8);
  const want = new Float32Array(M * N);
  gemmNNAccJs(A, 0, B, 0, want, 0, M, N, K);
  try {
    setTrainKernels('wasm');
    t.equal(trainKernels(), 'wasm');
    trainKernelStats(true);
    const got = new Float32Array(M * N);
    gemmNNAcc(A, 0, B, 0, got, 0, M, N, K);
    t.equal(trainKernelStats().calls, 1, 'one wasm call');
    t.ok(maxRelDiff(got, want) < 1e-5);
    setTrainKernels('js');
    t.equal(trainKernels(), 'js');
    t.equal(trainWasm(), null);
    trainKernelStats(true);
    const js = new Float32Array(M * N);
    gemmNNAcc(A, 0, B, 0, js, 0, M, N, K);
    t.equal(trainKernelStats().calls, 0, 'no wasm call');
    t.same(Array.from(js), Array.from(want), 'the JS loops, bit for bit');
    // 'auto' follows the runtime's backend list: a list without wasm-simd keeps the trainer on JS.
    const env = process.env['FACTORLITE_KERNELS'];
    try {
      setTrainKernels('auto');
      process.env['FACTORLITE_KERNELS'] = 'reference';
      t.equal(trainKernels(), 'js', 'FACTORLITE_KERNELS=reference: JS loops');
      process.env['FACTORLITE_KERNELS'] = 'wasm-simd,reference';
      t.equal(trainKernels(), 'wasm', 'FACTORLITE_KERNELS=wasm-simd,reference: wasm');
    } finally {
      if (env === undefined) delete process.env['FACTORLITE_KERNELS'];
      else process.env['FACTORLITE_KERNELS'] = env;
    }
  } finally {
    setTrainKernels('auto');
  }
});

t.test('a module without the training exports is refused with a reason', async (t) => {
  // The smallest valid module: no exports at all.
  const empty = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
  t.throws(() => loadTrainWasm(empty), /no (WebAssembly SIMD|gemm_acc_strided export)/);
});

const convCases: Array<{ name: string; x: number[]; w: number[]; p: Partial<Conv2dParams> }> = [
  { name: 'plain 1x1', x: [3, 7, 5, 6], w: [9, 7, 1, 1], p: {} },
  { name: 'grouped 1x1', x: [2, 6, 4, 4], w: [4, 3, 1, 1], p: { group: 2 } },
  { name: '1x1 stride 2 (im2col)', x: [2, 5, 7, 6], w: [3, 5, 1, 1], p: { strides: [2, 2] } },
  { name: '5x5 (LeNet c2 shape)', x: [2, 6, 12, 12], w: [16, 6, 5, 5], p: {} },
  { name: '3x3 pad 1', x: [2, 3, 9, 10], w: [8, 3, 3, 3], p: { pads: [1, 1, 1, 1] } },
  { name: 'stride 2, asymmetric pads, dilation 2', x: [2, 3, 11, 9], w: [5, 3, 3, 2], p: { strides: [2, 2], pads: [1, 0, 2, 1], dilations: [2, 2] } },
  { name: 'groups 2, Cg 2', x: [2, 4, 6, 7], w: [6, 2, 3, 3], p: { pads: [1, 1, 1, 1], group: 2 } },
  { name: 'depthwise kh x 1 (CP vertical)', x: [3, 6, 12, 11], w: [6, 1, 5, 1], p: { pads: [2, 0, 2, 0], group: 6 } },
  { name: 'depthwise 1 x kw stride 2 (CP horizontal)', x: [2, 5, 8, 13], w: [5, 1, 1, 3], p: { strides: [1, 2], pads: [0, 1, 0, 1], group: 5 } },
  { name: 'depthwise 3x3 stride 2 dilation 2', x: [2, 4, 10, 9], w: [4, 1, 3, 3], p: { strides: [2, 2], pads: [1, 2, 1, 0], dilations: [2, 2], group: 4 } },
  { name: 'depthwise multiplier 2', x: [2, 3, 7, 9], w: [6, 1, 3, 3], p: { pads: [1, 1, 1, 1], group: 3 } },
  { name: 'single input channel (LeNet c1 shape)', x: [2, 1, 28, 28], w: [6, 1, 5, 5], p: {} },
];

/** Output, input gradient and weight gradient of conv2d on the current engine; grads start non-zero (they accumulate). */
function convRun(c: (typeof convCases)[number], seed: number): { y: Float32Array; gx: Float32Array; gw: Float32Array } {
  const x = param(randn(c.x.reduce((a, b) => a * b, 1), seed), c.x);
  const w = param(randn(c.w.reduce((a, b) => a * b, 1), seed + 1, 0.5), c.w);
  x.gradBuffer().set(randn(x.size, seed + 2));
  w.gradBuffer().set(randn(w.size, seed + 3));
  const y = conv2d(x, w, undefined, c.p);
  backward(y, randn(y.size, seed + 4));
  return { y: y.data, gx: x.grad!, gw: w.grad! };
}

t.test('conv2d forward, input gradient (col2im) and weight gradient: wasm equals the JS loops', async (t) => {
  if (!hasWasmSimd()) return missing(t, 'this Node has no WebAssembly SIMD');
  try {
    convCases.forEach((c, i) => {
      setTrainKernels('js');
      trainKernelStats(true);
      const want = convRun(c, 50 + 10 * i);
      t.equal(trainKernelStats().calls, 0, `${c.name}: JS run made no wasm call`);
      setTrainKernels('wasm');
      trainKernelStats(true);
      const got = convRun(c, 50 + 10 * i);
      t.equal(trainKernelStats().calls, 2, `${c.name}: forward and backward each one wasm call`);
      for (const k of ['y', 'gx', 'gw'] as const) {
        const d = maxRelDiff(got[k], want[k]);
        t.ok(d < 1e-5, `${c.name}: ${k} max rel diff ${d.toExponential(2)}`);
      }
    });
  } finally {
    setTrainKernels('auto');
  }
});

t.test('conv2d backward with only one gradient wanted leaves the other alone', async (t) => {
  if (!hasWasmSimd()) return missing(t, 'this Node has no WebAssembly SIMD');
  try {
    setTrainKernels('wasm');
    const xv = randn(2 * 3 * 8 * 8, 90);
    const wv = randn(4 * 3 * 3 * 3, 91);
    const seed = randn(2 * 4 * 6 * 6, 92);
    const grads = (engine: 'js' | 'wasm', which: 'x' | 'w') => {
      setTrainKernels(engine);
      const x = param(xv.slice(), [2, 3, 8, 8]);
      const w = param(wv.slice(), [4, 3, 3, 3]);
      if (which === 'x') w.requiresGrad = false;
      else x.requiresGrad = false;
      backward(conv2d(x, w, undefined), seed);
      return which === 'x' ? { g: x.grad!, other: w.grad } : { g: w.grad!, other: x.grad };
    };
    for (const which of ['x', 'w'] as const) {
      const a = grads('wasm', which);
      const b = grads('js', which);
      t.equal(a.other, null, `only d${which}: the other has no gradient buffer`);
      t.ok(maxRelDiff(a.g, b.g) < 1e-5, `only d${which}: equals the JS loops`);
    }
  } finally {
    setTrainKernels('auto');
  }
});

t.test('conv2d with a bias: the kernel adds it and conv2d_grad sums its gradient, as addBias does on JS', async (t) => {
  if (!hasWasmSimd()) return missing(t, 'this Node has no WebAssembly SIMD');
  const run = (engine: 'js' | 'wasm') => {
    setTrainKernels(engine);
    trainKernelStats(true);
    const x = param(randn(3 * 4 * 9 * 7, 70), [3, 4, 9, 7]);
    const w = param(randn(5 * 4 * 3 * 3, 71, 0.5), [5, 4, 3, 3]);
    const b = param(randn(5, 72), [5]);
    b.gradBuffer().set(randn(5, 73));
    const y = conv2d(x, w, b, { pads: [1, 1, 1, 1] });
    backward(y, randn(y.size, 74));
    return { y: y.data, gx: x.grad!, gw: w.grad!, gb: b.grad!, calls: trainKernelStats().calls };
  };
  try {
    const want = run('js');
    const got = run('wasm');
    t.equal(want.calls, 0);
    t.equal(got.calls, 2, 'forward and backward on wasm, no separate bias op');
    for (const k of ['y', 'gx', 'gw', 'gb'] as const) {
      const d = maxRelDiff(got[k], want[k]);
      t.ok(d < 1e-5, `${k} max rel diff ${d.toExponential(2)}`);
    }
  } finally {
    setTrainKernels('auto');
  }
});

t.test('relu and max pooling, forward and backward: wasm equals the JS loops', async (t) => {
  if (!hasWasmSimd()) return missing(t, 'this Node has no WebAssembly SIMD');
  // Values on a grid of 0.25 (ties inside pooling windows, exact zeros for relu) and a NaN-free
  // -0: the tie and sign rules must match, not only the generic case.
  const grid = (n: number, seed: number) => randn(n, seed).map((v) => Math.round(v * 4) / 4 + 0);
  const pools: PoolOptions[] = [
    { kernel: [2, 2] },
    { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
    { kernel: [2, 3], strides: [2, 2], ceilMode: true },
    { kernel: [2, 2], strides: [1, 2], dilations: [2, 1] },
  ];
  const run = (engine: 'js' | 'wasm', f: (x: Var) => Var, shape: number[], seed: number) => {
    setTrainKernels(engine);
    trainKernelStats(true);
    const x = param(grid(shape.reduce((a, b) => a * b, 1), seed), shape);
    x.gradBuffer().set(randn(x.size, seed + 1));
    const y = f(x);
    backward(y, randn(y.size, seed + 2));
    return { y: y.data, gx: x.grad!, calls: trainKernelStats().calls };
  };
  try {
    const cases: Array<[string, (x: Var) => Var, number[]]> = [
      ['relu', relu, [4, 5, 9, 11]],
      ...pools.map((o): [string, (x: Var) => Var, number[]] => [`max pool ${JSON.stringify(o)}`, (x) => maxPool(x, o), [3, 4, 10, 11]]),
    ];
    cases.forEach(([name, f, shape], i) => {
      const want = run('js', f, shape, 300 + 10 * i);
      const got = run('wasm', f, shape, 300 + 10 * i);
      t.equal(want.calls, 0, `${name}: JS made no wasm call`);
      t.equal(got.calls, 2, `${name}: forward and backward on wasm`);
      t.same(Array.from(got.y), Array.from(want.y), `${name}: forward, bit for bit`);
      t.same(Array.from(got.gx), Array.from(want.gx), `${name}: backward, bit for bit`);
    });
  } finally {
    setTrainKernels('auto');
  }
});
