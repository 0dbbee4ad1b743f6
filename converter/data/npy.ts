// NumPy .npy arrays (format versions 1.0, 2.0, 3.0), read into float32 for the data sets of the
// commands. Every numeric dtype numpy writes by default is accepted, either byte order;
// `kind` says whether the values were integers, so callers can tell class ids from targets.
import { DataError } from './errors.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

export interface NpyArray {
  shape: number[];
  /** The values as float32 (uint8 left as 0..255: scaling is the caller's choice). */
  data: Float32Array;
  /** numpy's descr, e.g. '<f4', '|u1'. */
  dtype: string;
  kind: 'float' | 'int' | 'uint' | 'bool';
}

/** Element readers by numpy type letter and size. */
function reader(kind: string, size: number, little: boolean): ((v: DataView, off: number) => number) | undefined {
  const key = `${kind}${size}`;
  switch (key) {
    case 'f2': return (v, o) => halfToFloat(v.getUint16(o, little));
    case 'f4': return (v, o) => v.getFloat32(o, little);
    case 'f8': return (v, o) => v.getFloat64(o, little);
    case 'i1': return (v, o) => v.getInt8(o);
    case 'u1': case 'b1': return (v, o) => v.getUint8(o);
    case 'i2': return (v, o) => v.getInt16(o, little);
    case 'u2': return (v, o) => v.getUint16(o, little);
    case 'i4': return (v, o) => v.getInt32(o, little);
    case 'u4': return (v, o) => v.getUint32(o, little);
    case 'i8': return (v, o) => Number(v.getBigInt64(o, little));
    case 'u8': return (v, o) => Number(v.getBigUint64(o, little));
    default: return undefined;
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Parses a .npy file; `what` (the path) starts every error message. */
export function parseNpy(bytes: Uint8Array, what: string): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new DataError('DATA_BAD_FILE', `${what} is not a .npy file (bad magic)`);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new DataError('DATA_BAD_FILE', `${what}: .npy format version ${major} is not supported (1, 2 or 3)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major > 1 && bytes.length < 12) throw new DataError('DATA_BAD_FILE', `${what}: .npy header is truncated`);
  const hlen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const hstart = major === 1 ? 10 : 12;
  if (hstart + hlen > bytes.length) throw new DataError('DATA_BAD_FILE', `${what}: .npy header is truncated`);
  const header = new TextDecoder().decode(bytes.subarray(hstart, hstart + hlen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) {
    if (/'descr':\s*\[/.test(header)) throw new DataError('DATA_BAD_DTYPE', `${what}: structured dtype (record array) is not supported; save a plain numeric array`);
    throw new DataError('DATA_BAD_FILE', `${what}: .npy header lacks descr or shape`);
  }
  if (/'fortran_order':\s*True/.test(header)) throw new DataError('DATA_BAD_FILE', `${what}: Fortran-order arrays are not supported (save np.ascontiguousarray(x))`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new DataError('DATA_BAD_FILE', `${what}: bad shape (${shapeText})`);
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  const order = m?.[1];
  const letter = m?.[2] === '?' ? 'b' : m?.[2];
  const size = Number(m?.[3]);
  const read = m ? reader(letter === 'b' ? 'b' : letter!, size, order !== '>') : undefined;
  if (!m || !read) {
    throw new DataError('DATA_BAD_DTYPE', `${what}: dtype ${descr} is not supported (use float32; float16/64, int8-64, uint8-64 and bool are converted)`);
  }
  const n = shape.reduce((a, b) => a * b, 1);
  const body = bytes.subarray(hstart + hlen);
  if (body.length !== n * size) throw new DataError('DATA_BAD_FILE', `${what}: holds ${body.length} data bytes, shape [${shape}] of ${descr} needs ${n * size}`);
  const data = new Float32Array(n);
  const bv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let i = 0; i < n; i++) data[i] = read(bv, i * size);
  const kind = letter === 'f' ? 'float' : letter === 'i' ? 'int' : letter === 'b' ? 'bool' : 'uint';
  return { shape, data, dtype: descr, kind };
}
