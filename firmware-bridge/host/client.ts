// The typed client of the factorlite serial protocol (docs/PROTOCOL.md sections 2-4).
//
// Every request waits for its answer for a timeout and is then resent as the same bytes, so the
// device answers a repeat from its stored response and never does the work twice. When the line
// stays silent, or the device says its model is gone, the client asks hello: a changed `boot`
// (or a missing model) means the device reset, so it uploads the model again (resuming what the
// device kept) and then retries the request it was waiting on.
//
// Timeouts follow the line and the device as measured, not as assumed: on a line without a known
// baud rate (an emulator's pty, whose emulated UART runs at whatever speed the host machine gives
// it) the client measures the bytes per millisecond its exchanges achieve and gives each request
// the time for every byte still queued ahead of its answer (twice over); an inference also gets
// twice the slowest wall-clock time an inference has taken (the device's own `us` is emulated
// time, far shorter than the wall clock on a loaded machine); and each resend of a large frame
// doubles the wait, up to 4x. A loaded machine then slows a run down instead of piling resends of a large frame
// behind one another until the device seems dead.
import { cobsEncode, cobsMaxEncodedLength } from './cobs.js';
import { crc32, encodeRaw, FrameParser, KIND, MIN_RAW_FRAME, packBody, RESPONSE_BIT, unpackBody, type Frame } from './frame.js';
import {
  BridgeError, bytesOf, DEVICE_CODES, haveFromMessage, isObject, kindName, parseHello, uint, uintList,
  type BridgeErrorCode, type DeviceStatsLayers, type Hello, type InferResult, type UploadEnd, type UploadReport,
} from './messages.js';
import type { ByteTransport } from './transport.js';

export { BridgeError, kindName, parseHello } from './messages.js';
export type { BridgeErrorCode, DeviceStats, DeviceStatsLayers, Hello, InferResult, ModelInFlash, UploadEnd, UploadReport, StepCount } from './messages.js';

export interface ClientOptions {
  /** Base timeout per request, before transfer and compute time are added (default 500 ms). */
  timeoutMs?: number;
  /** Resends of the same bytes before a request fails (default 5). */
  retries?: number;
  /** Upload chunks in flight (default 4). */
  window?: number;
  /** Largest upload chunk payload (default 2048 B, and never more than the device's max_frame allows). */
  maxChunk?: number;
  /** Device resets a single operation may recover from (default 3). */
  maxRecoveries?: number;
  /** Timeout for the first inference, before the device's own latency is known (default 5000 ms). */
  firstInferTimeoutMs?: number;
  /** upload_end prepares the model: its timeout (default 10000 ms). */
  prepareTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface ClientCounters {
  requests: number;
  /** Resends of the same bytes after a timeout. */
  resends: number;
  timeouts: number;
  /** Frames that matched no outstanding request (late duplicates, wrong kind). */
  discarded: number;
  /** Device resets noticed (hello.boot changed). */
  resets: number;
  /** Uploads done to recover from a reset or a lost model. */
  reuploads: number;
}

/** Body bytes that an upload_chunk adds besides its data: fixmap, "off", uint32, "data", bin32 header. */
const CHUNK_BODY_OVERHEAD = 1 + 4 + 5 + 5 + 5;

type Outcome = { body: unknown } | { error: BridgeError };

interface Pending {
  kind: number;
  settle: (o: Outcome) => void;
}

export class BridgeClient {
  readonly counters: ClientCounters = { requests: 0, resends: 0, timeouts: 0, discarded: 0, resets: 0, reuploads: 0 };
  readonly parser: FrameParser;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private readonly unsubscribe: () => void;
  private info: Hello | undefined;
  private model: Uint8Array | undefined;
  private maxUs = 0;
  /** The slowest wall-clock time of an answered inference, ms. */
  private maxInferWallMs = 0;
  /** Bytes per ms measured on a line without a baud rate (a cautious, slowly recovering estimate). */
  private lineRate: number | undefined;
  /**
   * Bytes written that may still be queued ahead of the next answer: drained at the line's rate
   * once it is known; before that, cleared by any answer.
   */
  private backlog = 0;
  private backlogAt = 0;
  /** Wall-clock ms of the last answered exchange (from its send to its answer). */
  private lastExchangeMs = 0;
  private readonly o: Required<Omit<ClientOptions, 'log'>> & { log: (l: string) => void };
  private closed = false;

