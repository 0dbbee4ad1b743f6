// The `bench` measurement as a library (the CLI's `factorlite bench` and bench/runtime.ts call it):
// latency (p50/p95 per call), throughput, load time and peak RSS of our runtime on a .flm (fastest
// kernel backend, and the reference backend), onnxruntime-node on the dense original (--vs), and
// onnxruntime-node on the .flm exported to ONNX (the same factorised graph).
//
// Every (engine, batch) runs in a child process of its own (bench/lib/runner.ts), one after
// another, never side by side, so that each peak RSS belongs to one engine. An empty child run
// the same way gives the baseline RSS of Node itself. Peak RSS is VmHWM on Linux, not getrusage's
// maxRSS, which a child inherits from this (parent) process across fork + exec.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import { CliError } from '../../cli/errors.js';
import { isFlm, readModelBytes } from '../../cli/modelFile.js';
import { log, progress } from '../../cli/progress.js';
import { exportOnnx } from '../../converter/export/index.js';
import { readFlm } from '../../runtime/format/reader.js';
import type { RunnerJob, RunnerResult } from './runner.js';

export type EngineId = 'ours' | 'ours-threads' | 'ours-relaxed' | 'ours-relaxed-threads' | 'ours-reference' | 'ort-dense' | 'ort-dense-1t' | 'ort-factorised';

/** Node 20 has WebAssembly relaxed SIMD behind this V8 flag (Node 22 and later by default). */
export const RELAXED_SIMD_FLAG = '--experimental-wasm-relaxed-simd';

export interface EngineReport {
  id: EngineId;
  label: string;
  /** Kernel backend ('wasm-simd', 'reference') or 'onnxruntime'. */
  backend: string | null;
  model: string;
  /** One entry per batch size, in the order of `batches`. */
  results: RunnerResult[];
  /** Set when the engine could not run; results is then empty. */
  error?: string;
}

export interface Ratio {
  value: number | null;
  target: number;
  met: boolean | null;
}

export interface BatchRatios {
  batch: number;
  /** ours p50 / ORT dense p50; target <= 0.5. */
  latencyVsDense: Ratio;
  /** ours p50 / ORT factorised p50; target <= 1.5. */
  latencyVsFactorised: Ratio;
  /** ours with relaxed SIMD p50 / ORT dense p50; null when not run. */
  latencyRelaxedVsDense?: number | null;
  /** ours with relaxed SIMD p50 / ORT factorised p50; null when not run. */
  latencyRelaxedVsFactorised?: number | null;
  /** ours p50 / ORT dense p50 with one intra-op thread (our runtime runs on one); null when not run. */
  latencyVsDenseOneThread?: number | null;
  /** ours with `threads` p50 / ORT dense p50 (its default threads); present when that engine ran. */
  latencyThreadsVsDense?: number | null;
  /** ours with relaxed SIMD and `threads` p50 / ORT dense p50; present when relaxedSimd and threads > 1. */
  latencyRelaxedThreadsVsDense?: number | null;
  /** ours peak RSS / ORT dense peak RSS (context: both include Node's own baseline). */
  rssVsDense: number | null;
  /** ours peak RSS / ORT factorised peak RSS (context). */
  rssVsFactorised: number | null;
  /**
   * (ours - baseline) / (ORT dense - baseline): the engines' own memory, Node's share removed;
   * target <= 0.5 (issue 14: peak RSS above Node's own baseline stays <= 0.5x ORT's).
   */
  rssAboveBaselineVsDense: Ratio;
  /** The same for our runtime with `threads` (context; present when that engine ran). */
  rssAboveBaselineThreadsVsDense?: number | null;
  /** Largest |ours - engine| over the sampled outputs of the first input, per engine. */
  maxAbsDiff: Partial<Record<EngineId, number>>;
}

