// What the four reshaped tensorial methods (rcp, rtk, rtt, rtr; Su, Huang et al., "Tensorial Neural
// Networks") share: the reshape of a layer, the rank ladder priced from unfolding spectra, the
// decomposition into the stored factors of the runtime kinds <method>_dense / <method>_conv2d
// (runtime/layers/reshapedNet.ts lists the layouts), the trainable form and the ONNX export.
//
// Trainable form: the kernel W [T, S, kh, kw] is contracted from the factors (in the cheapest order
// of runtime/exec/tensorNet.ts, as batched matrix products), then applied by conv2d / linear. The
// runtime instead contracts the input with the factors (or rebuilds row tiles); both compute the
// same layer. The ONNX export forms W with one Einsum over the factor initializers (opset >= 12),
// then a Conv or a MatMul.
import { attrInts, numel, type OpName } from '../../runtime/ir.js';
import { planNet } from '../../runtime/exec/tensorNet.js';
import { reshapedFactors, reshapedRanks, reshapedSizes, type ReshapedMethod } from '../../runtime/layers/reshapedNet.js';
import { chooseReshape, paramsRcp, paramsRtk, paramsRtr, paramsRtt, reshapedDims, reshapeKernel, type ReshapedLayout } from '../decompose/reshaped.js';
import { rcp as rcpFit, rtk as rtkFit, rtr as rtrFit, rtt as rttFit } from '../decompose/tensorial.js';
import { convAttrs as exportConvAttrs, conv as emitConv } from '../export/convLayers.js';
import { asRows, fail, initializer, unsupported, type Emitter } from '../export/context.js';
import { unsupported as tfliteUnsupported } from '../export/tfliteExporter.js';
import { combined, ladder, norm, rel, unfoldingSpectrum, type Candidate, type LayerShape, type Spectrum } from '../rank/candidates.js';
import type { LayerModes, Target } from '../rank/target.js';
import { convAttrs } from '../train/layers/conv2d.js';
import { ParamMaker, type InitOptions, type TrainLayer } from '../train/layers/layer.js';
import { conv2d, convParams, type Conv2dParams } from '../train/ops/conv.js';
import { linear, matmul } from '../train/ops/matmul.js';
import { permute, reshape } from '../train/ops/shape.js';
import type { Var } from '../train/tensor.js';
import type { ConverterKind, DecomposeContext, Decomposed, FactorMethod, FromNodeContext, RankSlot, SpecOf } from './method.js';

export type ReshapedSpec = SpecOf<ReshapedMethod>;

/**
 * The reshape of a target: T = out channels, S = in channels; the given modes (convert --modes),
 * else balanced (chooseReshape).
 */
export function layoutOf(shape: LayerShape, modes?: LayerModes): ReshapedLayout {
  const [kh, kw] = shape.kind === 'dense' ? [1, 1] : [shape.kh, shape.kw];
  if (modes) return { tModes: [...modes.out], sModes: [...modes.in], kh, kw };
  return shape.kind === 'dense' ? chooseReshape(shape.out, shape.in, 1, 1) : chooseReshape(shape.O, shape.I, shape.kh, shape.kw);
}

function layoutOfSpec(t: Target, spec: ReshapedSpec): ReshapedLayout {
  const s = t.shape;
  return s.kind === 'dense' ? { tModes: spec.tModes, sModes: spec.sModes, kh: 1, kw: 1 } : { tModes: spec.tModes, sModes: spec.sModes, kh: s.kh, kw: s.kw };
}

/** How many ranks a method has with M mode pairs. */
function rankCount(method: ReshapedMethod, M: number): number {
  return method === 'rcp' ? 1 : method === 'rtt' ? M : M + 1;
}

/**
 * The largest value of each rank. dims = [(T_1 S_1), .., (T_M S_M), (kh kw)].
 *  rcp: R <= numel / (params per component), as for CP.
 *  rtk: R_0 <= kh kw, R_m <= T_m S_m (a Tucker rank never exceeds its mode).
 *  rtt: R_m (between mode m and the next, the last one (kh kw)) <= the smaller side of that cut.
 *  rtr: as rtt for R_1..R_M; R_0 (between (kh kw) and mode 1) <= the smaller of those two modes.
 */
export function rankCaps(method: ReshapedMethod, layout: ReshapedLayout): number[] {
  const dims = reshapedDims(layout);
  const M = layout.tModes.length;
  const total = numel(dims);
  if (method === 'rcp') return [Math.max(1, Math.ceil(total / dims.reduce((a, b) => a + b, 0)))];
  if (method === 'rtk') return [dims[M]!, ...dims.slice(0, M)];
  const cut = (c: number) => Math.min(numel(dims.slice(0, c)), numel(dims.slice(c)));
  const chain = Array.from({ length: M }, (_, i) => cut(i + 1));
  return method === 'rtt' ? chain : [Math.min(dims[M]!, dims[0]!), ...chain];
}

