// A small ONNX graph builder: unique names, f32/int64 initializers, nodes with typed attributes.
// Everything the exporter emits goes through here, so the proto details live in one file.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const AT = onnx.AttributeProto.AttributeType;
const DT = onnx.TensorProto.DataType;

type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;

/** A float attribute; bare numbers are ints and bare arrays int lists, as in ONNX exporters. */
export interface FloatAttr {
  f: number;
}
/** A string attribute (mode names). */
export interface StringAttr {
  s: string;
}
export type OnnxAttr = number | number[] | FloatAttr | StringAttr;

function attrProto(name: string, a: OnnxAttr): IAttributeProto {
  if (typeof a === 'number') return { name, type: AT.INT, i: a };
  if (Array.isArray(a)) return { name, type: AT.INTS, ints: a };
  if ('s' in a) return { name, type: AT.STRING, s: new TextEncoder().encode(a.s) };
  return { name, type: AT.FLOAT, f: a.f };
}

export class OnnxGraphBuilder {
  readonly nodes: INodeProto[] = [];
  readonly initializers: ITensorProto[] = [];
  private readonly used = new Set<string>();
  private readonly int64Cache = new Map<string, string>();
  private readonly floatCache = new Map<string, string>();

  /** Reserves names that already exist (graph values, stored tensors) so fresh names avoid them. */
  reserve(names: Iterable<string>): void {
    for (const n of names) this.used.add(n);
  }

  /** A name not used yet, derived from `base`. */
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  /**
   * An f32 initializer. With `key`, a second request for the same key returns the first name
   * (a stored tensor read by several nodes becomes one initializer).
   */
  float(base: string, dims: readonly number[], data: Float32Array, key?: string): string {
    const hit = key === undefined ? undefined : this.floatCache.get(key);
    if (hit !== undefined) return hit;
    const name = this.fresh(base);
    this.initializers.push({
      name, dims: [...dims], dataType: DT.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    if (key !== undefined) this.floatCache.set(key, name);
    return name;
  }

  /** A 1-D int64 initializer (shapes, slice bounds), shared between equal values. */
  int64(base: string, values: readonly number[]): string {
    const key = values.join(',');
    const hit = this.int64Cache.get(key);
    if (hit !== undefined) return hit;
    const name = this.fresh(base);
    this.initializers.push({ name, dims: [values.length], dataType: DT.INT64, int64Data: [...values] });
    this.int64Cache.set(key, name);
    return name;
  }

  /** Adds a node with one output; returns the output name (fresh from `name` unless given). */
  node(op: string, inputs: string[], name: string, attrs: Record<string, OnnxAttr> = {}, output?: string): string {
    const out = output ?? this.fresh(name);
    this.nodes.push({
      opType: op,
      name: this.fresh(`${name}:${op}`),
      input: inputs,
      output: [out],
      attribute: Object.entries(attrs).map(([k, v]) => attrProto(k, v)),
    });
    return out;
  }
}

/** A float tensor value with the given dims; -1 dims become symbolic (`batch` for the first). */
export function valueInfo(name: string, shape?: readonly number[], symbols?: () => string): onnxProto.onnx.IValueInfoProto {
  const tensorType: onnxProto.onnx.TypeProto.ITensor = { elemType: DT.FLOAT };
  if (shape) {
    tensorType.shape = { dim: shape.map((d) => (d < 0 ? { dimParam: symbols ? symbols() : 'batch' } : { dimValue: d })) };
  }
  return { name, type: { tensorType } };
}

export { onnx };
