// Non-parametric ops: mostly one ONNX node each, with the IR's attributes and defaults.
import { attrInts, attrNum, type GraphNode, type OpName } from '../../runtime/ir.js';
import type { OnnxAttr } from './builder.js';
import { fail, type EmitContext, type Emitter } from './context.js';

function one(op: string, attrs: (ctx: EmitContext) => Record<string, OnnxAttr> = () => ({})): Emitter {
  return (ctx) => {
    ctx.b.node(op, [ctx.inputs[0]!], ctx.node.name, attrs(ctx), ctx.output);
    return ctx.ranks[0]!;
  };
}

function two(op: string): Emitter {
  return (ctx) => {
    if (ctx.inputs.length !== 2) fail(ctx, 'needs two inputs');
    ctx.b.node(op, [ctx.inputs[0]!, ctx.inputs[1]!], ctx.node.name, {}, ctx.output);
    return Math.max(ctx.ranks[0]!, ctx.ranks[1]!);
  };
}

/** Clip takes min/max as optional inputs from opset 11 on; an absent bound is an empty name. */
const clip: Emitter = (ctx) => {
  const lo = attrNum(ctx.node, 'min', -Infinity);
  const hi = attrNum(ctx.node, 'max', Infinity);
  const bound = (v: number, which: string): string =>
    (Number.isFinite(v) ? ctx.b.float(`${ctx.node.name}/${which}`, [], Float32Array.of(v)) : '');
  const ins = [ctx.inputs[0]!, bound(lo, 'min'), bound(hi, 'max')];
  while (ins[ins.length - 1] === '') ins.pop();
  ctx.b.node('Clip', ins, ctx.node.name, {}, ctx.output);
  return ctx.ranks[0]!;
};

function poolAttrs(ctx: EmitContext): Record<string, OnnxAttr> {
  return {
    kernel_shape: attrInts(ctx.node, 'kernel'),
    strides: attrInts(ctx.node, 'strides', [1, 1]),
    pads: attrInts(ctx.node, 'pads', [0, 0, 0, 0]),
    ceil_mode: attrNum(ctx.node, 'ceil_mode', 0) !== 0 ? 1 : 0,
  };
}

const maxPool = one('MaxPool', (ctx) => {
  const d = attrInts(ctx.node, 'dilations', [1, 1]);
  return { ...poolAttrs(ctx), ...(d.some((v) => v !== 1) ? { dilations: d } : {}) };
});

// The runtime's avg_pool has no dilation (AveragePool gains one only in opset 19).
const avgPool = one('AveragePool', (ctx) => ({
  ...poolAttrs(ctx), count_include_pad: attrNum(ctx.node, 'count_include_pad', 0) !== 0 ? 1 : 0,
}));

const flatten: Emitter = (ctx) => {
  ctx.b.node('Flatten', [ctx.inputs[0]!], ctx.node.name, { axis: attrNum(ctx.node, 'axis', 1) }, ctx.output);
  return 2;
};

/** The IR's reshape is ONNX Reshape with allowzero = 0: 0 copies the input dim, -1 infers. */
const reshape: Emitter = (ctx) => {
  const shape = attrInts(ctx.node, 'shape');
  ctx.b.node('Reshape', [ctx.inputs[0]!, ctx.b.int64(`${ctx.node.name}/shape`, shape)], ctx.node.name, {}, ctx.output);
  return shape.length;
};

const transpose: Emitter = (ctx) => {
  const perm = attrInts(ctx.node, 'perm');
  ctx.b.node('Transpose', [ctx.inputs[0]!], ctx.node.name, { perm }, ctx.output);
  return perm.length;
};

/**
 * Softmax over one axis. Before opset 13 ONNX Softmax flattens to 2-D at the axis, which is the
 * same only for the last axis; another axis is swapped to the end and back.
 */
const softmax: Emitter = (ctx) => {
  const rank = ctx.ranks[0]!;
  const raw = attrNum(ctx.node, 'axis', -1);
  const axis = raw < 0 ? raw + rank : raw;
  if (axis < 0 || axis >= rank) fail(ctx, `axis ${raw} out of range for rank ${rank}`);
  if (ctx.opset >= 13 || axis === rank - 1) {
    ctx.b.node('Softmax', [ctx.inputs[0]!], ctx.node.name, { axis: ctx.opset >= 13 ? raw : -1 }, ctx.output);
    return rank;
  }
  const perm = [...Array(rank).keys()];
  perm[axis] = rank - 1;
  perm[rank - 1] = axis;
  const t = ctx.b.node('Transpose', [ctx.inputs[0]!], `${ctx.node.name}/to_last`, { perm });
  const s = ctx.b.node('Softmax', [t], ctx.node.name, { axis: -1 });
  ctx.b.node('Transpose', [s], `${ctx.node.name}/back`, { perm }, ctx.output);
  return rank;
};

const logSoftmax: Emitter = (ctx) => {
  const rank = ctx.ranks[0]!;
  const raw = attrNum(ctx.node, 'axis', -1);
  const axis = raw < 0 ? raw + rank : raw;
  if (axis < 0 || axis >= rank) fail(ctx, `axis ${raw} out of range for rank ${rank}`);
  if (ctx.opset >= 13 || axis === rank - 1) {
    ctx.b.node('LogSoftmax', [ctx.inputs[0]!], ctx.node.name, { axis: ctx.opset >= 13 ? raw : -1 }, ctx.output);
    return rank;
  }
  const perm = [...Array(rank).keys()];
  perm[axis] = rank - 1;
  perm[rank - 1] = axis;
  const t = ctx.b.node('Transpose', [ctx.inputs[0]!], `${ctx.node.name}/to_last`, { perm });
  const s = ctx.b.node('LogSoftmax', [t], ctx.node.name, { axis: -1 });
  ctx.b.node('Transpose', [s], `${ctx.node.name}/back`, { perm }, ctx.output);
  return rank;
};