export interface BenchReport {
  model: string;
  vs: string | null;
  exportedOnnxBytes: number | null;
  batches: number[];
  warmup: number;
  /** Minimum warm-up time per engine and batch, ms (after `warmup` calls). */
  warmupMs: number;
  iters: number;
  seed: number;
  ortThreads: number | null;
  inputShape: number[];
  machine: { cpu: string; cores: number; node: string; platform: string };
  date: string;
  /** Peak RSS of an empty child process started the same way as the engines, MB. */
  baselineRssMB: number;
  /** How the children ran: "tsx" (sources through the tsx loader) or "js" (compiled, plain Node). */
  runner: 'tsx' | 'js';
  /** How peak RSS was read in the children: VmHWM (Linux) or getrusage maxRSS (see bench/lib/runner.ts). */
  rssSource: string;
  engines: EngineReport[];
  ratios: BatchRatios[];
  targets: { latencyVsDense: number; latencyVsFactorised: number; rssAboveBaseline: number };
}

/** Issue 14's targets: latency against ORT, and peak RSS above Node's own baseline against ORT's. */
export const TARGETS = { latencyVsDense: 0.5, latencyVsFactorised: 1.5, rssAboveBaseline: 0.5 } as const;



/**
 * The runner next to this file: .ts under tsx (sources), .js in dist/; or `compiled`, a
 * bench/lib/runner.js built by tsc, run by plain Node without the tsx loader (less memory at start).
 */
function runnerCommand(compiled?: string, nodeFlags: readonly string[] = []): { exec: string; args: string[] } {
  if (compiled) return { exec: process.execPath, args: [...nodeFlags, resolve(compiled)] };
  const here = fileURLToPath(import.meta.url);
  const ts = here.endsWith('.ts');
  const runner = resolve(here, '..', ts ? 'runner.ts' : 'runner.js');
  if (!ts) return { exec: process.execPath, args: [...nodeFlags, runner] };
  // An absolute loader URL, so the child starts from any working directory.
  let loader = 'tsx';
  try {
    loader = import.meta.resolve('tsx');
  } catch {
    /* fall back to the bare name */
  }
  return { exec: process.execPath, args: [...nodeFlags, '--import', loader, runner] };
}

export class RunnerFailed extends Error {}

/** Spawns one runner and returns its one JSON line. */
export function runInChild(job: RunnerJob, timeoutMs = 600_000, compiledRunner?: string, nodeFlags: readonly string[] = []): Promise<RunnerResult> {
  const { exec, args } = runnerCommand(compiledRunner, nodeFlags);
  return new Promise((resolveP, reject) => {
    const child = spawn(exec, [...args, JSON.stringify(job)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FACTORLITE_DEBUG: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(new RunnerFailed(`cannot start ${exec}: ${e.message}`)); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const lines = stdout.split('\n').filter((l) => l.trim().length > 0);
      if (code === 0 && lines.length >= 1) {
        try {
          resolveP(JSON.parse(lines[lines.length - 1]!) as RunnerResult);
          return;
        } catch {
          /* reported below */
        }
      }
      const why = stderr.trim().split('\n').filter(Boolean).at(-1) ?? (signal ? `killed by ${signal}` : `exit ${code}`);
      reject(new RunnerFailed(why));
    });
  });
}

export interface BenchOptions {
  model: string;
  vs?: string;
  batches: number[];
  warmup: number;
  /** Keep warming up each engine until this many ms have passed (default 0). */
  warmupMs?: number;
  iters: number;
  seed: number;
  ortThreads?: number;
  /** Progress lines on stderr (default true). */
  progress?: boolean;
  /** Where the exported ONNX goes; a temp folder (removed afterwards) when absent. */
  exportPath?: string;
  /** A compiled bench/lib/runner.js to run every child with plain Node (default: the sources under tsx). */
  runner?: string;
  /** Also run our runtime on the reference kernels (default true; slow on large convolutional models). */
  referenceKernels?: boolean;
  /** Also run ORT on the dense original with one intra-op thread (default false). */
  ortOneThread?: boolean;
  /** Above 1: also run our runtime with this threads cap (engine 'ours-threads'; 'ours' stays on oursThreads). */
  threads?: number;
  /** The threads cap of engine 'ours' (default 1; `factorlite bench --threads`). */
  oursThreads?: number;
  /**
   * Also run our runtime in a Node started with RELAXED_SIMD_FLAG, where the wasm backend loads
   * its relaxed-SIMD build (default false; Node 22+ loads it in the plain `ours` run already).
   */
  relaxedSimd?: boolean;
}

