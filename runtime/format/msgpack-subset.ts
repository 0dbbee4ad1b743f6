// Checks that the header bytes are exactly one value of the plain msgpack subset that a C reader
// handles (docs/FORMAT.md, "The header"), and decodes it (decodePlainMsgpack). The runtime reads
// headers with this decoder alone: no msgpack library is loaded on a device (the converter's
// writer encodes with msgpackr and checks its output here).
// Accepted: nil, bool, int/uint 8..64, float32/64, str (valid UTF-8), array, map with str keys
// (no duplicates). Refused: bin, ext, fixext, 0xc1, nesting deeper than MAX_DEPTH, bytes left over.

import { FlmError } from './errors.js';
import { MAX_DEPTH } from './layout.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

function fail(pos: number, what: string): never {
  throw new FlmError('FLM_HEADER_DECODE', `header byte ${pos}: ${what}`);
}

class Scanner {
  pos = 0;
  constructor(private readonly b: Uint8Array, private readonly dv: DataView) {}

  need(n: number): void {
    if (n > this.b.length - this.pos) fail(this.pos, `needs ${n} more bytes, ${this.b.length - this.pos} left`);
  }

  uint(n: 1 | 2 | 4): number {
    this.need(n);
    const p = this.pos;
    this.pos += n;
    return n === 1 ? this.dv.getUint8(p) : n === 2 ? this.dv.getUint16(p, false) : this.dv.getUint32(p, false);
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  /** Returns the decoded string when `wantText`, otherwise only validates it. */
  str(len: number, wantText: boolean): string {
    this.need(len);
    const start = this.pos;
    this.pos += len;
    let text: string;
    try {
      text = utf8.decode(this.b.subarray(start, start + len));
    } catch (e) {
      throw new FlmError('FLM_HEADER_DECODE', `header byte ${start}: string is not valid UTF-8`, { cause: e });
    }
    return wantText ? text : '';
  }

  /** Each element needs at least one byte: refuse counts the remaining bytes cannot hold. */
  count(n: number, perItem: number): number {
    if (n * perItem > this.b.length - this.pos) fail(this.pos, `count ${n} exceeds the bytes left`);
    return n;
  }

  keyString(): string {
    const at = this.pos;
    this.need(1);
    const t = this.b[this.pos++]!;
    if (t >= 0xa0 && t <= 0xbf) return this.str(t & 0x1f, true);
    if (t === 0xd9) return this.str(this.uint(1), true);
    if (t === 0xda) return this.str(this.uint(2), true);
    if (t === 0xdb) return this.str(this.uint(4), true);
    return fail(at, `map key of type 0x${t.toString(16)} is not a string`);
  }

  map(n: number, depth: number): void {
    this.count(n, 2);
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const at = this.pos;
      const key = this.keyString();
      if (seen.has(key)) fail(at, `duplicate map key ${JSON.stringify(key)}`);
      seen.add(key);
      this.value(depth + 1);
    }
  }

  array(n: number, depth: number): void {
    this.count(n, 1);
    for (let i = 0; i < n; i++) this.value(depth + 1);
  }

  value(depth: number): void {
    if (depth > MAX_DEPTH) fail(this.pos, `nesting deeper than ${MAX_DEPTH}`);
    const at = this.pos;
    this.need(1);
    const t = this.b[this.pos++]!;
    if (t <= 0x7f || t >= 0xe0) return; // positive / negative fixint
    if (t <= 0x8f) return this.map(t & 0x0f, depth);
    if (t <= 0x9f) return this.array(t & 0x0f, depth);
    if (t <= 0xbf) { this.str(t & 0x1f, false); return; }
    switch (t) {
      case 0xc0: case 0xc2: case 0xc3: return;
      case 0xca: return this.skip(4);
      case 0xcb: return this.skip(8);
      case 0xcc: case 0xd0: return this.skip(1);
      case 0xcd: case 0xd1: return this.skip(2);
      case 0xce: case 0xd2: return this.skip(4);
      case 0xcf: case 0xd3: return this.skip(8);
      case 0xd9: this.str(this.uint(1), false); return;
      case 0xda: this.str(this.uint(2), false); return;
      case 0xdb: this.str(this.uint(4), false); return;
      case 0xdc: return this.array(this.uint(2), depth);
      case 0xdd: return this.array(this.uint(4), depth);
      case 0xde: return this.map(this.uint(2), depth);
      case 0xdf: return this.map(this.uint(4), depth);
      default:
        return fail(at, `type byte 0x${t.toString(16)} (bin, ext or never-used) is outside the plain subset`);
    }
  }
}

