// ONNX import: ONNX bytes or file -> dense factorlite Model (runtime/ir.ts).

import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Model } from '../../runtime/ir.js';
import { OnnxImportError } from './errors.js';
import { type ImportOptions, importOnnx } from './import.js';

export { OnnxImportError, type OnnxImportErrorCode } from './errors.js';
export { importOnnx, type ImportOptions } from './import.js';
export { MIN_OPSET, MAX_OPSET } from './load.js';

export function importOnnxFile(path: string, opts: ImportOptions = {}): Model {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new OnnxImportError('ONNX_PARSE', `cannot read ONNX file ${path}: ${why}`, { cause: err });
  }
  return importOnnx(bytes, { sourceName: opts.sourceName ?? basename(path), baseDir: opts.baseDir ?? dirname(path) });
}
