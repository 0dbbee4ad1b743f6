// The TFLite export's emitter: the model's values as TFLite tensors (NCHW IR shapes kept beside the
// NHWC TFLite ones), constant weights, and the builtin chains each layer kind is written as
// (tflite.ts walks the graph and picks the chain).
import { tensorToFloat32 } from '../../runtime/format/dtype.js';
import type { GraphNode, Model, StoredTensor } from '../../runtime/ir.js';
import { numel } from '../../runtime/ir.js';
import { Act, F, Op, Opt, Padding } from '../tflite/schema.js';
import { ExportError } from './errors.js';
import { TfliteBuilder } from './tfliteBuilder.js';
export interface Val {
  /** TFLite tensor index. */
  t: number;
  /** IR shape at batch 1 (NCHW when rank 4). */
  shape: number[];
}

export interface ConvGeom {
  strides: number[];
  pads: number[];
  dilations: number[];
}

export const toNhwc = (s: number[]): number[] => (s.length === 4 ? [s[0]!, s[2]!, s[3]!, s[1]!] : [...s]);

export function fail(node: GraphNode, msg: string): never {
  throw new ExportError('EXPORT_BAD_MODEL', `tflite export: node ${node.name} (${node.op}): ${msg}`);
}

export function unsupported(node: GraphNode, msg: string): never {
  throw new ExportError('EXPORT_UNSUPPORTED', `tflite export: node ${node.name} (${node.op}): ${msg}`);
}

/** TFLite's SAME padding for one spatial axis: [before, after]. */
export function samePads(inSize: number, k: number, s: number, d: number): [number, number] {
  const out = Math.ceil(inSize / s);
  const total = Math.max((out - 1) * s + (k - 1) * d + 1 - inSize, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/** VALID or SAME when the explicit pads [top, left, bottom, right] are one of them, else undefined. */
export function paddingMode(h: number, w: number, kh: number, kw: number, g: ConvGeom): number | undefined {
  const [t, l, b, r] = g.pads as [number, number, number, number];
  if (t === 0 && l === 0 && b === 0 && r === 0) return Padding.VALID;
  const [st, sb] = samePads(h, kh, g.strides[0]!, g.dilations[0]!);
  const [sl, sr] = samePads(w, kw, g.strides[1]!, g.dilations[1]!);
  if (t === st && b === sb && l === sl && r === sr) return Padding.SAME;
  return undefined;
}

export function ints(node: GraphNode, key: string, def: number[]): number[] {
  const v = node.attrs[key];
  if (v === undefined) return def;
  if (!Array.isArray(v)) fail(node, `attribute ${key} must be a list`);
  return v;
}

export function convGeom(node: GraphNode): ConvGeom {
  return { strides: ints(node, 'strides', [1, 1]), pads: ints(node, 'pads', [0, 0, 0, 0]), dilations: ints(node, 'dilations', [1, 1]) };
}

export interface TfliteExportResult {
  bytes: Uint8Array;
  operators: number;
  tensors: number;
  /** Parameters stored in constant tensors. */
  params: number;
}

export class TfliteExporter {
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

