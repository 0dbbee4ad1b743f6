// Flexible-activation decoupling (issue 13): a dense → activation → dense pair becomes one flexact
// layer, W g(Vᵀu) + c with r branches that each learn their own activation (runtime/layers/flexact.ts).
// It is not a FactorMethod: it compresses a function of three nodes, fitted on samples of the pair's
// input, not one weight. converter/decoupleModel.ts finds the pairs and rewrites the graph; this
// module holds the method's own parts: the --basis form, its parameter count, and its runtime kind's
// trainable form and ONNX export (registered through methods/index.ts like every other kind).
import { attrNum } from '../../runtime/ir.js';
import { FLEXACT_MAX_DEGREE, type FlexactBasis } from '../../runtime/layers/flexact.js';
import { SPLINE_MIN_SIZE, splineValue } from '../../runtime/layers/flexactSpline.js';
import { CompressError } from '../compressError.js';
import { expect2d, fail, linear, type Emitter } from '../export/context.js';
import { flexact as flexactLayer } from '../train/layers/flexact.js';
import { unsupported as tfliteUnsupported } from '../export/tfliteExporter.js';
import type { ConverterKind } from './method.js';

/** A branch basis as --basis gives it: polynomials of degree D, or K cubic B-splines (degree = K). */
export interface DecoupleBasis {
  basis: FlexactBasis;
  /** Basis functions per branch (the `degree` attribute): the polynomial degree, or the number of B-splines. */
  degree: number;
}

export const DEFAULT_BASIS = 'poly:3';

/** Reads `poly:D` (D in 1..16) or `bspline:K` (K in 4..16); anything else is a BAD_BASIS error naming what is allowed. */
export function parseBasis(spec: string): DecoupleBasis {
  const m = /^([a-z]+):(\d+)$/.exec(spec.trim());
  const allowed = `expected poly:D with D from 1 to ${FLEXACT_MAX_DEGREE}, or bspline:K with K from ${SPLINE_MIN_SIZE} to ${FLEXACT_MAX_DEGREE}`;
  if (!m) throw new CompressError('BAD_BASIS', `--basis ${spec}: ${allowed}`);
  if (m[1] !== 'poly' && m[1] !== 'bspline') throw new CompressError('BAD_BASIS', `--basis ${spec}: unknown basis ${m[1]}; ${allowed}`);
  const basis = m[1];
  const degree = Number(m[2]);
  const min = basis === 'bspline' ? SPLINE_MIN_SIZE : 1;
  if (!(degree >= min && degree <= FLEXACT_MAX_DEGREE)) throw new CompressError('BAD_BASIS', `--basis ${spec}: ${basis === 'poly' ? 'degree' : 'size'} ${degree} is out of range; ${allowed}`);
  return { basis, degree };
}

/** Parameters of a flexact layer: v, w, coeffs, bias and the stored range [r, 2]. */
export function flexactParams(inputs: number, outputs: number, r: number, degree: number): number {
  return r * (inputs + outputs + degree) + outputs + 2 * r;
}

/**
 * A B-spline branch as ONNX element-wise ops. In s = (e − lo)/h ∈ [0, M] (M = K − 3 unit intervals)
 * a C² cubic spline with knots at the integers is one cubic P plus a truncated cube per interior
 * knot: crossing knot j changes the cubic by β_j (s − j)³. P is the cubic of the middle interval
 * [c, c + 1] in u = s − c, and the knots right of it add β_j (s − j)₊³, those left of it
 * β_j (j − s)₊³, so that no power reaches past (M/2 + 1)³ (f32 keeps the sums' cancellation small).
 * Each piece comes from four equally spaced values of the branch (exact for a cubic).
 */
