// Reshaped tensorial decompositions of a kernel (Su, Huang et al., "Tensorial Neural Networks"):
// the (M+1)-way tensor of reshaped.ts factored by CP (rcp), Tucker (rtk), a tensor train (rtt) or
// a tensor ring (rtr). Each runs the project's existing N-way algorithm on the reshaped tensor and
// hands back the factors in the shapes the layer kinds will store:
//   rcp  W^(0) [R, H, W],            W^(m) [R, T_m, S_m]                 ranks [R]
//   rtk  W^(0) [R_0, H, W],          W^(m) [R_m, T_m, S_m], core C [R_0, R_1, …, R_M]   ranks [R_0, …, R_M]
//   rtt  W^(0) [R_M, H, W],          W^(1) [R_1, T_1, S_1], W^(m) [R_{m-1}, R_m, T_m, S_m]   ranks [R_1, …, R_M]
//   rtr  W^(0) [R_M, R_0, H, W],     W^(m) [R_{m-1}, R_m, T_m, S_m]      ranks [R_0, …, R_M]
// `factors` is always [W^(0), W^(1), …, W^(M)], with `shapes` beside it.
import { type CpOptions, cpAls, cpReconstruct } from './cpAls.js';
import { type RealArray, relativeError, toF32, transpose } from './linalg.js';
import { permuteAxes } from './modeProduct.js';
import { type ReshapedLayout, reshapeKernel, reshapedDims, unreshapeKernel } from './reshaped.js';
import { mulberry32, normalSource, randomNormal } from './prng.js';
import { tensorRing } from './tensorRing.js';
import { trAls } from './trAls.js';
import { ringContract } from './ttLayout.js';
import { tucker, tuckerReconstruct } from './tucker.js';
import { reconstructTt, ttSvd } from './ttSvd.js';

export interface ReshapedResult {
  layout: ReshapedLayout;
  /** Ranks actually used, in the convention of the method (see above). */
  ranks: number[];
  /** [W^(0), W^(1), …, W^(M)], row-major in the shapes of `shapes`. */
  factors: Float32Array[];
  shapes: number[][];
  /** rtk only: the core C [R_0, R_1, …, R_M]. */
  core?: Float32Array;
  /** ||W − Ŵ||_F / ||W||_F of the f32 factors. */
  relError: number;
}

export interface ChainOptions {
  /** Requested ranks (rtt: [R_1, …, R_M]; rtr: [R_0, …, R_M]), capped by what the unfoldings allow. */
  ranks?: readonly number[];
  /** Cap on every rank. */
  maxRank?: number;
  /** Relative error target of the SVD sweep. Default 0 (exact). */
  eps?: number;
}

export interface RingOptions extends ChainOptions {
  /** TR-ALS sweeps after TR-SVD, and per random restart. Default 500. */
  alsSweeps?: number;
  /** TR-ALS stop threshold on the gain per sweep. Default 1e-9. */
  tol?: number;
  /**
   * TR-ALS runs from random cores after the TR-SVD start, while the error stays above `target`;
   * the best fit is kept. TR-ALS from the TR-SVD start alone stalls in a local minimum on about
   * half of the exactly low-rank rings tested; some rings stall from every start (see the
   * hand-over of issue 12). Default 8.
   */
  restarts?: number;
  /** Relative error at which no further restart is tried. Default 1e-6. */
  target?: number;
  /** Seed of the random restarts. Default 0. */
  seed?: number;
}

const order = (layout: ReshapedLayout): number => layout.tModes.length;
const spatialShape = (layout: ReshapedLayout): number[] => [layout.kh, layout.kw];
const modeShape = (layout: ReshapedLayout, m: number): number[] => [layout.tModes[m - 1]!, layout.sModes[m - 1]!];

/** rcp: CP-ALS of rank R over the M+1 reshaped modes. */
export function rcp(w: RealArray, layout: ReshapedLayout, rank: number, opts: CpOptions = {}): ReshapedResult {
  const x = reshapeKernel(w, layout, 'rcp');
  const dims = reshapedDims(layout);
  const M = order(layout);
  const r = Math.max(1, Math.floor(rank));
  const fit = cpAls(x, dims, r, opts);
  // cpAls factors are [dim_k, R]; the layer stores [R, dim_k].
  const rows = (k: number) => toF32(transpose(fit.factors[k]!, dims[k]!, r));
  const factors = [rows(M), ...Array.from({ length: M }, (_, k) => rows(k))];
  const shapes = [[r, ...spatialShape(layout)], ...Array.from({ length: M }, (_, k) => [r, ...modeShape(layout, k + 1)])];
  return { layout, ranks: [r], factors, shapes, relError: relativeError(w, reconstructRcp(factors, layout, r)) };
}

