// tt_dense and tr_dense: a chain of cores core.k [r_k, m_k, n_k, r_{k+1}] (a ring when r_0 = r_d > 1).
// Everything the runtime knows of the two kinds.
import { chainNet, colEff, rateOf, shapeOf, type Raw } from '../cost/steps.js';
import { checkRange, digits, distinct, need, RebuildError, sumFlops, type Rebuilder, type RebuildWork, type WeightLookup } from '../exec/rebuilder.js';
import { bindFactorDense, rebuildScratchFloats, rebuilderFor } from '../exec/strategy.js';
import { checkModeProducts, modes, type AttrCheck } from '../format/attrSpec.js';
import type { PlanStrategy } from '../format/planTypes.js';
import { attrInts, numel, type GraphNode } from '../ir.js';
import type { KernelBackend } from '../kernels/backend.js';
import { carve, expectShape, LayerError, type FactorPart, type LayerContext, type LayerKind, type McuPart, type PreparedLayer, type RequiredShape, type Weight, type WeightShape } from './kind.js';
import { denseShape } from './shapeRules.js';

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

  const rebuilder = rebuilderFor(node, ctx, ring ? trFactor : ttFactor);
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
  if (strategy?.use === 'rebuild') return rebuildScratchFloats(node, ring ? trFactor : ttFactor, inputShapes, outputShape, weightShape, strategy);
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

/**
 * TT / TR: row (i_0..i_{d-1}) of W is, for each column (j_0..j_{d-1}),
 * trace(G_0[:, i_0, j_0, :] ... G_{d-1}[:, i_{d-1}, j_{d-1}, :]) (a tensor train has r_0 = r_d = 1).
 * Level k holds L_k[(a, j_0..j_k), b] = (G_0[a, i_0, j_0, :] ... G_k[:, i_k, j_k, b]) for the
 * current prefix (i_0..i_k), one GEMM from level k-1 and the slice i_k of core k; consecutive rows
 * recompute only the levels whose prefix changed. The last core closes the trace into the row.
 */
