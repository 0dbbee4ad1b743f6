// readFlm: hostile bytes in, a validated Model out, tensors as zero-copy views. Every failure is an
// FlmError (docs/FORMAT.md lists the codes and the order in which checks run).

import { readFile } from 'node:fs/promises';
import { DTYPE_SIZE, type Model, type StoredTensor } from '../ir.js';
import { FlmError } from './errors.js';
import { parseHeader, type TensorEntry } from './header.js';
import { ALIGNMENT, PREAMBLE_SIZE, crc32, dataOffsetFor, decodePreamble } from './layout.js';
import { decodePlainMsgpack } from './msgpack-subset.js';
import { checkGraph, checkMetadata, checkQuant, checkedByteLength } from './validate.js';

const LITTLE_ENDIAN_HOST = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
const MAX_ELEMENT_SIZE = Math.max(...Object.values(DTYPE_SIZE));

function checkZero(bytes: Uint8Array, from: number, to: number, where: string): void {
  for (let i = from; i < to; i++) {
    if (bytes[i] !== 0) throw new FlmError('FLM_BAD_PADDING', `padding byte at file offset ${i} (${where}) is ${bytes[i]}, must be 0`);
  }
}

function decodeHeader(headerBytes: Uint8Array): unknown {
  return decodePlainMsgpack(headerBytes);
}

/** Tensors follow each other in offset order, each at the aligned end of the previous one, and the last ends the data. */
function checkLayout(entries: readonly TensorEntry[], dataLen: number): void {
  const names = new Set<string>();
  let end = 0;
  for (const t of entries) {
    const where = `tensor ${JSON.stringify(t.name)}`;
    if (names.has(t.name)) throw new FlmError('FLM_DUPLICATE_TENSOR', `${where} appears twice in the tensor table`);
    names.add(t.name);
    const bytes = checkedByteLength(t.shape, t.dtype, where);
    if (t.length !== bytes) {
      throw new FlmError('FLM_LENGTH_MISMATCH',
        `${where}: length ${t.length} bytes, but [${t.shape.join(', ')}] ${t.dtype} needs ${bytes}`);
    }
    checkQuant(where, t.dtype, t.shape, t.quant);
    if (t.offset % ALIGNMENT !== 0) {
      throw new FlmError('FLM_MISALIGNED', `${where}: offset ${t.offset} is not a multiple of ${ALIGNMENT}`);
    }
    const expected = Math.ceil(end / ALIGNMENT) * ALIGNMENT;
    if (t.offset !== expected) {
      throw new FlmError('FLM_GAP_OR_OVERLAP',
        `${where}: offset ${t.offset}, expected ${expected} (the aligned end of the previous tensor)`);
    }
    if (t.length > dataLen - t.offset) {
      throw new FlmError('FLM_OUT_OF_BOUNDS', `${where}: bytes ${t.offset}..${t.offset + t.length} pass the data end ${dataLen}`);
    }
    end = t.offset + t.length;
  }
  if (end !== dataLen) {
    throw new FlmError('FLM_TRAILING_BYTES', `data section has ${dataLen} bytes, the last tensor ends at ${end}`);
  }
}

function view(base: Uint8Array, at: number, t: TensorEntry): StoredTensor['data'] {
  const n = t.length / DTYPE_SIZE[t.dtype];
  if (LITTLE_ENDIAN_HOST) {
    const off = base.byteOffset + at;
    if (t.dtype === 'f32') return new Float32Array(base.buffer, off, n);
    if (t.dtype === 'f16') return new Uint16Array(base.buffer, off, n);
    return new Int8Array(base.buffer, off, n);
  }
  // Big-endian host: the file is little-endian, so views would read swapped bytes. Decode copies.
  const dv = new DataView(base.buffer, base.byteOffset + at, t.length);
  if (t.dtype === 'f32') return Float32Array.from({ length: n }, (_, i) => dv.getFloat32(4 * i, true));
  if (t.dtype === 'f16') return Uint16Array.from({ length: n }, (_, i) => dv.getUint16(2 * i, true));
  return new Int8Array(base.buffer, base.byteOffset + at, n);
}

/**
 * Parse and validate a .flm file. f32/f16/i8 tensor data are views into `bytes` (no copy), so
 * the model shares memory with the input: do not reuse that buffer while the model lives.
 */
export function readFlm(bytes: Uint8Array): Model {
  try {
    return readUnchecked(bytes);
  } catch (e) {
    if (e instanceof FlmError) throw e;
    // Unreachable by design; kept so that no other exception type ever escapes the reader.
    throw new FlmError('FLM_HEADER_DECODE', 'unexpected failure while reading', { cause: e });
  }
}

function readUnchecked(bytes: Uint8Array): Model {
  if (!(bytes instanceof Uint8Array)) throw new FlmError('FLM_TOO_SHORT', 'input is not a Uint8Array');
  const pre = decodePreamble(bytes);
  const headerEnd = PREAMBLE_SIZE + pre.headerLen;
  const dataOffset = dataOffsetFor(pre.headerLen);
  if (bytes.length < dataOffset) {
    throw new FlmError('FLM_HEADER_TRUNCATED',
      `file has ${bytes.length} bytes, header and its padding end at ${dataOffset}`);
  }
  if (bytes.length !== dataOffset + pre.dataLen) {
    throw new FlmError('FLM_FILE_SIZE_MISMATCH',
      `file has ${bytes.length} bytes, preamble says ${dataOffset + pre.dataLen} (data_offset ${dataOffset} + data_len ${pre.dataLen})`);
  }
  const crc = crc32(bytes.subarray(PREAMBLE_SIZE));
  if (crc !== pre.crc32) {
    throw new FlmError('FLM_CRC_MISMATCH',
      `CRC32 of bytes ${PREAMBLE_SIZE}..${bytes.length} is 0x${crc.toString(16)}, preamble says 0x${pre.crc32.toString(16)}`);
  }
  checkZero(bytes, headerEnd, dataOffset, 'after the header');

  const header = parseHeader(decodeHeader(bytes.subarray(PREAMBLE_SIZE, headerEnd)));
  const metadata = checkMetadata(header.metadata);
  checkLayout(header.tensors, pre.dataLen);
  let prevEnd = 0;
  for (const t of header.tensors) {
    checkZero(bytes, dataOffset + prevEnd, dataOffset + t.offset, `before tensor ${JSON.stringify(t.name)}`);
    prevEnd = t.offset + t.length;
  }
  checkGraph(header.graph, new Set(header.tensors.map((t) => t.name)));

  // Views need byteOffset % element size === 0. Tensor offsets within the file are multiples of 64,
  // so only the input's own byteOffset can break that (e.g. a Buffer sliced at an odd position).
  // Then copy once into a fresh ArrayBuffer (byteOffset 0) rather than copying tensor by tensor.
  const base = bytes.byteOffset % MAX_ELEMENT_SIZE === 0 ? bytes : bytes.slice();
  const tensors = new Map<string, StoredTensor>();
  for (const t of header.tensors) {
    const stored: StoredTensor = { name: t.name, dtype: t.dtype, shape: t.shape, data: view(base, dataOffset + t.offset, t) };
    if (t.quant) stored.quant = t.quant;
    tensors.set(t.name, stored);
  }
  const model: Model = { graph: header.graph, tensors, metadata };
  if (header.memoryPlan) model.memoryPlan = header.memoryPlan;
  return model;
}

/** Read and parse a file; I/O failures become FLM_IO. */
export async function readFlmFile(path: string): Promise<Model> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new FlmError('FLM_IO', `cannot read ${path}`, { cause: e });
  }
  return readFlm(bytes);
}
