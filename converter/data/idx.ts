// IDX files (the MNIST family format): big-endian magic 0x0000 <type> <ndims>, dims, raw data.
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataError } from './errors.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Parses an unsigned-byte IDX array (type 0x08), gzip or plain. */
export function parseIdx(bytes: Uint8Array, what: string): IdxArray {
  let b = bytes;
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) {
    try {
      b = gunzipSync(b);
    } catch (e) {
      throw new DataError('DATA_BAD_FILE', `${what}: gzip data is corrupt`, { cause: e });
    }
  }
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0) throw new DataError('DATA_BAD_FILE', `${what}: not an IDX file (bad magic)`);
  if (b[2] !== 0x08) throw new DataError('DATA_BAD_FILE', `${what}: IDX element type 0x${b[2]!.toString(16)} is not unsigned byte`);
  const nd = b[3]!;
  if (nd < 1 || nd > 4 || b.length < 4 + 4 * nd) throw new DataError('DATA_BAD_FILE', `${what}: bad IDX dimension count ${nd}`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < nd; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const n = dims.reduce((x, y) => x * y, 1);
  const start = 4 + 4 * nd;
  if (b.length - start !== n) throw new DataError('DATA_BAD_FILE', `${what}: IDX holds ${b.length - start} bytes, dims [${dims}] need ${n}`);
  return { dims, data: b.subarray(start) };
}

/** Reads `base` or `base.gz` from a folder. */
export function readIdxFile(dir: string, base: string): IdxArray {
  for (const name of [base, `${base}.gz`]) {
    const p = `${dir}/${name}`;
    if (existsSync(p)) return parseIdx(readFileSync(p), p);
  }
  throw new DataError('DATA_NOT_FOUND', `data folder ${dir} has no ${base} or ${base}.gz`);
}
