export { FlmError, FLM_ERROR_CODES, isFlmError, type FlmErrorCode } from './errors.js';
export {
  ALIGNMENT, FORMAT_VERSION, MAGIC, MAX_DEPTH, MAX_DIM, MAX_HEADER_LEN, MAX_RANK, PREAMBLE_SIZE,
  SUPPORTED_VERSIONS, alignUp, crc32, dataOffsetFor, decodePreamble, encodePreamble, type Preamble,
} from './layout.js';
export { checkPlainMsgpack } from './msgpack-subset.js';
export {
  DTYPE_BY_ID, OP_BY_ID, checkGraph, checkInputShape, checkMetadata, checkQuant, checkShape,
  checkedByteLength, checkedNumel, isDType, isOpName,
} from './validate.js';
export { readFlm, readFlmFile } from './reader.js';
export {
  f16ArrayToF32, f16BitsToF32, f32ArrayToF16, f32ToF16Bits, quantizeTensor, tensorToFloat32,
} from './dtype.js';
export { encodeMemoryPlan, parseMemoryPlan, MAX_PLANS, MAX_PLAN_ENTRIES } from './memoryPlan.js';
