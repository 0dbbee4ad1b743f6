// The sweep on BullMQ over a real redis-server: two `factorlite worker` processes, one SIGKILLed
// in the middle of a point, and Redis restarted during the sweep. Every point must finish exactly
// once, with the same results as the in-process pool.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cliAsync, jsonOf } from '../support/cli.js';
import { DEMO_MODEL, TINY_GRID, freePort, needRedis, startCli, startRedis, stop, type Proc } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-queue-'));

t.test('sweep --queue with two workers, one killed mid-point and Redis restarted, gives the pool rows once each', async (t) => {
  if (!needRedis(t)) return;
  const local = jsonOf<any>(await cliAsync(['sweep', DEMO_MODEL, ...TINY_GRID, '--out', join(dir, 'local'), '--workers', '2', '--json'], { timeout: 400_000 }), 'sweep (pool)');
  t.equal(local.finished, 4, 'the pool finished the 4 points');

  const port = await freePort();
  const redisDir = mkdtempSync(join(dir, 'redis-'));
  let redis = await startRedis(port, redisDir);
  const url = `redis://127.0.0.1:${port}`;
  const workers: Proc[] = [];
  try {
    const w1 = startCli(['worker', '--queue', url, '--lock-ms', '3000']);
    const w2 = startCli(['worker', '--queue', url, '--lock-ms', '3000']);
    workers.push(w1, w2);
    await w1.waitFor(/waiting for points/, 60_000);
    await w2.waitFor(/waiting for points/, 60_000);
    const sweep = startCli(['sweep', DEMO_MODEL, ...TINY_GRID, '--out', join(dir, 'queue'), '--queue', url, '--json']);
    // Kill worker 1 in the middle of its first point: its pool process goes with it.
    const [, killedKey] = await w1.waitFor(/: ([0-9a-f]{20}) try 1/, 120_000);
    await new Promise((r) => setTimeout(r, 1500));
    t.notOk(/completed/.test(w1.err), 'worker 1 was still on its point when killed');
    await stop(w1, 'SIGKILL');
    // Restart Redis once a point has completed; the append-only file keeps the queue.
    await w2.waitFor(/completed [0-9a-f]{20}/, 180_000);
    await stop(redis);
    redis = await startRedis(port, redisDir);
    const code = await Promise.race([sweep.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 400_000))]);
    t.equal(code, 0, `sweep --queue exits 0 (${sweep.err.trim().split('\n').at(-1)})`);
    const queued = JSON.parse(sweep.out.trim()) as any;
    t.equal(queued.finished, 4, 'the queue finished the 4 points');
    t.equal(queued.engine, 'bullmq');
    t.match(sweep.err, /queue: [0-9a-f]{20} .* started/, 'progress on stderr from the queue events');

    // Same results, point by point (timings and hosts aside).
    const byKey = (rows: any[]) => new Map(rows.map((r) => [r.key, r]));
    const a = byKey(local.rows);
    const b = byKey(queued.rows);
    t.same([...b.keys()].sort(), [...a.keys()].sort(), 'the same points');
    for (const [k, r] of a) t.same(b.get(k)?.result, r.result, `point ${k}: same result as the pool`);

    // Exactly once: each point completed by one worker, one time; the killed point was taken over.
    const completions = [...w1.err.matchAll(/completed ([0-9a-f]{20})/g), ...w2.err.matchAll(/completed ([0-9a-f]{20})/g)].map((m) => m[1]);
    t.same(completions.slice().sort(), [...a.keys()].sort(), 'every point completed exactly once across the workers');
    t.match(w2.err, new RegExp(`${killedKey} try [2-9]`), 'worker 2 took over the killed point');
    t.ok(b.get(killedKey!)!.attempts >= 2, 'its row records the second try');
    const stored = JSON.parse(readFileSync(join(dir, 'queue', 'results.json'), 'utf8'));
    t.equal(stored.rows.length, 4, 'results.json holds the 4 rows');
  } finally {
    for (const w of workers) await stop(w);
    await stop(redis);
  }
});
