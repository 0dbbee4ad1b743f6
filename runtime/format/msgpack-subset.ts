// Checks that the header bytes are exactly one value of the plain msgpack subset that a C reader
// handles (docs/FORMAT.md, "The header"), before msgpackr sees them. Without this, msgpackr would
// turn extension types into Dates, Sets or typed arrays, and a C reader would disagree with us.
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
