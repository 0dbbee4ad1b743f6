// Top-1 accuracy of a session over a labelled set, in batches.
import { imagesAsInput } from './data/layout.js';
import type { Session } from '../runtime/session.js';
import type { Dataset } from './data/datasets.js';

export interface EvalResult {
  samples: number;
  correct: number;
  accuracy: number;
  seconds: number;
  /** Arg-max class per sample. */
  predictions: Uint8Array;
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

export function evaluate(
  session: Session, ds: Dataset, opts: { batch?: number; onProgress?: (done: number, total: number) => void } = {},
): EvalResult {
  const batch = opts.batch ?? 100;
  const per = ds.shape.reduce((a, b) => a * b, 1);
  const predictions = new Uint8Array(ds.count);
  const t0 = performance.now();
  let correct = 0;
  for (let start = 0; start < ds.count; start += batch) {
    const n = Math.min(batch, ds.count - start);
    const x = imagesAsInput(session.inputShapes[0], ds.shape, ds.images.subarray(start * per, (start + n) * per), n);
    const y = session.runBatch(x);
    const classes = y.data.length / n;
    argmaxRows(y.data, n, classes, predictions, start);
    for (let i = 0; i < n; i++) if (predictions[start + i] === ds.labels[start + i]) correct++;
    opts.onProgress?.(start + n, ds.count);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { samples: ds.count, correct, accuracy: ds.count ? correct / ds.count : 0, seconds, predictions };
}
