// Reads a .tflite flatbuffer into plain objects. The file is hostile: every offset, vtable and
// vector is checked against the file's bounds before the npm `flatbuffers` ByteBuffer reads it,
// and every failure is a TfliteError.
//
//   file:  [u32 root offset][ "TFL3" ] ... tables ... vectors ... buffers
//   table: [i32 soffset to vtable][fields...]     vtable: [u16 vt bytes][u16 obj bytes][u16 field offsets...]
import * as flatbuffers from 'flatbuffers';
import { TfliteError } from './errors.js';
import { F, FILE_IDENTIFIER, Opt } from './schema.js';

export interface TfliteQuant {
  scale: Float32Array;
  zeroPoint: number[];
  axis: number;
}

export interface TfliteTensor {
  index: number;
  name: string;
  shape: number[];
  /** shape_signature when present: -1 marks a free axis. */
  signature?: number[];
  type: number;
  buffer: number;
  quant?: TfliteQuant;
}

export type OptionValue = number | boolean | number[];

export interface TfliteOperator {
  index: number;
  /** Builtin operator code (BuiltinOperator); CUSTOM for custom ops. */
  code: number;
  customCode?: string;
  inputs: number[];
  outputs: number[];
  optionsType: number;
  options: Record<string, OptionValue>;
}

export interface TfliteSubgraph {
  name: string;
  tensors: TfliteTensor[];
  inputs: number[];
  outputs: number[];
  operators: TfliteOperator[];
}

export interface TfliteFile {
  version: number;
  description: string;
  subgraphs: TfliteSubgraph[];
  /** Buffer contents; an empty array for buffer 0 and any buffer without data. */
  buffers: Uint8Array[];
}

const MAX_RANK = 8;

class Fb {
  readonly bb: flatbuffers.ByteBuffer;
  readonly n: number;

  constructor(readonly bytes: Uint8Array) {
    this.bb = new flatbuffers.ByteBuffer(bytes);
    this.n = bytes.length;
  }

  need(pos: number, len: number, what: string): void {
    if (!Number.isSafeInteger(pos) || !Number.isSafeInteger(len) || pos < 0 || len < 0 || pos + len > this.n) {
      throw new TfliteError('TFLITE_BOUNDS', `${what}: bytes ${pos}..${pos + len} lie outside the ${this.n}-byte file`);
    }
  }

  u8(p: number, w: string): number { this.need(p, 1, w); return this.bb.readUint8(p); }
  i8(p: number, w: string): number { this.need(p, 1, w); return this.bb.readInt8(p); }
  u16(p: number, w: string): number { this.need(p, 2, w); return this.bb.readUint16(p); }
  i32(p: number, w: string): number { this.need(p, 4, w); return this.bb.readInt32(p); }
  u32(p: number, w: string): number { this.need(p, 4, w); return this.bb.readUint32(p); }
  f32(p: number, w: string): number { this.need(p, 4, w); return this.bb.readFloat32(p); }
  i64(p: number, w: string): number { this.need(p, 8, w); return Number(this.bb.readInt64(p)); }
  u64(p: number, w: string): number { this.need(p, 8, w); return Number(this.bb.readUint64(p)); }

  table(pos: number, what: string): Table {
    return new Table(this, pos, what);
  }
}

/** One flatbuffer table with bounds-checked field access by id. */
class Table {
  private readonly vt: number;
  private readonly vtLen: number;
  private readonly objLen: number;

  constructor(private readonly fb: Fb, readonly pos: number, readonly what: string) {
    const vt = pos - fb.i32(pos, `${what} table`);
    const vtLen = fb.u16(vt, `${what} vtable`);
    const objLen = fb.u16(vt + 2, `${what} vtable`);
    if (vtLen < 4 || vtLen % 2 !== 0) throw new TfliteError('TFLITE_BOUNDS', `${what}: vtable length ${vtLen} is not valid`);
    fb.need(vt, vtLen, `${what} vtable`);
    if (objLen < 4) throw new TfliteError('TFLITE_BOUNDS', `${what}: table length ${objLen} is not valid`);
    fb.need(pos, objLen, `${what} table`);
    this.vt = vt;
    this.vtLen = vtLen;
    this.objLen = objLen;
  }

