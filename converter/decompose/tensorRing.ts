// Tensor-ring matrix by TR-SVD (Zhao et al. 2016), optionally refined by TR-ALS, in the tr_dense
// layout of runtime/ir.ts.
import { type RealArray, leadingColumns, relativeError, sumSquares, thinSvd, toF32 } from './linalg.js';
import { permuteAxes } from './modeProduct.js';
import { rankForTail } from './rank.js';
import { trAls } from './trAls.js';
import { interleave, splitLeading } from './ttLayout.js';
import { reconstructTt } from './ttSvd.js';

export interface TensorRingOptions {
  /** Requested ranks [r_0, ..., r_{d-1}] (a closing r_d = r_0 may be appended); capped by the unfoldings. */
  ranks?: readonly number[];
  /** Cap on every rank, r_0 included. */
  maxRank?: number;
  /** Relative error target of TR-SVD: first SVD drops ≤ 2eps²||W||²/d, the others ≤ eps²||W||²/d. Default 0. */
  eps?: number;
  /** TR-ALS sweeps after TR-SVD; each is kept only if it lowers the error. Default 10. */
  alsSweeps?: number;
  /** TR-ALS stops when a sweep gains less than this in relative error. Default 1e-7. */
  tol?: number;
  /** TR-ALS Tikhonov weight, relative. Default 1e-10. */
  ridge?: number;
}

export interface TensorRingResult {
  /** core.k [r_k, m_k, n_k, r_{k+1}] with r_d = r_0. */
  cores: Float32Array[];
  /** [r_0, ..., r_{d-1}, r_d = r_0] */
  ranks: number[];
  /** ||W − TR||_F / ||W||_F of the f32 cores. */
  relError: number;
  /**
   * sqrt(Σ discarded σ²)/||W||_F over the TR-SVD steps: TR-SVD's error in exact arithmetic is at
   * most this, and ALS only lowers it. With eps alone it is ≤ eps.
   */
  errorBound: number;
  alsSweeps: number;
}

/** Factor the first TR-SVD rank as r_0·r_1 ≤ total within caps: largest product, then most balanced. */
function splitFirstRank(total: number, cap0: number, cap1: number): [number, number] {
  let best: [number, number] = [1, 1];
  for (let r0 = 1; r0 <= Math.min(cap0, total); r0++) {
    const r1 = Math.min(cap1, Math.floor(total / r0));
    if (r1 < 1) continue;
    const p = r0 * r1;
    const bp = best[0] * best[1];
    if (p > bp || (p === bp && Math.abs(r0 - r1) < Math.abs(best[0] - best[1]))) best = [r0, r1];
  }
  return best[0] <= best[1] ? best : [best[1], best[0]];
}

/** TR-SVD of w [Π m, Π n] on the interleaved (i_k, j_k) tensor, then optional TR-ALS sweeps. */
export function tensorRing(
  w: RealArray,
  outModes: readonly number[],
  inModes: readonly number[],
  opts: TensorRingOptions = {},
): TensorRingResult {
  const d = outModes.length;
  const dims = outModes.map((m, k) => m * inModes[k]!);
  const t = interleave(w, outModes, inModes, 'tensorRing');
  const normSq = sumSquares(t);
  const eps = opts.eps ?? 0;
  const maxRank = opts.maxRank ?? Infinity;
  const capAt = (k: number) => Math.min(maxRank, opts.ranks?.[k] ?? Infinity);
  if (d === 1) {
    const cores = [toF32(t)];
    return { cores, ranks: [1, 1], relError: 0, errorBound: 0, alsSweeps: 0 };
  }

  // First SVD: its rank is split into the closing rank r_0 and r_1.
  const cols0 = t.length / dims[0]!;
  const first = thinSvd(t, dims[0]!, cols0);
  const total = rankForTail(first.s, (2 * eps * eps * normSq) / d, capAt(0) * capAt(1));
  const [r0, r1] = opts.ranks ? fitRequested(total, capAt(0), capAt(1)) : splitFirstRank(total, capAt(0), capAt(1));
  const rr = r0 * r1;
  let discarded = 0;
  for (let i = rr; i < first.k; i++) discarded += first.s[i]! * first.s[i]!;
  const u0 = leadingColumns(first.u, dims[0]!, first.k, rr);
  // Column a·r1 + b of U becomes core_0[a, i, b].
  const cores: Float64Array[] = [permuteAxes(u0, [dims[0]!, r0, r1], [1, 0, 2])];
  const sv = new Float64Array(rr * cols0);
  for (let a = 0; a < rr; a++) for (let j = 0; j < cols0; j++) sv[a * cols0 + j] = first.s[a]! * first.v[j * first.k + a]!;
  // [r0, r1, rest] -> [r1, rest, r0]: r_0 rides along at the end until the last core.
  let c = permuteAxes(sv, [r0, r1, cols0], [1, 2, 0]);
  const ranks = [r0, r1];

  for (let k = 1; k < d - 1; k++) {
    const rows = ranks[k]! * dims[k]!;
    const cols = c.length / rows;
    const { u, s, v, k: full } = thinSvd(c, rows, cols);
    const r = rankForTail(s, (eps * eps * normSq) / d, capAt(k + 1));
    const step = splitLeading(u, s, v, rows, cols, full, r);
    discarded += step.discarded;
    cores.push(step.core);
    c = step.rest;
    ranks.push(r);
  }
  cores.push(c);
  ranks.push(r0);

  const refined = trAls(t, dims, cores, ranks, {
    sweeps: opts.alsSweeps ?? 10,
    tol: opts.tol ?? 1e-7,
    ridge: opts.ridge ?? 1e-10,
  });
  const out = refined.cores.map(toF32);
  return {
    cores: out,
    ranks,
    relError: relativeError(w, reconstructTt(out, outModes, inModes, ranks)),
    errorBound: normSq === 0 ? 0 : Math.sqrt(discarded / normSq),
    alsSweeps: refined.sweeps,
  };
}

/** Requested (r_0, r_1), shrunk (larger one first) until their product fits the first SVD. */
function fitRequested(total: number, r0: number, r1: number): [number, number] {
  let a = Number.isFinite(r0) ? r0 : total;
  let b = Number.isFinite(r1) ? r1 : total;
  while (a * b > total) {
    if (a >= b) a--;
    else b--;
  }
  return [Math.max(1, a), Math.max(1, b)];
}

/** Dense W [Π m, Π n] from tr_dense cores (tests and error reports only). */
export function reconstructTr(
  cores: readonly ArrayLike<number>[],
  outModes: readonly number[],
  inModes: readonly number[],
  ranks: readonly number[],
): Float64Array {
  const closed = ranks.length === cores.length ? [...ranks, ranks[0]!] : ranks;
  return reconstructTt(cores, outModes, inModes, closed);
}
