// factorlite finetune: recovers the accuracy of a compressed .flm by distillation from the dense
// ONNX model it came from (optionally block by block first), and writes the fine-tuned .flm (f32).
// finetuneAfterConvert() is the same step for `convert --finetune <data>`.
import { labelledFor, limitDataset, loadData, modelShapes, type Dataset } from '../../converter/data/datasets.js';
import { sourceParams } from '../../converter/compress.js';
import { finetune, FINETUNE_DEFAULTS, type FinetuneOptions, type FinetuneResult } from '../../converter/train/finetune.js';
import { writeFlmFile } from '../../converter/writer.js';
import type { Model } from '../../runtime/ir.js';
import { CliError } from '../errors.js';
import { checkOutputs } from '../outputs.js';
import { loadModel } from '../modelFile.js';
import { log, progress, type Progress } from '../progress.js';
import { VERSION } from '../version.js';
import { integerFlag, numberFlag } from '../flags.js';

/** Options as commander hands them over (strings). */
export interface FinetuneArgs {
  teacher: string;
  data: string;
  labels?: string;
  output: string;
  epochs?: string;
  batch?: string;
  lr?: string;
  temperature?: string;
  alpha?: string;
  blockwise?: boolean;
  blockSteps?: string;
  limit?: string;
  evalLimit?: string;
  seed?: string;
  json?: boolean;
  progress?: boolean;
}

function bad(msg: string): CliError {
  return new CliError('BAD_ARGUMENT', msg);
}

const int = (flag: string, v: string | undefined, min: number): number | undefined => integerFlag(flag, v, min);
const num = (flag: string, v: string | undefined, ok: (x: number) => boolean, what: string): number | undefined => numberFlag(flag, v, { ok, what });

const pct = (x: number | undefined) => (x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);

/** Parsed, checked fine-tuning settings shared by `finetune` and `convert --finetune`. */
export interface FinetuneSettings {
  data: string;
  /** --labels y.npy with --data x.npy. */
  labels?: string;
  epochs?: number;
  batch?: number;
  lr?: number;
  temperature?: number;
  alpha?: number;
  blockwise?: boolean;
  blockSteps?: number;
  limit?: number;
  evalLimit?: number;
  seed?: number;
  /** Progress bar and log lines on stderr (default true). */
  verbose?: boolean;
}

export function parseFinetuneArgs(a: Omit<FinetuneArgs, 'teacher' | 'output' | 'json'>): FinetuneSettings {
  const s: FinetuneSettings = { data: a.data, ...(a.labels !== undefined ? { labels: a.labels } : {}) };
  const set = <K extends keyof FinetuneSettings>(k: K, v: FinetuneSettings[K] | undefined) => {
    if (v !== undefined) s[k] = v;
  };
  set('epochs', int('--epochs', a.epochs, 0));
  set('batch', int('--batch', a.batch, 1));
  set('lr', num('--lr', a.lr, (x) => x > 0, 'a positive number'));
  set('temperature', num('--temperature', a.temperature, (x) => x > 0, 'a positive number'));
  set('alpha', num('--alpha', a.alpha, (x) => x >= 0 && x <= 1, 'a number in [0, 1]'));
  set('blockSteps', int('--block-steps', a.blockSteps, 0));
  set('limit', int('--limit', a.limit, 1));
  set('evalLimit', int('--eval-limit', a.evalLimit, 1));
  set('seed', int('--seed', a.seed, 0));
  if (a.blockwise) s.blockwise = true;
  if (s.blockSteps !== undefined && !s.blockwise) throw bad('--block-steps needs --blockwise');
  if (s.epochs === 0 && !s.blockwise) throw bad('--epochs 0 needs --blockwise (otherwise nothing is trained)');
  return s;
}

