// `factorlite bench m.flm [--vs dense.onnx] [--batch 1,32] [--warmup N] [--iters N] [--json]`:
// latency (p50/p95 per call), throughput, load time and peak RSS of our runtime on the .flm
// (fastest kernel backend, and the reference backend), onnxruntime-node on the dense original
// (--vs), and onnxruntime-node on the .flm exported to ONNX (the same factorised graph).
//
// The measurement is bench/lib/runBench.ts (each engine and batch in a child process of its own);
// this file parses the flags and prints the report. Progress: stderr.
import { runBench, type BenchReport, type Ratio } from '../../bench/lib/runBench.js';
import { CliError } from '../errors.js';
import { table } from '../table.js';
import { integerFlag, threadsFlag } from '../flags.js';

export interface BenchArgs {
  vs?: string;
  batch?: string;
  warmup?: string | number;
  warmupMs?: string | number;
  iters?: string | number;
  seed?: string | number;
  ortThreads?: string | number;
  threads?: string | number;
  json?: boolean;
}

export {
  RunnerFailed, runBench, runInChild, TARGETS, type BatchRatios, type BenchOptions, type BenchReport, type EngineId, type EngineReport, type Ratio,
} from '../../bench/lib/runBench.js';

export function parseBatches(v: string | undefined): number[] {
  if (v === undefined) return [1, 32];
  const parts = v.split(',').map((s) => s.trim());
  const out: number[] = [];
  for (const p of parts) {
    const n = Number(p);
    if (p === '' || !Number.isInteger(n) || n < 1 || n > 65536) {
      throw new CliError('BAD_ARGUMENT', `--batch ${v}: expected comma-separated integers from 1 to 65536, e.g. 1,32`);
    }
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

const f = (v: number, digits = 3): string => (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(digits));

/** "0.31 (met)" or "0.80 (missed by 1.6x)" or "-" when one side is missing. */
export function ratioText(r: Ratio): string {
  if (r.value === null) return '-';
  return `${r.value.toFixed(2)} (${r.met ? 'met' : `missed by ${(r.value / r.target).toFixed(1)}x`})`;
}

/** The plain-text report for people. */
export function formatReport(rep: BenchReport): string {
  const rows: Array<Array<string | number>> = [];
  const failed = rep.engines.some((e) => e.error);
  for (const e of rep.engines) {
    if (e.error) {
      rows.push([e.id, e.backend ?? '-', '-', '-', '-', '-', '-', '-', `error: ${e.error}`]);
      continue;
    }
    for (const r of e.results) {
      rows.push([e.id, r.backend, r.batch, f(r.p50Ms), f(r.p95Ms), f(r.throughput), f(r.loadMs), r.peakRssMB.toFixed(1), ...(failed ? [''] : [])]);
    }
  }
  const lines = [
    `${rep.model}${rep.vs ? ` vs ${rep.vs}` : ''}: input [N,${rep.inputShape.slice(1).join(',')}], ${rep.warmup} warm-up calls${rep.warmupMs ? ` (and at least ${rep.warmupMs} ms)` : ''} + ${rep.iters} timed calls per batch, `
      + `${rep.machine.cpu} (${rep.machine.cores} cores), Node ${rep.machine.node}`,
    '',
    table(['engine', 'backend', 'batch', 'p50 ms', 'p95 ms', 'images/s', 'load ms', 'peak RSS MB', ...(failed ? ['note'] : [])], rows),
    '',
    `baseline: an empty Node process started the same way peaks at ${rep.baselineRssMB.toFixed(1)} MB RSS (${rep.rssSource})`,
    '',
    table(
      ['batch', `latency ours/ORT dense (<= ${rep.targets.latencyVsDense})`, `latency ours/ORT factorised (<= ${rep.targets.latencyVsFactorised})`,
        'RSS ours/ORT dense', `RSS above baseline ours/ORT dense (<= ${rep.targets.rssAboveBaseline})`],
      rep.ratios.map((r) => [r.batch, ratioText(r.latencyVsDense), ratioText(r.latencyVsFactorised),
        r.rssVsDense === null ? '-' : r.rssVsDense.toFixed(2), ratioText(r.rssAboveBaselineVsDense)]),
    ),
  ];
  return `${lines.join('\n')}\n`;
}

export async function benchCommand(path: string, a: BenchArgs): Promise<void> {
  const batches = parseBatches(a.batch);
  const warmup = integerFlag('--warmup', a.warmup, 0) ?? 10;
  const warmupMs = integerFlag('--warmup-ms', a.warmupMs, 0) ?? 0;
  const iters = integerFlag('--iters', a.iters) ?? 100;
  const seed = integerFlag('--seed', a.seed, 0) ?? 1;
  const ortThreads = integerFlag('--ort-threads', a.ortThreads, 0) ?? 0;
  const oursThreads = threadsFlag(a.threads);
  const rep = await runBench({ model: path, ...(a.vs !== undefined ? { vs: a.vs } : {}), batches, warmup, warmupMs, iters, seed, ...(ortThreads ? { ortThreads } : {}), oursThreads });
  if (a.json) {
    process.stdout.write(`${JSON.stringify(rep)}\n`);
    return;
  }
  process.stdout.write(formatReport(rep));
}
