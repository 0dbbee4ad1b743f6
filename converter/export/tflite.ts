// TFLite export of a factorised Model: every factor kind becomes a chain of TFLite builtins that
// TensorFlow Lite, TensorFlow Lite Micro and vendor tools run as they are.
//
//   svd_dense       FULLY_CONNECTED (v, no bias) -> FULLY_CONNECTED (u, bias)
//   svd_conv2d      CONV_2D (v, the conv's geometry) -> 1x1 CONV_2D (u, bias)
//   tucker2_conv2d  1x1 CONV_2D -> CONV_2D (core) -> 1x1 CONV_2D
//   cp_conv2d       1x1 CONV_2D -> DEPTHWISE_CONV_2D kh x 1 -> DEPTHWISE_CONV_2D 1 x kw -> 1x1 CONV_2D
//   tt/tr/ttl_dense RESHAPE + BATCH_MATMUL / FULLY_CONNECTED chains (tfliteTensorNet.ts)
//
// Layout: the IR is NCHW, TFLite is NHWC. A rank-4 IR value [N, C, H, W] is the TFLite tensor
// [N, H, W, C]; flatten/reshape of a rank-4 value first transposes it back to NCHW order so the
// numbers line up with the IR's. Shapes are fixed at batch 1 (TensorFlow Lite Micro needs static
// shapes); inputs carry shape_signature -1 on the batch axis.
import type { GraphNode, Model } from '../../runtime/ir.js';
import { numel } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import { Act, F, Op, Opt, TensorType } from '../tflite/schema.js';
import { ExportError } from './errors.js';
import { TfliteBuilder } from './tfliteBuilder.js';
import { tensorNetDense } from './tfliteTensorNet.js';
import { convGeom, fail, ints, TfliteExporter, toNhwc, unsupported, type TfliteExportResult, type Val } from './tfliteExporter.js';

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

const FUSING_OPS = new Set(['conv2d', 'dense', 'svd_dense', 'svd_conv2d', 'tucker2_conv2d', 'cp_conv2d', 'add', 'mul', 'tt_dense', 'tr_dense', 'ttl_dense']);

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
    let y: Val;
    switch (node.op) {
      case 'conv2d': {
        const x = inVal(0);
        const w = ex.weight(node, 'weight');
        const bias = ex.optionalWeight(node, 'bias')?.data;
        const group = typeof node.attrs.group === 'number' ? node.attrs.group : 1;
        const c = x.shape[1]!;
        if (group !== 1 && group !== c) unsupported(node, `grouped convolution with ${group} groups (only 1 or depthwise)`);
        y = ex.conv(x, w.data, w.shape, bias, convGeom(node), group !== 1, node.name, outName, act, node);
        break;
      }
      case 'svd_conv2d': {
        const x = inVal(0);
        const v = ex.weight(node, 'v');
        const u = ex.weight(node, 'u');
        const r = v.shape[0]!;
        const mid = ex.conv(x, v.data, v.shape, undefined, convGeom(node), false, `${node.name}/v`, `${node.name}/v`, Act.NONE, node);
        y = ex.pointwise(mid, u.data, u.shape[0]!, r, ex.optionalWeight(node, 'bias')?.data, `${node.name}/u`, outName, act, node);
        break;
      }
      case 'tucker2_conv2d': {
        const x = inVal(0);
        const uIn = ex.weight(node, 'u_in');
        const core = ex.weight(node, 'core');
        const uOut = ex.weight(node, 'u_out');
        const [r1, inC] = uIn.shape as [number, number];
        const a = ex.pointwise(x, uIn.data, r1, inC, undefined, `${node.name}/u_in`, `${node.name}/u_in`, Act.NONE, node);
        const m = ex.conv(a, core.data, core.shape, undefined, convGeom(node), false, `${node.name}/core`, `${node.name}/core`, Act.NONE, node);
        y = ex.pointwise(m, uOut.data, uOut.shape[0]!, core.shape[0]!, ex.optionalWeight(node, 'bias')?.data, `${node.name}/u_out`, outName, act, node);
        break;
      }
      case 'cp_conv2d': {
        const x = inVal(0);
        const aIn = ex.weight(node, 'a_in');
        const kH = ex.weight(node, 'k_h');
        const kW = ex.weight(node, 'k_w');
        const aOut = ex.weight(node, 'a_out');
        const [R, inC] = aIn.shape as [number, number];
        const g = convGeom(node);
        const a = ex.pointwise(x, aIn.data, R, inC, undefined, `${node.name}/a_in`, `${node.name}/a_in`, Act.NONE, node);
        const vert = { strides: [g.strides[0]!, 1], pads: [g.pads[0]!, 0, g.pads[2]!, 0], dilations: [g.dilations[0]!, 1] };
        const hor = { strides: [1, g.strides[1]!], pads: [0, g.pads[1]!, 0, g.pads[3]!], dilations: [1, g.dilations[1]!] };
        const v = ex.conv(a, kH.data, [R, 1, kH.shape[1]!, 1], undefined, vert, true, `${node.name}/k_h`, `${node.name}/k_h`, Act.NONE, node);
        const h = ex.conv(v, kW.data, [R, 1, 1, kW.shape[1]!], undefined, hor, true, `${node.name}/k_w`, `${node.name}/k_w`, Act.NONE, node);
        y = ex.pointwise(h, aOut.data, aOut.shape[0]!, R, ex.optionalWeight(node, 'bias')?.data, `${node.name}/a_out`, outName, act, node);
        break;
      }
      case 'dense': {
        const w = ex.weight(node, 'weight');
        const [o, i] = w.shape as [number, number];
        y = ex.fullyConnected(inVal(0), w.data, o, i, ex.optionalWeight(node, 'bias')?.data, node.name, outName, act, node);
        break;
      }
      case 'svd_dense': {
        const u = ex.weight(node, 'u');
        const v = ex.weight(node, 'v');
        const [r, i] = v.shape as [number, number];
        const mid = ex.fullyConnected(inVal(0), v.data, r, i, undefined, `${node.name}/v`, `${node.name}/v`, Act.NONE, node);
        y = ex.fullyConnected(mid, u.data, u.shape[0]!, r, ex.optionalWeight(node, 'bias')?.data, `${node.name}/u`, outName, act, node);
        break;
      }
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
      case 'tt_dense': case 'tr_dense': case 'ttl_dense': {
        const x = inVal(0);
        if (x.shape.length > 2 && x.shape.length !== 4) unsupported(node, `a tensor-network dense layer on a rank-${x.shape.length} input`);
        const src = ex.toNchwOrder(x, node.name);
        const t = tensorNetDense(ex, node, { t: src, batch: x.shape[0]!, features: numel(x.shape.slice(1)) }, act, outName);
        y = { t, shape: irOut };
        break;
      }
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