function chainRebuilder(node: GraphNode, weight: WeightLookup, ring: boolean, kern: KernelBackend): Rebuilder {
  const outModes = attrInts(node, 'out_modes');
  const inModes = attrInts(node, 'in_modes');
  const d = outModes.length;
  if (d < 1 || inModes.length !== d) throw new RebuildError(node, 'out_modes and in_modes must have the same length >= 1');
  const cores: Weight[] = [];
  const ranks: number[] = [];
  for (let k = 0; k < d; k++) {
    const c = need(node, weight, `core.${k}`, 4);
    if (c.shape[1] !== outModes[k] || c.shape[2] !== inModes[k]) throw new RebuildError(node, `core.${k} [${c.shape}] does not match modes ${outModes[k]} x ${inModes[k]}`);
    if (k === 0) ranks.push(c.shape[0]!);
    else if (c.shape[0] !== ranks[k]) throw new RebuildError(node, `core.${k} rank ${c.shape[0]} does not match ${ranks[k]}`);
    ranks.push(c.shape[3]!);
    cores.push(c);
  }
  const R0 = ranks[0]!;
  if (ranks[d] !== R0) throw new RebuildError(node, `first and last ranks differ (${R0} vs ${ranks[d]})`);
  if (!ring && R0 !== 1) throw new RebuildError(node, 'a tensor train has boundary ranks 1');
  const rows = numel(outModes);
  const cols = numel(inModes);
  const N: number[] = [];
  inModes.forEach((n, k) => N.push(n * (k > 0 ? N[k - 1]! : 1)));
  const levels: Float32Array[] = [];
  for (let k = 0; k + 1 < d; k++) levels.push(new Float32Array(R0 * N[k]! * ranks[k + 1]!));
  // Middle cores rearranged by output index: g[k][i] = G_k[:, i, :, :] as [r_k, (n_k r_{k+1})].
  // The last core as [i][a][c][j] = G_{d-1}[c, i, j, a], so that each a is a [r_{d-1}, n] block.
  const rearranged: Float32Array[] = cores.map((c, k) => {
    const [ra, m, n, rb] = c.shape as [number, number, number, number];
    const g = new Float32Array(ra * m * n * rb);
    for (let a = 0; a < ra; a++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let b = 0; b < rb; b++) {
      const v = c.data[((a * m + i) * n + j) * rb + b]!;
      if (k + 1 < d) g[((i * ra + a) * n + j) * rb + b] = v;
      else g[((i * rb + b) * ra + a) * n + j] = v;
    }
    kern.retain(g);
    return g;
  });
  const rowTmp = ring && d > 1 ? new Float32Array(cols / inModes[d - 1]! * inModes[d - 1]!) : new Float32Array(0);
  const cached: number[] = new Array<number>(d).fill(-1);
  const dig: number[] = new Array<number>(d).fill(0);

  function level(k: number): void {
    const [ra, m, n, rb] = cores[k]!.shape as [number, number, number, number];
    const i = dig[k]!;
    const L = levels[k]!;
    if (k === 0) {
      // L_0[(a, j), b] = G_0[a, i, j, b]
      const g = cores[0]!.data;
      for (let a = 0; a < ra; a++) for (let j = 0; j < n; j++) for (let b = 0; b < rb; b++) L[(a * n + j) * rb + b] = g[((a * m + i) * n + j) * rb + b]!;
      return;
    }
    // L_k[(a, J), (j, b)] = sum_c L_{k-1}[(a, J), c] G_k[c, i, j, b]
    kern.gemmNN(levels[k - 1]!, rearranged[k]!, R0 * N[k - 1]!, n * rb, ra, L, 0, i * ra * n * rb, 0);
  }

  function lastInto(out: Float32Array, base: number): void {
    const [ra, m, n, rb] = cores[d - 1]!.shape as [number, number, number, number];
    const i = dig[d - 1]!;
    if (d === 1) {
      const g = cores[0]!.data;
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let a = 0; a < ra; a++) s += g[((a * m + i) * n + j) * rb + a]!;
        out[base + j] = s;
      }
      return;
    }
    const P = levels[d - 2]!;
    const Np = N[d - 2]!;
    const gl = rearranged[d - 1]!;
    // row[(J, j)] = sum_a sum_c P[(a, J), c] G[c, i, j, a]
    if (R0 === 1) {
      kern.gemmNN(P, gl, Np, n, ra, out, 0, i * ra * n, base);
      return;
    }
    out.fill(0, base, base + cols);
    for (let a = 0; a < R0; a++) {
      kern.gemmNN(P, gl, Np, n, ra, rowTmp, a * Np * ra, (i * R0 + a) * ra * n, 0);
      for (let c = 0; c < cols; c++) out[base + c]! += rowTmp[c]!;
    }
  }

  function work(r0: number, r1: number): RebuildWork[] {
    const w: RebuildWork[] = [];
    let stride = rows;
    for (let k = 0; k < d; k++) {
      stride /= outModes[k]!;
      const times = distinct(r0, r1, stride);
      if (k === 0 && d > 1) {
        w.push({ what: 'core.0 slice', flops: 0, calls: 0, m: 0 });
      } else if (k < d - 1) {
        w.push({ what: `level ${k}`, flops: times * 2 * R0 * N[k - 1]! * ranks[k]! * inModes[k]! * ranks[k + 1]!, calls: times, m: R0 * N[k - 1]! });
      } else if (d === 1) {
        w.push({ what: 'trace', flops: times * R0 * cols, calls: 0, m: 0 });
      } else {
        w.push({ what: `core.${k} and trace`, flops: times * 2 * R0 * N[k - 1]! * ranks[k]! * inModes[k]!, calls: times * R0, m: N[k - 1]! });
        if (R0 > 1) w.push({ what: 'ring sum', flops: times * R0 * cols, calls: 0, m: 0 });
      }
    }
    return w;
  }

  return {
    op: node.op, rows, cols, scratchFloats: levels.reduce((s, l) => s + l.length, 0) + rowTmp.length, work,
    flops: (a, b) => sumFlops(work(a, b)),
    rowsInto(r0, r1, out, off = 0) {
      checkRange(this, r0, r1, out, off, cols);
      for (let o = r0; o < r1; o++) {
        digits(o, outModes, dig);
        let prefix = 0;
        let stale = false;
        for (let k = 0; k + 1 < d; k++) {
          prefix = prefix * outModes[k]! + dig[k]!;
          if (stale || cached[k] !== prefix) {
            stale = true;
            level(k);
            cached[k] = prefix;
          }
        }
        lastInto(out, off + (o - r0) * cols);
      }
    },
  };
}

/** Ranks as stored: r_0, then each core's right rank. */
function chainRanks(node: GraphNode, w: WeightShape): number[] {
  const cores = Object.keys(node.weights).filter((r) => r.startsWith('core.')).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  return cores.length ? [w(cores[0]!)![0]!, ...cores.map((c) => w(c)![3]!)] : [];
}

