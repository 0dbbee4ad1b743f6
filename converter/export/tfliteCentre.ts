// Centring of factor bottlenecks before the int8 export. A factorised layer writes a rank-r tensor
// between two linear ops (svd_dense: x v^T, then u; svd_conv2d and tucker2: the last conv, then a
// 1x1 conv). Its channels sit off centre by very different amounts (the first singular direction of
// an image layer is nearly the mean image), so one per-tensor int8 range must span the union of
// all of them. Moving channel k by its calibration mid-range c_k (first op's bias - c, second op's
// bias + W c) leaves the float result as it was and narrows that union to the widest half-range.
import { Act, F, Op } from '../tflite/schema.js';
import type { OperatorSpec, TfliteBuilder } from './tfliteBuilder.js';

function f32Of(b: Uint8Array): Float32Array {
  const copy = b.slice();
  return new Float32Array(copy.buffer, 0, copy.length / 4);
}

const bytesOf = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();

/** Option field of the fused activation of the ops that have one. */
const ACT_FIELD: Record<number, number> = {
  [Op.FULLY_CONNECTED]: F.FullyConnectedOptions.fused_activation_function, [Op.CONV_2D]: F.Conv2DOptions.fused_activation_function,
  [Op.DEPTHWISE_CONV_2D]: F.DepthwiseConv2DOptions.fused_activation_function, [Op.ADD]: F.AddOptions.fused_activation_function,
  [Op.MUL]: F.MulOptions.fused_activation_function,
};

/** The op's fused activation, NONE when absent. */
export function fusedAct(b: TfliteBuilder, op: OperatorSpec): number {
  const field = ACT_FIELD[b.opcodeOf(op)];
  const f = field === undefined ? undefined : op.options.find((o) => o[0] === field);
  return f === undefined ? Act.NONE : Number(f[2]);
}

/** True when `t` is written by a linear op with no activation: a classifier's raw logits, say. */
export function rawLinearOutput(b: TfliteBuilder, t: number): boolean {
  const op = b.operators.find((o) => o.outputs.includes(t));
  return op !== undefined && ([Op.FULLY_CONNECTED, Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.ADD, Op.BATCH_MATMUL] as number[]).includes(b.opcodeOf(op)) && fusedAct(b, op) === Act.NONE;
}

/**
 * Centres every tensor written by a FULLY_CONNECTED / CONV_2D with no activation and read only by one
 * FULLY_CONNECTED (rank-2 input) or 1x1 CONV_2D, both with constant float weights. Returns how many
 * tensors it centred. `ranges` gives a tensor's per-channel calibration range (its last axis).
 */
export function centreBottlenecks(b: TfliteBuilder, outputs: number[], ranges: (idx: number) => { lo: Float64Array; hi: Float64Array } | undefined): number {
  const T = b.tensors;
  const readers = new Map<number, OperatorSpec[]>();
  for (const op of b.operators) for (const i of op.inputs) if (i >= 0) readers.set(i, [...(readers.get(i) ?? []), op]);
  const isConst = (i: number | undefined): boolean => i !== undefined && i >= 0 && (b.buffers[T[i]!.buffer]?.length ?? 0) > 0;
  const linear = (op: OperatorSpec): boolean => b.opcodeOf(op) === Op.FULLY_CONNECTED || b.opcodeOf(op) === Op.CONV_2D;
  /** The op's bias as floats, created (zeros) when it has none. */
  const biasOf = (op: OperatorSpec, n: number, name: string): Float32Array => {
    if ((op.inputs[2] ?? -1) < 0) op.inputs[2] = b.f32(`${name}/bias_centring`, [n], new Float32Array(n));
    return f32Of(b.buffers[T[op.inputs[2]!]!.buffer]!);
  };
  let centred = 0;
  for (const first of b.operators) {
    const t = first.outputs[0]!;
    if (!linear(first) || fusedAct(b, first) !== Act.NONE || outputs.includes(t) || !isConst(first.inputs[1])) continue;
    const next = readers.get(t);
    if (next?.length !== 1) continue;
    const second = next[0]!;
    const w = second.inputs[1];
    if (!linear(second) || second.inputs[0] !== t || !isConst(w)) continue;
    const ws = T[w!]!.shape;
    const code = b.opcodeOf(second);
    const ch = T[t]!.shape[T[t]!.shape.length - 1]!;
    // FULLY_CONNECTED on a rank-2 tensor reads its channels as features; a 1x1 CONV_2D [O, 1, 1, I] too.
    const fits = code === Op.FULLY_CONNECTED ? T[t]!.shape.length === 2 && ws[1] === ch : ws.length === 4 && ws[1] === 1 && ws[2] === 1 && ws[3] === ch;
    const r = ranges(t);
    if (!fits || !r || r.lo.length !== ch || !r.lo.every(Number.isFinite) || !r.hi.every(Number.isFinite)) continue;
    const c = Float64Array.from(r.lo, (lo, k) => (lo + r.hi[k]!) / 2);
    const b1 = biasOf(first, ch, T[t]!.name);
    for (let k = 0; k < ch; k++) b1[k] = b1[k]! - c[k]!;
    const o = ws[0]!;
    const wd = f32Of(b.buffers[T[w!]!.buffer]!);
    const b2 = biasOf(second, o, T[second.outputs[0]!]!.name);
    for (let j = 0; j < o; j++) {
      let s = 0;
      for (let k = 0; k < ch; k++) s += wd[j * ch + k]! * c[k]!;
      b2[j] = b2[j]! + s;
    }
    b.buffers[T[first.inputs[2]!]!.buffer] = bytesOf(b1);
    b.buffers[T[second.inputs[2]!]!.buffer] = bytesOf(b2);
    centred++;
  }
  return centred;
}
