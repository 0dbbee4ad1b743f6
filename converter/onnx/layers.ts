// Emitters for the parametric ONNX ops (Conv, Gemm, MatMul, BatchNormalization) and pools.

import onnxProto from 'onnx-proto';
import type { GraphNode } from '../../runtime/ir.js';
import { attrFloat, attrInt, attrInts, attrString, findAttr } from './attributes.js';
import { OnnxImportError } from './errors.js';
import type { Importer } from './import.js';
import { transposeConst } from './fold.js';
import { type Dim, broadcastShapes, isNum, windowOut } from './shapes.js';
import { type Const, constFloats, numelOf } from './tensors.js';

type INodeProto = onnxProto.onnx.INodeProto;
export interface EmitContext { name: string; where: string }
export type Emitter = (imp: Importer, n: INodeProto, ctx: EmitContext) => void;

export function unsupported(where: string, msg: string): never {
  throw new OnnxImportError('ONNX_UNSUPPORTED_ATTR', `${where}: ${msg}`);
}

export function badModel(where: string, msg: string): never {
  throw new OnnxImportError('ONNX_BAD_MODEL', `${where}: ${msg}`);
}

/** The activation feeding input `i` (its IR value name and shape); fails on a constant. */
export function activation(imp: Importer, n: INodeProto, i: number, ctx: EmitContext): { v: string; shape: Dim[] } {
  const name = n.input?.[i];
  if (!name) badModel(ctx.where, `input ${i} is missing`);
  if (imp.consts.has(name)) unsupported(ctx.where, `input ${i} ("${name}") must not be a constant here`);
  return { v: imp.value(name), shape: imp.shapeOf(name, ctx.where) };
}

/** The float constant feeding input `i`, or undefined when the input is absent. */
export function constInput(imp: Importer, n: INodeProto, i: number, ctx: EmitContext, role: string): Const | undefined {
  const name = n.input?.[i];
  if (!name) return undefined;
  const c = imp.consts.get(name);
  if (!c) unsupported(ctx.where, `${role} ("${name}") must be a constant`);
  return c;
}

/** Fails when a secondary output (indices, mask, running stats) is read by anything. */
export function onlyFirstOutput(imp: Importer, n: INodeProto, ctx: EmitContext): string {
  const outs = n.output ?? [];
  for (let i = 1; i < outs.length; i++) {
    if (outs[i] && imp.isUsed(outs[i]!)) unsupported(ctx.where, `output ${i} ("${outs[i]}") is not supported`);
  }
  const o = outs[0];
  if (!o) badModel(ctx.where, 'no output');
  return o;
}

/** Explicit [top, left, bottom, right] pads, resolving auto_pad against the input's spatial dims. */
function windowPads(
  n: INodeProto, spatial: Dim[], kernel: number[], strides: number[], dilations: number[], ctx: EmitContext,
): number[] {
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') {
    const pads = attrInts(n, 'pads') ?? [0, 0, 0, 0];
    if (pads.length !== 4) unsupported(ctx.where, `pads [${pads.join(', ')}] must have 4 entries`);
    return pads;
  }
  if (autoPad === 'VALID') return [0, 0, 0, 0];
  if (autoPad !== 'SAME_UPPER' && autoPad !== 'SAME_LOWER') unsupported(ctx.where, `auto_pad ${autoPad}`);
  const begin: number[] = [];
  const end: number[] = [];
  for (let a = 0; a < 2; a++) {
    const d = spatial[a]!;
    if (!isNum(d)) unsupported(ctx.where, `auto_pad ${autoPad} needs a fixed spatial size`);
    const out = Math.ceil(d / strides[a]!);
    const total = Math.max(0, (out - 1) * strides[a]! + (kernel[a]! - 1) * dilations[a]! + 1 - d);
    const small = Math.floor(total / 2);
    begin.push(autoPad === 'SAME_UPPER' ? small : total - small);
    end.push(autoPad === 'SAME_UPPER' ? total - small : small);
  }
  return [begin[0]!, begin[1]!, end[0]!, end[1]!];
}

