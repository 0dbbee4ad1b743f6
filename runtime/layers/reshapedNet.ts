// The reshaped tensorial kinds (Su, Huang et al., "Tensorial Neural Networks"): rcp, rtk, rtt and
// rtr, each as a dense kind and a conv2d kind (8 records from one factory). A kernel W [T, S, kh, kw]
// with T = prod t_modes and S = prod s_modes (row-major over the modes; a dense layer has
// kh = kw = 1) is stored as factors only:
//   rcp  factor.0 [R, kh, kw], factor.m [R, T_m, S_m]
//   rtk  factor.0 [R0, kh, kw], factor.m [R_m, T_m, S_m], core [R0, R1, .., RM]
//   rtt  factor.1 [R1, T1, S1], factor.m [R_{m-1}, R_m, T_m, S_m] (m >= 2), factor.0 [RM, kh, kw]
//   rtr  factor.m [R_{m-1}, R_m, T_m, S_m], factor.0 [RM, R0, kh, kw] (the ring closes at R0)
// Firmware: core/ops/reshaped.c forms W one row (output channel) at a time and applies it.
// Contract: the input (dense: x [B, s_1..s_M]; conv: each sample's im2col columns [s_1..s_M, (kh kw), P])
// is contracted with the factors pairwise in the cheapest left-deep order (runtime/exec/tensorNet.ts);
// W is never formed. Rebuild: row t of W is the network of the factors sliced at t's digits.
import { type Net, type Raw, type ShapeLookup } from '../cost/steps.js';
import { checkRange, digits, RebuildError, sumFlops, type Rebuilder, type WeightLookup } from '../exec/rebuilder.js';
import { bindFactorDense, bindRebuild, rebuildScratchFloats, rebuilderFor } from '../exec/strategy.js';
import { bindNet, planNet, type NetPlan } from '../exec/tensorNet.js';
import { conv as convAttrSpec, modes, type AttrCheck } from '../format/attrSpec.js';
import { attrInts, numel, type GraphNode, type OpName } from '../ir.js';
import type { KernelBackend } from '../kernels/backend.js';
import { conv2dGeometry, im2col, type Im2colGeometry } from '../kernels/reference.js';
import { checkNchw, convGeometry, convParams } from './convAttrs.js';
import { carve, checkOutput, firstInput, LayerError, type FactorPart, type LayerKind, type WeightShape } from './kind.js';
import { convShape, denseShape } from './shapeRules.js';

export type ReshapedMethod = 'rcp' | 'rtk' | 'rtt' | 'rtr';

/** A factor of the network: its weight role and its legs (k stands for the last two axes [kh, kw]). */
export interface NetFactor {
  role: string;
  legs: string[];
}

/** The roles of a method's factors with M mode pairs, and each factor's legs. */
export function reshapedFactors(method: ReshapedMethod, M: number): NetFactor[] {
  const t = (m: number) => `t${m}`;
  const s = (m: number) => `s${m}`;
  const out: NetFactor[] = [];
  for (let m = 1; m <= M; m++) {
    const rank = method === 'rcp' ? ['r'] : method === 'rtk' ? [`r${m}`] : method === 'rtt' && m === 1 ? ['r1'] : [`r${m - 1}`, `r${m}`];
    out.push({ role: `factor.${m}`, legs: [...rank, t(m), s(m)] });
  }
  const zero = method === 'rcp' ? ['r'] : method === 'rtk' ? ['r0'] : method === 'rtt' ? [`r${M}`] : [`r${M}`, 'r0'];
  out.unshift({ role: 'factor.0', legs: [...zero, 'k'] });
  if (method === 'rtk') out.push({ role: 'core', legs: Array.from({ length: M + 1 }, (_, m) => `r${m}`) });
  return out;
}

