import { attrInts, numel } from '../ir.js';
import { expectShape, firstInput, LayerError, type LayerKind, type Weight } from './kind.js';

/**
 * Mode-k product: x [pre, dk, post] -> [pre, rows, post] with y = M x along mode k,
 * M given as [rows, dk] (transposed = false) or as [dk, rows] (transposed = true).
 */
function modeProduct(x: Float32Array, pre: number, dk: number, post: number, m: Float32Array, rows: number, transposed: boolean): Float32Array {
  const y = new Float32Array(pre * rows * post);
  for (let a = 0; a < pre; a++) {
    const xo = a * dk * post;
    const yo = a * rows * post;
    for (let r = 0; r < rows; r++) {
      const yr = yo + r * post;
      for (let c = 0; c < dk; c++) {
        const mv = transposed ? m[c * rows + r]! : m[r * dk + c]!;
        if (mv === 0) continue;
        const xr = xo + c * post;
        for (let q = 0; q < post; q++) y[yr + q]! += mv * x[xr + q]!;
      }
    }
  }
  return y;
}

/**
 * Tucker tensor layer: the input is reshaped to [B, n_0..n_{q-1}], projected on each input mode
 * by its factor (-> ranks s), multiplied by the core unfolded as [R_out, S_in], then expanded on
 * each output mode by its factor.
 */
export const ttlDense: LayerKind = {
  ops: ['ttl_dense'],
  prepare(node, ctx) {
    const outModes = attrInts(node, 'out_modes');
    const inModes = attrInts(node, 'in_modes');
    const p = outModes.length;
    const q = inModes.length;
    const core = ctx.weight('core');
    if (core.shape.length !== p + q) throw new LayerError(node, `core must have ${p + q} modes, got [${core.shape}]`);
    const factors: Weight[] = [];
    const dims = [...outModes, ...inModes];
    for (let k = 0; k < p + q; k++) {
      const f = ctx.weight(`factor.${k}`);
      expectShape(node, `factor.${k}`, f, [dims[k]!, core.shape[k]!]);
      factors.push(f);
    }
    const rOut = core.shape.slice(0, p);
    const sIn = core.shape.slice(p);
    const R = numel(rOut);
    const S = numel(sIn);
    const out = numel(outModes);
    const inF = numel(inModes);
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [out]);
    return (inputs) => {
      const x = firstInput(node, inputs);
      if (x.shape[x.shape.length - 1] !== inF) throw new LayerError(node, `input [${x.shape}] does not end in ${inF}`);
      const batch = x.data.length / inF;
      // Project input modes: dims go n_k -> s_k one at a time.
      let z: Float32Array = x.data;
      const cur = [...inModes];
      for (let k = 0; k < q; k++) {
        const pre = batch * numel(cur.slice(0, k));
        const post = numel(cur.slice(k + 1));
        z = modeProduct(z, pre, cur[k]!, post, factors[p + k]!.data, sIn[k]!, true);
        cur[k] = sIn[k]!;
      }
      // Core: t[B, R] = z[B, S] core[R, S]^T.
      const t = new Float32Array(batch * R);
      ctx.kernels.gemmNT(z, core.data, batch, R, S, undefined, t);
      // Expand output modes: r_k -> m_k.
      let y: Float32Array = t;
      const oc = [...rOut];
      for (let k = 0; k < p; k++) {
        const pre = batch * numel(oc.slice(0, k));
        const post = numel(oc.slice(k + 1));
        y = modeProduct(y, pre, oc[k]!, post, factors[k]!.data, outModes[k]!, false);
        oc[k] = outModes[k]!;
      }
      if (b) for (let i = 0; i < y.length; i++) y[i]! += b.data[i % out]!;
      return { data: y, shape: [...x.shape.slice(0, -1), out] };
    };
  },
};