/**
 * The ranks the decomposition keeps when asked for `ranks`, so that a rung's parameter count is
 * what gets stored. TT-SVD: R_m <= R_{m-1} (T_m S_m) and <= the rest. TR-SVD (tensorRing): the
 * first SVD's rank is split into R_0 R_1 (the larger shrunk first), then as TT-SVD with R_0 riding
 * on the rest.
 */
export function feasibleRanks(method: ReshapedMethod, layout: ReshapedLayout, ranks: readonly number[]): number[] {
  const dims = reshapedDims(layout);
  const M = layout.tModes.length;
  const caps = rankCaps(method, layout);
  const out = ranks.map((r, i) => Math.max(1, Math.min(r, caps[i]!)));
  if (method === 'rtt') {
    for (let m = 1; m < M; m++) out[m] = Math.min(out[m]!, out[m - 1]! * dims[m]!);
  } else if (method === 'rtr') {
    const total = Math.min(dims[0]!, numel(dims.slice(1)));
    let [a, b] = [out[0]!, out[1]!];
    while (a * b > total) {
      if (a >= b) a--;
      else b--;
    }
    out[0] = Math.max(1, a);
    out[1] = Math.max(1, b);
    for (let m = 2; m <= M; m++) out[m] = Math.min(out[m]!, out[m - 1]! * dims[m - 1]!, numel(dims.slice(m)) * out[0]!);
  }
  return out;
}

export function paramsOf(method: ReshapedMethod, layout: ReshapedLayout, ranks: readonly number[]): number {
  if (method === 'rcp') return paramsRcp(layout, ranks[0]!);
  if (method === 'rtk') return paramsRtk(layout, ranks);
  if (method === 'rtt') return paramsRtt(layout, ranks);
  return paramsRtr(layout, ranks);
}

/** Spectra of the reshaped kernel: of each mode unfolding (mode first), and of each chain cut. */
function spectra(w: Float32Array, layout: ReshapedLayout, which: 'modes' | 'cuts'): Spectrum[] {
  const dims = reshapedDims(layout);
  const x = Float32Array.from(reshapeKernel(w, layout));
  const n = dims.length;
  if (which === 'modes') {
    return dims.map((_, m) => unfoldingSpectrum(x, dims, [m, ...dims.keys()].filter((v, i, a) => a.indexOf(v) === i), 1));
  }
  return Array.from({ length: n - 1 }, (_, c) => unfoldingSpectrum(x, dims, [...dims.keys()], c + 1));
}

/**
 * The ladder: one scalar r, each rank min(r, its cap). The estimated error comes from the
 * unfolding spectra: rcp the largest truncation of any mode unfolding or chain cut (a lower
 * bound, as for CP); rtk the combined
 * mode truncations (HOSVD); rtt the combined cut truncations (TT-SVD); rtr the same with each cut
 * crossing two bonds (R_0 R_m).
 */
export function reshapedCandidates(method: ReshapedMethod, t: Target): Candidate[] {
  const layout = layoutOf(t.shape, t.modes);
  const M = layout.tModes.length;
  const caps = rankCaps(method, layout);
  const total = norm(t.weight);
  // rcp: every unfolding of a rank-R CP tensor has rank <= R, so each mode unfolding and each cut
  // of the chain bounds its error from below; the cuts (e.g. 800 x 500 for LeNet-5's 800 -> 500
  // layer) are far tighter than the mode unfoldings (at most 32 rows there).
  const sp = method === 'rcp' ? [...spectra(t.weight, layout, 'modes'), ...spectra(t.weight, layout, 'cuts')]
    : spectra(t.weight, layout, method === 'rtk' ? 'modes' : 'cuts');
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (const r of ladder(Math.max(...caps))) {
    const ranks = feasibleRanks(method, layout, caps.map((c) => Math.min(r, c)));
    const key = ranks.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    let err: number;
    if (method === 'rcp') err = Math.max(...sp.map((s) => rel(s.discarded(ranks[0]!), total)));
    // modes: index m < M is mode m + 1 (rank R_{m+1}); index M is (kh kw) (rank R_0)
    else if (method === 'rtk') err = combined(sp.map((s, m) => s.discarded(m < M ? ranks[m + 1]! : ranks[0]!)), total);
    else if (method === 'rtt') err = combined(sp.map((s, c) => s.discarded(ranks[c]!)), total);
    else err = combined(sp.map((s, c) => s.discarded(ranks[0]! * ranks[c + 1]!)), total);
    out.push({ spec: { method, tModes: layout.tModes, sModes: layout.sModes, ranks }, params: paramsOf(method, layout, ranks) + t.bias, err });
  }
  return out;
}

