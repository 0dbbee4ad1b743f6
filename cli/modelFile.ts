// Loads a model from a path: a .flm file as is, a TFLite or ONNX file through its importer (dense).
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { importOnnx, OnnxImportError } from '../converter/onnx/index.js';
import { importTflite, isTflite, TfliteError } from '../converter/tflite/index.js';
import { FlmError } from '../runtime/format/errors.js';
import { readFlm } from '../runtime/format/reader.js';
import type { Model } from '../runtime/ir.js';
import { CliError } from './errors.js';

export type ModelSource = 'flm' | 'onnx' | 'tflite';

export function readModelBytes(path: string): Uint8Array {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new CliError('BAD_INPUT', `model file ${path} does not exist`);
  }
  if (!st.isFile()) throw new CliError('BAD_INPUT', `model path ${path} is not a file`);
  return readFileSync(path);
}

export function isFlm(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x46 && bytes[1] === 0x4c && bytes[2] === 0x4d && bytes[3] === 0;
}

/** readFlm, its errors naming the file: "<path>: <what is wrong> [FLM_CODE]". */
export function readFlmAt(path: string, bytes: Uint8Array): Model {
  try {
    return readFlm(bytes);
  } catch (e) {
    if (e instanceof FlmError) throw new CliError(e.code, `${path}: ${e.message.replace(`${e.code}: `, '')}`, { cause: e });
    throw e;
  }
}

export function loadModel(path: string): { model: Model; source: ModelSource; bytes: number } {
  const bytes = readModelBytes(path);
  if (isFlm(bytes)) return { model: readFlmAt(path, bytes), source: 'flm', bytes: bytes.length };
  if (isTflite(bytes)) {
    let model: Model;
    try {
      model = importTflite(bytes, { sourceName: basename(path) });
    } catch (e) {
      if (e instanceof TfliteError) throw new CliError('BAD_INPUT', `${path}: ${e.message}`, { cause: e });
      throw e;
    }
    model.metadata['source.file_bytes'] = bytes.length;
    return { model, source: 'tflite', bytes: bytes.length };
  }
  try {
    const model = importOnnx(bytes, { sourceName: basename(path), baseDir: dirname(path) });
    model.metadata['source.file_bytes'] = bytes.length;
    return { model, source: 'onnx', bytes: bytes.length };
  } catch (e) {
    if (e instanceof OnnxImportError && e.code === 'ONNX_PARSE') {
      throw new CliError('NOT_A_MODEL', `${path} is neither a .flm file, a TFLite model nor an ONNX model (${e.message})`, { cause: e });
    }
    throw e;
  }
}
