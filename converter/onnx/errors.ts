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
    super(message, options);
    this.code = code;
  }
}

/** Where a node-level error happened, for messages: `node "/c1/Conv" (Conv, opset 13)`. */
export function nodeRef(name: string, opType: string, opset: number): string {
  return `node "${name}" (${opType}, opset ${opset})`;
}