export function reshapedFromRanks(method: ReshapedMethod, t: Target, rs: number[]): ReshapedSpec | string {
  const layout = layoutOf(t.shape, t.modes);
  const caps = rankCaps(method, layout);
  const want = rankCount(method, layout.tModes.length);
  if (rs.length !== 1 && rs.length !== want) return `expected 1 or ${want} ranks (modes [${layout.tModes}] x [${layout.sModes}])`;
  const ranks = rs.length === 1 ? feasibleRanks(method, layout, caps.map((c) => Math.min(rs[0]!, c))) : rs.slice();
  return { method, tModes: layout.tModes, sModes: layout.sModes, ranks };
}

export function reshapedRankSlots(method: ReshapedMethod, t: Target, spec: ReshapedSpec): RankSlot[] {
  const caps = rankCaps(method, layoutOfSpec(t, spec));
  return caps.map((cap, i) => ({ idx: [i], cap }));
}

/** Multiply-adds one layer's ALS fit may spend (see reshapedDecompose). */
const FIT_FLOPS = 3e9;

export function reshapedDecompose(method: ReshapedMethod, t: Target, spec: ReshapedSpec, ctx: DecomposeContext): Decomposed {
  const layout = layoutOfSpec(t, spec);
  // ALS sweeps cost about numel x (rank terms) x (M + 1) multiply-adds each: a fixed budget of
  // FIT_FLOPS bounds a layer's fit (LeNet-5's 800 -> 500 layer at rank 34 gets 22 CP-ALS sweeps and
  // one start, where 3 x 150 took minutes); small layers keep the full schedule.
  const sweep = 2 * t.weight.length * (layout.tModes.length + 1) * (method === 'rcp' ? spec.ranks[0]! : Math.max(...spec.ranks) ** 2);
  const sweeps = (full: number) => Math.max(10, Math.min(full, Math.floor(FIT_FLOPS / sweep)));
  const big = sweep * 150 > FIT_FLOPS;
  const r = method === 'rcp'
    ? rcpFit(t.weight, layout, spec.ranks[0]!, ctx.quick ? { restarts: 1, iters: sweeps(40), seed: ctx.seed, tol: 1e-6 } : { restarts: big ? 1 : 3, iters: sweeps(150), seed: ctx.seed, tol: 1e-7 })
    : method === 'rtk'
      ? rtkFit(t.weight, layout, spec.ranks, ctx.quick ? { iters: 5 } : {})
      : method === 'rtt'
        ? rttFit(t.weight, layout, { ranks: spec.ranks })
        : rtrFit(t.weight, layout, { ranks: spec.ranks, seed: ctx.seed, ...(ctx.quick ? { alsSweeps: sweeps(20), restarts: 0 } : { alsSweeps: sweeps(100), restarts: big ? 0 : 2 }) });
  r.factors.forEach((f, m) => ctx.add(`factor.${m}`, r.shapes[m]!, f));
  if (r.core) ctx.add('core', r.ranks.slice(), r.core);
  ctx.attrs['t_modes'] = layout.tModes;
  ctx.attrs['s_modes'] = layout.sModes;
  return { op: `${method}_${t.shape.kind === 'dense' ? 'dense' : 'conv2d'}` as OpName, relError: r.relError };
}

// ---- the trainable form -------------------------------------------------------------------

/** The stored shape of each factor role for these ranks. */
export function factorShapes(method: ReshapedMethod, layout: ReshapedLayout, ranks: readonly number[]): Map<string, number[]> {
  const M = layout.tModes.length;
  if (ranks.length !== rankCount(method, M)) throw new Error(`train: ${method} takes ${rankCount(method, M)} ranks, got ${ranks.length}`);
  const sizes = new Map<string, number>();
  layout.tModes.forEach((v, m) => sizes.set(`t${m + 1}`, v));
  layout.sModes.forEach((v, m) => sizes.set(`s${m + 1}`, v));
  if (method === 'rcp') sizes.set('r', ranks[0]!);
  else if (method === 'rtt') ranks.forEach((v, i) => sizes.set(`r${i + 1}`, v));
  else ranks.forEach((v, i) => sizes.set(`r${i}`, v));
  const out = new Map<string, number[]>();
  for (const f of reshapedFactors(method, M)) {
    out.set(f.role, f.legs.flatMap((l) => (l === 'k' ? [layout.kh, layout.kw] : [sizes.get(l)!])));
  }
  return out;
}

