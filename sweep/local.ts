// Runs the unfinished points of a plan on this machine, `workers` at a time.
import type { SweepJob } from './grid.js';
import type { PointPool } from './pool.js';
import type { SweepRow } from './point.js';
import type { SweepStore } from './store.js';

export interface RunReport { done: number; failed: Array<{ key: string; error: string }>; interrupted: boolean }

export async function runLocal(
  jobs: SweepJob[], modelPath: string, store: SweepStore, pool: PointPool,
  on: { finished?: (row: SweepRow) => void; failed?: (key: string, error: string) => void; stopped?: () => boolean } = {},
): Promise<RunReport> {
  const queue = jobs.filter((j) => !store.has(j.key));
  const report: RunReport = { done: 0, failed: [], interrupted: false };
  const lane = async (): Promise<void> => {
    for (;;) {
      if (on.stopped?.()) {
        report.interrupted = queue.length > 0;
        return;
      }
      const job = queue.shift();
      if (!job) return;
      try {
        const { row, flm } = await pool.run(job, modelPath);
        await store.put(row, flm);
        report.done++;
        on.finished?.(row);
      } catch (e) {
        const msg = (e as Error).message;
        if (on.stopped?.()) {
          report.interrupted = true;
          return;
        }
        report.failed.push({ key: job.key, error: msg });
        on.failed?.(job.key, msg);
      }
    }
  };
  await Promise.all(Array.from({ length: pool.size }, lane));
  return report;
}
