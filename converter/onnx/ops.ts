// Emitters for elementwise, activation and shape ops, and the table of all emitters.

import { attrFloat, attrInt, attrInts, attrString, findAttr } from './attributes.js';
import { COMPOSITE_EMITTERS } from './compositeOps.js';
import { DATA_EMITTERS } from './dataOps.js';
import { NORM_EMITTERS } from './normOps.js';
import { squeezeDims, unsqueezeDims } from './fold.js';
import {
  type EmitContext, type Emitter, LAYER_EMITTERS, activation, badModel, onlyFirstOutput, tryFuseBias, unsupported,
} from './layers.js';
import { type Dim, broadcastShapes, dimProduct, isNum, normAxis, reshapeOut, reshapeTarget } from './shapes.js';
import { type Const, constFloats, constInts } from './tensors.js';
import type { Importer } from './importer.js';
import type onnxProto from 'onnx-proto';

type INodeProto = onnxProto.onnx.INodeProto;

const FLT_MAX = 3.4028234663852886e38;

function unary(op: 'relu' | 'sigmoid' | 'tanh'): Emitter {
  return (imp, n, ctx) => {
    const x = activation(imp, n, 0, ctx);
    imp.emit(op, ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), x.shape);
  };
}

const leakyRelu: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  imp.emit('leaky_relu', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), x.shape, { alpha: attrFloat(n, 'alpha', 0.01) });
};

const clip: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const bound = (i: number, attr: string, fallback: number): number => {
    const name = n.input?.[i];
    if (name) {
      const c = imp.consts.get(name) ?? unsupported(ctx.where, `${attr} must be a constant`);
      const v = constFloats(c, ctx.where)[0];
      if (v === undefined) badModel(ctx.where, `${attr} is empty`);
      return v;
    }
    return findAttr(n, attr) ? attrFloat(n, attr, fallback) : fallback;
  };
  const min = Math.max(bound(1, 'min', -FLT_MAX), -FLT_MAX);
  const max = Math.min(bound(2, 'max', FLT_MAX), FLT_MAX);
  imp.emit('clip', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), x.shape, { min, max });
};

/** An input of a binary op: either an activation or a constant. */
type Operand = { v: string; shape: Dim[]; c?: undefined; onnx: string } | { c: Const; onnx: string; shape: Dim[]; v?: undefined };

function operand(imp: Importer, n: INodeProto, i: number, ctx: EmitContext): Operand {
  const name = n.input?.[i] ?? badModel(ctx.where, `input ${i} is missing`);
  const c = imp.consts.get(name);
  if (c) return { c, onnx: name, shape: c.dims };
  return { v: imp.value(name), onnx: name, shape: imp.shapeOf(name, ctx.where) };
}

function outShape(a: Operand, b: Operand, ctx: EmitContext): Dim[] {
  return broadcastShapes(a.shape, b.shape) ?? badModel(ctx.where, `shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] do not broadcast`);
}

/** Value name for an operand: the activation, or the constant stored as a tensor. */
function operandName(imp: Importer, o: Operand, ctx: EmitContext): string {
  return o.v ?? imp.storeConst(o.onnx, o.c!, ctx.where);
}

function mapConst(imp: Importer, o: Operand & { c: Const }, f: (v: number) => number, base: string, ctx: EmitContext): string {
  const dims = o.c.dims.length === 0 ? [1] : o.c.dims;
  return imp.storeDerived(base, dims, constFloats(o.c, ctx.where).map(f), o.c.src);
}

const add: Emitter = (imp, n, ctx) => {
  const [a, b] = [operand(imp, n, 0, ctx), operand(imp, n, 1, ctx)];
  const out = onlyFirstOutput(imp, n, ctx);
  const shape = outShape(a, b, ctx);
  if (a.v && b.c && tryFuseBias(imp, a.onnx, b.c, out, ctx)) return;
  if (b.v && a.c && tryFuseBias(imp, b.onnx, a.c, out, ctx)) return;
  imp.emit('add', ctx.name, [operandName(imp, a, ctx), operandName(imp, b, ctx)], out, shape);
};

