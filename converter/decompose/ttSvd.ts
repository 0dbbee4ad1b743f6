// TT-matrix by TT-SVD (Oseledets 2011), in the tt_dense layout of runtime/ir.ts.
import { type RealArray, relativeError, sumSquares, thinSvd, toF32 } from './linalg.js';
import { rankForTail } from './rank.js';
import { deinterleave, interleave, ringContract, splitLeading } from './ttLayout.js';

export interface TtSvdOptions {
  /** Cap on every inner rank. */
  maxRank?: number;
  /** Requested ranks [1, r_1, ..., r_{d-1}, 1]; each is capped by what the unfolding allows. */
  ranks?: readonly number[];
  /** Relative Frobenius error target: each SVD drops at most (eps/sqrt(d-1))·||W||_F. Default 0 (exact). */
  eps?: number;
}

export interface TtSvdResult {
  /** core.k [r_k, m_k, n_k, r_{k+1}] */
  cores: Float32Array[];
  /** [r_0 = 1, r_1, ..., r_d = 1] */
  ranks: number[];
  /** ||W − TT||_F / ||W||_F of the f32 cores. */
  relError: number;
  /** sqrt(Σ discarded σ²)/||W||_F: TT-SVD's guarantee (exact arithmetic), ≤ eps when eps is the only limit. */
  errorBound: number;
}

/** TT-SVD of w [Π m, Π n] on the tensor with interleaved index pairs (i_k, j_k). */
export function ttSvd(w: RealArray, outModes: readonly number[], inModes: readonly number[], opts: TtSvdOptions = {}): TtSvdResult {
  const d = outModes.length;
  const dims = outModes.map((m, k) => m * inModes[k]!);
  let c = interleave(w, outModes, inModes, 'ttSvd');
  const normSq = sumSquares(c);
  const eps = opts.eps ?? 0;
  const maxTail = d > 1 ? (eps * eps * normSq) / (d - 1) : 0;
  const ranks = [1];
  const cores: Float64Array[] = [];
  let discarded = 0;
  for (let k = 0; k < d - 1; k++) {
    const rows = ranks[k]! * dims[k]!;
    const cols = c.length / rows;
    const { u, s, v, k: full } = thinSvd(c, rows, cols);
    const cap = Math.min(opts.maxRank ?? Infinity, opts.ranks?.[k + 1] ?? Infinity);
    const r = rankForTail(s, maxTail, cap);
    const step = splitLeading(u, s, v, rows, cols, full, r);
    discarded += step.discarded;
    cores.push(step.core);
    c = step.rest;
    ranks.push(r);
  }
  cores.push(c);
  ranks.push(1);
  const out = cores.map(toF32);
  return {
    cores: out,
    ranks,
    relError: relativeError(w, reconstructTt(out, outModes, inModes, ranks)),
    errorBound: normSq === 0 ? 0 : Math.sqrt(discarded / normSq),
  };
}

/** Dense W [Π m, Π n] from tt_dense or tr_dense cores [r_k, m_k, n_k, r_{k+1}] (tests and error reports only). */
export function reconstructTt(
  cores: readonly ArrayLike<number>[],
  outModes: readonly number[],
  inModes: readonly number[],
  ranks: readonly number[],
): Float64Array {
  const dims = outModes.map((m, k) => m * inModes[k]!);
  cores.forEach((g, k) => {
    const want = ranks[k]! * dims[k]! * ranks[k + 1]!;
    if (g.length !== want) throw new Error(`reconstructTt: core ${k} has ${g.length} values, ranks say ${want}`);
  });
  return deinterleave(ringContract(cores, ranks, dims), outModes, inModes);
}
