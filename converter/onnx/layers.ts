// Emitters for the parametric ONNX ops (Conv, Gemm, MatMul, BatchNormalization) and pools.

import onnxProto from 'onnx-proto';
import type { GraphNode } from '../../runtime/ir.js';
import { attrFloat, attrInt, attrInts, attrString, findAttr } from './attributes.js';
import { OnnxImportError } from './errors.js';
import type { Importer } from './importer.js';
import { transposeConst } from './fold.js';
import { type Dim, broadcastShapes, isNum, windowOut } from './shapes.js';
import { type Const, constFloats, constInts, numelOf } from './tensors.js';

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

/** Explicit pads [begin..., end...] over the spatial axes, resolving auto_pad against their sizes. */
function windowPads(
  n: INodeProto, spatial: Dim[], kernel: number[], strides: number[], dilations: number[], ctx: EmitContext,
): number[] {
  const sp = spatial.length;
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') {
    const pads = attrInts(n, 'pads') ?? new Array<number>(2 * sp).fill(0);
    if (pads.length !== 2 * sp) unsupported(ctx.where, `pads [${pads.join(', ')}] must have ${2 * sp} entries`);
    return pads;
  }
  if (autoPad === 'VALID') return new Array<number>(2 * sp).fill(0);
  if (autoPad !== 'SAME_UPPER' && autoPad !== 'SAME_LOWER') unsupported(ctx.where, `auto_pad ${autoPad}`);
  const begin: number[] = [];
  const end: number[] = [];
  for (let a = 0; a < sp; a++) {
    const d = spatial[a]!;
    if (!isNum(d)) unsupported(ctx.where, `auto_pad ${autoPad} needs a fixed spatial size`);
    const out = Math.ceil(d / strides[a]!);
    const total = Math.max(0, (out - 1) * strides[a]! + (kernel[a]! - 1) * dilations[a]! + 1 - d);
    const small = Math.floor(total / 2);
    begin.push(autoPad === 'SAME_UPPER' ? small : total - small);
    end.push(autoPad === 'SAME_UPPER' ? total - small : small);
  }
  return [...begin, ...end];
}

function spatialOut(
  x: Dim[], kernel: number[], strides: number[], dilations: number[], pads: number[], ceil: boolean, imp: Importer,
): Dim[] {
  return [0, 1].map((a) => windowOut(x[a + 2]!, kernel[a]!, strides[a]!, dilations[a]!, pads[a]!, pads[a + 2]!, ceil, imp.symbols));
}

/** Reshapes that lift a 1-D [N, C, L] value to [N, C, 1, L] for the 2-D kinds and back. */
const LIFTS = new WeakSet<GraphNode>();

/** Elementwise kinds that do not care about rank, so a lift may move across them. */
const RANKLESS = new Set(['relu', 'leaky_relu', 'clip', 'sigmoid', 'tanh', 'hard_sigmoid', 'hard_swish']);

export function lift1d(imp: Importer, name: string, x: { v: string; shape: Dim[] }): { v: string; shape: Dim[] } {
  // Undo a lift just made (1-D conv -> [act] -> 1-D pool): the 2-D layers then meet directly, so
  // the pair stays one chain the firmware can stream.
  const p = imp.producer.get(x.v);
  if (p && LIFTS.has(p) && imp.soleUse(x.v)) {
    const src = p.inputs[0]!;
    return { v: src, shape: imp.shapes.get(src)! };
  }
  const q = p && RANKLESS.has(p.op) && p.inputs.length === 1 && imp.soleUse(x.v) ? imp.producer.get(p.inputs[0]!) : undefined;
  if (p && q && LIFTS.has(q) && imp.soleUse(p.inputs[0]!)) {
    const src = q.inputs[0]!;
    const shape = imp.shapes.get(src)!;
    p.inputs[0] = src;
    imp.shapes.set(x.v, shape);
    return { v: x.v, shape };
  }
  const v = imp.freshValue(`${x.v}/as2d`);
  const shape: Dim[] = [x.shape[0]!, x.shape[1]!, 1, x.shape[2]!];
  imp.emit('reshape', `${name}/as2d`, [x.v], v, shape, { shape: [0, 0, 1, -1] });
  return { v, shape };
}

