// ONNX export of a factorised Model: each factor kind becomes a chain of small Convs or MatMuls
// over its factors, so any ONNX runtime executes the compressed model without the dense weights.
//
//   Model (runtime/ir.ts) --rank inference--> per-node emitter --> ONNX nodes + f32 initializers
//
// f16 and int8 stored tensors are dequantised (runtime/format/dtype.ts tensorToFloat32) into f32
// initializers: the ONNX graph is plain float, the same numbers the runtime computes with.
import onnxProto from 'onnx-proto';
import type { Model, OpName } from '../../runtime/ir.js';
import { OnnxGraphBuilder, valueInfo } from './builder.js';
import { makeWeight, type EmitContext, type Emitter, type ExportWeight } from './context.js';
import { CONVERTER_KINDS } from '../methods/index.js';
import { ExportError } from './errors.js';
import { PLAIN_OPS } from './plainOps.js';
import { NORM_OPS } from './normOps.js';

const { onnx } = onnxProto;

export interface ExportOptions {
  /** Default-domain opset to target; 11 to 21, default 13. */
  opset?: number;
}

export const MIN_EXPORT_OPSET = 11;
export const MAX_EXPORT_OPSET = 21;
export const DEFAULT_EXPORT_OPSET = 13;

/** Every op's emitter: the plain and norm ops, and each parametric kind's from its method module. */
const EMITTERS = new Map<OpName, Emitter>([
  ...(Object.entries({ ...PLAIN_OPS, ...NORM_OPS }) as Array<[OpName, Emitter]>),
  ...CONVERTER_KINDS.map((k): [OpName, Emitter] => [k.op, k.onnx]),
]);

/** Whether export knows the op (test/converter/methods/registry.test.ts walks every runtime op). */
export function canExport(op: OpName): boolean {
  return EMITTERS.has(op);
}

/** The lowest IR version that carries the opset (onnx/docs/Versioning.md), so older runtimes load it. */
function irVersionFor(opset: number): number {
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

/** Metadata scalars travel as ONNX metadata_props (strings). */
function metadataProps(model: Model): onnxProto.onnx.IStringStringEntryProto[] {
  const props: onnxProto.onnx.IStringStringEntryProto[] = [];
  for (const [key, value] of Object.entries(model.metadata)) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') props.push({ key, value: String(value) });
  }
  return props;
}

/** Encodes `model` as an ONNX ModelProto: dynamic batch axis "batch", graph input/output names kept. */
export function exportOnnx(model: Model, opts: ExportOptions = {}): Uint8Array {
  const opset = opts.opset ?? DEFAULT_EXPORT_OPSET;
  if (!Number.isInteger(opset) || opset < MIN_EXPORT_OPSET || opset > MAX_EXPORT_OPSET) {
    throw new ExportError('EXPORT_BAD_OPTIONS', `export: opset ${opset} is not supported (supported: ${MIN_EXPORT_OPSET}-${MAX_EXPORT_OPSET})`);
  }
  const { graph, tensors } = model;
  const b = new OnnxGraphBuilder();
  b.reserve(graph.inputs.map((i) => i.name));
  for (const n of graph.nodes) b.reserve(n.outputs);

  // Rank of every value, forward from the graph inputs: enough to choose Gemm vs MatMul and to
  // keep leading axes, with every size but the channel/feature ones left to run time.
  const ranks = new Map<string, number>(graph.inputs.map((i) => [i.name, i.shape.length]));
  const weights = new Map<string, ExportWeight>();
  const weightOf = (name: string): ExportWeight | undefined => {
    let w = weights.get(name);
    if (!w) {
      const t = tensors.get(name);
      if (!t) return undefined;
      w = makeWeight(t);
      weights.set(name, w);
    }
    return w;
  };

  for (const node of graph.nodes) {
    const emit = EMITTERS.get(node.op);
    if (!emit) throw new ExportError('EXPORT_UNSUPPORTED', `export: node ${node.name}: unknown op ${node.op}`);
    if (node.outputs.length !== 1) throw new ExportError('EXPORT_BAD_MODEL', `export: node ${node.name} (${node.op}) must have one output`);
    const inputs: string[] = [];
    const inRanks: number[] = [];
    for (const inp of node.inputs) {
      const r = ranks.get(inp);
      if (r !== undefined) {
        inputs.push(inp);
        inRanks.push(r);
        continue;
      }
      // A stored tensor as a constant operand (add, mul): an initializer under its own name.
      const w = weightOf(inp);
      if (!w) throw new ExportError('EXPORT_BAD_MODEL', `export: node ${node.name}: input ${inp} is neither a value nor a stored tensor`);
      inputs.push(b.float(inp, w.shape, w.data, inp));
      inRanks.push(w.shape.length);
    }
    if (inputs.length === 0) throw new ExportError('EXPORT_BAD_MODEL', `export: node ${node.name} (${node.op}) has no input`);
    const ctx: EmitContext = {
      b, opset, node, inputs, ranks: inRanks, output: node.outputs[0]!,
      optionalWeight(role) {
        const name = node.weights[role];
        if (name === undefined) return undefined;
        const w = weightOf(name);
        if (!w) throw new ExportError('EXPORT_BAD_MODEL', `export: node ${node.name} (${node.op}): weight ${role} names missing tensor ${name}`);
        return w;
      },
      weight(role) {
        const w = ctx.optionalWeight(role);
        if (!w) throw new ExportError('EXPORT_BAD_MODEL', `export: node ${node.name} (${node.op}): missing weight ${role}`);
        return w;
      },
    };
    ranks.set(node.outputs[0]!, emit(ctx));
  }

  for (const o of graph.outputs) {
    if (!ranks.has(o)) throw new ExportError('EXPORT_BAD_MODEL', `export: graph output ${o} is never produced`);
  }
  const inputs = graph.inputs.map((i) => {
    let free = 0;
    // The first free axis is the batch; any other free axis gets its own symbol.
    return valueInfo(i.name, i.shape, () => (free++ === 0 ? 'batch' : `${i.name}_dim${free - 1}`));
  });
  const proto = onnx.ModelProto.create({
    irVersion: irVersionFor(opset),
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'factorlite',
    graph: {
      name: typeof model.metadata['source.model'] === 'string' ? model.metadata['source.model'] : 'factorlite',
      node: b.nodes,
      initializer: b.initializers,
      input: inputs,
      output: graph.outputs.map((o) => valueInfo(o)),
    },
    metadataProps: metadataProps(model),
  });
  return onnx.ModelProto.encode(proto).finish();
}
