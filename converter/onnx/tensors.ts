// ONNX TensorProto -> constant values. Floats become Float32Array; integers become plain numbers
// (int64 is read exactly up to 2^53, enough for shapes and slice bounds).

import onnxProto from 'onnx-proto';
import { OnnxImportError } from './errors.js';
import type { Dim } from './shapes.js';

const { onnx } = onnxProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
const DT = onnx.TensorProto.DataType;

/** A value known while importing. Integer tensors may hold symbolic dims (from Shape). */
export type Const =
  | { kind: 'float'; dims: number[]; data: Float32Array; src: Set<string> }
  | { kind: 'int'; dims: number[]; data: Dim[]; src: Set<string>; /** a float tensor holding a free dim (Shape -> Cast) */ float?: boolean };

type LongLike = number | { toNumber(): number } | { low: number; high: number; unsigned?: boolean };

export function toNum(v: LongLike | null | undefined): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if ('toNumber' in v && typeof v.toNumber === 'function') return v.toNumber();
  const l = v as { low: number; high: number; unsigned?: boolean };
  const hi = l.unsigned ? l.high >>> 0 : l.high;
  return hi * 4294967296 + (l.low >>> 0);
}

const FLOAT_TYPES = new Set<number>([DT.FLOAT, DT.DOUBLE, DT.FLOAT16, DT.BFLOAT16]);
const INT_TYPES = new Set<number>([
  DT.INT64, DT.INT32, DT.INT16, DT.INT8, DT.UINT8, DT.UINT16, DT.UINT32, DT.UINT64, DT.BOOL,
]);
const BYTES: Record<number, number> = {
  [DT.FLOAT]: 4, [DT.DOUBLE]: 8, [DT.FLOAT16]: 2, [DT.BFLOAT16]: 2, [DT.INT64]: 8, [DT.INT32]: 4,
  [DT.INT16]: 2, [DT.INT8]: 1, [DT.UINT8]: 1, [DT.UINT16]: 2, [DT.UINT32]: 4, [DT.UINT64]: 8, [DT.BOOL]: 1,
};

export function isFloatType(dt: number): boolean {
  return FLOAT_TYPES.has(dt);
}

export function isIntType(dt: number): boolean {
  return INT_TYPES.has(dt);
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function bf16ToFloat(h: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setUint32(0, (h & 0xffff) << 16);
  return b.getFloat32(0);
}

/** Reads a TensorProto. `what` names it in messages, e.g. 'initializer "c1.weight"'. */
export function constFromProto(t: ITensorProto, what: string): Const {
  const dims = (t.dims ?? []).map(toNum);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new OnnxImportError('ONNX_PARSE', `${what}: invalid dims [${dims.join(', ')}]`);
  }
  const count = dims.reduce((a, b) => a * b, 1);
  if (count > 2 ** 31) throw new OnnxImportError('ONNX_PARSE', `${what}: ${count} elements is too many`);
  const dt = t.dataType ?? 0;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new OnnxImportError('ONNX_UNSUPPORTED_ATTR', `${what}: external tensor data is not supported`);
  }
  if (!FLOAT_TYPES.has(dt) && !INT_TYPES.has(dt)) {
    throw new OnnxImportError('ONNX_UNSUPPORTED_ATTR', `${what}: data type ${DT[dt] ?? dt} is not supported`);
  }
  const src = new Set<string>();
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    const size = BYTES[dt]!;
    if (raw.length !== count * size) {
      throw new OnnxImportError(
        'ONNX_PARSE', `${what}: dims [${dims.join(', ')}] need ${count * size} bytes of raw_data, found ${raw.length}`);
    }
    // Copy out: raw_data sits at an arbitrary offset inside the file buffer.
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    if (FLOAT_TYPES.has(dt)) {
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        data[i] = dt === DT.FLOAT ? view.getFloat32(i * 4, true)
          : dt === DT.DOUBLE ? view.getFloat64(i * 8, true)
            : dt === DT.FLOAT16 ? halfToFloat(view.getUint16(i * 2, true))
              : bf16ToFloat(view.getUint16(i * 2, true));
      }
      return { kind: 'float', dims, data, src };
    }
    const data: number[] = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      switch (dt) {
        case DT.INT64: data[i] = Number(view.getBigInt64(i * 8, true)); break;
        case DT.UINT64: data[i] = Number(view.getBigUint64(i * 8, true)); break;
        case DT.INT32: data[i] = view.getInt32(i * 4, true); break;
        case DT.UINT32: data[i] = view.getUint32(i * 4, true); break;
        case DT.INT16: data[i] = view.getInt16(i * 2, true); break;
        case DT.UINT16: data[i] = view.getUint16(i * 2, true); break;
        case DT.INT8: data[i] = view.getInt8(i); break;
        default: data[i] = view.getUint8(i); break;
      }
    }
    return { kind: 'int', dims, data, src };
  }
  const typed: ArrayLike<LongLike> =
    dt === DT.FLOAT ? t.floatData ?? []
      : dt === DT.DOUBLE ? t.doubleData ?? []
        : dt === DT.INT64 ? t.int64Data ?? []
          : dt === DT.UINT32 || dt === DT.UINT64 ? t.uint64Data ?? []
            : t.int32Data ?? [];
  if (typed.length !== count) {
    throw new OnnxImportError(
      'ONNX_PARSE', `${what}: dims [${dims.join(', ')}] need ${count} values, found ${typed.length}`);
  }
  if (FLOAT_TYPES.has(dt)) {
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const v = toNum(typed[i]);
      data[i] = dt === DT.FLOAT16 ? halfToFloat(v) : dt === DT.BFLOAT16 ? bf16ToFloat(v) : v;
    }
    return { kind: 'float', dims, data, src };
  }
  const data: number[] = new Array<number>(count);
  for (let i = 0; i < count; i++) data[i] = toNum(typed[i]);
  return { kind: 'int', dims, data, src };
}

export function numelOf(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Integer contents of a constant, failing on symbolic entries. */
export function constInts(c: Const, what: string): number[] {
  const out: number[] = [];
  for (const v of c.data) {
    if (typeof v !== 'number') throw new OnnxImportError('ONNX_UNSUPPORTED_ATTR', `${what}: value depends on a free dim`);
    out.push(c.kind === 'int' ? v : Math.trunc(v));
  }
  return out;
}

/** Float contents of a constant (integers converted), failing on symbolic entries. */
export function constFloats(c: Const, what: string): Float32Array {
  if (c.kind === 'float') return c.data;
  const out = new Float32Array(c.data.length);
  c.data.forEach((v, i) => {
    if (typeof v !== 'number') throw new OnnxImportError('ONNX_UNSUPPORTED_ATTR', `${what}: value depends on a free dim`);
    out[i] = v;
  });
  return out;
}
