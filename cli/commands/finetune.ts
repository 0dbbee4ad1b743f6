// factorlite finetune: recovers the accuracy of a compressed .flm by distillation from the dense
// ONNX model it came from (optionally block by block first), and writes the fine-tuned .flm (f32).
// finetuneAfterConvert() is the same step for `convert --finetune <data>`.
import { sourceParams } from '../../converter/compress.js';
import {
  FinetuneDataError, runFinetune as runFinetuneOnData, type FinetuneReporter, type FinetuneSettings, type FinetuneSummary,
} from '../../converter/train/finetuneOnData.js';
import { writeFlmFile } from '../../converter/writer.js';
import type { Model } from '../../runtime/ir.js';
import { CliError } from '../errors.js';
import { checkOutputs } from '../outputs.js';
import { loadModel } from '../modelFile.js';
import { log, progress } from '../progress.js';
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

export { splitValidation, type FinetuneSettings, type FinetuneSummary } from '../../converter/train/finetuneOnData.js';

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

/** Progress and log lines on stderr. */
export const STDERR_REPORTER: FinetuneReporter = { log, progress: (title, total) => progress(title, total) };

/** The library step (converter/train/finetuneOnData.ts) with stderr progress and CLI error codes. */
export function runFinetune(student: Model, teacher: Model, s: FinetuneSettings): { model: Model; summary: FinetuneSummary } {
  try {
    return runFinetuneOnData(student, teacher, s, STDERR_REPORTER);
  } catch (e) {
    // A data set that is not there, or data the model cannot take, is a bad input, as finetune has always said.
    if (e instanceof FinetuneDataError) throw new CliError('BAD_INPUT', e.message, { cause: e.cause });
    throw e;
  }
}

/**
 * `convert --finetune <data>`: fine-tunes the freshly compressed model against the model it was
 * compressed from (the teacher), before quantisation. `epochs` is the --epochs string, if given.
 */
export function finetuneAfterConvert(
  compressed: Model, source: Model, data: string, a: { epochs?: string; labels?: string; blockwise?: boolean; blockSteps?: string; seed?: string; lr?: string; maxMinutes?: number } = {},
): { model: Model; summary: FinetuneSummary } {
  const s = parseFinetuneArgs({
    data, ...(a.epochs !== undefined ? { epochs: a.epochs } : {}), ...(a.labels !== undefined ? { labels: a.labels } : {}),
    ...(a.seed !== undefined ? { seed: a.seed } : {}), ...(a.lr !== undefined ? { lr: a.lr } : {}),
    ...(a.blockwise ? { blockwise: true } : {}), ...(a.blockSteps !== undefined ? { blockSteps: a.blockSteps } : {}),
  });
  if (a.maxMinutes !== undefined) s.maxSeconds = a.maxMinutes * 60;
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