const mul: Emitter = (imp, n, ctx) => {
  const [a, b] = [operand(imp, n, 0, ctx), operand(imp, n, 1, ctx)];
  imp.emit('mul', ctx.name, [operandName(imp, a, ctx), operandName(imp, b, ctx)], onlyFirstOutput(imp, n, ctx), outShape(a, b, ctx));
};

/** a - b as add(a, -b); -b is a negated constant or a mul by -1. */
const sub: Emitter = (imp, n, ctx) => {
  const [a, b] = [operand(imp, n, 0, ctx), operand(imp, n, 1, ctx)];
  const out = onlyFirstOutput(imp, n, ctx);
  const shape = outShape(a, b, ctx);
  let negB: string;
  if (b.c) {
    negB = mapConst(imp, b as Operand & { c: Const }, (v) => -v, `${ctx.name}.neg`, ctx);
    if (a.v && tryFuseBias(imp, a.onnx, { ...b.c, data: constFloats(b.c, ctx.where).map((v) => -v), kind: 'float' }, out, ctx)) return;
  } else {
    const m1 = imp.storeDerived(`${ctx.name}.minus_one`, [1], new Float32Array([-1]), new Set());
    negB = imp.freshValue(`${out}/neg`);
    imp.emit('mul', `${ctx.name}/neg`, [b.v!, m1], negB, b.shape);
  }
  imp.emit('add', ctx.name, [operandName(imp, a, ctx), negB], out, shape);
};

/** a / c as mul(a, 1/c); a / b of an activation b as mul(a, reciprocal(b)). */
const div: Emitter = (imp, n, ctx) => {
  const [a, b] = [operand(imp, n, 0, ctx), operand(imp, n, 1, ctx)];
  const out = onlyFirstOutput(imp, n, ctx);
  if (b.c) {
    if (!a.v) unsupported(ctx.where, 'Div of two constants that were not folded');
    const inv = mapConst(imp, b as Operand & { c: Const }, (v) => 1 / v, `${ctx.name}.reciprocal`, ctx);
    imp.emit('mul', ctx.name, [a.v, inv], out, outShape(a, b, ctx));
    return;
  }
  const inv = imp.freshValue(`${out}/reciprocal`);
  imp.emit('reciprocal', `${ctx.name}/reciprocal`, [b.v!], inv, b.shape);
  imp.emit('mul', ctx.name, [operandName(imp, a, ctx), inv], out, outShape(a, b, ctx));
};

const neg: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const m1 = imp.storeDerived(`${ctx.name}.minus_one`, [1], new Float32Array([-1]), new Set());
  imp.emit('mul', ctx.name, [x.v, m1], onlyFirstOutput(imp, n, ctx), x.shape);
};

/** Emits a reshape from `x` to `shape` (symbolic dims allowed where a 0 or one -1 expresses them). */
function emitReshape(imp: Importer, name: string, x: { v: string; shape: Dim[] }, shape: Dim[], out: string, ctx: EmitContext): void {
  // A target [B, ...] folded from x.size(0) at a fixed-batch export copies the now free batch.
  if (imp.freeBatch !== undefined && !isNum(x.shape[0]!) && shape[0] === imp.freeBatch) shape = [0, ...shape.slice(1)];
  const target = reshapeTarget(x.shape, shape) ??
    unsupported(ctx.where, `cannot express reshape [${x.shape.join(', ')}] -> [${shape.join(', ')}] with one free dim`);
  const outDims = reshapeOut(x.shape, target, imp.symbols) ?? badModel(ctx.where, `bad reshape target [${target.join(', ')}]`);
  imp.emit('reshape', name, [x.v], out, outDims, { shape: target });
}

const softmax: Emitter = (imp, n, ctx) => softmaxLike(imp, n, ctx, 'softmax');
const logSoftmax: Emitter = (imp, n, ctx) => softmaxLike(imp, n, ctx, 'log_softmax');

