import { attrInts, numel, type GraphNode } from '../ir.js';
import { expectShape, firstInput, LayerError, type LayerContext, type LayerKind, type Weight } from './kind.js';

// Input-side contraction through a chain of TT / TR cores; the dense weight is never formed.
// State before step k: Z [P, r_k, n_k, Q], P = batch x m_0..m_{k-1}, Q = n_{k+1}..n_{d-1}.
// Step k: Z'[p, m_k, r_{k+1}, q] = sum_{r_k, n_k} G_k[r_k, m_k, n_k, r_{k+1}] Z[p, r_k, n_k, q].

interface Step {
  /** Core rearranged as [(r_k n_k), (m_k r_{k+1})], a permutation of the stored factor. */
  g: Float32Array;
  rows: number;
  cols: number;
}

function rearrange(core: Weight, ringFirst: boolean): Step {
  const [ra, m, n, rb] = core.shape as [number, number, number, number];
  // For the first core of a ring, r_0 joins the output side: [n_0, (r_0 m_0 r_1)].
  const rows = ringFirst ? n : ra * n;
  const cols = ringFirst ? ra * m * rb : m * rb;
  const g = new Float32Array(rows * cols);
  for (let a = 0; a < ra; a++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        for (let b = 0; b < rb; b++) {
          const v = core.data[((a * m + i) * n + j) * rb + b]!;
          if (ringFirst) g[j * cols + (a * m + i) * rb + b] = v;
          else g[(a * n + j) * cols + i * rb + b] = v;
        }
      }
    }
  }
  return { g, rows, cols };
}

function prepareChain(node: GraphNode, ctx: LayerContext, ring: boolean) {
  const outModes = attrInts(node, 'out_modes');
  const inModes = attrInts(node, 'in_modes');
  const d = outModes.length;
  if (d < 1 || inModes.length !== d) throw new LayerError(node, 'out_modes and in_modes must have the same length ≥ 1');
  const cores: Weight[] = [];
  for (let k = 0; k < d; k++) cores.push(ctx.weight(`core.${k}`));
  const ranks: number[] = [];
  for (let k = 0; k < d; k++) {
    const c = cores[k]!;
    if (c.shape.length !== 4) throw new LayerError(node, `core.${k} must be 4-D`);
    if (k > 0 && c.shape[0] !== ranks[k]) throw new LayerError(node, `core.${k} rank ${c.shape[0]} does not match ${ranks[k]}`);
    expectShape(node, `core.${k}`, c, [-1, outModes[k]!, inModes[k]!, -1]);
    if (k === 0) ranks.push(c.shape[0]!);
    ranks.push(c.shape[3]!);
  }
  const r0 = ranks[0]!;
  if (ranks[d] !== r0) throw new LayerError(node, `first and last ranks differ (${r0} vs ${ranks[d]})`);
  if (!ring && r0 !== 1) throw new LayerError(node, 'a tensor train has boundary ranks 1');
  const steps = cores.map((c, k) => rearrange(c, ring && k === 0));
  const out = numel(outModes);
  const inF = numel(inModes);
  const b = ctx.optionalWeight('bias');
  if (b) expectShape(node, 'bias', b, [out]);

  return (inputs: Parameters<ReturnType<LayerKind['prepare']>>[0]) => {
    const x = firstInput(node, inputs);
    if (x.shape[x.shape.length - 1] !== inF) throw new LayerError(node, `input [${x.shape}] does not end in ${inF}`);
    const batch = x.data.length / inF;
    let z: Float32Array = x.data;
    let P = batch;
    let Q = inF / inModes[0]!;
    for (let k = 0; k < d; k++) {
      const s = steps[k]!;
      const next = new Float32Array(P * s.cols * Q);
      for (let p = 0; p < P; p++) ctx.kernels.gemmTN(s.g, z, s.cols, Q, s.rows, next, 0, p * s.rows * Q, p * s.cols * Q);
      z = next;
      // Z' is [P, (m_k r_{k+1}), Q]; fold m_k (and r_0 for a ring's first core) into P.
      P *= (ring && k === 0 ? r0 : 1) * outModes[k]!;
      Q = k + 1 < d ? Q / inModes[k + 1]! : 1;
    }
    // z is [batch, (r_0), m_0..m_{d-1}, r_d]; close the ring by the trace over r_0 = r_d.
    const y = new Float32Array(batch * out);
    if (ring) {
      for (let bi = 0; bi < batch; bi++) {
        for (let a = 0; a < r0; a++) {
          const base = ((bi * r0 + a) * out) * r0;
          for (let o = 0; o < out; o++) y[bi * out + o]! += z[base + o * r0 + a]!;
        }
      }
    } else {
      y.set(z);
    }
    if (b) for (let i = 0; i < y.length; i++) y[i]! += b.data[i % out]!;
    return { data: y, shape: [...x.shape.slice(0, -1), out] };
  };
}

/** TT-matrix dense layer (tensor train, boundary ranks 1). */
export const ttDense: LayerKind = { ops: ['tt_dense'], prepare: (node, ctx) => prepareChain(node, ctx, false) };

/** Tensor-ring dense layer: the trace closes the ring over r_0 = r_d. */
export const trDense: LayerKind = { ops: ['tr_dense'], prepare: (node, ctx) => prepareChain(node, ctx, true) };
