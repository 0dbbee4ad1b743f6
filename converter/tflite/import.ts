// TFLite import: a .tflite flatbuffer -> the dense factorlite Model (runtime/ir.ts) the ONNX importer
// also produces, so convert / eval / run / hil work on it unchanged.
//
// Layout: TFLite activations are NHWC, the IR's are NCHW. A rank-4 TFLite tensor becomes the IR
// value with axes [N, C, H, W]; the graph input keeps the file's NHWC shape and one transpose
// follows it. Reshapes of rank-4 values go through NHWC order so the numbers match TFLite's.
// Int8 models: weights stay int8 with their per-channel scales (zero points must be 0, as TFLite's
// int8 spec requires of weights); other constants are dequantised; QUANTIZE/DEQUANTIZE become
// identities, so the imported graph runs in f32 on real values. Activation scales and zero points
// are kept in metadata ('tflite.activation_quant') for --quant int8.
import { f16BitsToF32 } from '../../runtime/format/dtype.js';
import type { AttrValue, GraphInput, GraphNode, Model, OpName, StoredTensor } from '../../runtime/ir.js';
import { numel } from '../../runtime/ir.js';
import { TfliteError } from './errors.js';
import { type TfliteFile, type TfliteOperator, type TfliteTensor, readTflite } from './read.js';
import { Act, OP_NAMES, Op, Padding, TensorType } from './schema.js';

export interface TfliteImportOptions {
  sourceName?: string;
}

const P1 = [0, 3, 1, 2]; // IR axis i is NHWC axis P1[i]
const Q1 = [0, 2, 3, 1]; // NHWC axis j is IR axis Q1[j]
const MAX_ELEMENTS = 1 << 28;

interface ConstVal {
  data: Float32Array;
  shape: number[];
  tensor: TfliteTensor;
}

class Importer {
  readonly nodes: GraphNode[] = [];
  readonly tensors = new Map<string, StoredTensor>();
  /** TFLite tensor index -> IR value name (rank-4 values in NCHW). */
  readonly values = new Map<number, string>();
  /** Pending spatial pads of a PAD output, folded into the conv or pool that reads it. */
  readonly pads = new Map<number, number[]>();
  private readonly names = new Set<string>();
  readonly actQuant: Record<string, [number, number]> = {};
  /** Outputs of DEQUANTIZE on a constant: the dequantised values. */
  readonly constOverride = new Map<number, ConstVal>();
  params = 0;

  constructor(readonly file: TfliteFile, readonly sg: TfliteFile['subgraphs'][number]) {}

