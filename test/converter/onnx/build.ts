// Builds small ONNX models in memory for the importer tests, and runs them in onnxruntime.

import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import type { Model, Tensor } from '../../../runtime/ir.js';
import { Session } from '../../../runtime/session.js';
import { importOnnx } from '../../../converter/onnx/index.js';

const { onnx } = onnxProto;
const AT = onnx.AttributeProto.AttributeType;
const DT = onnx.TensorProto.DataType;

export type Attr =
  | { kind: 'int'; v: number } | { kind: 'float'; v: number } | { kind: 'ints'; v: number[] }
  | { kind: 'floats'; v: number[] } | { kind: 'string'; v: string } | { kind: 'tensor'; v: Init };

export const int = (v: number): Attr => ({ kind: 'int', v });
export const float = (v: number): Attr => ({ kind: 'float', v });
export const ints = (v: number[]): Attr => ({ kind: 'ints', v });
export const floats = (v: number[]): Attr => ({ kind: 'floats', v });
export const str = (v: string): Attr => ({ kind: 'string', v });

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attrs?: Record<string, Attr | number | number[] | string>;
  domain?: string;
}

export interface Init {
  name: string;
  dims: number[];
  /** Float data goes to raw_data (or float_data with `floatData`), ints to int64_data. */
  data: Float32Array | (number | bigint)[];
  /** int64 data: raw_data when any value is a bigint, else int64_data. */
  int64?: boolean;
  floatData?: boolean;
}

export interface ModelSpec {
  opset?: number;
  inputs: { name: string; shape: (number | string)[] }[];
  outputs: string[];
  nodes: NodeSpec[];
  inits?: Init[];
  producer?: string;
}

function tensorProto(t: Init): onnxProto.onnx.ITensorProto {
  if (t.int64) {
    const vals = [...t.data];
    if (vals.some((v) => typeof v === 'bigint')) {
      const raw = BigInt64Array.from(vals, (v) => BigInt(v));
      return { name: t.name, dims: t.dims, dataType: DT.INT64, rawData: new Uint8Array(raw.buffer) };
    }
    return { name: t.name, dims: t.dims, dataType: DT.INT64, int64Data: vals as number[] };
  }
  const f = Float32Array.from(t.data as ArrayLike<number>);
  if (t.floatData) return { name: t.name, dims: t.dims, dataType: DT.FLOAT, floatData: [...f] };
  return { name: t.name, dims: t.dims, dataType: DT.FLOAT, rawData: new Uint8Array(f.buffer, f.byteOffset, f.byteLength) };
}

function attrProto(name: string, a: Attr | number | number[] | string): onnxProto.onnx.IAttributeProto {
  // Bare numbers are ints, bare arrays int lists, bare strings strings; floats must use float().
  const spec: Attr = typeof a === 'number' ? int(a) : Array.isArray(a) ? ints(a) : typeof a === 'string' ? str(a) : a;
  switch (spec.kind) {
    case 'int': return { name, type: AT.INT, i: spec.v };
    case 'float': return { name, type: AT.FLOAT, f: spec.v };
    case 'ints': return { name, type: AT.INTS, ints: spec.v };
    case 'floats': return { name, type: AT.FLOATS, floats: spec.v };
    case 'string': return { name, type: AT.STRING, s: new TextEncoder().encode(spec.v) };
    case 'tensor': return { name, type: AT.TENSOR, t: tensorProto(spec.v) };
  }
}

export function buildModel(spec: ModelSpec): Uint8Array {
  const valueInfo = (name: string, shape?: (number | string)[]): onnxProto.onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: {
        elemType: DT.FLOAT,
        shape: shape ? { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } : undefined,
      },
    },
  });
  const model: onnxProto.onnx.IModelProto = {
    irVersion: 8,
    producerName: spec.producer ?? 'factorlite-test',
    opsetImport: [{ domain: '', version: spec.opset ?? 13 }],
    graph: {
      name: 'test',
      node: spec.nodes.map((n, i) => ({
        name: n.name ?? `${n.op}_${i}`,
        opType: n.op,
        domain: n.domain ?? '',
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attrProto(k, v)),
      })),
      input: spec.inputs.map((i) => valueInfo(i.name, i.shape)),
      output: spec.outputs.map((o) => valueInfo(o)),
      initializer: (spec.inits ?? []).map(tensorProto),
    },
  };
  return onnx.ModelProto.encode(model).finish();
}

/** Seeded generator (mulberry32) with uniform and normal draws. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  uniform(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    const u = Math.max(this.uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }
  array(n: number, scale = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.normal() * scale;
    return a;
  }
  tensor(shape: number[], scale = 1): Tensor {
    return { shape, data: this.array(shape.reduce((a, b) => a * b, 1), scale) };
  }
}

export async function runOrt(bytes: Uint8Array, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const session = await ort.InferenceSession.create(bytes);
  const inputs: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) inputs[k] = new ort.Tensor('float32', t.data, t.shape);
  const res = await session.run(inputs);
  const out: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(res)) out[k] = { shape: [...t.dims], data: t.data as Float32Array };
  await session.release();
  return out;
}

/** Max abs difference divided by max(1, max |expected|). */
export function relDiff(a: Tensor, b: Tensor): number {
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < b.data.length; i++) {
    diff = Math.max(diff, Math.abs(a.data[i]! - b.data[i]!));
    scale = Math.max(scale, Math.abs(b.data[i]!));
  }
  return diff / scale;
}

export interface Comparison {
  model: Model;
  /** Per output: max abs difference relative to max(1, max |expected|). */
  diffs: Record<string, number>;
  ours: Record<string, Tensor>;
  theirs: Record<string, Tensor>;
}

/** Imports the model, runs it in our Session and in onnxruntime on the same feeds. */
export async function compareWithOrt(spec: ModelSpec | Uint8Array, feeds: Record<string, Tensor>): Promise<Comparison> {
  const bytes = spec instanceof Uint8Array ? spec : buildModel(spec);
  const theirs = await runOrt(bytes, feeds);
  const model = importOnnx(bytes, { sourceName: 'test.onnx' });
  const ours = Session.create(model).run(feeds);
  const diffs: Record<string, number> = {};
  for (const [k, exp] of Object.entries(theirs)) {
    const got = ours[k];
    if (!got || got.shape.join(',') !== exp.shape.join(',')) {
      diffs[k] = Infinity;
      continue;
    }
    diffs[k] = relDiff(got, exp);
  }
  return { model, diffs, ours, theirs };
}

export const TOL = 1e-4;
