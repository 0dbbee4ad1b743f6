// Fully integer TFLite export (`export -o m.tflite --int8 --calib DATA`), following TFLite's int8
// quantisation spec: int8 activations with a per-tensor scale and zero point, int8 weights
// symmetric per output channel (conv, depthwise, fully connected), int32 biases with
// scale = input scale x weight scale. The interface stays float32: a QUANTIZE after each input and
// a DEQUANTIZE before each output, so callers feed and read real values.
//
// Activation ranges come from calibration: the float32 export is imported back (converter/tflite)
// and run by the factorlite runtime on the calibration set, which gives every TFLite tensor's
// min and max (a rank-4 tensor's NCHW twin has the same range).
import type { Tensor } from '../../runtime/ir.js';
import { numel } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import { imagesAsInput } from '../data/layout.js';
import { importTfliteValues } from '../tflite/import.js';
import { Op, TensorType } from '../tflite/schema.js';
import { ExportError } from './errors.js';
import { buildTflite, type TfliteExportResult } from './tflite.js';
import type { QuantParams, TensorSpec } from './tfliteBuilder.js';
import type { Model } from '../../runtime/ir.js';

export interface Int8ExportOptions {
  /** Calibration images in dataset layout [N, C, H, W] (or rows [N, F]), batch first. */
  calibration: Tensor;
  /** Samples per calibration run. */
  batch?: number;
}

/** Ops whose output must keep the input's scale and zero point (TFLite int8 kernels require it). */
const SAME_QUANT = new Set<number>([Op.MAX_POOL_2D, Op.AVERAGE_POOL_2D, Op.RESHAPE, Op.TRANSPOSE, Op.PAD, Op.SQUEEZE, Op.MEAN]);
/** Op versions whose kernels accept int8 (TFLite's op version table). */
const INT8_VERSIONS: Record<number, number> = {
  [Op.CONV_2D]: 3, [Op.DEPTHWISE_CONV_2D]: 3, [Op.FULLY_CONNECTED]: 4, [Op.ADD]: 2, [Op.MUL]: 2, [Op.AVERAGE_POOL_2D]: 2,
  [Op.MAX_POOL_2D]: 2, [Op.SOFTMAX]: 2, [Op.LOGISTIC]: 2, [Op.TANH]: 2, [Op.TRANSPOSE]: 2, [Op.PAD]: 2, [Op.MEAN]: 2,
  [Op.RELU]: 2, [Op.RELU6]: 2, [Op.LEAKY_RELU]: 2, [Op.DEQUANTIZE]: 2, [Op.QUANTIZE]: 2, [Op.BATCH_MATMUL]: 2,
};

/** Asymmetric int8 parameters covering [min, max] and 0. */
export function activationQuant(min: number, max: number): QuantParams {
  const lo = Math.min(min, 0);
  let hi = Math.max(max, 0);
  if (!(hi - lo > 1e-12)) hi = lo + 1e-6;
  const scale = (hi - lo) / 255;
  const zp = Math.max(-128, Math.min(127, Math.round(-128 - lo / scale)));
  return { scale: [scale], zeroPoint: [zp] };
}

function f32Of(b: Uint8Array): Float32Array {
  const copy = b.slice();
  return new Float32Array(copy.buffer, 0, copy.length / 4);
}

/** Symmetric int8 weights, per channel along `axis` (or per tensor when axis is undefined). */
function quantWeights(data: Float32Array, shape: number[], axis: number | undefined): { codes: Int8Array; q: QuantParams } {
  const ch = axis === undefined ? 1 : shape[axis]!;
  const inner = axis === undefined ? data.length : numel(shape.slice(axis + 1));
  const chanOf = (i: number): number => (axis === undefined ? 0 : Math.floor(i / inner) % ch);
  const maxAbs = new Float64Array(ch);
  for (let i = 0; i < data.length; i++) maxAbs[chanOf(i)] = Math.max(maxAbs[chanOf(i)]!, Math.abs(data[i]!));
  const scale = Array.from(maxAbs, (m) => (m > 0 ? m / 127 : 1));
  const codes = new Int8Array(data.length);
  for (let i = 0; i < data.length; i++) codes[i] = Math.max(-127, Math.min(127, Math.round(data[i]! / scale[chanOf(i)]!)));
  return { codes, q: axis === undefined ? { scale, zeroPoint: [0] } : { scale, zeroPoint: scale.map(() => 0), axis } };
}