  fresh(base: string): string {
    let name = base || 'value';
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  tensor(idx: number | undefined, op: TfliteOperator): TfliteTensor {
    const t = idx === undefined ? undefined : this.sg.tensors[idx];
    if (!t) throw new TfliteError('TFLITE_BAD_MODEL', `${this.where(op)}: tensor index ${idx} is out of range`);
    return t;
  }

  where(op: TfliteOperator): string {
    return `operator ${op.index} (${OP_NAMES[op.code] ?? `builtin ${op.code}`})`;
  }

  isConst(t: TfliteTensor): boolean {
    return !this.values.has(t.index) && (this.constOverride.has(t.index) || (this.file.buffers[t.buffer]?.length ?? 0) > 0);
  }

  /** A constant tensor's real values (dequantised). */
  constant(t: TfliteTensor, op: TfliteOperator): ConstVal {
    const hit = this.constOverride.get(t.index);
    if (hit) return hit;
    const buf = this.file.buffers[t.buffer];
    if (!buf || buf.length === 0) throw new TfliteError('TFLITE_BAD_MODEL', `${this.where(op)}: tensor "${t.name}" has no data`);
    if (t.shape.some((d) => d < 0)) throw new TfliteError('TFLITE_BAD_MODEL', `${this.where(op)}: constant "${t.name}" has shape [${t.shape}]`);
    const n = numel(t.shape);
    if (n > MAX_ELEMENTS) throw new TfliteError('TFLITE_BAD_MODEL', `${this.where(op)}: constant "${t.name}" has ${n} elements`);
    const size = { [TensorType.FLOAT32]: 4, [TensorType.FLOAT16]: 2, [TensorType.INT32]: 4, [TensorType.INT8]: 1, [TensorType.UINT8]: 1, [TensorType.INT16]: 2, [TensorType.INT64]: 8 }[t.type];
    if (size === undefined) throw new TfliteError('TFLITE_UNSUPPORTED', `${this.where(op)}: constant "${t.name}" has tensor type ${t.type}`);
    if (buf.length !== n * size) {
      throw new TfliteError('TFLITE_BAD_MODEL', `${this.where(op)}: constant "${t.name}" holds ${buf.length} bytes, shape [${t.shape}] needs ${n * size}`);
    }
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const raw = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      switch (t.type) {
        case TensorType.FLOAT32: raw[i] = dv.getFloat32(4 * i, true); break;
        case TensorType.FLOAT16: raw[i] = f16BitsToF32(dv.getUint16(2 * i, true)); break;
        case TensorType.INT32: raw[i] = dv.getInt32(4 * i, true); break;
        case TensorType.INT8: raw[i] = dv.getInt8(i); break;
        case TensorType.UINT8: raw[i] = dv.getUint8(i); break;
        case TensorType.INT16: raw[i] = dv.getInt16(2 * i, true); break;
        default: raw[i] = Number(dv.getBigInt64(8 * i, true)); break;
      }
    }
    const data = new Float32Array(n);
    const q = t.quant;
    if (q && t.type !== TensorType.FLOAT32 && t.type !== TensorType.FLOAT16) {
      const axis = q.scale.length > 1 ? q.axis : -1;
      const ch = axis >= 0 ? t.shape[axis] : 1;
      if (axis >= t.shape.length || ch !== q.scale.length) {
        throw new TfliteError('TFLITE_BAD_MODEL', `${this.where(op)}: "${t.name}" has ${q.scale.length} scales for axis ${q.axis} of [${t.shape}]`);
      }
      const inner = axis >= 0 ? numel(t.shape.slice(axis + 1)) : n;
      for (let i = 0; i < n; i++) {
        const c = axis >= 0 ? Math.floor(i / inner) % ch! : 0;
        data[i] = q.scale[c]! * (raw[i]! - (q.zeroPoint[c] ?? q.zeroPoint[0] ?? 0));
      }
    } else data.set(raw);
    return { data, shape: [...t.shape], tensor: t };
  }

  ints(t: TfliteTensor, op: TfliteOperator): number[] {
    return Array.from(this.constant(t, op).data);
  }

  /** The IR value of an activation input. */
  value(idx: number | undefined, op: TfliteOperator): { name: string; t: TfliteTensor } {
    const t = this.tensor(idx, op);
    const name = this.values.get(t.index);
    if (name === undefined) throw new TfliteError('TFLITE_BAD_MODEL', `${this.where(op)}: input "${t.name}" is not computed before it is read`);
    return { name, t };
  }

  store(base: string, shape: number[], data: Float32Array, quantOf?: TfliteTensor, axisMap?: (axis: number) => number): string {
    const name = this.fresh(base);
    const q = quantOf?.quant;
    const zpZero = q && q.zeroPoint.every((z) => z === 0);
    if (q && quantOf?.type === TensorType.INT8 && zpZero && axisMap) {
      // Keep the file's int8 codes and scales: the weights stay what the model was trained to.
      const axis = q.scale.length > 1 ? axisMap(q.axis) : undefined;
      const scale = Float32Array.from(q.scale);
      const codes = new Int8Array(data.length);
      const inner = axis !== undefined ? numel(shape.slice(axis + 1)) : data.length;
      for (let i = 0; i < data.length; i++) {
        const c = axis !== undefined ? Math.floor(i / inner) % shape[axis]! : 0;
        codes[i] = Math.max(-128, Math.min(127, Math.round(data[i]! / scale[c]!)));
      }
      this.tensors.set(name, { name, dtype: 'i8', shape, data: codes, quant: axis !== undefined ? { scale, axis } : { scale } });
    } else this.tensors.set(name, { name, dtype: 'f32', shape, data });
    this.params += data.length;
    return name;
  }

