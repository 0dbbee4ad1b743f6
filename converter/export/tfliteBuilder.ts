// Collects tensors, buffers and operators, then encodes a TFLite model (schema v3, "TFL3") with the
// npm `flatbuffers` Builder. Field ids come from converter/tflite/schema.ts.
import * as flatbuffers from 'flatbuffers';
import { F, FILE_IDENTIFIER, Opt, SCHEMA_VERSION, TensorType } from '../tflite/schema.js';

export interface QuantParams {
  scale: number[];
  zeroPoint: number[];
  axis?: number;
}

export interface TensorSpec {
  name: string;
  shape: number[];
  signature?: number[];
  type: number;
  buffer: number;
  quant?: QuantParams;
}

/** Option fields in id order: [id, kind, value]; kind picks the flatbuffers scalar or vector. */
export type OptionField = [number, 'i8' | 'i32' | 'f32' | 'bool', number | boolean] | [number, 'i32[]', number[]];

export interface OperatorSpec {
  /** Index into the operator codes (see opcodeOf). */
  opcode: number;
  inputs: number[];
  outputs: number[];
  optionsType: number;
  options: OptionField[];
}

export class TfliteBuilder {
  readonly tensors: TensorSpec[] = [];
  readonly buffers: Uint8Array[] = [new Uint8Array(0)];
  private readonly codes: number[] = [];
  private readonly codeVersions: number[] = [];
  readonly operators: OperatorSpec[] = [];
  private readonly names = new Set<string>();
  private readonly constCache = new Map<string, number>();