/** The contraction as prepareChain runs it: one gemmTN per p and core, then the ring's trace and the bias. */
function chainContract(node: GraphNode, shapes: (role: string) => readonly number[] | undefined, B: number, ring: boolean) {
  const hasBias = shapes('bias') !== undefined;
  const outModes = attrInts(node, 'out_modes');
  const inModes = attrInts(node, 'in_modes');
  const d = outModes.length;
  const ranks: number[] = [];
  for (let k = 0; k < d; k++) {
    const c = shapeOf(node, shapes, `core.${k}`, 4);
    if (k === 0) ranks.push(c[0]!);
    ranks.push(c[3]!);
  }
  const R0 = ranks[0]!;
  const out = numel(outModes);
  const inF = numel(inModes);
  const steps: Raw[] = [];
  let P = B;
  let Q = inF / inModes[0]!;
  for (let k = 0; k < d; k++) {
    const first = ring && k === 0;
    const rows = first ? inModes[k]! : ranks[k]! * inModes[k]!;
    const cols = first ? R0 * outModes[k]! * ranks[k + 1]! : outModes[k]! * ranks[k + 1]!;
    // One gemmTN per p ([cols x Q] from the retained, rearranged core and a slice of the state).
    steps.push({ what: `core.${k}`, flops: 2 * P * rows * cols * Q, bytes: 4 * P * (rows * Q + cols * Q), calls: P, rate: rateOf(cols), eff: colEff(cols, Q) });
    P *= (first ? R0 : 1) * outModes[k]!;
    Q = k + 1 < d ? Q / inModes[k + 1]! : 1;
  }
  if (ring) steps.push({ what: 'trace', flops: B * R0 * out, bytes: 4 * B * R0 * out, calls: 0, rate: 'scalar' });
  if (hasBias) steps.push({ what: 'bias', flops: B * out, bytes: 4 * B * out, calls: 0, rate: 'scalar' });
  return { steps, net: chainNet(B, outModes, inModes, ranks) };
}

const ttFactor: FactorPart = {
  ranks: chainRanks,
  contract: (node, shapes, B) => chainContract(node, shapes, B, false),
  rebuild: (node, weight, kernels) => chainRebuilder(node, weight, false, kernels),
};

const trFactor: FactorPart = {
  ranks: chainRanks,
  contract: (node, shapes, B) => chainContract(node, shapes, B, true),
  rebuild: (node, weight, kernels) => chainRebuilder(node, weight, true, kernels),
};

/** Scratch of the firmware's chain kernel at batch 1 (mirrors core/ops.c): ping-pong buffers of the largest intermediate. */
function mcuChainScratch(node: GraphNode, ins: number[][], w: RequiredShape): number {
  const ring = node.op === 'tr_dense';
  const outModes = attrInts(node, 'out_modes');
  const inModes = attrInts(node, 'in_modes');
  const d = outModes.length;
  const inF = numel(inModes);
  const rows = numel(ins[0] ?? []) / inF;
  const r0 = w('core.0')[0]!;
  let P = rows;
  let Q = inF / inModes[0]!;
  let S = 0;
  let count = 0;
  for (let k = 0; k < d; k++) {
    const c = w(`core.${k}`);
    const rf = ring && k === 0;
    const cols = rf ? c[0]! * c[1]! * c[3]! : c[1]! * c[3]!;
    const size = P * cols * Q;
    // every step but a tensor train's last writes an intermediate (ping-pong buffers)
    if (ring || k + 1 < d) {
      S = Math.max(S, size);
      count++;
    }
    P *= (rf ? r0 : 1) * outModes[k]!;
    Q = k + 1 < d ? Q / inModes[k + 1]! : 1;
  }
  return Math.min(count, 2) * S;
}

const chainMcu: McuPart = { scratchFloats: (node, ins, _out, w) => mcuChainScratch(node, ins, w) };

const chainAttrs = { out_modes: modes, in_modes: modes };
const chainCheck: AttrCheck = (a, fail) => {
  if ((a['out_modes'] as number[]).length !== (a['in_modes'] as number[]).length) fail('FLM_ATTR_LENGTH', 'out_modes and in_modes must have as many modes');
  checkModeProducts(a, fail);
};

function chainShape(node: GraphNode, ins: number[][]): number[] {
  return denseShape(node, ins[0]!, numel(attrInts(node, 'in_modes')), numel(attrInts(node, 'out_modes')));
}

/** TT-matrix dense layer (tensor train, boundary ranks 1). */
export const ttDense: LayerKind = {
  ops: ['tt_dense'],
  attrs: chainAttrs,
  checkAttrs: chainCheck,
  outputShape: chainShape,
  mcu: chainMcu,
  factor: ttFactor,
  prepare: (node, ctx) => prepareChain(node, ctx, false),
  scratchFloats: (node, inputShapes, outputShape, weightShape, strategy) => chainScratch(node, inputShapes, outputShape, weightShape, false, strategy),
};

/** Tensor-ring dense layer: the trace closes the ring over r_0 = r_d. */
export const trDense: LayerKind = {
  ops: ['tr_dense'],
  attrs: chainAttrs,
  checkAttrs: chainCheck,
  outputShape: chainShape,
  mcu: chainMcu,
  factor: trFactor,
  prepare: (node, ctx) => prepareChain(node, ctx, true),
  scratchFloats: (node, inputShapes, outputShape, weightShape, strategy) => chainScratch(node, inputShapes, outputShape, weightShape, true, strategy),
};
