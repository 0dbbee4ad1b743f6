// Rank candidates per layer: for each method that fits a layer, a ladder of rank settings with
// their parameter count and a relative-error estimate read off singular spectra (no decomposition
// is run here). SVD is exact (Eckart–Young); Tucker, TT and TR combine the losses of their
// unfoldings (see `combined`); CP uses a lower bound. The converter reports the measured error.
import { permuteAxes } from '../decompose/modeProduct.js';
import { singularValues } from '../decompose/svd.js';
import { factorModes } from '../decompose/index.js';

/** A depthwise conv (group = O channels, I = 1) is a conv shape with `depthwise`: only the dwlr method takes it. */
export type LayerShape = { kind: 'dense'; out: number; in: number } | { kind: 'conv'; O: number; I: number; kh: number; kw: number; depthwise?: boolean };

export type RankSpec =
  | { method: 'dense' }
  | { method: 'svd'; rank: number }
  | { method: 'tucker2'; ranks: [number, number] }
  | { method: 'cp'; rank: number }
  | { method: 'tt'; outModes: number[]; inModes: number[]; ranks: number[] }
  | { method: 'tr'; outModes: number[]; inModes: number[]; ranks: number[] }
  | { method: 'ttl'; outModes: number[]; inModes: number[]; ranks: number[] }
  // The reshaped tensorial methods (converter/methods/reshapedNet.ts): T and S split into modes.
  | { method: 'rcp'; tModes: number[]; sModes: number[]; ranks: number[] }
  | { method: 'rtk'; tModes: number[]; sModes: number[]; ranks: number[] }
  | { method: 'rtt'; tModes: number[]; sModes: number[]; ranks: number[] }
  | { method: 'rtr'; tModes: number[]; sModes: number[]; ranks: number[] }
  | { method: 'adtn'; depth: number }
  // A depthwise conv's kernel matrix [C, kh*kw] as mix [C, r] basis [r, kh*kw] (converter/methods/dwlr.ts).
  | { method: 'dwlr'; rank: number };

export interface Candidate {
  spec: RankSpec;
  /** Parameters of the layer in this form, bias included. */
  params: number;
  /** Estimated relative Frobenius error of the weight. */
  err: number;
  /** Multiply-adds per sample (rank/compute.ts; filled in for --prefer speed). */
  macs?: number;
  /** Predicted microseconds per sample at batch 1 by the runtime's cost model (rank/compute.ts). */
  us?: number;
}

/** Squared singular values, descending, and their total: enough to price any truncation. */
export class Spectrum {
  readonly energy: Float64Array;
  readonly total: number;
  constructor(s: Float64Array) {
    this.energy = s.map((v) => v * v);
    this.total = this.energy.reduce((a, b) => a + b, 0);
  }
  /** Energy left out by keeping the leading r values (absolute). */
  discarded(r: number): number {
    let d = 0;
    for (let i = Math.max(0, r); i < this.energy.length; i++) d += this.energy[i]!;
    return d;
  }
  get length(): number {
    return this.energy.length;
  }
}

/** Spectrum of the unfolding that puts `front` axes (in order) first, after permuting. */
export function unfoldingSpectrum(w: Float32Array, shape: number[], perm: number[], split: number): Spectrum {
  const x = perm.every((p, i) => p === i) ? w : permuteAxes(w, shape, perm);
  const dims = perm.map((p) => shape[p]!);
  const rows = dims.slice(0, split).reduce((a, b) => a * b, 1);
  const cols = dims.slice(split).reduce((a, b) => a * b, 1);
  return new Spectrum(singularValues(x, rows, cols));
}

export const norm = (w: Float32Array) => {
  let s = 0;
  for (const v of w) s += v * v;
  return s;
};

export function rel(discarded: number, total: number): number {
  return total > 0 ? Math.sqrt(Math.min(1, discarded / total)) : 0;
}

/**
 * Error of several truncations applied in turn, estimated as if each kept its own fraction of the
 * energy independently: err² ≈ 1 - Π(1 - e_k). It lies between the largest single loss (a lower
 * bound) and their sum (the HOSVD / TT-SVD upper bound), and unlike the sum it never saturates at 1.
 */
