// How many threads one kernel call gets (runtime/kernels/wasmThreaded.ts asks per call; a session
// records the answer per node in its arena info). A dispatch costs a wake-up of the sleeping
// workers and a wait for the slowest (tens of microseconds on a busy machine); a slice must carry
// enough multiply-adds to pay for that, or the call stays on the calling thread.

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