  private uniqueName(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  /** An activation tensor (no buffer data). */
  activation(name: string, shape: number[], type: number = TensorType.FLOAT32, quant?: QuantParams, signature?: number[]): number {
    const spec: TensorSpec = { name: this.uniqueName(name), shape: [...shape], type, buffer: this.addBuffer(new Uint8Array(0)), quant };
    if (signature) spec.signature = [...signature];
    this.tensors.push(spec);
    return this.tensors.length - 1;
  }

  private addBuffer(data: Uint8Array): number {
    this.buffers.push(data);
    return this.buffers.length - 1;
  }

  /** A constant tensor; `key` lets callers share one tensor between ops. */
  constant(name: string, shape: number[], type: number, data: Uint8Array, quant?: QuantParams, key?: string): number {
    if (key !== undefined) {
      const hit = this.constCache.get(key);
      if (hit !== undefined) return hit;
    }
    this.tensors.push({ name: this.uniqueName(name), shape: [...shape], type, buffer: this.addBuffer(data), quant });
    const idx = this.tensors.length - 1;
    if (key !== undefined) this.constCache.set(key, idx);
    return idx;
  }

  f32(name: string, shape: number[], data: Float32Array, key?: string): number {
    return this.constant(name, shape, TensorType.FLOAT32, new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(), undefined, key);
  }

  i32(name: string, shape: number[], data: number[]): number {
    const a = Int32Array.from(data);
    return this.constant(name, shape, TensorType.INT32, new Uint8Array(a.buffer), undefined, `i32:${name}:${shape}:${data}`);
  }

  /** The builtin code of an operator. */
  opcodeOf(o: OperatorSpec): number {
    return this.codes[o.opcode]!;
  }

  /** Raises the version recorded for a builtin (int8 kernels need newer versions). */
  setVersion(opcode: number, version: number): void {
    const i = this.codes.indexOf(opcode);
    if (i >= 0 && version > this.codeVersions[i]!) this.codeVersions[i] = version;
  }

  op(opcode: number, inputs: number[], outputs: number[], optionsType: number = Opt.NONE, options: OptionField[] = [], version = 1): void {
    let ci = this.codes.indexOf(opcode);
    if (ci < 0) {
      this.codes.push(opcode);
      this.codeVersions.push(version);
      ci = this.codes.length - 1;
    } else if (version > this.codeVersions[ci]!) this.codeVersions[ci] = version;
    this.operators.push({ opcode: ci, inputs, outputs, optionsType, options });
  }

  finish(inputs: number[], outputs: number[], description: string): Uint8Array {
    const b = new flatbuffers.Builder(1 << 16);
    const intVec = (xs: number[]): number => {
      b.startVector(4, xs.length, 4);
      for (let i = xs.length - 1; i >= 0; i--) b.addInt32(xs[i]!);
      return b.endVector();
    };
    const floatVec = (xs: number[]): number => {
      b.startVector(4, xs.length, 4);
      for (let i = xs.length - 1; i >= 0; i--) b.addFloat32(xs[i]!);
      return b.endVector();
    };
    const longVec = (xs: number[]): number => {
      b.startVector(8, xs.length, 8);
      for (let i = xs.length - 1; i >= 0; i--) b.addInt64(BigInt(xs[i]!));
      return b.endVector();
    };
    const tableVec = (xs: number[]): number => {
      b.startVector(4, xs.length, 4);
      for (let i = xs.length - 1; i >= 0; i--) b.addOffset(xs[i]!);
      return b.endVector();
    };

    // Buffers: data vectors aligned to 16 bytes (schema: force_align 16).
    const bufferOffsets = this.buffers.map((data) => {
      let vec = 0;
      if (data.length > 0) {
        b.startVector(1, data.length, 16);
        for (let i = data.length - 1; i >= 0; i--) b.addInt8(data[i]!);
        vec = b.endVector();
      }
      b.startObject(3);
      if (vec) b.addFieldOffset(F.Buffer.data, vec, 0);
      return b.endObject();
    });

    const tensorOffsets = this.tensors.map((t) => {
      const name = b.createString(t.name);
      const shape = intVec(t.shape);
      const sig = t.signature ? intVec(t.signature) : 0;
      let quant = 0;
      if (t.quant) {
        const Q = F.QuantizationParameters;
        const scale = floatVec(t.quant.scale);
        const zp = longVec(t.quant.zeroPoint);
        b.startObject(7);
        b.addFieldOffset(Q.scale, scale, 0);
        b.addFieldOffset(Q.zero_point, zp, 0);
        b.addFieldInt32(Q.quantized_dimension, t.quant.axis ?? 0, 0);
        quant = b.endObject();
      }
      const T = F.Tensor;
      b.startObject(8);
      b.addFieldOffset(T.shape, shape, 0);
      b.addFieldInt8(T.type, t.type, -1);
      b.addFieldInt32(T.buffer, t.buffer, -1);
      b.addFieldOffset(T.name, name, 0);
      if (quant) b.addFieldOffset(T.quantization, quant, 0);
      if (sig) b.addFieldOffset(T.shape_signature, sig, 0);
      return b.endObject();
    });

    const operatorOffsets = this.operators.map((o) => {
      let opts = 0;
      if (o.optionsType !== Opt.NONE) {
        const vecs = o.options.map((f) => (f[1] === 'i32[]' ? intVec(f[2]) : 0));
        const maxId = o.options.reduce((m, f) => Math.max(m, f[0]), -1);
        b.startObject(maxId + 1);
        o.options.forEach((f, i) => {
          const [id, kind, v] = f;
          if (kind === 'i32[]') b.addFieldOffset(id, vecs[i]!, 0);
          // Defaults of -1 force every field to be written, whatever its value.
          else if (kind === 'i8') b.addFieldInt8(id, v as number, -1);
          else if (kind === 'i32') b.addFieldInt32(id, v as number, -1);
          else if (kind === 'f32') b.addFieldFloat32(id, v as number, -1);
          else b.addFieldInt8(id, v ? 1 : 0, -1);
        });
        opts = b.endObject();
      }
      const ins = intVec(o.inputs);
      const outs = intVec(o.outputs);
      const O = F.Operator;
      b.startObject(6);
      b.addFieldInt32(O.opcode_index, o.opcode, -1);
      b.addFieldOffset(O.inputs, ins, 0);
      b.addFieldOffset(O.outputs, outs, 0);
      if (opts) {
        b.addFieldInt8(O.builtin_options_type, o.optionsType, 0);
        b.addFieldOffset(O.builtin_options, opts, 0);
      }
      return b.endObject();
    });

    const S = F.SubGraph;
    const tensorsVec = tableVec(tensorOffsets);
    const inVec = intVec(inputs);
    const outVec = intVec(outputs);
    const opsVec = tableVec(operatorOffsets);
    const sgName = b.createString('main');
    b.startObject(5);
    b.addFieldOffset(S.tensors, tensorsVec, 0);
    b.addFieldOffset(S.inputs, inVec, 0);
    b.addFieldOffset(S.outputs, outVec, 0);
    b.addFieldOffset(S.operators, opsVec, 0);
    b.addFieldOffset(S.name, sgName, 0);
    const subgraph = b.endObject();

    const codeOffsets = this.codes.map((code, i) => {
      const C = F.OperatorCode;
      b.startObject(4);
      b.addFieldInt8(C.deprecated_builtin_code, Math.min(code, 127), -1);
      b.addFieldInt32(C.version, this.codeVersions[i]!, -1);
      b.addFieldInt32(C.builtin_code, code, -1);
      return b.endObject();
    });

    const M = F.Model;
    const codesVec = tableVec(codeOffsets);
    const sgVec = tableVec([subgraph]);
    const desc = b.createString(description);
    const bufVec = tableVec(bufferOffsets);
    b.startObject(5);
    b.addFieldInt32(M.version, SCHEMA_VERSION, -1);
    b.addFieldOffset(M.operator_codes, codesVec, 0);
    b.addFieldOffset(M.subgraphs, sgVec, 0);
    b.addFieldOffset(M.description, desc, 0);
    b.addFieldOffset(M.buffers, bufVec, 0);
    const model = b.endObject();
    b.finish(model, FILE_IDENTIFIER);
    return b.asUint8Array().slice();
  }
}
