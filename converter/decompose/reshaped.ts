// The reshaped view of a conv or dense kernel behind the tensorial decompositions (rcp, rtk, rtt,
// rtr): W [T, S, H, W] with T = Π T_m, S = Π S_m becomes the (M+1)-way tensor
// X [(T_1 S_1), …, (T_M S_M), (H W)] with X[(t_1 s_1), …, (t_M s_M), (h w)] = W[t, s, h, w],
// t = (t_1, …, t_M) and s = (s_1, …, s_M) row-major. A dense layer is H = W = 1.
import { numel } from '../../runtime/ir.js';
import { permuteAxes } from './modeProduct.js';
import { factorModes } from './rank.js';

export interface ReshapedLayout {
  /** T_1 … T_M, product T (output channels / rows). */
  tModes: number[];
  /** S_1 … S_M, product S (input channels / columns). */
  sModes: number[];
  /** Kernel height and width; 1 and 1 for a dense layer. */
  kh: number;
  kw: number;
}

/** Mode sizes of the reshaped tensor: [T_1 S_1, …, T_M S_M, H W]. */
export function reshapedDims(layout: ReshapedLayout): number[] {
  return [...layout.tModes.map((t, m) => t * layout.sModes[m]!), layout.kh * layout.kw];
}

/** [T, S, kh, kw] of the kernel a layout describes. */
export function kernelShape(layout: ReshapedLayout): [number, number, number, number] {
  return [numel(layout.tModes), numel(layout.sModes), layout.kh, layout.kw];
}

function checkLayout(layout: ReshapedLayout, length: number, who: string): void {
  const { tModes, sModes, kh, kw } = layout;
  if (tModes.length === 0 || tModes.length !== sModes.length)
    throw new Error(`${who}: tModes and sModes must be non-empty and of equal length`);
  for (const d of [...tModes, ...sModes, kh, kw])
    if (!Number.isInteger(d) || d < 1) throw new Error(`${who}: every mode size must be a positive integer`);
  const want = numel(tModes) * numel(sModes) * kh * kw;
  if (length !== want) throw new Error(`${who}: kernel length ${length} != T·S·H·W = ${want}`);
}

/** W [T, S, H, W] -> X [(T_1 S_1), …, (T_M S_M), (H W)]. */
export function reshapeKernel(w: ArrayLike<number>, layout: ReshapedLayout, who = 'reshapeKernel'): Float64Array {
  checkLayout(layout, w.length, who);
  const m = layout.tModes.length;
  const perm = [...layout.tModes.flatMap((_, k) => [k, m + k]), 2 * m];
  return permuteAxes(w, [...layout.tModes, ...layout.sModes, layout.kh * layout.kw], perm);
}

/** Inverse of reshapeKernel: X -> W [T, S, H, W]. */
export function unreshapeKernel(x: ArrayLike<number>, layout: ReshapedLayout): Float64Array {
  checkLayout(layout, x.length, 'unreshapeKernel');
  const m = layout.tModes.length;
  const shape = [...layout.tModes.flatMap((t, k) => [t, layout.sModes[k]!]), layout.kh * layout.kw];
  const perm = [...layout.tModes.map((_, k) => 2 * k), ...layout.tModes.map((_, k) => 2 * k + 1), 2 * m];
  return permuteAxes(x, shape, perm);
}

/**
 * The factorisation T = Π T_m, S = Π S_m for a kernel [T, S, kh, kw]. Each side is split as evenly
 * as factorModes allows (ascending); S is paired in reverse so that the products T_m S_m, the
 * reshaped mode sizes, are balanced. Without `order`, M is the largest value ≤ 4 for which every
 * T_m S_m is at least 4 (a smaller mode gains nothing from a rank of its own) and neither side
 * needs a padding 1 (a side of size 1 stays all 1s); at least 1.
 */
export function chooseReshape(T: number, S: number, kh = 1, kw = 1, order?: number): ReshapedLayout {
  const split = (m: number): ReshapedLayout => {
    const tModes = factorModes(T, m);
    const sModes = factorModes(S, m).reverse();
    return { tModes, sModes, kh, kw };
  };
  if (order !== undefined) {
    if (!Number.isInteger(order) || order < 1) throw new Error(`chooseReshape: order must be a positive integer, got ${order}`);
    return split(order);
  }
  let best = split(1);
  for (let m = 2; m <= 4; m++) {
    const cand = split(m);
    const whole = (modes: number[], n: number) => n === 1 || modes.every((d) => d >= 2);
    if (cand.tModes.every((t, k) => t * cand.sModes[k]! >= 4) && whole(cand.tModes, T) && whole(cand.sModes, S)) best = cand;
  }
  return best;
}

// Parameter counts. Ranks follow the result conventions of tensorial.ts.

/** rcp: W^(m) [R, T_m, S_m] for m = 1..M and W^(0) [R, H, W]. */
export function paramsRcp(layout: ReshapedLayout, rank: number): number {
  return rank * reshapedDims(layout).reduce((a, d) => a + d, 0);
}

/** rtk, ranks [R_0, R_1, …, R_M]: W^(m) [R_m, T_m, S_m], W^(0) [R_0, H, W], core Π R_m. */
export function paramsRtk(layout: ReshapedLayout, ranks: readonly number[]): number {
  const dims = reshapedDims(layout);
  const m = layout.tModes.length;
  let total = ranks[0]! * dims[m]!;
  for (let k = 1; k <= m; k++) total += ranks[k]! * dims[k - 1]!;
  return total + numel(ranks);
}

/** rtt, ranks [R_1, …, R_M]: W^(1) [R_1, T_1, S_1], W^(m) [R_{m-1}, R_m, T_m, S_m], W^(0) [R_M, H, W]. */
export function paramsRtt(layout: ReshapedLayout, ranks: readonly number[]): number {
  return paramsRtr(layout, [1, ...ranks]);
}

/** rtr, ranks [R_0, R_1, …, R_M]: W^(m) [R_{m-1}, R_m, T_m, S_m], W^(0) [R_M, R_0, H, W]. */
export function paramsRtr(layout: ReshapedLayout, ranks: readonly number[]): number {
  const dims = reshapedDims(layout);
  const m = layout.tModes.length;
  let total = ranks[m]! * ranks[0]! * dims[m]!;
  for (let k = 1; k <= m; k++) total += ranks[k - 1]! * ranks[k]! * dims[k - 1]!;
  return total;
}
