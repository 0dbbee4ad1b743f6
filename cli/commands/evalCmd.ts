import { loadDataset, limitDataset } from '../../converter/data/datasets.js';
import { evaluate } from '../../converter/evaluate.js';
import { Session } from '../../runtime/session.js';
import { CliError } from '../errors.js';
import { loadModel } from '../modelFile.js';
import { progress } from '../progress.js';

export interface EvalArgs {
  data: string;
  limit?: string;
  batch: string;
  json?: boolean;
}

export function parseLimit(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CliError('BAD_ARGUMENT', `--limit ${v}: expected a positive integer`);
  return n;
}

export function evalCommand(path: string, a: EvalArgs): void {
  const limit = parseLimit(a.limit);
  const batch = Number(a.batch);
  if (!Number.isInteger(batch) || batch < 1) throw new CliError('BAD_ARGUMENT', `--batch ${a.batch}: expected a positive integer`);
  const { model, source } = loadModel(path);
  const ds = limitDataset(loadDataset(a.data, 'test'), limit);
  const session = Session.create(model);
  const bar = progress('eval', ds.count);
  const r = evaluate(session, ds, { batch, onProgress: (d) => bar.update(d) });
  bar.stop();
  const out = {
    model: path, source, data: ds.name, samples: r.samples, correct: r.correct, accuracy: r.accuracy,
    seconds: r.seconds, imagesPerSecond: r.samples / r.seconds,
  };
  if (a.json) process.stdout.write(`${JSON.stringify(out)}\n`);
  else {
    process.stdout.write(
      `${path} on ${ds.name} (${r.samples} test images): accuracy ${(100 * r.accuracy).toFixed(2)}% ` +
        `(${r.correct}/${r.samples}), ${(r.samples / r.seconds).toFixed(0)} images/s\n`,
    );
  }
}
