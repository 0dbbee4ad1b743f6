// Whole-model gradients against PyTorch (1.13, float64) on the same numbers: six tiny models that
// between them use every factor layer kind (the reshaped tensorial ones rcp/rtk/rtt/rtr, dense and
// conv, in models d and e; ADTN conv and dense, model f, the oracle building the circuit's state by
// Kronecker products and gate contractions), conv, batch norm (train), relu/gelu/tanh/sigmoid,
// max/avg pooling, flatten, cross-entropy and KL distillation. Tolerance: 1e-4 relative to the
// largest entry of each gradient. Skipped with a reason without /usr/bin/python3 + torch, except under FACTORLITE_CI=1.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import {
  add, batchNorm, BatchNormState, conv2dLayer, cpConv2d, flatten, gelu, klDistillation, maxPool, avgPool,
  relu, scale, sigmoid, softmaxCrossEntropy, svdDense, tanh, trDense, ttDense, ttlDense, tucker2Conv2d,
} from '../../../converter/train/index.js';
import { flexact } from '../../../converter/train/layers/flexact.js';
import { adtnConv2d, adtnDense } from '../../../converter/train/layers/adtn.js';
import { reshapedLayer } from '../../../converter/methods/reshapedNet.js';
import type { TrainLayer } from '../../../converter/train/layers/layer.js';
import type { ReshapedMethod } from '../../../runtime/layers/reshapedNet.js';
import { backward, type Var } from '../../../converter/train/tensor.js';
import { missing, PYTHON } from '../../support/require.js';
import { maxRelDiff, randn, randParam } from './gradcheck.js';

const HERE = dirname(fileURLToPath(import.meta.url));

function torchReady(t: Test): boolean {
  if (!existsSync(PYTHON)) return missing(t, `${PYTHON} not found`);
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  return r.status === 0 || missing(t, `${PYTHON} cannot import torch (Debian python3-torch)`);
}

interface TorchResult { loss: number; grads: Record<string, number[]>; running_mean?: number[]; running_var?: number[] }

