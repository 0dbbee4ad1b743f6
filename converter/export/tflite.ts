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
import { tensorToFloat32 } from '../../runtime/format/dtype.js';
import type { GraphNode, Model, StoredTensor } from '../../runtime/ir.js';
import { numel } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import { Act, F, Op, Opt, Padding, TensorType } from '../tflite/schema.js';
import { ExportError } from './errors.js';
import { TfliteBuilder } from './tfliteBuilder.js';
import { tensorNetDense } from './tfliteTensorNet.js';

interface Val {
  /** TFLite tensor index. */
  t: number;
  /** IR shape at batch 1 (NCHW when rank 4). */
  shape: number[];
}

interface ConvGeom {
  strides: number[];
  pads: number[];
  dilations: number[];
}

const toNhwc = (s: number[]): number[] => (s.length === 4 ? [s[0]!, s[2]!, s[3]!, s[1]!] : [...s]);

function fail(node: GraphNode, msg: string): never {
  throw new ExportError('EXPORT_BAD_MODEL', `tflite export: node ${node.name} (${node.op}): ${msg}`);
}

function unsupported(node: GraphNode, msg: string): never {
  throw new ExportError('EXPORT_UNSUPPORTED', `tflite export: node ${node.name} (${node.op}): ${msg}`);
}

