// A small tensor network contracted pairwise, left-deep, on the session's GEMM: what the reshaped
// tensorial kinds (runtime/layers/reshapedNet.ts) run. Legs are named; a leg may be shared by more
// than two tensors (rcp's rank r is shared by every factor), so a shared leg is summed only at the
// step after which no remaining tensor and no output needs it; until then it rides as a batch leg.
//
// One step, A the running intermediate and B the next tensor:
//   A' = A permuted to [batch, fa, c]   B' = B permuted to [batch, c, fb]
//   C[batch, fa, fb] = A'[batch] B'[batch]   (one gemmNN per batch index)
// where batch = legs of both still needed later, c = legs of both needed no more, fa / fb the rest.
// The last intermediate is permuted into the output in the order `open` gives.
//
// The order: every left-deep order is priced by the rule of runtime/cost/model.ts (2·size(union of
// the legs) per step); the cheapest wins, ties broken by the largest intermediate.
import type { KernelBackend } from '../kernels/backend.js';
import { permutations } from './permutations.js';

export interface NetPlanInput {
  sizes: ReadonlyMap<string, number>;
  /** Legs of each tensor, in its memory order. */
  tensors: readonly (readonly string[])[];
  /** The output's legs, in its memory order. */
  open: readonly string[];
  /** Tensor 0 is contracted first (the layer's input); otherwise every tensor may start. */
  fixedFirst: boolean;
}

interface Permutation {
  /** Output dims (row-major) and, per output axis, the stride of that axis in the source. */
  dims: number[];
  strides: number[];
  size: number;
  identity: boolean;
}

interface PlannedStep {
  tensor: number;
  a: Permutation;
  b: Permutation;
  batch: number;
  M: number;
  N: number;
  K: number;
  /** Legs of the result [batch, fa, fb]. */
  legs: string[];
  /** The legs of each group: A' is [batch, fa, c], B' is [batch, c, fb]. */
  groups: { batch: string[]; fa: string[]; c: string[]; fb: string[] };
}

export interface NetPlan {
  /** The final legs before the output permutation. */
  legs: string[];
  /** Tensor indices in contraction order. */
  order: number[];
  steps: PlannedStep[];
  final: Permutation;
  /** 2·size(union) summed over the steps (the cost model's rule). */
  flops: number;
  /** The largest intermediate, floats. */
  peak: number;
  /** Floats of scratch the run needs (permuted A, permuted B, two result buffers). */
  scratch: number;
}

export class NetError extends Error {
  readonly code = 'NET_INVALID';
}

const prod = (legs: readonly string[], sizes: ReadonlyMap<string, number>) => legs.reduce((a, l) => a * sizes.get(l)!, 1);

function permutation(src: readonly string[], dst: readonly string[], sizes: ReadonlyMap<string, number>): Permutation {
  const stride = new Map<string, number>();
  let s = 1;
  for (let i = src.length - 1; i >= 0; i--) {
    stride.set(src[i]!, s);
    s *= sizes.get(src[i]!)!;
  }
  // Size-1 legs do not move data; drop them so that the copy loop stays short.
  const keep = dst.filter((l) => sizes.get(l)! > 1);
  if (keep.length > 16) throw new NetError(`a permutation of ${keep.length} axes (at most 16)`);
  const dims = keep.map((l) => sizes.get(l)!);
  const strides = keep.map((l) => stride.get(l)!);
  let identity = true;
  let expect = 1;
  for (let i = keep.length - 1; i >= 0; i--) {
    if (strides[i] !== expect) identity = false;
    expect *= dims[i]!;
  }
  return { dims, strides, size: s, identity };
}

/** Copies src (from srcOff) permuted into dst (from dstOff); allocation-free for up to 16 axes. */
const counter = new Int32Array(16);
function runPermutation(p: Permutation, src: Float32Array, srcOff: number, dst: Float32Array, dstOff: number): void {
  if (p.identity) {
    for (let i = 0; i < p.size; i++) dst[dstOff + i] = src[srcOff + i]!;
    return;
  }
  const n = p.dims.length;
  const last = n - 1;
  const inner = p.dims[last]!;
  const innerStride = p.strides[last]!;
  counter.fill(0, 0, n);
  let off = srcOff;
  let o = dstOff;
  const end = dstOff + p.size;
  while (o < end) {
    for (let i = 0; i < inner; i++) dst[o++] = src[off + i * innerStride]!;
    // advance the outer counters
    let ax = last - 1;
    while (ax >= 0) {
      off += p.strides[ax]!;
      if (++counter[ax]! < p.dims[ax]!) break;
      off -= p.strides[ax]! * p.dims[ax]!;
      counter[ax] = 0;
      ax--;
    }
    if (ax < 0) break;
  }
}


