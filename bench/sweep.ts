// Sweep throughput (issue 15): the LeNet-5 fixture over methods x ratios x quantisations, no
// fine-tuning, three ways in one run:
//   pool-1   factorlite sweep --workers 1
//   pool-2   factorlite sweep --workers 2
//   queue-2  factorlite sweep --queue redis://… with two `factorlite worker` processes (BullMQ on a
//            redis-server this bench starts on loopback)
// Wall time pool-1 / pool-2 is the speed-up of two workers; (queue-2 - pool-2) / points is the
// queue's overhead per job against the in-process pool. All three must give the same results.
//
// The machine these runs share may be busy, so wall time alone measures the CPU share a run got.
// Each run also records CPU time: per point (process.cpuUsage in the pool process, in the row's
// timing) and for the whole process tree (this process's reaped children, /proc/self/stat
// cutime + cstime: sweep, pool processes, workers, redis-server). CPU time of the points over wall
// time is how many cores a run kept busy (ideal: 1 for one worker, 2 for two); tree CPU minus
// point CPU, per point, is the engine's CPU overhead per job.
//
//   node --import tsx bench/sweep.ts [--model lenet5_fashion.onnx|PATH] [--data fashion-mnist] [--methods svd,tucker,cp,tt,tr]
//        [--ratios 4,8,16,32] [--quant f32,int8] [--limit 1000] [--no-readme]
//
// Writes bench/results/sweep.json, sweep.md, sweep-report.html and the README section
// <!-- bench:sweep:start --> ... <!-- bench:sweep:end -->.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeBenchResults } from './readme.js';
import { FIXTURES } from './lib/fixtures.js';
import { arg } from './lib/args.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const RESULTS = join(ROOT, 'bench', 'results');
const CLI = join(ROOT, 'bin', 'factorlite.js');

const MODEL_ARG = arg('model', 'lenet5_fashion.onnx');
const MODEL = existsSync(MODEL_ARG) ? resolve(MODEL_ARG) : resolve(FIXTURES, MODEL_ARG);
const GRID = ['--methods', arg('methods', 'svd,tucker,cp,tt,tr'), '--ratios', arg('ratios', '4,8,16,32'), '--quant', arg('quant', 'f32,int8'),
  '--data', arg('data', 'fashion-mnist'), '--limit', arg('limit', '1000'), '--bench-iters', '50'];
const README = process.argv.includes('--no-readme') ? null : join(ROOT, 'README.md');

interface Proc { done: Promise<{ code: number | null; out: string; err: string }>; kill: (s?: NodeJS.Signals) => void; err: () => string }
function run(cmd: string, args: string[], echo = true): Proc {
  const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  c.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  c.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; if (echo) process.stderr.write(d); });
  return { done: new Promise((r) => c.on('close', (code) => r({ code, out, err }))), kill: (s = 'SIGTERM') => c.kill(s), err: () => err };
}

/** CPU seconds (user + system) of this process's children that have exited and been waited for. */
function childrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields after "(comm) ": state is field 3, cutime 16 and cstime 17 (in clock ticks, 100 a second on Linux).
  return (Number(f[16 - 3]) + Number(f[17 - 3])) / 100;
}

interface RunResult { seconds: number; treeCpuSeconds: number; pointCpuSeconds: number; json: any }

async function sweep(label: string, extra: string[]): Promise<Omit<RunResult, 'treeCpuSeconds'>> {
  const out = mkdtempSync(join(tmpdir(), `factorlite-bench-sweep-${label}-`));
  process.stderr.write(`\n== ${label}: ${out}\n`);
  const t0 = performance.now();
  const r = await run(process.execPath, [CLI, 'sweep', MODEL, ...GRID, '--out', out, ...extra, '--json']).done;
  const seconds = (performance.now() - t0) / 1000;
  if (r.code !== 0) throw new Error(`${label}: sweep exited ${r.code}`);
  const json = { ...JSON.parse(r.out), out };
  const pointCpuSeconds = (json.rows as any[]).reduce((s, row) => s + row.timing.cpuSeconds, 0);
  process.stderr.write(`== ${label}: ${seconds.toFixed(1)} s wall, ${pointCpuSeconds.toFixed(1)} s CPU in points\n`);
  return { seconds, pointCpuSeconds, json };
}

async function pooled(label: string, workers: number): Promise<RunResult> {
  const c0 = childrenCpuSeconds();
  const r = await sweep(label, ['--workers', String(workers)]);
  return { ...r, treeCpuSeconds: childrenCpuSeconds() - c0 };
}

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

