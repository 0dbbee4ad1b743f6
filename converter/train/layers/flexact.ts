import type { FlexactBasis } from '../../../runtime/layers/flexact.js';
import { branchPolynomial, branchSpline } from '../ops/branch.js';
import { linear } from '../ops/matmul.js';
import { constant, type Var } from '../tensor.js';
import { leadOf, ParamMaker, type InitOptions, type TrainLayer } from './layer.js';

export interface FlexactInit extends InitOptions {
  /** [r, 2]: the fitted range of each branch; kept constant in training (role 'range'). */
  range?: Float32Array;
  /** 'poly' (default) or 'bspline' (needs the range: its knots). */
  basis?: FlexactBasis;
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
  const basis = opts.basis ?? 'poly';
  if (basis === 'bspline' && !opts.range) throw new Error('train: flexact B-spline branches need a range (their knots)');
  const coeffs = pm.normalParam('coeffs', [r, degree], 0.1);
  if (!opts.weights?.['coeffs'] && basis === 'poly') for (let b = 0; b < r; b++) coeffs.data[b * degree] = 1;
  if (!opts.weights?.['coeffs'] && basis === 'bspline') {
    // The identity: the B-splines' Greville abscissae (knot averages) are the coefficients of g(z) = z.
    for (let b = 0; b < r; b++) {
      const lo = opts.range![2 * b]!, hi = opts.range![2 * b + 1]!, M = degree - 3;
      for (let i = 0; i < degree; i++) {
        let s = 0;
        for (let j = i + 1; j <= i + 3; j++) s += Math.min(Math.max(j - 3, 0), M);
        coeffs.data[b * degree + i] = lo + ((hi - lo) / M) * (s / 3);
      }
    }
  }
  const b = pm.bias(outF);
  // Adam steps every entry by about lr in its own units, but these parameters differ in scale by
  // construction: the fit scales each v_b so that z_b has RMS 1 (FC-2: |v_b| ≈ 0.2, entries ≈ 0.007,
  // so lr 1e-3 moved each by 14 % a step and one epoch lost 8 points of training accuracy), and the
  // coefficient of z^d acts through |z|^d. Step factors (Optimizer lrScale, the same as training
  // v_b / |v_b| and c_d·reach^d) make one step move each branch alike; capped at 1, they only
  // ever shorten a step.
  const sv = new Float32Array(r * inF);
  for (let br = 0; br < r; br++) {
    let nn = 0;
    for (let j = 0; j < inF; j++) nn += v.data[br * inF + j]! ** 2;
    sv.fill(nn > 0 ? Math.min(1, Math.sqrt(nn)) : 1, br * inF, (br + 1) * inF);
  }
  v.lrScale = sv;
  if (opts.range && basis === 'poly') {
    const sc = new Float32Array(r * degree);
    for (let br = 0; br < r; br++) {
      const reach = Math.max(Math.abs(opts.range[2 * br]!), Math.abs(opts.range[2 * br + 1]!));
      for (let d = 0; d < degree; d++) sc[br * degree + d] = Math.min(1, reach > 0 ? 1 / reach ** (d + 1) : 1);
    }
    coeffs.lrScale = sc;
  }
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
    attrs: { basis, degree },
    params,
    forward: (x: Var) => {
      leadOf(x, inF, 'flexact');
      const z = linear(x, v);
      return linear(basis === 'bspline' ? branchSpline(z, coeffs, range!) : branchPolynomial(z, coeffs, range), w, b);
    },
  };
}