function spatialOut(
  x: Dim[], kernel: number[], strides: number[], dilations: number[], pads: number[], ceil: boolean, imp: Importer,
): Dim[] {
  return [0, 1].map((a) => windowOut(x[a + 2]!, kernel[a]!, strides[a]!, dilations[a]!, pads[a]!, pads[a + 2]!, ceil, imp.symbols));
}

function require4d(shape: Dim[], ctx: EmitContext, what: string): void {
  if (shape.length !== 4) unsupported(ctx.where, `${what} needs a 4-D [N, C, H, W] input, got rank ${shape.length} (only 2-D spatial ops are supported)`);
}

const conv: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const w = constInput(imp, n, 1, ctx, 'weight') ?? badModel(ctx.where, 'missing weight');
  if (w.dims.length !== 4 || x.shape.length !== 4) {
    unsupported(ctx.where, `only 2-D convolution is supported (weight rank ${w.dims.length}, input rank ${x.shape.length})`);
  }
  const [o, ipg, kh, kw] = w.dims as [number, number, number, number];
  const kernel = attrInts(n, 'kernel_shape') ?? [kh, kw];
  if (kernel.length !== 2 || kernel[0] !== kh || kernel[1] !== kw) unsupported(ctx.where, `kernel_shape [${kernel.join(', ')}] does not match the weight`);
  const group = attrInt(n, 'group', 1);
  const c = x.shape[1]!;
  if (group < 1 || o % group !== 0 || (isNum(c) && c !== ipg * group)) {
    badModel(ctx.where, `weight [${w.dims.join(', ')}] does not fit ${c} input channels in ${group} groups`);
  }
  const strides = attrInts(n, 'strides') ?? [1, 1];
  const dilations = attrInts(n, 'dilations') ?? [1, 1];
  if (strides.length !== 2 || dilations.length !== 2) unsupported(ctx.where, 'strides and dilations must have 2 entries');
  const pads = windowPads(n, x.shape.slice(2), kernel, strides, dilations, ctx);
  const weights: Record<string, string> = { weight: imp.storeConst(n.input![1]!, w, ctx.where) };
  const b = constInput(imp, n, 2, ctx, 'bias');
  if (b) {
    if (numelOf(b.dims) !== o) badModel(ctx.where, `bias has ${numelOf(b.dims)} values for ${o} channels`);
    weights.bias = b.dims.length === 1 ? imp.storeConst(n.input![2]!, b, ctx.where)
      : imp.storeDerived(`${ctx.name}.bias`, [o], constFloats(b, ctx.where), b.src);
  }
  const out = onlyFirstOutput(imp, n, ctx);
  const shape: Dim[] = [x.shape[0]!, o, ...spatialOut(x.shape, kernel, strides, dilations, pads, false, imp)];
  imp.emit('conv2d', ctx.name, [x.v], out, shape, { strides, pads, dilations, group }, weights);
};

/** Per-output-feature bias of a dense layer from a constant broadcast over [..., out]. */
function featureBias(c: Const, out: number, scale: number, ctx: EmitContext): Float32Array | undefined {
  const data = constFloats(c, ctx.where);
  const lead = c.dims.slice(0, -1);
  if (lead.some((d) => d !== 1)) return undefined;
  const last = c.dims.length === 0 ? 1 : c.dims[c.dims.length - 1]!;
  if (last !== out && last !== 1) return undefined;
  const bias = new Float32Array(out);
  for (let i = 0; i < out; i++) bias[i] = scale * data[last === 1 ? 0 : i]!;
  return bias;
}