  constructor(readonly transport: ByteTransport, opts: ClientOptions = {}) {
    this.o = {
      timeoutMs: opts.timeoutMs ?? 500,
      retries: opts.retries ?? 5,
      window: opts.window ?? 4,
      maxChunk: opts.maxChunk ?? 2048,
      maxRecoveries: opts.maxRecoveries ?? 3,
      firstInferTimeoutMs: opts.firstInferTimeoutMs ?? 5000,
      prepareTimeoutMs: opts.prepareTimeoutMs ?? 10000,
      log: opts.log ?? (() => {}),
    };
    this.parser = new FrameParser((f) => this.onFrame(f));
    this.unsubscribe = transport.onData((b) => this.parser.push(b));
  }

  /** The last hello answer. */
  get device(): Hello | undefined {
    return this.info;
  }

  /**
   * Milliseconds that `bytes` take on the line: from the baud rate when the transport has one,
   * else twice what the measured rate gives (0 before anything was measured).
   */
  private lineMs(bytes: number): number {
    const baud = this.transport.baud;
    if (baud) return (bytes * 10 * 1000) / baud;
    return this.lineRate ? (2 * bytes) / this.lineRate : 0;
  }

  /** Notes a measured rate (bytes per ms) of the line: a slower one is taken at once, a faster one slowly. */
  private noteRate(bytesPerMs: number): void {
    if (!(bytesPerMs > 0) || !Number.isFinite(bytesPerMs)) return;
    this.lineRate = this.lineRate === undefined || bytesPerMs < this.lineRate ? bytesPerMs : 0.8 * this.lineRate + 0.2 * bytesPerMs;
  }

  /** Bytes per ms the line was measured at when it has no baud rate (undefined until measured). */
  get measuredLineRate(): number | undefined {
    return this.transport.baud ? undefined : this.lineRate;
  }

  /**
   * The wait of attempt `attempt` (0 first) of a request of `bytes` on the wire: for a large frame
   * (4 KB and more, whose every resend queues that much more on the line) doubled per resend, up to
   * 4x; a small request keeps its wait, so a lossy line is not slowed down.
   */
  private static backoff(ms: number, attempt: number, bytes: number): number {
    return bytes >= 4096 ? ms * Math.min(4, 2 ** attempt) : ms;
  }

  /** Bytes per ms the line drains at: the stated baud, else the measured rate (undefined before). */
  private drainRate(): number | undefined {
    const baud = this.transport.baud;
    return baud ? baud / 10 / 1000 : this.lineRate;
  }

  private drain(): void {
    const now = performance.now();
    const rate = this.drainRate();
    if (rate) this.backlog = Math.max(0, this.backlog - rate * (now - this.backlogAt));
    this.backlogAt = now;
  }

  private write(wire: Uint8Array): void {
    this.drain();
    this.backlog += wire.length;
    this.transport.write(wire);
  }

  private onFrame(f: Frame): void {
    // An answer says nothing of the bytes still queued behind it once the line's rate is known.
    if (this.drainRate() === undefined) this.backlog = 0;
    const p = this.pending.get(f.seq);
    if (!p || (f.kind !== (p.kind | RESPONSE_BIT) && f.kind !== KIND.error)) {
      this.counters.discarded++;
      return;
    }
    let body: unknown;
    try {
      body = unpackBody(f.body);
    } catch (e) {
      this.counters.discarded++;
      this.o.log(`bridge: answer seq ${f.seq} has a body that is not msgpack (${(e as Error).message})`);
      return;
    }
    this.pending.delete(f.seq);
    if (f.kind === KIND.error) {
      const code = isObject(body) && typeof body['code'] === 'string' ? body['code'] : 'BAD_REQUEST';
      const msg = isObject(body) && typeof body['msg'] === 'string' ? body['msg'] : '';
      const c = (DEVICE_CODES.has(code) ? code : 'PROTOCOL') as BridgeErrorCode;
      const detail = msg.startsWith(`${code}: `) ? msg.slice(code.length + 2) : msg;
      p.settle({ error: new BridgeError(c, `device refused ${kindName(p.kind)}: ${code}${detail ? `: ${detail}` : ''}`, true) });
    } else p.settle({ body });
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) & 0xff;
    return this.seq;
  }

  /** A frame for `kind`, checked against the device's max_frame (raw bytes). */
  private frame(kind: number, body: unknown): { seq: number; wire: Uint8Array } {
    const seq = this.nextSeq();
    const raw = encodeRaw(seq, kind, packBody(body));
    const maxFrame = this.info?.max_frame;
    if (maxFrame !== undefined && raw.length > maxFrame) {
      throw new BridgeError('FRAME_TOO_LARGE', `${kindName(kind)} request of ${raw.length} bytes exceeds the device's max_frame of ${maxFrame} bytes`);
    }
    const enc = cobsEncode(raw);
    const wire = new Uint8Array(enc.length + 2);
    wire.set(enc, 1);
    return { seq, wire };
  }

