// factorlite worker: takes sweep points from BullMQ on Redis until stopped (SIGINT/SIGTERM
// finish the points in progress first).
import { startWorker } from '../../sweep/queue.js';
import { CliError } from '../errors.js';
import { log } from '../progress.js';

export async function workerCommand(a: { queue: string; concurrency: string; lockMs: string }): Promise<void> {
  const concurrency = Number(a.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new CliError('BAD_ARGUMENT', `--concurrency ${a.concurrency}: expected a positive integer`);
  const lockMs = Number(a.lockMs);
  if (!Number.isInteger(lockMs) || lockMs < 1000) throw new CliError('BAD_ARGUMENT', `--lock-ms ${a.lockMs}: expected an integer of at least 1000`);
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