function softmaxLike(imp: Importer, n: INodeProto, ctx: EmitContext, op: 'softmax' | 'log_softmax'): void {
  const x = activation(imp, n, 0, ctx);
  const out = onlyFirstOutput(imp, n, ctx);
  const rank = x.shape.length;
  const axis = normAxis(attrInt(n, 'axis', imp.opset < 13 ? 1 : -1), rank);
  if (axis < 0 || axis >= rank) badModel(ctx.where, `axis out of range for rank ${rank}`);
  const tail = x.shape.slice(axis + 1);
  if (imp.opset >= 13 || axis === rank - 1 || tail.every((d) => d === 1)) {
    imp.emit(op, ctx.name, [x.v], out, x.shape, { axis });
    return;
  }
  // Opset < 13: softmax over everything from `axis` on, as a reshape to 2-D groups and back.
  if (!x.shape.slice(axis).every(isNum)) unsupported(ctx.where, `opset ${imp.opset} softmax over axis ${axis} needs fixed trailing dims`);
  const flat = imp.freshValue(`${out}/flat`);
  const soft = imp.freshValue(`${out}/softmax`);
  const flatShape: Dim[] = [...x.shape.slice(0, axis), dimProduct(x.shape.slice(axis), imp.symbols)];
  imp.emit('reshape', `${ctx.name}/flatten`, [x.v], flat, flatShape, { shape: [...x.shape.slice(0, axis).map(() => 0), -1] });
  imp.emit(op, ctx.name, [flat], soft, flatShape, { axis });
  const back = [...x.shape.slice(0, axis).map(() => 0), ...(x.shape.slice(axis) as number[])];
  imp.emit('reshape', `${ctx.name}/unflatten`, [soft], out, x.shape, { shape: back });
}

const flatten: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const axis = normAxis(attrInt(n, 'axis', 1), x.shape.length);
  if (axis < 0 || axis > x.shape.length) badModel(ctx.where, `axis out of range for rank ${x.shape.length}`);
  const shape = [dimProduct(x.shape.slice(0, axis), imp.symbols), dimProduct(x.shape.slice(axis), imp.symbols)];
  imp.emit('flatten', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), shape, { axis });
};

const reshape: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const tName = n.input?.[1] ?? badModel(ctx.where, 'missing shape input');
  const t = imp.consts.get(tName) ?? unsupported(ctx.where, `target shape "${tName}" is not a constant or computable from shapes`);
  if (t.kind !== 'int') badModel(ctx.where, 'target shape must be an integer tensor');
  if (attrInt(n, 'allowzero', 0) !== 0 && t.data.includes(0)) unsupported(ctx.where, 'allowzero=1 with a 0 in the shape');
  emitReshape(imp, ctx.name, x, t.data, onlyFirstOutput(imp, n, ctx), ctx);
};

/**
 * DepthToSpace (nn.PixelShuffle, exported in mode CRD; DCR is ONNX's default): [N, C r r, H, W]
 * -> [N, C, H r, W r] as a reshape to six axes, a transpose and a reshape back.
 */
const depthToSpace: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const r = attrInt(n, 'blocksize', 0);
  const mode = attrString(n, 'mode', 'DCR').toUpperCase();
  if (x.shape.length !== 4) unsupported(ctx.where, `input of rank ${x.shape.length}; DepthToSpace takes [N, C, H, W]`);
  const [, cr, h, w] = x.shape;
  if (!isNum(cr!) || !isNum(h!) || !isNum(w!)) unsupported(ctx.where, 'free channel or spatial sizes');
  if (r < 1 || cr % (r * r) !== 0) badModel(ctx.where, `blocksize ${r} does not divide ${cr} channels into r * r blocks`);
  if (mode !== 'DCR' && mode !== 'CRD') unsupported(ctx.where, `mode ${mode}`);
  const c = cr / (r * r);
  const six: Dim[] = mode === 'CRD' ? [x.shape[0]!, c, r, r, h, w] : [x.shape[0]!, r, r, c, h, w];
  const perm = mode === 'CRD' ? [0, 1, 4, 2, 5, 3] : [0, 3, 4, 1, 5, 2];
  const a = imp.freshValue(`${ctx.name}/blocks`);
  emitReshape(imp, `${ctx.name}/blocks`, x, six, a, ctx);
  const b = imp.freshValue(`${ctx.name}/moved`);
  imp.emit('transpose', `${ctx.name}/move`, [a], b, perm.map((p) => six[p]!), { perm });
  emitReshape(imp, ctx.name, { v: b, shape: perm.map((p) => six[p]!) }, [x.shape[0]!, c, h * r, w * r], onlyFirstOutput(imp, n, ctx), ctx);
};