/** Plans one order (tensor indices). */
export function planOrder(input: NetPlanInput, order: readonly number[]): NetPlan {
  const { sizes, tensors, open } = input;
  for (const t of tensors) for (const l of t) if (!sizes.has(l)) throw new NetError(`leg ${l} has no size`);
  if (order.length !== tensors.length || new Set(order).size !== tensors.length) throw new NetError(`order [${order}] is not a permutation of ${tensors.length} tensors`);
  const needAfter = (k: number) => {
    const s = new Set(open);
    for (let j = k + 1; j < order.length; j++) for (const l of tensors[order[j]!]!) s.add(l);
    return s;
  };
  let cur = [...tensors[order[0]!]!];
  const steps: PlannedStep[] = [];
  let flops = 0;
  let peak = prod(cur, sizes);
  let maxA = 0;
  let maxB = 0;
  let maxC = 0;
  // A first tensor with a leg nobody else has would need a sum of its own; the networks here have none.
  const first = needAfter(0);
  for (const l of cur) if (!first.has(l)) throw new NetError(`leg ${l} belongs to one tensor only`);
  for (let k = 1; k < order.length; k++) {
    const tb = tensors[order[k]!]!;
    const later = needAfter(k);
    const inB = new Set(tb);
    const inA = new Set(cur);
    const batch = cur.filter((l) => inB.has(l) && later.has(l));
    const c = cur.filter((l) => inB.has(l) && !later.has(l));
    const fa = cur.filter((l) => !inB.has(l));
    const fb = tb.filter((l) => !inA.has(l));
    for (const l of [...fa, ...fb]) if (!later.has(l)) throw new NetError(`leg ${l} belongs to one tensor only`);
    const union = [...cur, ...fb];
    flops += 2 * prod(union, sizes);
    const legs = [...batch, ...fa, ...fb];
    const step: PlannedStep = {
      tensor: order[k]!,
      a: permutation(cur, [...batch, ...fa, ...c], sizes),
      b: permutation(tb, [...batch, ...c, ...fb], sizes),
      batch: prod(batch, sizes), M: prod(fa, sizes), N: prod(fb, sizes), K: prod(c, sizes), legs,
      groups: { batch, fa, c, fb },
    };
    steps.push(step);
    maxA = Math.max(maxA, step.a.size);
    maxB = Math.max(maxB, step.b.size);
    const out = prod(legs, sizes);
    maxC = Math.max(maxC, out);
    peak = Math.max(peak, out);
    cur = legs;
  }
  if (cur.length !== open.length || !open.every((l) => cur.includes(l))) throw new NetError(`the network leaves legs [${cur}], the output wants [${open}]`);
  if (steps.length === 0) maxA = prod(cur, sizes); // one tensor: copied into the first buffer
  return { legs: cur, order: [...order], steps, final: permutation(cur, open, sizes), flops, peak, scratch: maxA + maxB + 2 * maxC };
}

/** The cheapest left-deep order (2·size(union) per step), ties broken by the peak intermediate. */
export function planNet(input: NetPlanInput): NetPlan {
  const n = input.tensors.length;
  const rest = Array.from({ length: n }, (_, i) => i).filter((i) => !input.fixedFirst || i > 0);
  let best: NetPlan | undefined;
  for (const p of permutations(rest)) {
    const order = input.fixedFirst ? [0, ...p] : p;
    let plan: NetPlan;
    try {
      plan = planOrder(input, order);
    } catch (e) {
      if (e instanceof NetError && /one tensor only/.test(e.message)) continue; // an order that strands a leg
      throw e;
    }
    if (!best || plan.flops < best.flops || (plan.flops === best.flops && plan.peak < best.peak)) best = plan;
  }
  if (!best) throw new NetError('no contraction order covers the network');
  return best;
}

/**
 * Binds a plan to its scratch (plan.scratch floats) and kernels. The returned function contracts
 * data[i] (tensor i, each read from its offset) into out[outOff ..]; it allocates nothing.
 */
export function bindNet(plan: NetPlan, scratch: Float32Array, kernels: KernelBackend): (data: readonly Float32Array[], offsets: readonly number[], out: Float32Array, outOff: number) => void {
  const maxA = Math.max(0, ...plan.steps.map((s) => s.a.size), plan.steps.length ? 0 : plan.final.size);
  const maxB = Math.max(0, ...plan.steps.map((s) => s.b.size));
  const maxC = Math.max(0, ...plan.steps.map((s) => s.batch * s.M * s.N));
  if (scratch.length < maxA + maxB + 2 * maxC) throw new NetError(`needs ${maxA + maxB + 2 * maxC} floats of scratch, got ${scratch.length}`);
  const bufA = scratch.subarray(0, maxA);
  const bufB = scratch.subarray(maxA, maxA + maxB);
  const bufC = [scratch.subarray(maxA + maxB, maxA + maxB + maxC), scratch.subarray(maxA + maxB + maxC, maxA + maxB + 2 * maxC)];
  const first = plan.order[0]!;
  return (data, offsets, out, outOff) => {
    let src = data[first]!;
    let srcOff = offsets[first]!;
    for (let k = 0; k < plan.steps.length; k++) {
      const s = plan.steps[k]!;
      runPermutation(s.a, src, srcOff, bufA, 0);
      runPermutation(s.b, data[s.tensor]!, offsets[s.tensor]!, bufB, 0);
      const c = bufC[k % 2]!;
      const MK = s.M * s.K;
      const KN = s.K * s.N;
      const MN = s.M * s.N;
      for (let b = 0; b < s.batch; b++) kernels.gemmNN(bufA, bufB, s.M, s.N, s.K, c, b * MK, b * KN, b * MN);
      src = c;
      srcOff = 0;
    }
    runPermutation(plan.final, src, srcOff, out, outOff);
  };
}
