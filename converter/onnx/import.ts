// ONNX import: decode, fuse the exporters' patterns, and run the Importer (importer.ts) with the
// emitter table of ops.ts.

import type { Graph, Model, Tensor } from '../../runtime/ir.js';
import { referenceBackend } from '../../runtime/kernels/backend.js';
import { Session } from '../../runtime/session.js';
import { OnnxImportError } from './errors.js';
import { Importer } from './importer.js';
import { inlineExternalData } from './externalData.js';
import { decodeModel, defaultOpset } from './load.js';
import { EMITTERS } from './ops.js';
import { fusePatterns } from './patterns.js';

export interface ImportOptions {
  /** File name recorded as 'source.model'. */
  sourceName?: string;
  /** The model file's folder, where tensors stored as external data are read from. */
  baseDir?: string;
}

export function importOnnx(bytes: Uint8Array, opts: ImportOptions = {}): Model {
  const fixed = importOnce(bytes, opts);
  const batch = fixedBatch(fixed);
  if (batch === undefined) return fixed;
  // An export without dynamic_axes (the tutorials' way) fixes the batch it was traced at; users
  // then evaluate and calibrate on any number of samples. Import again with that axis free, and
  // keep the result only if it computes what the fixed graph computes, sample by sample.
  let free: Model;
  try {
    free = importOnce(bytes, opts, batch);
  } catch {
    return fixed;
  }
  return sameBySample(fixed, free, batch) ? free : fixed;
}

function importOnce(bytes: Uint8Array, opts: ImportOptions, freeBatch?: number): Model {
  const { proto, graph: parts } = decodeModel(bytes);
  const opset = defaultOpset(proto);
  inlineExternalData(parts, opts.baseDir);
  fusePatterns(parts);
  const imp = new Importer(parts, opset, EMITTERS);
  imp.freeBatch = freeBatch;
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

/** The leading dim shared by every graph input (rank >= 2, all fixed), if there is one. */
function fixedBatch(m: Model): number | undefined {
  const ins = m.graph.inputs;
  const b = ins[0]?.shape[0];
  if (b === undefined || b < 1) return undefined;
  return ins.every((i) => i.shape.length >= 2 && i.shape.every((d) => d > 0) && i.shape[0] === b) ? b : undefined;
}

/**
 * Whether the free-batch model, run on B + 1 seeded samples, gives for its first B rows what the
 * fixed model gives for samples 0..B-1, and for its last row what the fixed model gives as row
 * B - 1 of samples 1..B: the outputs are per sample, batch-major, and equal to the fixed graph's.
 */
function sameBySample(fixed: Model, free: Model, B: number): boolean {
  try {
    const per = fixed.graph.inputs.map((i) => i.shape.slice(1).reduce((a, d) => a * d, 1));
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed / 4294967296) * 2 - 1;
    };
    const xs = per.map((n) => Float32Array.from({ length: (B + 1) * n }, rand));
    const feeds = (from: number, count: number) => Object.fromEntries(fixed.graph.inputs.map((inp, i) => [inp.name, {
      shape: [count, ...inp.shape.slice(1)], data: xs[i]!.slice(from * per[i]!, (from + count) * per[i]!),
    } as Tensor]));
    const opts = { backend: referenceBackend, retainWeights: true };
    const a = Session.create(fixed, opts).run(feeds(0, B));
    const b = Session.create(fixed, opts).run(feeds(1, B));
    const f = Session.create(free, opts).run(feeds(0, B + 1));
    for (const name of fixed.graph.outputs) {
      const ya = a[name]!;
      const yb = b[name]!;
      const yf = f[name];
      if (!yf || yf.shape[0] !== B + 1 || ya.shape[0] !== B || yf.data.length !== ya.data.length / B * (B + 1)) return false;
      const row = ya.data.length / B;
      const close = (u: Float32Array, v: Float32Array) => {
        let num = 0;
        let den = 0;
        for (let i = 0; i < u.length; i++) {
          if (!Number.isFinite(u[i]!) || !Number.isFinite(v[i]!)) return false;
          num = Math.max(num, Math.abs(u[i]! - v[i]!));
          den = Math.max(den, Math.abs(v[i]!));
        }
        return num <= 1e-5 * Math.max(den, 1e-12);
      };
      if (!close(yf.data.subarray(0, B * row), ya.data)) return false;
      if (!close(yf.data.subarray(B * row), yb.data.subarray((B - 1) * row))) return false;
    }
    return true;
  } catch {
    return false;
  }
}
