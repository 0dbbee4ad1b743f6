import { expectShape, firstInput, LayerError, type LayerKind } from './kind.js';

/** Truncated-SVD dense layer: y = (x v^T) u^T + b, through the rank-r bottleneck. */
export const svdDense: LayerKind = {
  ops: ['svd_dense'],
  prepare(node, ctx) {
    const u = ctx.weight('u');
    const v = ctx.weight('v');
    if (u.shape.length !== 2 || v.shape.length !== 2) throw new LayerError(node, 'u and v must be 2-D');
    const [out, r] = u.shape as [number, number];
    expectShape(node, 'v', v, [r, -1]);
    const inF = v.shape[1]!;
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [out]);
    return (inputs) => {
      const x = firstInput(node, inputs);
      if (x.shape[x.shape.length - 1] !== inF) throw new LayerError(node, `input [${x.shape}] does not end in ${inF}`);
      const rows = x.data.length / inF;
      const t = new Float32Array(rows * r);
      ctx.kernels.gemmNT(x.data, v.data, rows, r, inF, undefined, t);
      const y = new Float32Array(rows * out);
      ctx.kernels.gemmNT(t, u.data, rows, out, r, b?.data, y);
      return { data: y, shape: [...x.shape.slice(0, -1), out] };
    };
  },
};
