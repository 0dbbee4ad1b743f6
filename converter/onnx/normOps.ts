// Emitters for GELU, Erf and LayerNormalization (standard ops, and the nodes patterns.ts makes
// from PyTorch's decompositions of F.gelu and nn.LayerNorm).
import { attrFloat, attrInt, attrInts, attrString } from './attributes.js';
import type { Importer } from './importer.js';
import { type EmitContext, type Emitter, LAYER_EMITTERS, activation, badModel, constInput, onlyFirstOutput, unsupported } from './layers.js';
import { isNum, normAxis } from './shapes.js';
import { type Const, constFloats, constInts, numelOf } from './tensors.js';
import type { Dim } from './shapes.js';

const gelu: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const approximate = attrString(n, 'approximate', 'none');
  if (approximate !== 'none' && approximate !== 'tanh') unsupported(ctx.where, `approximate=${approximate}`);
  imp.emit('gelu', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), x.shape, { approximate });
};

const erf: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  imp.emit('erf', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), x.shape);
};

/** A constant broadcast to the trailing dims `tail` and flattened (row-major) to their product. */
function expandTo(c: Const, tail: number[], ctx: EmitContext, role: string): Float32Array {
  const src = constFloats(c, ctx.where);
  const dims = c.dims;
  if (dims.length > tail.length || dims.some((d, i) => d !== 1 && d !== tail[tail.length - dims.length + i])) {
    unsupported(ctx.where, `${role} of shape [${dims.join(', ')}] does not broadcast to the normalised dims [${tail.join(', ')}]`);
  }
  const D = tail.reduce((a, b) => a * b, 1);
  const outData = new Float32Array(D);
  const full = [...new Array<number>(tail.length - dims.length).fill(1), ...dims];
  for (let i = 0; i < D; i++) {
    let rest = i;
    let at = 0;
    let stride = 1;
    for (let a = tail.length - 1; a >= 0; a--) {
      const idx = rest % tail[a]!;
      rest = Math.floor(rest / tail[a]!);
      if (full[a] !== 1) at += idx * stride;
      stride *= full[a]!;
    }
    outData[i] = src[at]!;
  }
  return outData;
}

const layerNormalization: Emitter = (imp: Importer, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const r = x.shape.length;
  const axis = normAxis(attrInt(n, 'axis', -1), r);
  if (axis < 0 || axis >= r) badModel(ctx.where, `axis out of range for rank ${r}`);
  const tail = x.shape.slice(axis);
  if (!tail.every(isNum)) unsupported(ctx.where, `normalising over axis ${axis}, whose size is free`);
  const epsilon = attrFloat(n, 'epsilon', 1e-5);
  if ((n.output ?? []).slice(1).some((o) => o && imp.isUsed(o))) unsupported(ctx.where, 'the Mean and InvStdDev outputs');
  const weights: Record<string, string> = {};
  for (const [i, role] of [[1, 'scale'], [2, 'bias']] as const) {
    const c = constInput(imp, n, i, ctx, role);
    if (c) weights[role] = imp.storeDerived(`${ctx.name}.${role}`, [tail.reduce((a, b) => a * b, 1)], expandTo(c, tail, ctx, role), c.src);
  }
  imp.emit('layer_norm', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), x.shape, { axis: axis - r, epsilon }, weights);
};

/**
 * InstanceNormalization (nn.InstanceNorm*d, and nn.GroupNorm, which PyTorch exports as a reshape
 * to [N, G, -1] around one): each (sample, channel) row normalised over the spatial axes, then
 * scaled and shifted per channel. A layer_norm over the trailing axes with no weights, then a mul
 * and an add by [C, 1, ...] constants (left out when they are ones and zeros).
 */
const instanceNormalization: Emitter = (imp: Importer, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const r = x.shape.length;
  if (r < 3) badModel(ctx.where, `input of rank ${r}; InstanceNormalization needs [N, C, D1, ...]`);
  const C = x.shape[1]!;
  if (!isNum(C)) unsupported(ctx.where, 'a free channel count');
  if (!x.shape.slice(2).every(isNum)) unsupported(ctx.where, 'normalising over spatial axes whose size is free');
  const epsilon = attrFloat(n, 'epsilon', 1e-5);
  const per: Array<[string, number, Const | undefined]> = [['scale', 1, constInput(imp, n, 1, ctx, 'scale')], ['bias', 0, constInput(imp, n, 2, ctx, 'bias')]];
  const out = onlyFirstOutput(imp, n, ctx);
  const steps = per.filter(([, neutral, c]) => c && constFloats(c, ctx.where).some((v) => v !== neutral));
  let v = steps.length ? imp.freshValue(`${out}/normalised`) : out;
  imp.emit('layer_norm', steps.length ? `${ctx.name}/norm` : ctx.name, [x.v], v, x.shape, { axis: 2 - r, epsilon });
  const dims = [C, ...x.shape.slice(2).map(() => 1)];
  steps.forEach(([role, , c], i) => {
    const data = constFloats(c!, ctx.where);
    if (data.length !== C) badModel(ctx.where, `${role} has ${data.length} values for ${C} channels`);
    const t = imp.storeDerived(`${ctx.name}.${role}`, dims, Float32Array.from(data), c!.src);
    const last = i === steps.length - 1;
    const next = last ? out : imp.freshValue(`${out}/scaled`);
    imp.emit(role === 'scale' ? 'mul' : 'add', last ? ctx.name : `${ctx.name}/${role}`, [v, t], next, x.shape);
    v = next;
  });
};

