// Fine-tuning on a data set: load the train and test splits the teacher can take, hold out
// training samples to pick the checkpoint, distil (train/finetune.ts), and summarise. The step
// behind `factorlite finetune` and `convert --finetune`, and what sweeps and benchmarks call.
import { labelledFor, limitDataset, loadData, modelShapes, type Dataset } from '../data/datasets.js';
import type { Model } from '../../runtime/ir.js';
import { finetune, FINETUNE_DEFAULTS, type FinetuneOptions, type FinetuneResult } from './finetune.js';

/** A data set that is not there, or a model and data that do not fit together. */
export class FinetuneDataError extends Error {
  readonly code = 'FINETUNE_BAD_INPUT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Where progress goes: a log line, and a bar per phase (both on stderr in the CLI). */
export interface FinetuneReporter {
  log(message: string): void;
  progress(title: string, total: number): { update(done: number, label?: string): void; stop(): void };
}

const pct = (x: number | undefined) => (x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);

/** Fine-tuning settings (the CLI parses them from `finetune` and `convert --finetune` flags). */
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
  /** Wall-clock bound of the end-to-end phase (FinetuneOptions.maxSeconds). */
  maxSeconds?: number;
  /** Progress bar and log lines through the reporter (default true). */
  verbose?: boolean;
}

export interface FinetuneSummary {
  data: string;
  trainSamples: number;
  samples: number;
  accuracyBefore: number | null;
  /** Test accuracy after the block-wise phase (with blockwise), before end-to-end training. */
  accuracyAfterBlockwise: number | null;
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
  /** End-to-end steps run, and the steps of the epochs asked for (fewer run: cut by maxSeconds). */
  steps: number;
  plannedSteps: number;
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
export function runFinetune(
  student: Model, teacher: Model, s: FinetuneSettings, reporter?: FinetuneReporter,
): { model: Model; summary: FinetuneSummary } {
  const verbose = (s.verbose ?? true) && reporter !== undefined;
  const log = (m: string) => reporter?.log(m);
  // Shapes and labels are checked against the teacher before any training (typed DataError codes).
  const files = s.labels !== undefined ? { labels: s.labels } : {};
  const { inShape, outShape } = modelShapes(teacher);
  const load = (split: 'train' | 'test') => {
    try {
      return loadData(s.data, split, files);
    } catch (e) {
      // A data set that is not there is a bad --data argument, as finetune has always said.
      if ((e as { code?: unknown }).code === 'DATA_NOT_FOUND') throw new FinetuneDataError(`--data ${s.data}: ${(e as Error).message}`, { cause: e });
      throw e;
    }
  };
  const labelled = (split: 'train' | 'test', limit: number | undefined) => labelledFor(limitDataset(load(split), limit), inShape, outShape, 'finetune');
  // The checkpoint kept is chosen on held-out training samples (splitValidation), never on the test split.
  const { train: trainSet, validation } = splitValidation(labelled('train', undefined), s.limit);
  const testSet = labelled('test', s.evalLimit);
  let bar: ReturnType<FinetuneReporter['progress']> | undefined;
  const o: FinetuneOptions = {
    ...(s.epochs !== undefined ? { epochs: s.epochs } : {}),
    ...(s.batch !== undefined ? { batch: s.batch } : {}),
    ...(s.lr !== undefined ? { lr: s.lr } : {}),
    ...(s.temperature !== undefined ? { temperature: s.temperature } : {}),
    ...(s.alpha !== undefined ? { alpha: s.alpha } : {}),
    ...(s.blockwise ? { blockwise: true } : {}),
    ...(s.blockSteps !== undefined ? { blockSteps: s.blockSteps } : {}),
    ...(s.seed !== undefined ? { seed: s.seed } : {}),
    ...(s.maxSeconds !== undefined ? { maxSeconds: s.maxSeconds } : {}),
    ...(validation ? { validation } : {}),
    ...(verbose ? { log } : {}),
    onProgress: (p) => {
      if (!verbose) return;
      if (p.step === 0) bar = reporter?.progress(p.phase === 'blockwise' ? 'block-wise' : `epoch ${p.epoch + 1}/${p.epochs}`, p.steps);
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
    if (msg.startsWith('finetune:') || msg.startsWith('node ')) throw new FinetuneDataError(msg, { cause: e });
    throw e;
  }
  const d = FINETUNE_DEFAULTS;
  const summary: FinetuneSummary = {
    data: trainSet.name,
    trainSamples: trainSet.count,
    samples: testSet.count,
    accuracyBefore: r.before?.accuracy ?? null,
    accuracyAfterBlockwise: r.afterBlockwise?.accuracy ?? null,
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
    steps: r.steps,
    plannedSteps: r.plannedSteps,
    seconds: r.seconds,
  };
  return { model: r.model, summary };
}


/**
 * `convert --finetune <data>`: fine-tunes the freshly compressed model against the model it was
 * compressed from (the teacher), before quantisation; log lines go to the reporter.
 */
export function finetuneAfterConvert(
  compressed: Model, source: Model, data: string, a: { epochs?: number; labels?: string } = {}, reporter?: FinetuneReporter,
): { model: Model; summary: FinetuneSummary } {
  const s: FinetuneSettings = { data, ...(a.epochs !== undefined ? { epochs: a.epochs } : {}), ...(a.labels !== undefined ? { labels: a.labels } : {}), verbose: true };
  return runFinetune(compressed, source, s, reporter);
}
