// Byte transports for the bridge: a serial line (a real UART or an emulator's pty) through
// `serialport`, optionally paced to a line rate, and a wrapper that injects line faults.
//
//   client ──write──▶ [FaultyTransport tx faults] ──▶ [tx pacer] ──▶ SerialPort ──▶ device
//   client ◀──data─── [FaultyTransport rx faults] ◀── [rx pacer] ◀── SerialPort ◀── device
import type { SerialPort } from 'serialport';
import { requireOptional } from '../../runtime/optionalPackage.js';
import { mulberry32 } from '../../shared/prng.js';

export interface ByteTransport {
  /** Queues bytes for the line; never blocks. */
  write(bytes: Uint8Array): void;
  /** Adds a listener for received bytes; returns a function that removes it. */
  onData(listener: (bytes: Uint8Array) => void): () => void;
  /** Line rate in baud (10 bits per byte) when the transport is paced to one. */
  readonly baud: number | undefined;
  close(): Promise<void>;
}

export class TransportError extends Error {
  constructor(readonly code: 'OPEN_FAILED' | 'WRITE_FAILED' | 'BAD_FAULT_SPEC' | 'CLOSED', message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Bytes per second of an 8N1 line: 10 bits per byte. */
export function lineBytesPerSecond(baud: number): number {
  return baud / 10;
}

/**
 * Releases bytes no faster than a UART at `baud` would deliver them: byte i of a busy stretch that
 * began at t0 is released at t0 + (i + 1) * 10 / baud. A pty has no baud rate of its own, so this
 * makes a throughput measured on an emulator what a real line gives.
 */
export class LinePacer {
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  private t0 = 0;
  private sent = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly perMs: number;

  constructor(baud: number, private readonly sink: (bytes: Uint8Array) => void) {
    this.perMs = lineBytesPerSecond(baud) / 1000;
  }

  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const now = performance.now();
    // An idle line starts a new busy stretch; a busy one continues where it is.
    if (this.queued === 0 && this.t0 + this.sent / this.perMs <= now) {
      this.t0 = now;
      this.sent = 0;
    }
    this.queue.push(bytes);
    this.queued += bytes.length;
    this.schedule();
  }

  get pending(): number {
    return this.queued;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.queued = 0;
  }

  private schedule(): void {
    if (this.timer || this.queued === 0) return;
    // Release at least a couple of milliseconds' worth at a time: timers are not finer than that.
    const nextAt = this.t0 + (this.sent + Math.max(1, Math.ceil(this.perMs * 2))) / this.perMs;
    this.timer = setTimeout(() => this.tick(), Math.max(0, nextAt - performance.now()));
  }

  private tick(): void {
    this.timer = undefined;
    const due = Math.floor((performance.now() - this.t0) * this.perMs) - this.sent;
    let n = Math.min(due, this.queued);
    while (n > 0) {
      const head = this.queue[0]!;
      const take = Math.min(n, head.length);
      this.sink(head.subarray(0, take));
      if (take === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(take);
      this.queued -= take;
      this.sent += take;
      n -= take;
    }
    this.schedule();
  }
}

export interface SerialOptions {
  /** Line rate; with `pace`, writes and reads are released at this rate. Default 115200. */
  baud?: number;
  /** Pace both directions to the line rate (for a pty, which has none). */
  pace?: boolean;
  /** The line really runs at `baud` (a real UART): timeouts and the upload report use it. */
  realLine?: boolean;
}

/** A serial line through `serialport`: a real device path or an emulator's pty. */
export class SerialTransport implements ByteTransport {
  readonly baud: number | undefined;
  private readonly listeners = new Set<(b: Uint8Array) => void>();
  private readonly txPacer: LinePacer | undefined;
  private readonly rxPacer: LinePacer | undefined;
  private closed = false;
  private failure: Error | undefined;
  private readonly detach: () => void;

  private constructor(readonly port: SerialPort, readonly path: string, opts: SerialOptions, private readonly owned = true) {
    const baud = opts.baud ?? 115200;
    this.baud = opts.pace || opts.realLine ? baud : undefined;
    const writeNow = (b: Uint8Array) => {
      if (!this.closed) port.write(Buffer.from(b.buffer, b.byteOffset, b.length));
    };
    const deliver = (b: Uint8Array) => {
      for (const l of this.listeners) l(b);
    };
    this.txPacer = opts.pace ? new LinePacer(baud, writeNow) : undefined;
    this.rxPacer = opts.pace ? new LinePacer(baud, deliver) : undefined;
    const onData = (d: Buffer) => {
      const b = new Uint8Array(d.buffer, d.byteOffset, d.length);
      if (this.rxPacer) this.rxPacer.push(b);
      else deliver(b);
    };
    const onError = (e: Error) => {
      this.failure = e;
    };
    port.on('data', onData);
    port.on('error', onError);
    this.detach = () => {
      port.off('data', onData);
      port.off('error', onError);
    };
    this.write = (bytes: Uint8Array) => {
      if (this.closed) throw new TransportError('CLOSED', `serial ${path}: write after close`);
      if (this.failure) throw new TransportError('WRITE_FAILED', `serial ${path}: ${this.failure.message}`, { cause: this.failure });
      const copy = bytes.slice();
      if (this.txPacer) this.txPacer.push(copy);
      else writeNow(copy);
    };
  }

  /** Opens `path` (never enumerates ports: SerialPort.list() needs udevadm). */
  static open(path: string, opts: SerialOptions = {}): Promise<SerialTransport> {
    return new Promise((resolve, reject) => {
      const { SerialPort } = requireOptional<typeof import('serialport')>('serialport', 'a serial port');
      const port = new SerialPort({ path, baudRate: opts.baud ?? 115200, autoOpen: false, hupcl: false });
      port.open((err) => {
        if (err) reject(new TransportError('OPEN_FAILED', `cannot open serial port ${path}: ${err.message}`, { cause: err }));
        else resolve(new SerialTransport(port, path, opts));
      });
    });
  }

  /**
   * A transport over a port someone else opened (the johnny-five adapter shares one port between
   * the binary protocol and Firmata); close() detaches from the port without closing it.
   */
  static attach(port: SerialPort, opts: SerialOptions = {}): SerialTransport {
    return new SerialTransport(port, port.path, opts, false);
  }

  write: (bytes: Uint8Array) => void;

  onData(listener: (bytes: Uint8Array) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Bytes written but not yet released to the line by the pacer. */
  get txPending(): number {
    return this.txPacer?.pending ?? 0;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.txPacer?.stop();
    this.rxPacer?.stop();
    this.listeners.clear();
    this.detach();
    // Closing cancels the pending read, which the port reports as an error: nobody needs it now.
    this.port.on('error', () => {});
    return new Promise((resolve) => {
      if (!this.owned || !this.port.isOpen) return resolve();
      this.port.close(() => resolve());
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Fault injection

export interface FaultSpec {
  /** Probability per byte of flipping one random bit. */
  flip: number;
  /** Probability per byte of dropping it. */
  drop: number;
  /** Probability per byte of sending it twice. */
  dup: number;
  /** Probability per frame (a run of bytes after a 0x00) of cutting it short: its tail and closing 0x00 are lost. */
  cut: number;
  /** Which directions get faults: host to device, device to host, or both. */
  dir: 'tx' | 'rx' | 'both';
  seed: number;
}

export const NO_FAULTS: FaultSpec = { flip: 0, drop: 0, dup: 0, cut: 0, dir: 'both', seed: 1 };

/**
 * Parses `flip=1e-3,drop=1e-3,dup=1e-3,cut=0.02,dir=both,seed=7`; every key is optional.
 * `light`, `heavy` are presets.
 */
export function parseFaultSpec(text: string): FaultSpec {
  const presets: Record<string, Partial<FaultSpec>> = {
    none: {},
    light: { flip: 2e-4, drop: 2e-4, dup: 2e-4, cut: 0.01 },
    heavy: { flip: 2e-3, drop: 2e-3, dup: 2e-3, cut: 0.05 },
  };
  const spec: FaultSpec = { ...NO_FAULTS };
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (part in presets) {
      Object.assign(spec, presets[part]);
      continue;
    }
    const m = /^(flip|drop|dup|cut|dir|seed)=(.+)$/.exec(part);
    if (!m) throw new TransportError('BAD_FAULT_SPEC', `--faults ${text}: cannot read "${part}" (expected flip|drop|dup|cut=P, dir=tx|rx|both, seed=N, or light|heavy)`);
    const [, key, value] = m as unknown as [string, keyof FaultSpec, string];
    if (key === 'dir') {
      if (value !== 'tx' && value !== 'rx' && value !== 'both') throw new TransportError('BAD_FAULT_SPEC', `--faults: dir=${value}: expected tx, rx or both`);
      spec.dir = value;
    } else if (key === 'seed') {
      const n = Number(value);
      if (!Number.isInteger(n)) throw new TransportError('BAD_FAULT_SPEC', `--faults: seed=${value}: expected an integer`);
      spec.seed = n;
    } else {
      const p = Number(value);
      if (!(p >= 0 && p <= 1)) throw new TransportError('BAD_FAULT_SPEC', `--faults: ${key}=${value}: expected a probability in [0, 1]`);
      spec[key] = p;
    }
  }
  return spec;
}

/** A seeded PRNG (mulberry32), so that a fault run can be replayed. */
export const seededRandom = mulberry32;

export interface FaultCounts {
  flipped: number;
  dropped: number;
  duplicated: number;
  cut: number;
}

/** Applies the byte faults of a spec to one direction of a stream. */
export class FaultStream {
  readonly counts: FaultCounts = { flipped: 0, dropped: 0, duplicated: 0, cut: 0 };
  /** Bytes still to pass before the current frame is cut; -1: no cut pending. */
  private cutIn = -1;
  private cutting = false;
  private prevZero = true;

  constructor(private readonly spec: FaultSpec, private readonly rnd: () => number) {}

  apply(bytes: Uint8Array): Uint8Array {
    const s = this.spec;
    const out: number[] = [];
    for (let i = 0; i < bytes.length; i++) {
      let b = bytes[i]!;
      // A frame starts after a 0x00: maybe choose to cut it after a few bytes.
      if (this.prevZero && b !== 0 && s.cut > 0 && this.rnd() < s.cut) this.cutIn = 1 + Math.floor(this.rnd() * 24);
      this.prevZero = b === 0;
      if (this.cutting) {
        // The tail of a cut frame, its closing zero included, never reaches the other side.
        if (b === 0) {
          this.cutting = false;
          this.prevZero = false;
        }
        continue;
      }
      if (this.cutIn > 0 && b !== 0 && --this.cutIn === 0) {
        this.cutIn = -1;
        this.cutting = true;
        this.counts.cut++;
        continue;
      }
      if (b === 0) this.cutIn = -1; // the frame ended before its cut point
      if (s.drop > 0 && this.rnd() < s.drop) {
        this.counts.dropped++;
        continue;
      }
      if (s.flip > 0 && this.rnd() < s.flip) {
        b ^= 1 << Math.floor(this.rnd() * 8);
        this.counts.flipped++;
      }
      out.push(b);
      if (s.dup > 0 && this.rnd() < s.dup) {
        out.push(b);
        this.counts.duplicated++;
      }
    }
    return Uint8Array.from(out);
  }
}

/** Wraps a transport and damages the bytes that cross it, reproducibly from `spec.seed`. */
export class FaultyTransport implements ByteTransport {
  readonly tx: FaultStream | undefined;
  readonly rx: FaultStream | undefined;
  private enabled = true;
  private readonly listeners = new Set<(b: Uint8Array) => void>();
  private unsubscribe: (() => void) | undefined;

  constructor(readonly inner: ByteTransport, readonly spec: FaultSpec) {
    const rnd = seededRandom(spec.seed);
    const rnd2 = seededRandom(spec.seed ^ 0x5bd1e995);
    this.tx = spec.dir !== 'rx' ? new FaultStream(spec, rnd) : undefined;
    this.rx = spec.dir !== 'tx' ? new FaultStream(spec, rnd2) : undefined;
  }

  get baud(): number | undefined {
    return this.inner.baud;
  }

  /** Turns the faults off or on (e.g. to check that the device still answers on a clean line). */
  setEnabled(on: boolean): void {
    this.enabled = on;
  }

  write(bytes: Uint8Array): void {
    this.inner.write(this.enabled && this.tx ? this.tx.apply(bytes) : bytes);
  }

  onData(listener: (bytes: Uint8Array) => void): () => void {
    // One subscription below, so the receive faults are drawn once per byte whatever the listeners.
    this.unsubscribe ??= this.inner.onData((b) => {
      const got = this.enabled && this.rx ? this.rx.apply(b) : b;
      if (got.length > 0) for (const l of this.listeners) l(got);
    });
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Faults injected so far, per direction. */
  counts(): { tx: FaultCounts; rx: FaultCounts } {
    const zero = { flipped: 0, dropped: 0, duplicated: 0, cut: 0 };
    return { tx: { ...(this.tx?.counts ?? zero) }, rx: { ...(this.rx?.counts ?? zero) } };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