/** Leg sizes read off the factor shapes, checked against the modes and each other. */
export function reshapedSizes(
  method: ReshapedMethod, tModes: readonly number[], sModes: readonly number[], shape: (role: string) => readonly number[] | undefined,
  fail: (msg: string) => never,
): { sizes: Map<string, number>; factors: NetFactor[]; kernel: [number, number] } {
  const M = tModes.length;
  if (M < 1 || sModes.length !== M) fail('t_modes and s_modes must have the same length ≥ 1');
  const sizes = new Map<string, number>();
  tModes.forEach((v, m) => sizes.set(`t${m + 1}`, v));
  sModes.forEach((v, m) => sizes.set(`s${m + 1}`, v));
  const factors = reshapedFactors(method, M);
  let kernel: [number, number] = [1, 1];
  for (const f of factors) {
    const sh = shape(f.role);
    if (!sh) fail(`missing weight ${f.role}`);
    const isZero = f.role === 'factor.0';
    const want = f.legs.length + (isZero ? 1 : 0);
    if (sh.length !== want) fail(`${f.role} has shape [${sh}], expected ${want}-D`);
    if (isZero) kernel = [sh[want - 2]!, sh[want - 1]!];
    f.legs.forEach((l, i) => {
      const v = l === 'k' ? sh[i]! * sh[i + 1]! : sh[i]!;
      if (!(v >= 1)) fail(`${f.role} has an empty axis`);
      const had = sizes.get(l);
      if (had !== undefined && had !== v) fail(`${f.role} has ${l} = ${v}, expected ${had}`);
      sizes.set(l, v);
    });
  }
  return { sizes, factors, kernel };
}

/** The ranks as stored: rcp [R]; rtk [R0..RM] (the core); rtt [R1..RM]; rtr [R0..RM]. */
export function reshapedRanks(method: ReshapedMethod, M: number, w: (role: string) => readonly number[] | undefined): number[] {
  const f = (m: number) => w(`factor.${m}`);
  if (method === 'rcp') return [f(0)?.[0] ?? 0];
  if (method === 'rtk') return [...(w('core') ?? [])];
  if (method === 'rtt') return Array.from({ length: M }, (_, i) => (i === 0 ? f(1)?.[0] : f(i + 1)?.[1]) ?? 0);
  return [f(0)?.[1] ?? 0, ...Array.from({ length: M }, (_, i) => f(i + 1)?.[1] ?? 0)];
}

const tLegs = (M: number) => Array.from({ length: M }, (_, m) => `t${m + 1}`);
const sLegs = (M: number) => Array.from({ length: M }, (_, m) => `s${m + 1}`);

/**
 * The network of the layer for P columns: x has legs [p, s.., k] (dense, k = 1) or [s.., k, p]
 * (a conv sample's im2col columns); the output [p, t..] (dense) or [t.., p] (conv).
 */
function layerNet(sizes: Map<string, number>, factors: NetFactor[], M: number, P: number, conv: boolean) {
  const all = new Map(sizes);
  all.set('p', P);
  const x = conv ? [...sLegs(M), 'k', 'p'] : ['p', ...sLegs(M), 'k'];
  const open = conv ? [...tLegs(M), 'p'] : ['p', ...tLegs(M)];
  return { sizes: all, tensors: [x, ...factors.map((f) => f.legs)], open, fixedFirst: true };
}

function modesOf(node: GraphNode): { tModes: number[]; sModes: number[] } {
  return { tModes: attrInts(node, 't_modes'), sModes: attrInts(node, 's_modes') };
}

function methodOfOp(op: OpName): ReshapedMethod {
  return op.slice(0, 3) as ReshapedMethod;
}

