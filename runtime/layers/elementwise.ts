import { attrNum, type GraphNode, type Tensor } from '../ir.js';
import { broadcastIndex, broadcastShape, stridesOf } from '../kernels/reference.js';
import { axis } from '../format/attrSpec.js';
import { checkOutput, firstInput, LayerError, type BoundRun, type LayerContext, type LayerKind } from './kind.js';
import { broadcastPair, matmulShape, sameShape } from './shapeRules.js';

function pair(node: GraphNode, inputs: Tensor[]): [Tensor, Tensor] {
  const a = inputs[0];
  const b = inputs[1];
  if (!a || !b) throw new LayerError(node, 'needs two inputs');
  return [a, b];
}

function broadcastOf(node: GraphNode, a: readonly number[], b: readonly number[]): number[] {
  try {
    return broadcastShape(a, b);
  } catch (e) {
    throw new LayerError(node, e instanceof Error ? e.message : String(e));
  }
}

/** Elementwise binary op with numpy broadcasting, writing `output` (strides worked out at bind). */
function binary(node: GraphNode, inputs: Tensor[], output: Tensor, add: boolean, ctx: LayerContext): BoundRun {
  const [a, b] = pair(node, inputs);
  const shape = broadcastOf(node, a.shape, b.shape);
  checkOutput(node, output, shape);
  const y = output.data;
  const ad = a.data;
  const bd = b.data;
  const r = shape.length;
  if (a.data.length === y.length && b.data.length === y.length) {
    const kernels = ctx.kernels;
    return add
      ? () => kernels.add(ad, bd, y)
      : () => { for (let i = 0; i < y.length; i++) y[i] = ad[i]! * bd[i]!; };
  }
  const pad = (s: readonly number[]) => [...new Array<number>(r - s.length).fill(1), ...s];
  const ap = pad(a.shape);
  const bp = pad(b.shape);
  const as = Int32Array.from(stridesOf(ap).map((st, i) => (ap[i] === 1 ? 0 : st)));
  const bs = Int32Array.from(stridesOf(bp).map((st, i) => (bp[i] === 1 ? 0 : st)));
  const dims = Int32Array.from(shape);
  const idx = new Int32Array(r);
  return () => {
    idx.fill(0);
    let ai = 0;
    let bi = 0;
    for (let i = 0; i < y.length; i++) {
      y[i] = add ? ad[ai]! + bd[bi]! : ad[ai]! * bd[bi]!;
      for (let d = r - 1; d >= 0; d--) {
        idx[d]!++;
        ai += as[d]!;
        bi += bs[d]!;
        if (idx[d]! < dims[d]!) break;
        ai -= as[d]! * dims[d]!;
        bi -= bs[d]! * dims[d]!;
        idx[d] = 0;
      }
    }
  };
}

export const add: LayerKind = {
  ops: ['add'],
  attrs: {},
  outputShape: (node, ins) => broadcastPair(node, ins),
  mcu: {},
  prepare: (node, ctx) => ({ bind: (inputs, output) => binary(node, inputs, output, true, ctx) }),
};

export const mul: LayerKind = {
  ops: ['mul'],
  attrs: {},
  outputShape: (node, ins) => broadcastPair(node, ins),
  mcu: {},
  prepare: (node, ctx) => ({ bind: (inputs, output) => binary(node, inputs, output, false, ctx) }),
};

/** Batched matmul on the last two axes with broadcasting over the leading ones: one GEMM per batch entry. */
function bindMatmul(node: GraphNode, ctx: LayerContext, inputs: Tensor[], output: Tensor): BoundRun {
  const [a, b] = pair(node, inputs);
  const a2 = a.shape.length === 1 ? [1, a.shape[0]!] : [...a.shape];
  const b2 = b.shape.length === 1 ? [b.shape[0]!, 1] : [...b.shape];
  const M = a2[a2.length - 2]!;
  const K = a2[a2.length - 1]!;
  const N = b2[b2.length - 1]!;
  if (b2[b2.length - 2] !== K) throw new LayerError(node, `inner dims differ, [${a.shape}] @ [${b.shape}]`);
  const lead = broadcastOf(node, a2.slice(0, -2), b2.slice(0, -2));
  let shape = [...lead, M, N];
  if (a.shape.length === 1) shape = [...lead, N];
  if (b.shape.length === 1) shape = a.shape.length === 1 ? [...lead] : [...lead, M];
  checkOutput(node, output, shape);
  const batch = lead.reduce((x, y) => x * y, 1);
  const idxOf = (lin: number, src: number[]): number => broadcastIndex(lin, lead, src);
  const aOff = new Int32Array(batch);
  const bOff = new Int32Array(batch);
  for (let i = 0; i < batch; i++) {
    aOff[i] = idxOf(i, a2.slice(0, -2)) * M * K;
    bOff[i] = idxOf(i, b2.slice(0, -2)) * K * N;
  }
  const ad = a.data;
  const bd = b.data;
  const y = output.data;
  return () => {
    for (let i = 0; i < batch; i++) ctx.kernels.gemmNN(ad, bd, M, N, K, y, aOff[i]!, bOff[i]!, i * M * N);
  };
}

export const matmul: LayerKind = {
  ops: ['matmul'],
  attrs: {},
  outputShape: (node, ins) => matmulShape(node, ins),
  // core/ops/matmul.c: no scratch.
  mcu: {},
  prepare: (node, ctx) => ({ bind: (inputs, output) => bindMatmul(node, ctx, inputs, output) }),
};

function softmaxKind(op: 'softmax' | 'log_softmax'): LayerKind {
  const log = op === 'log_softmax';
  return {
  ops: [op],
    attrs: { axis },
    outputShape: (node, ins) => sameShape(node, ins),
    mcu: {},
  prepare(node) {
    const axis = attrNum(node, 'axis', -1);
    return {
      bind(inputs, output) {
        const x = firstInput(node, inputs);
        const shape = x.shape;
        if (axis >= shape.length || axis < -shape.length) throw new LayerError(node, `axis ${axis} out of range`);
        checkOutput(node, output, shape);
        const ax = axis < 0 ? axis + shape.length : axis;
        const n = shape[ax]!;
        const inner = shape.slice(ax + 1).reduce((p, q) => p * q, 1);
        const outer = shape.slice(0, ax).reduce((p, q) => p * q, 1);
        const xd = x.data;
        const y = output.data;
        return () => {
          for (let o = 0; o < outer; o++) {
            for (let i = 0; i < inner; i++) {
              const base = o * n * inner + i;
              let m = -Infinity;
              for (let k = 0; k < n; k++) m = Math.max(m, xd[base + k * inner]!);
              let s = 0;
              for (let k = 0; k < n; k++) s += Math.exp(xd[base + k * inner]! - m);
              if (log) {
                const ls = Math.log(s);
                for (let k = 0; k < n; k++) y[base + k * inner] = xd[base + k * inner]! - m - ls;
              } else {
                for (let k = 0; k < n; k++) y[base + k * inner] = Math.exp(xd[base + k * inner]! - m) / s;
              }
            }
          }
        };
      },
    };
  },
};
}

export const softmax = softmaxKind('softmax');
export const logSoftmax = softmaxKind('log_softmax');
