// Emitters for ops that move data (Pad, Concat, Split, Slice, Resize/Upsample) and the newer
// layers PyTorch exports (ConvTranspose, PRelu, HardSigmoid, HardSwish).
import type onnxProto from 'onnx-proto';
import { attrFloat, attrInt, attrInts, attrString } from './attributes.js';
import type { Importer } from './importer.js';
import { type EmitContext, type Emitter, activation, badModel, constInput, finish1d, lift1d, lower1d, onlyFirstOutput, unsupported } from './layers.js';
import { type Dim, isNum, normAxis } from './shapes.js';
import { type Const, constFloats, constInts, numelOf } from './tensors.js';

type INodeProto = onnxProto.onnx.INodeProto;

/** Int64 bounds (INT64_MAX for "to the end") kept inside what a msgpack int32 holds. */
const clampBound = (v: number): number => Math.min(Math.max(v, -(2 ** 31)), 2 ** 31 - 1);

function constOf(imp: Importer, n: INodeProto, i: number, ctx: EmitContext, role: string): Const | undefined {
  const name = n.input?.[i];
  if (!name) return undefined;
  return imp.consts.get(name) ?? unsupported(ctx.where, `${role} ("${name}") must be a constant`);
}

const pad: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const r = x.shape.length;
  let pads: number[];
  let value = 0;
  if (imp.opset < 11) {
    pads = attrInts(n, 'pads') ?? badModel(ctx.where, 'pads is required');
    value = attrFloat(n, 'value', 0);
  } else {
    pads = constInts(constOf(imp, n, 1, ctx, 'pads') ?? badModel(ctx.where, 'pads is required'), ctx.where);
    const cv = constOf(imp, n, 2, ctx, 'constant_value');
    if (cv) value = constFloats(cv, ctx.where)[0] ?? 0;
    const axesC = constOf(imp, n, 3, ctx, 'axes');
    if (axesC) {
      const axes = constInts(axesC, ctx.where).map((a) => normAxis(a, r));
      const full = new Array<number>(2 * r).fill(0);
      axes.forEach((a, k) => {
        full[a] = pads[k]!;
        full[a + r] = pads[k + axes.length]!;
      });
      pads = full;
    }
  }
  if (pads.length !== 2 * r) badModel(ctx.where, `pads [${pads.join(', ')}] do not fit rank ${r}`);
  const mode = attrString(n, 'mode', 'constant');
  if (mode !== 'constant' && mode !== 'reflect' && mode !== 'edge') unsupported(ctx.where, `Pad mode ${mode}`);
  const shape = x.shape.map((d, a) => {
    const add = pads[a]! + pads[a + r]!;
    if (add === 0) return d;
    return isNum(d) ? d + add : unsupported(ctx.where, `padding axis ${a}, whose size is free`);
  });
  imp.emit('pad', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), shape, { pads, mode, value });
};

/** An operand of Concat: an activation, or a constant stored as a tensor. */
function operandOf(imp: Importer, name: string, ctx: EmitContext): { v: string; shape: Dim[] } {
  const c = imp.consts.get(name);
  if (c) return { v: imp.storeConst(name, c, ctx.where), shape: c.dims };
  return { v: imp.value(name), shape: imp.shapeOf(name, ctx.where) };
}

const concat: Emitter = (imp, n, ctx) => {
  const parts = (n.input ?? []).filter((v) => v).map((v) => operandOf(imp, v, ctx));
  const first = parts[0] ?? badModel(ctx.where, 'no inputs');
  const r = first.shape.length;
  const axis = normAxis(attrInt(n, 'axis', 0), r);
  if (axis < 0 || axis >= r) badModel(ctx.where, `axis out of range for rank ${r}`);
  let total = 0;
  for (const p of parts) {
    const d = p.shape[axis]!;
    if (p.shape.length !== r) badModel(ctx.where, 'inputs differ in rank');
    if (!isNum(d)) unsupported(ctx.where, `concatenating along axis ${axis}, whose size is free`);
    total += d;
  }
  const shape = [...first.shape];
  shape[axis] = total;
  imp.emit('concat', ctx.name, parts.map((p) => p.v), onlyFirstOutput(imp, n, ctx), shape, { axis });
};

