// One engine, one batch size, in a process of its own: `factorlite bench` spawns this file once
// per measurement so that the peak RSS it reports belongs to that engine alone.
//
//   node [--import tsx] bench/lib/runner.ts '<RunnerJob as JSON>'
//
// Prints exactly one JSON line (a RunnerResult) on stdout and exits 0, or prints a reason on
// stderr and exits 1. Nothing here imports the converter: the runtime path is what a user runs.

import { readFileSync } from 'node:fs';
import { importOptional } from '../../runtime/optionalPackage.js';

/** What the parent asks for. */
export interface RunnerJob {
  /** 'flm': our runtime on a .flm; 'ort': onnxruntime-node on an .onnx; 'baseline': load nothing. */
  engine: 'flm' | 'ort' | 'baseline';
  path?: string;
  /** Kernel backend names in preference order for 'flm' (default: the runtime's own order). */
  backends?: string[];
  /** Input shape with the batch dimension already set. */
  shape?: number[];
  warmup?: number;
  /** Keep warming up (after `warmup` calls) until this many ms have passed: lets a JIT settle. */
  warmupMs?: number;
  iters?: number;
  seed?: number;
  /** onnxruntime intra-op threads; 0 or absent: onnxruntime's default. */
  ortThreads?: number;
  /** Our runtime's threads cap ('flm'; the session option `threads`); absent: 1. */
  threads?: number;
  /** How many output values to send back, for the agreement check between engines. */
  sample?: number;
  /** Record RSS after each step ('flm'; bench/rssBreakdown.ts): result.steps and result.memory. */
  trace?: boolean;
  /** 'flm': import the runtime from this one-file bundle of runtime/index.ts instead of its modules (a diagnosis of bench/rssBreakdown.ts). */
  bundle?: string;
}

/** RSS after one step of a traced run, MB (10^6 bytes), from /proc/self/status. */
export interface RssStep {
  step: string;
  /** VmHWM: the peak so far. */
  hwmMB: number;
  /** VmRSS now, and its anonymous and file-backed parts (RssAnon, RssFile). */
  rssMB: number;
  anonMB: number;
  fileMB: number;
  /** The V8 heap now (process.memoryUsage().heapUsed / heapTotal) and memory outside it (external, e.g. wasm memory). */
  heapUsedMB: number;
  heapTotalMB: number;
  externalMB: number;
}

/** What a traced 'flm' session holds (bytes). */
export interface RunnerMemory {
  /** Stored tensors of the .flm (their bytes as read). */
  modelTensorBytes: number;
  /** The kernels' WebAssembly memory (0 for the reference kernels). */
  wasmMemoryBytes: number;
  /** Retained weight copies in that memory. */
  retainedBytes: number;
  /** The session's activation arenas. */
  arenaBytes: number;
  /** Worker threads of the session's kernels (0: one thread). */
  workers: number;
}

export interface RunnerResult {
  engine: RunnerJob['engine'];
  /** Kernel backend that ran ('flm'; 'wasm-simd, relaxed' for the relaxed-SIMD build), 'onnxruntime' ('ort'), or 'none'. */
  backend: string;
  batch: number;
  /** Importing the engine and starting its kernels (wasm compile; ORT's native library), ms. */
  startupMs: number;
  /** Reading the model file and creating the session, ms. */
  loadMs: number;
  /** Per call (one batch), ms, over `iters` timed calls after `warmup` untimed ones. */
  p50Ms: number;
  p95Ms: number;
  meanMs: number;
  minMs: number;
  /** Images per second over the timed calls. */
  throughput: number;
  iters: number;
  warmup: number;
  /** Peak RSS of this process at the end, MB (10^6 bytes): VmHWM on Linux, see peakRss(). */
  peakRssMB: number;
  rssSource: 'VmHWM' | 'maxRSS';
  /** process.resourceUsage().maxRSS, MB: inflated by the parent's RSS on Linux (kept for reference). */
  maxRssMB: number;
  /** First `sample` values of the output of the first timed input. */
  outputSample: number[];
  outputShape: number[];
  /** With job.trace: RSS after each step. */
  steps?: RssStep[];
  memory?: RunnerMemory;
}