/** Throws FLM_HEADER_DECODE unless `bytes` is exactly one value of the plain msgpack subset. */
export function checkPlainMsgpack(bytes: Uint8Array): void {
  const s = new Scanner(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  s.value(0);
  if (s.pos !== bytes.length) fail(s.pos, `${bytes.length - s.pos} bytes left after the header value`);
}

/**
 * Decodes `bytes`, exactly one value of the plain subset, with the same checks as
 * checkPlainMsgpack (FLM_HEADER_DECODE on any breach). Maps become plain objects whose keys are
 * own data properties (a key "__proto__" stays a key); 64-bit integers become numbers when safe,
 * else bigints (which the schema then refuses).
 */
export function decodePlainMsgpack(bytes: Uint8Array): unknown {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const b = bytes;
  let pos = 0;
  const need = (n: number) => {
    if (n > b.length - pos) fail(pos, `needs ${n} more bytes, ${b.length - pos} left`);
  };
  const u = (n: 1 | 2 | 4): number => {
    need(n);
    const p = pos;
    pos += n;
    return n === 1 ? dv.getUint8(p) : n === 2 ? dv.getUint16(p, false) : dv.getUint32(p, false);
  };
  const str = (len: number): string => {
    need(len);
    const start = pos;
    pos += len;
    try {
      return utf8.decode(b.subarray(start, start + len));
    } catch (e) {
      throw new FlmError('FLM_HEADER_DECODE', `header byte ${start}: string is not valid UTF-8`, { cause: e });
    }
  };
  const count = (n: number, perItem: number): number => {
    if (n * perItem > b.length - pos) fail(pos, `count ${n} exceeds the bytes left`);
    return n;
  };
  const int64 = (signed: boolean): number | bigint => {
    need(8);
    const v = signed ? dv.getBigInt64(pos, false) : dv.getBigUint64(pos, false);
    pos += 8;
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const key = (): string => {
    const at = pos;
    need(1);
    const t = b[pos++]!;
    if (t >= 0xa0 && t <= 0xbf) return str(t & 0x1f);
    if (t === 0xd9) return str(u(1));
    if (t === 0xda) return str(u(2));
    if (t === 0xdb) return str(u(4));
    return fail(at, `map key of type 0x${t.toString(16)} is not a string`);
  };
  const map = (n: number, depth: number): Record<string, unknown> => {
    count(n, 2);
    const o: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const at = pos;
      const k = key();
      if (Object.hasOwn(o, k)) fail(at, `duplicate map key ${JSON.stringify(k)}`);
      Object.defineProperty(o, k, { value: value(depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return o;
  };
  const array = (n: number, depth: number): unknown[] => {
    count(n, 1);
    const a = new Array<unknown>(n);
    for (let i = 0; i < n; i++) a[i] = value(depth + 1);
    return a;
  };
  const value = (depth: number): unknown => {
    if (depth > MAX_DEPTH) fail(pos, `nesting deeper than ${MAX_DEPTH}`);
    const at = pos;
    need(1);
    const t = b[pos++]!;
    if (t <= 0x7f) return t;
    if (t >= 0xe0) return t - 0x100;
    if (t <= 0x8f) return map(t & 0x0f, depth);
    if (t <= 0x9f) return array(t & 0x0f, depth);
    if (t <= 0xbf) return str(t & 0x1f);
    switch (t) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xca: { need(4); const v = dv.getFloat32(pos, false); pos += 4; return v; }
      case 0xcb: { need(8); const v = dv.getFloat64(pos, false); pos += 8; return v; }
      case 0xcc: return u(1);
      case 0xcd: return u(2);
      case 0xce: return u(4);
      case 0xcf: return int64(false);
      case 0xd0: { need(1); const v = dv.getInt8(pos); pos += 1; return v; }
      case 0xd1: { need(2); const v = dv.getInt16(pos, false); pos += 2; return v; }
      case 0xd2: { need(4); const v = dv.getInt32(pos, false); pos += 4; return v; }
      case 0xd3: return int64(true);
      case 0xd9: return str(u(1));
      case 0xda: return str(u(2));
      case 0xdb: return str(u(4));
      case 0xdc: return array(u(2), depth);
      case 0xdd: return array(u(4), depth);
      case 0xde: return map(u(2), depth);
      case 0xdf: return map(u(4), depth);
      default:
        return fail(at, `type byte 0x${t.toString(16)} (bin, ext or never-used) is outside the plain subset`);
    }
  };
  const v = value(0);
  if (pos !== b.length) fail(pos, `${b.length - pos} bytes left after the header value`);
  return v;
}