  emit(op: OpName, base: string, inputs: string[], attrs: Record<string, AttrValue> = {}, weights: Record<string, string> = {}): string {
    const out = this.fresh(base);
    this.nodes.push({ name: this.fresh(`${base}/${op}`), op, inputs, outputs: [out], attrs, weights });
    return out;
  }

  /** Binds a TFLite output tensor to an IR value, adding the fused activation if any. */
  bind(t: TfliteTensor, value: string, act: number, op: TfliteOperator): void {
    let v = value;
    const base = t.name || `t${t.index}`;
    if (act === Act.RELU) v = this.emit('relu', base, [v]);
    else if (act === Act.RELU6) v = this.emit('clip', base, [v], { min: 0, max: 6 });
    else if (act === Act.RELU_N1_TO_1) v = this.emit('clip', base, [v], { min: -1, max: 1 });
    else if (act === Act.TANH) v = this.emit('tanh', base, [v]);
    else if (act !== Act.NONE) throw new TfliteError('TFLITE_UNSUPPORTED', `${this.where(op)}: fused activation ${act}`);
    this.values.set(t.index, v);
    if (t.quant && t.quant.scale.length === 1) this.actQuant[v] = [t.quant.scale[0]!, t.quant.zeroPoint[0] ?? 0];
  }

  /** Explicit pads [top, left, bottom, right] for TFLite padding on an NHWC input. */
  padsFor(op: TfliteOperator, inT: TfliteTensor, kh: number, kw: number, sh: number, sw: number, dh: number, dw: number): number[] {
    const extra = this.pads.get(inT.index) ?? [0, 0, 0, 0];
    if (op.options.padding === Padding.VALID) return extra;
    if (op.options.padding !== Padding.SAME) throw new TfliteError('TFLITE_UNSUPPORTED', `${this.where(op)}: padding ${op.options.padding}`);
    if (this.pads.has(inT.index)) throw new TfliteError('TFLITE_UNSUPPORTED', `${this.where(op)}: SAME padding after PAD`);
    const [, h, w] = inT.shape as [number, number, number];
    const one = (i: number, k: number, s: number, d: number): [number, number] => {
      const out = Math.ceil(i / s);
      const total = Math.max((out - 1) * s + (k - 1) * d + 1 - i, 0);
      return [Math.floor(total / 2), total - Math.floor(total / 2)];
    };
    const [t, b] = one(h, kh, sh, dh);
    const [l, r] = one(w, kw, sw, dw);
    return [t, l, b, r];
  }

  /** The NHWC-ordered IR value of a rank-4 input (for reshapes), else the value itself. */
  nhwcOrder(v: string, t: TfliteTensor): string {
    if (t.shape.length !== 4) return v;
    const [, h, w, c] = t.shape as [number, number, number, number];
    if (c === 1 || h * w === 1) return v;
    // transpose(transpose(x, a), Q1) is x when the two cancel (a TRANSPOSE to NCHW before a flatten).
    const prev = this.nodes.find((n) => n.outputs[0] === v);
    const a = prev?.op === 'transpose' ? prev.attrs.perm : undefined;
    if (prev && Array.isArray(a) && Q1.every((q, i) => a[q] === i)) return prev.inputs[0]!;
    return this.emit('transpose', `${t.name}/nhwc`, [v], { perm: Q1 });
  }
}

function need(cond: boolean, imp: Importer, op: TfliteOperator, msg: string): asserts cond {
  if (!cond) throw new TfliteError('TFLITE_BAD_MODEL', `${imp.where(op)}: ${msg}`);
}

