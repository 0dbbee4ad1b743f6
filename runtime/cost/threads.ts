// How many threads one kernel call may get (runtime/kernels/wasmThreaded.ts asks per call). A
// dispatch costs a wake-up of the workers and a wait for the slowest (bench/threadWake.ts: about
// 25 µs median on this VM under a load of 17, with a 90th percentile of milliseconds after a gap
// of a millisecond); a slice must carry enough multiply-adds to pay for that, or the call stays on
// the calling thread. This rule only proposes: a session times each node it splits both ways at
// warm-up and keeps the faster (runtime/session.ts chooseThreads; ArenaInfo.threads and
// threadTimings record the choice per node and batch).

/** Multiply-adds one thread's slice must carry for a split to pay: about 20 µs of this machine's single-thread GEMM when idle (about 25 G multiply-adds/s), a few futex wake-ups. */
export const MIN_MACS_PER_THREAD = 500_000;

/**
 * Threads for a call of `macs` multiply-adds that splits into `units` independent slices (batch
 * rows, row or column tiles, channel groups), capped by `cap` (the session's `threads`).
 * 1 means single-threaded.
 */
export function threadsFor(macs: number, units: number, cap: number, minMacs = MIN_MACS_PER_THREAD): number {
  if (!(cap > 1) || units < 2) return 1;
  return Math.max(1, Math.min(Math.floor(cap), units, minMacs > 0 ? Math.floor(macs / minMacs) : Infinity));
}

/** Start of slice i of t over `units` (slice i is [sliceStart(i), sliceStart(i + 1))): sizes differ by at most one. */
export function sliceStart(i: number, t: number, units: number): number {
  return Math.floor((i * units) / t);
}
