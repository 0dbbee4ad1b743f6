// flexact as standard ONNX: MatMul by vᵀ, each branch's polynomial by Horner as element-wise
// Mul/Add with [r]-vectors of coefficients (broadcast over the rows), then MatMul by wᵀ (+ bias).
// With a range, z is clamped (Min, Max) before Horner and the tangent's part added:
//   g(z) = p(e) + s_lo d + (s_hi − s_lo) Relu(d),  e = clamp(z), d = z − e, s_lo/s_hi = p′ at the ends.
// It moves to the decouple method's ConverterKind once that method exists (see docs/STRUCTURE.md).
import { attrNum } from '../../runtime/ir.js';
import { expect2d, fail, linear, type Emitter } from './context.js';

export const flexactOnnx: Emitter = (ctx) => {
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
