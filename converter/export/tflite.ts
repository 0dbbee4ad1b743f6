// TFLite export of a factorised Model: every factor kind becomes a chain of TFLite builtins that
// TensorFlow Lite, TensorFlow Lite Micro and vendor tools run as they are. Each parametric kind's
// chain (dense, conv2d and every factor kind) is the `tflite` part of its converter kind
// (converter/methods/, found through the registry); this file walks the graph and emits the rest.
//
// Layout: the IR is NCHW, TFLite is NHWC. A rank-4 IR value [N, C, H, W] is the TFLite tensor
// [N, H, W, C]; flatten/reshape of a rank-4 value first transposes it back to NCHW order so the
// numbers line up with the IR's. Shapes are fixed at batch 1 (TensorFlow Lite Micro needs static
// shapes); inputs carry shape_signature -1 on the batch axis.
import type { GraphNode, Model } from '../../runtime/ir.js';
import { numel } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import { CONVERTER_KINDS, converterKind } from '../methods/index.js';
import { Act, F, Op, Opt, TensorType } from '../tflite/schema.js';
import { ExportError } from './errors.js';
import { TfliteBuilder } from './tfliteBuilder.js';
import { fail, ints, TfliteExporter, toNhwc, unsupported, type TfliteExportResult, type Val } from './tfliteExporter.js';

export type { TfliteExportResult } from './tfliteExporter.js';

/** Activation a conv/dense can absorb: the op's fused_activation_function for a following node. */
function fusable(n: GraphNode): number | undefined {
  if (n.op === 'relu') return Act.RELU;
  if (n.op === 'clip') {
    const lo = n.attrs.min;
    const hi = n.attrs.max;
    if (lo === 0 && hi === 6) return Act.RELU6;
    if (lo === -1 && hi === 1) return Act.RELU_N1_TO_1;
  }
  // TANH stays a separate op: TFLite's FULLY_CONNECTED rejects it as a fused activation.
  return undefined;
}

/** Ops whose last TFLite op takes a fused activation: every parametric kind, add and mul. */
const FUSING_OPS = new Set<string>([...CONVERTER_KINDS.map((k) => k.op), 'add', 'mul']);

/** Value shapes at batch 1, from one run of the runtime on zeros. */
function inferShapes(model: Model): Map<string, number[]> {
  const session = Session.create(model);
  const feeds: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const i of model.graph.inputs) {
    const shape = i.shape.map((d, k) => (d < 0 ? (k === 0 ? 1 : fail({ name: i.name, op: 'identity', inputs: [], outputs: [], attrs: {}, weights: {} }, `input ${i.name} has a free axis ${k} beyond the batch`)) : d));
    feeds[i.name] = { shape, data: new Float32Array(numel(shape)) };
  }
  const all = session.run(feeds, true);
  session.dispose();
  return new Map(Object.entries(all).map(([k, v]) => [k, (v as { shape: number[] }).shape]));
}

export interface BuiltTflite {
  b: TfliteBuilder;
  inputs: number[];
  outputs: number[];
  description: string;
  params: number;
}

/** Encodes `model` as a float32 TFLite flatbuffer (batch 1, NHWC). */
export function exportTflite(model: Model): TfliteExportResult {
  const built = buildTflite(model);
  const bytes = built.b.finish(built.inputs, built.outputs, built.description);
  return { bytes, operators: built.b.operators.length, tensors: built.b.tensors.length, params: built.params };
}

