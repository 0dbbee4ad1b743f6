import { attrInts, numel, type GraphNode } from '../ir.js';
import type { PlanStrategy } from '../format/planTypes.js';
import { bindFactorDense, rebuildScratchFloats, rebuilderFor } from './strategy.js';
import { carve, expectShape, LayerError, type LayerKind, type Weight, type WeightShape } from './kind.js';

/**
 * Mode-k product: x [pre, dk, post] -> y [pre, rows, post] with y = M x along mode k,
 * M given as [rows, dk] (transposed = false) or as [dk, rows] (transposed = true). y is overwritten.
 */
function modeProduct(x: Float32Array, pre: number, dk: number, post: number, m: Float32Array, rows: number, transposed: boolean, y: Float32Array): void {
  y.fill(0, 0, pre * rows * post);
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
}

/**
 * The stages of one run, in order: q input-mode projections, the core product, p output-mode
 * expansions. Each writes `floats`; all but the last alternate between two scratch buffers.
 */
interface Stage {
  kind: 'project' | 'core' | 'expand';
  k: number;
  pre: number;
  dk: number;
  post: number;
  rows: number;
  floats: number;
}

function stages(batch: number, outModes: number[], inModes: number[], coreShape: number[]): Stage[] {
  const p = outModes.length;
  const q = inModes.length;
  const rOut = coreShape.slice(0, p);
  const sIn = coreShape.slice(p);
  const list: Stage[] = [];
  const cur = [...inModes];
  for (let k = 0; k < q; k++) {
    const pre = batch * numel(cur.slice(0, k));
    const post = numel(cur.slice(k + 1));
    list.push({ kind: 'project', k, pre, dk: cur[k]!, post, rows: sIn[k]!, floats: pre * sIn[k]! * post });
    cur[k] = sIn[k]!;
  }
  const R = numel(rOut);
  list.push({ kind: 'core', k: 0, pre: batch, dk: numel(sIn), post: 1, rows: R, floats: batch * R });
  const oc = [...rOut];
  for (let k = 0; k < p; k++) {
    const pre = batch * numel(oc.slice(0, k));
    const post = numel(oc.slice(k + 1));
    list.push({ kind: 'expand', k, pre, dk: oc[k]!, post, rows: outModes[k]!, floats: pre * outModes[k]! * post });
    oc[k] = outModes[k]!;
  }
  return list;
}

function buffers(list: Stage[]): [number, number] {
  const b: [number, number] = [0, 0];
  for (let i = 0; i < list.length - 1; i++) b[i % 2] = Math.max(b[i % 2]!, list[i]!.floats);
  return b;
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
        const list = stages(batch, outModes, inModes, core.shape);
        const bufs = carve(node, scratch, ...buffers(list));
        const y = output.data;
        const dst = list.map((s, i) => (i === list.length - 1 ? y : bufs[i % 2]!.subarray(0, s.floats)));
        const src = list.map((_, i) => (i === 0 ? x.data : dst[i - 1]!));
        const mats = list.map((s) => (s.kind === 'project' ? factors[p + s.k]!.data : s.kind === 'expand' ? factors[s.k]!.data : core.data));
        const bias = b?.data;
        return () => {
          for (let i = 0; i < list.length; i++) {
            const s = list[i]!;
            if (s.kind === 'core') ctx.kernels.gemmNT(src[i]!, mats[i]!, s.pre, s.rows, s.dk, undefined, dst[i]!);
            else modeProduct(src[i]!, s.pre, s.dk, s.post, mats[i]!, s.rows, s.kind === 'project', dst[i]!);
          }
          if (bias) for (let i = 0; i < y.length; i++) y[i]! += bias[i % out]!;
        };
      },
    };
  },
  scratchFloats(node: GraphNode, inputShapes: number[][], outputShape: number[], weightShape: WeightShape, strategy?: PlanStrategy) {
    if (strategy?.use === 'rebuild') return rebuildScratchFloats(node, inputShapes, outputShape, weightShape, strategy);
    const core = weightShape('core');
    const x = inputShapes[0];
    if (!core || !x) return 0;
    const outModes = attrInts(node, 'out_modes');
    const inModes = attrInts(node, 'in_modes');
    const [a, b] = buffers(stages(numel(x) / numel(inModes), outModes, inModes, core));
    return a + b;
  },
};