/** Per-row rebuild: row t of W [T, S kh kw] is the network of the factors sliced at t's digits. */
function reshapedRebuilder(node: GraphNode, weight: WeightLookup, kern: KernelBackend): Rebuilder {
  const method = methodOfOp(node.op);
  const { tModes, sModes } = modesOf(node);
  const M = tModes.length;
  const { sizes, factors, kernel } = reshapedSizes(method, tModes, sModes, (r) => weight(r)?.shape, (msg) => {
    throw new RebuildError(node, msg);
  });
  const data = factors.map((f) => weight(f.role)!.data);
  // Slices: a factor with leg t_m loses it; the slice of digit d starts at its offset d * stride.
  const sliced = factors.map((f) => {
    const at = f.legs.findIndex((l) => l.startsWith('t'));
    if (at < 0) return { legs: f.legs, m: -1, outer: 1, dim: 1, inner: 0 };
    const legSize = (ls: string[]) => ls.reduce((a, l) => a * sizes.get(l)!, 1);
    return { legs: f.legs.filter((_, i) => i !== at), m: Number(f.legs[at]!.slice(1)) - 1, outer: legSize(f.legs.slice(0, at)), dim: sizes.get(f.legs[at]!)!, inner: legSize(f.legs.slice(at + 1)) };
  });
  const plan = planNet({ sizes, tensors: sliced.map((s) => s.legs), open: [...sLegs(M), 'k'], fixedFirst: false });
  const bufs = sliced.map((s, i) => (s.m < 0 ? data[i]! : new Float32Array(s.outer * s.inner)));
  const scratch = new Float32Array(plan.scratch);
  // Not retained: the slices and the scratch change every row (a backend's retained copy would not).
  const run = bindNet(plan, scratch, kern);
  const offsets = bufs.map(() => 0);
  const rows = numel(tModes);
  const cols = numel(sModes) * kernel[0] * kernel[1];
  const dig = new Array<number>(M).fill(0);
  const sliceFloats = sliced.reduce((a, s) => a + (s.m < 0 ? 0 : s.outer * s.inner), 0);
  const work = (r0: number, r1: number) => [
    { what: 'factor slices', flops: 0, calls: 0, m: 0 },
    { what: `network (${plan.order.map((i) => factors[i]!.role).join(' ')})`, flops: (r1 - r0) * plan.flops, calls: (r1 - r0) * plan.steps.length, m: 1 },
  ];
  return {
    op: node.op, rows, cols, scratchFloats: plan.scratch + sliceFloats, work,
    flops: (a, b) => sumFlops(work(a, b)),
    rowsInto(r0, r1, out, off = 0) {
      checkRange(this, r0, r1, out, off, cols);
      for (let o = r0; o < r1; o++) {
        digits(o, tModes, dig);
        for (let i = 0; i < sliced.length; i++) {
          const s = sliced[i]!;
          if (s.m < 0) continue;
          const src = data[i]!;
          const dst = bufs[i]!;
          const d = dig[s.m]!;
          for (let a = 0; a < s.outer; a++) {
            const from = (a * s.dim + d) * s.inner;
            for (let j = 0; j < s.inner; j++) dst[a * s.inner + j] = src[from + j]!;
          }
        }
        run(bufs, offsets, out, off + (o - r0) * cols);
      }
    },
  };
}

function factorPart(method: ReshapedMethod, conv: boolean): FactorPart {
  return {
    ranks: (node, w) => reshapedRanks(method, attrInts(node, 't_modes').length, w),
    ...(conv ? {
      kernel(w: ShapeLookup): [number, number] | undefined {
        const z = w('factor.0');
        return z && z.length >= 2 ? [z[z.length - 2]!, z[z.length - 1]!] : undefined;
      },
    } : {}),
    contract(node, shapes, B, sample) {
      const { tModes, sModes } = modesOf(node);
      const M = tModes.length;
      const { sizes, factors, kernel } = reshapedSizes(method, tModes, sModes, shapes, (msg) => {
        throw new LayerError(node, msg);
      });
      let P = B;
      let samples = 1;
      const steps: Raw[] = [];
      if (conv) {
        const [, H, W] = sample as [number, number, number];
        const { OH, OW } = convGeometry(node, H, W, kernel[0], kernel[1]);
        P = OH * OW;
        samples = B;
        const K = numel(sModes) * kernel[0] * kernel[1];
        steps.push({ what: 'im2col', flops: 0, bytes: 0, gather: 4 * B * K * P, calls: 0, rate: 'scalar' });
      }
      const input = layerNet(sizes, factors, M, P, conv);
      const plan = planNet(input);
      plan.steps.forEach((s) => {
        const floats = s.a.size + s.b.size + s.batch * s.M * s.N;
        steps.push({ what: factors[s.tensor - 1]!.role, flops: samples * 2 * s.batch * s.M * s.N * s.K, bytes: samples * 4 * (2 * floats), calls: samples * s.batch, rate: s.M >= 4 ? 'gemm' : 'gemv', eff: Math.min(1, s.N / 8) });
      });
      if (shapes('bias')) steps.push({ what: 'bias', flops: B * numel(tModes) * (conv ? P : 1), bytes: 0, calls: 0, rate: 'scalar' });
      const netSizes = new Map(input.sizes);
      if (conv) netSizes.set('p', B * P); // the cost model prices the whole batch at once
      const others = factors.map((f) => ({ name: f.role, legs: f.legs }));
      const net: Net = {
        sizes: netSizes, open: new Set(input.open), x: { name: 'x', legs: input.tensors[0]! as string[] }, others,
        layer: plan.order.slice(1).map((i) => factors[i - 1]!.role),
      };
      return { steps, net };
    },
    rebuild: reshapedRebuilder,
  };
}