/** TFLite's SAME padding for one spatial axis: [before, after]. */
function samePads(inSize: number, k: number, s: number, d: number): [number, number] {
  const out = Math.ceil(inSize / s);
  const total = Math.max((out - 1) * s + (k - 1) * d + 1 - inSize, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/** VALID or SAME when the explicit pads [top, left, bottom, right] are one of them, else undefined. */
function paddingMode(h: number, w: number, kh: number, kw: number, g: ConvGeom): number | undefined {
  const [t, l, b, r] = g.pads as [number, number, number, number];
  if (t === 0 && l === 0 && b === 0 && r === 0) return Padding.VALID;
  const [st, sb] = samePads(h, kh, g.strides[0]!, g.dilations[0]!);
  const [sl, sr] = samePads(w, kw, g.strides[1]!, g.dilations[1]!);
  if (t === st && b === sb && l === sl && r === sr) return Padding.SAME;
  return undefined;
}

function ints(node: GraphNode, key: string, def: number[]): number[] {
  const v = node.attrs[key];
  if (v === undefined) return def;
  if (!Array.isArray(v)) fail(node, `attribute ${key} must be a list`);
  return v;
}

function convGeom(node: GraphNode): ConvGeom {
  return { strides: ints(node, 'strides', [1, 1]), pads: ints(node, 'pads', [0, 0, 0, 0]), dilations: ints(node, 'dilations', [1, 1]) };
}

export interface TfliteExportResult {
  bytes: Uint8Array;
  operators: number;
  tensors: number;
  /** Parameters stored in constant tensors. */
  params: number;
}

class TfliteExporter {
  readonly b = new TfliteBuilder();
  readonly vals = new Map<string, Val>();
  private readonly weights = new Map<string, { data: Float32Array; shape: number[] }>();
  params = 0;

  constructor(readonly model: Model, readonly shapes: Map<string, number[]>) {}

  weight(node: GraphNode, role: string): { data: Float32Array; shape: number[]; name: string } {
    const w = this.optionalWeight(node, role);
    if (!w) fail(node, `missing weight ${role}`);
    return w;
  }

  optionalWeight(node: GraphNode, role: string): { data: Float32Array; shape: number[]; name: string } | undefined {
    const name = node.weights[role];
    if (name === undefined) return undefined;
    const t: StoredTensor | undefined = this.model.tensors.get(name);
    if (!t) fail(node, `weight ${role} names missing tensor ${name}`);
    let w = this.weights.get(name);
    if (!w) {
      w = { data: tensorToFloat32(t), shape: [...t.shape] };
      this.weights.set(name, w);
    }
    return { ...w, name };
  }

  constF32(name: string, shape: number[], data: Float32Array, key?: string): number {
    const before = this.b.tensors.length;
    const idx = this.b.f32(name, shape, data, key);
    if (this.b.tensors.length > before) this.params += data.length;
    return idx;
  }

  act(name: string, irShape: number[]): Val {
    return { t: this.b.activation(name, toNhwc(irShape)), shape: [...irShape] };
  }

  /** A rank-4 value in NCHW element order (TRANSPOSE), as a TFLite tensor of the IR's shape. */
  toNchwOrder(x: Val, name: string): number {
    if (x.shape.length !== 4) return x.t;
    const [, c, h, w] = x.shape as [number, number, number, number];
    // With one channel, or 1x1 maps, NHWC and NCHW hold the same element order.
    if (c === 1 || h * w === 1) return x.t;
    const out = this.b.activation(`${name}/nchw`, [...x.shape]);
    this.b.op(Op.TRANSPOSE, [x.t, this.b.i32('perm_nhwc_to_nchw', [4], [0, 3, 1, 2])], [out], Opt.TransposeOptions);
    return out;
  }

  reshape(src: number, outIr: number[], name: string, outName: string): Val {
    const flatOut = outIr.length === 4 && !(outIr[1] === 1 || outIr[2]! * outIr[3]! === 1);
    const target = [-1, ...outIr.slice(1)];
    const tgt = this.b.i32(`${name}/shape`, [target.length], target);
    if (!flatOut) {
      const out = this.act(outName, outIr);
      // Shape given both as the second input and in the options (TensorFlow Lite Micro reads either).
      const nhwcTarget = outIr.length === 4 ? [-1, outIr[2]!, outIr[3]!, outIr[1]!] : target;
      const tgt2 = outIr.length === 4 ? this.b.i32(`${name}/shape`, [4], nhwcTarget) : tgt;
      this.b.op(Op.RESHAPE, [src, tgt2], [out.t], Opt.ReshapeOptions, [[F.ReshapeOptions.new_shape, 'i32[]', nhwcTarget]]);
      return out;
    }
    const mid = this.b.activation(`${name}/nchw`, [...outIr]);
    this.b.op(Op.RESHAPE, [src, tgt], [mid], Opt.ReshapeOptions, [[F.ReshapeOptions.new_shape, 'i32[]', target]]);
    const out = this.act(outName, outIr);
    this.b.op(Op.TRANSPOSE, [mid, this.b.i32('perm_nchw_to_nhwc', [4], [0, 2, 3, 1])], [out.t], Opt.TransposeOptions);
    return out;
  }

  /**
   * One convolution: OIHW weight [O, I/g, kh, kw]; depthwise when each output channel reads one input
   * channel (group = C). Explicit pads that are neither VALID nor SAME become a PAD op.
   */
  conv(x: Val, w: Float32Array, wShape: number[], bias: Float32Array | undefined, g: ConvGeom, depthwise: boolean,
    name: string, outName: string, act: number, node: GraphNode): Val {
    const [n, c, h, wd] = x.shape as [number, number, number, number];
    const [o, ipg, kh, kw] = wShape as [number, number, number, number];
    if (depthwise ? ipg !== 1 || o % c !== 0 : ipg !== c) fail(node, `weight [${wShape}] does not fit an input of ${c} channels`);
    let src = x;
    let mode = paddingMode(h, wd, kh, kw, g);
    if (mode === undefined) {
      const [t, l, bo, r] = g.pads as [number, number, number, number];
      const padded = this.act(`${name}/pad`, [n, c, h + t + bo, wd + l + r]);
      const pads = this.b.i32(`${name}/pads`, [4, 2], [0, 0, t, bo, l, r, 0, 0]);
      this.b.op(Op.PAD, [x.t, pads], [padded.t], Opt.PadOptions);
      src = padded;
      mode = Padding.VALID;
    }
    const [sh, sw] = g.strides as [number, number];
    const [dh, dw] = g.dilations as [number, number];
    const [ih, iw] = [src.shape[2]!, src.shape[3]!];
    const oh = mode === Padding.SAME ? Math.ceil(ih / sh) : Math.floor((ih - dh * (kh - 1) - 1) / sh) + 1;
    const ow = mode === Padding.SAME ? Math.ceil(iw / sw) : Math.floor((iw - dw * (kw - 1) - 1) / sw) + 1;
    const out = this.act(outName, [n, o, oh, ow]);
    let filt: Float32Array;
    let fShape: number[];
    if (depthwise) {
      // [O, 1, kh, kw] -> [1, kh, kw, O]
      fShape = [1, kh, kw, o];
      filt = new Float32Array(o * kh * kw);
      for (let oc = 0; oc < o; oc++) for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++) filt[(y * kw + xx) * o + oc] = w[(oc * kh + y) * kw + xx]!;
    } else {
      // OIHW -> OHWI
      fShape = [o, kh, kw, ipg];
      filt = new Float32Array(o * kh * kw * ipg);
      for (let oc = 0; oc < o; oc++) for (let i = 0; i < ipg; i++) for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++) {
        filt[((oc * kh + y) * kw + xx) * ipg + i] = w[((oc * ipg + i) * kh + y) * kw + xx]!;
      }
    }
    const ft = this.constF32(`${name}/filter`, fShape, filt);
    const bt = this.constF32(`${name}/bias`, [o], bias ?? new Float32Array(o));
    if (depthwise) {
      const D = F.DepthwiseConv2DOptions;
      this.b.op(Op.DEPTHWISE_CONV_2D, [src.t, ft, bt], [out.t], Opt.DepthwiseConv2DOptions, [
        [D.padding, 'i8', mode], [D.stride_w, 'i32', sw], [D.stride_h, 'i32', sh], [D.depth_multiplier, 'i32', o / c],
        [D.fused_activation_function, 'i8', act], [D.dilation_w_factor, 'i32', dw], [D.dilation_h_factor, 'i32', dh],
      ], 2);
    } else {
      const C = F.Conv2DOptions;
      this.b.op(Op.CONV_2D, [src.t, ft, bt], [out.t], Opt.Conv2DOptions, [
        [C.padding, 'i8', mode], [C.stride_w, 'i32', sw], [C.stride_h, 'i32', sh],
        [C.fused_activation_function, 'i8', act], [C.dilation_w_factor, 'i32', dw], [C.dilation_h_factor, 'i32', dh],
      ]);
    }
    return out;
  }

  /** 1x1 convolution with a 2-D weight [O, I]. */
  pointwise(x: Val, w: Float32Array, o: number, i: number, bias: Float32Array | undefined, name: string, outName: string, act: number, node: GraphNode): Val {
    return this.conv(x, w, [o, i, 1, 1], bias, { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1] }, false, name, outName, act, node);
  }

  /** y = x W^T + b on rows [N, in]; W [out, in]. A rank-4 input is flattened in NCHW order first. */
  fullyConnected(x: Val, w: Float32Array, out: number, inF: number, bias: Float32Array | undefined, name: string, outName: string, act: number, node: GraphNode): Val {
    if (x.shape[x.shape.length - 1] !== inF && numel(x.shape) !== inF) fail(node, `input [${x.shape}] does not end in ${inF} features`);
    let src = x.t;
    let lead = x.shape.slice(0, -1);
    if (x.shape.length === 4) {
      src = this.toNchwOrder(x, name);
      lead = [x.shape[0]!];
    }
    if (x.shape.length > 2 && x.shape.length !== 4) unsupported(node, `dense on a rank-${x.shape.length} input`);
    const y = this.act(outName, [...lead, out]);
    const wt = this.constF32(`${name}/weights`, [out, inF], w);
    const bt = bias ? this.constF32(`${name}/bias`, [out], bias) : -1;
    const FC = F.FullyConnectedOptions;
    this.b.op(Op.FULLY_CONNECTED, [src, wt, bt], [y.t], Opt.FullyConnectedOptions, [
      [FC.fused_activation_function, 'i8', act], [FC.weights_format, 'i8', 0], [FC.keep_num_dims, 'bool', false],
    ]);
    return y;
  }

  pool(node: GraphNode, x: Val, outName: string, max: boolean): Val {
    const k = ints(node, 'kernel', []);
    if (k.length !== 2) unsupported(node, 'only 2-D pooling');
    const g = { strides: ints(node, 'strides', k), pads: ints(node, 'pads', [0, 0, 0, 0]), dilations: ints(node, 'dilations', [1, 1]) };
    if (g.dilations.some((d) => d !== 1)) unsupported(node, 'dilated pooling');
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const mode = paddingMode(h, w, k[0]!, k[1]!, g);
    const ceil = node.attrs.ceil_mode === 1;
    const cip = node.attrs.count_include_pad === 1;
    if (mode === undefined || (mode === Padding.SAME && !max && cip)) unsupported(node, `pads [${g.pads}] are neither VALID nor SAME for TFLite pooling`);
    const [sh, sw] = g.strides as [number, number];
    const floorOut = (i: number, kk: number, s: number): number => Math.floor((i - kk) / s) + 1;
    const oh = mode === Padding.SAME ? Math.ceil(h / sh) : floorOut(h, k[0]!, sh);
    const ow = mode === Padding.SAME ? Math.ceil(w / sw) : floorOut(w, k[1]!, sw);
    if (ceil && mode === Padding.VALID && (Math.ceil((h - k[0]!) / sh) + 1 !== oh || Math.ceil((w - k[1]!) / sw) + 1 !== ow)) {
      unsupported(node, 'ceil_mode pooling that adds a partial window');
    }
    const out = this.act(outName, [n, c, oh, ow]);
    const P = F.Pool2DOptions;
    this.b.op(max ? Op.MAX_POOL_2D : Op.AVERAGE_POOL_2D, [x.t], [out.t], Opt.Pool2DOptions, [
      [P.padding, 'i8', mode], [P.stride_w, 'i32', sw], [P.stride_h, 'i32', sh], [P.filter_width, 'i32', k[1]!],
      [P.filter_height, 'i32', k[0]!], [P.fused_activation_function, 'i8', Act.NONE],
    ]);
    return out;
  }

  /** A stored tensor as a constant operand of add/mul against a value of rank `rank` (NHWC when 4). */
  operand(node: GraphNode, name: string, rank: number): Val {
    const t = this.model.tensors.get(name);
    if (!t) fail(node, `input ${name} is neither a value nor a stored tensor`);
    const data = tensorToFloat32(t);
    let shape = [...t.shape];
    let out = data;
    if (rank === 4 && shape.length > 1) {
      while (shape.length < 4) shape.unshift(1);
      const [a, c, h, w] = shape as [number, number, number, number];
      out = new Float32Array(data.length);
      for (let i = 0; i < a; i++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
        out[((i * h + y) * w + x) * c + ch] = data[((i * c + ch) * h + y) * w + x]!;
      }
      shape = [a, c, h, w];
      return { t: this.constF32(name, toNhwc(shape), out, `operand:${name}`), shape };
    }
    return { t: this.constF32(name, shape, out, `operand:${name}`), shape };
  }
}

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