const gemm: Emitter = (imp, n, ctx) => {
  if (attrInt(n, 'transA', 0) !== 0) unsupported(ctx.where, 'transA=1 is not supported');
  const a = activation(imp, n, 0, ctx);
  if (a.shape.length !== 2) badModel(ctx.where, `input A must be 2-D, got rank ${a.shape.length}`);
  const b = constInput(imp, n, 1, ctx, 'B') ?? badModel(ctx.where, 'missing B');
  if (b.dims.length !== 2) badModel(ctx.where, `B must be 2-D, got [${b.dims.join(', ')}]`);
  const transB = attrInt(n, 'transB', 0) !== 0;
  const alpha = attrFloat(n, 'alpha', 1);
  const beta = attrFloat(n, 'beta', 1);
  const [outF, inF] = transB ? [b.dims[0]!, b.dims[1]!] : [b.dims[1]!, b.dims[0]!];
  if (isNum(a.shape[1]!) && a.shape[1] !== inF) badModel(ctx.where, `A has ${a.shape[1]} features, B expects ${inF}`);
  let weight: string;
  if (transB && alpha === 1 && b.kind === 'float') weight = imp.storeConst(n.input![1]!, b, ctx.where);
  else {
    const wt = transB ? b : transposeConst(b, [1, 0]);
    const data = constFloats(wt, ctx.where).map((v) => v * alpha);
    weight = imp.storeDerived(`${ctx.name}.weight`, [outF, inF], data, b.src);
  }
  const weights: Record<string, string> = { weight };
  const c = constInput(imp, n, 2, ctx, 'C');
  if (c && beta !== 0) {
    const bias = featureBias(c, outF, beta, ctx) ?? unsupported(ctx.where, `C of shape [${c.dims.join(', ')}] must broadcast per output feature`);
    weights.bias = c.dims.length === 1 && c.dims[0] === outF && beta === 1 && c.kind === 'float'
      ? imp.storeConst(n.input![2]!, c, ctx.where)
      : imp.storeDerived(`${ctx.name}.bias`, [outF], bias, c.src);
  }
  imp.emit('dense', ctx.name, [a.v], onlyFirstOutput(imp, n, ctx), [a.shape[0]!, outF], {}, weights);
};

const matMul: Emitter = (imp, n, ctx) => {
  const [an, bn] = [n.input?.[0] ?? '', n.input?.[1] ?? ''];
  if (imp.consts.has(an)) unsupported(ctx.where, 'MatMul with a constant left operand is not supported');
  const a = activation(imp, n, 0, ctx);
  const out = onlyFirstOutput(imp, n, ctx);
  if (a.shape.length < 2) unsupported(ctx.where, `MatMul of a rank-${a.shape.length} input is not supported`);
  const b = imp.consts.get(bn);
  if (b) {
    if (b.dims.length !== 2) unsupported(ctx.where, `constant right operand must be 2-D, got [${b.dims.join(', ')}]`);
    const [inF, outF] = b.dims as [number, number];
    const last = a.shape[a.shape.length - 1]!;
    if (isNum(last) && last !== inF) badModel(ctx.where, `input has ${last} features, weight expects ${inF}`);
    const w = imp.storeDerived(`${ctx.name}.weight`, [outF, inF], constFloats(transposeConst(b, [1, 0]), ctx.where), b.src);
    imp.emit('dense', ctx.name, [a.v], out, [...a.shape.slice(0, -1), outF], {}, { weight: w });
    return;
  }
  const bb = activation(imp, n, 1, ctx);
  if (bb.shape.length < 2) unsupported(ctx.where, `MatMul of a rank-${bb.shape.length} input is not supported`);
  const batch = broadcastShapes(a.shape.slice(0, -2), bb.shape.slice(0, -2)) ?? badModel(ctx.where, 'batch dims do not broadcast');
  const shape = [...batch, a.shape[a.shape.length - 2]!, bb.shape[bb.shape.length - 1]!];
  imp.emit('matmul', ctx.name, [a.v, bb.v], out, shape);
};

/** Replaces a weight tensor of `node` with new data (never in place: tensors may be shared). */
function rewriteWeight(imp: Importer, node: GraphNode, role: string, dims: number[], data: Float32Array, src: Set<string>): void {
  const old = node.weights[role];
  const all = new Set([...src, ...(old ? imp.tensorSrc.get(old) ?? [] : [])]);
  node.weights[role] = imp.storeDerived(`${node.name}.${role}`, dims, data, all);
}