const modeAttrs = { t_modes: modes, s_modes: modes };
const checkModes: AttrCheck = (a, fail) => {
  if ((a['t_modes'] as number[]).length !== (a['s_modes'] as number[]).length) fail('FLM_ATTR_LENGTH', 't_modes and s_modes must have as many modes');
  for (const key of ['t_modes', 's_modes']) {
    let p = 1;
    for (const m of a[key] as number[]) p *= m;
    if (p > 2 ** 31 - 1) fail('FLM_ATTR_RANGE', `the product of ${key} exceeds 2^31 - 1`);
  }
};

interface Prepared {
  sizes: Map<string, number>;
  factors: NetFactor[];
  kernel: [number, number];
  data: Float32Array[];
  tModes: number[];
  sModes: number[];
  bias?: Float32Array;
}

function prepareCommon(node: GraphNode, method: ReshapedMethod, w: (role: string) => { shape: readonly number[]; data: Float32Array } | undefined, conv: boolean): Prepared {
  const { tModes, sModes } = modesOf(node);
  const { sizes, factors, kernel } = reshapedSizes(method, tModes, sModes, (r) => w(r)?.shape, (msg) => {
    throw new LayerError(node, msg);
  });
  if (!conv && (kernel[0] !== 1 || kernel[1] !== 1)) throw new LayerError(node, `a dense kind has factor.0 ending in [1, 1], got [${kernel}]`);
  const b = w('bias');
  const T = numel(tModes);
  if (b && (b.shape.length !== 1 || b.shape[0] !== T)) throw new LayerError(node, `bias has shape [${b.shape}], expected [${T}]`);
  return { sizes, factors, kernel, data: factors.map((f) => w(f.role)!.data), tModes, sModes, ...(b ? { bias: b.data } : {}) };
}

/** Conv sample geometry (group 1) for an input shape. */
function convSample(node: GraphNode, xs: readonly number[], pr: Prepared) {
  const p = convParams(node);
  const S = numel(pr.sModes);
  const g = conv2dGeometry(xs, [numel(pr.tModes), S, pr.kernel[0], pr.kernel[1]], p);
  const [, , OH, OW] = g.shape as [number, number, number, number];
  const q: Im2colGeometry = {
    C: S, H: xs[2]!, W: xs[3]!, Cg: S, KH: pr.kernel[0], KW: pr.kernel[1], OH, OW,
    sh: p.strides[0], sw: p.strides[1], pt: p.pads[0], pl: p.pads[1], dh: p.dilations[0], dw: p.dilations[1],
  };
  return { p, OH, OW, P: OH * OW, K: S * pr.kernel[0] * pr.kernel[1], q };
}

function netScratch(node: GraphNode, method: ReshapedMethod, conv: boolean, x: readonly number[], w: WeightShape): number {
  const { tModes, sModes } = modesOf(node);
  const M = tModes.length;
  const { sizes, factors, kernel } = reshapedSizes(method, tModes, sModes, w, (msg) => {
    throw new LayerError(node, msg);
  });
  if (!conv) return planNet(layerNet(sizes, factors, M, numel(x) / numel(sModes), false)).scratch;
  const { OH, OW } = convGeometry(node, x[2]!, x[3]!, kernel[0], kernel[1]);
  const P = OH * OW;
  return numel(sModes) * kernel[0] * kernel[1] * P + planNet(layerNet(sizes, factors, M, P, true)).scratch;
}