  /** Absolute position of field `id`'s inline value, or 0 when absent. */
  field(id: number, size: number): number {
    const o = 4 + 2 * id;
    if (o + 2 > this.vtLen) return 0;
    const off = this.fb.u16(this.vt + o, this.what);
    if (off === 0) return 0;
    if (off + size > this.objLen) throw new TfliteError('TFLITE_BOUNDS', `${this.what}: field ${id} lies past the end of its table`);
    return this.pos + off;
  }

  int(id: number, def: number): number { const p = this.field(id, 4); return p ? this.fb.i32(p, this.what) : def; }
  uint(id: number, def: number): number { const p = this.field(id, 4); return p ? this.fb.u32(p, this.what) : def; }
  byte(id: number, def: number): number { const p = this.field(id, 1); return p ? this.fb.i8(p, this.what) : def; }
  ubyte(id: number, def: number): number { const p = this.field(id, 1); return p ? this.fb.u8(p, this.what) : def; }
  bool(id: number, def: boolean): boolean { const p = this.field(id, 1); return p ? this.fb.u8(p, this.what) !== 0 : def; }
  float(id: number, def: number): number { const p = this.field(id, 4); return p ? this.fb.f32(p, this.what) : def; }
  ulong(id: number, def: number): number { const p = this.field(id, 8); return p ? this.fb.u64(p, this.what) : def; }

  /** The target of an offset field, or 0. */
  private ref(id: number): number {
    const p = this.field(id, 4);
    if (!p) return 0;
    return p + this.fb.u32(p, this.what);
  }

  sub(id: number, what: string): Table | undefined {
    const p = this.ref(id);
    return p ? this.fb.table(p, what) : undefined;
  }

  /** [start, length] of a vector field whose elements take `elem` bytes. */
  vector(id: number, elem: number, what: string): [number, number] {
    const p = this.ref(id);
    if (!p) return [0, 0];
    const len = this.fb.u32(p, what);
    this.fb.need(p + 4, len * elem, what);
    return [p + 4, len];
  }

  ints(id: number, what: string): number[] {
    const [s, n] = this.vector(id, 4, what);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.fb.i32(s + 4 * i, what);
    return out;
  }

  floats(id: number, what: string): Float32Array {
    const [s, n] = this.vector(id, 4, what);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.fb.f32(s + 4 * i, what);
    return out;
  }

  longs(id: number, what: string): number[] {
    const [s, n] = this.vector(id, 8, what);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.fb.i64(s + 8 * i, what);
    return out;
  }

  bytes(id: number, what: string): Uint8Array {
    const [s, n] = this.vector(id, 1, what);
    return this.fb.bytes.subarray(s, s + n);
  }

  string(id: number, what: string): string {
    const b = this.bytes(id, what);
    return new TextDecoder('utf-8', { fatal: false }).decode(b);
  }

  tables(id: number, what: string): Table[] {
    const [s, n] = this.vector(id, 4, what);
    const out: Table[] = [];
    for (let i = 0; i < n; i++) {
      const p = s + 4 * i;
      out.push(this.fb.table(p + this.fb.u32(p, what), `${what}[${i}]`));
    }
    return out;
  }
}

