import { fitDataToModel, limitDataset, loadData } from '../../converter/data/datasets.js';
import { evaluate, evaluateValues } from '../../converter/evaluate.js';
import { DataError } from '../../converter/data/errors.js';
import { Session } from '../../runtime/session.js';
import { Int8Session } from '../../runtime/int8full/session.js';
import { isInt8Full } from '../../runtime/int8full/params.js';
import { loadModel } from '../modelFile.js';
import { progress } from '../progress.js';
import { positiveIntFlag, threadsFlag } from '../flags.js';

export interface EvalArgs {
  data: string;
  labels?: string;
  targets?: string;
  limit?: string;
  batch: string;
  threads?: string;
  json?: boolean;
}

/** --limit N: a positive integer. */
export const parseLimit = (v: string | undefined): number | undefined => positiveIntFlag('--limit', v);

export function evalCommand(path: string, a: EvalArgs): void {
  const limit = parseLimit(a.limit);
  const batch = positiveIntFlag('--batch', a.batch) ?? 100;
  const threads = threadsFlag(a.threads);
  const { model, source } = loadModel(path);
  const src = limitDataset(loadData(a.data, 'test', { ...(a.labels ? { labels: a.labels } : {}), ...(a.targets ? { targets: a.targets } : {}) }), limit);
  // Shapes, classes and labels are checked against the model before any inference.
  const fit = fitDataToModel(src, model);
  const ds = fit.data;
  if (fit.mode === 'values' && !fit.targets) {
    throw new DataError('DATA_NO_LABELS', `--data ${a.data} has no labels or targets, and the model's outputs [${fit.outShape}] are not shaped like its inputs: give --labels y.npy (class ids) or --targets t.npy`);
  }
  // An int8-full file runs on the integer kernels (its definition), any other on the f32 session.
  const session = isInt8Full(model) ? Int8Session.create(model) : Session.create(model, { threads });
  // The workers end with the command (they never keep the process alive either).
  const close = () => (session instanceof Session ? void session.close() : undefined);
  const bar = progress('eval', ds.count);
  const common = { model: path, source, data: ds.name, samples: ds.count };
  if (fit.mode === 'values') {
    const r = evaluateValues(session, ds, fit.targets!, { batch, onProgress: (d) => bar.update(d) });
    bar.stop();
    close();
    const out = {
      ...common, metric: 'values', targets: fit.targetSource, outputShape: fit.outShape, accuracy: null,
      mse: r.mse, maxAbsError: r.maxAbsError, meanAbsError: r.meanAbsError, seconds: r.seconds, samplesPerSecond: r.samples / r.seconds,
    };
    if (a.json) process.stdout.write(`${JSON.stringify(out)}\n`);
    else {
      process.stdout.write(
        `${path} on ${ds.name} (${r.samples} samples, outputs [${fit.outShape}] against ${fit.targetSource === 'inputs' ? 'the inputs (reconstruction)' : fit.targetSource}): ` +
          `MSE ${r.mse.toExponential(4)}, max abs error ${r.maxAbsError.toExponential(4)}, mean abs error ${r.meanAbsError.toExponential(4)}, ` +
          `${(r.samples / r.seconds).toFixed(0)} samples/s\n`,
      );
    }
    return;
  }
  const r = evaluate(session, { ...ds, labels: fit.labels! }, { batch, onProgress: (d) => bar.update(d) });
  bar.stop();
  close();
  const out = {
    ...common, metric: 'top1', correct: r.correct, accuracy: r.accuracy,
    seconds: r.seconds, imagesPerSecond: r.samples / r.seconds,
  };
  if (a.json) process.stdout.write(`${JSON.stringify(out)}\n`);
  else {
    process.stdout.write(
      `${path} on ${ds.name} (${r.samples} test samples): accuracy ${(100 * r.accuracy).toFixed(2)}% ` +
        `(${r.correct}/${r.samples}), ${(r.samples / r.seconds).toFixed(0)} samples/s\n`,
    );
  }
}