function reshapedKind(method: ReshapedMethod, conv: boolean): LayerKind {
  const op = `${method}_${conv ? 'conv2d' : 'dense'}` as OpName;
  const factor = factorPart(method, conv);
  return {
    ops: [op],
    attrs: conv ? { ...modeAttrs, ...convAttrSpec } : modeAttrs,
    checkAttrs: checkModes,
    outputShape(node, ins, w) {
      const { tModes, sModes } = modesOf(node);
      const z = w('factor.0');
      return conv ? convShape(node, ins[0]!, numel(tModes), z[z.length - 2]!, z[z.length - 1]!) : denseShape(node, ins[0]!, numel(sModes), numel(tModes));
    },
    prepare(node, ctx) {
      const pr = prepareCommon(node, method, (r) => ctx.optionalWeight(r), conv);
      if (conv && convParams(node).group !== 1) throw new LayerError(node, 'a grouped conv cannot be a reshaped tensor network');
      const M = pr.tModes.length;
      const T = numel(pr.tModes);
      const S = numel(pr.sModes);
      const rebuilder = rebuilderFor(node, ctx, factor);
      return {
        prepareStrategy(strategy) {
          if (strategy.use === 'rebuild') rebuilder();
        },
        bind(inputs, output, scratch, strategy) {
          const data = [new Float32Array(0), ...pr.data];
          const offsets = data.map(() => 0);
          const bias = pr.bias;
          if (!conv) {
            const { x, rebuild } = bindFactorDense(node, ctx, rebuilder, strategy, inputs, output, scratch, S, T);
            if (rebuild) return rebuild;
            const B = x.data.length / S;
            const plan: NetPlan = planNet(layerNet(pr.sizes, pr.factors, M, B, false));
            const run = bindNet(plan, carve(node, scratch, plan.scratch)[0]!, ctx.kernels);
            data[0] = x.data;
            const y = output.data;
            return () => {
              run(data, offsets, y, 0);
              if (bias) for (let i = 0; i < y.length; i++) y[i]! += bias[i % T]!;
            };
          }
          const x = firstInput(node, inputs);
          checkNchw(node, x.shape, S);
          const g = convSample(node, x.shape, pr);
          if (!(g.OH >= 1 && g.OW >= 1)) throw new LayerError(node, `output would be empty for input [${x.shape}]`);
          const N = x.shape[0]!;
          checkOutput(node, output, [N, T, g.OH, g.OW]);
          const rebuild = bindRebuild(node, ctx, rebuilder, pr.kernel, strategy, x, output, scratch);
          if (rebuild) return rebuild;
          const plan = planNet(layerNet(pr.sizes, pr.factors, M, g.P, true));
          const [cols, work] = carve(node, scratch, g.K * g.P, plan.scratch) as [Float32Array, Float32Array];
          const run = bindNet(plan, work, ctx.kernels);
          data[0] = cols;
          const xd = x.data;
          const y = output.data;
          return () => {
            for (let n = 0; n < N; n++) {
              im2col(xd, n, 0, g.q, cols);
              run(data, offsets, y, n * T * g.P);
            }
            if (bias) {
              for (let n = 0; n < N; n++) {
                for (let o = 0; o < T; o++) {
                  const base = (n * T + o) * g.P;
                  const v = bias[o]!;
                  for (let i = 0; i < g.P; i++) y[base + i]! += v;
                }
              }
            }
          };
        },
      };
    },
    scratchFloats(node, inputShapes, outputShape, weightShape, strategy) {
      if (strategy?.use === 'rebuild') return rebuildScratchFloats(node, factor, inputShapes, outputShape, weightShape, strategy);
      const x = inputShapes[0];
      if (!x) return 0;
      return netScratch(node, method, conv, x, weightShape);
    },
    // The firmware (core/ops/reshaped.c) forms one kernel row at a time: S·kh·kw floats, and two
    // vectors of the summed stored ranks.
    mcu: {
      scratchFloats(node, _ins, _out, w) {
        const z = w('factor.0');
        const ranks = reshapedRanks(method, attrInts(node, 't_modes').length, w);
        return numel(attrInts(node, 's_modes')) * z[z.length - 2]! * z[z.length - 1]! + 2 * ranks.reduce((a, b) => a + b, 0);
      },
    },
    factor,
  };
}

export const rcpDense = reshapedKind('rcp', false);
export const rcpConv2d = reshapedKind('rcp', true);
export const rtkDense = reshapedKind('rtk', false);
export const rtkConv2d = reshapedKind('rtk', true);
export const rttDense = reshapedKind('rtt', false);
export const rttConv2d = reshapedKind('rtt', true);
export const rtrDense = reshapedKind('rtr', false);
export const rtrConv2d = reshapedKind('rtr', true);