/** RSS now and its peak (Linux; undefined elsewhere). */
export function rssStep(step: string): RssStep | undefined {
  let status: string;
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
  const kB = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)\\s*kB`, 'm').exec(status)?.[1] ?? NaN) * 1024 / 1e6;
  const m = process.memoryUsage();
  return {
    step, hwmMB: kB('VmHWM'), rssMB: kB('VmRSS'), anonMB: kB('RssAnon'), fileMB: kB('RssFile'),
    heapUsedMB: m.heapUsed / 1e6, heapTotalMB: m.heapTotal / 1e6, externalMB: m.external / 1e6,
  };
}

/** Deterministic inputs in [-1, 1): the same seed gives the same numbers in every engine. */
export function seededInput(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** The q-quantile (0..1) of sorted values, by linear interpolation. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * Peak resident memory of this process, MB (10^6 bytes). On Linux, VmHWM from /proc/self/status:
 * process.resourceUsage().maxRSS (getrusage ru_maxrss) survives fork + exec, so in a child it is at
 * least the parent's RSS at spawn time, which would credit every engine with the parent's memory.
 * VmHWM belongs to the address space made by exec. Elsewhere, maxRSS is all there is.
 */
export function peakRss(): { peakRssMB: number; rssSource: 'VmHWM' | 'maxRSS'; maxRssMB: number } {
  const maxRssMB = (process.resourceUsage().maxRSS * 1024) / 1e6;
  try {
    const m = /^VmHWM:\s+(\d+)\s*kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return { peakRssMB: (Number(m[1]) * 1024) / 1e6, rssSource: 'VmHWM', maxRssMB };
  } catch {
    /* not Linux */
  }
  return { peakRssMB: maxRssMB, rssSource: 'maxRSS', maxRssMB };
}

/** Warm-up calls: at least `warmup`, and more until `warmupMs` have passed (at most 1e6 calls). */
async function warmUp(call: () => unknown, warmup: number, warmupMs: number): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  while (n < warmup || (performance.now() - t0 < warmupMs && n < 1e6)) {
    await call();
    n++;
  }
  return n;
}

async function timeCalls(call: () => unknown, warmup: number, iters: number, warmupMs = 0): Promise<number[]> {
  await warmUp(call, warmup, warmupMs);
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await call();
    times.push(performance.now() - t0);
  }
  return times;
}

/** As timeCalls for a synchronous call (no await between calls); `warm` runs between warm-up and timing. */
function timeSync(call: () => void, warmup: number, iters: number, warmupMs = 0, warm?: () => void): number[] {
  const t0 = performance.now();
  for (let n = 0; n < warmup || (performance.now() - t0 < warmupMs && n < 1e6); n++) call();
  warm?.();
  const times = new Array<number>(iters);
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    call();
    times[i] = performance.now() - t0;
  }
  return times;
}

function summarise(job: RunnerJob, backend: string, startupMs: number, loadMs: number, times: number[], out: { data: ArrayLike<number>; shape: readonly number[] }): RunnerResult {
  const batch = job.shape?.[0] ?? 0;
  const sorted = [...times].sort((a, b) => a - b);
  const total = times.reduce((s, t) => s + t, 0);
  const sample: number[] = [];
  for (let i = 0; i < Math.min(job.sample ?? 16, out.data.length); i++) sample.push(Number(out.data[i]));
  return {
    engine: job.engine, backend, batch, startupMs, loadMs,
    p50Ms: quantile(sorted, 0.5), p95Ms: quantile(sorted, 0.95), meanMs: total / times.length, minMs: sorted[0] ?? NaN,
    throughput: total > 0 ? (batch * times.length * 1000) / total : 0,
    iters: times.length, warmup: job.warmup ?? 0,
    ...peakRss(),
    outputSample: sample, outputShape: [...out.shape],
  };
}

async function runFlm(job: RunnerJob): Promise<RunnerResult> {
  const steps: RssStep[] = [];
  const mark = (step: string) => {
    if (!job.trace) return;
    const s = rssStep(step);
    if (s) steps.push(s);
  };
  mark('start');
  const t0 = performance.now();
  const { selectBackend, readFlmFile, Session } = job.bundle
    ? (await import((await import('node:url')).pathToFileURL(job.bundle).href)) as typeof import('../../runtime/index.js')
    : { ...(await import('../../runtime/kernels/backend.js')), ...(await import('../../runtime/format/reader.js')), ...(await import('../../runtime/session.js')) };
  mark('imports');
  const { backend } = await selectBackend(job.backends);
  mark('kernels');
  const t1 = performance.now();
  const model = await readFlmFile(job.path!);
  mark('read');
  const session = Session.create(model, { backend, ...(job.threads ? { threads: job.threads } : {}) });
  const t2 = performance.now();
  mark('session');
  const shape = job.shape!;
  const x = { data: seededInput(shape.reduce((a, b) => a * b, 1), job.seed ?? 0), shape: [...shape] };
  // runInto: outputs go to an array made once, so a timed call allocates nothing (the session's
  // arena holds every activation; see runtime/session.ts).
  const outShape = session.outputShapesFor([shape])[0]!;
  const out = new Float32Array(outShape.reduce((a, b) => a * b, 1));
  const inputs = [x];
  const outputs = [out];
  session.runInto(inputs, outputs);
  const first = { data: out.slice(), shape: outShape };
  mark('first run');
  const times = timeSync(() => session.runInto(inputs, outputs), job.warmup ?? 0, job.iters ?? 1, job.warmupMs ?? 0, () => mark('warm-up'));
  mark('timed');
  const threads = Math.max(1, ...(session.arenaInfo()[0]?.threads ?? [1]));
  const kernels = session.kernels.simd === 'relaxed' ? `${session.kernels.name}, relaxed` : session.kernels.name;
  const r = summarise(job, threads > 1 ? `${kernels}, ${session.threadCap} threads` : kernels, t1 - t0, t2 - t1, times, first);
  if (job.trace) {
    const held = session.kernels.held?.();
    let modelTensorBytes = 0;
    for (const t of model.tensors.values()) modelTensorBytes += t.data.byteLength;
    r.steps = steps;
    r.memory = {
      modelTensorBytes, wasmMemoryBytes: held?.memoryBytes ?? 0, retainedBytes: held?.retainedBytes ?? 0,
      arenaBytes: session.arenaInfo().reduce((s, a) => s + a.arenaBytes, 0), workers: session.kernels.threads?.workerThreadIds().length ?? 0,
    };
  }
  await session.close();
  return r;
}

async function runOrt(job: RunnerJob): Promise<RunnerResult> {
  const t0 = performance.now();
  const ort = await importOptional<typeof import('onnxruntime-node')>('onnxruntime-node', 'bench --vs (the ONNX peer)');
  const { readFile } = await import('node:fs/promises');
  const t1 = performance.now();
  const opts: Record<string, unknown> = { graphOptimizationLevel: 'all' };
  if (job.ortThreads) opts['intraOpNumThreads'] = job.ortThreads;
  const session = await ort.InferenceSession.create(await readFile(job.path!), opts);
  const t2 = performance.now();
  const shape = job.shape!;
  const input = new ort.Tensor('float32', seededInput(shape.reduce((a, b) => a * b, 1), job.seed ?? 0), shape);
  const feeds = { [session.inputNames[0]!]: input };
  const outName = session.outputNames[0]!;
  const first = (await session.run(feeds))[outName]!;
  const times = await timeCalls(() => session.run(feeds), job.warmup ?? 0, job.iters ?? 1, job.warmupMs ?? 0);
  const r = summarise(job, 'onnxruntime', t1 - t0, t2 - t1, times, { data: first.data as Float32Array, shape: first.dims });
  await session.release();
  return r;
}

export async function runJob(job: RunnerJob): Promise<RunnerResult> {
  if (job.engine === 'flm') return runFlm(job);
  if (job.engine === 'ort') return runOrt(job);
  return {
    engine: 'baseline', backend: 'none', batch: 0, startupMs: 0, loadMs: 0, p50Ms: 0, p95Ms: 0, meanMs: 0, minMs: 0,
    throughput: 0, iters: 0, warmup: 0, ...peakRss(), outputSample: [], outputShape: [],
  };
}

// Run as a script (not when imported for its helpers).
const self = import.meta.url;
const invoked = process.argv[1] ? (await import('node:url')).pathToFileURL(process.argv[1]).href : '';
if (invoked === self) {
  try {
    const job = JSON.parse(process.argv[2] ?? '') as RunnerJob;
    const result = await runJob(job);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (e) {
    process.stderr.write(`${(e instanceof Error ? e.message : String(e)).split('\n')[0]}\n`);
    process.exitCode = 1;
  }
}