export function combined(discarded: number[], total: number): number {
  if (total <= 0) return 0;
  const kept = discarded.reduce((p, d) => p * (1 - Math.min(1, d / total)), 1);
  return Math.sqrt(Math.max(0, 1 - kept));
}

/** A geometric ladder of integers from 1 to max, about `steps` long, always including max. */
export function ladder(max: number, steps = 48): number[] {
  const out = new Set<number>();
  for (let i = 0; i < steps; i++) out.add(Math.max(1, Math.round(Math.pow(max, i / (steps - 1)))));
  out.add(max);
  return [...out].sort((a, b) => a - b);
}

export function dims(shape: LayerShape): { rows: number; cols: number; full: number[] } {
  return shape.kind === 'dense'
    ? { rows: shape.out, cols: shape.in, full: [shape.out, shape.in] }
    : { rows: shape.O, cols: shape.I * shape.kh * shape.kw, full: [shape.O, shape.I, shape.kh, shape.kw] };
}

/** Mode split used for TT, TR and TTL of a dense layer. */
export function denseModes(out: number, inF: number, parts: number): { outModes: number[]; inModes: number[] } {
  return { outModes: factorModes(out, parts), inModes: factorModes(inF, parts) };
}

/** Spectra of the d-1 sequential unfoldings of the TT-matrix tensor [(m_0 n_0), (m_1 n_1), ...]. */
// TT and TR candidates of one layer price the same unfoldings: computed once per weight and split.
const ttSpectraCache = new WeakMap<Float32Array, Map<string, Spectrum[]>>();
export function ttSpectra(w: Float32Array, outModes: number[], inModes: number[]): Spectrum[] {
  const key = `${outModes}|${inModes}`;
  let byModes = ttSpectraCache.get(w);
  if (!byModes) ttSpectraCache.set(w, (byModes = new Map()));
  let res = byModes.get(key);
  if (!res) byModes.set(key, (res = ttSpectraOf(w, outModes, inModes)));
  return res;
}

function ttSpectraOf(w: Float32Array, outModes: number[], inModes: number[]): Spectrum[] {
  const d = outModes.length;
  const shape = [...outModes, ...inModes];
  const perm: number[] = [];
  for (let k = 0; k < d; k++) perm.push(k, d + k);
  const x = permuteAxes(w, shape, perm);
  const pairs = outModes.map((m, k) => m * inModes[k]!);
  const res: Spectrum[] = [];
  for (let k = 1; k < d; k++) {
    const rows = pairs.slice(0, k).reduce((a, b) => a * b, 1);
    const cols = pairs.slice(k).reduce((a, b) => a * b, 1);
    res.push(new Spectrum(singularValues(x, rows, cols)));
  }
  return res;
}

export function chainParams(outModes: number[], inModes: number[], ranks: number[]): number {
  return outModes.reduce((s, m, k) => s + ranks[k]! * m * inModes[k]! * ranks[k + 1]!, 0);
}

/**
 * Keeps the candidates that no other beats on both parameters and error, by parameters ascending.
 * With a compute weight w > 0 (--prefer speed) the error side is err² + w·cost (select.ts
 * `computeCost`), so that a form slower than a smaller one of the same error drops out and a
 * faster one of more error stays.
 */
export function paretoFront(cands: Candidate[], w = 0, cost: (c: Candidate) => number = () => 0): Candidate[] {
  if (w > 0) {
    const sorted = [...cands].map((c) => ({ c, s: c.err * c.err + w * cost(c) })).sort((a, b) => a.c.params - b.c.params || a.s - b.s);
    const out: Candidate[] = [];
    let best = Infinity;
    for (const { c, s } of sorted) {
      if (s < best - 1e-12) {
        out.push(c);
        best = s;
      }
    }
    return out;
  }
  const sorted = [...cands].sort((a, b) => a.params - b.params || a.err - b.err);
  const out: Candidate[] = [];
  let best = Infinity;
  for (const c of sorted) {
    if (c.err < best - 1e-12) {
      out.push(c);
      best = c.err;
    }
  }
  return out;
}