  /**
   * Sends `wire` and waits for its answer once; undefined on timeout. The wait is `timeoutMs` plus
   * the line time of every byte written since the device last answered (this frame's included).
   */
  private exchange(seq: number, kind: number, wire: Uint8Array, timeoutMs: number, first = true, firstCopy?: { t0: number; bytes: number }): Promise<Outcome | undefined> {
    if (this.closed) return Promise.reject(new BridgeError('CLOSED', 'bridge client is closed'));
    return new Promise((resolve) => {
      const t0 = performance.now();
      const ahead = this.backlog;
      if (first && firstCopy) {
        firstCopy.t0 = t0;
        firstCopy.bytes = ahead + wire.length;
      }
      const entry: Pending = {
        kind,
        settle: (o) => {
          clearTimeout(timer);
          // Frames of 512 B and more measure the line (the device's work included: a cautious rate).
          const now = performance.now();
          this.lastExchangeMs = first && 'body' in o ? now - t0 : 0;
          if (first && 'body' in o && ahead + wire.length >= 512) this.noteRate((ahead + wire.length) / Math.max(1, now - t0));
          // The answer to a resend of a large frame (whose first copy timed out while still
          // crossing a line slower than guessed) may be the late answer to that first copy: the
          // bytes up to the first copy over the time since it was sent is then a rate the line
          // surely reached (a cautious one). Without it a line is never measured after a first
          // timeout, and every later frame waits only the base timeout behind the queued copies.
          else if (!first && firstCopy && 'body' in o && wire.length >= 4096) this.noteRate(firstCopy.bytes / Math.max(1, now - firstCopy.t0));
          resolve(o);
        },
      };
      this.pending.set(seq, entry);
      this.counters.requests++;
      this.write(wire);
      const timer = setTimeout(() => {
        if (this.pending.get(seq) === entry) this.pending.delete(seq);
        resolve(undefined);
      }, timeoutMs + this.lineMs(this.backlog + 64));
    });
  }

  /** One request: the same bytes up to 1 + retries times; throws TIMEOUT or the device's error. */
  private async request(kind: number, body: unknown, timeoutMs: number, prepared?: { seq: number; wire: Uint8Array }): Promise<unknown> {
    const { seq, wire } = prepared ?? this.frame(kind, body);
    /** When the first copy was sent and the bytes up to it (this one included). */
    const firstCopy = { t0: 0, bytes: 0 };
    for (let attempt = 0; attempt <= this.o.retries; attempt++) {
      if (attempt > 0) this.counters.resends++;
      const r = await this.exchange(seq, kind, wire, BridgeClient.backoff(timeoutMs, attempt, wire.length), attempt === 0, firstCopy);
      if (r === undefined) {
        this.counters.timeouts++;
        continue;
      }
      if ('error' in r) throw r.error;
      return r.body;
    }
    throw new BridgeError('TIMEOUT', `no answer to ${kindName(kind)} (seq ${seq}) after ${this.o.retries + 1} tries`);
  }

  async hello(): Promise<Hello> {
    const h = parseHello(await this.request(KIND.hello, undefined, this.o.timeoutMs));
    if (h.proto !== 1) throw new BridgeError('PROTOCOL', `device speaks protocol ${h.proto}; this host speaks 1`);
    if (this.info && h.boot !== this.info.boot) {
      this.counters.resets++;
      this.o.log(`bridge: device reset (boot ${this.info.boot} -> ${h.boot})`);
    }
    this.info = h;
    return h;
  }

