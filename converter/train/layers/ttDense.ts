import { numel } from '../../../runtime/ir.js';
import { contract } from '../ops/contract.js';
import { addBias } from '../ops/elementwise.js';
import { reshape } from '../ops/shape.js';
import { constant, type Var } from '../tensor.js';
import { leadOf, ParamMaker, type InitOptions, type TrainLayer } from './layer.js';

// The input is contracted through the cores one by one; the dense weight is never formed.
// State before core k: z [B, n_k..n_{d-1}, r_0, m_0..m_{k-1}, r_k]; core k contracts n_k and r_k.
function chain(x: Var, cores: Var[], outModes: number[], inModes: number[], ring: boolean, b: Var | undefined): Var {
  const inF = numel(inModes);
  const lead = leadOf(x, inF, ring ? 'tr_dense' : 'tt_dense');
  const B = x.size / inF;
  const d = cores.length;
  let z = contract(reshape(x, [B, ...inModes]), [1], cores[0]!, [2]);
  for (let k = 1; k < d; k++) z = contract(z, [1, z.shape.length - 1], cores[k]!, [2, 0]);
  // z is [B, r_0, m_0..m_{d-1}, r_d]; a ring closes by the trace over r_0 = r_d.
  if (ring) {
    const r0 = cores[0]!.shape[0]!;
    const eye = new Float32Array(r0 * r0);
    for (let i = 0; i < r0; i++) eye[i * r0 + i] = 1;
    z = contract(z, [1, z.shape.length - 1], constant(eye, [r0, r0]), [0, 1]);
  }
  const y = reshape(z, [...lead, numel(outModes)]);
  return b ? addBias(y, b, -1) : y;
}

function checkModes(outModes: number[], inModes: number[], ranks: number[], want: number): void {
  if (outModes.length < 1 || inModes.length !== outModes.length) throw new Error('train: out_modes and in_modes must have the same length >= 1');
  if (ranks.length !== want) throw new Error(`train: expected ${want} ranks, got ${ranks.length}`);
}

/**
 * TT-matrix dense, runtime kind `tt_dense`: core.k [r_k, m_k, n_k, r_{k+1}], r_0 = r_d = 1.
 * `ranks` are the inner ranks r_1..r_{d-1}.
 */
export function ttDense(outModes: number[], inModes: number[], ranks: number[], opts: InitOptions = {}): TrainLayer {
  const d = outModes.length;
  checkModes(outModes, inModes, ranks, d - 1);
  const r = [1, ...ranks, 1];
  const pm = new ParamMaker(opts);
  // Var(W) = (r_1 .. r_{d-1}) std^(2d) with one std for all cores: std = (target / prod r)^(1/(2d)).
  const std = (pm.target(numel(inModes)) / numel(ranks)) ** (1 / (2 * d));
  const cores = outModes.map((m, k) => pm.normalParam(`core.${k}`, [r[k]!, m, inModes[k]!, r[k + 1]!], std));
  const b = pm.bias(numel(outModes));
  return {
    op: 'tt_dense',
    attrs: { out_modes: [...outModes], in_modes: [...inModes] },
    params: pm.params,
    forward: (x: Var) => chain(x, cores, outModes, inModes, false, b),
  };
}

/**
 * Tensor-ring dense, runtime kind `tr_dense`: core.k [r_k, m_k, n_k, r_{k+1}] with r_d = r_0,
 * W = trace(G_0 .. G_{d-1}). `ranks` are r_0..r_{d-1}.
 */
export function trDense(outModes: number[], inModes: number[], ranks: number[], opts: InitOptions = {}): TrainLayer {
  const d = outModes.length;
  checkModes(outModes, inModes, ranks, d);
  const r = [...ranks, ranks[0]!];
  const pm = new ParamMaker(opts);
  // Var(W) = (r_0 .. r_{d-1}) std^(2d) (the trace sums over r_0 too): std = (target / prod r)^(1/(2d)).
  const std = (pm.target(numel(inModes)) / numel(ranks)) ** (1 / (2 * d));
  const cores = outModes.map((m, k) => pm.normalParam(`core.${k}`, [r[k]!, m, inModes[k]!, r[k + 1]!], std));
  const b = pm.bias(numel(outModes));
  return {
    op: 'tr_dense',
    attrs: { out_modes: [...outModes], in_modes: [...inModes] },
    params: pm.params,
    forward: (x: Var) => chain(x, cores, outModes, inModes, true, b),
  };
}