/** Folds y = x * scale[c] + shift[c] into the conv/dense that produced x. */
function foldAffine(imp: Importer, node: GraphNode, scale: Float32Array, shift: Float32Array, src: Set<string>): void {
  const w = imp.tensors.get(node.weights.weight!)!;
  const outF = w.shape[0]!;
  const per = numelOf(w.shape) / outF;
  const wd = new Float32Array(w.data as Float32Array);
  for (let o = 0; o < outF; o++) for (let k = 0; k < per; k++) wd[o * per + k]! *= scale[o]!;
  const oldBias = node.weights.bias ? (imp.tensors.get(node.weights.bias)!.data as Float32Array) : new Float32Array(outF);
  const bd = new Float32Array(outF);
  for (let o = 0; o < outF; o++) bd[o] = oldBias[o]! * scale[o]! + shift[o]!;
  rewriteWeight(imp, node, 'weight', w.shape, wd, src);
  rewriteWeight(imp, node, 'bias', [outF], bd, src);
}

/** Adds a constant to a dense layer's bias when the dense output has no other reader. */
export function tryFuseBias(imp: Importer, onnxIn: string, c: Const, out: string, ctx: EmitContext): boolean {
  const v = imp.value(onnxIn);
  const node = imp.producer.get(v);
  if (!node || node.op !== 'dense' || !imp.soleUse(v)) return false;
  const shape = imp.shapes.get(node.outputs[0]!)!;
  if (c.dims.length > shape.length) return false;
  const outF = imp.tensors.get(node.weights.weight!)!.shape[0]!;
  const add = featureBias(c, outF, 1, ctx);
  if (!add) return false;
  const old = node.weights.bias ? (imp.tensors.get(node.weights.bias)!.data as Float32Array) : undefined;
  if (old) for (let o = 0; o < outF; o++) add[o]! += old[o]!;
  rewriteWeight(imp, node, 'bias', [outF], add, c.src);
  imp.renameOutput(node, out, shape);
  return true;
}

const batchNorm: Emitter = (imp, n, ctx) => {
  if (attrInt(n, 'training_mode', 0) !== 0) unsupported(ctx.where, 'training_mode=1 is not supported');
  const x = activation(imp, n, 0, ctx);
  const params = ['scale', 'B', 'mean', 'var'].map((r, i) => constInput(imp, n, i + 1, ctx, r) ?? badModel(ctx.where, `missing ${r}`));
  const [gamma, beta, mean, variance] = params.map((p) => constFloats(p, ctx.where)) as [Float32Array, Float32Array, Float32Array, Float32Array];
  const ch = gamma.length;
  if (x.shape.length < 2 || (isNum(x.shape[1]!) && x.shape[1] !== ch) || [beta, mean, variance].some((p) => p.length !== ch)) {
    badModel(ctx.where, `parameters do not match the ${x.shape[1]} channels of the input`);
  }
  const eps = attrFloat(n, 'epsilon', 1e-5);
  const scale = new Float32Array(ch);
  const shift = new Float32Array(ch);
  for (let c = 0; c < ch; c++) {
    scale[c] = gamma[c]! / Math.sqrt(variance[c]! + eps);
    shift[c] = beta[c]! - mean[c]! * scale[c]!;
  }
  const src = new Set(params.flatMap((p) => [...p.src]));
  const out = onlyFirstOutput(imp, n, ctx);
  const prev = imp.producer.get(x.v);
  const foldable = prev && imp.soleUse(x.v) &&
    (prev.op === 'conv2d' || (prev.op === 'dense' && x.shape.length === 2));
  if (prev && foldable) {
    foldAffine(imp, prev, scale, shift, src);
    imp.renameOutput(prev, out, x.shape);
    return;
  }
  const dims = [ch, ...x.shape.slice(2).map(() => 1)];
  const s = imp.storeDerived(`${ctx.name}.scale`, dims, scale, src);
  const t = imp.storeDerived(`${ctx.name}.shift`, dims, shift, src);
  const mid = imp.freshValue(`${out}/scaled`);
  imp.emit('mul', `${ctx.name}/mul`, [x.v, s], mid, x.shape);
  imp.emit('add', ctx.name, [mid, t], out, x.shape);
};

