import { branchPolynomial } from '../ops/branch.js';
import { linear } from '../ops/matmul.js';
import { constant, type Var } from '../tensor.js';
import { leadOf, ParamMaker, type InitOptions, type TrainLayer } from './layer.js';

export interface FlexactInit extends InitOptions {
  /** [r, 2]: the fitted range of each branch; kept constant in training (role 'range'). */
  range?: Float32Array;
}

/**
 * Flexible-activation layer, runtime kind `flexact`: v [r, in], w [out, r], coeffs [r, D], bias,
 * range?; y = g(x vᵀ) wᵀ + b. Normally started from a decoupling fit (opts.weights); the random
 * start (v, w He-scaled, g the identity plus small higher terms) is for tests and from-scratch use.
 */
export function flexact(inF: number, outF: number, r: number, degree: number, opts: FlexactInit = {}): TrainLayer {
  const pm = new ParamMaker(opts);
  const v = pm.normalParam('v', [r, inF], Math.sqrt(pm.target(inF)));
  const w = pm.normalParam('w', [outF, r], Math.sqrt(pm.target(r)));
  const coeffs = pm.normalParam('coeffs', [r, degree], 0.1);
  if (!opts.weights?.['coeffs']) for (let b = 0; b < r; b++) coeffs.data[b * degree] = 1;
  const b = pm.bias(outF);
  const params: Record<string, Var> = pm.params;
  let range: Float32Array | undefined;
  if (opts.range) {
    if (opts.range.length !== 2 * r) throw new Error(`train: flexact range has ${opts.range.length} values, needs ${2 * r}`);
    range = Float32Array.from(opts.range);
    // A constant: exported under its role, never updated (the optimiser skips what has no gradient).
    params['range'] = constant(range, [r, 2], 'range');
  }
  return {
    op: 'flexact',
    attrs: { basis: 'poly', degree },
    params,
    forward: (x: Var) => {
      leadOf(x, inF, 'flexact');
      return linear(branchPolynomial(linear(x, v), coeffs, range), w, b);
    },
  };
}
