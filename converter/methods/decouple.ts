// Flexible-activation decoupling (issue 13): a dense → activation → dense pair becomes one flexact
// layer, W g(Vᵀu) + c with r branches that each learn their own activation (runtime/layers/flexact.ts).
// It is not a FactorMethod: it compresses a function of three nodes, fitted on samples of the pair's
// input, not one weight. converter/decoupleModel.ts finds the pairs and rewrites the graph; this
// module holds the method's own parts: the --basis form, its parameter count, and its runtime kind's
// trainable form and ONNX export (registered through methods/index.ts like every other kind).
import { attrNum } from '../../runtime/ir.js';
import { FLEXACT_MAX_DEGREE } from '../../runtime/layers/flexact.js';
import { CompressError } from '../compressError.js';
import { expect2d, fail, linear, type Emitter } from '../export/context.js';
import { flexact as flexactLayer } from '../train/layers/flexact.js';
import { unsupported as tfliteUnsupported } from '../export/tfliteExporter.js';
import type { ConverterKind } from './method.js';

/** A branch basis as --basis gives it; only polynomials exist (B-splines are not written yet). */
export interface DecoupleBasis {
  basis: 'poly';
  degree: number;
}

export const DEFAULT_BASIS = 'poly:3';

/** Reads `poly:D` (D in 1..16); anything else is a BAD_BASIS error naming what is allowed. */
export function parseBasis(spec: string): DecoupleBasis {
  const m = /^([a-z]+):(\d+)$/.exec(spec.trim());
  const allowed = `expected poly:D with D from 1 to ${FLEXACT_MAX_DEGREE}`;
  if (!m) throw new CompressError('BAD_BASIS', `--basis ${spec}: ${allowed}`);
  if (m[1] === 'bspline') throw new CompressError('BAD_BASIS', `--basis ${spec}: B-spline branches are not implemented; ${allowed}`);
  if (m[1] !== 'poly') throw new CompressError('BAD_BASIS', `--basis ${spec}: unknown basis ${m[1]}; ${allowed}`);
  const degree = Number(m[2]);
  if (!(degree >= 1 && degree <= FLEXACT_MAX_DEGREE)) throw new CompressError('BAD_BASIS', `--basis ${spec}: degree ${degree} is out of range; ${allowed}`);
  return { basis: 'poly', degree };
}

/** Parameters of a flexact layer: v, w, coeffs, bias and the stored range [r, 2]. */
export function flexactParams(inputs: number, outputs: number, r: number, degree: number): number {
  return r * (inputs + outputs + degree) + outputs + 2 * r;
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
  if (basis !== 'poly') fail(ctx, `basis ${String(basis)} is not known`);
  const range = ctx.optionalWeight('range');
  if (range) expect2d(ctx, 'range', range, r, 2);
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
  // p(e) = (((c_D e + c_{D-1}) e + ...) e + c_1) e
  let g = ctx.b.node('Mul', [e, vector(`c${D}`, (b) => coeffs.data[b * D + D - 1]!)], `${name}/horner${D}`);
  for (let d = D - 2; d >= 0; d--) {
    g = ctx.b.node('Add', [g, vector(`c${d + 1}`, (b) => coeffs.data[b * D + d]!)], `${name}/add${d + 1}`);
    g = ctx.b.node('Mul', [g, e], `${name}/horner${d + 1}`);
  }
  if (range) {
    const slope = (b: number, at: number): number => {
      let s = 0;
      for (let d = D - 1; d >= 0; d--) s = s * at + (d + 1) * coeffs.data[b * D + d]!;
      return s;
    };
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
    c.need((c.node.attrs['basis'] ?? 'poly') === 'poly', `basis ${String(c.node.attrs['basis'])} is not trainable`);
    const range = c.init.weights?.['range'];
    return flexactLayer(v[1]!, w[0]!, v[0]!, coeffs[1]!, { ...c.init, ...(range ? { range } : {}) });
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