/** A fresh value for the 2-D kind's [N, C, 1, L] result; finish1d reshapes it to `out` [N, C, L]. */
export function lower1d(imp: Importer, out: string, shape4: Dim[]): string {
  const v = imp.freshValue(`${out}/2d`);
  imp.shapes.set(v, shape4);
  return v;
}

export function finish1d(imp: Importer, name: string, v: string, out: string, shape4: Dim[]): void {
  const node = imp.emit('reshape', `${name}/as1d`, [v], out, [shape4[0]!, shape4[1]!, shape4[3]!], { shape: [0, 0, -1] });
  LIFTS.add(node);
}

/** The node behind a lifted 1-D result (conv2d under its reshape back), for folding into it. */
export function underLift(imp: Importer, node: GraphNode | undefined): GraphNode | undefined {
  if (!node || !LIFTS.has(node)) return undefined;
  return imp.producer.get(node.inputs[0]!);
}

/**
 * A zero constant pad of spatial axes only, read by nothing else: returns its input and the pads
 * [begin..., end...] over the spatial axes, for the Conv or AveragePool that reads it to absorb.
 */
function absorbablePad(imp: Importer, x: { v: string; shape: Dim[] }): { x: { v: string; shape: Dim[] }; pads: number[] } | undefined {
  const node = imp.producer.get(x.v);
  if (!node || node.op !== 'pad' || !imp.soleUse(x.v)) return undefined;
  if ((node.attrs.mode ?? 'constant') !== 'constant' || (node.attrs.value ?? 0) !== 0) return undefined;
  const pads = node.attrs.pads as number[];
  const r = x.shape.length;
  if (pads.some((p) => p < 0) || pads[0] !== 0 || pads[1] !== 0 || pads[r] !== 0 || pads[r + 1] !== 0) return undefined;
  const src = node.inputs[0]!;
  const shape = imp.shapes.get(src);
  if (!shape) return undefined;
  return { x: { v: src, shape }, pads: [...pads.slice(2, r), ...pads.slice(r + 2)] };
}

function addPads(a: number[], b: number[]): number[] {
  return a.map((v, i) => v + b[i]!);
}

/** 1-D attributes as the 2-D ones of a [1, L] window. */
const as2d = (v: number[], one: number): number[] => [one, v[0]!];
const pads2d = (p: number[]): number[] => [0, p[0]!, 0, p[1]!];