/** Emits `x` sliced on one axis to [start, end). */
function sliceAxis(imp: Importer, name: string, x: { v: string; shape: Dim[] }, axis: number, start: number, end: number, out: string): void {
  const shape = [...x.shape];
  shape[axis] = end - start;
  imp.emit('slice', name, [x.v], out, shape, { axes: [axis], starts: [start], ends: [end], steps: [1] });
}

const split: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const r = x.shape.length;
  const axis = normAxis(attrInt(n, 'axis', 0), r);
  const dim = x.shape[axis];
  if (dim === undefined) badModel(ctx.where, `axis out of range for rank ${r}`);
  if (!isNum(dim)) unsupported(ctx.where, `splitting axis ${axis}, whose size is free`);
  const outs = n.output ?? [];
  let sizes: number[] | undefined = imp.opset < 13 ? attrInts(n, 'split') : undefined;
  const sc = imp.opset >= 13 ? constOf(imp, n, 1, ctx, 'split') : undefined;
  if (sc) sizes = constInts(sc, ctx.where);
  if (!sizes) {
    const parts = imp.opset >= 18 ? attrInt(n, 'num_outputs', outs.length) : outs.length;
    const each = Math.ceil(dim / parts);
    sizes = Array.from({ length: parts }, (_, i) => Math.max(0, Math.min(each, dim - i * each)));
  }
  if (sizes.length !== outs.length || sizes.reduce((a, b) => a + b, 0) !== dim) {
    badModel(ctx.where, `split [${sizes.join(', ')}] does not cover axis ${axis} of size ${dim} in ${outs.length} outputs`);
  }
  let at = 0;
  sizes.forEach((s, i) => {
    const o = outs[i];
    if (o && imp.isUsed(o)) sliceAxis(imp, `${ctx.name}/${i}`, x, axis, at, at + s, o);
    at += s;
  });
};

const slice: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const r = x.shape.length;
  const ints = (i: number, attr: string): number[] | undefined => {
    if (imp.opset < 10) return attrInts(n, attr);
    const c = constOf(imp, n, i, ctx, attr);
    return c ? constInts(c, ctx.where) : undefined;
  };
  const starts = (ints(1, 'starts') ?? badModel(ctx.where, 'starts is required')).map(clampBound);
  const ends = (ints(2, 'ends') ?? badModel(ctx.where, 'ends is required')).map(clampBound);
  const axes = (ints(3, 'axes') ?? starts.map((_, i) => i)).map((a) => normAxis(a, r));
  const steps = (imp.opset < 10 ? undefined : ints(4, 'steps')) ?? starts.map(() => 1);
  if (axes.some((a) => a < 0 || a >= r) || ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
    badModel(ctx.where, 'starts, ends, axes and steps do not match');
  }
  if (steps.some((s) => s === 0)) badModel(ctx.where, 'a step is 0');
  const shape = [...x.shape];
  axes.forEach((a, k) => {
    const d = x.shape[a]!;
    if (!isNum(d)) {
      if (starts[k] === 0 && ends[k]! >= 2 ** 31 - 1 && steps[k] === 1) return;
      unsupported(ctx.where, `slicing axis ${a}, whose size is free`);
    }
    let s = starts[k]! < 0 ? starts[k]! + d : starts[k]!;
    let e = ends[k]! < 0 ? ends[k]! + d : ends[k]!;
    const st = steps[k]!;
    if (st > 0) {
      s = Math.min(Math.max(s, 0), d);
      e = Math.min(Math.max(e, 0), d);
    } else {
      s = Math.min(Math.max(s, 0), d - 1);
      e = Math.min(Math.max(e, -1), d - 1);
    }
    shape[a] = Math.max(0, Math.ceil((e - s) / st));
  });
  imp.emit('slice', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), shape, { axes, starts, ends, steps });
};

