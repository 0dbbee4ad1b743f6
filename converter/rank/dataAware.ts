// Data-aware error estimates. A layer's weight error says little about what the network sees:
// calibration inputs excite a few leading directions, so dropping minor singular directions costs
// far less than their share of the weight's energy, and dropping leading ones costs far more.
// With W = Σ s_k u_k v_kᵀ and the input second moment C = Σ_p x_p x_pᵀ, the layer's output error
// after keeping the leading r terms is exactly Σ_{k≥r} s_k² v_kᵀ C v_k (u_k are orthonormal).
import type { Tensor } from '../../runtime/ir.js';
import { mulberry32 } from '../decompose/prng.js';
import type { TruncatedSvdResult } from '../decompose/svd.js';
import type { Candidate, LayerShape } from './candidates.js';

export interface ConvGeometry {
  strides: number[];
  pads: number[];
  dilations: number[];
}

/**
 * Second moment C [K, K] of the vectors a layer multiplies by its weight: input rows for a dense
 * layer, receptive-field patches (K = I·kh·kw, zero in padding) for a conv; at most `maxVectors`
 * sampled with a fixed seed.
 */
export function inputMoment(x: Tensor, shape: LayerShape, conv: ConvGeometry | undefined, maxVectors = 2048, seed = 7): Float64Array {
  const rnd = mulberry32(seed);
  const vectors: Float32Array[] = [];
  if (shape.kind === 'dense') {
    const K = shape.in;
    const rows = x.data.length / K;
    const take = Math.min(rows, maxVectors);
    for (let i = 0; i < take; i++) {
      const r = rows <= maxVectors ? i : Math.floor(rnd() * rows);
      vectors.push(x.data.subarray(r * K, (r + 1) * K));
    }
  } else {
    const [N, C, H, W] = x.shape as [number, number, number, number];
    const { kh, kw } = shape;
    const [sh, sw] = conv!.strides as [number, number];
    const [pt, pl, pb, pr] = conv!.pads as [number, number, number, number];
    const [dh, dw] = conv!.dilations as [number, number];
    const OH = Math.floor((H + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
    const OW = Math.floor((W + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
    const total = N * OH * OW;
    const take = Math.min(total, maxVectors);
    for (let i = 0; i < take; i++) {
      const p = total <= maxVectors ? i : Math.floor(rnd() * total);
      const n = Math.floor(p / (OH * OW));
      const oy = Math.floor((p % (OH * OW)) / OW);
      const ox = p % OW;
      const v = new Float32Array(C * kh * kw);
      let k = 0;
      for (let c = 0; c < C; c++) {
        for (let ky = 0; ky < kh; ky++) {
          for (let kx = 0; kx < kw; kx++, k++) {
            const iy = oy * sh - pt + ky * dh;
            const ix = ox * sw - pl + kx * dw;
            if (iy >= 0 && iy < H && ix >= 0 && ix < W) v[k] = x.data[((n * C + c) * H + iy) * W + ix]!;
          }
        }
      }
      vectors.push(v);
    }
  }
  const K = vectors[0]?.length ?? 0;
  const m = new Float64Array(K * K);
  for (const v of vectors) {
    for (let i = 0; i < K; i++) {
      const vi = v[i]!;
      if (vi === 0) continue;
      const row = i * K;
      for (let j = i; j < K; j++) m[row + j]! += vi * v[j]!;
    }
  }
  for (let i = 0; i < K; i++) for (let j = 0; j < i; j++) m[i * K + j] = m[j * K + i]!;
  return m;
}

/** The layer's output error as a function of SVD rank, and of weight error through that curve. */
export class OutputErrorCurve {
  /** outErr[r]: relative output error keeping the leading r singular terms (r = 0..k). */
  readonly outErr: Float64Array;
  /** weightErr[r]: relative weight error at rank r (Eckart–Young). */
  readonly weightErr: Float64Array;

  constructor(svd: TruncatedSvdResult, moment: Float64Array) {
    // svd.v rows are sqrt(s_k) v_kᵀ, so s_k² v_kᵀ C v_k = s_k · (row_k C row_kᵀ).
    const s = svd.singularValues;
    const r = svd.rank;
    const cols = svd.v.length / r;
    const excited = new Float64Array(r);
    const tmp = new Float64Array(cols);
    for (let k = 0; k < r; k++) {
      const row = svd.v.subarray(k * cols, (k + 1) * cols);
      tmp.fill(0);
      for (let i = 0; i < cols; i++) {
        const a = row[i]!;
        if (a === 0) continue;
        const base = i * cols;
        for (let j = 0; j < cols; j++) tmp[j]! += a * moment[base + j]!;
      }
      let q = 0;
      for (let j = 0; j < cols; j++) q += tmp[j]! * row[j]!;
      excited[k] = Math.max(0, q * s[k]!);
    }
    const tailOf = (vals: ArrayLike<number>, n: number) => {
      const tail = new Float64Array(n + 1);
      for (let k = n - 1; k >= 0; k--) tail[k] = tail[k + 1]! + vals[k]!;
      return tail;
    };
    const outTail = tailOf(excited, r);
    const sq = Array.from(s, (v) => v * v);
    const wTail = tailOf(sq, sq.length);
    this.outErr = outTail.map((t) => (outTail[0]! > 0 ? Math.sqrt(t / outTail[0]!) : 0));
    this.weightErr = new Float64Array(r + 1).map((_, k) => (wTail[0]! > 0 ? Math.sqrt(wTail[k]! / wTail[0]!) : 0));
  }

  atRank(r: number): number {
    return this.outErr[Math.max(0, Math.min(r, this.outErr.length - 1))]!;
  }

  /**
   * Output error of another method's candidate with weight error e: the output error of the SVD
   * truncation with the same weight error (interpolated). It assumes that method, too, gives up
   * the weight's minor directions first.
   */
  forWeightError(e: number): number {
    const w = this.weightErr;
    if (e <= 0) return 0;
    if (e >= w[0]!) return this.outErr[0]!;
    for (let r = 1; r < w.length; r++) {
      if (w[r]! <= e) {
        const f = (w[r - 1]! - e) / Math.max(w[r - 1]! - w[r]!, 1e-30);
        return this.outErr[r - 1]! + f * (this.outErr[r]! - this.outErr[r - 1]!);
      }
    }
    return 0;
  }

  /** Re-prices candidates in output error; SVD candidates are exact, others go through the curve. */
  reprice(cands: Candidate[]): Candidate[] {
    return cands.map((c) => ({
      ...c,
      err: c.spec.method === 'svd' ? this.atRank(c.spec.rank) : c.spec.method === 'dense' ? 0 : this.forWeightError(c.err),
    }));
  }
}
