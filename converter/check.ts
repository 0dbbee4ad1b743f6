// The measured check of a converted model: run it and its source on the same held-out samples and
// compare. For a classifier (one output row of at least two scores per sample) the figure is top-1
// agreement with the source; for any model, the relative change of the outputs.
import type { Model, Tensor } from '../runtime/ir.js';
import { Int8Session } from '../runtime/int8full/session.js';
import { isInt8Full } from '../runtime/int8full/params.js';
import { Session } from '../runtime/session.js';
import { mulberry32, normalSource } from './decompose/prng.js';

export interface AgreementCheck {
  /** Where the held-out samples came from. */
  data: 'calibration' | 'synthetic';
  samples: number;
  /** Top-1 agreement with the source model (null when the output is not a score row per sample). */
  agreement: number | null;
  /** ||y - y_source|| / ||y_source|| over the held-out samples. */
  outputError: number;
  /** What the rank search expected: agreement and output error from its predicted output change. */
  predictedAgreement: number | null;
  predictedOutputError: number | null;
  /**
   * The source's most frequent top-1 class on the held-out samples and the share of samples it
   * takes (null when not a classifier). A model that always answered that class would agree that
   * often: when the share is high (typical of synthetic inputs, on which many classifiers give one
   * answer), a high agreement says little about real inputs.
   */
  majorityClass: number | null;
  majorityShare: number | null;
}

/** Below this top-1 agreement with the source, convert warns. */
export const WARN_AGREEMENT = 0.9;
/**
 * Outputs that are not class scores: above this relative output change, convert warns. Calibrated
 * by bench/outputError.ts on two trained non-classifiers compressed by SVD, TT and Tucker at 2x to
 * 20x: an autoencoder of MLPerf Tiny's AD shape (task: anomaly AUC) and a rotation-angle CNN
 * (task: R^2). The smallest output error of a result that lost more than 0.02 of its task metric
 * was 0.12 (the regressor, SVD 3x); below 0.1 no result was damaged. The old figure, 0.3, let three
 * damaged regressors through without a word. The autoencoder tolerates more (0.33 at a 0.009 AUC
 * loss) and gets two warnings for little: a warning that may be unneeded beats a silent loss.
 */
export const WARN_OUTPUT_ERROR = 0.1;

/** What is wrong with a converted model by its measured check, if anything (null: nothing). */
export type CheckProblem =
  | { kind: 'not-finite' }
  | { kind: 'low-agreement'; agreement: number }
  | { kind: 'weak-check'; agreement: number; majorityClass: number; majorityShare: number }
  | { kind: 'output-error'; outputError: number };

export function checkProblem(c: AgreementCheck): CheckProblem | null {
  if (!Number.isFinite(c.outputError)) return { kind: 'not-finite' };
  if (c.agreement !== null) {
    if (c.agreement < WARN_AGREEMENT) return { kind: 'low-agreement', agreement: c.agreement };
    // A constant answer would pass too: the check cannot tell a useful model from a useless one.
    if (c.majorityShare !== null && c.majorityClass !== null && c.majorityShare >= WARN_AGREEMENT) {
      return { kind: 'weak-check', agreement: c.agreement, majorityClass: c.majorityClass, majorityShare: c.majorityShare };
    }
    return null;
  }
  return c.outputError > WARN_OUTPUT_ERROR ? { kind: 'output-error', outputError: c.outputError } : null;
}

/** The source's most frequent top-1 class over `rows` score rows, and its share. */
export function majorityOf(base: Float32Array, rows: number): { cls: number; share: number } {
  const a = argmaxRows(base, rows);
  const counts = new Map<number, number>();
  let cls = 0;
  let most = 0;
  for (const k of a) {
    const n = (counts.get(k) ?? 0) + 1;
    counts.set(k, n);
    if (n > most) {
      most = n;
      cls = k;
    }
  }
  return { cls, share: rows ? most / rows : 0 };
}

/** Index of the largest value of each row. */
export function argmaxRows(y: Float32Array, rows: number): Int32Array {
  const cols = y.length / rows;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (y[r * cols + c]! > y[r * cols + best]!) best = c;
    out[r] = best;
  }
  return out;
}

/**
 * Scores per sample when the output is a row of at least two per sample ([N, C], or [N, C, 1, 1]
 * as a convolutional head without a flatten gives); else 0 (not a classifier).
 */
export function classesOf(y: Tensor, samples: number): number {
  const per = y.data.length / samples;
  const row = y.shape.length >= 2 && y.shape[0] === samples && y.shape.slice(2).every((d) => d === 1);
  return Number.isInteger(per) && per >= 2 && row && y.shape[1] === per ? per : 0;
}

