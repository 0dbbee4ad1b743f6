// Fully integer TFLite export (`export -o m.tflite --int8 --calib DATA`), following TFLite's int8
// quantisation spec: int8 activations with a per-tensor scale and zero point, int8 weights
// symmetric per output channel (conv, depthwise, fully connected; per tensor for BATCH_MATMUL),
// int32 biases with scale = input scale x weight scale. The interface stays float32: a QUANTIZE
// after each input and a DEQUANTIZE before each output, so callers feed and read real values.
//
// `activationBits: 16` is TFLite's 16x8 mode: the same int8 weights, int16 activations (symmetric,
// zero point 0) and int64 biases. The file is as small; activations take twice the arena, and
// close logits no longer round to the same 8-bit step (ties decide most int8 disagreements).
//
// Activation ranges come from calibration (tfliteCalibrate.ts). Measured on FC-2 x10 (bench/tfliteInt8Loss.ts),
// int8 top-1 changes come mostly from the logits (close top logits share a code) and the rank-r
// bottleneck, then the weights; hence, by default: a top-1 range for class scores
// (tfliteLogits.ts), bottlenecks centred per channel (tfliteCentre.ts), and bias correction.
import type { Tensor } from '../../runtime/ir.js';
import { numel } from '../../runtime/ir.js';
import { Op, TensorType } from '../tflite/schema.js';
import { ExportError } from './errors.js';
import { calibrate } from './tfliteCalibrate.js';
import { centreBottlenecks, rawLinearOutput } from './tfliteCentre.js';
import { logitsRange } from './tfliteLogits.js';
import { buildTflite, type TfliteExportResult } from './tflite.js';
import type { QuantParams, TensorSpec } from './tfliteBuilder.js';
import type { Model } from '../../runtime/ir.js';

export interface Int8ExportOptions {
  /** Calibration images in dataset layout [N, C, H, W] (or rows [N, F]), batch first. */
  calibration: Tensor;
  /** Samples per calibration run. */
  batch?: number;
  /** MSE-optimal clipping of inner activation ranges (default true; false: min/max). */
  clip?: boolean;
  /** 8 (default): int8 activations; 16: TFLite's 16x8 mode. */
  activationBits?: 8 | 16;
  /**
   * Range of int8 outputs of rank 2 written by a linear op with no activation: 'top1' the range that
   * keeps the calibration rows' top-1 (tfliteLogits.ts; logits far below a row's top may clamp),
   * 'full' their min/max. Default: 'top1' for an output with `classes` columns (class scores), else 'full'.
   */
  outputs?: 'top1' | 'full';
  /** Classes of the calibration set (labels); an output with that many columns is read as class scores. */
  classes?: number;
  /** Bias correction: take each layer's expected output shift from weight rounding off its bias (default true). */
  biasCorrection?: boolean;
  /** Centre factor bottlenecks per channel before calibrating (tfliteCentre.ts; default true). */
  centre?: boolean;
}


/** Ops whose output must keep the input's scale and zero point (TFLite int8 kernels require it). */
const SAME_QUANT = new Set<number>([Op.MAX_POOL_2D, Op.AVERAGE_POOL_2D, Op.RESHAPE, Op.TRANSPOSE, Op.PAD, Op.SQUEEZE, Op.MEAN]);
/** Op versions whose kernels accept int8 (TFLite's op version table). */
const INT8_VERSIONS: Record<number, number> = {
  [Op.CONV_2D]: 3, [Op.DEPTHWISE_CONV_2D]: 3, [Op.FULLY_CONNECTED]: 4, [Op.ADD]: 2, [Op.MUL]: 2, [Op.AVERAGE_POOL_2D]: 2,
  [Op.MAX_POOL_2D]: 2, [Op.SOFTMAX]: 2, [Op.LOGISTIC]: 2, [Op.TANH]: 2, [Op.TRANSPOSE]: 2, [Op.PAD]: 2, [Op.MEAN]: 2,
  [Op.RELU]: 2, [Op.RELU6]: 2, [Op.LEAKY_RELU]: 2, [Op.DEQUANTIZE]: 2, [Op.QUANTIZE]: 2, [Op.BATCH_MATMUL]: 2,
};

