// Tensors stored outside the .onnx file (onnx.save_model(..., save_as_external_data=True), or any
// model over protobuf's 2 GB): each names a file beside the model (location) and a byte range
// (offset, length). They are read into raw_data before import, so the rest of the importer sees
// ordinary tensors. A location must stay inside the model's folder (as onnx's checker requires).
import { readFileSync } from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';
import onnxProto from 'onnx-proto';
import { OnnxImportError } from './errors.js';
import type { GraphParts } from './load.js';

const EXTERNAL = onnxProto.onnx.TensorProto.DataLocation.EXTERNAL;

/** Reads every external initializer of `g` from `baseDir` (the model's folder) into raw_data. */
export function inlineExternalData(g: GraphParts, baseDir: string | undefined): void {
  const files = new Map<string, Uint8Array>();
  for (const t of g.initializer) {
    if (t.dataLocation !== EXTERNAL) continue;
    const what = `initializer "${t.name ?? ''}"`;
    const kv = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = kv.get('location');
    if (!location) throw new OnnxImportError('ONNX_BAD_MODEL', `${what}: external data without a location`);
    if (baseDir === undefined) {
      throw new OnnxImportError('ONNX_UNSUPPORTED_ATTR', `${what}: its data is in the external file "${location}"; import the model from its file (the folder holds that file)`);
    }
    const rel = normalize(location);
    if (isAbsolute(rel) || rel === '..' || rel.startsWith(`..${sep}`)) {
      throw new OnnxImportError('ONNX_BAD_MODEL', `${what}: external data location "${location}" is outside the model's folder`);
    }
    let bytes = files.get(rel);
    if (!bytes) {
      try {
        bytes = readFileSync(join(baseDir, rel));
      } catch (err) {
        throw new OnnxImportError('ONNX_BAD_MODEL', `${what}: cannot read its external data file ${join(baseDir, rel)} (${(err as Error).message.split('\n')[0]})`, { cause: err });
      }
      files.set(rel, bytes);
    }
    const offset = kv.has('offset') ? Number(kv.get('offset')) : 0;
    const length = kv.has('length') ? Number(kv.get('length')) : bytes.length - offset;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > bytes.length) {
      throw new OnnxImportError('ONNX_BAD_MODEL', `${what}: external range offset ${kv.get('offset')} length ${kv.get('length')} is outside ${rel} (${bytes.length} bytes)`);
    }
    t.rawData = bytes.subarray(offset, offset + length);
    t.dataLocation = onnxProto.onnx.TensorProto.DataLocation.DEFAULT;
    t.externalData = [];
  }
}
