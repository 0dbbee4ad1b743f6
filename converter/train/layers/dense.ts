import { linear } from '../ops/matmul.js';
import type { Var } from '../tensor.js';
import { ParamMaker, type InitOptions, type TrainLayer } from './layer.js';

/** Dense layer, runtime kind `dense`: weight [out, in], y = x W^T + b. */
export function dense(inF: number, outF: number, opts: InitOptions = {}): TrainLayer {
  const pm = new ParamMaker(opts);
  // Var(W) = std^2 = gain / in.
  const w = pm.normalParam('weight', [outF, inF], Math.sqrt(pm.target(inF)));
  const b = pm.bias(outF);
  return { op: 'dense', attrs: {}, params: pm.params, forward: (x: Var) => linear(x, w, b) };
}