function importOp(imp: Importer, op: TfliteOperator): void {
  const o = op.options;
  const outT = imp.tensor(op.outputs[0], op);
  const base = outT.name || `t${outT.index}`;
  const act = typeof o.fused_activation_function === 'number' ? o.fused_activation_function : Act.NONE;
  const int = (k: string, d: number): number => (typeof o[k] === 'number' ? (o[k] as number) : d);
  switch (op.code) {
    case Op.CONV_2D: case Op.DEPTHWISE_CONV_2D: {
      const x = imp.value(op.inputs[0], op);
      const wT = imp.tensor(op.inputs[1], op);
      need(x.t.shape.length === 4 && wT.shape.length === 4, imp, op, 'input and filter must be rank 4');
      const w = imp.constant(wT, op);
      const c = x.t.shape[3]!;
      const dw = op.code === Op.DEPTHWISE_CONV_2D;
      let weight: Float32Array;
      let shape: number[];
      let group = 1;
      let wAxis: (a: number) => number;
      if (dw) {
        const [, kh, kw, oc] = w.shape as [number, number, number, number];
        need(oc % c === 0, imp, op, `depthwise filter has ${oc} channels for ${c} inputs`);
        shape = [oc, 1, kh, kw];
        weight = new Float32Array(oc * kh * kw);
        for (let ch = 0; ch < oc; ch++) for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++) weight[(ch * kh + y) * kw + xx] = w.data[(y * kw + xx) * oc + ch]!;
        group = c;
        wAxis = (a) => (a === 3 ? 0 : -1);
      } else {
        const [oc, kh, kw, ic] = w.shape as [number, number, number, number];
        need(ic === c, imp, op, `filter reads ${ic} channels, input has ${c}`);
        shape = [oc, ic, kh, kw];
        weight = new Float32Array(oc * ic * kh * kw);
        for (let ch = 0; ch < oc; ch++) for (let i = 0; i < ic; i++) for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++) {
          weight[((ch * ic + i) * kh + y) * kw + xx] = w.data[((ch * kh + y) * kw + xx) * ic + i]!;
        }
        wAxis = (a) => (a === 0 ? 0 : -1);
      }
      const [sh, sw] = [int('stride_h', 1), int('stride_w', 1)];
      const [dh, dwf] = [int('dilation_h_factor', 1), int('dilation_w_factor', 1)];
      need(sh > 0 && sw > 0 && dh > 0 && dwf > 0, imp, op, 'strides and dilations must be positive');
      const pads = imp.padsFor(op, x.t, shape[2]!, shape[3]!, sh, sw, dh, dwf);
      const weights: Record<string, string> = { weight: imp.store(`${base}/weight`, shape, weight, wT, (a) => { const m = wAxis(a); if (m < 0) throw new TfliteError('TFLITE_UNSUPPORTED', `${imp.where(op)}: filter quantised along axis ${a}`); return m; }) };
      const bT = op.inputs[2] !== undefined && op.inputs[2] >= 0 ? imp.tensor(op.inputs[2], op) : undefined;
      if (bT) weights.bias = imp.store(`${base}/bias`, [shape[0]!], imp.constant(bT, op).data);
      const y = imp.emit('conv2d', base, [x.name], { strides: [sh, sw], pads, dilations: [dh, dwf], group }, weights);
      imp.bind(outT, y, act, op);
      return;
    }
    case Op.FULLY_CONNECTED: {
      const x = imp.value(op.inputs[0], op);
      const wT = imp.tensor(op.inputs[1], op);
      need(wT.shape.length === 2, imp, op, 'weights must be rank 2');
      need(int('weights_format', 0) === 0, imp, op, 'shuffled weights format');
      const w = imp.constant(wT, op);
      const [out, inF] = w.shape as [number, number];
      let src = x.name;
      const xs = x.t.shape;
      if (xs.length !== 2 || xs[1] !== inF) {
        need(numel(xs) % inF === 0, imp, op, `input [${xs}] does not split into rows of ${inF}`);
        need(o.keep_num_dims !== true, imp, op, 'keep_num_dims with a reshaped input');
        src = imp.emit('reshape', `${base}/rows`, [imp.nhwcOrder(x.name, x.t)], { shape: [-1, inF] });
      }
      const weights: Record<string, string> = { weight: imp.store(`${base}/weight`, [out, inF], w.data, wT, (a) => a) };
      const bT = op.inputs[2] !== undefined && op.inputs[2] >= 0 ? imp.tensor(op.inputs[2], op) : undefined;
      if (bT) weights.bias = imp.store(`${base}/bias`, [out], imp.constant(bT, op).data);
      imp.bind(outT, imp.emit('dense', base, [src], {}, weights), act, op);
      return;
    }
    case Op.MAX_POOL_2D: case Op.AVERAGE_POOL_2D: {
      const x = imp.value(op.inputs[0], op);
      need(x.t.shape.length === 4, imp, op, 'input must be rank 4');
      const [kh, kw, sh, sw] = [int('filter_height', 0), int('filter_width', 0), int('stride_h', 1), int('stride_w', 1)];
      need(kh > 0 && kw > 0 && sh > 0 && sw > 0, imp, op, 'filter and strides must be positive');
      const pads = imp.padsFor(op, x.t, kh, kw, sh, sw, 1, 1);
      const max = op.code === Op.MAX_POOL_2D;
      const attrs: Record<string, AttrValue> = { kernel: [kh, kw], strides: [sh, sw], pads, ceil_mode: 0 };
      if (max) attrs.dilations = [1, 1];
      else attrs.count_include_pad = imp.pads.has(x.t.index) ? 1 : 0;
      imp.bind(outT, imp.emit(max ? 'max_pool' : 'avg_pool', base, [x.name], attrs), act, op);
      return;
    }
    case Op.ADD: case Op.MUL: {
      const ins = op.inputs.slice(0, 2).map((i) => imp.tensor(i, op));
      need(ins.length === 2, imp, op, 'needs two inputs');
      const rank = outT.shape.length;
      const names = ins.map((t) => {
        if (!imp.isConst(t)) return imp.value(t.index, op).name;
        const c = imp.constant(t, op);
        let shape = c.shape;
        let data = c.data;
        if (rank === 4 && shape.length > 1) {
          // NHWC-broadcast constant -> NCHW.
          while (shape.length < 4) shape = [1, ...shape];
          const [a, h, w, ch] = shape as [number, number, number, number];
          data = new Float32Array(c.data.length);
          for (let i = 0; i < a; i++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) for (let k = 0; k < ch; k++) {
            data[((i * ch + k) * h + y) * w + xx] = c.data[((i * h + y) * w + xx) * ch + k]!;
          }
          shape = [a, ch, h, w];
        } else if (rank === 4 && shape.length === 1 && shape[0]! > 1) {
          shape = [shape[0]!, 1, 1];
        }
        return imp.store(`${base}/operand`, shape.length === 0 ? [1] : shape, data);
      });
      imp.bind(outT, imp.emit(op.code === Op.ADD ? 'add' : 'mul', base, names), act, op);
      return;
    }
    case Op.RELU: case Op.RELU6: case Op.RELU_N1_TO_1: case Op.TANH: case Op.LOGISTIC: case Op.LEAKY_RELU: {
      const x = imp.value(op.inputs[0], op);
      let y: string;
      if (op.code === Op.RELU) y = imp.emit('relu', base, [x.name]);
      else if (op.code === Op.RELU6) y = imp.emit('clip', base, [x.name], { min: 0, max: 6 });
      else if (op.code === Op.RELU_N1_TO_1) y = imp.emit('clip', base, [x.name], { min: -1, max: 1 });
      else if (op.code === Op.TANH) y = imp.emit('tanh', base, [x.name]);
      else if (op.code === Op.LOGISTIC) y = imp.emit('sigmoid', base, [x.name]);
      else y = imp.emit('leaky_relu', base, [x.name], { alpha: typeof o.alpha === 'number' ? o.alpha : 0.2 });
      imp.bind(outT, y, Act.NONE, op);
      return;
    }
    case Op.SOFTMAX: {
      const x = imp.value(op.inputs[0], op);
      const beta = typeof o.beta === 'number' ? o.beta : 1;
      let src = x.name;
      if (beta !== 1) src = imp.emit('mul', `${base}/beta`, [src, imp.store(`${base}/beta`, [1], Float32Array.of(beta))]);
      imp.bind(outT, imp.emit('softmax', base, [src], { axis: x.t.shape.length === 4 ? 1 : -1 }), Act.NONE, op);
      return;
    }
    case Op.RESHAPE: case Op.SQUEEZE: case Op.EXPAND_DIMS: {
      const x = imp.value(op.inputs[0], op);
      const out = outT.shape;
      need(out.length > 0 && out.every((d) => d > 0), imp, op, `output shape [${out}] must be known`);
      need(numel(out) === numel(x.t.shape), imp, op, `reshape [${x.t.shape}] to [${out}] changes the element count`);
      const src = imp.nhwcOrder(x.name, x.t);
      const target = [-1, ...out.slice(1)];
      let y = imp.emit('reshape', out.length === 4 ? `${base}/nhwc` : base, [src], { shape: target });
      if (out.length === 4 && !(out[3] === 1 || out[1]! * out[2]! === 1)) y = imp.emit('transpose', base, [y], { perm: P1 });
      else if (out.length === 4) y = imp.emit('reshape', base, [y], { shape: [-1, out[3]!, out[1]!, out[2]!] });
      imp.bind(outT, y, Act.NONE, op);
      return;
    }
    case Op.TRANSPOSE: {
      const x = imp.value(op.inputs[0], op);
      const perm = imp.ints(imp.tensor(op.inputs[1], op), op);
      need(perm.length === x.t.shape.length, imp, op, 'perm length differs from the rank');
      const p = perm.length === 4 ? [0, 1, 2, 3].map((i) => Q1[perm[P1[i]!]!]!) : perm;
      imp.bind(outT, imp.emit('transpose', base, [x.name], { perm: p }), Act.NONE, op);
      return;
    }
    case Op.MEAN: {
      const x = imp.value(op.inputs[0], op);
      const axes = imp.ints(imp.tensor(op.inputs[1], op), op).map((a) => (a < 0 ? a + x.t.shape.length : a)).sort();
      if (x.t.shape.length !== 4 || axes.join() !== '1,2') throw new TfliteError('TFLITE_UNSUPPORTED', `${imp.where(op)}: MEAN over axes [${axes}] (only the spatial axes of a rank-4 input)`);
      let y = imp.emit('global_avg_pool', o.keep_dims === true ? base : `${base}/pool`, [x.name]);
      if (o.keep_dims !== true) y = imp.emit('flatten', base, [y], { axis: 1 });
      imp.bind(outT, y, Act.NONE, op);
      return;
    }
    case Op.PAD: {
      const x = imp.value(op.inputs[0], op);
      const p = imp.ints(imp.tensor(op.inputs[1], op), op);
      if (x.t.shape.length !== 4 || p.length !== 8 || p[0] !== 0 || p[1] !== 0 || p[6] !== 0 || p[7] !== 0 || p.some((v) => v < 0)) {
        throw new TfliteError('TFLITE_UNSUPPORTED', `${imp.where(op)}: PAD [${p}] (only zero spatial padding of a rank-4 value before a conv or pool)`);
      }
      // Folded into the reader (conv or pool, checked there); the value itself stays unpadded.
      imp.values.set(outT.index, x.name);
      imp.pads.set(outT.index, [p[2]!, p[4]!, p[3]!, p[5]!]);
      return;
    }
    case Op.QUANTIZE: case Op.DEQUANTIZE: {
      const x = imp.tensor(op.inputs[0], op);
      if (imp.isConst(x)) {
        // A dequantised constant weight (float model with int8/f16 storage): keep its values.
        imp.constOverride.set(outT.index, imp.constant(x, op));
        return;
      }
      imp.bind(outT, imp.value(x.index, op).name, Act.NONE, op);
      return;
    }
    case Op.CONCATENATION: {
      const ins = op.inputs.map((i) => imp.tensor(i, op));
      need(ins.length > 0, imp, op, 'no inputs');
      const rank = outT.shape.length;
      const raw = int('axis', 0);
      const a = raw < 0 ? raw + rank : raw;
      need(a >= 0 && a < rank, imp, op, `axis ${raw} of a rank-${rank} output`);
      const names = ins.map((t) => {
        if (!imp.isConst(t)) return imp.value(t.index, op).name;
        need(t.shape.length !== 4, imp, op, 'a rank-4 constant input');
        return imp.store(`${base}/operand`, t.shape, imp.constant(t, op).data);
      });
      imp.bind(outT, imp.emit('concat', base, names, { axis: rank === 4 ? Q1[a]! : a }), act, op);
      return;
    }
    case Op.BATCH_MATMUL: {
      need(o.adj_x !== true && o.adj_y !== true, imp, op, 'adjoint operands');
      // Either operand may be a constant (a factor of an exported tensor-network layer): stored as is.
      const names = [0, 1].map((k) => {
        const t = imp.tensor(op.inputs[k], op);
        if (t.shape.length < 2 || t.shape.length > 5) throw new TfliteError('TFLITE_UNSUPPORTED', `${imp.where(op)}: operand of rank ${t.shape.length} (2 to 5 only)`);
        if (t.shape.length === 4) throw new TfliteError('TFLITE_UNSUPPORTED', `${imp.where(op)}: rank-4 operands (read as NHWC images here)`);
        if (!imp.isConst(t)) return imp.value(t.index, op).name;
        const c = imp.constant(t, op);
        return imp.store(`${base}/operand${k}`, c.shape, c.data, t, (a) => a);
      });
      imp.bind(outT, imp.emit('matmul', base, names), Act.NONE, op);
      return;
    }
    default: {
      const name = op.customCode ? `custom op "${op.customCode}"` : OP_NAMES[op.code] ?? `builtin operator ${op.code}`;
      throw new TfliteError('TFLITE_UNSUPPORTED_OP', `unsupported TFLite ${name} (operator ${op.index})`);
    }
  }
}

