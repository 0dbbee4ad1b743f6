// ONNX import: decode, fuse the exporters' patterns, and run the Importer (importer.ts) with the
// emitter table of ops.ts.

import type { Graph, Model } from '../../runtime/ir.js';
import { OnnxImportError } from './errors.js';
import { Importer } from './importer.js';
import { decodeModel, defaultOpset } from './load.js';
import { EMITTERS } from './ops.js';
import { fusePatterns } from './patterns.js';

export interface ImportOptions {
  /** File name recorded as 'source.model'. */
  sourceName?: string;
}

export function importOnnx(bytes: Uint8Array, opts: ImportOptions = {}): Model {
  const { proto, graph: parts } = decodeModel(bytes);
  const opset = defaultOpset(proto);
  fusePatterns(parts);
  const imp = new Importer(parts, opset, EMITTERS);
  let graph: Graph;
  try {
    graph = imp.run();
  } catch (err) {
    if (err instanceof OnnxImportError) throw err;
    // Hostile input must end in a typed error, never a stray TypeError.
    const why = err instanceof Error ? err.message : String(err);
    throw new OnnxImportError('ONNX_BAD_MODEL', `malformed ONNX graph: ${why}`, { cause: err });
  }
  const producer = `${proto.producerName ?? ''} ${proto.producerVersion ?? ''}`.trim();
  return {
    graph,
    tensors: imp.tensors,
    metadata: {
      'source.model': opts.sourceName ?? '',
      'source.producer': producer,
      'source.opset': opset,
      'source.params': imp.paramCount(),
    },
  };
}