/** The float32 TFLite graph of `model`, not yet encoded (the int8 export rewrites it). */
export function buildTflite(model: Model): BuiltTflite {
  const { graph } = model;
  const shapes = inferShapes(model);
  const ex = new TfliteExporter(model, shapes);
  const b = ex.b;
  const inputs: number[] = [];
  const outputs = new Set(graph.outputs);
  const consumers = new Map<string, GraphNode[]>();
  for (const n of graph.nodes) for (const v of n.inputs) consumers.set(v, [...(consumers.get(v) ?? []), n]);
  const skip = new Set<GraphNode>();
  const isPerm = (n: GraphNode, p: number[]): boolean => n.op === 'transpose' && Array.isArray(n.attrs.perm) && n.attrs.perm.join() === p.join();
  for (const i of graph.inputs) {
    const shape = shapes.get(i.name)!;
    const readers = consumers.get(i.name) ?? [];
    if (shape.length === 4 && readers.length > 0 && readers.every((n) => isPerm(n, [0, 3, 1, 2]))) {
      // Already NHWC (a model imported from TFLite): the file's input is the input as it is.
      const t = b.activation(i.name, shape, TensorType.FLOAT32, undefined, i.shape.map((d) => (d < 0 ? -1 : d)));
      for (const n of readers) {
        ex.vals.set(n.outputs[0]!, { t, shape: shapes.get(n.outputs[0]!)! });
        skip.add(n);
      }
      inputs.push(t);
      continue;
    }
    const sig = toNhwc(i.shape.map((d) => (d < 0 ? -1 : d)));
    const v = { t: b.activation(i.name, toNhwc(shape), TensorType.FLOAT32, undefined, sig), shape };
    ex.vals.set(i.name, v);
    inputs.push(v.t);
  }

  for (const node of graph.nodes) {
    if (skip.has(node)) continue;
    const out = node.outputs[0];
    if (out === undefined || node.outputs.length !== 1) fail(node, 'must have one output');
    const inVal = (k: number): Val => {
      const name = node.inputs[k];
      const v = name === undefined ? undefined : ex.vals.get(name);
      if (!v) fail(node, `input ${k} (${name}) is not a computed value`);
      return v;
    };
    // Fold a following relu/relu6/tanh into this op's fused activation.
    let act: number = Act.NONE;
    let outName = out;
    const next = consumers.get(out);
    if (FUSING_OPS.has(node.op) && !outputs.has(out) && next?.length === 1) {
      const a = fusable(next[0]!);
      if (a !== undefined) {
        act = a;
        outName = next[0]!.outputs[0]!;
        skip.add(next[0]!);
      }
    }
    const irOut = shapes.get(outName);
    if (!irOut) fail(node, `output ${outName} has no inferred shape`);
    const kind = converterKind(node.op);
    if (kind) {
      ex.vals.set(outName, kind.tflite(ex, node, inVal, { name: outName, shape: irOut, act }));
      continue;
    }
    let y: Val;
    switch (node.op) {
      case 'relu': case 'sigmoid': case 'tanh': case 'clip': case 'leaky_relu': {
        const x = inVal(0);
        y = ex.act(outName, x.shape);
        if (node.op === 'relu') b.op(Op.RELU, [x.t], [y.t]);
        else if (node.op === 'sigmoid') b.op(Op.LOGISTIC, [x.t], [y.t]);
        else if (node.op === 'tanh') b.op(Op.TANH, [x.t], [y.t]);
        else if (node.op === 'leaky_relu') {
          b.op(Op.LEAKY_RELU, [x.t], [y.t], Opt.LeakyReluOptions, [[F.LeakyReluOptions.alpha, 'f32', Number(node.attrs.alpha ?? 0.01)]]);
        } else {
          const a = fusable(node);
          if (a === Act.RELU6) b.op(Op.RELU6, [x.t], [y.t]);
          else if (a === Act.RELU_N1_TO_1) b.op(Op.RELU_N1_TO_1, [x.t], [y.t]);
          else unsupported(node, `clip to [${node.attrs.min}, ${node.attrs.max}] (only [0, 6] and [-1, 1])`);
        }
        break;
      }
      case 'max_pool': y = ex.pool(node, inVal(0), outName, true); break;
      case 'avg_pool': y = ex.pool(node, inVal(0), outName, false); break;
      case 'global_avg_pool': {
        const x = inVal(0);
        y = ex.act(outName, irOut);
        b.op(Op.MEAN, [x.t, b.i32('axes_hw', [2], [1, 2])], [y.t], Opt.ReducerOptions, [[F.ReducerOptions.keep_dims, 'bool', true]]);
        break;
      }
      case 'flatten': case 'reshape': {
        const x = inVal(0);
        if (x.shape.length === 4 || irOut.length === 4 || x.shape.length !== irOut.length || x.shape.some((d, k) => d !== irOut[k])) {
          y = ex.reshape(ex.toNchwOrder(x, node.name), irOut, node.name, outName);
        } else y = x;
        break;
      }
      case 'transpose': {
        const x = inVal(0);
        const perm = ints(node, 'perm', []);
        if (outputs.has(outName) && x.shape.length === 4 && perm.join() === '0,2,3,1') {
          // An NHWC graph output (a model imported from TFLite) is the NHWC tensor itself.
          y = { t: x.t, shape: irOut };
          break;
        }
        let p = perm;
        if (perm.length === 4) {
          const p1 = [0, 3, 1, 2];
          const q1 = [0, 2, 3, 1];
          p = [0, 1, 2, 3].map((k) => p1[perm[q1[k]!]!]!);
        }
        y = ex.act(outName, irOut);
        b.op(Op.TRANSPOSE, [x.t, b.i32(`perm_${p.join('')}`, [p.length], p)], [y.t], Opt.TransposeOptions);
        break;
      }
      case 'softmax': {
        const x = inVal(0);
        const r = x.shape.length;
        const axis = Number(node.attrs.axis ?? -1);
        const ax = axis < 0 ? axis + r : axis;
        if (!(ax === r - 1 && r !== 4) && !(r === 4 && ax === 1)) unsupported(node, `softmax over axis ${axis} of a rank-${r} value (TFLite: the last axis)`);
        y = ex.act(outName, x.shape);
        b.op(Op.SOFTMAX, [x.t], [y.t], Opt.SoftmaxOptions, [[F.SoftmaxOptions.beta, 'f32', 1]]);
        break;
      }
      case 'add': case 'mul': {
        const rank = irOut.length;
        const ops = node.inputs.map((name, k) => ex.vals.get(name) ?? (k < 2 ? ex.operand(node, name, rank) : fail(node, 'more than two inputs')));
        const [p, q] = ops as [Val, Val];
        if (rank === 4 && (p.shape.length !== 4 && p.shape.length > 1 || q.shape.length !== 4 && q.shape.length > 1)) {
          unsupported(node, 'broadcast of a rank-2 or rank-3 value against a rank-4 one');
        }
        y = ex.act(outName, irOut);
        const opts = node.op === 'add' ? Opt.AddOptions : Opt.MulOptions;
        b.op(node.op === 'add' ? Op.ADD : Op.MUL, [p.t, q.t], [y.t], opts, [[0, 'i8', act]]);
        break;
      }
      case 'matmul': {
        const [p, q] = [inVal(0), inVal(1)];
        if (p.shape.length === 4 || q.shape.length === 4) unsupported(node, 'matmul of rank-4 values');
        y = ex.act(outName, irOut);
        b.op(Op.BATCH_MATMUL, [p.t, q.t], [y.t], Opt.BatchMatMulOptions, [[F.BatchMatMulOptions.adj_x, 'bool', false], [F.BatchMatMulOptions.adj_y, 'bool', false]]);
        break;
      }
      case 'identity': y = inVal(0); break;
      default:
        unsupported(node, `no TFLite form for op ${node.op}`);
    }
    ex.vals.set(outName, y);
  }
  const outs = graph.outputs.map((o) => {
    const v = ex.vals.get(o);
    if (!v) throw new ExportError('EXPORT_BAD_MODEL', `tflite export: graph output ${o} is never produced`);
    return v.t;
  });
  const source = typeof model.metadata['source.model'] === 'string' ? model.metadata['source.model'] : '';
  return { b, inputs, outputs: outs, description: `factorlite${source ? ` (${source})` : ''}`, params: ex.params };
}
