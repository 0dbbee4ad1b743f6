// Shape rules shared by the layer kinds' `outputShape` (runtime/layers/<kind>.ts). A shape that
// does not fit is FLM_MEMORY_PLAN naming the node, as the planner reports it.
import { attrInts, attrNum, type GraphNode } from '../ir.js';
import { FlmError } from '../format/errors.js';

/** A shape that does not fit: FLM_MEMORY_PLAN, naming the node. */
export function shapeFail(node: GraphNode, what: string): never {
  throw new FlmError('FLM_MEMORY_PLAN', `node ${node.name} (${node.op}): ${what}`);
}

export function convOut(inSize: number, k: number, stride: number, padBegin: number, padEnd: number, dilation: number): number {
  return Math.floor((inSize + padBegin + padEnd - dilation * (k - 1) - 1) / stride) + 1;
}

export function poolOut(inSize: number, k: number, stride: number, padBegin: number, padEnd: number, dilation: number, ceil: boolean): number {
  const span = inSize + padBegin + padEnd - dilation * (k - 1) - 1;
  if (!ceil) return Math.floor(span / stride) + 1;
  let out = Math.ceil(span / stride) + 1;
  if ((out - 1) * stride >= inSize + padBegin) out--;
  return out;
}

/** numpy broadcasting of two shapes. */
export function broadcast(node: GraphNode, a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) shapeFail(node, `cannot broadcast [${a}] with [${b}]`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** [N, O, OH, OW] of a conv-shaped node with O outputs and a KH x KW kernel. */
export function convShape(node: GraphNode, x: number[], O: number, KH: number, KW: number): number[] {
  if (x.length !== 4) shapeFail(node, `input [${x}] is not [N, C, H, W]`);
  const s = attrInts(node, 'strides', [1, 1]);
  const p = attrInts(node, 'pads', [0, 0, 0, 0]);
  const d = attrInts(node, 'dilations', [1, 1]);
  const OH = convOut(x[2]!, KH, s[0]!, p[0]!, p[2]!, d[0]!);
  const OW = convOut(x[3]!, KW, s[1]!, p[1]!, p[3]!, d[1]!);
  if (!(OH >= 1 && OW >= 1)) shapeFail(node, `output would be empty for input [${x}]`);
  return [x[0]!, O, OH, OW];
}

/** The input with its last axis (which must be inF) replaced by out. */
export function denseShape(node: GraphNode, x: number[], inF: number, out: number): number[] {
  if (x.length < 1 || x[x.length - 1] !== inF) shapeFail(node, `input [${x}] does not end in ${inF}`);
  return [...x.slice(0, -1), out];
}

/** Shape rules that are the identity: element-wise ops and normalisations. */
export function sameShape(node: GraphNode, ins: number[][]): number[] {
  const x = ins[0];
  if (!x) shapeFail(node, 'missing input');
  return [...x];
}

/** add, mul: the two inputs broadcast. */
export function broadcastPair(node: GraphNode, ins: number[][]): number[] {
  const b = ins[1];
  if (!b) shapeFail(node, 'needs two inputs');
  return broadcast(node, ins[0]!, b);
}

/** max_pool, avg_pool: [N, C, OH, OW] (avg_pool has no dilations). */
export function poolShapeOf(node: GraphNode, x: number[]): number[] {
  if (x.length !== 4) shapeFail(node, `input [${x}] is not [N, C, H, W]`);
  const k = attrInts(node, 'kernel');
  const s = attrInts(node, 'strides', [1, 1]);
  const p = attrInts(node, 'pads', [0, 0, 0, 0]);
  const d = node.op === 'max_pool' ? attrInts(node, 'dilations', [1, 1]) : [1, 1];
  const ceil = attrNum(node, 'ceil_mode', 0) !== 0;
  return [x[0]!, x[1]!, poolOut(x[2]!, k[0]!, s[0]!, p[0]!, p[2]!, d[0]!, ceil), poolOut(x[3]!, k[1]!, s[1]!, p[1]!, p[3]!, d[1]!, ceil)];
}

/** matmul on the last two axes, numpy-style (a 1-D operand gains and then loses an axis). */
export function matmulShape(node: GraphNode, ins: number[][]): number[] {
  const x = ins[0]!;
  const b = ins[1];
  if (!b) shapeFail(node, 'needs two inputs');
  const a2 = x.length === 1 ? [1, x[0]!] : x;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  if (b2[b2.length - 2] !== a2[a2.length - 1]) shapeFail(node, `inner dims differ, [${x}] @ [${b}]`);
  const lead = broadcast(node, a2.slice(0, -2), b2.slice(0, -2));
  const M = a2[a2.length - 2]!;
  const N = b2[b2.length - 1]!;
  if (x.length === 1 && b.length === 1) return lead;
  if (x.length === 1) return [...lead, N];
  if (b.length === 1) return [...lead, M];
  return [...lead, M, N];
}