/**
 * W [T, S, kh, kw] contracted from the factor Vars: pairwise in the cheapest left-deep order,
 * each step a batched matrix product [batch, fa, c] @ [batch, c, fb] (shared legs still needed
 * later ride as the batch, as in the runtime).
 */
export function kernelFromFactors(method: ReshapedMethod, layout: ReshapedLayout, vars: ReadonlyMap<string, Var>): Var {
  const M = layout.tModes.length;
  const shape = (r: string) => vars.get(r)?.shape;
  const { sizes, factors } = reshapedSizes(method, layout.tModes, layout.sModes, shape, (msg) => {
    throw new Error(`train: ${method}: ${msg}`);
  });
  const open = [...Array.from({ length: M }, (_, m) => `t${m + 1}`), ...Array.from({ length: M }, (_, m) => `s${m + 1}`), 'k'];
  const plan = planNet({ sizes, tensors: factors.map((f) => f.legs), open, fixedFirst: false });
  const legSizes = (ls: readonly string[]) => ls.map((l) => sizes.get(l)!);
  const asLegs = (i: number) => reshape(vars.get(factors[i]!.role)!, legSizes(factors[i]!.legs));
  let cur = asLegs(plan.order[0]!);
  let legs = [...factors[plan.order[0]!]!.legs];
  for (const s of plan.steps) {
    const { batch, fa, c, fb } = s.groups;
    const bl = factors[s.tensor]!.legs;
    const a = reshape(permute(cur, [...batch, ...fa, ...c].map((l) => legs.indexOf(l))), [s.batch, s.M, s.K]);
    const b = reshape(permute(asLegs(s.tensor), [...batch, ...c, ...fb].map((l) => bl.indexOf(l))), [s.batch, s.K, s.N]);
    cur = reshape(matmul(a, b), legSizes(s.legs));
    legs = s.legs;
  }
  cur = permute(cur, open.map((l) => legs.indexOf(l)));
  return reshape(cur, [numel(layout.tModes), numel(layout.sModes), layout.kh, layout.kw]);
}

/** The trainable reshaped layer (dense when conv is undefined). */
export function reshapedLayer(
  method: ReshapedMethod, layout: ReshapedLayout, ranks: readonly number[], conv: Partial<Conv2dParams> | undefined, opts: InitOptions = {},
): TrainLayer {
  const shapes = factorShapes(method, layout, ranks);
  const pm = new ParamMaker(opts);
  const T = numel(layout.tModes);
  const S = numel(layout.sModes);
  // Var(W) = n sigma^(2k) for n summed terms and k factors: sigma = (target / n)^(1/(2k)).
  const terms = method === 'rcp' ? ranks[0]! : numel(ranks);
  const std = (pm.target(S * layout.kh * layout.kw) / terms) ** (1 / (2 * shapes.size));
  const vars = new Map<string, Var>();
  for (const [role, s] of shapes) vars.set(role, pm.normalParam(role, s, std));
  const b = pm.bias(T);
  const p = conv ? convParams(conv) : undefined;
  if (p && p.group !== 1) throw new Error('train: a reshaped tensor network needs group 1');
  return {
    op: `${method}_${p ? 'conv2d' : 'dense'}` as OpName,
    attrs: { ...(p ? convAttrs(p) : {}), t_modes: [...layout.tModes], s_modes: [...layout.sModes] },
    params: pm.params,
    forward: (x: Var) => {
      const w = kernelFromFactors(method, layout, vars);
      return p ? conv2d(x, w, b, p) : linear(x, reshape(w, [T, S]), b);
    },
  };
}

function layerOfNode(method: ReshapedMethod, c: FromNodeContext, conv: boolean): TrainLayer {
  const tModes = attrInts(c.node, 't_modes');
  const sModes = attrInts(c.node, 's_modes');
  const M = tModes.length;
  c.need(M >= 1 && sModes.length === M, 't_modes and s_modes of equal length expected');
  const look = (r: string) => {
    try {
      return c.shape(r);
    } catch {
      return undefined;
    }
  };
  const ranks = reshapedRanks(method, M, look);
  const z = look('factor.0') ?? [];
  const layout: ReshapedLayout = { tModes, sModes, kh: conv ? z[z.length - 2]! : 1, kw: conv ? z[z.length - 1]! : 1 };
  c.need(ranks.every((r) => r >= 1), 'factor shapes do not give the ranks');
  const want = factorShapes(method, layout, ranks);
  for (const [role, s] of want) {
    const got = look(role);
    c.need(!!got && got.length === s.length && got.every((d, i) => d === s[i]), `${role} has shape [${got ?? []}], expected [${s}]`);
  }
  return reshapedLayer(method, layout, ranks, conv ? c.conv() : undefined, c.init);
}

