import { numel } from '../../../runtime/ir.js';
import { contract } from '../ops/contract.js';
import { addBias } from '../ops/elementwise.js';
import { reshape } from '../ops/shape.js';
import type { Var } from '../tensor.js';
import { leadOf, ParamMaker, type InitOptions, type TrainLayer } from './layer.js';

/**
 * Tucker tensor layer, runtime kind `ttl_dense`: W [out, in] seen as [m_0..m_{p-1}, n_0..n_{q-1}]
 * = core [r_0..r_{p+q-1}] x_k factor.k [dim_k, r_k]. `ranks` has p + q entries (outputs first).
 * The input is projected on each input mode, through the core, then expanded on each output mode.
 */
export function ttlDense(outModes: number[], inModes: number[], ranks: number[], opts: InitOptions = {}): TrainLayer {
  const p = outModes.length;
  const q = inModes.length;
  if (p < 1 || q < 1 || ranks.length !== p + q) throw new Error(`train: ttl_dense needs ${p + q} ranks for ${p} out and ${q} in modes`);
  const dims = [...outModes, ...inModes];
  const pm = new ParamMaker(opts);
  // Var(W) = (prod r_k) std^(2(p+q+1)) with one std for core and factors: std = (target / prod r)^(1/(2(p+q+1))).
  const std = (pm.target(numel(inModes)) / numel(ranks)) ** (1 / (2 * (p + q + 1)));
  const core = pm.normalParam('core', ranks, std);
  const factors = dims.map((dim, k) => pm.normalParam(`factor.${k}`, [dim, ranks[k]!], std));
  const out = numel(outModes);
  const b = pm.bias(out);
  const inF = numel(inModes);
  return {
    op: 'ttl_dense',
    attrs: { out_modes: [...outModes], in_modes: [...inModes] },
    params: pm.params,
    forward: (x: Var) => {
      const lead = leadOf(x, inF, 'ttl_dense');
      const B = x.size / inF;
      // [B, n_0..n_{q-1}] -> [B, s_0..s_{q-1}]: each step eats axis 1 and appends its rank.
      let z = reshape(x, [B, ...inModes]);
      for (let k = 0; k < q; k++) z = contract(z, [1], factors[p + k]!, [0]);
      z = contract(z, [...Array(q).keys()].map((i) => i + 1), core, [...Array(q).keys()].map((i) => i + p));
      // [B, r_0..r_{p-1}] -> [B, m_0..m_{p-1}] the same way.
      for (let k = 0; k < p; k++) z = contract(z, [1], factors[k]!, [1]);
      const y = reshape(z, [...lead, out]);
      return b ? addBias(y, b, -1) : y;
    },
  };
}