export function outputChange(y: Float32Array, base: Float32Array): number {
  let d = 0;
  let e = 0;
  for (let i = 0; i < base.length; i++) {
    d += (y[i]! - base[i]!) ** 2;
    e += base[i]! ** 2;
  }
  return e > 0 ? Math.sqrt(d / e) : 0;
}

export function topOneAgreement(y: Float32Array, base: Float32Array, rows: number): number {
  const a = argmaxRows(y, rows);
  const b = argmaxRows(base, rows);
  let same = 0;
  for (let i = 0; i < rows; i++) if (a[i] === b[i]) same++;
  return rows ? same / rows : 1;
}

/**
 * Agreement to expect when the outputs move by a relative error `relError`: perturb the source's
 * outputs by Gaussian noise of that relative energy (a few seeded draws) and count kept arg-maxes.
 * Errors are not Gaussian, so this is a guide, reported next to the measured figure.
 */
export function predictAgreement(base: Float32Array, rows: number, relError: number, draws = 8, seed = 11): number {
  let energy = 0;
  for (const v of base) energy += v * v;
  const sigma = relError * Math.sqrt(energy / base.length);
  const normal = normalSource(mulberry32(seed));
  const ref = argmaxRows(base, rows);
  const y = new Float32Array(base.length);
  let same = 0;
  for (let d = 0; d < draws; d++) {
    for (let i = 0; i < y.length; i++) y[i] = base[i]! + sigma * normal();
    const a = argmaxRows(y, rows);
    for (let r = 0; r < rows; r++) if (a[r] === ref[r]) same++;
  }
  return rows ? same / (rows * draws) : 1;
}

/**
 * Every output of a one-input model on the batch `x`, sample by sample: shape [n, the outputs'
 * per-sample sizes added up] (a one-output model: that output). The rank search and the check
 * compare a compressed model with its source on all its outputs.
 */
export function runAllOutputs(session: { inputNames: readonly string[]; outputNames: readonly string[]; run(feeds: Record<string, Tensor>): Record<string, Tensor> }, x: Tensor): Tensor {
  if (session.inputNames.length !== 1) throw new Error(`the model has ${session.inputNames.length} inputs; calibration feeds one`);
  const ys = session.run({ [session.inputNames[0]!]: x });
  const outs = session.outputNames.map((o) => ys[o]!);
  if (outs.length === 1) return outs[0]!;
  const n = x.shape[0]!;
  const per = outs.map((t) => t.data.length / n);
  const width = per.reduce((a, b) => a + b, 0);
  if (!per.every((p) => Number.isInteger(p))) {
    // An output without the batch axis: the outputs one after the other (what the comparisons need is one fixed order).
    const all = new Float32Array(outs.reduce((a, t) => a + t.data.length, 0));
    let o = 0;
    for (const t of outs) {
      all.set(t.data as Float32Array, o);
      o += t.data.length;
    }
    return { shape: [all.length], data: all };
  }
  const data = new Float32Array(n * width);
  for (let s = 0; s < n; s++) {
    let o = s * width;
    outs.forEach((t, k) => {
      data.set((t.data as Float32Array).subarray(s * per[k]!, (s + 1) * per[k]!), o);
      o += per[k]!;
    });
  }
  return { shape: [n, width], data };
}

/** Runs both models on `x` and compares (see AgreementCheck); top-1 agreement only for one output. */
export function checkAgreement(
  source: Model, compressed: Model, x: Tensor, data: AgreementCheck['data'], predictedOutputError?: number,
): AgreementCheck {
  const samples = x.shape[0]!;
  const base = runAllOutputs(Session.create(source, { retainWeights: false }), x);
  const y = runAllOutputs(isInt8Full(compressed) ? Int8Session.create(compressed) : Session.create(compressed, { retainWeights: false }), x);
  const classes = source.graph.outputs.length === 1 ? classesOf(base, samples) : 0;
  const predicted = predictedOutputError !== undefined && Number.isFinite(predictedOutputError);
  const majority = classes ? majorityOf(base.data, samples) : null;
  return {
    data, samples,
    agreement: classes ? topOneAgreement(y.data, base.data, samples) : null,
    outputError: outputChange(y.data, base.data),
    predictedAgreement: classes && predicted ? predictAgreement(base.data, samples, predictedOutputError!) : null,
    predictedOutputError: predicted ? predictedOutputError! : null,
    majorityClass: majority ? majority.cls : null,
    majorityShare: majority ? majority.share : null,
  };
}