const conv: Emitter = (imp, n, ctx) => {
  let x = activation(imp, n, 0, ctx);
  const w = constInput(imp, n, 1, ctx, 'weight') ?? badModel(ctx.where, 'missing weight');
  const sp = w.dims.length - 2;
  if ((sp !== 1 && sp !== 2) || x.shape.length !== sp + 2) {
    unsupported(ctx.where, `only 1-D and 2-D convolution is supported (weight rank ${w.dims.length}, input rank ${x.shape.length})`);
  }
  const o = w.dims[0]!;
  const ipg = w.dims[1]!;
  const kw = w.dims.slice(2);
  let kernel = attrInts(n, 'kernel_shape') ?? kw;
  if (kernel.length !== sp || kernel.some((k, i) => k !== kw[i])) unsupported(ctx.where, `kernel_shape [${kernel.join(', ')}] does not match the weight`);
  const group = attrInt(n, 'group', 1);
  const c = x.shape[1]!;
  if (group < 1 || o % group !== 0 || (isNum(c) && c !== ipg * group)) {
    badModel(ctx.where, `weight [${w.dims.join(', ')}] does not fit ${c} input channels in ${group} groups`);
  }
  let strides = attrInts(n, 'strides') ?? new Array<number>(sp).fill(1);
  let dilations = attrInts(n, 'dilations') ?? new Array<number>(sp).fill(1);
  if (strides.length !== sp || dilations.length !== sp) unsupported(ctx.where, `strides and dilations must have ${sp} entries`);
  let pads = windowPads(n, x.shape.slice(2), kernel, strides, dilations, ctx);
  const zeroPad = absorbablePad(imp, x);
  if (zeroPad) {
    x = zeroPad.x;
    pads = addPads(pads, zeroPad.pads);
  }
  const out = onlyFirstOutput(imp, n, ctx);
  let weight: string;
  if (sp === 1) {
    x = lift1d(imp, ctx.name, x);
    [kernel, strides, dilations, pads] = [as2d(kernel, 1), as2d(strides, 1), as2d(dilations, 1), pads2d(pads)];
    weight = imp.storeDerived(`${ctx.name}.weight`, [o, ipg, 1, kw[0]!], constFloats(w, ctx.where), w.src);
  } else {
    weight = imp.storeConst(n.input![1]!, w, ctx.where);
  }
  const weights: Record<string, string> = { weight };
  const b = constInput(imp, n, 2, ctx, 'bias');
  if (b) {
    if (numelOf(b.dims) !== o) badModel(ctx.where, `bias has ${numelOf(b.dims)} values for ${o} channels`);
    weights.bias = b.dims.length === 1 ? imp.storeConst(n.input![2]!, b, ctx.where)
      : imp.storeDerived(`${ctx.name}.bias`, [o], constFloats(b, ctx.where), b.src);
  }
  const shape: Dim[] = [x.shape[0]!, o, ...spatialOut(x.shape, kernel, strides, dilations, pads, false, imp)];
  const target = sp === 1 ? lower1d(imp, out, shape) : out;
  imp.emit('conv2d', ctx.name, [x.v], target, shape, { strides, pads, dilations, group }, weights);
  if (sp === 1) finish1d(imp, ctx.name, target, out, shape);
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
  // A model exported in training mode (training=TrainingMode.TRAINING, or left in train()):
  // opset 14+ marks it training_mode=1; before 14 the node lists its running-statistics outputs.
  // Either way it normalises by the batch's statistics, which inference cannot reproduce.
  const why = 'BatchNorm exported in training mode (it normalises by batch statistics); export with model.eval() and training=TrainingMode.EVAL';
  if (attrInt(n, 'training_mode', 0) !== 0) unsupported(ctx.where, `training_mode=1: ${why}`);
  if ((n.output ?? []).slice(1).some((o) => o)) unsupported(ctx.where, `${(n.output ?? []).filter((o) => o).length} outputs (running mean and variance): ${why}`);
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
  const lifted = imp.soleUse(x.v) ? underLift(imp, prev) : undefined;
  if (prev && lifted?.op === 'conv2d') {
    foldAffine(imp, lifted, scale, shift, src);
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
  let x = activation(imp, n, 0, ctx);
  const sp = x.shape.length - 2;
  if (sp !== 1 && sp !== 2) unsupported(ctx.where, `only 1-D and 2-D pooling is supported (input rank ${x.shape.length})`);
  let kernel = attrInts(n, 'kernel_shape') ?? badModel(ctx.where, 'kernel_shape is required');
  if (kernel.length !== sp) badModel(ctx.where, `kernel_shape [${kernel.join(', ')}] does not fit a rank-${x.shape.length} input`);
  let strides = attrInts(n, 'strides') ?? new Array<number>(sp).fill(1);
  let dilations = kind === 'max' ? attrInts(n, 'dilations') ?? new Array<number>(sp).fill(1) : new Array<number>(sp).fill(1);
  if (kind === 'avg' && findAttr(n, 'dilations') && (attrInts(n, 'dilations') ?? []).some((d) => d !== 1)) {
    unsupported(ctx.where, 'AveragePool dilations are not supported');
  }
  if (strides.length !== sp || dilations.length !== sp) badModel(ctx.where, `strides and dilations must have ${sp} entries`);
  let pads = windowPads(n, x.shape.slice(2), kernel, strides, dilations, ctx);
  const ceil = attrInt(n, 'ceil_mode', 0);
  let countIncludePad = attrInt(n, 'count_include_pad', 0);
  // Zero padding then an average over the padded input is an average that counts the pads (the
  // way PyTorch exports avg_pool2d with count_include_pad=True). Max pooling cannot absorb zeros.
  const zeroPad = kind === 'avg' && ceil === 0 ? absorbablePad(imp, x) : undefined;
  if (zeroPad && (countIncludePad !== 0 || pads.every((p) => p === 0))) {
    x = zeroPad.x;
    pads = addPads(pads, zeroPad.pads);
    countIncludePad = 1;
  }
  const out = onlyFirstOutput(imp, n, ctx);
  if (sp === 1) {
    x = lift1d(imp, ctx.name, x);
    [kernel, strides, dilations, pads] = [as2d(kernel, 1), as2d(strides, 1), as2d(dilations, 1), pads2d(pads)];
  }
  const shape: Dim[] = [x.shape[0]!, x.shape[1]!, ...spatialOut(x.shape, kernel, strides, dilations, pads, ceil !== 0, imp)];
  const target = sp === 1 ? lower1d(imp, out, shape) : out;
  if (kind === 'max') {
    imp.emit('max_pool', ctx.name, [x.v], target, shape, { kernel, strides, pads, dilations, ceil_mode: ceil });
  } else {
    imp.emit('avg_pool', ctx.name, [x.v], target, shape, { kernel, strides, pads, ceil_mode: ceil, count_include_pad: countIncludePad });
  }
  if (sp === 1) finish1d(imp, ctx.name, target, out, shape);
}

/** Average over every spatial axis of [N, C, ...] (1-D inputs go through the 2-D kind). */
function emitGlobalAvg(imp: Importer, name: string, x: { v: string; shape: Dim[] }, out: string, keepDims: boolean): void {
  const sp = x.shape.length - 2;
  const [N, C] = [x.shape[0]!, x.shape[1]!];
  const keep: Dim[] = [N, C, ...new Array<number>(sp).fill(1)];
  if (sp === 2 && keepDims) {
    imp.emit('global_avg_pool', name, [x.v], out, keep);
    return;
  }
  const x4 = sp === 1 ? lift1d(imp, name, x) : x;
  const mid = imp.freshValue(`${out}/pooled`);
  imp.emit('global_avg_pool', name, [x4.v], mid, [N, C, 1, 1]);
  imp.emit('reshape', `${name}/squeeze`, [mid], out, keepDims ? keep : [N, C], { shape: keepDims ? [0, 0, 1] : [0, 0] });
}

const globalAvgPool: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  if (x.shape.length !== 3 && x.shape.length !== 4) unsupported(ctx.where, `GlobalAveragePool needs a [N, C, L] or [N, C, H, W] input, got rank ${x.shape.length}`);
  emitGlobalAvg(imp, ctx.name, x, onlyFirstOutput(imp, n, ctx), true);
};

/** ReduceMean over all spatial axes of [N, C, L] or NCHW (PyTorch's x.mean([2, 3])) is a global average pool. */
const reduceMean: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const r = x.shape.length;
  let raw = attrInts(n, 'axes');
  if (!raw && n.input?.[1]) raw = constInts(imp.consts.get(n.input[1]) ?? unsupported(ctx.where, 'axes must be a constant'), ctx.where);
  const axes = (raw ?? []).map((a) => (a < 0 ? a + r : a)).sort();
  const spatial = Array.from({ length: r - 2 }, (_, i) => i + 2);
  if ((r !== 3 && r !== 4) || axes.join(',') !== spatial.join(',')) {
    unsupported(ctx.where, `ReduceMean is supported only over the spatial axes of a [N, C, L] or [N, C, H, W] input (axes [${raw ?? 'all'}], rank ${r})`);
  }
  emitGlobalAvg(imp, ctx.name, x, onlyFirstOutput(imp, n, ctx), attrInt(n, 'keepdims', 1) !== 0);
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