const transpose: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const rank = x.shape.length;
  const perm = attrInts(n, 'perm') ?? x.shape.map((_, i) => rank - 1 - i);
  if (perm.length !== rank || new Set(perm).size !== rank || perm.some((p) => p < 0 || p >= rank)) {
    badModel(ctx.where, `perm [${perm.join(', ')}] is not a permutation of rank ${rank}`);
  }
  imp.emit('transpose', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), perm.map((p) => x.shape[p]!), { perm });
};

function axesOf(imp: Importer, n: INodeProto, ctx: EmitContext): number[] | undefined {
  if (imp.opset < 13) return attrInts(n, 'axes');
  const name = n.input?.[1];
  if (!name) return undefined;
  const c = imp.consts.get(name) ?? unsupported(ctx.where, 'axes must be a constant');
  return constInts(c, ctx.where);
}

const squeeze: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const axes = axesOf(imp, n, ctx);
  if (!axes && !x.shape.every(isNum)) unsupported(ctx.where, 'Squeeze without axes on a free dim');
  const shape = squeezeDims(x.shape, axes, (d) => d === 1, ctx.where);
  emitReshape(imp, ctx.name, x, shape, onlyFirstOutput(imp, n, ctx), ctx);
};

const unsqueeze: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const axes = axesOf(imp, n, ctx) ?? badModel(ctx.where, 'Unsqueeze needs axes');
  const shape = unsqueezeDims<Dim>(x.shape, axes, 1, ctx.where);
  emitReshape(imp, ctx.name, x, shape, onlyFirstOutput(imp, n, ctx), ctx);
};

/**
 * Gather on an activation with constant indices (x[:, :, -1], x[:, 0]): a scalar index is a
 * one-wide slice and a reshape that drops the axis; a list of indices, one slice per run of
 * consecutive indices, concatenated.
 */
const gather: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const out = onlyFirstOutput(imp, n, ctx);
  const r = x.shape.length;
  const axis = normAxis(attrInt(n, 'axis', 0), r);
  if (axis < 0 || axis >= r) badModel(ctx.where, `axis out of range for rank ${r}`);
  const dim = x.shape[axis]!;
  if (!isNum(dim)) unsupported(ctx.where, `gathering on axis ${axis}, whose size is free`);
  const ic = imp.consts.get(n.input?.[1] ?? '') ?? unsupported(ctx.where, 'indices must be a constant (a gather by computed indices is not supported)');
  if (ic.dims.length > 1) unsupported(ctx.where, `indices of rank ${ic.dims.length} (only a scalar or a list)`);
  const idx = constInts(ic, ctx.where).map((i) => (i < 0 ? i + dim : i));
  if (idx.length === 0 || idx.some((i) => i < 0 || i >= dim)) badModel(ctx.where, `index out of range for axis ${axis} of size ${dim}`);
  const runs: Array<[number, number]> = [];
  for (const i of idx) {
    const last = runs.at(-1);
    if (last && last[1] === i) last[1] = i + 1;
    else runs.push([i, i + 1]);
  }
  const piece = (k: number, o: string): string => {
    const [a, b] = runs[k]!;
    const shape = [...x.shape];
    shape[axis] = b - a;
    imp.emit('slice', `${ctx.name}/${k}`, [x.v], o, shape, { axes: [axis], starts: [a], ends: [b], steps: [1] });
    return o;
  };
  const kept = [...x.shape];
  kept[axis] = idx.length;
  const scalar = ic.dims.length === 0;
  const joined = scalar ? imp.freshValue(`${out}/slice`) : out;
  if (runs.length === 1) piece(0, joined);
  else imp.emit('concat', `${ctx.name}/concat`, runs.map((_, k) => piece(k, imp.freshValue(`${out}/${k}`))), joined, kept, { axis });
  if (scalar) emitReshape(imp, `${ctx.name}/squeeze`, { v: joined, shape: kept }, [...x.shape.slice(0, axis), ...x.shape.slice(axis + 1)], out, ctx);
};

/**
 * Expand to a shape with the free batch in front (the class token's x.expand(x.size(0), -1, -1)):
 * the input (a constant or an activation) plus zeros [B, ...] made from a graph input with that
 * batch (a one-element slice per sample, times 0). Other free dims are refused.
 */
