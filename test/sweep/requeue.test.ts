// The queue on a real redis-server: a point that failed in an earlier sweep (a worker that throws)
// is queued again when the sweep is re-run, and a real `factorlite worker` then finishes it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { QUEUE_NAME } from '../../sweep/queue.js';
import { cliAsync } from '../support/cli.js';
import { DEMO_MODEL, freePort, needRedis, startCli, startRedis, stop, type Proc } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-requeue-'));

t.test('a point that failed in an earlier sweep is queued again on re-run', async (t) => {
  if (!needRedis(t)) return;
  const port = await freePort();
  const redis = await startRedis(port, mkdtempSync(join(dir, 'redis-failed-')));
  const url = `redis://127.0.0.1:${port}`;
  const grid = ['--methods', 'svd', '--ratios', '4', '--quant', 'f32', '--data', 'mnist', '--limit', '100', '--bench-iters', '5', '--out', join(dir, 'failed'), '--queue', url, '--attempts', '1'];
  const { Worker, Queue } = await import('bullmq');
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  // A worker that fails every point: the first sweep ends with the point failed.
  const broken = new Worker(QUEUE_NAME, async () => { throw new Error('injected failure'); }, { connection });
  let worker: Proc | undefined;
  try {
    const first = await cliAsync(['sweep', DEMO_MODEL, ...grid, '--json'], { timeout: 300_000 });
    await broken.close();
    t.not(first.status, 0, 'the first sweep fails');
    t.match(first.stderr.trim().split('\n').at(-1), /1 point\(s\) failed, first: injected failure/, 'naming the failure');
    worker = startCli(['worker', '--queue', url]);
    await worker.waitFor(/waiting for points/, 60_000);
    const again = await cliAsync(['sweep', DEMO_MODEL, ...grid, '--json'], { timeout: 300_000 });
    t.equal(again.status, 0, `the re-run succeeds (${again.stderr.trim().split('\n').at(-1)})`);
    t.match(again.stderr, /1 failed or lost before and queued again/, 'the failed point was queued again');
    const j = JSON.parse(again.stdout.trim());
    t.same([j.finished, j.computed], [1, 1], 'and computed');
    const queue = new Queue(QUEUE_NAME, { connection });
    try {
      const job = await queue.getJob(j.rows[0].key);
      t.same([await job?.getState(), job?.attemptsMade], ['completed', 1], 'its job is a fresh one, completed on its first try');
    } finally {
      await queue.close();
    }
  } finally {
    await broken.close().catch(() => undefined);
    if (worker) await stop(worker);
    await stop(redis);
  }
});
