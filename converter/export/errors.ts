// Every failure of ONNX export is an ExportError; tests check `code`, never the message.
export type ExportErrorCode =
  /** An option is out of range (e.g. an opset the exporter cannot target). */
  | 'EXPORT_BAD_OPTIONS'
  /** The model is inconsistent: a missing weight, a bad shape, an undefined value. */
  | 'EXPORT_BAD_MODEL'
  /** The model is valid but uses something the target opset cannot express. */
  | 'EXPORT_UNSUPPORTED';

export class ExportError extends Error {
  constructor(readonly code: ExportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
