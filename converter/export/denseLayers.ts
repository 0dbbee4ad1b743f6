// Plain dense as one ONNX Gemm / MatMul. The dense-shaped factor kinds' emitters live with their
// method (converter/methods/) and use the helpers of export/context.ts.
import { expect2d, linear, type Emitter } from './context.js';

export const dense: Emitter = (ctx) => {
  const w = ctx.weight('weight');
  expect2d(ctx, 'weight', w, -1, -1);
  const rank = ctx.ranks[0]!;
  linear(ctx, ctx.inputs[0]!, rank, w, ctx.optionalWeight('bias'), ctx.node.name, ctx.output);
  return rank;
};