const expand: Emitter = (imp, n, ctx) => {
  const xName = n.input?.[0] ?? badModel(ctx.where, 'input 0 is missing');
  const xc = imp.consts.get(xName);
  const xShape: Dim[] = xc ? xc.dims : imp.shapeOf(xName, ctx.where);
  const target = (imp.consts.get(n.input?.[1] ?? '') ?? unsupported(ctx.where, 'shape must be a constant')).data;
  const out = onlyFirstOutput(imp, n, ctx);
  const rank = Math.max(xShape.length, target.length);
  const dims: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const a = i < rank - xShape.length ? 1 : xShape[i - (rank - xShape.length)]!;
    const b = i < rank - target.length ? 1 : target[i - (rank - target.length)]!;
    if (a === 1) dims.push(b);
    else if (b === 1 || a === b) dims.push(a);
    else badModel(ctx.where, `cannot expand [${xShape.join(', ')}] to [${target.join(', ')}]`);
  }
  if (!xc && dims.every((d, i) => d === xShape[i - (rank - xShape.length)])) { imp.setAlias(out, imp.value(xName)); return; }
  if (dims.slice(1).some((d) => !isNum(d))) unsupported(ctx.where, `expanding to [${dims.join(', ')}]: only the leading (batch) dim may be free`);
  const xv = xc ? imp.storeConst(xName, xc, ctx.where) : imp.value(xName);
  let zeros: string;
  const rest = dims.slice(1) as number[];
  if (isNum(dims[0]!)) {
    zeros = imp.storeDerived(`${out}/zeros`, dims as number[], new Float32Array((dims as number[]).reduce((a, b) => a * b, 1)), new Set());
  } else {
    const src = imp.graphInputs.find((g) => imp.shapes.get(g)?.[0] === dims[0]) ??
      unsupported(ctx.where, `expanding to a free dim ${dims[0]} that no graph input has in front`);
    const sShape = imp.shapes.get(src)!;
    let b = src;
    if (sShape.length > 1) {
      b = imp.freshValue(`${out}/batch`);
      const axes = sShape.slice(1).map((_, i) => i + 1);
      imp.emit('slice', `${ctx.name}/batch`, [src], b, [sShape[0]!, ...axes.map(() => 1)], { axes, starts: axes.map(() => 0), ends: axes.map(() => 1), steps: axes.map(() => 1) });
    }
    const col = imp.freshValue(`${out}/col`);
    emitReshape(imp, `${ctx.name}/col`, { v: b, shape: [sShape[0]!, ...sShape.slice(1).map(() => 1)] }, [dims[0]!, ...rest.map(() => 1)], col, ctx);
    zeros = imp.freshValue(`${out}/zeros`);
    const z = imp.storeDerived(`${out}/zero`, [1, ...rest], new Float32Array(rest.reduce((a, c) => a * c, 1)), new Set());
    imp.emit('mul', `${ctx.name}/zeros`, [col, z], zeros, dims);
  }
  imp.emit('add', ctx.name, [zeros, xv], out, dims);
};

/** Identity and inference-time Dropout vanish: their output names the input's value. */
const passThrough: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const out = onlyFirstOutput(imp, n, ctx);
  if (n.opType === 'Dropout' && n.input?.[2]) {
    const tm = imp.consts.get(n.input[2]);
    if (!tm || constFloats(tm, ctx.where)[0] !== 0) unsupported(ctx.where, 'training_mode must be a constant false');
  }
  imp.setAlias(out, x.v);
};

export const EMITTERS: Record<string, Emitter> = {
  ...LAYER_EMITTERS,
  Relu: unary('relu'),
  Sigmoid: unary('sigmoid'),
  Tanh: unary('tanh'),
  LeakyRelu: leakyRelu,
  Clip: clip,
  Add: add,
  Sub: sub,
  Mul: mul,
  Div: div,
  Neg: neg,
  Softmax: softmax,
  LogSoftmax: logSoftmax,
  ...DATA_EMITTERS,
  ...NORM_EMITTERS,
  ...COMPOSITE_EMITTERS,
  Flatten: flatten,
  Reshape: reshape,
  Transpose: transpose,
  DepthToSpace: depthToSpace,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Identity: passThrough,
  Dropout: passThrough,
  Gather: gather,
  Expand: expand,
};
