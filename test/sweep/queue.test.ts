// The sweep on BullMQ over a real redis-server: two `factorlite worker` processes, one SIGKILLed
// in the middle of a point, and Redis restarted during the sweep. Every point must finish exactly
// once, with the same results as the in-process pool. "Once" is read from Redis, through BullMQ's
// Queue: each job's record and the queue's event stream (a SIGKILLed worker's last log lines may be
// lost with it, its Redis writes are not).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { QUEUE_NAME, artefactKey, type JobReturn } from '../../sweep/queue.js';
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
    const [, w2pid] = await w2.waitFor(/worker (\d+): waiting for points/, 60_000);
    const sweep = startCli(['sweep', DEMO_MODEL, ...TINY_GRID, '--out', join(dir, 'queue'), '--queue', url, '--json']);
    // Kill worker 1 in the middle of its first point: its pool process goes with it.
    const [, killedKey] = await w1.waitFor(/: ([0-9a-f]{20}) try 1/, 120_000);
    await new Promise((r) => setTimeout(r, 300));
    await stop(w1, 'SIGKILL');
    // Restart Redis once a point has completed; the append-only file keeps the queue.
    await w2.waitFor(/completed [0-9a-f]{20}/, 180_000);
    await stop(redis);
    redis = await startRedis(port, redisDir);
    // The timer is cleared once the sweep exits: left pending, it held the test process open for its
    // full 400 s after the last assertion.
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([sweep.exited, new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), 400_000); })]);
    clearTimeout(timer);
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

    // Exactly once, from Redis: every job completed, finished one time (BullMQ counts each finish,
    // completed or failed, in attemptsMade), one `completed` event each in the queue's stream; the
    // killed point stalled, was started again and finished by worker 2.
    const { Queue } = await import('bullmq');
    const { Redis } = await import('ioredis');
    const queue = new Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port, maxRetriesPerRequest: null } });
    const client = new Redis({ host: '127.0.0.1', port });
    try {
      // The queue's event stream (BullMQ writes one entry per job event), read at the key the Queue names.
      const stream = await client.xrange(queue.keys['events']!, '-', '+');
      const completedEvents = new Map<string, number>();
      for (const [, fields] of stream) {
        const f = new Map<string, string>();
        for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
        if (f.get('event') === 'completed') completedEvents.set(f.get('jobId')!, (completedEvents.get(f.get('jobId')!) ?? 0) + 1);
      }
      t.same([...completedEvents.keys()].sort(), [...a.keys()].sort(), 'the queue\'s event stream has a completion for every point and no other');
      for (const k of a.keys()) {
        const job = await queue.getJob(k);
        t.ok(job, `job ${k} is in Redis`);
        if (!job) continue;
        const rv = job.returnvalue as JobReturn;
        t.same(
          { state: await job.getState(), finished: typeof job.finishedOn === 'number', attemptsMade: job.attemptsMade, events: completedEvents.get(k), key: rv?.row?.key },
          { state: 'completed', finished: true, attemptsMade: 1, events: 1, key: k },
          `job ${k}: completed, finished once, no failed try`,
        );
        t.notOk('flm' in (rv ?? {}), `job ${k}: its record holds the row, not the .flm`);
        t.equal(await client.exists(artefactKey(rv.row.result.artefact)), 0, `job ${k}: the .flm left Redis once the sweep stored it`);
        if (k === killedKey) {
          t.ok(job.stalledCounter >= 1, `the killed point stalled (stalledCounter ${job.stalledCounter})`);
          t.ok(job.attemptsStarted >= 2, `and was started again (attemptsStarted ${job.attemptsStarted})`);
          t.equal(rv.worker.pid, Number(w2pid), 'worker 2 finished the killed point');
        }
      }
    } finally {
      await queue.close();
      client.disconnect();
    }
    t.ok(b.get(killedKey!)!.attempts >= 2, 'its row records the second try');
    const stored = JSON.parse(readFileSync(join(dir, 'queue', 'results.json'), 'utf8'));
    t.equal(stored.rows.length, 4, 'results.json holds the 4 rows');
  } finally {
    for (const w of workers) await stop(w);
    await stop(redis);
  }
});
