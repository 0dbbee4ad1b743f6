import { linear } from '../ops/matmul.js';
import type { Var } from '../tensor.js';
import { ParamMaker, type InitOptions, type TrainLayer } from './layer.js';

/** Truncated-SVD dense, runtime kind `svd_dense`: u [out, r], v [r, in], y = (x v^T) u^T + b. */
export function svdDense(inF: number, outF: number, rank: number, opts: InitOptions = {}): TrainLayer {
  const pm = new ParamMaker(opts);
  // Var(W) = r std_u^2 std_v^2, so std_u = std_v = (target / r)^(1/4).
  const std = (pm.target(inF) / rank) ** 0.25;
  const u = pm.normalParam('u', [outF, rank], std);
  const v = pm.normalParam('v', [rank, inF], std);
  const b = pm.bias(outF);
  return { op: 'svd_dense', attrs: {}, params: pm.params, forward: (x: Var) => linear(linear(x, v), u, b) };
}
