// Every failure to read or write a .flm file is an FlmError with one code per cause.
// Tests check `code`, never the message text. docs/FORMAT.md lists each code and when it fires.

export type FlmErrorCode =
  /** Fewer bytes than the fixed preamble. */
  | 'FLM_TOO_SHORT'
  /** The first four bytes are not "FLM\0". */
  | 'FLM_BAD_MAGIC'
  /** A format version this reader does not know; the message names the supported ones. */
  | 'FLM_UNSUPPORTED_VERSION'
  /** Reserved preamble flags are not zero. */
  | 'FLM_BAD_FLAGS'
  /** header_len exceeds the cap (MAX_HEADER_LEN). */
  | 'FLM_HEADER_TOO_LARGE'
  /** The file ends before the header (and its padding) does. */
  | 'FLM_HEADER_TRUNCATED'
  /** The file length is not data_offset + data_len. */
  | 'FLM_FILE_SIZE_MISMATCH'
  /** A padding byte (after the header, or between tensors) is not zero. */
  | 'FLM_BAD_PADDING'
  /** CRC32 of header + data does not match the preamble. */
  | 'FLM_CRC_MISMATCH'
  /** The header is not one value of the plain msgpack subset (bad bytes, extension, bin, non-string
   *  key, duplicate key, invalid UTF-8, nesting too deep, bytes left over). */
  | 'FLM_HEADER_DECODE'
  /** The header decodes but a key is missing, unknown, or has the wrong type. */
  | 'FLM_HEADER_SCHEMA'
  /** A metadata key is not dotted lower_snake_case, or a value is not plain msgpack data. */
  | 'FLM_BAD_METADATA'
  /** Unknown dtype id, or tensor data whose array type does not match its dtype. */
  | 'FLM_BAD_DTYPE'
  /** Rank above MAX_RANK, a dimension out of range, or a non-integer dimension. */
  | 'FLM_BAD_SHAPE'
  /** Element count or byte size beyond Number.MAX_SAFE_INTEGER. */
  | 'FLM_SIZE_OVERFLOW'
  /** A tensor's byte length is not its element count times its dtype size. */
  | 'FLM_LENGTH_MISMATCH'
  /** A tensor offset is not a multiple of the alignment (64). */
  | 'FLM_MISALIGNED'
  /** A tensor does not start at the aligned end of the previous one (gap, overlap, or out of order). */
  | 'FLM_GAP_OR_OVERLAP'
  /** A tensor ends past the end of the data section. */
  | 'FLM_OUT_OF_BOUNDS'
  /** The data section goes on after the end of the last tensor. */
  | 'FLM_TRAILING_BYTES'
  /** Two tensors share a name. */
  | 'FLM_DUPLICATE_TENSOR'
  /** int8 without a valid scale, a float tensor with one, or a bad scale/axis. */
  | 'FLM_BAD_QUANT'
  /** An op id (or op name, when writing) that is not in OP_IDS. */
  | 'FLM_UNKNOWN_OP'
  /** A node input or graph output names no known value, or a value is defined twice. */
  | 'FLM_BAD_GRAPH'
  /** A node's weight role names a tensor that is not stored. */
  | 'FLM_MISSING_TENSOR'
  /** A factorised op (FACTOR_OPS) carries a role named `weight`. */
  | 'FLM_DENSE_WEIGHT_IN_FACTOR_LAYER'
  /** The file could not be read or written (readFlmFile / writeFlmFile). */
  | 'FLM_IO'
  /** A memory plan breaks a rule of docs/FORMAT.md section 7 (coverage, lifetimes, bytes,
   *  alignment, overlap of live buffers, too little scratch), or is malformed. */
  | 'FLM_MEMORY_PLAN'
  /** A node lacks an attribute its op requires (runtime/format/attrs.ts). */
  | 'FLM_ATTR_MISSING'
  /** A node attribute has the wrong type: a number for a list, a list for a number, a non-integer. */
  | 'FLM_ATTR_TYPE'
  /** A node's list attribute has the wrong number of values (or tt/tr modes of unequal counts). */
  | 'FLM_ATTR_LENGTH'
  /** A node attribute is out of range: a stride or dilation of 0, a negative pad, a kernel past
   *  65535, a perm that is not a permutation, more than one -1 in a reshape shape. */
  | 'FLM_ATTR_RANGE';

export const FLM_ERROR_CODES: readonly FlmErrorCode[] = [
  'FLM_TOO_SHORT', 'FLM_BAD_MAGIC', 'FLM_UNSUPPORTED_VERSION', 'FLM_BAD_FLAGS',
  'FLM_HEADER_TOO_LARGE', 'FLM_HEADER_TRUNCATED', 'FLM_FILE_SIZE_MISMATCH', 'FLM_BAD_PADDING',
  'FLM_CRC_MISMATCH', 'FLM_HEADER_DECODE', 'FLM_HEADER_SCHEMA', 'FLM_BAD_METADATA',
  'FLM_BAD_DTYPE', 'FLM_BAD_SHAPE', 'FLM_SIZE_OVERFLOW', 'FLM_LENGTH_MISMATCH', 'FLM_MISALIGNED',
  'FLM_GAP_OR_OVERLAP', 'FLM_OUT_OF_BOUNDS', 'FLM_TRAILING_BYTES', 'FLM_DUPLICATE_TENSOR',
  'FLM_BAD_QUANT', 'FLM_UNKNOWN_OP', 'FLM_BAD_GRAPH', 'FLM_MISSING_TENSOR',
  'FLM_DENSE_WEIGHT_IN_FACTOR_LAYER', 'FLM_IO', 'FLM_MEMORY_PLAN',
  'FLM_ATTR_MISSING', 'FLM_ATTR_TYPE', 'FLM_ATTR_LENGTH', 'FLM_ATTR_RANGE',
];

export class FlmError extends Error {
  readonly code: FlmErrorCode;

  constructor(code: FlmErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'FlmError';
    this.code = code;
  }
}

export function isFlmError(e: unknown): e is FlmError {
  return e instanceof FlmError;
}
