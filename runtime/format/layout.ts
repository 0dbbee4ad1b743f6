// The fixed parts of a .flm file: preamble, alignment, limits, CRC. Byte layout in docs/FORMAT.md.
//
//   0        24            24+header_len   data_offset (multiple of 64)          file end
//   +--------+----------------+-----------+---------------------------------------+
//   |preamble| msgpack header | zero pad  | tensor 0 | pad | tensor 1 | ... | last |
//   +--------+----------------+-----------+---------------------------------------+
//            \_________________ CRC32 covers every byte from here to the end ______/

import CRC32 from 'crc-32';
import { FlmError } from './errors.js';

/** "FLM\0". */
export const MAGIC = Uint8Array.of(0x46, 0x4c, 0x4d, 0x00);
export const FORMAT_VERSION = 1;
export const SUPPORTED_VERSIONS: readonly number[] = [1];
export const PREAMBLE_SIZE = 24;
/** Every tensor (and the data section itself) starts at a multiple of this, counted from file start. */
export const ALIGNMENT = 64;
/** A header larger than this is refused before anything is decoded. */
export const MAX_HEADER_LEN = 16 * 1024 * 1024;
export const MAX_RANK = 8;
/** Largest dimension of a stored tensor or graph input (fits a C int32_t). */
export const MAX_DIM = 0x7fffffff;
/** Deepest msgpack nesting accepted in the header (metadata included). */
export const MAX_DEPTH = 32;

export interface Preamble {
  version: number;
  flags: number;
  headerLen: number;
  crc32: number;
  dataLen: number;
}

export function alignUp(n: number): number {
  return Math.ceil(n / ALIGNMENT) * ALIGNMENT;
}

export function dataOffsetFor(headerLen: number): number {
  return alignUp(PREAMBLE_SIZE + headerLen);
}

/** CRC32 (IEEE 802.3, as zlib) as an unsigned 32-bit number. */
export function crc32(bytes: Uint8Array): number {
  return CRC32.buf(bytes) >>> 0;
}

export function encodePreamble(p: Preamble): Uint8Array {
  const out = new Uint8Array(PREAMBLE_SIZE);
  const dv = new DataView(out.buffer);
  out.set(MAGIC, 0);
  dv.setUint16(4, p.version, true);
  dv.setUint16(6, p.flags, true);
  dv.setUint32(8, p.headerLen, true);
  dv.setUint32(12, p.crc32 >>> 0, true);
  dv.setBigUint64(16, BigInt(p.dataLen), true);
  return out;
}

/** Checks magic, version, flags and the header cap; lengths against the file are checked by the reader. */
export function decodePreamble(bytes: Uint8Array): Preamble {
  if (bytes.length < PREAMBLE_SIZE) {
    throw new FlmError('FLM_TOO_SHORT', `file has ${bytes.length} bytes, the preamble alone needs ${PREAMBLE_SIZE}`);
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) {
      const got = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
      throw new FlmError('FLM_BAD_MAGIC', `magic is ${got}, expected 46 4c 4d 00 ("FLM\\0")`);
    }
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, PREAMBLE_SIZE);
  const version = dv.getUint16(4, true);
  if (!SUPPORTED_VERSIONS.includes(version)) {
    throw new FlmError('FLM_UNSUPPORTED_VERSION',
      `format version ${version}; this reader supports version ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  const flags = dv.getUint16(6, true);
  if (flags !== 0) throw new FlmError('FLM_BAD_FLAGS', `flags are 0x${flags.toString(16)}, version 1 requires 0`);
  const headerLen = dv.getUint32(8, true);
  if (headerLen > MAX_HEADER_LEN) {
    throw new FlmError('FLM_HEADER_TOO_LARGE', `header_len ${headerLen} exceeds the cap of ${MAX_HEADER_LEN}`);
  }
  const crc = dv.getUint32(12, true);
  const dataLenBig = dv.getBigUint64(16, true);
  if (dataLenBig > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new FlmError('FLM_FILE_SIZE_MISMATCH', `data_len ${dataLenBig} cannot match a ${bytes.length}-byte file`);
  }
  return { version, flags, headerLen, crc32: crc, dataLen: Number(dataLenBig) };
}