export interface FinetuneSummary {
  data: string;
  trainSamples: number;
  samples: number;
  accuracyBefore: number | null;
  accuracy: number | null;
  teacherAccuracy: number | null;
  epochs: number;
  batch: number;
  lr: number;
  temperature: number;
  alpha: number;
  blockwise: boolean;
  blockSteps: number;
  seed: number;
  params: number;
  history: FinetuneResult['history'];
  blocks: FinetuneResult['blocks'];
  /** Held-out training samples that pick the checkpoint kept, and the epoch kept (0 = before training). */
  validationSamples: number;
  bestEpoch: number | null;
  seconds: number;
}

/**
 * Training samples and held-out validation samples from one training split: with a limit L, the
 * first L train and up to 1000 after them validate; without, the last 10% (at most 2000) validate.
 * The fine-tuning keeps its best checkpoint on the validation samples, never on the test split.
 */
export function splitValidation(ds: Dataset, limit: number | undefined): { train: Dataset; validation?: Dataset } {
  const per = ds.shape.reduce((a, b) => a * b, 1);
  const slice = (a: number, b: number): Dataset => ({ ...ds, count: b - a, images: ds.images.subarray(a * per, b * per), labels: ds.labels.subarray(a, b) });
  if (limit !== undefined && limit < ds.count) {
    const v = Math.min(1000, ds.count - limit);
    return { train: limitDataset(ds, limit), validation: slice(limit, limit + v) };
  }
  const v = Math.min(2000, Math.floor(ds.count / 10));
  return v >= 10 ? { train: slice(0, ds.count - v), validation: slice(ds.count - v, ds.count) } : { train: ds };
}

/**
 * Fine-tunes `student` against `teacher` on the data set of `s`: the step that `finetune` runs on a
 * file and `convert --finetune` runs between compression and quantisation.
 */
export function runFinetune(student: Model, teacher: Model, s: FinetuneSettings): { model: Model; summary: FinetuneSummary } {
  const verbose = s.verbose ?? true;
  // Shapes and labels are checked against the teacher before any training (typed DataError codes).
  const files = s.labels !== undefined ? { labels: s.labels } : {};
  const { inShape, outShape } = modelShapes(teacher);
  const load = (split: 'train' | 'test') => {
    try {
      return loadData(s.data, split, files);
    } catch (e) {
      // A data set that is not there is a bad --data argument, as finetune has always said.
      if ((e as { code?: unknown }).code === 'DATA_NOT_FOUND') throw new CliError('BAD_INPUT', `--data ${s.data}: ${(e as Error).message}`, { cause: e });
      throw e;
    }
  };
  const labelled = (split: 'train' | 'test', limit: number | undefined) => labelledFor(limitDataset(load(split), limit), inShape, outShape, 'finetune');
  // The checkpoint kept is chosen on held-out training samples (splitValidation), never on the test split.
  const { train: trainSet, validation } = splitValidation(labelled('train', undefined), s.limit);
  const testSet = labelled('test', s.evalLimit);
  let bar: Progress | undefined;
  const o: FinetuneOptions = {
    ...(s.epochs !== undefined ? { epochs: s.epochs } : {}),
    ...(s.batch !== undefined ? { batch: s.batch } : {}),
    ...(s.lr !== undefined ? { lr: s.lr } : {}),
    ...(s.temperature !== undefined ? { temperature: s.temperature } : {}),
    ...(s.alpha !== undefined ? { alpha: s.alpha } : {}),
    ...(s.blockwise ? { blockwise: true } : {}),
    ...(s.blockSteps !== undefined ? { blockSteps: s.blockSteps } : {}),
    ...(s.seed !== undefined ? { seed: s.seed } : {}),
    ...(validation ? { validation } : {}),
    ...(verbose ? { log } : {}),
    onProgress: (p) => {
      if (!verbose) return;
      if (p.step === 0) bar = progress(p.phase === 'blockwise' ? 'block-wise' : `epoch ${p.epoch + 1}/${p.epochs}`, p.steps);
      bar?.update(p.step + 1, `loss ${p.loss.toFixed(4)}${p.accuracy !== undefined ? ` acc ${pct(p.accuracy)}` : ''} lr ${p.lr.toPrecision(3)}`);
      if (p.step + 1 === p.steps) bar?.stop();
    },
    onEpoch: (r) => {
      if (verbose) log(`finetune epoch ${r.epoch}: loss ${r.loss.toFixed(4)}, train ${pct(r.trainAccuracy)}, test ${pct(r.testAccuracy)} (runtime), ${r.seconds.toFixed(1)} s`);
    },
  };
  let r: FinetuneResult;
  try {
    r = finetune(student, teacher, trainSet, testSet, o);
  } catch (e) {
    const msg = (e as Error).message;
    if (msg.startsWith('finetune:') || msg.startsWith('node ')) throw new CliError('BAD_INPUT', msg, { cause: e });
    throw e;
  }
  const d = FINETUNE_DEFAULTS;
  const summary: FinetuneSummary = {
    data: trainSet.name,
    trainSamples: trainSet.count,
    samples: testSet.count,
    accuracyBefore: r.before?.accuracy ?? null,
    accuracy: r.after?.accuracy ?? null,
    teacherAccuracy: r.teacher?.accuracy ?? null,
    epochs: s.epochs ?? d.epochs,
    batch: s.batch ?? d.batch,
    lr: s.lr ?? d.lr,
    temperature: s.temperature ?? d.temperature,
    alpha: s.alpha ?? d.alpha,
    blockwise: s.blockwise ?? false,
    blockSteps: s.blockwise ? s.blockSteps ?? d.blockSteps : 0,
    seed: s.seed ?? d.seed,
    params: r.params,
    history: r.history,
    blocks: r.blocks,
    validationSamples: validation?.count ?? 0,
    bestEpoch: r.best?.epoch ?? null,
    seconds: r.seconds,
  };
  return { model: r.model, summary };
}