function runTorch(payload: unknown): TorchResult {
  const dir = mkdtempSync(join(tmpdir(), 'factorlite-torch-'));
  try {
    const file = join(dir, 'case.json');
    writeFileSync(file, JSON.stringify(payload));
    const r = spawnSync(PYTHON, [join(HERE, 'torchOracle.py'), file], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`torch oracle failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as TorchResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Gives every parameter a random value (biases included) and names them for the oracle. */
function named(prefix: string, params: Record<string, Var>, seed: number, into: Record<string, Var>): void {
  Object.entries(params).forEach(([role, v], i) => {
    if (role === 'bias') v.data.set(randn(v.size, seed + i, 0.3));
    into[`${prefix}.${role}`] = v;
  });
}

function compare(t: Test, name: string, loss: Var, params: Record<string, Var>, extra: Record<string, unknown>): TorchResult {
  backward(loss);
  const payload = {
    ...extra,
    params: Object.fromEntries(Object.entries(params).map(([k, v]) => [k, { shape: v.shape, data: Array.from(v.data) }])),
  };
  const ref = runTorch(payload);
  const lossDiff = Math.abs(loss.data[0]! - ref.loss) / Math.abs(ref.loss);
  t.ok(lossDiff < 1e-4, `${name}: loss ${loss.data[0]} vs torch ${ref.loss} (rel ${lossDiff.toExponential(2)})`);
  for (const [k, v] of Object.entries(params)) {
    const g = ref.grads[k]!;
    const d = maxRelDiff(v.grad!, g);
    t.ok(d < 1e-4, `${name}: d loss / d ${k} [${v.shape}] max rel diff ${d.toExponential(2)} < 1e-4`);
  }
  return ref;
}

t.test('model a: conv -> batch norm -> relu -> max pool -> TT dense -> GELU -> SVD dense; CE + KL', async (t) => {
  if (!torchReady(t)) return;
  const P: Record<string, Var> = { x: randParam([4, 1, 8, 8], 1) };
  // No conv bias: batch norm cancels it, so its true gradient is 0 and a relative check means nothing.
  const conv = conv2dLayer(1, 3, [3, 3], { pads: [1, 1, 1, 1] }, { seed: 2, bias: false });
  named('conv', conv.params, 10, P);
  P['bn.gamma'] = randParam([3], 3, 0.5);
  P['bn.gamma'].data.forEach((v, i, a) => { a[i] = v + 1; });
  P['bn.beta'] = randParam([3], 4, 0.3);
  const tt = ttDense([2, 3, 2], [4, 3, 4], [2, 3], { seed: 5 });
  named('tt', tt.params, 20, P);
  const svd = svdDense(12, 5, 3, { seed: 6 });
  named('svd', svd.params, 30, P);
  const labels = [1, 4, 0, 2];
  const teacher = randn(20, 7, 2);
  const bn = new BatchNormState(3);
  let h = batchNorm(conv.forward(P['x']!), P['bn.gamma']!, P['bn.beta']!, bn, true);
  h = flatten(maxPool(relu(h), { kernel: [2, 2] }));
  const logits = svd.forward(gelu(tt.forward(h)));
  const loss = add(softmaxCrossEntropy(logits, labels), scale(klDistillation(logits, teacher, 2), 0.5));
  const ref = compare(t, 'model a', loss, P, { model: 'a', labels, teacher: Array.from(teacher) });
  t.ok(maxRelDiff(bn.runningMean, ref.running_mean!) < 1e-5 && maxRelDiff(bn.runningVar, ref.running_var!) < 1e-5, 'batch-norm running statistics match');
});

t.test('model b: CP conv -> tanh -> Tucker-2 conv -> avg pool -> TTL dense -> sigmoid -> TR dense; CE', async (t) => {
  if (!torchReady(t)) return;
  const P: Record<string, Var> = { x: randParam([3, 2, 8, 8], 11) };
  const cp = cpConv2d(2, 4, [3, 3], 3, { pads: [1, 1, 1, 1] }, { seed: 12 });
  named('cp', cp.params, 40, P);
  const tk = tucker2Conv2d(4, 5, [3, 3], [2, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }, { seed: 13 });
  named('tk', tk.params, 50, P);
  const ttl = ttlDense([2, 3], [4, 5], [2, 2, 3, 3], { seed: 14 });
  named('ttl', ttl.params, 60, P);
  const tr = trDense([2, 2], [2, 3], [2, 2], { seed: 15 });
  named('tr', tr.params, 70, P);
  const labels = [3, 0, 2];
  const h = flatten(avgPool(tk.forward(tanh(cp.forward(P['x']!))), { kernel: [2, 2] }));
  const logits = tr.forward(sigmoid(ttl.forward(h)));
  compare(t, 'model b', softmaxCrossEntropy(logits, labels), P, { model: 'b', labels });
});

t.test('model c: tanh -> flexact (polynomial branches, tangent beyond the range); CE', async (t) => {
  if (!torchReady(t)) return;
  const P: Record<string, Var> = { x: randParam([4, 6], 21, 1.5) };
  const range = [-0.4, 0.3, -0.2, 0.6, -0.5, 0.5];
  const fx = flexact(6, 5, 3, 3, { seed: 22, range: Float32Array.from(range) });
  // The range is a constant (no gradient), sent to the oracle beside the parameters.
  const { range: _range, ...trained } = fx.params;
  named('fx', trained, 80, P);
  P['fx.coeffs']!.data.set(randn(9, 23, 0.7));
  const labels = [2, 0, 4, 1];
  compare(t, 'model c', softmaxCrossEntropy(fx.forward(tanh(P['x']!)), labels), P, { model: 'c', labels, range });
});

// The reshaped tensorial layers: the oracle forms each kernel from its factors by one einsum written
// from the paper's definitions (torchOracle.py reshaped_weight), not from the TypeScript leg lists.
interface ReshapedSpec {
  prefix: string;
  method: ReshapedMethod;
  tModes: number[];
  sModes: number[];
  kh: number;
  kw: number;
  conv: { strides: [number, number]; pads: [number, number, number, number]; dilations: [number, number] } | null;
}

function reshaped(spec: ReshapedSpec, ranks: number[], seed: number, P: Record<string, Var>): TrainLayer {
  const { tModes, sModes, kh, kw } = spec;
  const layer = reshapedLayer(spec.method, { tModes, sModes, kh, kw }, ranks, spec.conv ?? undefined, { seed });
  named(spec.prefix, layer.params, 10 * seed, P);
  return layer;
}

const plainConv = (pad: number, stride = 1): ReshapedSpec['conv'] => ({ strides: [stride, stride], pads: [pad, pad, pad, pad], dilations: [1, 1] });

t.test('model d: rcp conv -> tanh -> rtk conv (stride 2) -> rtt dense (3 modes) -> sigmoid -> rtr dense; CE', async (t) => {
  if (!torchReady(t)) return;
  const P: Record<string, Var> = { x: randParam([2, 4, 6, 6], 31) };
  const specs: ReshapedSpec[] = [
    { prefix: 'rcp', method: 'rcp', tModes: [2, 3], sModes: [2, 2], kh: 3, kw: 3, conv: plainConv(1) },
    { prefix: 'rtk', method: 'rtk', tModes: [2, 2], sModes: [2, 3], kh: 3, kw: 3, conv: plainConv(1, 2) },
    { prefix: 'rtt', method: 'rtt', tModes: [2, 2, 3], sModes: [3, 3, 4], kh: 1, kw: 1, conv: null },
    { prefix: 'rtr', method: 'rtr', tModes: [2, 3], sModes: [3, 4], kh: 1, kw: 1, conv: null },
  ];
  const [rcp, rtk, rtt, rtr] = [
    reshaped(specs[0]!, [3], 32, P), reshaped(specs[1]!, [2, 2, 3], 33, P), reshaped(specs[2]!, [2, 3, 2], 34, P), reshaped(specs[3]!, [2, 2, 3], 35, P),
  ];
  const labels = [5, 1];
  const h = flatten(rtk!.forward(tanh(rcp!.forward(P['x']!))));
  const logits = rtr!.forward(sigmoid(rtt!.forward(h)));
  compare(t, 'model d', softmaxCrossEntropy(logits, labels), P, { model: 'd', labels, layers: specs });
});

t.test('model e: rtt conv (strided, dilated, uneven pads) -> tanh -> rtr conv -> rcp dense -> tanh -> rtk dense; CE', async (t) => {
  if (!torchReady(t)) return;
  const P: Record<string, Var> = { x: randParam([2, 2, 7, 7], 41) };
  const specs: ReshapedSpec[] = [
    { prefix: 'rtt', method: 'rtt', tModes: [2, 2], sModes: [1, 2], kh: 3, kw: 3, conv: { strides: [2, 1], pads: [1, 0, 1, 1], dilations: [1, 2] } },
    { prefix: 'rtr', method: 'rtr', tModes: [2, 3], sModes: [2, 2], kh: 2, kw: 2, conv: plainConv(0) },
    { prefix: 'rcp', method: 'rcp', tModes: [2, 4], sModes: [6, 9], kh: 1, kw: 1, conv: null },
    { prefix: 'rtk', method: 'rtk', tModes: [1, 5], sModes: [2, 4], kh: 1, kw: 1, conv: null },
  ];
  const [rtt, rtr, rcp, rtk] = [
    reshaped(specs[0]!, [2, 3], 42, P), reshaped(specs[1]!, [2, 3, 2], 43, P), reshaped(specs[2]!, [3], 44, P), reshaped(specs[3]!, [2, 2, 3], 45, P),
  ];
  const labels = [0, 3];
  const h = flatten(rtr!.forward(tanh(rtt!.forward(P['x']!))));
  const logits = rtk!.forward(tanh(rcp!.forward(h)));
  compare(t, 'model e', softmaxCrossEntropy(logits, labels), P, { model: 'e', labels, layers: specs });
});

t.test('model f: ADTN conv (stride 2, pad 1) -> tanh -> ADTN dense (fixed pairing); CE', async (t) => {
  if (!torchReady(t)) return;
  const P: Record<string, Var> = { x: randParam([2, 3, 6, 6], 51) };
  const ac = adtnConv2d(3, 4, [3, 3], { depth: 3 }, { strides: [2, 2], pads: [1, 1, 1, 1] }, { seed: 52 });
  named('ac', ac.params, 520, P);
  const ad = adtnDense(36, 5, { depth: 2, pairing: 'fixed' }, { seed: 53 });
  named('ad', ad.params, 530, P);
  const labels = [4, 1];
  const logits = ad.forward(flatten(tanh(ac.forward(P['x']!))));
  const layers = [
    { prefix: 'ac', depth: 3, arity: 2, pairing: 'brickwall', rows: 4, cols: 27, shape: [4, 3, 3, 3] },
    { prefix: 'ad', depth: 2, arity: 2, pairing: 'fixed', rows: 5, cols: 36 },
  ];
  compare(t, 'model f', softmaxCrossEntropy(logits, labels), P, { model: 'f', labels, layers });
});