// ---- ONNX export: W by one Einsum over the factors, then Conv / MatMul ----------------------

function reshapedOnnx(method: ReshapedMethod, conv: boolean): Emitter {
  return (ctx) => {
    if (ctx.opset < 12) unsupported(ctx, `Einsum (the reshaped factors) needs opset 12 or later, got ${ctx.opset}`);
    const tModes = attrInts(ctx.node, 't_modes');
    const sModes = attrInts(ctx.node, 's_modes');
    const M = tModes.length;
    const { factors, kernel } = reshapedSizes(method, tModes, sModes, (r) => ctx.optionalWeight(r)?.shape, (msg) => fail(ctx, msg));
    const T = numel(tModes);
    const S = numel(sModes);
    const letters = new Map<string, string>();
    const letter = (l: string) => {
      if (!letters.has(l)) letters.set(l, String.fromCharCode(97 + letters.size));
      return letters.get(l)!;
    };
    const term = (legs: readonly string[]) => legs.map((l) => (l === 'k' ? letter('kh') + letter('kw') : letter(l))).join('');
    const inputs = factors.map((f) => initializer(ctx, ctx.weight(f.role)));
    const out = [...Array.from({ length: M }, (_, m) => `t${m + 1}`), ...Array.from({ length: M }, (_, m) => `s${m + 1}`), 'k'];
    const equation = `${factors.map((f) => term(f.legs)).join(',')}->${term(out)}`;
    const name = ctx.node.name;
    const full = ctx.b.node('Einsum', inputs, `${name}/kernel`, { equation: { s: equation } });
    const bias = ctx.optionalWeight('bias');
    if (bias && (bias.shape.length !== 1 || bias.shape[0] !== T)) fail(ctx, `bias has shape [${bias.shape}], expected [${T}]`);
    if (conv) {
      const a = exportConvAttrs(ctx);
      if (a.group !== 1) unsupported(ctx, 'a grouped conv cannot be a reshaped tensor network');
      const w = ctx.b.node('Reshape', [full, ctx.b.int64('shape', [T, S, kernel[0], kernel[1]])], `${name}/w`);
      emitConv(ctx, ctx.inputs[0]!, w, kernel, a, name, bias, ctx.output);
      return 4;
    }
    const wT = ctx.b.node('Reshape', [full, ctx.b.int64('shape', [T, S])], `${name}/w`);
    const rank = ctx.ranks[0]!;
    const { rows, finish } = asRows(ctx, ctx.inputs[0]!, rank, S);
    const y = ctx.b.node('Gemm', [rows, wT], `${name}/gemm`, { transB: 1 });
    finish(y, T, bias);
    return rank;
  };
}

/** The two runtime kinds of a method, converter side. */
export function reshapedKinds(method: ReshapedMethod): ConverterKind[] {
  return [false, true].map((conv) => ({
    op: `${method}_${conv ? 'conv2d' : 'dense'}` as OpName,
    trainable: (c: FromNodeContext) => layerOfNode(method, c, conv),
    onnx: reshapedOnnx(method, conv),
    tflite: (_ex, node) => tfliteUnsupported(node, 'reshaped tensorial layers have no TFLite export yet; export them to ONNX (factorlite export m.flm -o m.onnx)'),
  }));
}

/** A method record: every part from the shared functions above. */
export function reshapedMethod<M extends ReshapedMethod>(method: M): FactorMethod<M> {
  return {
    name: method,
    layers: ['dense', 'conv'],
    // Offered to a layer only when asked for by name (--method): `auto` keeps its search as before.
    applies: () => false,
    candidates: (t) => reshapedCandidates(method, t) as Candidate[],
    fromRanks: (t, r) => reshapedFromRanks(method, t, r) as SpecOf<M> | string,
    ranks: (spec) => [...(spec as ReshapedSpec).ranks],
    withRanks: (spec, r) => ({ ...(spec as ReshapedSpec), ranks: r }) as SpecOf<M>,
    rankSlots: (t, spec) => reshapedRankSlots(method, t, spec as ReshapedSpec),
    params: (t, spec) => paramsOf(method, layoutOfSpec(t, spec as ReshapedSpec), (spec as ReshapedSpec).ranks) + t.bias,
    decompose: (t, spec, ctx) => reshapedDecompose(method, t, spec as ReshapedSpec, ctx),
    kinds: reshapedKinds(method),
  };
}