/**
 * `convert --finetune <data>`: fine-tunes the freshly compressed model against the model it was
 * compressed from (the teacher), before quantisation. `epochs` is the --epochs string, if given.
 */
export function finetuneAfterConvert(
  compressed: Model, source: Model, data: string, a: { epochs?: string; labels?: string } = {},
): { model: Model; summary: FinetuneSummary } {
  const s = parseFinetuneArgs({ data, ...(a.epochs !== undefined ? { epochs: a.epochs } : {}), ...(a.labels !== undefined ? { labels: a.labels } : {}) });
  // Log lines go to stderr even with --json (stdout keeps the one JSON object).
  s.verbose = true;
  return runFinetune(compressed, source, s);
}

export async function finetuneCommand(path: string, a: FinetuneArgs): Promise<void> {
  if (!a.teacher) throw bad('--teacher <model.onnx> is required');
  if (!a.output || !a.output.endsWith('.flm')) throw bad(`-o ${a.output ?? ''}: the output must be a .flm file`);
  checkOutputs({ inputs: [path, a.teacher, a.data], outputs: [a.output] });
  const s = parseFinetuneArgs(a);
  s.verbose = a.progress !== false;
  const t0 = performance.now();
  const { model: student } = loadModel(path);
  const { model: teacher } = loadModel(a.teacher);
  const { model, summary } = runFinetune(student, teacher, s);
  model.metadata['finetune.teacher'] = a.teacher;
  model.metadata['convert.converter_version'] = VERSION;
  const srcParams = typeof student.metadata['convert.source_params'] === 'number' ? student.metadata['convert.source_params'] : sourceParams(teacher);
  await writeFlmFile(model, a.output);
  const out = {
    input: path,
    teacher: a.teacher,
    output: a.output,
    ...summary,
    sourceParams: srcParams,
    ratio: srcParams / summary.params,
    seconds: (performance.now() - t0) / 1000,
  };
  if (a.json) {
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  process.stdout.write(
    `${a.output}: test accuracy ${pct(out.accuracyBefore ?? undefined)} -> ${pct(out.accuracy ?? undefined)} ` +
      `(teacher ${pct(out.teacherAccuracy ?? undefined)}) on ${out.samples} ${summary.data} images; ` +
      `${out.params} params (${out.ratio.toFixed(2)}x fewer than ${srcParams}), ${out.seconds.toFixed(1)} s\n`,
  );
}