/** Dense W [T, S, H, W] from rcp factors [W^(0), …, W^(M)] (tests and error reports). */
export function reconstructRcp(factors: readonly ArrayLike<number>[], layout: ReshapedLayout, rank: number): Float64Array {
  const dims = reshapedDims(layout);
  const M = order(layout);
  const cols = [...factors.slice(1), factors[0]!].map((f, k) => transpose(Float64Array.from(f), rank, dims[k]!));
  return unreshapeKernel(cpReconstruct(cols, dims, rank), layout);
}

/** rtk: Tucker (HOSVD, then HOOI) with ranks [R_0, R_1, …, R_M], each clamped to its mode size. */
export function rtk(w: RealArray, layout: ReshapedLayout, ranks: readonly number[], opts: { iters?: number; tol?: number } = {}): ReshapedResult {
  const M = order(layout);
  if (ranks.length !== M + 1) throw new Error(`rtk: ${ranks.length} ranks for M = ${M} (want R_0 … R_M)`);
  const x = reshapeKernel(w, layout, 'rtk');
  const dims = reshapedDims(layout);
  // The tensor's modes are [(T_1 S_1), …, (T_M S_M), (H W)], so R_0 goes last for tucker().
  const fit = tucker(x, dims, [...ranks.slice(1), ranks[0]!], opts);
  const used = [fit.ranks[M]!, ...fit.ranks.slice(0, M)];
  const rows = (k: number) => toF32(transpose(fit.factors[k]!, dims[k]!, fit.ranks[k]!));
  const factors = [rows(M), ...Array.from({ length: M }, (_, k) => rows(k))];
  const shapes = [[used[0]!, ...spatialShape(layout)], ...Array.from({ length: M }, (_, k) => [used[k + 1]!, ...modeShape(layout, k + 1)])];
  const core = toF32(permuteAxes(fit.core, fit.coreShape, [M, ...Array.from({ length: M }, (_, k) => k)]));
  return { layout, ranks: used, factors, shapes, core, relError: relativeError(w, reconstructRtk(factors, core, layout, used)) };
}

/** Dense W from rtk factors and core C [R_0, …, R_M]. */
export function reconstructRtk(
  factors: readonly ArrayLike<number>[], core: ArrayLike<number>, layout: ReshapedLayout, ranks: readonly number[],
): Float64Array {
  const dims = reshapedDims(layout);
  const M = order(layout);
  const r = [...ranks.slice(1), ranks[0]!];
  const c = permuteAxes(core, ranks, [...Array.from({ length: M }, (_, k) => k + 1), 0]);
  const cols = [...factors.slice(1), factors[0]!].map((f, k) => transpose(Float64Array.from(f), r[k]!, dims[k]!));
  return unreshapeKernel(tuckerReconstruct(c, r, cols, dims), layout);
}

/** Chain cores [r_k, d_k, r_{k+1}] (k = 0..M, last mode H·W) -> [W^(0), …, W^(M)] in the stored shapes. */
function chainToFactors(cores: readonly ArrayLike<number>[], chain: readonly number[], layout: ReshapedLayout, ring: boolean): { factors: Float32Array[]; shapes: number[][] } {
  const dims = reshapedDims(layout);
  const M = order(layout);
  const factors: Float32Array[] = [];
  const shapes: number[][] = [];
  const last = cores[M]!;
  // W^(0): [R_M, H W, R_0] -> [R_M, R_0, H, W] for a ring; [R_M, H W] as it is for a train.
  factors.push(toF32(ring ? permuteAxes(last, [chain[M]!, dims[M]!, chain[M + 1]!], [0, 2, 1]) : last));
  shapes.push(ring ? [chain[M]!, chain[M + 1]!, ...spatialShape(layout)] : [chain[M]!, ...spatialShape(layout)]);
  for (let m = 1; m <= M; m++) {
    const [a, b] = [chain[m - 1]!, chain[m]!];
    // [R_{m-1}, T_m S_m, R_m] -> [R_{m-1}, R_m, T_m, S_m]; the train's first core drops R_0 = 1.
    factors.push(toF32(permuteAxes(cores[m - 1]!, [a, dims[m - 1]!, b], [0, 2, 1])));
    shapes.push(!ring && m === 1 ? [b, ...modeShape(layout, m)] : [a, b, ...modeShape(layout, m)]);
  }
  return { factors, shapes };
}