  async stats(): Promise<DeviceStatsLayers> {
    const b = await this.request(KIND.stats, undefined, this.o.timeoutMs);
    if (!isObject(b)) throw new BridgeError('PROTOCOL', 'stats: answer is not a map');
    const f = (k: string) => uint(b[k] ?? 0, `stats.${k}`);
    const out: DeviceStatsLayers = { frames: f('frames'), bad_frames: f('bad_frames'), retries_served: f('retries_served'), infers: f('infers'), boot: f('boot'), uptime_ms: f('uptime_ms'), arena_peak: f('arena_peak') };
    if (b['layers'] !== undefined) {
      const l = b['layers'];
      if (!Array.isArray(l)) throw new BridgeError('PROTOCOL', 'stats.layers is not an array');
      out.layers = l.map((e, i) => {
        if (!Array.isArray(e) || e.length !== 3) throw new BridgeError('PROTOCOL', `stats.layers[${i}] is not [first, last, cycles]`);
        const [first, last, cycles] = e.map((v, j) => uint(v, `stats.layers[${i}][${j}]`)) as [number, number, number];
        if (first > last) throw new BridgeError('PROTOCOL', `stats.layers[${i}]: first node ${first} after last ${last}`);
        return { first, last, cycles };
      });
      out.layers_lost = f('layers_lost');
    }
    return out;
  }