const maxPool: Emitter = (imp, n, ctx) => pool(imp, n, ctx, 'max');
const avgPool: Emitter = (imp, n, ctx) => pool(imp, n, ctx, 'avg');

function pool(imp: Importer, n: INodeProto, ctx: EmitContext, kind: 'max' | 'avg'): void {
  const x = activation(imp, n, 0, ctx);
  require4d(x.shape, ctx, n.opType ?? 'pool');
  const kernel = attrInts(n, 'kernel_shape') ?? badModel(ctx.where, 'kernel_shape is required');
  if (kernel.length !== 2) unsupported(ctx.where, `only 2-D pooling is supported (kernel_shape [${kernel.join(', ')}])`);
  const strides = attrInts(n, 'strides') ?? [1, 1];
  const dilations = kind === 'max' ? attrInts(n, 'dilations') ?? [1, 1] : [1, 1];
  if (kind === 'avg' && findAttr(n, 'dilations') && (attrInts(n, 'dilations') ?? []).some((d) => d !== 1)) {
    unsupported(ctx.where, 'AveragePool dilations are not supported');
  }
  const pads = windowPads(n, x.shape.slice(2), kernel, strides, dilations, ctx);
  const ceil = attrInt(n, 'ceil_mode', 0);
  const shape: Dim[] = [x.shape[0]!, x.shape[1]!, ...spatialOut(x.shape, kernel, strides, dilations, pads, ceil !== 0, imp)];
  const out = onlyFirstOutput(imp, n, ctx);
  if (kind === 'max') {
    imp.emit('max_pool', ctx.name, [x.v], out, shape, { kernel, strides, pads, dilations, ceil_mode: ceil });
  } else {
    const countIncludePad = attrInt(n, 'count_include_pad', 0);
    imp.emit('avg_pool', ctx.name, [x.v], out, shape, { kernel, strides, pads, ceil_mode: ceil, count_include_pad: countIncludePad });
  }
}

const globalAvgPool: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  require4d(x.shape, ctx, 'GlobalAveragePool');
  imp.emit('global_avg_pool', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), [x.shape[0]!, x.shape[1]!, 1, 1]);
};

/** ReduceMean over the spatial axes of NCHW (PyTorch's x.mean([2, 3])) is a global average pool. */
const reduceMean: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const axes = (attrInts(n, 'axes') ?? []).map((a) => (a < 0 ? a + x.shape.length : a)).sort();
  if (x.shape.length !== 4 || axes.join(',') !== '2,3') {
    unsupported(ctx.where, `ReduceMean is supported only over axes [2, 3] of a 4-D input (axes [${attrInts(n, 'axes') ?? 'all'}])`);
  }
  const out = onlyFirstOutput(imp, n, ctx);
  const pooled: Dim[] = [x.shape[0]!, x.shape[1]!, 1, 1];
  if (attrInt(n, 'keepdims', 1) !== 0) {
    imp.emit('global_avg_pool', ctx.name, [x.v], out, pooled);
    return;
  }
  const mid = imp.freshValue(`${out}/pooled`);
  imp.emit('global_avg_pool', ctx.name, [x.v], mid, pooled);
  imp.emit('reshape', `${ctx.name}/squeeze`, [mid], out, [x.shape[0]!, x.shape[1]!], { shape: [0, 0] });
};

export const LAYER_EMITTERS: Record<string, Emitter> = {
  Conv: conv,
  Gemm: gemm,
  MatMul: matMul,
  BatchNormalization: batchNorm,
  MaxPool: maxPool,
  AveragePool: avgPool,
  GlobalAveragePool: globalAvgPool,
  ReduceMean: reduceMean,
};