/** Imports the first subgraph of a .tflite file as a dense Model. */
export function importTflite(bytes: Uint8Array, opts: TfliteImportOptions = {}): Model {
  return importTfliteValues(bytes, opts).model;
}

/** As importTflite, plus the IR value computing each TFLite activation tensor (calibration). */
export function importTfliteValues(bytes: Uint8Array, opts: TfliteImportOptions = {}): { model: Model; values: Map<number, string> } {
  const file = readTflite(bytes);
  const sg = file.subgraphs[0];
  if (!sg) throw new TfliteError('TFLITE_BAD_MODEL', 'the model has no subgraph');
  const imp = new Importer(file, sg);
  try {
    return { model: build(imp, opts), values: imp.values };
  } catch (e) {
    if (e instanceof TfliteError) throw e;
    throw new TfliteError('TFLITE_BAD_MODEL', `malformed TFLite graph: ${(e as Error).message}`, { cause: e });
  }
}

function build(imp: Importer, opts: TfliteImportOptions): Model {
  const { sg } = imp;
  const inputs: GraphInput[] = [];
  for (const idx of sg.inputs) {
    const t = sg.tensors[idx];
    if (!t) throw new TfliteError('TFLITE_BAD_MODEL', `subgraph input ${idx} is out of range`);
    if (t.type !== TensorType.FLOAT32 && t.type !== TensorType.INT8 && t.type !== TensorType.UINT8) {
      throw new TfliteError('TFLITE_UNSUPPORTED', `input "${t.name}" has tensor type ${t.type}`);
    }
    if (t.shape.length === 0 || t.shape.length > 6 || t.shape.slice(1).some((d) => d <= 0)) {
      throw new TfliteError('TFLITE_BAD_MODEL', `input "${t.name}" has shape [${t.shape}]`);
    }
    const name = imp.fresh(t.name || `input${idx}`);
    inputs.push({ name, shape: [-1, ...t.shape.slice(1)] });
    const v = t.shape.length === 4 ? imp.emit('transpose', `${name}/nchw`, [name], { perm: P1 }) : name;
    imp.values.set(idx, v);
  }
  if (inputs.length === 0) throw new TfliteError('TFLITE_BAD_MODEL', 'the subgraph has no input');
  if (sg.operators.length > 100_000) throw new TfliteError('TFLITE_BAD_MODEL', `${sg.operators.length} operators`);
  // Graph outputs keep the file's tensor names; inner values take suffixed ones.
  const outNames = sg.outputs.map((idx) => imp.fresh(sg.tensors[idx]?.name || `output${idx}`));
  for (const op of sg.operators) {
    if (op.outputs.length !== 1) throw new TfliteError('TFLITE_UNSUPPORTED', `${imp.where(op)}: ${op.outputs.length} outputs`);
    importOp(imp, op);
  }
  const outputs = sg.outputs.map((idx, k) => {
    const t = sg.tensors[idx];
    const v = imp.values.get(idx);
    if (!t || v === undefined) throw new TfliteError('TFLITE_BAD_MODEL', `subgraph output ${idx} is never computed`);
    if (imp.pads.has(idx)) throw new TfliteError('TFLITE_UNSUPPORTED', `output "${t.name}" is the result of PAD`);
    // The IR output keeps the TFLite layout: a rank-4 output goes back to NHWC.
    const name = outNames[k]!;
    imp.nodes.push({ name: imp.fresh(`${name}/out`), op: t.shape.length === 4 ? 'transpose' : 'identity', inputs: [v], outputs: [name], attrs: t.shape.length === 4 ? { perm: Q1 } : {}, weights: {} });
    return name;
  });
  for (const [idx] of imp.pads) {
    // A PAD whose result something other than a conv or pool read would have been lost.
    const readers = sg.operators.filter((op) => op.inputs[0] === idx);
    if (readers.some((op) => ![Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.MAX_POOL_2D, Op.AVERAGE_POOL_2D].includes(op.code as 3))) {
      throw new TfliteError('TFLITE_UNSUPPORTED', `PAD output "${sg.tensors[idx]?.name}" is read by an op other than a conv or pool`);
    }
  }
  // Keep only the nodes that feed an output.
  const live = new Set(outputs);
  const kept: GraphNode[] = [];
  for (let i = imp.nodes.length - 1; i >= 0; i--) {
    const node = imp.nodes[i]!;
    if (!node.outputs.some((o) => live.has(o))) continue;
    kept.unshift(node);
    for (const v of node.inputs) live.add(v);
  }
  for (const [name] of imp.tensors) {
    if (!kept.some((n) => n.inputs.includes(name) || Object.values(n.weights).includes(name))) imp.tensors.delete(name);
  }
  imp.nodes.splice(0, imp.nodes.length, ...kept);
  const metadata: Record<string, unknown> = {
    'source.model': opts.sourceName ?? '',
    'source.producer': imp.file.description,
    'source.format': 'tflite',
    'source.params': imp.params,
  };
  if (Object.keys(imp.actQuant).length > 0) metadata['tflite.activation_quant'] = imp.actQuant;
  return { graph: { inputs, outputs, nodes: imp.nodes }, tensors: imp.tensors, metadata };
}