/** --vs must be an ONNX model with a graph: checked here so that a bad file fails before any run. */
function checkOnnx(path: string): void {
  const bytes = readModelBytes(path);
  if (isFlm(bytes)) throw new CliError('BAD_ARGUMENT', `--vs ${path} is a .flm file; --vs takes the dense original as ONNX`);
  let nodes = 0;
  let inputs = 0;
  try {
    const g = onnxProto.onnx.ModelProto.decode(bytes).graph;
    nodes = g?.node?.length ?? 0;
    inputs = g?.input?.length ?? 0;
  } catch (e) {
    throw new CliError('NOT_A_MODEL', `--vs ${path} is not an ONNX model (${(e as Error).message.split('\n')[0]})`, { cause: e });
  }
  if (nodes === 0 || inputs === 0) throw new CliError('NOT_A_MODEL', `--vs ${path} is not an ONNX model (no graph nodes or inputs)`);
}

const ratio = (a: number | undefined, b: number | undefined, target: number): Ratio => {
  if (a === undefined || b === undefined || !(b > 0)) return { value: null, target, met: null };
  const value = a / b;
  return { value, target, met: value <= target };
};

/**
 * The RSS fields of a batch's ratios from the engines' peaks and the empty child's (bench/runtime.ts
 * --render recomputes them from a stored run with this too). `threads`: include the threaded engine's.
 */
export function rssRatios(engines: readonly EngineReport[], baselineRssMB: number, batch: number, threads: boolean):
  Pick<BatchRatios, 'rssVsDense' | 'rssVsFactorised' | 'rssAboveBaselineVsDense' | 'rssAboveBaselineThreadsVsDense'> {
  const at = (id: EngineId) => engines.find((e) => e.id === id)?.results.find((r) => r.batch === batch);
  const ours = at('ours');
  const dense = at('ort-dense');
  const fact = at('ort-factorised');
  const above = (r: RunnerResult | undefined) => (r && dense ? r.peakRssMB - baselineRssMB : undefined);
  return {
    rssVsDense: ours && dense ? ours.peakRssMB / dense.peakRssMB : null,
    rssVsFactorised: ours && fact ? ours.peakRssMB / fact.peakRssMB : null,
    rssAboveBaselineVsDense: ratio(above(ours), above(dense), TARGETS.rssAboveBaseline),
    ...(threads ? { rssAboveBaselineThreadsVsDense: ratio(above(at('ours-threads')), above(dense), TARGETS.rssAboveBaseline).value } : {}),
  };
}

