// Bytes -> a checked ModelProto. protobuf decoding of random or truncated bytes can "succeed"
// with garbage, so a model must also have a graph with nodes, inputs and outputs.

import onnxProto from 'onnx-proto';
import { OnnxImportError } from './errors.js';
import { toNum } from './tensors.js';

const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;

/** The graph's lists, never null. */
export interface GraphParts {
  node: onnxProto.onnx.INodeProto[];
  input: onnxProto.onnx.IValueInfoProto[];
  output: onnxProto.onnx.IValueInfoProto[];
  initializer: onnxProto.onnx.ITensorProto[];
}

export const MIN_OPSET = 11;
export const MAX_OPSET = 17;

export function decodeModel(bytes: Uint8Array): { proto: ModelProto; graph: GraphParts } {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
    throw new OnnxImportError('ONNX_PARSE', 'not an ONNX model: empty input');
  }
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new OnnxImportError('ONNX_PARSE', `not an ONNX model (protobuf decoding failed: ${why})`, { cause: err });
  }
  if (!model.graph) throw new OnnxImportError('ONNX_PARSE', 'not an ONNX model: no graph');
  const g: GraphParts = {
    node: model.graph.node ?? [],
    input: model.graph.input ?? [],
    output: model.graph.output ?? [],
    initializer: model.graph.initializer ?? [],
  };
  if (g.node.length === 0) throw new OnnxImportError('ONNX_PARSE', 'not an ONNX model: the graph has no nodes');
  if (g.input.length === 0) throw new OnnxImportError('ONNX_PARSE', 'not an ONNX model: the graph has no inputs');
  if (g.output.length === 0) throw new OnnxImportError('ONNX_PARSE', 'not an ONNX model: the graph has no outputs');
  if (model.opsetImport.length === 0) throw new OnnxImportError('ONNX_PARSE', 'not an ONNX model: no opset_import');
  const ir = toNum(model.irVersion);
  if (ir < 1 || ir > 100) throw new OnnxImportError('ONNX_PARSE', `not an ONNX model: ir_version ${ir}`);
  for (const n of g.node) {
    if (!n.opType) throw new OnnxImportError('ONNX_PARSE', `not an ONNX model: a node has no op_type`);
  }
  return { proto: model, graph: g };
}

/** The default-domain opset, checked against the supported range. */
export function defaultOpset(model: ModelProto): number {
  const entry = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!entry) {
    throw new OnnxImportError('ONNX_UNSUPPORTED_OPSET', `the model imports no default-domain opset (supported: ${MIN_OPSET}-${MAX_OPSET})`);
  }
  const v = toNum(entry.version);
  if (v < MIN_OPSET || v > MAX_OPSET) {
    throw new OnnxImportError('ONNX_UNSUPPORTED_OPSET', `ONNX opset ${v} is not supported (supported: ${MIN_OPSET}-${MAX_OPSET})`);
  }
  return v;
}
