import { readFileSync } from 'node:fs';
import { compressModel, METHODS, type CompressReport, type Method } from '../../converter/compress.js';
import { fitDataToModel, limitDataset, loadData } from '../../converter/data/datasets.js';
import { DataError } from '../../converter/data/errors.js';
import { quantizeModel, QUANTS, type QuantChoice } from '../../converter/quantize.js';
import { writeFlmFile } from '../../converter/writer.js';
import { VERSION } from '../version.js';
import { finetuneAfterConvert, type FinetuneSummary } from './finetune.js';
import { CliError } from '../errors.js';
import { checkOutputs } from '../outputs.js';
import { loadModel } from '../modelFile.js';
import { log, progress } from '../progress.js';
import { formatBytes, table } from '../table.js';
import { statSync } from 'node:fs';

export interface ConvertArgs {
  output: string;
  labels?: string;
  method: string;
  ratio?: string;
  energy?: string;
  ranks?: string;
  quant: string;
  /** Round every chosen rank to a multiple of this (4 or 8). */
  roundRanks?: string;
  calib?: string;
  /** Fine-tune by distillation from the input model on this data set, before quantisation. */
  finetune?: string;
  /** Fine-tuning epochs (with --finetune). */
  epochs?: string;
  json?: boolean;
}

export function parseNumber(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new CliError('BAD_ARGUMENT', `${flag} ${v}: not a number`);
  return n;
}

export function readRanksFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new CliError('BAD_INPUT', `ranks file ${path} cannot be read`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new CliError('BAD_INPUT', `ranks file ${path} is not a JSON object of layer -> ranks (${(e as Error).message})`);
  }
}

export async function convertCommand(input: string, a: ConvertArgs): Promise<void> {
  if (!(METHODS as readonly string[]).includes(a.method)) throw new CliError('BAD_ARGUMENT', `--method ${a.method}: expected one of ${METHODS.join(', ')}`);
  if (!(QUANTS as readonly string[]).includes(a.quant)) throw new CliError('BAD_ARGUMENT', `--quant ${a.quant}: expected one of ${QUANTS.join(', ')}`);
  const method = a.method as Method;
  const ratio = parseNumber('--ratio', a.ratio);
  const energy = parseNumber('--energy', a.energy);
  if (method !== 'none' && ratio === undefined && energy === undefined && a.ranks === undefined) {
    throw new CliError('BAD_ARGUMENT', 'convert needs one of --ratio, --energy, --ranks (or --method none)');
  }
  const roundRanks = parseNumber('--round-ranks', a.roundRanks);
  if (roundRanks !== undefined) {
    if (!(Number.isInteger(roundRanks) && roundRanks >= 2 && roundRanks <= 64)) throw new CliError('BAD_ARGUMENT', `--round-ranks ${a.roundRanks}: expected an integer from 2 to 64 (4 or 8 suit the SIMD kernels)`);
    if (method === 'none') throw new CliError('BAD_ARGUMENT', '--round-ranks needs a factorising --method (not none)');
  }
  checkOutputs({ inputs: [input, a.ranks, a.calib, a.finetune], outputs: [a.output] });
  const ranks = a.ranks ? readRanksFile(a.ranks) : undefined;
  const t0 = performance.now();
  const { model } = loadModel(input);
  let calibration;
  if (a.calib) {
    // Inputs only; their shape is checked against the model's before any work.
    const ds = fitDataToModel(limitDataset(loadData(a.calib, 'train'), 256), model).data;
    calibration = { shape: [ds.count, ...ds.shape], data: ds.images };
  }
  if (a.labels !== undefined && !a.finetune) throw new CliError('BAD_ARGUMENT', '--labels goes with --finetune x.npy');
  if (a.finetune) {
    // The fine-tuning data (shape, labels in the model's classes) is checked before the compression runs.
    const fit = fitDataToModel(loadData(a.finetune, 'test', a.labels !== undefined ? { labels: a.labels } : {}), model);
    if (fit.mode !== 'classes') throw new DataError('DATA_NO_LABELS', `--finetune ${a.finetune}: fine-tuning needs class labels (give --labels y.npy)`);
  }
  const bar = progress('convert %', 100, !a.json || process.stderr.isTTY === true);
  const { model: out, report } = compressModel(model, {
    method,
    ...(ratio !== undefined ? { ratio } : {}),
    ...(energy !== undefined ? { energy } : {}),
    ...(ranks ? { ranks } : {}),
    ...(calibration ? { calibration } : {}),
    ...(roundRanks !== undefined ? { roundRanks } : {}),
    ...(a.json ? {} : { log }),
    onLayer: (done, total, label) => {
      bar.update(Math.round((100 * done) / Math.max(total, 1)), label);
    },
  });
  bar.stop();
  let tuned = out;
  let finetune: FinetuneSummary | undefined;
  if (a.finetune !== undefined) {
    ({ model: tuned, summary: finetune } = finetuneAfterConvert(out, model, a.finetune, {
      ...(a.epochs !== undefined ? { epochs: a.epochs } : {}),
      ...(a.labels !== undefined ? { labels: a.labels } : {}),
    }));
  } else if (a.epochs !== undefined) {
    throw new CliError('BAD_ARGUMENT', '--epochs needs --finetune <data>');
  }
  const final = quantizeModel(tuned, a.quant as QuantChoice);
  final.metadata['convert.converter_version'] = VERSION;
  await writeFlmFile(final, a.output);
  const fileBytes = statSync(a.output).size;
  const sourceBytes = report.sourceParams * 4;
  const result = {
    input, output: a.output, method, quant: a.quant,
    sourceParams: report.sourceParams, params: report.params, ratio: report.ratio,
    targetRatio: report.targetRatio ?? null,
    roundRanks: report.roundRanks ?? null,
    sourceBytes, bytes: fileBytes, bytesRatio: sourceBytes / fileBytes,
    seconds: (performance.now() - t0) / 1000,
    layers: report.layers,
    ...(finetune ? { finetune } : {}),
  };
  if (a.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  printReport(report);
  process.stdout.write(
    `\n${a.output}: ${formatBytes(fileBytes)} (dense f32 ${formatBytes(sourceBytes)}, ${result.bytesRatio.toFixed(2)}x smaller); ` +
      `${report.params} params vs ${report.sourceParams} (${report.ratio.toFixed(2)}x) in ${result.seconds.toFixed(1)} s\n`,
  );
  if (finetune) {
    const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(2)}%`);
    process.stdout.write(
      `fine-tuned on ${finetune.trainSamples} ${finetune.data} images for ${finetune.epochs} epoch(s): test accuracy ` +
        `${pct(finetune.accuracyBefore)} -> ${pct(finetune.accuracy)} (teacher ${pct(finetune.teacherAccuracy)}) on ${finetune.samples} images\n`,
    );
  }
}

function printReport(r: CompressReport): void {
  process.stdout.write(`${table(
    ['layer', 'from', 'to', 'ranks', ...(r.roundRanks ? ['chosen ranks'] : []), 'params before', 'params after', 'rel. error'],
    r.layers.map((l) => [
      l.name, l.sourceOp, l.op, l.ranks.join('x') || '-',
      ...(r.roundRanks ? [l.ranksBeforeRounding?.join('x') || '-'] : []),
      l.paramsBefore, l.paramsAfter, l.relError.toFixed(4),
    ]),
  )}\n`);
}
