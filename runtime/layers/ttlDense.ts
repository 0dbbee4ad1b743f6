// ttl_dense (Tucker tensor layer): core [r_0..r_{p+q-1}], factor.k [dim_k, r_k]. Everything the runtime knows of the kind.
import { gemm, shapeOf, ttlNet, type Raw } from '../cost/steps.js';
import { checkRange, digits, distinct, need, RebuildError, sumFlops, type Rebuilder, type RebuildWork, type WeightLookup } from '../exec/rebuilder.js';
import { bindFactorDense, rebuildScratchFloats, rebuilderFor } from '../exec/strategy.js';
import { checkModeProducts, modes } from '../format/attrSpec.js';
import type { PlanStrategy } from '../format/planTypes.js';
import { attrInts, numel, type GraphNode } from '../ir.js';
import type { KernelBackend } from '../kernels/backend.js';
import { carve, expectShape, LayerError, type FactorPart, type LayerKind, type Weight, type WeightShape } from './kind.js';
import { denseShape } from './shapeRules.js';

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
 * TTL: W as [m_0..m_{p-1}, n_0..n_{q-1}] = core x_k factor.k. For row (i_0..i_{p-1}), the output
 * modes of the core are contracted with factor.k[i_k, :] one at a time (level k, shared by rows with
 * the same prefix), leaving c [s_0..s_{q-1}]; the row is c expanded on each input mode by its factor.
 */
function ttlRebuilder(node: GraphNode, weight: WeightLookup, kern: KernelBackend): Rebuilder {
  const outModes = attrInts(node, 'out_modes');
  const inModes = attrInts(node, 'in_modes');
  const p = outModes.length;
  const q = inModes.length;
  if (p < 1 || q < 1) throw new RebuildError(node, 'out_modes and in_modes must be non-empty');
  const core = need(node, weight, 'core', p + q);
  const dims = [...outModes, ...inModes];
  const factors: Weight[] = [];
  for (let k = 0; k < p + q; k++) {
    const f = need(node, weight, `factor.${k}`, 2);
    if (f.shape[0] !== dims[k] || f.shape[1] !== core.shape[k]) throw new RebuildError(node, `factor.${k} [${f.shape}] does not match [${dims[k]}, ${core.shape[k]}]`);
    factors.push(f);
  }
  const rOut = core.shape.slice(0, p);
  const sIn = core.shape.slice(p);
  const S = numel(sIn);
  const rows = numel(outModes);
  const cols = numel(inModes);
  const levels: Float32Array[] = [];
  for (let k = 0; k < p; k++) levels.push(new Float32Array(numel(rOut.slice(k + 1)) * S));
  let exp = 0;
  for (let k = 0; k + 1 < q; k++) exp = Math.max(exp, numel(inModes.slice(0, k + 1)) * numel(sIn.slice(k + 1)));
  const bufA = new Float32Array(exp);
  const bufB = new Float32Array(exp);
  const cached: number[] = new Array<number>(p).fill(-1);
  const dig: number[] = new Array<number>(p).fill(0);
  // Input factors transposed ([s_k, n_k]), for the last mode's expansion as one GEMM with an offset.
  const transposed = inModes.map((nk, k) => {
    const sk = sIn[k]!;
    const f = factors[p + k]!.data;
    const t = new Float32Array(sk * nk);
    for (let n = 0; n < nk; n++) for (let r = 0; r < sk; r++) t[r * nk + n] = f[n * sk + r]!;
    kern.retain(t);
    return t;
  });

  function level(k: number): void {
    const src = k === 0 ? core.data : levels[k - 1]!;
    const dst = levels[k]!;
    const rk = rOut[k]!;
    // dst[rest] = sum_r F_k[i, r] src[r, rest]
    kern.gemmNN(factors[k]!.data, src, 1, dst.length, rk, dst, dig[k]! * rk, 0, 0);
  }

  function expand(out: Float32Array, base: number): void {
    // x [pre, s_k, post] -> [pre, n_k, post] with F_k [n_k, s_k]; pre = n_0..n_{k-1}, post = s_{k+1}..
    let src: Float32Array = levels[p - 1]!;
    for (let k = 0; k < q; k++) {
      const pre = numel(inModes.slice(0, k));
      const post = numel(sIn.slice(k + 1));
      const nk = inModes[k]!;
      const sk = sIn[k]!;
      const last = k === q - 1;
      const dst = last ? out : k % 2 === 0 ? bufA : bufB;
      const dOff = last ? base : 0;
      const f = factors[p + k]!.data;
      if (pre === 1) kern.gemmNN(f, src, nk, post, sk, dst, 0, 0, dOff);
      else if (post === 1) kern.gemmNN(src, transposed[k]!, pre, nk, sk, dst, 0, 0, dOff);
      else for (let a = 0; a < pre; a++) kern.gemmNN(f, src, nk, post, sk, dst, 0, a * sk * post, dOff + a * nk * post);
      src = dst;
    }
  }

  function work(r0: number, r1: number): RebuildWork[] {
    const w: RebuildWork[] = [];
    let stride = rows;
    for (let k = 0; k < p; k++) {
      stride /= outModes[k]!;
      const times = distinct(r0, r1, stride);
      w.push({ what: `factor.${k} level`, flops: times * 2 * numel(rOut.slice(k)) * S, calls: times, m: 1 });
    }
    const n = r1 - r0;
    for (let k = 0; k < q; k++) {
      const pre = numel(inModes.slice(0, k));
      const post = numel(sIn.slice(k + 1));
      const calls = pre === 1 || post === 1 ? 1 : pre;
      w.push({ what: `factor.${p + k} expand`, flops: n * 2 * pre * inModes[k]! * sIn[k]! * post, calls: n * calls, m: post === 1 && pre > 1 ? pre : inModes[k]! });
    }
    return w;
  }

  return {
    op: node.op, rows, cols, scratchFloats: levels.reduce((s, l) => s + l.length, 0) + 2 * exp + transposed.reduce((s, t) => s + t.length, 0), work,
    flops: (a, b) => sumFlops(work(a, b)),
    rowsInto(r0, r1, out, off = 0) {
      checkRange(this, r0, r1, out, off, cols);
      for (let o = r0; o < r1; o++) {
        digits(o, outModes, dig);
        let prefix = 0;
        let stale = false;
        for (let k = 0; k < p; k++) {
          prefix = prefix * outModes[k]! + dig[k]!;
          if (stale || cached[k] !== prefix) {
            stale = true;
            level(k);
            cached[k] = prefix;
          }
        }
        expand(out, off + (o - r0) * cols);
      }
    },
  };
}

