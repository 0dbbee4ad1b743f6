// NumPy .npy (version 1.0/2.0) for `factorlite run`: little-endian f4 (or f8, u1, read only) C-order arrays.
// Written here because the npm readers fetch over HTTP or pull a browser build; the format is small.
import { CliError } from './errors.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

export function readNpy(bytes: Uint8Array, what: string): { shape: number[]; data: Float32Array } {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new CliError('BAD_INPUT', `${what} is not a .npy file`);
  const major = bytes[6]!;
  if (major > 1 && bytes.length < 12) throw new CliError('BAD_INPUT', `${what}: .npy header is truncated`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const hstart = major === 1 ? 10 : 12;
  if (hstart + hlen > bytes.length) throw new CliError('BAD_INPUT', `${what}: .npy header is truncated`);
  const header = new TextDecoder().decode(bytes.subarray(hstart, hstart + hlen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new CliError('BAD_INPUT', `${what}: .npy header lacks descr or shape`);
  if (fortran) throw new CliError('BAD_INPUT', `${what}: Fortran-order .npy arrays are not supported`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new CliError('BAD_INPUT', `${what}: bad shape (${shapeText})`);
  const n = shape.reduce((a, b) => a * b, 1);
  const body = bytes.subarray(hstart + hlen);
  const size = descr === '<f4' ? 4 : descr === '<f8' ? 8 : descr === '|u1' ? 1 : 0;
  if (!size) throw new CliError('BAD_INPUT', `${what}: dtype ${descr} is not supported (use float32)`);
  if (body.length !== n * size) throw new CliError('BAD_INPUT', `${what}: holds ${body.length} data bytes, shape [${shape}] needs ${n * size}`);
  const data = new Float32Array(n);
  const bv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let i = 0; i < n; i++) data[i] = size === 4 ? bv.getFloat32(i * 4, true) : size === 8 ? bv.getFloat64(i * 8, true) : body[i]!;
  return { shape, data };
}

export function writeNpy(shape: readonly number[], data: Float32Array): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad so that the data starts on a 64-byte boundary, as numpy does.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(total + data.length * 4);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  const dv = new DataView(out.buffer, total);
  for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i]!, true);
  return out;
}