/** Op versions whose kernels accept int16 activations (TFLite's op version table). */
const INT16_VERSIONS: Record<number, number> = {
  [Op.CONV_2D]: 4, [Op.DEPTHWISE_CONV_2D]: 5, [Op.FULLY_CONNECTED]: 7, [Op.ADD]: 3, [Op.MUL]: 4, [Op.AVERAGE_POOL_2D]: 3,
  [Op.MAX_POOL_2D]: 3, [Op.SOFTMAX]: 3, [Op.LOGISTIC]: 3, [Op.TANH]: 3, [Op.TRANSPOSE]: 5, [Op.PAD]: 4, [Op.MEAN]: 3,
  [Op.RELU]: 3, [Op.RELU6]: 3, [Op.LEAKY_RELU]: 2, [Op.DEQUANTIZE]: 3, [Op.QUANTIZE]: 2, [Op.BATCH_MATMUL]: 3,
};

/** Symmetric int16 parameters (zero point 0, as TFLite's int16 kernels require) covering [-m, m]. */
function symmetric16(m: number): QuantParams {
  return { scale: [m > 0 ? m / 32767 : 1e-6], zeroPoint: [0] };
}

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

/**
 * Expected output shift per output channel of a conv / depthwise / fully connected from rounding its
 * weights: sum over its taps of (quantised - float weight) x the mean of the input channel the tap
 * reads (calibration means; padding ignored). Undefined when the means do not fit the layer.
 */
function roundingShift(code: number, w: Float32Array, codes: Int8Array, q: QuantParams, shape: number[], means: Float64Array | undefined): Float64Array | undefined {
  if (!means) return undefined;
  const scaleOf = (c: number): number => q.scale[q.scale.length === 1 ? 0 : c]!;
  if (code === Op.DEPTHWISE_CONV_2D) {
    // [1, kh, kw, O]; output channel o reads input channel floor(o / multiplier).
    const o = shape[3]!;
    if (o % means.length !== 0) return undefined;
    const mult = o / means.length;
    const out = new Float64Array(o);
    for (let i = 0; i < w.length; i++) out[i % o]! += (codes[i]! * scaleOf(i % o) - w[i]!) * means[Math.floor((i % o) / mult)]!;
    return out;
  }
  // CONV_2D [O, kh, kw, I] and FULLY_CONNECTED [O, I]: the input channel is the last axis.
  const o = shape[0]!;
  const inner = w.length / o;
  const inC = shape[shape.length - 1]!;
  if (means.length !== inC) return undefined;
  const out = new Float64Array(o);
  for (let i = 0; i < w.length; i++) {
    const c = Math.floor(i / inner);
    out[c]! += (codes[i]! * scaleOf(c) - w[i]!) * means[i % inC]!;
  }
  return out;
}

