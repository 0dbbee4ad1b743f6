// TFLite import: .tflite bytes or file -> dense factorlite Model (runtime/ir.ts).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Model } from '../../runtime/ir.js';
import { TfliteError } from './errors.js';
import { importTflite, type TfliteImportOptions } from './import.js';

export { TfliteError, type TfliteErrorCode } from './errors.js';
export { importTflite, type TfliteImportOptions } from './import.js';
export { readTflite, type TfliteFile } from './read.js';
export { withNchwInputs } from './nchwInput.js';

/** True when the bytes carry the TFLite file identifier "TFL3" at offset 4. */
export function isTflite(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && bytes[4] === 0x54 && bytes[5] === 0x46 && bytes[6] === 0x4c && bytes[7] === 0x33;
}

export function importTfliteFile(path: string, opts: TfliteImportOptions = {}): Model {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new TfliteError('TFLITE_PARSE', `cannot read TFLite file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return importTflite(bytes, { sourceName: opts.sourceName ?? basename(path) });
}
