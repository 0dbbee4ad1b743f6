// Seeded random numbers, so that decompositions, tests and fault-injection runs replay from a seed.
// shared/ holds what several parts use and none owns (here: the converter's decompositions, the
// deploy smoke input of targets/, the transport's fault runs); it imports nothing of the project.

/** mulberry32: a tiny 32-bit PRNG; returns uniforms in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