export function exportTfliteInt8(model: Model, opts: Int8ExportOptions): TfliteExportResult {
  const bits = opts.activationBits ?? 8;
  const built = buildTflite(model);
  const { b } = built;
  if (opts.centre ?? true) {
    const pre = calibrate(b, built.inputs, built.outputs, built.description, opts.calibration, { batch: opts.batch ?? 64, clip: false });
    centreBottlenecks(b, built.outputs, (i) => pre.channelRanges(i));
  }
  // Ranges from the runtime on the imported float32 export.
  const cal = calibrate(b, built.inputs, built.outputs, built.description, opts.calibration, { batch: opts.batch ?? 64, clip: opts.clip ?? true });
  const { values } = cal;
  // Inputs, graph outputs (logits) and what feeds a softmax keep their extreme values: clipping the
  // largest logits could change the top-1.
  const noClip = new Set<number>([...built.outputs, ...built.inputs]);
  for (const o of b.operators) if (b.opcodeOf(o) === Op.SOFTMAX) noClip.add(o.inputs[0]!);
  const top1 = new Map<number, [number, number]>();
  const rangeOf = (idx: number): [number, number] => top1.get(idx) ?? cal.range(idx, !noClip.has(idx));
  const actType = bits === 16 ? TensorType.INT16 : TensorType.INT8;
  const versions = bits === 16 ? INT16_VERSIONS : INT8_VERSIONS;
  /** Activation parameters covering [min, max]: asymmetric int8, or symmetric int16. */
  const actQuant = (min: number, max: number): QuantParams => (bits === 16 ? symmetric16(Math.max(Math.abs(min), Math.abs(max))) : activationQuant(min, max));
  const fixedQuant = (code: number): QuantParams =>
    bits === 16 ? { scale: [1 / 32768], zeroPoint: [0] } : code === Op.TANH ? { scale: [1 / 128], zeroPoint: [0] } : { scale: [1 / 256], zeroPoint: [-128] };

  const T = b.tensors;
  const setConst = (idx: number, type: number, bytes: Uint8Array, q: QuantParams): void => {
    const t = T[idx]!;
    t.type = type;
    t.quant = q;
    b.buffers[t.buffer] = bytes;
  };
  const act = (idx: number, q: QuantParams): void => {
    T[idx]!.type = actType;
    T[idx]!.quant = q;
  };
  const quantOf = (idx: number): QuantParams => {
    const q = T[idx]?.quant;
    if (!q) throw new ExportError('EXPORT_BAD_MODEL', `tflite int8 export: tensor ${T[idx]?.name} is read before it is quantised`);
    return q;
  };
  const isConst = (idx: number): boolean => (b.buffers[T[idx]!.buffer]?.length ?? 0) > 0;
  /** A constant operand of ADD / MUL / BATCH_MATMUL quantised like an activation of this mode. */
  const constOperand = (i: number, symmetric: boolean): void => {
    const data = f32Of(b.buffers[T[i]!.buffer]!);
    if (bits === 16) {
      const q = symmetric16(data.reduce((m, v) => Math.max(m, Math.abs(v)), 0));
      const codes = Int16Array.from(data, (v) => Math.max(-32767, Math.min(32767, Math.round(v / q.scale[0]!))));
      setConst(i, TensorType.INT16, new Uint8Array(codes.buffer), q);
      return;
    }
    if (symmetric) {
      const { codes, q } = quantWeights(data, T[i]!.shape, undefined);
      setConst(i, TensorType.INT8, new Uint8Array(codes.buffer), q);
      return;
    }
    const q = activationQuant(Math.min(...data), Math.max(...data));
    const codes = Int8Array.from(data, (v) => Math.max(-128, Math.min(127, Math.round(v / q.scale[0]! + q.zeroPoint[0]!))));
    setConst(i, TensorType.INT8, new Uint8Array(codes.buffer), q);
  };

  // Float interface: QUANTIZE after each input, DEQUANTIZE before each output.
  const rename = (from: number, to: number, where: 'inputs' | 'outputs'): void => {
    for (const o of b.operators) o[where] = o[where].map((i) => (i === from ? to : i));
  };
  const pre: typeof b.operators = [];
  for (const i of built.inputs) {
    const t = T[i]!;
    const qi = b.activation(`${t.name}/int${bits}`, t.shape);
    rename(i, qi, 'inputs');
    values.set(qi, values.get(i)!);
    noClip.add(qi);
    act(qi, actQuant(...rangeOf(i)));
    pre.push({ opcode: -1, inputs: [i], outputs: [qi], optionsType: 0, options: [] });
  }
  const post: Array<[number, number]> = [];
  for (const o of built.outputs) {
    const t = T[o]!;
    const qo = b.activation(`${t.name}/int${bits}`, t.shape);
    rename(o, qo, 'outputs');
    rename(o, qo, 'inputs');
    values.set(qo, values.get(o)!);
    noClip.add(qo);
    post.push([qo, o]);
    // Raw logits only: an output after an activation (relu6, sigmoid...) is a value, not a score.
    const cols = t.shape[t.shape.length - 1];
    const mode = opts.outputs ?? (opts.classes !== undefined && cols === opts.classes ? 'top1' : 'full');
    const rows = bits === 8 && mode === 'top1' && t.shape.length === 2 && rawLinearOutput(b, qo) ? cal.outputRows(qo) : undefined;
    if (rows && rows.cols >= 2) top1.set(qo, logitsRange(rows.data, rows.rows, rows.cols));
  }

  const ops = [...b.operators];
  for (const op of ops) {
    const code = b.opcodeOf(op);
    const out = op.outputs[0]!;
    const [i0, i1, i2] = op.inputs as [number, number | undefined, number | undefined];
    if (code === Op.CONV_2D || code === Op.DEPTHWISE_CONV_2D || code === Op.FULLY_CONNECTED) {
      const w = T[i1!]!;
      const axis = code === Op.CONV_2D ? 0 : code === Op.DEPTHWISE_CONV_2D ? 3 : 0;
      const wf = f32Of(b.buffers[w.buffer]!);
      const { codes, q } = quantWeights(wf, w.shape, axis);
      setConst(i1!, TensorType.INT8, new Uint8Array(codes.buffer), q);
      const shift = opts.biasCorrection ?? true ? roundingShift(code, wf, codes, q, w.shape, cal.channelMeans(i0)) : undefined;
      let bi = i2 ?? -1;
      if (bi < 0 && shift) {
        // A layer with no bias gets one to carry the correction.
        bi = b.f32(`${w.name}/bias_correction`, [shift.length], new Float32Array(shift.length));
        op.inputs[2] = bi;
      }
      if (bi >= 0) {
        const inScale = quantOf(i0).scale[0]!;
        const bias = f32Of(b.buffers[T[bi]!.buffer]!);
        if (shift) for (let c = 0; c < bias.length; c++) bias[c] = bias[c]! - shift[c]!;
        const scales = Array.from(bias, (_, c) => inScale * q.scale[q.scale.length === 1 ? 0 : c]!);
        const bq: QuantParams = q.axis === undefined ? { scale: [scales[0]!], zeroPoint: [0] } : { scale: scales, zeroPoint: scales.map(() => 0), axis: 0 };
        if (bits === 16) {
          const codes64 = BigInt64Array.from(bias, (v, c) => BigInt(Math.round(v / scales[c]!)));
          setConst(bi, TensorType.INT64, new Uint8Array(codes64.buffer), bq);
        } else {
          const codes32 = Int32Array.from(bias, (v, c) => Math.max(-2147483647, Math.min(2147483647, Math.round(v / scales[c]!))));
          setConst(bi, TensorType.INT32, new Uint8Array(codes32.buffer), bq);
        }
      }
      act(out, actQuant(...rangeOf(out)));
    } else if (code === Op.BATCH_MATMUL) {
      // TFLite's BATCH_MATMUL takes one scale per operand: a constant factor is symmetric per tensor.
      for (const i of op.inputs) if (isConst(i)) constOperand(i, true);
      act(out, actQuant(...rangeOf(out)));
    } else if (SAME_QUANT.has(code)) {
      act(out, quantOf(i0));
    } else if (code === Op.SOFTMAX || code === Op.LOGISTIC || code === Op.TANH) {
      act(out, fixedQuant(code));
    } else if (code === Op.ADD || code === Op.MUL) {
      for (const i of op.inputs) if (isConst(i)) constOperand(i, false);
      act(out, actQuant(...rangeOf(out)));
    } else if (code === Op.RELU || code === Op.RELU6 || code === Op.RELU_N1_TO_1 || code === Op.LEAKY_RELU) {
      act(out, actQuant(...rangeOf(out)));
    } else {
      throw new ExportError('EXPORT_UNSUPPORTED', `tflite int8 export: builtin ${code} (${T[out]?.name}) has no int${bits} form here`);
    }
    b.setVersion(code, versions[code] ?? 1);
  }
  // Pure-float tensors left (unused constants) would be harmless; check the activations.
  const floatActs = T.filter((t: TensorSpec, i) => t.type === TensorType.FLOAT32 && !built.inputs.includes(i) && !built.outputs.includes(i));
  if (floatActs.length > 0) throw new ExportError('EXPORT_BAD_MODEL', `tflite int8 export: tensors left in float: ${floatActs.map((t) => t.name).join(', ')}`);

  // Splice the interface ops in: QUANTIZE first, DEQUANTIZE last.
  const body = b.operators.splice(0);
  for (const p of pre) b.op(Op.QUANTIZE, p.inputs, p.outputs, 0, [], versions[Op.QUANTIZE]);
  b.operators.push(...body);
  for (const [qo, o] of post) b.op(Op.DEQUANTIZE, [qo], [o], 0, [], versions[Op.DEQUANTIZE]);
  const bytes = b.finish(built.inputs, built.outputs, `${built.description} ${bits === 16 ? '16x8' : 'int8'}`);
  return { bytes, operators: b.operators.length, tensors: b.tensors.length, params: built.params };
}