/** Resize (opset 10+) and Upsample: per-axis scales from the scales or sizes input. */
const resize: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const r = x.shape.length;
  const upsample = n.opType === 'Upsample';
  let mode = attrString(n, 'mode', 'nearest');
  if (mode === 'bilinear') mode = 'linear';
  if (mode !== 'nearest' && mode !== 'linear') unsupported(ctx.where, `mode ${mode} (only nearest and linear are supported)`);
  const legacy = upsample || imp.opset < 11;
  const coord = legacy ? 'asymmetric' : attrString(n, 'coordinate_transformation_mode', 'half_pixel');
  if (coord === 'tf_crop_and_resize') unsupported(ctx.where, 'coordinate_transformation_mode tf_crop_and_resize');
  if (!legacy && mode === 'linear' && attrInt(n, 'exclude_outside', 0) !== 0) unsupported(ctx.where, 'exclude_outside=1');
  if (!legacy && attrInt(n, 'antialias', 0) !== 0) unsupported(ctx.where, 'antialias=1');
  if (!legacy && n.attribute?.some((a) => a.name === 'axes')) unsupported(ctx.where, 'the axes attribute');
  const scalesIdx = upsample || imp.opset < 11 ? 1 : 2;
  let scales: number[] | undefined;
  if (upsample && imp.opset < 9) scales = (n.attribute?.find((a) => a.name === 'scales')?.floats ?? []).map(Number);
  const sc = upsample && imp.opset < 9 ? undefined : constOf(imp, n, scalesIdx, ctx, 'scales');
  if (sc && numelOf(sc.dims) > 0) scales = Array.from(constFloats(sc, ctx.where));
  const shape: Dim[] = [];
  if (scales && scales.length > 0) {
    if (scales.length !== r) badModel(ctx.where, `scales [${scales.join(', ')}] do not fit rank ${r}`);
    x.shape.forEach((d, a) => {
      if (scales![a] === 1) shape.push(d);
      else if (isNum(d)) shape.push(Math.floor(d * Math.fround(scales![a]!)));
      else unsupported(ctx.where, `resizing axis ${a}, whose size is free`);
    });
  } else {
    const sz = constOf(imp, n, 3, ctx, 'sizes') ?? badModel(ctx.where, 'needs scales or sizes');
    if (sz.kind !== 'int' || sz.data.length !== r) badModel(ctx.where, `sizes do not fit rank ${r}`);
    scales = x.shape.map((d, a) => {
      const s = sz.data[a]!;
      if (s === d) return 1;
      if (!isNum(d) || !isNum(s)) return unsupported(ctx.where, `resizing axis ${a}, whose size is free`);
      return s / d;
    });
    shape.push(...(sz.data as Dim[]).map((s, a) => (scales![a] === 1 ? x.shape[a]! : s)));
  }
  if (scales.slice(0, Math.max(0, r - 2)).some((s) => s !== 1)) unsupported(ctx.where, `only the last two axes may be resized (scales [${scales.join(', ')}])`);
  const nearest = legacy ? (scales.every((s) => s >= 1) ? 'floor' : 'ceil') : attrString(n, 'nearest_mode', 'round_prefer_floor');
  imp.emit('resize', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), shape, { scales: scales.map((s) => Math.fround(s)), mode, coord, nearest });
};

