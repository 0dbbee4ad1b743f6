// johnny-five on a factorlite board: the firmware answers the Firmata subset johnny-five needs
// (PROTOCOL.md section 6), so a script drives pins with johnny-five's ordinary API (Sensor, Led,
// Pin) and runs the model through the factorlite sysex 0x01 on the same line:
//
//   host -> F0 01 <u8 pixels as 7-bit pairs: lo7, hi1> F7
//   host <- F0 01 <top-1 class> <logits, f32 LE, each byte as a 7-bit pair> F7   (top-1 0x7F: no model)
//
// One serial port carries both dialects: uploadModel() speaks the binary protocol first, then
// Firmata takes over once the device's frame state has timed out (200 ms of silence).
import type { SerialPort } from 'serialport';
import { requireOptional } from '../../runtime/optionalPackage.js';
import { BridgeClient, type UploadReport } from './client.js';
import { FRAME_GAP_MS } from './frame.js';
import { SerialTransport } from './transport.js';

/** The part of firmata.js's Board that the adapter uses. */
export interface FirmataIo {
  isReady: boolean;
  firmware?: { name: string; version: { major: number; minor: number } };
  pins: Array<{ supportedModes: number[]; analogChannel: number }>;
  analogPins: number[];
  sysexCommand(message: number[]): unknown;
  pinMode(pin: number, mode: number): unknown;
  transport: { write(b: Buffer): unknown };
  once(event: string, cb: (...args: unknown[]) => void): unknown;
  on(event: string, cb: (...args: unknown[]) => void): unknown;
  removeAllListeners(event?: string): unknown;
}

interface FirmataClass {
  new (port: SerialPort, options: Record<string, unknown>, callback?: (e?: Error) => void): FirmataIo;
  SYSEX_RESPONSE: Record<number, (board: FirmataIo & { buffer: number[] }) => void>;
}

export class JohnnyError extends Error {
  constructor(readonly code: 'NOT_READY' | 'NO_MODEL' | 'TIMEOUT' | 'BAD_ANSWER' | 'BAD_INPUT', message: string) {
    super(message);
  }
}

export const FACTORLITE_SYSEX = 0x01;

/** Bytes as Firmata's 7-bit pairs: low 7 bits, then the high bit. */
export function to7bitPairs(bytes: Uint8Array): number[] {
  const out = new Array<number>(bytes.length * 2);
  for (let i = 0; i < bytes.length; i++) {
    out[2 * i] = bytes[i]! & 0x7f;
    out[2 * i + 1] = bytes[i]! >> 7;
  }
  return out;
}

export function from7bitPairs(data: ArrayLike<number>, start = 0): Uint8Array {
  const n = Math.floor((data.length - start) / 2);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (data[start + 2 * i]! & 0x7f) | ((data[start + 2 * i + 1]! & 0x7f) << 7);
  return out;
}

/** Decodes the data bytes of a factorlite sysex answer (between F0 01 and F7). */
export function decodeModelAnswer(data: ArrayLike<number>): { top1: number; logits: Float32Array } {
  if (data.length < 1) throw new JohnnyError('BAD_ANSWER', 'factorlite sysex answer is empty');
  const top1 = data[0]!;
  if (top1 === 0x7f) throw new JohnnyError('NO_MODEL', 'the board has no prepared model, or the input size does not match it');
  const bytes = from7bitPairs(data, 1);
  if (bytes.length % 4 !== 0 || bytes.length === 0) throw new JohnnyError('BAD_ANSWER', `factorlite sysex answer carries ${bytes.length} logit bytes, not a multiple of 4`);
  const logits = new Float32Array(bytes.length / 4);
  new Uint8Array(logits.buffer).set(bytes);
  return { top1, logits };
}

// firmata.js keeps sysex handlers in one table for all boards: one dispatcher, one entry per io.
const handlers = new WeakMap<object, (data: number[]) => void>();
function installDispatcher(Firmata: FirmataClass): void {
  if (Firmata.SYSEX_RESPONSE[FACTORLITE_SYSEX]) return;
  Firmata.SYSEX_RESPONSE[FACTORLITE_SYSEX] = (board) => handlers.get(board)?.(board.buffer.slice(2, -1));
}

export interface OpenOptions {
  baud?: number;
  /** How long to wait for Firmata's handshake (default 10 s). */
  timeoutMs?: number;
  /** Timeout of one model run over Firmata (default 10 s). */
  runTimeoutMs?: number;
}