const load0 = loadavg()[0]!;
const pool1 = await pooled('pool-1', 1);
const pool2 = await pooled('pool-2', 2);
const c0 = childrenCpuSeconds();
const port = await freePort();
const redisDir = mkdtempSync(join(tmpdir(), 'factorlite-bench-redis-'));
const redis = run('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', redisDir, '--save', '', '--appendonly', 'no'], false);
await new Promise((r) => setTimeout(r, 500));
const url = `redis://127.0.0.1:${port}`;
const workers = [run(process.execPath, [CLI, 'worker', '--queue', url], false), run(process.execPath, [CLI, 'worker', '--queue', url], false)];
for (const w of workers) while (!w.err().includes('waiting for points')) await new Promise((r) => setTimeout(r, 100));
let queue2: RunResult;
try {
  const r = await sweep('queue-2', ['--queue', url]);
  for (const w of workers) w.kill();
  await Promise.all(workers.map((w) => w.done));
  redis.kill();
  await redis.done;
  queue2 = { ...r, treeCpuSeconds: childrenCpuSeconds() - c0 };
} finally {
  for (const w of workers) w.kill();
  redis.kill();
}
const load1 = loadavg()[0]!;

const points = pool1.json.points as number;
const strip = (j: any) => new Map((j.rows as any[]).map((r) => [r.key, JSON.stringify(r.result)]));
const a = strip(pool1.json);
const same = [pool2.json, queue2.json].every((j) => { const b = strip(j); return b.size === a.size && [...a].every(([k, v]) => b.get(k) === v); });
const compute = (pool1.json.rows as any[]).reduce((s, r) => s + r.timing.convertSeconds + r.timing.finetuneSeconds + r.timing.evalSeconds, 0);
const report = run(process.execPath, [CLI, 'report', queue2.json.out, '-o', join(RESULTS, 'sweep-report.html')], false);
await report.done;

const summary = (r: RunResult) => ({
  wallSeconds: r.seconds, pointCpuSeconds: r.pointCpuSeconds, treeCpuSeconds: r.treeCpuSeconds,
  coresBusy: r.pointCpuSeconds / r.seconds, overheadCpuPerJobSeconds: (r.treeCpuSeconds - r.pointCpuSeconds) / points,
});
const runs = { pool1: summary(pool1), pool2: summary(pool2), queue2: summary(queue2) };
const result = {
  model: MODEL.split('/').at(-1), grid: GRID, points, cores: cpus().length, loadavg: { before: load0, after: load1 },
  runs,
  speedupTwoWorkers: pool1.seconds / pool2.seconds,
  // Load-independent view of the same: cores kept busy by the points with two workers against one.
  speedupCpuPerWall: runs.pool2.coresBusy / runs.pool1.coresBusy,
  queueOverheadPerJobSeconds: (queue2.seconds - pool2.seconds) / points,
  meanPointComputeSeconds: compute / points,
  meanPointCpuSeconds: pool1.pointCpuSeconds / points,
  sameResults: same,
  date: new Date().toISOString(),
};
const f = (x: number) => x.toFixed(1);
const row = (name: string, r: ReturnType<typeof summary>) =>
  `| ${name} | ${f(r.wallSeconds)} s | ${f(r.pointCpuSeconds)} s | ${r.coresBusy.toFixed(2)} | ${f(r.treeCpuSeconds)} s | ${r.overheadCpuPerJobSeconds.toFixed(2)} s |`;
const md = [
  `Sweep of ${result.model}: ${points} points (\`${GRID.join(' ')}\`), no fine-tuning; ${result.cores} cores, load average ${load0.toFixed(1)} before and ${load1.toFixed(1)} after (the machine is shared with other work, so wall times measure the CPU share each run got; the CPU columns do not depend on it).`,
  '',
  '| run | wall time | CPU in points | cores busy (CPU in points / wall) | CPU, whole process tree | engine CPU per job |',
  '|---|---|---|---|---|---|',
  row('pool, 1 worker', runs.pool1),
  row('pool, 2 workers', runs.pool2),
  row('BullMQ on Redis, 2 `factorlite worker`', runs.queue2),
  '',
  `Two workers against one: **${result.speedupTwoWorkers.toFixed(2)}x** in wall time, **${result.speedupCpuPerWall.toFixed(2)}x** in cores kept busy. ` +
    `Queue against pool, wall time per job: **${result.queueOverheadPerJobSeconds.toFixed(2)} s**; engine CPU per job: ${runs.pool2.overheadCpuPerJobSeconds.toFixed(2)} s (pool) vs ${runs.queue2.overheadCpuPerJobSeconds.toFixed(2)} s (queue). ` +
    `A point takes ${f(result.meanPointCpuSeconds)} s of CPU on average (${f(result.meanPointComputeSeconds)} s wall with one worker). Same results in all three runs: ${same ? 'yes' : '**no**'}.`,
].join('\n');
writeBenchResults(RESULTS, 'sweep', result, md, README);
process.stdout.write(`${md}\n`);
