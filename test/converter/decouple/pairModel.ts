// A PyTorch-style ONNX model (Gemm with transB = 1, Tanh, Gemm) whose hidden layer is exactly a
// decoupled function of `branches` directions: its 4·branches hidden units fall in groups that share
// one input direction v_b and one output direction w_b (each unit its own input scale in
// [0.3, 0.7], bias and output gain a_q), so f(u) = Σ_b w_b g_b(v_bᵀu) + b2 with
// g_b(z) = Σ_q a_q tanh(s_q z + c_q), gentle over the inputs' range. A flexact layer of `branches`
// neurons can stand for it up to the polynomial's fit of those curves; fewer neurons cannot.
import type { Tensor } from '../../../runtime/ir.js';
import { buildModel, Rng } from '../onnx/fixtures/build.js';

export interface PairModel {
  onnx: Uint8Array;
  inputs: number;
  hidden: number;
  outputs: number;
}

export function pairModel(opts: { inputs?: number; branches?: number; outputs?: number; seed?: number; activation?: 'Tanh' | 'Relu' | 'Sigmoid' } = {}): PairModel {
  const m = opts.inputs ?? 12;
  const r = opts.branches ?? 3;
  const n = opts.outputs ?? 5;
  const h = 4 * r;
  const rng = new Rng(opts.seed ?? 3);
  const dirs: Float64Array[] = [];
  for (let b = 0; b < r; b++) {
    const v = Float64Array.from(rng.array(m));
    const norm = Math.hypot(...v);
    dirs.push(v.map((x) => x / norm));
  }
  const w1 = new Float32Array(h * m);
  const b1 = new Float32Array(h);
  for (let q = 0; q < h; q++) {
    const scale = 0.3 + 0.4 * rng.uniform();
    for (let j = 0; j < m; j++) w1[q * m + j] = scale * dirs[q % r]![j]!;
    b1[q] = 0.5 * rng.normal();
  }
  const wb = rng.array(n * r, 0.5);
  const w2 = new Float32Array(n * h);
  for (let q = 0; q < h; q++) {
    const gain = 0.5 + rng.uniform();
    for (let i = 0; i < n; i++) w2[i * h + q] = gain * wb[i * r + (q % r)]!;
  }
  const onnx = buildModel({
    opset: 13,
    inputs: [{ name: 'input', shape: ['batch', m] }],
    outputs: ['logits'],
    nodes: [
      { op: 'Gemm', name: '/fc1/Gemm', inputs: ['input', 'fc1.weight', 'fc1.bias'], outputs: ['h'], attrs: { transB: 1 } },
      { op: opts.activation ?? 'Tanh', name: '/act/Act', inputs: ['h'], outputs: ['a'] },
      { op: 'Gemm', name: '/fc2/Gemm', inputs: ['a', 'fc2.weight', 'fc2.bias'], outputs: ['logits'], attrs: { transB: 1 } },
    ],
    inits: [
      { name: 'fc1.weight', dims: [h, m], data: w1 },
      { name: 'fc1.bias', dims: [h], data: b1 },
      { name: 'fc2.weight', dims: [n, h], data: w2 },
      { name: 'fc2.bias', dims: [n], data: rng.array(n, 0.1) },
    ],
  });
  return { onnx, inputs: m, hidden: h, outputs: n };
}

/** Standard normal inputs [rows, m]. */
export function normalInputs(rows: number, m: number, seed: number): Tensor {
  return new Rng(seed).tensor([rows, m]);
}