function math(op: 'sqrt' | 'exp' | 'log' | 'abs' | 'reciprocal'): Emitter {
  return (imp, n, ctx) => {
    const x = activation(imp, n, 0, ctx);
    imp.emit(op, ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), x.shape);
  };
}

/** The one value of a constant operand, or a failure naming what it must be. */
function scalarInput(imp: Importer, name: string | undefined, ctx: EmitContext, what: string): number {
  const c = name ? imp.consts.get(name) : undefined;
  if (!c || numelOf(c.dims) !== 1) unsupported(ctx.where, `${what} must be a one-value constant`);
  return constFloats(c, ctx.where)[0]!;
}

const pow: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const exponent = scalarInput(imp, n.input?.[1], ctx, 'the exponent');
  const out = onlyFirstOutput(imp, n, ctx);
  if (exponent === 1) imp.setAlias(out, x.v);
  else if (exponent >= 0) imp.emit('pow', ctx.name, [x.v], out, x.shape, { exponent });
  else if (exponent === -1) imp.emit('reciprocal', ctx.name, [x.v], out, x.shape);
  else {
    // The file holds non-negative exponents only: x^-e = 1 / x^e.
    const p = imp.freshValue(`${out}/pow`);
    imp.emit('pow', `${ctx.name}/pow`, [x.v], p, x.shape, { exponent: -exponent });
    imp.emit('reciprocal', ctx.name, [p], out, x.shape);
  }
};

/** Max / Min of an activation and one constant value: a one-sided clip. */
function minMax(which: 'Max' | 'Min'): Emitter {
  return (imp, n, ctx) => {
    const ins = (n.input ?? []).filter((v) => v);
    const acts = ins.filter((v) => !imp.consts.has(v));
    const consts = ins.filter((v) => imp.consts.has(v));
    if (acts.length !== 1 || consts.length > 1) unsupported(ctx.where, `${which} is supported for one activation against at most one constant`);
    const x = { v: imp.value(acts[0]!), shape: imp.shapeOf(acts[0]!, ctx.where) };
    const out = onlyFirstOutput(imp, n, ctx);
    if (consts.length === 0) return imp.setAlias(out, x.v);
    const c = scalarInput(imp, consts[0], ctx, `the constant of ${which}`);
    imp.emit('clip', ctx.name, [x.v], out, x.shape, which === 'Max' ? { min: c, max: 3.4028234663852886e38 } : { min: -3.4028234663852886e38, max: c });
  };
}

/** ReduceMean / ReduceSum / ReduceMax over constant axes (attribute, or input where the opset has it). */
function reduce(op: 'mean' | 'sum' | 'max'): Emitter {
  return (imp, n, ctx) => {
    const x = activation(imp, n, 0, ctx);
    const r = x.shape.length;
    const axesAsInput = op === 'sum' ? imp.opset >= 13 : imp.opset >= 18;
    let raw = axesAsInput ? undefined : attrInts(n, 'axes');
    if (axesAsInput && n.input?.[1]) raw = constInts(imp.consts.get(n.input[1]) ?? unsupported(ctx.where, 'axes must be a constant'), ctx.where);
    if ((!raw || raw.length === 0) && axesAsInput && attrInt(n, 'noop_with_empty_axes', 0) !== 0) {
      return imp.setAlias(onlyFirstOutput(imp, n, ctx), x.v);
    }
    const axes = (raw && raw.length > 0 ? raw : x.shape.map((_, a) => a)).map((a) => normAxis(a, r));
    if (axes.some((a) => a < 0 || a >= r) || new Set(axes).size !== axes.length) badModel(ctx.where, `axes [${raw}] do not fit rank ${r}`);
    const sorted = [...axes].sort((p, q) => p - q);
    // Over all spatial axes of [N, C, L] or NCHW, a mean is a global average pool.
    if (op === 'mean' && (r === 3 || r === 4) && sorted.join() === Array.from({ length: r - 2 }, (_, i) => i + 2).join()) {
      LAYER_EMITTERS.ReduceMean!(imp, n, ctx);
      return;
    }
    const keepdims = attrInt(n, 'keepdims', 1) !== 0 ? 1 : 0;
    if (sorted.some((a) => !isNum(x.shape[a]!))) unsupported(ctx.where, 'reducing an axis whose size is free');
    const shape: Dim[] = keepdims ? x.shape.map((d, a) => (sorted.includes(a) ? 1 : d)) : x.shape.filter((_, a) => !sorted.includes(a));
    imp.emit('reduce', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), shape, { op, axes: sorted.map((a) => a - r), keepdims });
  };
}

export const NORM_EMITTERS: Record<string, Emitter> = {
  Sqrt: math('sqrt'),
  Exp: math('exp'),
  InstanceNormalization: instanceNormalization,
  Log: math('log'),
  Abs: math('abs'),
  Reciprocal: math('reciprocal'),
  Pow: pow,
  Max: minMax('Max'),
  Min: minMax('Min'),
  ReduceMean: reduce('mean'),
  ReduceSum: reduce('sum'),
  ReduceMax: reduce('max'),
  Gelu: gelu,
  Erf: erf,
  LayerNormalization: layerNormalization,
};