/** A board: the open serial port, firmata.js on it, johnny-five's Board, and runModel. */
export class FactorliteBoard {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly port: SerialPort,
    readonly io: FirmataIo,
    /** johnny-five's Board (use it as the `board` option of Sensor, Led, Pin). */
    readonly board: import('node:events').EventEmitter & { isReady: boolean },
    private readonly runTimeoutMs: number,
  ) {}

  /**
   * Opens `path`, optionally uploads a model over the binary protocol first, then starts
   * firmata.js and johnny-five on the same port and waits until both are ready.
   */
  static async open(path: string, opts: OpenOptions & { model?: Uint8Array; onUpload?: (r: UploadReport) => void } = {}): Promise<FactorliteBoard> {
    const port = await new Promise<SerialPort>((resolve, reject) => {
      const { SerialPort } = requireOptional<typeof import('serialport')>('serialport', 'a serial port');
      const p = new SerialPort({ path, baudRate: opts.baud ?? 115200, autoOpen: false, hupcl: false });
      p.open((e) => (e ? reject(new JohnnyError('NOT_READY', `cannot open ${path}: ${e.message}`)) : resolve(p)));
    });
    try {
      if (opts.model) {
        const t = SerialTransport.attach(port);
        const client = new BridgeClient(t);
        try {
          const r = await client.upload(opts.model);
          opts.onUpload?.(r);
        } finally {
          await client.close();
          await t.close();
        }
        // Let the device's frame state time out so it reads the next bytes as Firmata.
        await new Promise((r) => setTimeout(r, FRAME_GAP_MS + 100));
      }
      return await FactorliteBoard.attach(port, opts);
    } catch (e) {
      await new Promise<void>((r) => (port.isOpen ? port.close(() => r()) : r()));
      throw e;
    }
  }

  /** Starts firmata.js and johnny-five on an open port. */
  static async attach(port: SerialPort, opts: OpenOptions = {}): Promise<FactorliteBoard> {
    const Firmata = requireOptional<FirmataClass>('firmata', 'the johnny-five adapter');
    installDispatcher(Firmata);
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const io = await new Promise<FirmataIo>((resolve, reject) => {
      const timer = setTimeout(() => reject(new JohnnyError('TIMEOUT', `no Firmata handshake from ${port.path} within ${timeoutMs / 1000} s`)), timeoutMs);
      // The port is already open, so the version is asked for at once rather than awaited from a boot.
      const fio: FirmataIo = new Firmata(port, { reportVersionTimeout: 50 }, (e?: Error) => {
        clearTimeout(timer);
        if (e) reject(new JohnnyError('NOT_READY', `Firmata on ${port.path}: ${e.message}`));
        else resolve(fio);
      });
    });
    // firmata.js sends no SET_PIN_MODE for analog input (StandardFirmata boots its analog pins in
    // that mode); the factorlite firmware reports a pin only once it was set to it, so send it.
    const pinMode = io.pinMode.bind(io);
    io.pinMode = (pin: number, mode: number) => {
      pinMode(pin, mode);
      const real = io.analogPins[pin];
      if (mode === 0x02 && real !== undefined) io.transport.write(Buffer.from([0xf4, real, 0x02]));
    };
    const five = requireOptional<{ Board: new (o: Record<string, unknown>) => import('node:events').EventEmitter & { isReady: boolean } }>('johnny-five', 'the johnny-five adapter');
    const board = new five.Board({ io, repl: false, debug: false, sigint: false, timeout: timeoutMs });
    if (!board.isReady) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new JohnnyError('TIMEOUT', 'johnny-five did not become ready')), timeoutMs);
        board.once('ready', () => {
          clearTimeout(timer);
          resolve();
        });
        board.once('error', (e: unknown) => {
          clearTimeout(timer);
          reject(new JohnnyError('NOT_READY', `johnny-five: ${(e as Error)?.message ?? String(e)}`));
        });
      });
    }
    return new FactorliteBoard(port, io, board, opts.runTimeoutMs ?? 10_000);
  }

  /** Runs the board's model on u8 pixels (the device divides by 255); one run at a time. */
  runModel(input: Uint8Array): Promise<{ top1: number; logits: Float32Array }> {
    const run = this.queue.then(() => this.runOnce(input));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private runOnce(input: Uint8Array): Promise<{ top1: number; logits: Float32Array }> {
    if (input.length === 0) return Promise.reject(new JohnnyError('BAD_INPUT', 'runModel: empty input'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        handlers.delete(this.io);
        reject(new JohnnyError('TIMEOUT', `no factorlite sysex answer within ${this.runTimeoutMs / 1000} s`));
      }, this.runTimeoutMs);
      handlers.set(this.io, (data) => {
        clearTimeout(timer);
        handlers.delete(this.io);
        try {
          resolve(decodeModelAnswer(data));
        } catch (e) {
          reject(e);
        }
      });
      this.io.sysexCommand([FACTORLITE_SYSEX, ...to7bitPairs(input)]);
    });
  }

  close(): Promise<void> {
    handlers.delete(this.io);
    return new Promise((resolve) => (this.port.isOpen ? this.port.close(() => resolve()) : resolve()));
  }
}
