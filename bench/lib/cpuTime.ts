// CPU time of this process, and the fastest per-call time of calls run alternately: the timing
// loop of the single-kernel benches (bench/pointwise.ts, bench/pointwisePacked.ts).

/** User + system CPU time of this process, in ms (time the scheduler gave others is left out). */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Runs each of `fns` `iters` times per round, alternating, for `rounds` rounds; returns each one's fastest CPU ms per call. */
export function fastestPerCall(fns: (() => void)[], iters: number, rounds: number): number[] {
  const best = fns.map(() => Infinity);
  for (let r = 0; r < rounds; r++)
    fns.forEach((fn, k) => {
      const t0 = cpuMs();
      for (let i = 0; i < iters; i++) fn();
      best[k] = Math.min(best[k]!, (cpuMs() - t0) / iters);
    });
  return best;
}
