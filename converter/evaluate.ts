// Scores a session over a data set, in batches: top-1 accuracy against class labels, or, for
// models whose outputs are values (autoencoders, regressors), mean squared and max absolute error
// against target outputs.
import type { Tensor } from '../runtime/ir.js';

/** What scoring needs of a session (the f32 Session, or the integer path's Int8Session). */
export interface BatchRunner {
  runBatch(x: Tensor): Tensor;
}
import type { DataSource } from './data/datasets.js';

export interface EvalResult {
  samples: number;
  correct: number;
  accuracy: number;
  seconds: number;
  /** Arg-max class per sample. */
  predictions: Uint8Array;
}

export interface ValueEvalResult {
  samples: number;
  /** Mean over all output elements of (output - target)^2. */
  mse: number;
  maxAbsError: number;
  /** Mean absolute error over all output elements. */
  meanAbsError: number;
  seconds: number;
}

export function argmaxRows(logits: Float32Array, rows: number, cols: number, out: Uint8Array, offset: number): void {
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bv = -Infinity;
    for (let c = 0; c < cols; c++) {
      const v = logits[r * cols + c]!;
      if (v > bv) {
        bv = v;
        best = c;
      }
    }
    out[offset + r] = best;
  }
}

/** Runs `ds` through the session in batches, handing each batch's outputs to `each`. */
function forBatches(
  session: BatchRunner, ds: DataSource, batch: number, each: (y: Float32Array, start: number, n: number) => void,
  onProgress?: (done: number, total: number) => void,
): void {
  const per = ds.shape.reduce((a, b) => a * b, 1);
  for (let start = 0; start < ds.count; start += batch) {
    const n = Math.min(batch, ds.count - start);
    const x = { shape: [n, ...ds.shape], data: ds.images.subarray(start * per, (start + n) * per) };
    each(session.runBatch(x).data, start, n);
    onProgress?.(start + n, ds.count);
  }
}

export function evaluate(
  session: BatchRunner, ds: DataSource & { labels: Uint8Array }, opts: { batch?: number; onProgress?: (done: number, total: number) => void } = {},
): EvalResult {
  const predictions = new Uint8Array(ds.count);
  const t0 = performance.now();
  let correct = 0;
  forBatches(session, ds, opts.batch ?? 100, (y, start, n) => {
    argmaxRows(y, n, y.length / n, predictions, start);
    for (let i = 0; i < n; i++) if (predictions[start + i] === ds.labels[start + i]) correct++;
  }, opts.onProgress);
  const seconds = (performance.now() - t0) / 1000;
  return { samples: ds.count, correct, accuracy: ds.count ? correct / ds.count : 0, seconds, predictions };
}

/** Errors of the outputs against `targets` ([count, ...outputs], flat). */
export function evaluateValues(
  session: BatchRunner, ds: DataSource, targets: Float32Array, opts: { batch?: number; onProgress?: (done: number, total: number) => void } = {},
): ValueEvalResult {
  const t0 = performance.now();
  let sq = 0;
  let abs = 0;
  let maxAbs = 0;
  let n = 0;
  forBatches(session, ds, opts.batch ?? 100, (y, start, rows) => {
    const off = start * (y.length / rows);
    if (off + y.length > targets.length) throw new RangeError(`evaluate: targets hold ${targets.length} values, the outputs need ${off + y.length}`);
    for (let k = 0; k < y.length; k++) {
      const d = y[k]! - targets[off + k]!;
      const ad = Math.abs(d);
      sq += d * d;
      abs += ad;
      if (!(ad <= maxAbs)) maxAbs = Number.isNaN(ad) ? Infinity : ad;
    }
    n += y.length;
  }, opts.onProgress);
  return { samples: ds.count, mse: n ? sq / n : 0, maxAbsError: maxAbs, meanAbsError: n ? abs / n : 0, seconds: (performance.now() - t0) / 1000 };
}