function readOptions(t: Table | undefined, type: number): Record<string, OptionValue> {
  if (!t) return {};
  const o: Record<string, OptionValue> = {};
  const w = `options(${type})`;
  switch (type) {
    case Opt.Conv2DOptions: {
      const f = F.Conv2DOptions;
      o.padding = t.byte(f.padding, 0); o.stride_w = t.int(f.stride_w, 0); o.stride_h = t.int(f.stride_h, 0);
      o.fused_activation_function = t.byte(f.fused_activation_function, 0);
      o.dilation_w_factor = t.int(f.dilation_w_factor, 1); o.dilation_h_factor = t.int(f.dilation_h_factor, 1);
      break;
    }
    case Opt.DepthwiseConv2DOptions: {
      const f = F.DepthwiseConv2DOptions;
      o.padding = t.byte(f.padding, 0); o.stride_w = t.int(f.stride_w, 0); o.stride_h = t.int(f.stride_h, 0);
      o.depth_multiplier = t.int(f.depth_multiplier, 0);
      o.fused_activation_function = t.byte(f.fused_activation_function, 0);
      o.dilation_w_factor = t.int(f.dilation_w_factor, 1); o.dilation_h_factor = t.int(f.dilation_h_factor, 1);
      break;
    }
    case Opt.Pool2DOptions: {
      const f = F.Pool2DOptions;
      o.padding = t.byte(f.padding, 0); o.stride_w = t.int(f.stride_w, 0); o.stride_h = t.int(f.stride_h, 0);
      o.filter_width = t.int(f.filter_width, 0); o.filter_height = t.int(f.filter_height, 0);
      o.fused_activation_function = t.byte(f.fused_activation_function, 0);
      break;
    }
    case Opt.FullyConnectedOptions: {
      const f = F.FullyConnectedOptions;
      o.fused_activation_function = t.byte(f.fused_activation_function, 0);
      o.weights_format = t.byte(f.weights_format, 0);
      o.keep_num_dims = t.bool(f.keep_num_dims, false);
      break;
    }
    case Opt.SoftmaxOptions: o.beta = t.float(F.SoftmaxOptions.beta, 0); break;
    case Opt.ConcatenationOptions:
      o.axis = t.int(F.ConcatenationOptions.axis, 0);
      o.fused_activation_function = t.byte(F.ConcatenationOptions.fused_activation_function, 0);
      break;
    case Opt.AddOptions: o.fused_activation_function = t.byte(F.AddOptions.fused_activation_function, 0); break;
    case Opt.MulOptions: o.fused_activation_function = t.byte(F.MulOptions.fused_activation_function, 0); break;
    case Opt.ReshapeOptions: o.new_shape = t.ints(F.ReshapeOptions.new_shape, w); break;
    case Opt.ReducerOptions: o.keep_dims = t.bool(F.ReducerOptions.keep_dims, false); break;
    case Opt.SqueezeOptions: o.squeeze_dims = t.ints(F.SqueezeOptions.squeeze_dims, w); break;
    case Opt.LeakyReluOptions: o.alpha = t.float(F.LeakyReluOptions.alpha, 0); break;
    case Opt.BatchMatMulOptions:
      o.adj_x = t.bool(F.BatchMatMulOptions.adj_x, false);
      o.adj_y = t.bool(F.BatchMatMulOptions.adj_y, false);
      break;
    default: break;
  }
  return o;
}

function readShape(t: Table, id: number, what: string): number[] {
  const s = t.ints(id, what);
  if (s.length > MAX_RANK) throw new TfliteError('TFLITE_BAD_MODEL', `${what}: rank ${s.length} exceeds ${MAX_RANK}`);
  return s;
}

/** Parses the flatbuffer; checks structure and bounds, not the graph's meaning (import.ts does that). */
export function readTflite(bytes: Uint8Array): TfliteFile {
  if (bytes.length < 8) throw new TfliteError('TFLITE_PARSE', `file is ${bytes.length} bytes, too short for a TFLite model`);
  const ident = String.fromCharCode(bytes[4]!, bytes[5]!, bytes[6]!, bytes[7]!);
  if (ident !== FILE_IDENTIFIER) throw new TfliteError('TFLITE_PARSE', `file identifier is not "${FILE_IDENTIFIER}"; not a TFLite model`);
  const fb = new Fb(bytes);
  try {
    return readModel(fb);
  } catch (e) {
    if (e instanceof TfliteError) throw e;
    throw new TfliteError('TFLITE_BOUNDS', `malformed TFLite flatbuffer: ${(e as Error).message}`, { cause: e });
  }
}

