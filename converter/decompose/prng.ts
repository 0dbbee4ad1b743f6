// Seeded random numbers so that every decomposition is reproducible from its seed.

export { mulberry32 } from '../../shared/prng.js';

/** Standard normals by Box–Muller over a uniform source. */
export function normalSource(uniform: () => number): () => number {
  return () => {
    const u1 = Math.max(uniform(), 1e-300);
    const u2 = uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  };
}

/** `count` seeded standard normals times `scale`. */
export function randomNormal(normal: () => number, count: number, scale = 1): Float64Array {
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = normal() * scale;
  return out;
}