export function exportTfliteInt8(model: Model, opts: Int8ExportOptions): TfliteExportResult {
  const built = buildTflite(model);
  const { b } = built;
  const f32Bytes = b.finish(built.inputs, built.outputs, built.description);

  // Calibration: every tensor's range, from the runtime on the imported float32 export.
  const { model: imported, values } = importTfliteValues(f32Bytes);
  const session = Session.create(imported);
  const x = opts.calibration;
  const n = x.shape[0] ?? 0;
  if (n < 1) throw new ExportError('EXPORT_BAD_OPTIONS', 'tflite int8 export: the calibration set is empty');
  const per = numel(x.shape.slice(1));
  const inName = imported.graph.inputs[0]!.name;
  const inShape = imported.graph.inputs[0]!.shape.slice(1);
  if (numel(inShape) !== per) throw new ExportError('EXPORT_BAD_OPTIONS', `tflite int8 export: calibration samples of shape [${x.shape.slice(1)}] do not fit input [${inShape}]`);
  const lo = new Map<string, number>();
  const hi = new Map<string, number>();
  const step = opts.batch ?? 64;
  for (let s = 0; s < n; s += step) {
    const k = Math.min(step, n - s);
    const feed = imagesAsInput(imported.graph.inputs[0]!.shape, x.shape.slice(1), x.data.subarray(s * per, (s + k) * per), k);
    const all = session.run({ [inName]: { shape: [k, ...inShape], data: feed.data } }, true);
    for (const [name, t] of Object.entries(all)) {
      let a = lo.get(name) ?? Infinity;
      let z = hi.get(name) ?? -Infinity;
      for (const v of t.data) {
        if (v < a) a = v;
        if (v > z) z = v;
      }
      lo.set(name, a);
      hi.set(name, z);
    }
  }
  session.dispose();
  const rangeOf = (idx: number): [number, number] => {
    const v = values.get(idx);
    const a = v === undefined ? undefined : lo.get(v);
    if (v === undefined || a === undefined) throw new ExportError('EXPORT_BAD_MODEL', `tflite int8 export: no calibration range for tensor ${b.tensors[idx]?.name}`);
    return [a, hi.get(v)!];
  };

  const T = b.tensors;
  const setConst = (idx: number, type: number, bytes: Uint8Array, q: QuantParams): void => {
    const t = T[idx]!;
    t.type = type;
    t.quant = q;
    b.buffers[t.buffer] = bytes;
  };
  const act = (idx: number, q: QuantParams): void => {
    T[idx]!.type = TensorType.INT8;
    T[idx]!.quant = q;
  };
  const quantOf = (idx: number): QuantParams => {
    const q = T[idx]?.quant;
    if (!q) throw new ExportError('EXPORT_BAD_MODEL', `tflite int8 export: tensor ${T[idx]?.name} is read before it is quantised`);
    return q;
  };
  const isConst = (idx: number): boolean => (b.buffers[T[idx]!.buffer]?.length ?? 0) > 0;

  // Float interface: QUANTIZE after each input, DEQUANTIZE before each output.
  const rename = (from: number, to: number, where: 'inputs' | 'outputs'): void => {
    for (const o of b.operators) o[where] = o[where].map((i) => (i === from ? to : i));
  };
  const pre: typeof b.operators = [];
  for (const i of built.inputs) {
    const t = T[i]!;
    const qi = b.activation(`${t.name}/int8`, t.shape);
    rename(i, qi, 'inputs');
    values.set(qi, values.get(i)!);
    act(qi, activationQuant(...rangeOf(i)));
    pre.push({ opcode: -1, inputs: [i], outputs: [qi], optionsType: 0, options: [] });
  }
  const post: Array<[number, number]> = [];
  for (const o of built.outputs) {
    const t = T[o]!;
    const qo = b.activation(`${t.name}/int8`, t.shape);
    rename(o, qo, 'outputs');
    rename(o, qo, 'inputs');
    values.set(qo, values.get(o)!);
    post.push([qo, o]);
  }

  const ops = [...b.operators];
  for (const op of ops) {
    const code = b.opcodeOf(op);
    const out = op.outputs[0]!;
    const [i0, i1, i2] = op.inputs as [number, number | undefined, number | undefined];
    if (code === Op.CONV_2D || code === Op.DEPTHWISE_CONV_2D || code === Op.FULLY_CONNECTED) {
      const w = T[i1!]!;
      const axis = code === Op.CONV_2D ? 0 : code === Op.DEPTHWISE_CONV_2D ? 3 : 0;
      const { codes, q } = quantWeights(f32Of(b.buffers[w.buffer]!), w.shape, axis);
      setConst(i1!, TensorType.INT8, new Uint8Array(codes.buffer), q);
      if (i2 !== undefined && i2 >= 0) {
        const inScale = quantOf(i0).scale[0]!;
        const bias = f32Of(b.buffers[T[i2]!.buffer]!);
        const scales = Array.from(bias, (_, c) => inScale * q.scale[q.scale.length === 1 ? 0 : c]!);
        const codes32 = Int32Array.from(bias, (v, c) => Math.max(-2147483647, Math.min(2147483647, Math.round(v / scales[c]!))));
        setConst(i2, TensorType.INT32, new Uint8Array(codes32.buffer),
          q.axis === undefined ? { scale: [scales[0]!], zeroPoint: [0] } : { scale: scales, zeroPoint: scales.map(() => 0), axis: 0 });
      }
      act(out, activationQuant(...rangeOf(out)));
    } else if (code === Op.BATCH_MATMUL) {
      // TFLite's int8 BATCH_MATMUL takes one scale per operand: a constant factor is symmetric per tensor.
      for (const i of op.inputs) {
        if (!isConst(i)) continue;
        const w = T[i]!;
        const { codes, q } = quantWeights(f32Of(b.buffers[w.buffer]!), w.shape, undefined);
        setConst(i, TensorType.INT8, new Uint8Array(codes.buffer), q);
      }
      act(out, activationQuant(...rangeOf(out)));
    } else if (SAME_QUANT.has(code)) {
      act(out, quantOf(i0));
    } else if (code === Op.SOFTMAX || code === Op.LOGISTIC) {
      act(out, { scale: [1 / 256], zeroPoint: [-128] });
    } else if (code === Op.TANH) {
      act(out, { scale: [1 / 128], zeroPoint: [0] });
    } else if (code === Op.ADD || code === Op.MUL) {
      for (const i of op.inputs) {
        if (!isConst(i)) continue;
        const data = f32Of(b.buffers[T[i]!.buffer]!);
        const q = activationQuant(Math.min(...data), Math.max(...data));
        const codes = Int8Array.from(data, (v) => Math.max(-128, Math.min(127, Math.round(v / q.scale[0]! + q.zeroPoint[0]!))));
        setConst(i, TensorType.INT8, new Uint8Array(codes.buffer), q);
      }
      act(out, activationQuant(...rangeOf(out)));
    } else if (code === Op.RELU || code === Op.RELU6 || code === Op.RELU_N1_TO_1 || code === Op.LEAKY_RELU) {
      act(out, activationQuant(...rangeOf(out)));
    } else {
      throw new ExportError('EXPORT_UNSUPPORTED', `tflite int8 export: builtin ${code} (${T[out]?.name}) has no int8 form here`);
    }
    b.setVersion(code, INT8_VERSIONS[code] ?? 1);
  }
  // Pure-float tensors left (unused constants) would be harmless; check the activations.
  const floatActs = T.filter((t: TensorSpec, i) => t.type === TensorType.FLOAT32 && !built.inputs.includes(i) && !built.outputs.includes(i));
  if (floatActs.length > 0) throw new ExportError('EXPORT_BAD_MODEL', `tflite int8 export: tensors left in float: ${floatActs.map((t) => t.name).join(', ')}`);

  // Splice the interface ops in: QUANTIZE first, DEQUANTIZE last.
  const body = b.operators.splice(0);
  for (const p of pre) b.op(Op.QUANTIZE, p.inputs, p.outputs, 0, [], INT8_VERSIONS[Op.QUANTIZE]);
  b.operators.push(...body);
  for (const [qo, o] of post) b.op(Op.DEQUANTIZE, [qo], [o], 0, [], INT8_VERSIONS[Op.DEQUANTIZE]);
  const bytes = b.finish(built.inputs, built.outputs, `${built.description} int8`);
  return { bytes, operators: b.operators.length, tensors: b.tensors.length, params: built.params };
}