export function splinePieces(coeffs: ArrayLike<number>, off: number, K: number, lo: number, hi: number): { invH: number; centre: number; a: number[]; beta: number[] } {
  const M = K - 3;
  const centre = Math.floor(M / 2);
  const n = new Float64Array(4);
  const dn = new Float64Array(4);
  if (!(hi > lo)) return { invH: 0, centre: 0, a: [Number(coeffs[off]), 0, 0, 0], beta: new Array<number>(M - 1).fill(0) };
  const h = (hi - lo) / M;
  const at = (sv: number) => splineValue(coeffs, off, K, lo, hi, lo + sv * h, n, dn).g;
  const cubic: number[] = [];
  let a: number[] = [];
  for (let i = 0; i < M; i++) {
    const g = [0, 1, 2, 3].map((k) => at(i + k / 3));
    const d1 = g[1]! - g[0]!, d2 = g[2]! - 2 * g[1]! + g[0]!, d3 = g[3]! - 3 * g[2]! + 3 * g[1]! - g[0]!;
    // Newton's forward form at steps of 1/3 from s = i, in powers of (s − i).
    if (i === centre) a = [g[0]!, 3 * d1 - 1.5 * d2 + d3, 4.5 * d2 - 4.5 * d3, 4.5 * d3];
    cubic.push(4.5 * d3);
  }
  const beta: number[] = [];
  for (let j = 1; j < M; j++) beta.push(cubic[j]! - cubic[j - 1]!);
  return { invH: 1 / h, centre, a, beta };
}

const flexactOnnx: Emitter = (ctx) => {
  const name = ctx.node.name;
  const v = ctx.weight('v');
  const w = ctx.weight('w');
  const coeffs = ctx.weight('coeffs');
  expect2d(ctx, 'v', v, -1, -1);
  const r = v.shape[0]!;
  expect2d(ctx, 'w', w, -1, r);
  const D = attrNum(ctx.node, 'degree');
  expect2d(ctx, 'coeffs', coeffs, r, D);
  const basis = ctx.node.attrs['basis'] ?? 'poly';
  if (basis !== 'poly' && basis !== 'bspline') fail(ctx, `basis ${String(basis)} is not known`);
  const range = ctx.optionalWeight('range');
  if (range) expect2d(ctx, 'range', range, r, 2);
  if (basis === 'bspline' && !range) fail(ctx, 'B-spline branches need the range weight (their knots)');
  const rank = ctx.ranks[0]!;
  const z = linear(ctx, ctx.inputs[0]!, rank, v, undefined, `${name}/v`);
  const vector = (tag: string, f: (b: number) => number): string => {
    const c = new Float32Array(r);
    for (let b = 0; b < r; b++) c[b] = f(b);
    return ctx.b.float(`${name}/${tag}`, [r], c);
  };
  let e = z;
  if (range) {
    const hi = ctx.b.node('Min', [z, vector('hi', (b) => range.data[2 * b + 1]!)], `${name}/min`);
    e = ctx.b.node('Max', [hi, vector('lo', (b) => range.data[2 * b]!)], `${name}/clamp`);
  }
  let g: string;
  let slope: (b: number, at: number) => number;
  if (basis === 'bspline') {
    const lo = (b: number) => range!.data[2 * b]!;
    const hi = (b: number) => range!.data[2 * b + 1]!;
    const pieces = Array.from({ length: r }, (_, b) => splinePieces(coeffs.data, b * D, D, lo(b), hi(b)));
    // u = (e − lo)/h − centre, with the centre in knot units per branch; s − j = u + centre − j.
    const u = ctx.b.node('Sub', [
      ctx.b.node('Mul', [ctx.b.node('Sub', [e, vector('lo_knot', lo)], `${name}/from_lo`), vector('inv_h', (b) => pieces[b]!.invH)], `${name}/knots`),
      vector('centre', (b) => pieces[b]!.centre),
    ], `${name}/local`);
    g = ctx.b.node('Mul', [u, vector('a3', (b) => pieces[b]!.a[3]!)], `${name}/horner3`);
    for (let d = 2; d >= 0; d--) {
      g = ctx.b.node('Add', [g, vector(`a${d}`, (b) => pieces[b]!.a[d]!)], `${name}/add${d}`);
      if (d > 0) g = ctx.b.node('Mul', [g, u], `${name}/horner${d}`);
    }
    for (let j = 1; j < D - 3; j++) {
      // Right of the centre: (u − (j − centre))₊;  left of it: (j − centre − u)₊, each β_j.
      const offset = vector(`knot${j}`, (b) => j - pieces[b]!.centre);
      const right = ctx.b.node('Relu', [ctx.b.node('Sub', [u, offset], `${name}/past${j}`)], `${name}/right${j}`);
      const left = ctx.b.node('Relu', [ctx.b.node('Sub', [offset, u], `${name}/before${j}`)], `${name}/left${j}`);
      const side = ctx.b.node('Add', [
        ctx.b.node('Mul', [right, vector(`right_mask${j}`, (b) => (j > pieces[b]!.centre ? 1 : 0))], `${name}/rmask${j}`),
        ctx.b.node('Mul', [left, vector(`left_mask${j}`, (b) => (j > pieces[b]!.centre ? 0 : 1))], `${name}/lmask${j}`),
      ], `${name}/side${j}`);
      const t3 = ctx.b.node('Mul', [ctx.b.node('Mul', [side, side], `${name}/sq${j}`), side], `${name}/cube${j}`);
      // (j − s)³ enters with the sign flipped: p_{j−1} = p_j + β_j (j − s)³.
      g = ctx.b.node('Add', [g, ctx.b.node('Mul', [t3, vector(`beta${j}`, (b) => pieces[b]!.beta[j - 1]!)], `${name}/jump${j}`)], `${name}/knot${j}/sum`);
    }
    const n = new Float64Array(4);
    const dn = new Float64Array(4);
    slope = (b, at) => splineValue(coeffs.data, b * D, D, lo(b), hi(b), at, n, dn).slope;
  } else {
    // p(e) = (((c_D e + c_{D-1}) e + ...) e + c_1) e
    g = ctx.b.node('Mul', [e, vector(`c${D}`, (b) => coeffs.data[b * D + D - 1]!)], `${name}/horner${D}`);
    for (let d = D - 2; d >= 0; d--) {
      g = ctx.b.node('Add', [g, vector(`c${d + 1}`, (b) => coeffs.data[b * D + d]!)], `${name}/add${d + 1}`);
      g = ctx.b.node('Mul', [g, e], `${name}/horner${d + 1}`);
    }
    slope = (b, at) => {
      let sl = 0;
      for (let d = D - 1; d >= 0; d--) sl = sl * at + (d + 1) * coeffs.data[b * D + d]!;
      return sl;
    };
  }
  if (range) {
    const sLo = (b: number) => slope(b, range.data[2 * b]!);
    const sHi = (b: number) => slope(b, range.data[2 * b + 1]!);
    const d = ctx.b.node('Sub', [z, e], `${name}/outside`);
    const low = ctx.b.node('Mul', [d, vector('slope_lo', sLo)], `${name}/tangent_lo`);
    const up = ctx.b.node('Mul', [ctx.b.node('Relu', [d], `${name}/above`), vector('slope_step', (b) => sHi(b) - sLo(b))], `${name}/tangent_hi`);
    g = ctx.b.node('Add', [g, ctx.b.node('Add', [low, up], `${name}/tangent`)], `${name}/extended`);
  }
  linear(ctx, g, rank, w, ctx.optionalWeight('bias'), `${name}/w`, ctx.output);
  return rank;
};

