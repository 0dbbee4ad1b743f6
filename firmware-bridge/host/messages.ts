// The protocol's messages as the host sees them (docs/PROTOCOL.md section 3): typed answers, the
// checks that turn a device's msgpack body into them, and the one error class of the bridge.
import { KIND } from './frame.js';

export type BridgeErrorCode =
  // the device's error codes (PROTOCOL.md section 2)
  | 'BAD_REQUEST' | 'NO_MODEL' | 'MODEL_INVALID' | 'TOO_LARGE' | 'BAD_OFFSET' | 'BAD_CRC' | 'BAD_INPUT' | 'BUSY'
  // the host's own
  | 'TIMEOUT' | 'PROTOCOL' | 'FRAME_TOO_LARGE' | 'RECOVERY_FAILED' | 'CLOSED';

export const DEVICE_CODES = new Set(['BAD_REQUEST', 'NO_MODEL', 'MODEL_INVALID', 'TOO_LARGE', 'BAD_OFFSET', 'BAD_CRC', 'BAD_INPUT', 'BUSY']);

export class BridgeError extends Error {
  /** For an upload the device refused at upload_end: how the transfer itself went. */
  upload?: Omit<UploadReport, keyof UploadEnd>;
  constructor(readonly code: BridgeErrorCode, message: string, readonly fromDevice = false, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface ModelInFlash {
  size: number;
  crc: number;
  ready: boolean;
}

export interface Hello {
  proto: number;
  fw: string;
  board: string;
  boot: number;
  arena: number;
  flash: number;
  max_frame: number;
  clock_hz: number;
  ops: number[];
  dtypes: number[];
  model: ModelInFlash | null;
}

export interface UploadEnd {
  ready: boolean;
  arena_used: number;
  peak_scratch: number;
  in: number[];
  out: number[];
}

export interface UploadReport extends UploadEnd {
  bytes: number;
  /** Bytes the device already had (resume). */
  resumedFrom: number;
  /** Payload bytes sent, resends included. */
  sentBytes: number;
  chunkBytes: number;
  chunks: number;
  seconds: number;
  /** Model bytes per second over the whole upload, upload_begin to upload_end. */
  bytesPerSecond: number;
  /** bytesPerSecond over the line's 10-bit-per-byte rate, when the line has one. */
  lineFraction: number | undefined;
}

export interface InferResult {
  id: number;
  y: Float32Array;
  us: number;
  cycles: number | undefined;
}

export interface DeviceStats {
  frames: number;
  bad_frames: number;
  retries_served: number;
  infers: number;
  boot: number;
  uptime_ms: number;
  arena_peak: number;
}

/** One step of the last inference (stats.layers, firmware built with FL_PROFILE_STEPS): nodes
 * first..last of the graph (one node, or a fused chain run at its last), in `cycles` of the port's
 * counter (emulated instructions on the Cortex-M4 under -icount shift=0). */
export interface StepCount {
  first: number;
  last: number;
  cycles: number;
}

/** stats with the per-layer counts, where the device records them. */
export interface DeviceStatsLayers extends DeviceStats {
  layers?: StepCount[];
  /** Steps past the device's table, not recorded. */
  layers_lost?: number;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !(v instanceof Uint8Array);
}

export function uint(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === 'bigint' && v >= 0n) return Number(v);
  throw new BridgeError('PROTOCOL', `device answer: ${what} is ${String(v)}, expected an unsigned integer`);
}

export function bytesOf(v: unknown, what: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  throw new BridgeError('PROTOCOL', `device answer: ${what} is not a binary blob`);
}

export function parseHello(b: unknown): Hello {
  if (!isObject(b)) throw new BridgeError('PROTOCOL', 'hello: answer is not a map');
  const m = b['model'];
  let model: ModelInFlash | null = null;
  if (isObject(m)) model = { size: uint(m['size'], 'hello.model.size'), crc: uint(m['crc'], 'hello.model.crc'), ready: m['ready'] === true };
  return {
    proto: uint(b['proto'], 'hello.proto'),
    fw: String(b['fw'] ?? ''),
    board: String(b['board'] ?? ''),
    boot: uint(b['boot'], 'hello.boot'),
    arena: uint(b['arena'], 'hello.arena'),
    flash: uint(b['flash'], 'hello.flash'),
    max_frame: uint(b['max_frame'], 'hello.max_frame'),
    clock_hz: uint(b['clock_hz'] ?? 0, 'hello.clock_hz'),
    ops: Array.isArray(b['ops']) ? b['ops'].map((x, i) => uint(x, `hello.ops[${i}]`)) : [],
    dtypes: Array.isArray(b['dtypes']) ? b['dtypes'].map((x, i) => uint(x, `hello.dtypes[${i}]`)) : [],
    model,
  };
}

export function uintList(v: unknown, what: string): number[] {
  return Array.isArray(v) ? v.map((x, i) => uint(x, `${what}[${i}]`)) : [];
}

/** The `have` a BAD_OFFSET error carries in its message. */
export function haveFromMessage(msg: string): number | undefined {
  const m = /have\D*(\d+)/i.exec(msg) ?? /(\d+)/.exec(msg);
  return m ? Number(m[1]) : undefined;
}

export function kindName(kind: number): string {
  for (const [name, k] of Object.entries(KIND)) if (k === kind) return name;
  return `kind 0x${kind.toString(16)}`;
}
