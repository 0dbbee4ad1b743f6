// gelu, erf and layer_norm to ONNX: the standard op where the target opset has it (Gelu from 20,
// LayerNormalization from 17), else the decomposition PyTorch's exporter writes.
import { attrInts, attrNum, type OpName } from '../../runtime/ir.js';
import { fail, type EmitContext, type Emitter } from './context.js';

function scalar(ctx: EmitContext, tag: string, v: number): string {
  return ctx.b.float(`${ctx.node.name}/${tag}`, [], Float32Array.of(v), `scalar\u0000${Math.fround(v)}`);
}

const gelu: Emitter = (ctx) => {
  const n = ctx.node;
  const x = ctx.inputs[0]!;
  const approximate = n.attrs['approximate'] ?? 'none';
  if (approximate !== 'none' && approximate !== 'tanh') fail(ctx, `approximate must be 'none' or 'tanh'`);
  if (ctx.opset >= 20) {
    ctx.b.node('Gelu', [x], n.name, { approximate: { s: approximate } }, ctx.output);
    return ctx.ranks[0]!;
  }
  let gate: string;
  if (approximate === 'none') {
    const e = ctx.b.node('Erf', [ctx.b.node('Mul', [x, scalar(ctx, 'inv_sqrt2', Math.SQRT1_2)], `${n.name}/scaled`)], `${n.name}/erf`);
    gate = ctx.b.node('Add', [e, scalar(ctx, 'one', 1)], `${n.name}/gate`);
  } else {
    const x3 = ctx.b.node('Mul', [x, ctx.b.node('Mul', [x, x], `${n.name}/sq`)], `${n.name}/cube`);
    const inner = ctx.b.node('Add', [x, ctx.b.node('Mul', [x3, scalar(ctx, 'c', 0.044715)], `${n.name}/c_cube`)], `${n.name}/inner`);
    const t = ctx.b.node('Tanh', [ctx.b.node('Mul', [inner, scalar(ctx, 'k', Math.sqrt(2 / Math.PI))], `${n.name}/k_inner`)], `${n.name}/tanh`);
    gate = ctx.b.node('Add', [t, scalar(ctx, 'one', 1)], `${n.name}/gate`);
  }
  const half = ctx.b.node('Mul', [x, scalar(ctx, 'half', 0.5)], `${n.name}/half`);
  ctx.b.node('Mul', [half, gate], n.name, {}, ctx.output);
  return ctx.ranks[0]!;
};

const erf: Emitter = (ctx) => {
  ctx.b.node('Erf', [ctx.inputs[0]!], ctx.node.name, {}, ctx.output);
  return ctx.ranks[0]!;
};

/** Mean over the last axis, kept (axes as an attribute below opset 18, as an input from 18). */
function meanLast(ctx: EmitContext, v: string, tag: string): string {
  const name = `${ctx.node.name}/${tag}`;
  if (ctx.opset >= 18) return ctx.b.node('ReduceMean', [v, ctx.b.int64(`${name}/axes`, [-1])], name, { keepdims: 1 });
  return ctx.b.node('ReduceMean', [v], name, { axes: [-1], keepdims: 1 });
}

/**
 * Normalises over the trailing axes from `axis`: flattened to one last axis of D values when
 * there are several (Reshape with 0 copies, then back to Shape(x)), since scale and bias are [D].
 */
const layerNorm: Emitter = (ctx) => {
  const n = ctx.node;
  const r = ctx.ranks[0]!;
  const a = attrNum(n, 'axis', -1);
  const p = a < 0 ? a + r : a;
  if (p < 0 || p >= r) fail(ctx, `axis ${a} out of range for rank ${r}`);
  const eps = attrNum(n, 'epsilon', 1e-5);
  const scale = ctx.optionalWeight('scale');
  const bias = ctx.optionalWeight('bias');
  const x = ctx.inputs[0]!;
  const flat = p === r - 1 ? x : ctx.b.node('Reshape', [x, ctx.b.int64(`${n.name}/flat`, [...new Array<number>(p).fill(0), -1])], `${n.name}/flat`);
  const last = p === r - 1;
  const out = last ? ctx.output : undefined;
  const sInit = scale ? ctx.b.float(scale.tensor.name, scale.shape, scale.data, scale.tensor.name) : undefined;
  const bInit = bias ? ctx.b.float(bias.tensor.name, bias.shape, bias.data, bias.tensor.name) : undefined;
  let y: string;
  if (ctx.opset >= 17 && sInit) {
    y = ctx.b.node('LayerNormalization', bInit ? [flat, sInit, bInit] : [flat, sInit], n.name, { axis: -1, epsilon: { f: eps } }, out);
  } else {
    const d = ctx.b.node('Sub', [flat, meanLast(ctx, flat, 'mean')], `${n.name}/centred`);
    const v = meanLast(ctx, ctx.b.node('Mul', [d, d], `${n.name}/sq`), 'var');
    const s = ctx.b.node('Sqrt', [ctx.b.node('Add', [v, scalar(ctx, 'eps', eps)], `${n.name}/var_eps`)], `${n.name}/std`);
    const steps: Array<[string, string]> = [];
    if (sInit) steps.push(['Mul', sInit]);
    if (bInit) steps.push(['Add', bInit]);
    y = ctx.b.node('Div', [d, s], `${n.name}/normed`, {}, steps.length === 0 ? out : undefined);
    steps.forEach(([op, w], i) => {
      y = ctx.b.node(op, [y, w], `${n.name}/${op.toLowerCase()}`, {}, i === steps.length - 1 ? out : undefined);
    });
  }
  if (!last) ctx.b.node('Reshape', [y, ctx.b.node('Shape', [x], `${n.name}/shape`)], n.name, {}, ctx.output);
  return r;
};

function one(op: string): Emitter {
  return (ctx) => {
    ctx.b.node(op, [ctx.inputs[0]!], ctx.node.name, {}, ctx.output);
    return ctx.ranks[0]!;
  };
}

const pow: Emitter = (ctx) => {
  const e = attrNum(ctx.node, 'exponent');
  ctx.b.node('Pow', [ctx.inputs[0]!, scalar(ctx, 'exponent', e)], ctx.node.name, {}, ctx.output);
  return ctx.ranks[0]!;
};

/** ReduceSum takes its axes as an input from opset 13, ReduceMean and ReduceMax from 18. */
const reduce: Emitter = (ctx) => {
  const n = ctx.node;
  const op = n.attrs['op'];
  const onnxOp = op === 'mean' ? 'ReduceMean' : op === 'sum' ? 'ReduceSum' : op === 'max' ? 'ReduceMax' : fail(ctx, `op ${String(op)}`);
  const axes = attrInts(n, 'axes');
  const keepdims = attrNum(n, 'keepdims', 1) !== 0 ? 1 : 0;
  const asInput = onnxOp === 'ReduceSum' ? ctx.opset >= 13 : ctx.opset >= 18;
  if (asInput) ctx.b.node(onnxOp, [ctx.inputs[0]!, ctx.b.int64(`${n.name}/axes`, axes)], n.name, { keepdims }, ctx.output);
  else ctx.b.node(onnxOp, [ctx.inputs[0]!], n.name, { axes, keepdims }, ctx.output);
  return keepdims ? ctx.ranks[0]! : ctx.ranks[0]! - axes.length;
};

export const NORM_OPS: Partial<Record<OpName, Emitter>> = {
  gelu, erf, layer_norm: layerNorm,
  sqrt: one('Sqrt'), exp: one('Exp'), log: one('Log'), abs: one('Abs'), reciprocal: one('Reciprocal'), pow, reduce,
};
