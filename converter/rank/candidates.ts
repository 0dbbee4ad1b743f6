// Rank candidates per layer: for each method that fits a layer, a ladder of rank settings with
// their parameter count and a relative-error estimate read off singular spectra (no decomposition
// is run here). SVD is exact (Eckart–Young); Tucker, TT and TR combine the losses of their
// unfoldings (see `combined`); CP uses a lower bound. The converter reports the measured error.
import { permuteAxes } from '../decompose/modeProduct.js';
import { singularValues } from '../decompose/svd.js';
import { factorModes } from '../decompose/index.js';

export type LayerShape = { kind: 'dense'; out: number; in: number } | { kind: 'conv'; O: number; I: number; kh: number; kw: number };

export type RankSpec =
  | { method: 'dense' }
  | { method: 'svd'; rank: number }
  | { method: 'tucker2'; ranks: [number, number] }
  | { method: 'cp'; rank: number }
  | { method: 'tt'; outModes: number[]; inModes: number[]; ranks: number[] }
  | { method: 'tr'; outModes: number[]; inModes: number[]; ranks: number[] }
  | { method: 'ttl'; outModes: number[]; inModes: number[]; ranks: number[] };

export interface Candidate {
  spec: RankSpec;
  /** Parameters of the layer in this form, bias included. */
  params: number;
  /** Estimated relative Frobenius error of the weight. */
  err: number;
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
function unfoldingSpectrum(w: Float32Array, shape: number[], perm: number[], split: number): Spectrum {
  const x = perm.every((p, i) => p === i) ? w : permuteAxes(w, shape, perm);
  const dims = perm.map((p) => shape[p]!);
  const rows = dims.slice(0, split).reduce((a, b) => a * b, 1);
  const cols = dims.slice(split).reduce((a, b) => a * b, 1);
  return new Spectrum(singularValues(x, rows, cols));
}

const norm = (w: Float32Array) => {
  let s = 0;
  for (const v of w) s += v * v;
  return s;
};

function rel(discarded: number, total: number): number {
  return total > 0 ? Math.sqrt(Math.min(1, discarded / total)) : 0;
}

/**
 * Error of several truncations applied in turn, estimated as if each kept its own fraction of the
 * energy independently: err² ≈ 1 - Π(1 - e_k). It lies between the largest single loss (a lower
 * bound) and their sum (the HOSVD / TT-SVD upper bound), and unlike the sum it never saturates at 1.
 */
function combined(discarded: number[], total: number): number {
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

function dims(shape: LayerShape): { rows: number; cols: number; full: number[] } {
  return shape.kind === 'dense'
    ? { rows: shape.out, cols: shape.in, full: [shape.out, shape.in] }
    : { rows: shape.O, cols: shape.I * shape.kh * shape.kw, full: [shape.O, shape.I, shape.kh, shape.kw] };
}

export function svdCandidates(w: Float32Array, shape: LayerShape, bias: number, singular?: Float64Array): Candidate[] {
  const { rows, cols } = dims(shape);
  const sp = new Spectrum(singular ?? singularValues(w, rows, cols));
  return ladder(sp.length, 64).map((r) => ({
    spec: { method: 'svd', rank: r },
    params: r * (rows + cols) + bias,
    err: rel(sp.discarded(r), sp.total),
  }));
}

export function tucker2Candidates(w: Float32Array, shape: LayerShape & { kind: 'conv' }, bias: number): Candidate[] {
  const { O, I, kh, kw } = shape;
  const full = [O, I, kh, kw];
  const s0 = unfoldingSpectrum(w, full, [0, 1, 2, 3], 1);
  const s1 = unfoldingSpectrum(w, full, [1, 0, 2, 3], 1);
  const total = norm(w);
  const out: Candidate[] = [];
  for (let i = 1; i <= 40; i++) {
    const a = i / 40;
    const rOut = Math.min(O, Math.max(1, Math.round(a * O)));
    const rIn = Math.min(I, Math.max(1, Math.round(a * I)));
    out.push({
      spec: { method: 'tucker2', ranks: [rOut, rIn] },
      params: rIn * I + rOut * rIn * kh * kw + O * rOut + bias,
      err: combined([s0.discarded(rOut), s1.discarded(rIn)], total),
    });
  }
  return out;
}

/**
 * CP ranks for a conv kernel. No spectrum prices CP exactly; the estimate is the larger of the
 * rank-R truncation errors of the two channel unfoldings, a lower bound on the CP error.
 */
export function cpCandidates(w: Float32Array, shape: LayerShape & { kind: 'conv' }, bias: number): Candidate[] {
  const { O, I, kh, kw } = shape;
  const full = [O, I, kh, kw];
  const s0 = unfoldingSpectrum(w, full, [0, 1, 2, 3], 1);
  const s1 = unfoldingSpectrum(w, full, [1, 0, 2, 3], 1);
  const total = norm(w);
  const per = I + kh + kw + O;
  const maxR = Math.max(1, Math.ceil((O * I * kh * kw) / per));
  return ladder(maxR).map((r) => ({
    spec: { method: 'cp', rank: r },
    params: r * per + bias,
    err: Math.max(rel(s0.discarded(r), total), rel(s1.discarded(r), total)),
  }));
}

/** Mode split used for TT, TR and TTL of a dense layer. */
export function denseModes(out: number, inF: number, parts: number): { outModes: number[]; inModes: number[] } {
  return { outModes: factorModes(out, parts), inModes: factorModes(inF, parts) };
}

/** Spectra of the d-1 sequential unfoldings of the TT-matrix tensor [(m_0 n_0), (m_1 n_1), ...]. */
// TT and TR candidates of one layer price the same unfoldings: computed once per weight and split.
const ttSpectraCache = new WeakMap<Float32Array, Map<string, Spectrum[]>>();
function ttSpectra(w: Float32Array, outModes: number[], inModes: number[]): Spectrum[] {
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

function chainParams(outModes: number[], inModes: number[], ranks: number[]): number {
  return outModes.reduce((s, m, k) => s + ranks[k]! * m * inModes[k]! * ranks[k + 1]!, 0);
}

export function ttCandidates(w: Float32Array, shape: LayerShape & { kind: 'dense' }, bias: number, parts = 3): Candidate[] {
  const { outModes, inModes } = denseModes(shape.out, shape.in, parts);
  const spectra = ttSpectra(w, outModes, inModes);
  const total = norm(w);
  const maxRank = Math.max(...spectra.map((s) => s.length));
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (const r of ladder(maxRank)) {
    const ranks = [1, ...spectra.map((s) => Math.min(r, s.length)), 1];
    const key = ranks.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({
      spec: { method: 'tt', outModes, inModes, ranks },
      params: chainParams(outModes, inModes, ranks) + bias,
      err: combined(spectra.map((sp, k) => sp.discarded(ranks[k + 1]!)), total),
    });
  }
  return out;
}

/**
 * Tensor ring with boundary rank r0 = 2 and inner ranks r: TR-SVD splits the first unfolding's
 * rank as r0·r1. The estimate prices the unfoldings at ranks [r0·r1, r2, ...]; it is a proxy.
 */
export function trCandidates(w: Float32Array, shape: LayerShape & { kind: 'dense' }, bias: number, parts = 3): Candidate[] {
  const { outModes, inModes } = denseModes(shape.out, shape.in, parts);
  const spectra = ttSpectra(w, outModes, inModes);
  const total = norm(w);
  const r0 = 2;
  const maxRank = Math.max(...spectra.map((s) => s.length));
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (const r of ladder(Math.max(1, Math.floor(maxRank / r0)))) {
    const inner = spectra.map((s, k) => Math.max(1, Math.min(r, k === 0 ? Math.floor(s.length / r0) : s.length)));
    const ranks = [r0, ...inner, r0];
    const key = ranks.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    const effective = spectra.map((_, k) => (k === 0 ? r0 * ranks[1]! : ranks[k + 1]!));
    out.push({
      spec: { method: 'tr', outModes, inModes, ranks },
      params: chainParams(outModes, inModes, ranks) + bias,
      err: combined(spectra.map((sp, k) => sp.discarded(effective[k]!)), total),
    });
  }
  return out;
}

export function ttlCandidates(w: Float32Array, shape: LayerShape & { kind: 'dense' }, bias: number, parts = 2): Candidate[] {
  const { outModes, inModes } = denseModes(shape.out, shape.in, parts);
  const full = [...outModes, ...inModes];
  const spectra = full.map((_, k) => unfoldingSpectrum(w, full, [k, ...full.map((__, j) => j).filter((j) => j !== k)], 1));
  const total = norm(w);
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (let i = 1; i <= 40; i++) {
    const a = i / 40;
    const ranks = full.map((d) => Math.min(d, Math.max(1, Math.round(a * d))));
    const key = ranks.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({
      spec: { method: 'ttl', outModes, inModes, ranks },
      params: ranks.reduce((p, r) => p * r, 1) + full.reduce((s, d, k) => s + d * ranks[k]!, 0) + bias,
      err: combined(spectra.map((sp, k) => sp.discarded(ranks[k]!)), total),
    });
  }
  return out;
}

/** Keeps the candidates that no other beats on both parameters and error, by parameters ascending. */
export function paretoFront(cands: Candidate[]): Candidate[] {
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
