// flexact as standard ONNX: MatMul by vᵀ, each branch's polynomial by Horner as element-wise
// Mul/Add with [r]-vectors of coefficients (broadcast over the rows), then MatMul by wᵀ (+ bias).
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
  const rank = ctx.ranks[0]!;
  const z = linear(ctx, ctx.inputs[0]!, rank, v, undefined, `${name}/v`);
  const column = (d: number): string => {
    const c = new Float32Array(r);
    for (let b = 0; b < r; b++) c[b] = coeffs.data[b * D + d]!;
    return ctx.b.float(`${name}/c${d + 1}`, [r], c);
  };
  // g = (((c_D z + c_{D-1}) z + ...) z + c_1) z
  let g = ctx.b.node('Mul', [z, column(D - 1)], `${name}/horner${D}`);
  for (let d = D - 2; d >= 0; d--) {
    g = ctx.b.node('Add', [g, column(d)], `${name}/add${d + 1}`);
    g = ctx.b.node('Mul', [g, z], `${name}/horner${d + 1}`);
  }
  linear(ctx, g, rank, w, ctx.optionalWeight('bias'), `${name}/w`, ctx.output);
  return rank;
};
