// One typed error for every way reading or importing a .tflite file can fail. Tests check `code`.

export type TfliteErrorCode =
  /** Not a TFLite flatbuffer: too short, wrong identifier. */
  | 'TFLITE_PARSE'
  /** An offset, length or vtable points outside the file or overlaps what it must not. */
  | 'TFLITE_BOUNDS'
  /** Well-formed flatbuffer, inconsistent model: bad tensor index, shape, buffer size. */
  | 'TFLITE_BAD_MODEL'
  /** A builtin or custom op the importer does not translate. */
  | 'TFLITE_UNSUPPORTED_OP'
  /** A supported op with an option, type or layout the importer does not translate. */
  | 'TFLITE_UNSUPPORTED';

export class TfliteError extends Error {
  override readonly name = 'TfliteError';

  constructor(readonly code: TfliteErrorCode, message: string, options?: { cause?: unknown }) {
    // One printable line: names in a hostile file may hold any bytes.
    const clean = message.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
    super(clean.length > 500 ? `${clean.slice(0, 497)}...` : clean, options);
  }
}