/** [W^(0), …, W^(M)] -> chain cores [r_k, d_k, r_{k+1}] and the chain ranks [R_0, R_1, …, R_M, R_0]. */
function factorsToChain(factors: readonly ArrayLike<number>[], layout: ReshapedLayout, ranks: readonly number[], ring: boolean): { cores: Float64Array[]; chain: number[] } {
  const dims = reshapedDims(layout);
  const M = order(layout);
  const chain = ring ? [...ranks, ranks[0]!] : [1, ...ranks, 1];
  const cores: Float64Array[] = [];
  for (let m = 1; m <= M; m++) cores.push(permuteAxes(factors[m]!, [chain[m - 1]!, chain[m]!, dims[m - 1]!], [0, 2, 1]));
  cores.push(ring ? permuteAxes(factors[0]!, [chain[M]!, chain[M + 1]!, dims[M]!], [0, 2, 1]) : Float64Array.from(factors[0]!));
  return { cores, chain };
}

function reconstructChain(factors: readonly ArrayLike<number>[], layout: ReshapedLayout, ranks: readonly number[], ring: boolean): Float64Array {
  const dims = reshapedDims(layout);
  const { cores, chain } = factorsToChain(factors, layout, ranks, ring);
  return unreshapeKernel(reconstructTt(cores, dims, dims.map(() => 1), chain), layout);
}

/** rtt: TT-SVD over [(T_1 S_1), …, (T_M S_M), (H W)]; ranks [R_1, …, R_M]. */
export function rtt(w: RealArray, layout: ReshapedLayout, opts: ChainOptions = {}): ReshapedResult {
  const M = order(layout);
  if (opts.ranks && opts.ranks.length !== M) throw new Error(`rtt: ${opts.ranks.length} ranks for M = ${M} (want R_1 … R_M)`);
  const x = reshapeKernel(w, layout, 'rtt');
  const dims = reshapedDims(layout);
  // A tensor is the TT-matrix with every column mode 1: ttSvd's cores are then [r_k, d_k, r_{k+1}].
  const fit = ttSvd(x, dims, dims.map(() => 1), {
    ...(opts.ranks ? { ranks: [1, ...opts.ranks, 1] } : {}),
    ...(opts.maxRank !== undefined ? { maxRank: opts.maxRank } : {}),
    ...(opts.eps !== undefined ? { eps: opts.eps } : {}),
  });
  const ranks = fit.ranks.slice(1, M + 1);
  const { factors, shapes } = chainToFactors(fit.cores, fit.ranks, layout, false);
  return { layout, ranks, factors, shapes, relError: relativeError(w, reconstructRtt(factors, layout, ranks)) };
}

/** Dense W from rtt factors, ranks [R_1, …, R_M]. */
export function reconstructRtt(factors: readonly ArrayLike<number>[], layout: ReshapedLayout, ranks: readonly number[]): Float64Array {
  return reconstructChain(factors, layout, ranks, false);
}

