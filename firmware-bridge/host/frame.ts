// Binary frames of docs/PROTOCOL.md section 1, and the stream parser that finds them on the line.
//
//   wire:  00 | COBS(raw) | 00
//   raw:   seq:u8 | kind:u8 | body (one plain msgpack value, may be empty) | crc:u32 LE
//   crc:   CRC32 (IEEE) of seq | kind | body
import CRC32 from 'crc-32';
import { Packr } from 'msgpackr';
import { cobsDecode, cobsEncode } from './cobs.js';

export const KIND = {
  hello: 0x01,
  upload_begin: 0x02,
  upload_chunk: 0x03,
  upload_end: 0x04,
  infer: 0x05,
  stats: 0x06,
  reset: 0x07,
  error: 0xff,
} as const;
export const RESPONSE_BIT = 0x80;
/** seq + kind + crc. */
export const MIN_RAW_FRAME = 6;
/** A gap longer than this between two bytes of a frame drops the partial frame (PROTOCOL.md section 1). */
export const FRAME_GAP_MS = 200;

// Plain msgpack: string-keyed maps, no records, no extension types; fixmaps where they fit.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true, moreTypes: false });

export function crc32(bytes: Uint8Array): number {
  return CRC32.buf(bytes) >>> 0;
}

export function packBody(body: unknown): Uint8Array {
  return body === undefined ? new Uint8Array(0) : new Uint8Array(packr.pack(body));
}

export function unpackBody(bytes: Uint8Array): unknown {
  return bytes.length === 0 ? undefined : packr.unpack(bytes);
}

/** seq | kind | body | crc, before COBS. */
export function encodeRaw(seq: number, kind: number, body: Uint8Array): Uint8Array {
  const raw = new Uint8Array(body.length + MIN_RAW_FRAME);
  raw[0] = seq & 0xff;
  raw[1] = kind & 0xff;
  raw.set(body, 2);
  const crc = crc32(raw.subarray(0, 2 + body.length));
  new DataView(raw.buffer).setUint32(2 + body.length, crc, true);
  return raw;
}

/** The bytes that go on the line for one frame: 00 COBS(raw) 00. */
export function encodeFrame(seq: number, kind: number, body?: unknown): Uint8Array {
  const enc = cobsEncode(encodeRaw(seq, kind, packBody(body)));
  const wire = new Uint8Array(enc.length + 2);
  wire.set(enc, 1);
  return wire;
}

export interface Frame {
  seq: number;
  kind: number;
  /** The msgpack bytes of the body (empty when absent). */
  body: Uint8Array;
}

export type FrameDrop = 'cobs' | 'short' | 'crc' | 'long';

/** Checks a raw frame (after COBS decoding); returns the reason it must be dropped, or the frame. */
export function decodeRaw(raw: Uint8Array): Frame | FrameDrop {
  if (raw.length < MIN_RAW_FRAME) return 'short';
  const n = raw.length - 4;
  const want = new DataView(raw.buffer, raw.byteOffset, raw.length).getUint32(n, true);
  if (crc32(raw.subarray(0, n)) !== want) return 'crc';
  return { seq: raw[0]!, kind: raw[1]!, body: raw.subarray(2, n) };
}

/** Decodes the bytes between two delimiters (no zeros). */
export function decodeFrameBytes(enc: Uint8Array, maxRaw = Infinity): Frame | FrameDrop {
  if (enc.length > maxRaw + Math.floor(maxRaw / 254) + 1) return 'long';
  let raw: Uint8Array;
  try {
    raw = cobsDecode(enc);
  } catch {
    return 'cobs';
  }
  if (raw.length > maxRaw) return 'long';
  return decodeRaw(raw);
}

export interface ParserCounters {
  frames: number;
  dropped: Record<FrameDrop | 'gap', number>;
  /** Bytes seen outside a frame (another dialect's, or line noise). */
  otherBytes: number;
}

/**
 * Finds frames in a byte stream. Outside a frame a 0x00 starts one; other bytes belong to another
 * dialect (Firmata, text) and go to `onOther`. In a frame, bytes gather until the next 0x00; an
 * empty frame (00 00) is idle fill and keeps the parser in frame, so a frame cut short that
 * swallowed the next frame's leading zero costs only itself. A gap of more than FRAME_GAP_MS
 * drops a partial frame and returns to dialect detection.
 */
export class FrameParser {
  readonly counters: ParserCounters = { frames: 0, dropped: { cobs: 0, short: 0, crc: 0, long: 0, gap: 0 }, otherBytes: 0 };
  private inFrame = false;
  private buf: Uint8Array;
  private len = 0;
  private overflow = false;
  private lastByteAt = 0;

  constructor(
    private readonly onFrame: (f: Frame) => void,
    private readonly opts: { maxRaw?: number; onOther?: (bytes: Uint8Array) => void; onDrop?: (why: FrameDrop | 'gap') => void; now?: () => number } = {},
  ) {
    const maxRaw = opts.maxRaw ?? 65536;
    this.buf = new Uint8Array(maxRaw + Math.floor(maxRaw / 254) + 2);
  }

  push(chunk: Uint8Array): void {
    const now = (this.opts.now ?? Date.now)();
    if (this.inFrame && this.len > 0 && now - this.lastByteAt > FRAME_GAP_MS) {
      this.drop('gap');
      this.inFrame = false;
    }
    this.lastByteAt = now;
    let otherStart = -1;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (!this.inFrame) {
        if (b === 0) {
          if (otherStart >= 0) this.other(chunk.subarray(otherStart, i));
          otherStart = -1;
          this.inFrame = true;
          this.len = 0;
          this.overflow = false;
        } else if (otherStart < 0) otherStart = i;
        continue;
      }
      if (b !== 0) {
        if (this.len < this.buf.length) this.buf[this.len++] = b;
        else this.overflow = true;
        continue;
      }
      if (this.len === 0) continue; // idle fill
      if (this.overflow) this.drop('long');
      else {
        const r = decodeFrameBytes(this.buf.slice(0, this.len), this.opts.maxRaw ?? 65536);
        if (typeof r === 'string') this.drop(r);
        else {
          this.counters.frames++;
          this.onFrame(r);
        }
      }
      this.len = 0;
      this.overflow = false;
    }
    if (otherStart >= 0) this.other(chunk.subarray(otherStart));
  }

  private drop(why: FrameDrop | 'gap'): void {
    this.counters.dropped[why]++;
    this.len = 0;
    this.overflow = false;
    this.opts.onDrop?.(why);
  }

  private other(bytes: Uint8Array): void {
    this.counters.otherBytes += bytes.length;
    this.opts.onOther?.(bytes);
  }
}