export const FLEXACT: ConverterKind = {
  op: 'flexact',
  trainable: (c) => {
    const v = c.shape('v'), w = c.shape('w'), coeffs = c.shape('coeffs');
    c.need(v.length === 2 && w.length === 2 && coeffs.length === 2 && w[1] === v[0] && coeffs[0] === v[0], 'v [r, in], w [out, r], coeffs [r, D] expected');
    const D = c.node.attrs['degree'];
    c.need(typeof D === 'number' && D === coeffs[1], `degree attribute must equal the coefficients' ${coeffs[1]} columns`);
    const basis = c.node.attrs['basis'] ?? 'poly';
    c.need(basis === 'poly' || basis === 'bspline', `basis ${String(basis)} is not trainable`);
    const range = c.init.weights?.['range'];
    c.need(basis === 'poly' || range !== undefined, 'B-spline branches need the range weight (their knots)');
    return flexactLayer(v[1]!, w[0]!, v[0]!, coeffs[1]!, { ...c.init, basis: basis as FlexactBasis, ...(range ? { range } : {}) });
  },
  onnx: flexactOnnx,
  tflite: (_ex, node) => tfliteUnsupported(node, 'flexible-activation layers have no TFLite export yet; export them to ONNX (factorlite export m.flm -o m.onnx)'),
};

/** The decouple method's record: what the registry lists (its runtime kind) and its sizes. */
export const decouple = {
  name: 'decouple' as const,
  kinds: [FLEXACT] as readonly ConverterKind[],
  parseBasis,
  params: flexactParams,
};