/** ConvTranspose, 2-D, and 1-D (nn.ConvTranspose1d) as the 2-D kind over a [N, C, 1, L] lift. */
const convTranspose: Emitter = (imp, n, ctx) => {
  let x = activation(imp, n, 0, ctx);
  const w = constInput(imp, n, 1, ctx, 'weight') ?? badModel(ctx.where, 'missing weight');
  const sp = w.dims.length - 2;
  if ((sp !== 1 && sp !== 2) || x.shape.length !== sp + 2) {
    unsupported(ctx.where, `only 1-D and 2-D ConvTranspose is supported (weight rank ${w.dims.length}, input rank ${x.shape.length})`);
  }
  const [ci, og] = w.dims as [number, number];
  const [kh, kw] = sp === 2 ? [w.dims[2]!, w.dims[3]!] : [1, w.dims[2]!];
  const group = attrInt(n, 'group', 1);
  if (isNum(x.shape[1]!) && x.shape[1] !== ci) badModel(ctx.where, `weight [${w.dims.join(', ')}] does not take ${x.shape[1]} channels`);
  if (n.attribute?.some((a) => a.name === 'output_shape')) unsupported(ctx.where, 'output_shape (give pads instead)');
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') unsupported(ctx.where, `auto_pad ${autoPad}`);
  let strides = attrInts(n, 'strides') ?? new Array<number>(sp).fill(1);
  let dilations = attrInts(n, 'dilations') ?? new Array<number>(sp).fill(1);
  let outputPadding = attrInts(n, 'output_padding') ?? new Array<number>(sp).fill(0);
  let pads = autoPad === 'VALID' ? new Array<number>(2 * sp).fill(0) : attrInts(n, 'pads') ?? new Array<number>(2 * sp).fill(0);
  if (strides.length !== sp || dilations.length !== sp || outputPadding.length !== sp || pads.length !== 2 * sp) badModel(ctx.where, `attributes must be ${sp}-D`);
  const out = onlyFirstOutput(imp, n, ctx);
  let weight: string;
  if (sp === 1) {
    x = lift1d(imp, ctx.name, x);
    [strides, dilations, outputPadding, pads] = [[1, strides[0]!], [1, dilations[0]!], [0, outputPadding[0]!], [0, pads[0]!, 0, pads[1]!]];
    weight = imp.storeDerived(`${ctx.name}.weight`, [ci, og, 1, kw], constFloats(w, ctx.where), w.src);
  } else {
    weight = imp.storeConst(n.input![1]!, w, ctx.where);
  }
  const weights: Record<string, string> = { weight };
  const b = constInput(imp, n, 2, ctx, 'bias');
  if (b) weights.bias = imp.storeDerived(`${ctx.name}.bias`, [og * group], constFloats(b, ctx.where), b.src);
  const size = (a: number): Dim => {
    const d = x.shape[a + 2]!;
    if (!isNum(d)) return unsupported(ctx.where, 'a free spatial size');
    return strides[a]! * (d - 1) + outputPadding[a]! + ([kh, kw][a]! - 1) * dilations[a]! + 1 - pads[a]! - pads[a + 2]!;
  };
  const shape: Dim[] = [x.shape[0]!, og * group, size(0), size(1)];
  const target = sp === 1 ? lower1d(imp, out, shape) : out;
  imp.emit('conv_transpose2d', ctx.name, [x.v], target, shape,
    { strides, pads, dilations, group, output_padding: outputPadding }, weights);
  if (sp === 1) finish1d(imp, ctx.name, target, out, shape);
};

const prelu: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const s = constInput(imp, n, 1, ctx, 'slope') ?? badModel(ctx.where, 'missing slope');
  const count = numelOf(s.dims);
  const r = x.shape.length;
  // The slope must be one value, or one per channel lined up with axis 1 under broadcasting.
  const big = s.dims.findIndex((d) => d !== 1);
  const axis = r - s.dims.length + big;
  if (count !== 1 && (axis !== 1 || x.shape[1] !== count || s.dims.filter((d) => d !== 1).length !== 1)) {
    unsupported(ctx.where, `slope of shape [${s.dims.join(', ')}] must be one value or one per channel`);
  }
  const slope = imp.storeDerived(`${ctx.name}.slope`, [count], constFloats(s, ctx.where), s.src);
  imp.emit('prelu', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), x.shape, {}, { slope });
};

const hardSigmoid: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  imp.emit('hard_sigmoid', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), x.shape,
    { alpha: attrFloat(n, 'alpha', 0.2), beta: attrFloat(n, 'beta', 0.5) });
};

const hardSwish: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  imp.emit('hard_swish', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), x.shape);
};

export const DATA_EMITTERS: Record<string, Emitter> = {
  Pad: pad,
  Concat: concat,
  Split: split,
  Slice: slice,
  Resize: resize,
  Upsample: resize,
  ConvTranspose: convTranspose,
  PRelu: prelu,
  HardSigmoid: hardSigmoid,
  HardSwish: hardSwish,
};

