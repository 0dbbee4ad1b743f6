// flexact: a decoupled function with one learned activation per branch (flexible-activation
// decoupling): y = g(x vᵀ) wᵀ + b, g applied per branch. Replaces a dense → activation → dense pair.
//   v [r, in]  w [out, r]  coeffs [r, D]  bias? [out]  range? [r, 2];  attrs basis, degree D
//   basis 'poly':    g_b(z) = Σ_{d=1..D} coeffs[b, d−1] z^d   (no constant term: the bias holds it)
//   basis 'bspline': g_b(z) = Σ_{i<D} coeffs[b, i] N_i(z), D ≥ 4 cubic B-splines on uniform clamped
//                    knots over [lo_b, hi_b] (flexactSpline.ts); the range is then required
//   with range [lo_b, hi_b]: outside it g_b continues along its tangent at the nearer end (a
//   polynomial fitted on samples swings far off beyond them).
import { numel, type GraphNode } from '../ir.js';
import { SPLINE_MIN_SIZE, splineValue } from './flexactSpline.js';
import { carve, expectShape, LayerError, type LayerKind } from './kind.js';
import { denseShape } from './shapeRules.js';

export type FlexactBasis = 'poly' | 'bspline';
export const FLEXACT_BASES: readonly FlexactBasis[] = ['poly', 'bspline'];

/** Most polynomial degree a branch may have (bounds the firmware's loop later; f32 loses sense beyond). */
export const FLEXACT_MAX_DEGREE = 16;

/**
 * The branch step, in place on t [rows, r]: t[k, b] = g_b(t[k, b]) by Horner, accumulated in
 * f64, extended linearly outside range [r, 2] when given. The reference definition every faster
 * kernel is checked against.
 */
export function flexactBranches(t: Float32Array, coeffs: Float32Array, rows: number, r: number, degree: number, range?: Float32Array, basis: FlexactBasis = 'poly'): void {
  if (basis === 'bspline') {
    if (!range) throw new Error('flexact: B-spline branches need their range (the knots)');
    splineBranches(t, coeffs, rows, r, degree, range);
    return;
  }
  for (let k = 0; k < rows; k++) {
    const o = k * r;
    for (let b = 0; b < r; b++) {
      const z = t[o + b]!;
      let e = z;
      if (range) {
        const lo = range[2 * b]!;
        const hi = range[2 * b + 1]!;
        e = z < lo ? lo : z > hi ? hi : z;
      }
      const c = b * degree;
      let acc = 0;
      for (let d = degree - 1; d >= 0; d--) acc = acc * e + coeffs[c + d]!;
      let g = acc * e;
      if (e !== z) {
        let slope = 0;
        for (let d = degree - 1; d >= 0; d--) slope = slope * e + (d + 1) * coeffs[c + d]!;
        g += slope * (z - e);
      }
      t[o + b] = g;
    }
  }
}

// The four B-spline values and derivatives of one evaluation (module scratch: a bound run allocates nothing).
const n = new Float64Array(4);
const dn = new Float64Array(4);

/** The B-spline branch step, in place like flexactBranches: g_b(clamp z) plus the end's tangent beyond [lo_b, hi_b]. */
function splineBranches(t: Float32Array, coeffs: Float32Array, rows: number, r: number, K: number, range: Float32Array): void {
  for (let k = 0; k < rows; k++) {
    const o = k * r;
    for (let b = 0; b < r; b++) {
      const z = t[o + b]!;
      const lo = range[2 * b]!;
      const hi = range[2 * b + 1]!;
      const e = z < lo ? lo : z > hi ? hi : z;
      const { g, slope } = splineValue(coeffs, b * K, K, lo, hi, e, n, dn);
      t[o + b] = e === z ? g : g + slope * (z - e);
    }
  }
}

function degreeOf(node: GraphNode): number {
  const d = node.attrs['degree'];
  if (typeof d !== 'number') throw new LayerError(node, 'attribute degree is missing');
  return d;
}

export const flexact: LayerKind = {
  ops: ['flexact'],
  attrs: {
    basis: { type: 'string', oneOf: FLEXACT_BASES },
    degree: { type: 'int', min: 1, max: FLEXACT_MAX_DEGREE, required: true },
  },
  checkAttrs(a, fail) {
    const D = a['degree'];
    if (a['basis'] === 'bspline' && typeof D === 'number' && D < SPLINE_MIN_SIZE) fail('FLM_ATTR_RANGE', `basis bspline needs degree (its number of B-splines) >= ${SPLINE_MIN_SIZE}, got ${D}`);
  },
  outputShape: (node, ins, w) => denseShape(node, ins[0]!, w('v')[1]!, w('w')[0]!),
  prepare(node, ctx) {
    const v = ctx.weight('v');
    const w = ctx.weight('w');
    const coeffs = ctx.weight('coeffs');
    const D = degreeOf(node);
    const basis = (node.attrs['basis'] ?? 'poly') as FlexactBasis;
    if (v.shape.length !== 2 || w.shape.length !== 2) throw new LayerError(node, 'v and w must be 2-D');
    const [r, inF] = v.shape as [number, number];
    expectShape(node, 'w', w, [-1, r]);
    expectShape(node, 'coeffs', coeffs, [r, D]);
    const out = w.shape[0]!;
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [out]);
    const range = ctx.optionalWeight('range');
    if (basis === 'bspline' && !range) throw new LayerError(node, 'B-spline branches need the range weight (their knots)');
    if (range) {
      expectShape(node, 'range', range, [r, 2]);
      for (let i = 0; i < r; i++) {
        const lo = range.data[2 * i]!;
        const hi = range.data[2 * i + 1]!;
        if (!(lo <= hi) || !Number.isFinite(lo) || !Number.isFinite(hi)) throw new LayerError(node, `range of branch ${i} is [${lo}, ${hi}]`);
      }
    }
    return {
      bind(inputs, output, scratch) {
        const x = inputs[0];
        if (!x || x.shape[x.shape.length - 1] !== inF) throw new LayerError(node, `input [${x?.shape}] does not end in ${inF}`);
        const rows = x.data.length / inF;
        const expected = [...x.shape.slice(0, -1), out];
        if (output.data.length !== rows * out || output.shape.length !== expected.length || expected.some((d, i) => d !== output.shape[i]))
          throw new LayerError(node, `output is [${output.shape}], expected [${expected}]`);
        const [t] = carve(node, scratch, rows * r) as [Float32Array];
        const xd = x.data;
        const y = output.data;
        const bias = b?.data;
        return () => {
          ctx.kernels.gemmNT(xd, v.data, rows, r, inF, undefined, t);
          flexactBranches(t, coeffs.data, rows, r, D, range?.data, basis);
          ctx.kernels.gemmNT(t, w.data, rows, out, r, bias, y);
        };
      },
    };
  },
  // The firmware (core/ops/flexact.c) keeps z for every row in scratch, as the runtime does.
  mcu: {
    scratchFloats(_node, inputShapes, _out, w) {
      const [r, inF] = w('v') as [number, number];
      return (numel(inputShapes[0] ?? []) / inF) * r;
    },
  },
  scratchFloats(_node, inputShapes, _out, weightShape) {
    const v = weightShape('v');
    const x = inputShapes[0];
    if (!v || !x) return 0;
    return (x.reduce((a, c) => a * c, 1) / v[1]!) * v[0]!;
  },
};
