// factorlite worker: takes sweep points from BullMQ on Redis until stopped (SIGINT/SIGTERM
// finish the points in progress first).
import { startWorker } from '../../sweep/queue.js';
import { log } from '../progress.js';
import { integerFlag, positiveIntFlag } from '../flags.js';

export async function workerCommand(a: { queue: string; concurrency: string; lockMs: string }): Promise<void> {
  const concurrency = positiveIntFlag('--concurrency', a.concurrency)!;
  const lockMs = integerFlag('--lock-ms', a.lockMs, 1000, 'an integer of at least 1000')!;
  const w = startWorker(a.queue, { concurrency, lockMs, log });
  const onSignal = () => {
    log(`worker ${process.pid}: closing after the points in progress`);
    void w.stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  log(`worker ${process.pid}: waiting for points on ${a.queue} (${concurrency} at a time)`);
  await w.closed;
}
