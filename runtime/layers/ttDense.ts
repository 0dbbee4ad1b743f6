import { attrInts, numel, type GraphNode } from '../ir.js';
import type { PlanStrategy } from '../format/planTypes.js';
import { bindFactorDense, rebuildScratchFloats, rebuilderFor } from './strategy.js';
import { carve, expectShape, LayerError, type LayerContext, type LayerKind, type PreparedLayer, type Weight, type WeightShape } from './kind.js';

// Input-side contraction through a chain of TT / TR cores; the dense weight is never formed.
// State before step k: Z [P, r_k, n_k, Q], P = batch x m_0..m_{k-1}, Q = n_{k+1}..n_{d-1}.
// Step k: Z'[p, m_k, r_{k+1}, q] = sum_{r_k, n_k} G_k[r_k, m_k, n_k, r_{k+1}] Z[p, r_k, n_k, q].
// Scratch: two buffers the steps alternate between (a tensor train's last step writes the output).

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

/** Per step: P, Q and the floats it writes; from the core shapes [r_k, m_k, n_k, r_{k+1}]. */
function stepSizes(batch: number, coreShapes: number[][], ring: boolean): Array<{ P: number; Q: number; rows: number; cols: number; floats: number }> {
  const d = coreShapes.length;
  const inModes = coreShapes.map((c) => c[2]!);
  let P = batch;
  let Q = numel(inModes) / inModes[0]!;
  const out = [];
  for (let k = 0; k < d; k++) {
    const [ra, m, n, rb] = coreShapes[k] as [number, number, number, number];
    const first = ring && k === 0;
    const rows = first ? n : ra * n;
    const cols = first ? ra * m * rb : m * rb;
    out.push({ P, Q, rows, cols, floats: P * cols * Q });
    P *= (first ? ra : 1) * m;
    Q = k + 1 < d ? Q / inModes[k + 1]! : 1;
  }
  return out;
}

/** Floats of the two alternating buffers: the largest step held in each. */
function buffers(sizes: Array<{ floats: number }>, ring: boolean): [number, number] {
  const held = ring ? sizes.length : sizes.length - 1; // a TT's last step goes to the output
  const b: [number, number] = [0, 0];
  for (let k = 0; k < held; k++) b[k % 2] = Math.max(b[k % 2]!, sizes[k]!.floats);
  return b;
}

function prepareChain(node: GraphNode, ctx: LayerContext, ring: boolean): PreparedLayer {
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
  for (const s of steps) ctx.retain(s.g);
  const out = numel(outModes);
  const inF = numel(inModes);
  const b = ctx.optionalWeight('bias');
  if (b) expectShape(node, 'bias', b, [out]);

  const rebuilder = rebuilderFor(node, ctx);
  return {
    prepareStrategy(strategy) {
      if (strategy.use === 'rebuild') rebuilder();
    },
    bind(inputs, output, scratch, strategy) {
      const { x, rebuild } = bindFactorDense(node, ctx, rebuilder, strategy, inputs, output, scratch, inF, out);
      if (rebuild) return rebuild;
      const batch = x.data.length / inF;
      const sizes = stepSizes(batch, cores.map((c) => c.shape), ring);
      const [na, nb] = buffers(sizes, ring);
      const bufs = carve(node, scratch, na, nb);
      const y = output.data;
      // Views: step k reads `src[k]` and writes `dst[k]`.
      const dst = sizes.map((s, k) => (!ring && k === d - 1 ? y : bufs[k % 2]!.subarray(0, s.floats)));
      const src = sizes.map((_, k) => (k === 0 ? x.data : dst[k - 1]!));
      const bias = b?.data;
      const z = dst[d - 1]!;
      return () => {
        for (let k = 0; k < d; k++) {
          const s = sizes[k]!;
          const g = steps[k]!;
          const a = src[k]!;
          const o = dst[k]!;
          for (let p = 0; p < s.P; p++) ctx.kernels.gemmTN(g.g, a, s.cols, s.Q, s.rows, o, 0, p * s.rows * s.Q, p * s.cols * s.Q);
        }
        // z is [batch, (r_0), m_0..m_{d-1}, r_d]; close the ring by the trace over r_0 = r_d.
        if (ring) {
          y.fill(0);
          for (let bi = 0; bi < batch; bi++) {
            for (let a = 0; a < r0; a++) {
              const base = ((bi * r0 + a) * out) * r0;
              for (let o = 0; o < out; o++) y[bi * out + o]! += z[base + o * r0 + a]!;
            }
          }
        }
        if (bias) for (let i = 0; i < y.length; i++) y[i]! += bias[i % out]!;
      };
    },
  };
}

function chainScratch(node: GraphNode, inputShapes: number[][], outputShape: number[], weightShape: WeightShape, ring: boolean, strategy?: PlanStrategy): number {
  if (strategy?.use === 'rebuild') return rebuildScratchFloats(node, inputShapes, outputShape, weightShape, strategy);
  const d = attrInts(node, 'out_modes').length;
  const shapes: number[][] = [];
  for (let k = 0; k < d; k++) {
    const s = weightShape(`core.${k}`);
    if (!s || s.length !== 4) return 0;
    shapes.push(s);
  }
  const x = inputShapes[0];
  if (!x) return 0;
  const inF = numel(attrInts(node, 'in_modes'));
  const [a, b] = buffers(stepSizes(numel(x) / inF, shapes, ring), ring);
  return a + b;
}

/** TT-matrix dense layer (tensor train, boundary ranks 1). */
export const ttDense: LayerKind = {
  ops: ['tt_dense'],
  prepare: (node, ctx) => prepareChain(node, ctx, false),
  scratchFloats: (node, inputShapes, outputShape, weightShape, strategy) => chainScratch(node, inputShapes, outputShape, weightShape, false, strategy),
};

/** Tensor-ring dense layer: the trace closes the ring over r_0 = r_d. */
export const trDense: LayerKind = {
  ops: ['tr_dense'],
  prepare: (node, ctx) => prepareChain(node, ctx, true),
  scratchFloats: (node, inputShapes, outputShape, weightShape, strategy) => chainScratch(node, inputShapes, outputShape, weightShape, true, strategy),
};