const factor: FactorPart = {
  ranks: (_node, w) => [...w('core')!],
  contract(node, shapes, B) {
    const hasBias = shapes('bias') !== undefined;
    const outModes = attrInts(node, 'out_modes');
    const inModes = attrInts(node, 'in_modes');
    const p = outModes.length;
    const q = inModes.length;
    const core = shapeOf(node, shapes, 'core', p + q);
    const rOut = core.slice(0, p);
    const sIn = core.slice(p);
    const steps: Raw[] = [];
    const cur = [...inModes];
    for (let k = 0; k < q; k++) {
      const pre = B * numel(cur.slice(0, k));
      const post = numel(cur.slice(k + 1));
      steps.push({ what: `factor.${p + k}`, flops: 2 * pre * sIn[k]! * cur[k]! * post, bytes: 4 * pre * post * (cur[k]! + sIn[k]!), calls: 0, rate: 'scalar' });
      cur[k] = sIn[k]!;
    }
    const R = numel(rOut);
    const S = numel(sIn);
    steps.push(gemm('core', 1, B, R, S, B * S + B * R));
    const oc = [...rOut];
    for (let k = 0; k < p; k++) {
      const pre = B * numel(oc.slice(0, k));
      const post = numel(oc.slice(k + 1));
      steps.push({ what: `factor.${k}`, flops: 2 * pre * outModes[k]! * oc[k]! * post, bytes: 4 * pre * post * (oc[k]! + outModes[k]!), calls: 0, rate: 'scalar' });
      oc[k] = outModes[k]!;
    }
    const out = numel(outModes);
    if (hasBias) steps.push({ what: 'bias', flops: B * out, bytes: 4 * B * out, calls: 0, rate: 'scalar' });
    return { steps, net: ttlNet(B, outModes, inModes, core) };
  },
  rebuild: ttlRebuilder,
};

/**
 * Tucker tensor layer: the input is reshaped to [B, n_0..n_{q-1}], projected on each input mode
 * by its factor (-> ranks s), multiplied by the core unfolded as [R_out, S_in], then expanded on
 * each output mode by its factor.
 */
export const ttlDense: LayerKind = {
  ops: ['ttl_dense'],
  attrs: { out_modes: modes, in_modes: modes },
  checkAttrs: checkModeProducts,
  outputShape: (node, ins) => denseShape(node, ins[0]!, numel(attrInts(node, 'in_modes')), numel(attrInts(node, 'out_modes'))),
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
    const rebuilder = rebuilderFor(node, ctx, factor);
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
    if (strategy?.use === 'rebuild') return rebuildScratchFloats(node, factor, inputShapes, outputShape, weightShape, strategy);
    const core = weightShape('core');
    const x = inputShapes[0];
    if (!core || !x) return 0;
    const outModes = attrInts(node, 'out_modes');
    const inModes = attrInts(node, 'in_modes');
    const [a, b] = buffers(stages(numel(x) / numel(inModes), outModes, inModes, core));
    return a + b;
  },
  mcu: {
    // The firmware's kernel at batch 1 (mirrors core/ops.c): ping-pong buffers of the largest stage.
    scratchFloats(node, ins, _out, w) {
      const outModes = attrInts(node, 'out_modes');
      const inModes = attrInts(node, 'in_modes');
      const p = outModes.length;
      const q = inModes.length;
      const core = w('core');
      const rows = numel(ins[0] ?? []) / numel(inModes);
      let S = 0;
      const cur = [...inModes];
      for (let k = 0; k < q; k++) {
        cur[k] = core[p + k]!;
        S = Math.max(S, rows * numel(cur));
      }
      S = Math.max(S, rows * numel(core.slice(0, p)));
      const oc = core.slice(0, p);
      for (let k = 0; k + 1 < p; k++) {
        oc[k] = outModes[k]!;
        S = Math.max(S, rows * numel(oc));
      }
      return 2 * S;
    },
  },
  factor,
};
