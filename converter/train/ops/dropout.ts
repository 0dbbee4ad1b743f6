// Inverted dropout: kept values are scaled by 1/(1-p) in training so eval is the identity.
// The mask comes from the caller's seeded uniform source, so runs repeat.
import { result, gradOf, type Var } from '../tensor.js';

export function dropout(x: Var, p: number, uniform: () => number, training: boolean): Var {
  if (!(p >= 0 && p < 1)) throw new Error(`train: dropout probability ${p} is not in [0, 1)`);
  if (!training || p === 0) return x;
  const keep = 1 / (1 - p);
  const mask = new Float32Array(x.size);
  const out = new Float32Array(x.size);
  for (let i = 0; i < mask.length; i++) {
    const m = uniform() >= p ? keep : 0;
    mask[i] = m;
    out[i] = x.data[i]! * m;
  }
  return result(out, x.shape, [x], (g) => {
    const gx = gradOf(x);
    if (gx) for (let i = 0; i < g.length; i++) gx[i]! += g[i]! * mask[i]!;
  });
}
