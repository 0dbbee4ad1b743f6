// Batched matrix products on the last two axes, with numpy broadcasting over the leading axes
// (a weight [K, N] against activations [B, .., M, K] is the common case), and the dense layer's
// x W^T + b with W stored [out, in] as in runtime/ir.ts.
import { numel } from '../../../runtime/ir.js';
import { gemmNNAcc, gemmNTAcc, gemmTNAcc } from '../gemm.js';
import { gradOf, result, type Var } from '../tensor.js';
import { addBias, broadcastIndex, broadcastShape } from './elementwise.js';

/** a [..., M, K] @ b [..., K, N] -> [lead, M, N]; both operands at least 2-D. */
export function matmul(a: Var, b: Var): Var {
  if (a.shape.length < 2 || b.shape.length < 2) throw new Error(`train: matmul needs 2-D or more, got [${a.shape}] @ [${b.shape}]`);
  const M = a.shape[a.shape.length - 2]!;
  const K = a.shape[a.shape.length - 1]!;
  const N = b.shape[b.shape.length - 1]!;
  if (b.shape[b.shape.length - 2] !== K) throw new Error(`train: matmul inner dims differ, [${a.shape}] @ [${b.shape}]`);
  const aLead = a.shape.slice(0, -2);
  const bLead = b.shape.slice(0, -2);
  const lead = broadcastShape(aLead, bLead);
  const batch = numel(lead);
  const shape = [...lead, M, N];
  const out = new Float32Array(batch * M * N);
  const ad = a.data;
  const bd = b.data;
  if (numel(bLead) === 1 && numel(aLead) === batch) {
    // Shared right operand (a weight): one [batch*M, K] @ [K, N] product.
    const rows = batch * M;
    gemmNNAcc(ad, 0, bd, 0, out, 0, rows, N, K);
    return result(out, shape, [a, b], (g) => {
      const ga = gradOf(a);
      const gb = gradOf(b);
      if (ga) gemmNTAcc(g, 0, bd, 0, ga, 0, rows, K, N);
      if (gb) gemmTNAcc(ad, 0, g, 0, gb, 0, K, N, rows);
    });
  }
  const ia = broadcastIndex(lead, aLead);
  const ib = broadcastIndex(lead, bLead);
  for (let i = 0; i < batch; i++) gemmNNAcc(ad, ia[i]! * M * K, bd, ib[i]! * K * N, out, i * M * N, M, N, K);
  return result(out, shape, [a, b], (g) => {
    const ga = gradOf(a);
    const gb = gradOf(b);
    for (let i = 0; i < batch; i++) {
      if (ga) gemmNTAcc(g, i * M * N, bd, ib[i]! * K * N, ga, ia[i]! * M * K, M, K, N);
      if (gb) gemmTNAcc(ad, ia[i]! * M * K, g, i * M * N, gb, ib[i]! * K * N, K, N, M);
    }
  });
}

/** Dense layer: x [..., in] W^T + b with W [out, in] and b [out]. */
export function linear(x: Var, w: Var, b?: Var): Var {
  if (w.shape.length !== 2) throw new Error(`train: linear weight must be 2-D, got [${w.shape}]`);
  const [O, I] = w.shape as [number, number];
  if (x.shape[x.shape.length - 1] !== I) throw new Error(`train: linear input [${x.shape}] does not end in ${I}`);
  const rows = x.size / I;
  const out = new Float32Array(rows * O);
  const xd = x.data;
  const wd = w.data;
  gemmNTAcc(xd, 0, wd, 0, out, 0, rows, O, I);
  const y = result(out, [...x.shape.slice(0, -1), O], [x, w], (g) => {
    const gx = gradOf(x);
    const gw = gradOf(w);
    if (gx) gemmNNAcc(g, 0, wd, 0, gx, 0, rows, I, O);
    if (gw) gemmTNAcc(g, 0, xd, 0, gw, 0, O, I, rows);
  });
  return b ? addBias(y, b, -1) : y;
}