const str = (node: GraphNode, key: string, fallback: string): string => {
  const v = node.attrs[key];
  return typeof v === 'string' ? v : fallback;
};

const pad: Emitter = (ctx) => {
  const pads = attrInts(ctx.node, 'pads');
  const value = ctx.b.float(`${ctx.node.name}/value`, [], Float32Array.of(attrNum(ctx.node, 'value', 0)));
  ctx.b.node('Pad', [ctx.inputs[0]!, ctx.b.int64(`${ctx.node.name}/pads`, pads), value], ctx.node.name,
    { mode: { s: str(ctx.node, 'mode', 'constant') } }, ctx.output);
  return ctx.ranks[0]!;
};

const concat: Emitter = (ctx) => {
  ctx.b.node('Concat', ctx.inputs, ctx.node.name, { axis: attrNum(ctx.node, 'axis', 1) }, ctx.output);
  return ctx.ranks[0]!;
};

const slice: Emitter = (ctx) => {
  const n = ctx.node;
  const starts = attrInts(n, 'starts');
  const ins = [ctx.inputs[0]!, ctx.b.int64(`${n.name}/starts`, starts), ctx.b.int64(`${n.name}/ends`, attrInts(n, 'ends')),
    ctx.b.int64(`${n.name}/axes`, attrInts(n, 'axes')), ctx.b.int64(`${n.name}/steps`, attrInts(n, 'steps', starts.map(() => 1)))];
  ctx.b.node('Slice', ins, n.name, {}, ctx.output);
  return ctx.ranks[0]!;
};

const resize: Emitter = (ctx) => {
  const n = ctx.node;
  const scales = attrInts(n, 'scales');
  const roi = ctx.b.float(`${n.name}/roi`, [0], new Float32Array(0));
  const sc = ctx.b.float(`${n.name}/scales`, [scales.length], Float32Array.from(scales));
  ctx.b.node('Resize', [ctx.inputs[0]!, roi, sc], n.name, {
    mode: { s: str(n, 'mode', 'nearest') },
    coordinate_transformation_mode: { s: str(n, 'coord', 'half_pixel') },
    nearest_mode: { s: str(n, 'nearest', 'round_prefer_floor') },
  }, ctx.output);
  return ctx.ranks[0]!;
};

const hardSigmoid = one('HardSigmoid', (ctx) => ({
  alpha: { f: attrNum(ctx.node, 'alpha', 0.2) }, beta: { f: attrNum(ctx.node, 'beta', 0.5) },
}));

/** HardSwish exists from opset 14; before it, x * HardSigmoid(x) with alpha 1/6. */
const hardSwish: Emitter = (ctx) => {
  if (ctx.opset >= 14) {
    ctx.b.node('HardSwish', [ctx.inputs[0]!], ctx.node.name, {}, ctx.output);
    return ctx.ranks[0]!;
  }
  const g = ctx.b.node('HardSigmoid', [ctx.inputs[0]!], `${ctx.node.name}/gate`, { alpha: { f: 1 / 6 }, beta: { f: 0.5 } });
  ctx.b.node('Mul', [ctx.inputs[0]!, g], ctx.node.name, {}, ctx.output);
  return ctx.ranks[0]!;
};

/** The per-channel slope as [C, 1, ...] so that it broadcasts on axis 1. */
const prelu: Emitter = (ctx) => {
  const s = ctx.weight('slope');
  const rank = ctx.ranks[0]!;
  const dims = s.data.length === 1 ? [1] : [s.data.length, ...new Array<number>(Math.max(0, rank - 2)).fill(1)];
  const slope = ctx.b.float(`${s.tensor.name}:prelu`, dims, s.data, `${s.tensor.name}\u0000prelu`);
  ctx.b.node('PRelu', [ctx.inputs[0]!, slope], ctx.node.name, {}, ctx.output);
  return rank;
};

const convTranspose: Emitter = (ctx) => {
  const n = ctx.node;
  const w = ctx.weight('weight');
  const b = ctx.optionalWeight('bias');
  const ins = [ctx.inputs[0]!, ctx.b.float(w.tensor.name, w.shape, w.data, w.tensor.name)];
  if (b) ins.push(ctx.b.float(b.tensor.name, b.shape, b.data, b.tensor.name));
  ctx.b.node('ConvTranspose', ins, n.name, {
    kernel_shape: w.shape.slice(2),
    strides: attrInts(n, 'strides', [1, 1]),
    pads: attrInts(n, 'pads', [0, 0, 0, 0]),
    dilations: attrInts(n, 'dilations', [1, 1]),
    group: attrNum(n, 'group', 1),
    output_padding: attrInts(n, 'output_padding', [0, 0]),
  }, ctx.output);
  return 4;
};

export const PLAIN_OPS: Partial<Record<OpName, Emitter>> = {
  matmul: two('MatMul'),
  relu: one('Relu'),
  leaky_relu: one('LeakyRelu', (ctx) => ({ alpha: { f: attrNum(ctx.node, 'alpha', 0.01) } })),
  sigmoid: one('Sigmoid'),
  tanh: one('Tanh'),
  clip,
  max_pool: maxPool,
  avg_pool: avgPool,
  global_avg_pool: one('GlobalAveragePool'),
  flatten,
  reshape,
  transpose,
  softmax,
  add: two('Add'),
  mul: two('Mul'),
  identity: one('Identity'),
  log_softmax: logSoftmax,
  pad,
  concat,
  slice,
  resize,
  hard_sigmoid: hardSigmoid,
  hard_swish: hardSwish,
  prelu,
  conv_transpose2d: convTranspose,
};