  /** Asks the device to reset and waits until hello shows a new boot. */
  async reset(): Promise<Hello> {
    const before = this.info?.boot ?? (await this.hello()).boot;
    await this.request(KIND.reset, undefined, this.o.timeoutMs);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const h = await this.hello();
        if (h.boot !== before) return h;
      } catch (e) {
        if (!(e instanceof BridgeError) || e.code !== 'TIMEOUT' || Date.now() > deadline) throw e;
      }
      if (Date.now() > deadline) throw new BridgeError('TIMEOUT', `device did not come back from reset (boot still ${before})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Uploads `model` (resuming what the device has), prepares it, and remembers it for recovery. */
  async upload(model: Uint8Array, onProgress?: (have: number, total: number) => void): Promise<UploadReport> {
    for (let recovery = 0; ; recovery++) {
      try {
        const r = await this.uploadOnce(model, onProgress);
        // Only a model the device accepted is worth uploading again after a reset.
        this.model = model;
        return r;
      } catch (e) {
        if (!this.recoverable(e) || recovery >= this.o.maxRecoveries) throw e;
        this.o.log(`bridge: upload interrupted (${(e as Error).message}); asking hello`);
        await this.hello();
      }
    }
  }

  /** Errors after which a hello and a fresh start may help: silence, or an upload the device no longer knows. */
  private recoverable(e: unknown): boolean {
    return e instanceof BridgeError && (e.code === 'TIMEOUT' || e.code === 'NO_MODEL' || (e.code === 'BAD_REQUEST' && e.fromDevice));
  }

  private async uploadOnce(model: Uint8Array, onProgress?: (have: number, total: number) => void): Promise<UploadReport> {
    const info = this.info ?? (await this.hello());
    const size = model.length;
    const t0 = performance.now();
    const begin = await this.request(KIND.upload_begin, { size, crc: crc32(model) }, this.o.timeoutMs);
    if (!isObject(begin)) throw new BridgeError('PROTOCOL', 'upload_begin: answer is not a map');
    const resumedFrom = uint(begin['have'], 'upload_begin.have');
    const chunkBytes = Math.max(1, Math.min(this.o.maxChunk, info.max_frame - MIN_RAW_FRAME - CHUNK_BODY_OVERHEAD));
    const frameBytes = cobsMaxEncodedLength(chunkBytes + MIN_RAW_FRAME + CHUNK_BODY_OVERHEAD) + 2;
    // A chunk may wait behind a full window in the pacer before it reaches the line: with a stated
    // baud rate the wait covers that window. On a line without one (an emulator's pty: QEMU's UART
    // takes the bytes as fast as the loaded host lets it, a few KB/s) the wait covers every byte
    // still queued ahead at the measured rate, and before a rate is known it doubles per silence
    // (up to 4x): a resend queues a whole window more behind the first copies, and resends at the
    // base timeout piled window after window until even hello waited behind tens of KB.
    const baud = this.transport.baud;
    const chunkTimeout = (silences: number) => {
      if (baud) return this.o.timeoutMs + (frameBytes * (this.o.window + 1) + 64) * 10 * 1000 / baud;
      let queued = 64;
      for (const s of inflight.keys()) queued += wireBytes.get(s) ?? 0;
      return (this.o.timeoutMs + this.lineMs(queued)) * Math.min(4, 2 ** silences);
    };

    let confirmed = resumedFrom;
    let next = resumedFrom;
    let sentBytes = 0;
    let chunks = 0;
    let stalls = 0;
    /** Silences in this upload: the wait's backoff before the line's rate is known (never reset). */
    let silences = 0;
    /** Where the current stretch without a stall began: the line's rate is measured over it. */
    let stretch = { at: t0, have: resumedFrom };
    /** Chunks of the current pass (after the last rewind) still unanswered, by seq. */
    const inflight = new Map<number, number>();
    /** Wire bytes of each chunk sent, by seq. */
    const wireBytes = new Map<number, number>();
    const mine = new Set<number>();
    const events: Array<{ seq: number; o: Outcome }> = [];
    let wake: (() => void) | undefined;

    /** Offsets sent once already in this upload: the answer to a resend measures nothing. */
    const sentOffsets = new Set<number>();
    const send = (off: number) => {
      const end = Math.min(size, off + chunkBytes);
      const { seq, wire } = this.frame(KIND.upload_chunk, { off, data: model.subarray(off, end) });
      const first = !sentOffsets.has(off);
      sentOffsets.add(off);
      mine.add(seq);
      inflight.set(seq, end);
      wireBytes.set(seq, wire.length);
      let ahead = 0;
      let at = 0;
      this.pending.set(seq, {
        kind: KIND.upload_chunk,
        settle: (o) => {
          // On a line without a baud rate, a first copy's answer measures the line: the bytes that
          // were ahead of it (itself included) over the time it took (the device's work included,
          // so only 4 KB and more: one small chunk's turnaround would understate the line).
          if (first && !baud && 'body' in o && ahead >= 4096) this.noteRate(ahead / Math.max(1, performance.now() - at));
          events.push({ seq, o });
          wake?.();
        },
      });
      this.counters.requests++;
      this.write(wire);
      ahead = this.backlog;
      at = performance.now();
      sentBytes += end - off;
      chunks++;
      return end;
    };
    const rewind = (to: number) => {
      confirmed = Math.min(confirmed, to);
      next = to;
      inflight.clear();
    };
    try {
      onProgress?.(confirmed, size);
      while (confirmed < size) {
        while (inflight.size < this.o.window && next < size) next = send(next);
        if (events.length === 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              wake = undefined;
              resolve();
            }, chunkTimeout(baud || this.lineRate !== undefined ? stalls : silences));
            wake = () => {
              clearTimeout(timer);
              wake = undefined;
              resolve();
            };
          });
        }
        if (events.length === 0) {
          // Silence: resend from the last confirmed byte (the device compares what it has).
          this.counters.timeouts++;
          silences++;
          if (++stalls > this.o.retries) throw new BridgeError('TIMEOUT', `upload stalled at byte ${confirmed} of ${size} after ${stalls} timeouts`);
          this.counters.resends++;
          stretch = { at: performance.now(), have: confirmed };
          if (!baud) {
            // On a line without a baud rate a silence is more often a slow line than a lost chunk:
            // the chunks in flight are likely still queued, so only the first unconfirmed one is
            // sent again, as a probe, and the window goes on from where it was. The answers (a
            // late one's `have`, or a BAD_OFFSET for a chunk after a lost one) say where the
            // device is; rewinding the whole window would queue it all a second time. The window
            // forgets the chunks it waited on, so lost ones cannot hold it shut.
            inflight.clear();
            send(confirmed);
            continue;
          }
          rewind(confirmed);
          continue;
        }
        const { seq, o } = events.shift()!;
        const current = inflight.delete(seq);
        if ('body' in o) {
          const have = uint(isObject(o.body) ? o.body['have'] : undefined, 'upload_chunk.have');
          if (have > size) throw new BridgeError('PROTOCOL', `upload_chunk: device has ${have} bytes of a ${size}-byte model`);
          if (have > confirmed) {
            // The line's rate over this stretch without a stall (chunk framing left out: a cautious figure).
            if (have - stretch.have >= 4096) this.noteRate((have - stretch.have) / Math.max(1, performance.now() - stretch.at));
            confirmed = have;
            stalls = 0;
            onProgress?.(confirmed, size);
          }
          if (next < confirmed) next = confirmed;
        } else if (o.error.code === 'BAD_OFFSET') {
          // A chunk before this one was lost: start again where the device is (stale ones are ignored).
          const have = haveFromMessage(o.error.message);
          if (current && have !== undefined && have <= size) {
            if (have < confirmed) confirmed = have;
            rewind(have);
            stretch = { at: performance.now(), have };
          }
        } else throw o.error;
      }
    } finally {
      for (const s of mine) {
        const p = this.pending.get(s);
        if (p && p.kind === KIND.upload_chunk) this.pending.delete(s);
      }
      wake = undefined;
    }
    const transfer = () => {
      const seconds = (performance.now() - t0) / 1000;
      const bytesPerSecond = (size - resumedFrom) / seconds;
      const baud = this.transport.baud;
      return { bytes: size, resumedFrom, sentBytes, chunkBytes, chunks, seconds, bytesPerSecond, lineFraction: baud ? bytesPerSecond / (baud / 10) : undefined };
    };
    let endBody: unknown;
    try {
      endBody = await this.request(KIND.upload_end, undefined, this.o.prepareTimeoutMs);
    } catch (e) {
      if (e instanceof BridgeError) e.upload = transfer();
      throw e;
    }
    if (!isObject(endBody)) throw new BridgeError('PROTOCOL', 'upload_end: answer is not a map');
    const t = transfer();
    if (this.info) this.info.model = { size, crc: crc32(model), ready: true };
    return {
      ready: endBody['ready'] === true,
      arena_used: uint(endBody['arena_used'] ?? 0, 'upload_end.arena_used'),
      peak_scratch: uint(endBody['peak_scratch'] ?? 0, 'upload_end.peak_scratch'),
      in: uintList(endBody['in'], 'upload_end.in'),
      out: uintList(endBody['out'], 'upload_end.out'),
      ...t,
    };
  }

  /** Whether the device's flash holds `model`, prepared. */
  private hasModel(h: Hello, model: Uint8Array): boolean {
    return h.model !== null && h.model.ready && h.model.size === model.length && h.model.crc === crc32(model);
  }

  /**
   * Runs one sample. `x` is u8 pixels (the device divides by `div`) or f32. Resends the same bytes
   * on a timeout; after repeated silence or NO_MODEL, checks for a reset, re-uploads, and retries.
   */
  async infer(id: number, x: Uint8Array | Float32Array, div = 255): Promise<InferResult> {
    const body = x instanceof Float32Array
      ? { id, x: new Uint8Array(x.buffer, x.byteOffset, x.byteLength), dtype: 'f32' }
      : { id, x, dtype: 'u8', div };
    const prepared = this.frame(KIND.infer, body);
    // The device's `us` is its own (emulated) time; the wall clock of past inferences bounds it from below.
    const compute = this.maxUs > 0 ? this.o.timeoutMs + Math.max((3 * this.maxUs) / 1000, 2 * this.maxInferWallMs) : this.o.firstInferTimeoutMs;
    for (let recovery = 0; ; recovery++) {
      let answer: unknown;
      try {
        answer = await this.request(KIND.infer, body, compute, prepared);
      } catch (e) {
        if (!this.recoverable(e) || recovery >= this.o.maxRecoveries) throw e;
        // Without a model of ours to upload again, a device without one cannot be helped.
        if ((e as BridgeError).code === 'NO_MODEL' && !this.model) throw e;
        await this.recover(e as BridgeError);
        continue;
      }
      if (!isObject(answer)) throw new BridgeError('PROTOCOL', 'infer: answer is not a map');
      const gotId = uint(answer['id'], 'infer.id');
      if (gotId !== id) throw new BridgeError('PROTOCOL', `infer: asked for sample ${id}, the answer is for ${gotId}`);
      const yb = bytesOf(answer['y'], 'infer.y');
      if (yb.length % 4 !== 0) throw new BridgeError('PROTOCOL', `infer: y has ${yb.length} bytes, not a multiple of 4`);
      const y = new Float32Array(yb.length / 4);
      new Uint8Array(y.buffer).set(yb);
      const us = uint(answer['us'] ?? 0, 'infer.us');
      if (us > this.maxUs) this.maxUs = us;
      this.maxInferWallMs = Math.max(this.maxInferWallMs, this.lastExchangeMs);
      const cycles = answer['cycles'] === undefined || answer['cycles'] === null ? undefined : uint(answer['cycles'], 'infer.cycles');
      return { id, y, us, cycles };
    }
  }

  /** After silence or a lost model: hello, and upload the model again if the device lost it. */
  private async recover(cause: BridgeError): Promise<void> {
    this.o.log(`bridge: ${cause.message}; checking the device`);
    let h: Hello;
    try {
      h = await this.hello();
    } catch (e) {
      throw new BridgeError('RECOVERY_FAILED', `device stopped answering (${cause.message}; then ${(e as Error).message})`, false, { cause: e });
    }
    if (this.model && !this.hasModel(h, this.model)) {
      this.counters.reuploads++;
      this.o.log(`bridge: the device lost the model (boot ${h.boot}); uploading it again`);
      await this.upload(this.model);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe();
    for (const p of this.pending.values()) p.settle({ error: new BridgeError('CLOSED', 'bridge client closed') });
    this.pending.clear();
  }
}

