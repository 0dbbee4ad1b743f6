// Helpers for the firmware tests: build the ports, make models with an "mcu" plan, run the Node
// reference, start a device (fl-host or QEMU) on a pty, and talk to it: raw text (MLPerf Tiny) or
// a minimal binary-frame uploader written here from docs/PROTOCOL.md (independent of
// firmware-bridge/host, which has its own tests against the device).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Test } from 'tap';
import { pack, unpack } from 'msgpackr';
import { SerialPort } from 'serialport';
import CRC32 from 'crc-32';
import { withDirLock } from '../../../hardware-in-loop/dirLock.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { planModel, writeFlmFile } from '../../../converter/writer.js';
import type { MemoryPlan } from '../../../runtime/plan/types.js';
import type { StoredTensor } from '../../../runtime/ir.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { Session } from '../../../runtime/session.js';
import { FIXTURES, REPO_ROOT, missing } from '../../support/require.js';

export const FW_DIR = resolve(REPO_ROOT, 'firmware-bridge/firmware');
export const TMP = resolve(REPO_ROOT, 'tmp/test-firmware');

/** One run of the host port on a model file (`fl-host --run`): x in, the output's floats back
 * (outLen of them, else it throws); the files are named by `tag` and the process id under TMP. */
export function runHost(bin: string, file: string, x: Float32Array, outLen: number, tag: string): Float32Array {
  const inp = resolve(TMP, `${tag}-in-${process.pid}.bin`);
  const out = resolve(TMP, `${tag}-out-${process.pid}.bin`);
  writeFileSync(inp, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
  const r = spawnSync(bin, ['--run', file, inp, out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`fl-host --run ${file}: ${r.stderr.trim()}`);
  const b = readFileSync(out);
  const y = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  if (y.length !== outLen) throw new Error(`fl-host wrote ${y.length} floats, expected ${outLen}`);
  return y;
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

/**
 * Runs fn holding `<dir>/.lock` (hardware-in-loop/dirLock.ts), so that test files running side by
 * side never run make into the same build folder at once. A lock whose owner process is gone, or
 * older than 15 minutes, is stale and taken over.
 */
export function withLock<T>(dir: string, fn: () => T): T {
  return withDirLock(resolve(dir, '.lock'), fn, { staleMs: 15 * 60_000 });
}

/** Writes a file under a temporary name beside it, then renames it: readers see all or nothing. */
async function atomically(path: string, write: (tmp: string) => unknown): Promise<void> {
  const tmp = path.replace(/(\.[^./]*)?$/, (ext) => `.${process.pid}.tmp${ext}`); // keeps the extension (.flm)
  try {
    await write(tmp);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Builds a port with make; undefined (skip, or fail under FACTORLITE_CI=1) without the tools. */
export function buildPort(t: Test, target: 'host' | 'host-asan' | 'host-ref' | 'cortex-m4' | 'cortex-m4-l4r5' | 'cortex-m4-ref'): string | undefined {
  const qemu = target.startsWith('cortex-m4');
  const tools = qemu ? ['arm-none-eabi-gcc', 'qemu-system-arm'] : ['cc', 'make'];
  for (const tool of tools) if (!have(tool)) return void missing(t, `${tool} is not installed`);
  const r = withLock(resolve(FW_DIR, 'build'), () => spawnSync('make', ['-s', '-C', FW_DIR, target], { encoding: 'utf8' }));
  if (r.status !== 0) {
    t.fail(`make ${target} failed:\n${r.stdout}${r.stderr}`);
    return undefined;
  }
  return resolve(FW_DIR, 'build', target, qemu ? 'fw.elf' : 'fl-host');
}

/**
 * Runs `fl-host --run file` on x (written to file.in) with each build of bins: one assertion per
 * build that its output is want, float for float (a failure if the run fails).
 */
export function runBitExact(t: Test, bins: Record<string, string | undefined>, file: string, x: Float32Array, want: Float32Array): void {
  writeFileSync(`${file}.in`, new Uint8Array(x.buffer));
  for (const [build, bin] of Object.entries(bins)) {
    const r = spawnSync(bin!, ['--run', file, `${file}.in`, `${file}.out`], { encoding: 'utf8' });
    if (r.status !== 0) { t.fail(`${build}: fl-host --run: ${r.stderr.trim()}`); continue; }
    const b = readFileSync(`${file}.out`);
    const y = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    t.ok(y.length === want.length && y.every((v, i) => Object.is(v, want[i])), `${build}: ${y.length} outputs the Node reference's, float for float`);
  }
}

/** factorlite convert, cached under tmp/; then makes sure the file carries an "mcu" plan. */
export async function convert(t: Test, fixture: 'lenet5' | 'mlp', method: string, quant: string): Promise<string | undefined> {
  const onnx = resolve(FIXTURES, `${fixture}_fashion.onnx`);
  if (!existsSync(onnx)) return void missing(t, `fixture ${onnx} not found`);
  mkdirSync(TMP, { recursive: true });
  const out = resolve(TMP, `${fixture}_${method}_${quant}.flm`);
  if (!existsSync(out)) {
    // Converted under a temporary name and renamed: a test file beside this one never reads half a file.
    let failed = '';
    await atomically(out, (tmp) => {
      const args = [resolve(REPO_ROOT, 'bin/factorlite.js'), 'convert', onnx, '-o', tmp, '--method', method, '--quant', quant];
      if (method !== 'none') args.push('--ratio', '10');
      const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(r.stderr);
    }).catch((e: Error) => { failed = e.message; });
    if (failed) {
      t.fail(`convert ${fixture} ${method} ${quant}: ${failed}`);
      return undefined;
    }
  }
  // The cached file's plans may come from an older planner (without fused chains): write it again
  // so its plans are the current writer's (the mcu plan included).
  const model = readFlm(new Uint8Array(readFileSync(out)));
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  const mcu = (m: MemoryPlan | undefined) => JSON.stringify(m?.plans.find((p) => p.profile === 'mcu') ?? null);
  if (mcu(model.memoryPlan) !== mcu(planModel(model))) await atomically(out, (tmp) => writeFlmFile(model, tmp));
  return out;
}

/** The first n Fashion-MNIST test images as u8 pixels and as f32 (= u8 / 255). */
export function fashion(n: number): { u8: Uint8Array; f32: Float32Array; labels: Uint8Array } {
  const gunzip = (p: string) => spawnSync('gzip', ['-dc', p], { maxBuffer: 64 << 20 }).stdout as Buffer;
  const img = gunzip('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz');
  const lab = gunzip('/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz');
  const u8 = new Uint8Array(img.subarray(16, 16 + n * 784));
  const f32 = new Float32Array(n * 784);
  for (let i = 0; i < f32.length; i++) f32[i] = u8[i]! / 255;
  return { u8, f32, labels: new Uint8Array(lab.subarray(8, 8 + n)) };
}

/** The Node runtime's logits for a batch of images [n, 1, 28, 28]. */
export function reference(file: string, x: Float32Array, n: number): Float32Array {
  const model = readFlm(new Uint8Array(readFileSync(file)));
  const s = Session.create(model);
  const shape = [n, ...model.graph.inputs[0]!.shape.slice(1)];
  return s.runBatch({ shape, data: x }).data;
}

/** The Node runtime's outputs for an .flm held in memory, on a batch of n inputs of shape [n, ...input[1:]]. */
export function referenceOf(bytes: Uint8Array, x: Float32Array, n: number, input: number[]): Float32Array {
  return Session.create(readFlm(bytes)).runBatch({ shape: [n, ...input.slice(1)], data: x }).data;
}

/** The worst relative difference of a device's outputs from the reference (scaled by max(1, |ref|));
 * Infinity when any difference is NaN, so that a tolerance check fails on it. */
export function worst(dev: Float32Array, ref: Float32Array): number {
  let w = 0;
  for (let i = 0; i < ref.length; i++) w = Math.max(w, Math.abs(dev[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!)));
  return Number.isNaN(w) ? Infinity : w;
}

export function argmax(v: ArrayLike<number>, off: number, len: number): number {
  let b = 0;
  for (let j = 1; j < len; j++) if (v[off + j]! > v[off + b]!) b = j;
  return b;
}

/** A device process: fl-host, or QEMU running the cortex-m4 firmware; path is its pty. */
export interface Device {
  proc: ChildProcess;
  path: string;
  stop(): Promise<void>;
}

export async function startDevice(kind: 'host' | 'cortex-m4', bin: string, args: string[] = []): Promise<Device> {
  const proc = kind === 'host'
    ? spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('qemu-system-arm', ['-M', 'mps2-an386', '-nographic', '-monitor', 'none', '-serial', 'pty', '-icount', 'shift=0', '-kernel', bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const path = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error('device printed no pty path in 20 s')), 20000);
    for (const stream of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: stream }).on('line', (l) => {
        const m = /(\/dev\/pts\/\d+)/.exec(l);
        if (m) {
          clearTimeout(timer);
          res(m[1]!);
        }
      });
    }
    proc.once('exit', (c) => rej(new Error(`device exited (${c}) before printing its pty`)));
  });
  return {
    proc,
    path,
    stop: () => new Promise<void>((res) => {
      if (proc.exitCode !== null) return res();
      proc.once('exit', () => res());
      proc.kill('SIGTERM');
    }),
  };
}

/** A raw serial line on a pty: write bytes, wait for text or frames. */
export class Line {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private constructor(readonly port: SerialPort) {
    port.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static open(path: string): Promise<Line> {
    return new Promise((res, rej) => {
      const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
      port.open((e) => (e ? rej(e) : res(new Line(port))));
    });
  }

  write(b: Uint8Array | string): void {
    this.port.write(typeof b === 'string' ? Buffer.from(b, 'latin1') : Buffer.from(b));
  }

  /** Waits until the buffer holds `pred`'s match; returns and consumes the bytes up to its end. */
  async until(pred: (b: Buffer) => number, timeoutMs: number, what: string): Promise<Buffer> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const at = pred(this.buf);
      if (at >= 0) {
        const out = this.buf.subarray(0, at);
        this.buf = this.buf.subarray(at);
        return out;
      }
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what}; got ${JSON.stringify(this.buf.toString('latin1').slice(-300))}`);
      await new Promise<void>((res) => {
        const timer = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          res();
        });
      });
    }
  }

  /** Sends an MLPerf Tiny command ("name%") and returns the answer's lines, up to m-ready. */
  async text(cmd: string, timeoutMs = 10000): Promise<string[]> {
    this.write(cmd);
    const out = await this.until((b) => {
      const i = b.indexOf('m-ready\r\n');
      return i < 0 ? -1 : i + 9;
    }, timeoutMs, `m-ready after ${cmd.slice(0, 40)}`);
    return out.toString('latin1').split('\r\n').filter((l) => l.length > 0);
  }

  close(): Promise<void> {
    return new Promise((res) => this.port.close(() => res()));
  }
}

// ---- a minimal binary-frame client (docs/PROTOCOL.md sections 1-3) ----
function cobsEncode(raw: Uint8Array): Uint8Array {
  const out: number[] = [0];
  let i = 0;
  for (;;) {
    let j = i;
    while (j < raw.length && raw[j] !== 0 && j - i < 254) j++;
    out.push(j - i + 1);
    for (let k = i; k < j; k++) out.push(raw[k]!);
    if (j >= raw.length) break;
    i = j - i === 254 ? j : j + 1;
  }
  out.push(0);
  return Uint8Array.from(out);
}

function cobsDecode(enc: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  while (i < enc.length) {
    const code = enc[i++]!;
    for (let k = 1; k < code; k++) out.push(enc[i++]!);
    if (code < 0xff && i < enc.length) out.push(0);
  }
  return Uint8Array.from(out);
}

const crc32 = (b: Uint8Array): number => CRC32.buf(b) >>> 0;

/** What Frames needs of a line (Line, or a scripted line in a test). */
export interface FrameLine {
  write(b: Uint8Array | string): void;
  until(pred: (b: Buffer) => number, timeoutMs: number, what: string): Promise<Buffer>;
}

/**
 * The next frame candidate in a buffer: `{ skip, frame }` where skip bytes are consumed (leading
 * zeros and the candidate) and frame is the COBS bytes between two zeros; undefined until a zero
 * ends it. The closing zero is left in the buffer (Frames.call takes it only after a good answer):
 * it may be the leading zero of the next frame, so a broken or foreign byte run before a frame
 * (text, Firmata answers) never takes a real frame's delimiter with it.
 */
export function nextCandidate(buf: Uint8Array): { skip: number; frame: Uint8Array } | undefined {
  let s = 0;
  while (s < buf.length && buf[s] === 0) s++;
  const e = buf.indexOf(0, s);
  if (e < 0) return undefined;
  return { skip: e, frame: buf.subarray(s, e) };
}

export class Frames {
  private seq = 0;
  /**
   * resendMs: the wait for an answer before the same bytes go again. The device answers a repeat
   * of its last request from the response it stored, without doing the work twice
   * (docs/PROTOCOL.md section 2), and drops a request whose bytes arrive more than 200 ms apart
   * (its clock follows real time while it idles under QEMU, so a loaded host can cut a frame).
   */
  constructor(readonly line: FrameLine, readonly resendMs = 3000) {}

  /** One request, one response; the same bytes are resent (see `until` below) until timeoutMs. */
  async call(kind: number, body?: unknown, timeoutMs = 20000): Promise<{ kind: number; body: Record<string, unknown> }> {
    this.seq = (this.seq + 1) & 0xff;
    const b = body === undefined ? new Uint8Array(0) : new Uint8Array(pack(body));
    const raw = new Uint8Array(2 + b.length + 4);
    raw[0] = this.seq;
    raw[1] = kind;
    raw.set(b, 2);
    new DataView(raw.buffer).setUint32(2 + b.length, crc32(raw.subarray(0, 2 + b.length)), true);
    const request = cobsEncode(raw);
    const end = Date.now() + timeoutMs;
    for (;;) {
      this.line.write(request);
      // A try lasts resendMs plus 1 ms per 2 bytes of request, and at least a quarter of the
      // call's timeout: a long frame, or a call expected to take long, is not sent again while the
      // device may still be reading or working on it (each resend queues behind on the line).
      const until = Math.min(end, Date.now() + Math.max(this.resendMs + (request.length >> 1), timeoutMs / 4));
      for (;;) {
        let enc: Buffer;
        try {
          enc = await this.line.until((buf) => nextCandidate(buf)?.skip ?? -1, Math.max(0, until - Date.now()), `answer to kind ${kind}`);
        } catch (e) {
          if (Date.now() < end) break; // resend
          throw e;
        }
        const inner = nextCandidate(Buffer.concat([enc, Buffer.alloc(1)]))!.frame;
        if (inner.length === 0) continue;
        const rawr = cobsDecode(inner);
        if (rawr.length < 6) continue;
        const crc = new DataView(rawr.buffer, rawr.byteOffset).getUint32(rawr.length - 4, true);
        // a broken frame, or a stale answer (an earlier request's, resent)
        if (crc !== crc32(rawr.subarray(0, rawr.length - 4)) || rawr[0] !== this.seq) continue;
        // The answer is good: its closing zero goes with it (the device opens each frame with a zero).
        await this.line.until((buf) => (buf[0] === 0 ? 1 : 0), 0, 'a closing zero');
        const bodyBytes = rawr.subarray(2, rawr.length - 4);
        return { kind: rawr[1]!, body: (bodyBytes.length ? unpack(bodyBytes) : {}) as Record<string, unknown> };
      }
    }
  }

  async upload(file: Uint8Array, chunk = 2048): Promise<{ kind: number; body: Record<string, unknown> }> {
    const begin = await this.call(0x02, { size: file.length, crc: crc32(file) });
    if (begin.kind !== 0x82) return begin;
    let have = begin.body['have'] as number;
    while (have < file.length) {
      const r = await this.call(0x03, { off: have, data: file.subarray(have, Math.min(file.length, have + chunk)) });
      if (r.kind !== 0x83) return r;
      have = r.body['have'] as number;
    }
    return this.call(0x04, undefined, 60000);
  }
}

/**
 * Builds a cortex-m4 port, makes sure the "mcu" profile is registered, starts the firmware under
 * QEMU and opens a frame line to it (device and line are closed at t's end). Undefined when
 * buildPort skipped (or failed, under FACTORLITE_CI=1).
 */
export async function openDevice(t: Test, target: 'cortex-m4' | 'cortex-m4-l4r5' | 'cortex-m4-ref' = 'cortex-m4'): Promise<Frames | undefined> {
  const elf = buildPort(t, target);
  if (!elf) return undefined;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  const dev = await startDevice('cortex-m4', elf);
  t.teardown(() => dev.stop());
  const line = await Line.open(dev.path);
  t.teardown(() => line.close());
  return new Frames(line);
}

/** The firmware tests' seeded generator: a 32-bit LCG giving uniform values in [-1, 1). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}

/** An f32 tensor of `shape` filled from `rnd`, times `scale`. */
export function randomTensor(rnd: () => number): (name: string, shape: number[], scale?: number) => StoredTensor {
  return (name, shape, scale = 0.5) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = rnd() * scale;
    return { name, dtype: 'f32', shape, data };
  };
}
