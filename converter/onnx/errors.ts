// One typed error for every way an ONNX import can fail. Tests check `code`, not the text.

export type OnnxImportErrorCode =
  | 'ONNX_PARSE'
  | 'ONNX_BAD_MODEL'
  | 'ONNX_UNSUPPORTED_OP'
  | 'ONNX_UNSUPPORTED_OPSET'
  | 'ONNX_UNSUPPORTED_ATTR';

export class OnnxImportError extends Error {
  override readonly name = 'OnnxImportError';
  readonly code: OnnxImportErrorCode;

  constructor(code: OnnxImportErrorCode, message: string, options?: { cause?: unknown }) {
    // One line, printable: names from a hostile file may hold any bytes.
    super(oneLine(message), options);
    this.code = code;
  }
}

/** Where a node-level error happened, for messages: `node "/c1/Conv" (Conv, opset 13)`. */
export function nodeRef(name: string, opType: string, opset: number): string {
  return `node "${name}" (${opType}, opset ${opset})`;
}

function oneLine(s: string): string {
  const clean = s.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return clean.length > 500 ? `${clean.slice(0, 497)}...` : clean;
}