/** rtr: TR-SVD then TR-ALS over the same modes, the ring closing between W^(0) and W^(1); ranks [R_0, …, R_M]. */
export function rtr(w: RealArray, layout: ReshapedLayout, opts: RingOptions = {}): ReshapedResult {
  const M = order(layout);
  if (opts.ranks && opts.ranks.length !== M + 1) throw new Error(`rtr: ${opts.ranks.length} ranks for M = ${M} (want R_0 … R_M)`);
  const x = reshapeKernel(w, layout, 'rtr');
  const dims = reshapedDims(layout);
  const als = { sweeps: opts.alsSweeps ?? 500, tol: opts.tol ?? 1e-9, ridge: 1e-10 };
  const fit = tensorRing(x, dims, dims.map(() => 1), {
    ...(opts.ranks ? { ranks: opts.ranks } : {}),
    ...(opts.maxRank !== undefined ? { maxRank: opts.maxRank } : {}),
    ...(opts.eps !== undefined ? { eps: opts.eps } : {}),
    alsSweeps: als.sweeps,
    tol: als.tol,
  });
  const chain = fit.ranks;
  let best: { cores: ArrayLike<number>[]; err: number } = { cores: fit.cores, err: fit.relError };
  const normal = normalSource(mulberry32(opts.seed ?? 0));
  for (let k = 0; k < (opts.restarts ?? 8) && best.err > (opts.target ?? 1e-6) && als.sweeps > 0; k++) {
    const start = dims.map((d, j) => randomNormal(normal, chain[j]! * d * chain[j + 1]!, 1 / Math.sqrt(chain[j]!)));
    const run = trAls(x, dims, start, chain, als);
    const err = relativeError(x, ringContract(run.cores.map(toF32), chain, dims));
    if (err < best.err) best = { cores: run.cores, err };
  }
  const ranks = chain.slice(0, M + 1);
  const { factors, shapes } = chainToFactors(best.cores, chain, layout, true);
  return { layout, ranks, factors, shapes, relError: relativeError(w, reconstructRtr(factors, layout, ranks)) };
}

/** Dense W from rtr factors, ranks [R_0, …, R_M]. */
export function reconstructRtr(factors: readonly ArrayLike<number>[], layout: ReshapedLayout, ranks: readonly number[]): Float64Array {
  return reconstructChain(factors, layout, ranks, true);
}

export type ReshapedMethod = 'rcp' | 'rtk' | 'rtt' | 'rtr';

/** Shapes of [W^(0), …, W^(M)] (and rtk's core) for the given ranks, in the conventions above. */
export function reshapedShapes(method: ReshapedMethod, layout: ReshapedLayout, ranks: readonly number[]): { shapes: number[][]; coreShape?: number[] } {
  const M = order(layout);
  const want = method === 'rcp' ? 1 : method === 'rtt' ? M : M + 1;
  if (ranks.length !== want) throw new Error(`${method}: ${ranks.length} ranks for M = ${M} (want ${want})`);
  const modes = (rank: (m: number) => number[]) => Array.from({ length: M }, (_, k) => [...rank(k + 1), ...modeShape(layout, k + 1)]);
  if (method === 'rcp') return { shapes: [[ranks[0]!, ...spatialShape(layout)], ...modes(() => [ranks[0]!])] };
  if (method === 'rtk') return { shapes: [[ranks[0]!, ...spatialShape(layout)], ...modes((m) => [ranks[m]!])], coreShape: ranks.slice() };
  if (method === 'rtt') {
    const chain = [1, ...ranks];
    return { shapes: [[chain[M]!, ...spatialShape(layout)], ...modes((m) => (m === 1 ? [chain[1]!] : [chain[m - 1]!, chain[m]!]))] };
  }
  return { shapes: [[ranks[M]!, ranks[0]!, ...spatialShape(layout)], ...modes((m) => [ranks[m - 1]!, ranks[m]!])] };
}

/**
 * Random factors whose rebuilt kernel has entries of mean 0 and variance std² (e.g. He's 2/fan_in),
 * for training from scratch. Every entry of W is a sum over the rank indices (n terms) of products
 * of one entry of each of the k factor tensors; with independent N(0, σ²) entries its variance is
 * n·σ^(2k), so σ² = (std²/n)^(1/k).
 */
export function randomReshaped(
  method: ReshapedMethod, layout: ReshapedLayout, ranks: readonly number[], std: number, seed = 0,
): { layout: ReshapedLayout; ranks: number[]; factors: Float32Array[]; shapes: number[][]; core?: Float32Array } {
  if (!(std >= 0)) throw new Error(`${method}: std must be ≥ 0, got ${std}`);
  const { shapes, coreShape } = reshapedShapes(method, layout, ranks);
  const terms = method === 'rcp' ? ranks[0]! : ranks.reduce((a, r) => a * r, 1);
  const tensors = shapes.length + (coreShape ? 1 : 0);
  const sigma = Math.sqrt(Math.pow((std * std) / terms, 1 / tensors));
  const normal = normalSource(mulberry32(seed));
  const draw = (shape: readonly number[]) => toF32(randomNormal(normal, shape.reduce((a, d) => a * d, 1), sigma));
  const factors = shapes.map(draw);
  return { layout, ranks: ranks.slice(), factors, shapes, ...(coreShape ? { core: draw(coreShape) } : {}) };
}