/** Runs every engine at every batch size, one process after another. Throws CliError on bad input. */
export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const bytes = readModelBytes(o.model);
  if (!isFlm(bytes)) throw new CliError('NOT_A_MODEL', `${o.model} is not a .flm file (bench measures a .flm; convert an ONNX model first)`);
  if (o.vs !== undefined) checkOnnx(o.vs);
  const model = readFlm(bytes);
  if (model.graph.inputs.length !== 1 || model.graph.outputs.length !== 1) {
    throw new CliError('BAD_INPUT', `${o.model}: bench needs a model with one input and one output (it has ${model.graph.inputs.length} and ${model.graph.outputs.length})`);
  }
  const inShape = model.graph.inputs[0]!.shape;
  if (inShape.length === 0 || inShape.slice(1).some((d) => d < 1)) {
    throw new CliError('BAD_INPUT', `${o.model}: input shape [${inShape}] has a free dimension other than the batch`);
  }
  const shapeFor = (batch: number) => [batch, ...inShape.slice(1)];

  // The factorised graph as ONNX, for onnxruntime.
  let tmp: string | undefined;
  let exportedPath: string | undefined;
  let exportError: string | undefined;
  let exportedOnnxBytes: number | null = null;
  try {
    const onnxBytes = exportOnnx(model);
    exportedOnnxBytes = onnxBytes.length;
    if (o.exportPath) exportedPath = o.exportPath;
    else {
      tmp = mkdtempSync(join(tmpdir(), 'factorlite-bench-'));
      exportedPath = join(tmp, `${basename(o.model).replace(/\.flm$/, '')}.factorised.onnx`);
    }
    writeFileSync(exportedPath, onnxBytes);
  } catch (e) {
    exportError = `export to ONNX failed: ${(e as Error).message.split('\n')[0]}`;
  }

  const common = { warmup: o.warmup, warmupMs: o.warmupMs ?? 0, iters: o.iters, seed: o.seed, sample: 16 };
  const plans: Array<{ id: EngineId; label: string; path: string; job: Omit<RunnerJob, 'shape'>; error?: string; nodeFlags?: string[] }> = [
    { id: 'ours', label: `factorlite (fastest kernels)${(o.oursThreads ?? 1) > 1 ? `, up to ${o.oursThreads} threads` : ''}`, path: o.model, job: { engine: 'flm', path: o.model, ...common, ...((o.oursThreads ?? 1) > 1 ? { threads: o.oursThreads! } : {}) } },
  ];
  if ((o.threads ?? 1) > 1) {
    plans.push({ id: 'ours-threads', label: `factorlite (fastest kernels), up to ${o.threads} threads`, path: o.model, job: { engine: 'flm', path: o.model, threads: o.threads!, ...common } });
  }
  if (o.relaxedSimd) {
    plans.push({ id: 'ours-relaxed', label: 'factorlite (relaxed SIMD)', path: o.model, job: { engine: 'flm', path: o.model, ...common }, nodeFlags: [RELAXED_SIMD_FLAG] });
    if ((o.threads ?? 1) > 1) {
      plans.push({ id: 'ours-relaxed-threads', label: `factorlite (relaxed SIMD), up to ${o.threads} threads`, path: o.model, job: { engine: 'flm', path: o.model, threads: o.threads!, ...common }, nodeFlags: [RELAXED_SIMD_FLAG] });
    }
  }
  if (o.referenceKernels ?? true) {
    plans.push({ id: 'ours-reference', label: 'factorlite (reference kernels)', path: o.model, job: { engine: 'flm', path: o.model, backends: ['reference'], ...common } });
  }
  const ortJob = (path: string) => ({ engine: 'ort' as const, path, ...common, ...(o.ortThreads ? { ortThreads: o.ortThreads } : {}) });
  if (o.vs !== undefined) plans.push({ id: 'ort-dense', label: 'onnxruntime, dense original', path: o.vs, job: ortJob(o.vs) });
  if (o.vs !== undefined && o.ortOneThread) {
    plans.push({ id: 'ort-dense-1t', label: 'onnxruntime, dense original, 1 thread', path: o.vs, job: { ...ortJob(o.vs), ortThreads: 1 } });
  }
  plans.push({
    id: 'ort-factorised', label: 'onnxruntime, exported factorised', path: exportedPath ?? '(export failed)',
    job: ortJob(exportedPath ?? ''), ...(exportError ? { error: exportError } : {}),
  });

  const show = o.progress ?? true;
  const total = 1 + plans.length * o.batches.length;
  const bar = progress('bench', total, show);
  let done = 0;
  const engines: EngineReport[] = [];
  let baselineRssMB = NaN;
  let rssSource = 'unknown';
  try {
    bar.update(done, 'baseline');
    const base = await runInChild({ engine: 'baseline' }, undefined, o.runner);
    baselineRssMB = base.peakRssMB;
    rssSource = base.rssSource;
    bar.update(++done, 'baseline');
    for (const p of plans) {
      const rep: EngineReport = { id: p.id, label: p.label, backend: null, model: p.path, results: [] };
      engines.push(rep);
      if (p.error) {
        rep.error = p.error;
        done += o.batches.length;
        continue;
      }
      for (const batch of o.batches) {
        bar.update(done, `${p.id} batch ${batch}`);
        try {
          const r = await runInChild({ ...p.job, shape: shapeFor(batch) }, undefined, o.runner, p.nodeFlags);
          rep.backend = r.backend;
          rep.results.push(r);
        } catch (e) {
          const why = (e as Error).message;
          // Without our runtime or the dense reference the comparison means nothing: one-line error.
          if (p.id === 'ours') throw new CliError('BAD_INPUT', `${o.model}: the factorlite runtime failed at batch ${batch}: ${why}`, { cause: e });
          if (p.id === 'ort-dense') throw new CliError('BAD_INPUT', `--vs ${p.path}: onnxruntime failed at batch ${batch}: ${why}`, { cause: e });
          rep.error = `batch ${batch}: ${why}`;
          done += o.batches.length - rep.results.length;
          rep.results = [];
          break;
        }
        bar.update(++done, `${p.id} batch ${batch}`);
      }
      if (rep.error && show) log(`bench: ${rep.error}`);
    }
  } finally {
    bar.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }

  const at = (id: EngineId, batch: number) => engines.find((e) => e.id === id)?.results.find((r) => r.batch === batch);
  const ratios: BatchRatios[] = o.batches.map((batch) => {
    const ours = at('ours', batch);
    const dense = at('ort-dense', batch);
    const fact = at('ort-factorised', batch);
    const one = at('ort-dense-1t', batch);
    const threaded = at('ours-threads', batch);
    const relaxed = at('ours-relaxed', batch);
    const relaxedThreads = at('ours-relaxed-threads', batch);
    const maxAbsDiff: Partial<Record<EngineId, number>> = {};
    if (ours) {
      for (const e of engines) {
        const r = e.results.find((x) => x.batch === batch);
        if (e.id === 'ours' || !r) continue;
        const n = Math.min(r.outputSample.length, ours.outputSample.length);
        let m = 0;
        for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(r.outputSample[i]! - ours.outputSample[i]!));
        maxAbsDiff[e.id] = m;
      }
    }
    return {
      batch,
      latencyVsDense: ratio(ours?.p50Ms, dense?.p50Ms, TARGETS.latencyVsDense),
      latencyVsFactorised: ratio(ours?.p50Ms, fact?.p50Ms, TARGETS.latencyVsFactorised),
      ...(o.ortOneThread ? { latencyVsDenseOneThread: ours && one ? ours.p50Ms / one.p50Ms : null } : {}),
      ...((o.threads ?? 1) > 1 ? { latencyThreadsVsDense: threaded && dense ? threaded.p50Ms / dense.p50Ms : null } : {}),
      ...(o.relaxedSimd ? {
        latencyRelaxedVsDense: relaxed && dense ? relaxed.p50Ms / dense.p50Ms : null,
        latencyRelaxedVsFactorised: relaxed && fact ? relaxed.p50Ms / fact.p50Ms : null,
        ...((o.threads ?? 1) > 1 ? { latencyRelaxedThreadsVsDense: relaxedThreads && dense ? relaxedThreads.p50Ms / dense.p50Ms : null } : {}),
      } : {}),
      ...rssRatios(engines, baselineRssMB, batch, (o.threads ?? 1) > 1),
      maxAbsDiff,
    };
  });

  const cpu = cpus();
  return {
    model: o.model, vs: o.vs ?? null, exportedOnnxBytes,
    batches: o.batches, warmup: o.warmup, warmupMs: o.warmupMs ?? 0, iters: o.iters, seed: o.seed, ortThreads: o.ortThreads ?? null,
    inputShape: [...inShape],
    machine: { cpu: cpu[0]?.model.trim() ?? 'unknown', cores: cpu.length, node: process.version, platform: `${process.platform}-${process.arch}` },
    date: new Date().toISOString(),
    baselineRssMB, runner: o.runner || !fileURLToPath(import.meta.url).endsWith('.ts') ? 'js' : 'tsx', rssSource, engines, ratios, targets: { ...TARGETS },
  };
}