function readModel(fb: Fb): TfliteFile {
  const root = fb.table(fb.u32(0, 'root offset'), 'Model');
  const M = F.Model;
  const version = root.uint(M.version, 0);
  const codes = root.tables(M.operator_codes, 'operator_codes').map((t) => {
    const deprecated = t.byte(F.OperatorCode.deprecated_builtin_code, 0);
    const builtin = t.int(F.OperatorCode.builtin_code, 0);
    // Files from before builtin_code existed carry only the deprecated byte (schema.fbs rule).
    return { code: Math.max(deprecated, builtin), custom: t.string(F.OperatorCode.custom_code, 'custom_code') };
  });
  const buffers = root.tables(M.buffers, 'buffers').map((t, i) => {
    const data = t.bytes(F.Buffer.data, `buffer ${i}`);
    if (data.length > 0) return data;
    const offset = t.ulong(F.Buffer.offset, 0);
    const size = t.ulong(F.Buffer.size, 0);
    if (offset > 1 && size > 0) {
      fb.need(offset, size, `buffer ${i} (offset/size)`);
      return fb.bytes.subarray(offset, offset + size);
    }
    return new Uint8Array(0);
  });
  const subgraphs = root.tables(M.subgraphs, 'subgraphs').map((sg, si) => {
    const S = F.SubGraph;
    const tensors = sg.tables(S.tensors, `subgraph ${si} tensors`).map((t, ti): TfliteTensor => {
      const T = F.Tensor;
      const w = `tensor ${ti}`;
      const tensor: TfliteTensor = {
        index: ti,
        name: t.string(T.name, w),
        shape: readShape(t, T.shape, w),
        type: t.byte(T.type, 0),
        buffer: t.uint(T.buffer, 0),
      };
      const sig = readShape(t, T.shape_signature, `${w} shape_signature`);
      if (sig.length > 0) tensor.signature = sig;
      const q = t.sub(T.quantization, `${w} quantization`);
      if (q) {
        const Q = F.QuantizationParameters;
        const scale = q.floats(Q.scale, `${w} scale`);
        if (scale.length > 0) {
          tensor.quant = { scale, zeroPoint: q.longs(Q.zero_point, `${w} zero_point`), axis: q.int(Q.quantized_dimension, 0) };
        }
      }
      return tensor;
    });
    const operators = sg.tables(S.operators, `subgraph ${si} operators`).map((t, oi): TfliteOperator => {
      const O = F.Operator;
      const w = `operator ${oi}`;
      const idx = t.uint(O.opcode_index, 0);
      const code = codes[idx];
      if (!code) throw new TfliteError('TFLITE_BAD_MODEL', `${w}: opcode_index ${idx} is out of range (${codes.length} operator codes)`);
      const optionsType = t.ubyte(O.builtin_options_type, 0);
      const op: TfliteOperator = {
        index: oi,
        code: code.code,
        inputs: t.ints(O.inputs, `${w} inputs`),
        outputs: t.ints(O.outputs, `${w} outputs`),
        optionsType,
        options: readOptions(optionsType ? t.sub(O.builtin_options, `${w} options`) : undefined, optionsType),
      };
      if (code.custom) op.customCode = code.custom;
      return op;
    });
    return {
      name: sg.string(S.name, 'subgraph name'),
      tensors,
      inputs: sg.ints(S.inputs, 'subgraph inputs'),
      outputs: sg.ints(S.outputs, 'subgraph outputs'),
      operators,
    };
  });
  return { version, description: root.string(M.description, 'description'), subgraphs, buffers };
}
