// The converter's export surface: a factorised Model as ONNX (export/onnx.ts) and its typed error.
// TFLite export is export/tflite.ts.
export {
  canExport, DEFAULT_EXPORT_OPSET, exportOnnx, MAX_EXPORT_OPSET, MIN_EXPORT_OPSET, type ExportOptions,
} from './onnx.js';
export { ExportError, type ExportErrorCode } from './errors.js';
