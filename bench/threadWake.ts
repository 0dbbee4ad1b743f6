// What one threaded dispatch costs (runtime/kernels/threads.ts): a GEMM too small to matter
// (8×16×4), split over 2 threads (minMacsPerThread 0), against the same call on one thread, after
// a gap of busy main-thread work of 0 to 2000 µs since the previous call (the time between two
// split layers of a model). The difference is the wake-up and the wait for the worker: what a
// split has to win back (runtime/cost/threads.ts).
//
//   node --import tsx bench/threadWake.ts [--calls 400] [--json]
//
// Cap 1 and cap 2 calls alternate, so both see the same load; the figure per gap is the median
// of the differences. Prints a table (or JSON with --json); writes bench/results/threadWake.{json,md}.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { wasmBackendSync } from '../runtime/kernels/backend.js';
import { numberArg } from './lib/args.js';

const CALLS = numberArg('calls', '400');
const JSON_OUT = process.argv.includes('--json');
const GAPS_US = [0, 10, 50, 200, 1000, 2000];
const RESULTS = join(dirname(dirname(fileURLToPath(import.meta.url))), 'bench', 'results');

const b = wasmBackendSync({ threads: 2, minMacsPerThread: 0, simd: 'simd128' });
const th = b.threads!;
const M = 8, N = 16, K = 4;
const a = new Float32Array(M * K).fill(0.5), w = new Float32Array(N * K).fill(0.25), out = new Float32Array(M * N);
const spin = (us: number): void => {
  const end = performance.now() + us / 1000;
  while (performance.now() < end);
};
const call = (cap: number): number => {
  th.setThreadCap(cap);
  const t0 = performance.now();
  b.gemmNT(a, w, M, N, K, undefined, out);
  return (performance.now() - t0) * 1000;
};
const median = (v: number[]): number => [...v].sort((x, y) => x - y)[v.length >> 1]!;
const loadStart = loadavg();
const rows: Array<{ gapUs: number; oneThreadUs: number; twoThreadsUs: number; dispatchUs: number; p90DispatchUs: number }> = [];
for (let i = 0; i < 50; i++) call(i & 1 ? 2 : 1);
for (const gap of GAPS_US) {
  const one: number[] = [], two: number[] = [], diff: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    spin(gap);
    const u = call(1);
    spin(gap);
    const v = call(2);
    one.push(u); two.push(v); diff.push(v - u);
    process.stderr.write(i % 100 === 99 ? `threadWake: gap ${gap} µs, ${i + 1}/${CALLS}\n` : '');
  }
  diff.sort((x, y) => x - y);
  rows.push({ gapUs: gap, oneThreadUs: median(one), twoThreadsUs: median(two), dispatchUs: median(diff), p90DispatchUs: diff[Math.floor(diff.length * 0.9)]! });
}
await th.close();
const load = { start: loadStart, end: loadavg() };
const fmt = (v: number) => v.toFixed(1);
const md = [
  `Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, ${CALLS} calls per gap and thread count, alternating; load average at the start ${load.start.map(fmt).join(' ')}, at the end ${load.end.map(fmt).join(' ')}. Made by \`node --import tsx bench/threadWake.ts --calls ${CALLS}\`.`,
  '',
  '| gap before the call µs | 1 thread µs | 2 threads µs | added by the dispatch µs (median) | (90th percentile) |',
  '|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.gapUs} | ${fmt(r.oneThreadUs)} | ${fmt(r.twoThreadsUs)} | ${fmt(r.dispatchUs)} | ${fmt(r.p90DispatchUs)} |`),
].join('\n');
mkdirSync(RESULTS, { recursive: true });
writeFileSync(join(RESULTS, 'threadWake.json'), `${JSON.stringify({ calls: CALLS, load, rows }, null, 1)}\n`);
writeFileSync(join(RESULTS, 'threadWake.md'), `${md}\n`);
process.stdout.write(JSON_OUT ? `${JSON.stringify({ calls: CALLS, load, rows })}\n` : `${md}\n`);
