// A pool process: takes one point at a time over IPC, runs it, sends back the row and the .flm.
// Points are CPU-bound and synchronous; running them here keeps the parent (and a queue worker's
// lock renewal) responsive.
import { initKernels } from '../runtime/kernels/backend.js';
import { runPoint } from './point.js';
import type { SweepJob } from './grid.js';

export interface ChildRequest { job: SweepJob; modelPath: string }
export type ChildReply =
  | { ok: true; row: ReturnType<typeof runPoint>['row']; flm: Uint8Array }
  | { ok: false; error: string; code?: string };

await initKernels(() => {});
// The parent is gone (killed, or closed the pool): nobody wants the result.
process.on('disconnect', () => process.exit(0));
// Ctrl-C in a terminal reaches the whole process group: the parent decides (it lets the point in
// progress finish and keeps its row; a second Ctrl-C exits it, and the disconnect ends us).
process.on('SIGINT', () => undefined);
process.on('message', (msg: ChildRequest) => {
  let reply: ChildReply;
  try {
    const { row, flm } = runPoint(msg.job, msg.modelPath);
    reply = { ok: true, row, flm };
  } catch (e) {
    const err = e as Error & { code?: string };
    reply = { ok: false, error: err.message ?? String(e), ...(err.code ? { code: err.code } : {}) };
  }
  process.send!(reply);
});
process.send!({ ready: true });
