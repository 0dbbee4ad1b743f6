import { compressModel, METHODS, PREFER, type CompressReport, type Method, type Prefer } from '../../converter/compress.js';
import type { CorrectReport } from '../../converter/correct.js';
import { fitData, fitDataToModel, limitDataset, loadData } from '../../converter/data/datasets.js';
import { DataError } from '../../converter/data/errors.js';
import { quantizeModel, QUANTS, type QuantChoice } from '../../converter/quantize.js';
import { writeFlmFile } from '../../converter/writer.js';
import { INT8_KINDS, int8FullRefusals, quantizeInt8Full } from '../../converter/int8Full.js';
import { CompressError } from '../../converter/compressError.js';
import { VERSION } from '../version.js';
import { convertToTarget, type TargetArgs } from './convertTarget.js';
import { finetuneAfterConvert, type FinetuneSummary } from './finetune.js';
import { CliError } from '../errors.js';
import { checkOutputs } from '../outputs.js';
import { loadModel } from '../modelFile.js';
import { log, progress } from '../progress.js';
import { formatBytes, table } from '../table.js';
import { statSync } from 'node:fs';
import { checkAgreement, type AgreementCheck } from '../../converter/check.js';
import { checkWarning, isImage28 } from './checkWarning.js';
import { randomInputs } from '../../converter/rank/sensitivity.js';
import type { Model, Tensor } from '../../runtime/ir.js';
import { bytesFlag, integerFlag, numberFlag } from '../flags.js';
import { checkArenaFit, type ArenaFit } from '../../converter/rank/arenaFit.js';
import { readRanksFile, type ConvertArgs } from './convertArgs.js';
import { parseModesFlag } from '../../converter/methods/layerModes.js';

export { readRanksFile, type ConvertArgs } from './convertArgs.js';

/** --quant choices of convert: the weight dtypes, and int8-full (int8 activations too, needs --calib). */
export const CONVERT_QUANTS = [...QUANTS, 'int8-full'] as const;

/**
 * --phases and --block-steps, checked before any work: 1 = the decomposition alone, 2 = then the
 * block-wise phase on the --finetune data, 3 = then end-to-end distillation.
 */
export function parsePhases(a: ConvertArgs & Partial<TargetArgs>): { phases?: 1 | 2 | 3; blockSteps?: string } {
  const phases = integerFlag('--phases', a.phases, 1, '1, 2 or 3 (decompose; then block-wise; then end-to-end distillation)', 3) as 1 | 2 | 3 | undefined;
  if (a.blockSteps !== undefined) {
    integerFlag('--block-steps', a.blockSteps, 1);
    if (phases === undefined || phases === 1) throw new CliError('BAD_ARGUMENT', '--block-steps goes with --phases 2 or 3 (the block-wise phase)');
  }
  if (phases === undefined) return {};
  if (a.target !== undefined) throw new CliError('BAD_ARGUMENT', '--phases with --target is not built: convert --target, then factorlite finetune --blockwise');
  if (a.method === 'none') throw new CliError('BAD_ARGUMENT', '--phases needs a factorising --method (not none)');
  if (phases === 1 && a.finetune !== undefined) throw new CliError('BAD_ARGUMENT', '--phases 1 is the decomposition alone: drop --finetune (give --calib for calibration data) or ask for --phases 2 or 3');
  if (phases > 1 && a.finetune === undefined) throw new CliError('BAD_ARGUMENT', `--phases ${phases} needs --finetune <data> (the block-wise phase trains on it)`);
  if (phases === 2 && a.epochs !== undefined) throw new CliError('BAD_ARGUMENT', '--phases 2 stops after the block-wise phase: --epochs goes with --phases 3');
  if (phases === 3 && a.epochs !== undefined) integerFlag('--epochs', a.epochs, 1, 'an integer >= 1 with --phases 3 (--phases 2 is the block-wise phase alone)');
  return { phases, ...(a.blockSteps !== undefined ? { blockSteps: a.blockSteps } : {}) };
}

/** One row per phase run, as --json reports them: test accuracy of the model after that phase. */
export interface PhaseReport {
  phase: 1 | 2 | 3;
  name: 'decompose' | 'blockwise' | 'distil';
  accuracy: number | null;
  params: number;
  /** Block-wise: each block's relative error before and after; distil: epochs run. */
  blocks?: FinetuneSummary['blocks'];
  epochs?: number;
}

export async function convertCommand(input: string, a: ConvertArgs & Partial<TargetArgs>, quantGiven = false): Promise<void> {
  const { phases, blockSteps } = parsePhases(a);
  if (a.modes !== undefined && a.target !== undefined) throw new CliError('BAD_ARGUMENT', '--modes with --target is not built: give --method rcp|rtk|rtt|rtr|tt|tr with --ratio or --ranks');
  if (a.prefer !== undefined && !(PREFER as readonly string[]).includes(a.prefer)) throw new CliError('BAD_ARGUMENT', `--prefer ${a.prefer}: expected ${PREFER.join(' or ')}`);
  if (a.prefer !== undefined && a.target !== undefined) throw new CliError('BAD_ARGUMENT', '--prefer with --target is not built: --target picks the ratio (--latency-budget bounds the time)');
  if (a.prefer === 'speed' && a.ratio === undefined) throw new CliError('BAD_ARGUMENT', '--prefer speed goes with --ratio (with --energy or --ranks the forms are given)');
  if (a.target !== undefined) return convertToTarget(input, { ...a, target: a.target }, quantGiven);
  if (!(METHODS as readonly string[]).includes(a.method)) throw new CliError('BAD_ARGUMENT', `--method ${a.method}: expected one of ${[...METHODS, 'decouple'].join(', ')}`);
  if (!(CONVERT_QUANTS as readonly string[]).includes(a.quant)) throw new CliError('BAD_ARGUMENT', `--quant ${a.quant}: expected one of ${CONVERT_QUANTS.join(', ')}`);
  const full = a.quant === 'int8-full';
  if (full && a.calib === undefined) throw new CliError('BAD_ARGUMENT', '--quant int8-full needs --calib DATA: the activation ranges come from calibration inputs');
  const method = a.method as Method;
  const ratio = numberFlag('--ratio', a.ratio, { ok: (n) => n >= 1, what: 'a number >= 1 (source size over compressed size)' });
  const energy = numberFlag('--energy', a.energy, { ok: (n) => n > 0 && n <= 1, what: 'a fraction in (0, 1] (the spectral energy kept)' });
  if (method !== 'none' && ratio === undefined && energy === undefined && a.ranks === undefined) {
    throw new CliError('BAD_ARGUMENT', 'convert needs one of --ratio, --energy, --ranks (or --method none)');
  }
  const roundRanks = numberFlag('--round-ranks', a.roundRanks);
  if (roundRanks !== undefined) {
    if (!(Number.isInteger(roundRanks) && roundRanks >= 2 && roundRanks <= 64)) throw new CliError('BAD_ARGUMENT', `--round-ranks ${a.roundRanks}: expected an integer from 2 to 64 (4 or 8 suit the SIMD kernels)`);
    if (method === 'none') throw new CliError('BAD_ARGUMENT', '--round-ranks needs a factorising --method (not none)');
  }
  if (a.hiddenBias !== undefined && a.hiddenBias !== 'full' && a.hiddenBias !== 'none') throw new CliError('BAD_ARGUMENT', `--hidden-bias ${a.hiddenBias}: expected full or none`);
  if (a.hiddenBias === 'none' && method === 'none') throw new CliError('BAD_ARGUMENT', '--hidden-bias none needs a factorising --method (not none)');
  const modes = a.modes !== undefined ? parseModesFlag(a.modes) : undefined;
  const seed = integerFlag('--seed', a.seed, 0);
  const maxMinutes = numberFlag('--max-minutes', a.maxMinutes);
  if (maxMinutes !== undefined && !(maxMinutes > 0)) throw new CliError('BAD_ARGUMENT', `--max-minutes ${a.maxMinutes}: expected a positive number of minutes`);
  if (maxMinutes !== undefined && a.finetune === undefined) throw new CliError('BAD_ARGUMENT', '--max-minutes goes with --finetune <data> (it bounds the distillation)');
  if (a.lr !== undefined && a.finetune === undefined) throw new CliError('BAD_ARGUMENT', '--lr goes with --finetune <data> (the fine-tuning learning rate)');
  if (modes && method === 'none') throw new CliError('BAD_ARGUMENT', '--modes needs a factorising --method (not none)');
  checkOutputs({ inputs: [input, a.ranks, a.calib, a.finetune], outputs: [a.output] });
  const ranks = a.ranks ? readRanksFile(a.ranks) : undefined;
  const minAgreement = parseAgreement(a.minAgreement);
  // The CLI bounds auto's measured search by default (the library does not): see README.
  const searchSeconds = numberFlag('--search-seconds', a.searchSeconds ?? String(DEFAULT_SEARCH_SECONDS));
  if (searchSeconds !== undefined && !(searchSeconds >= 0)) throw new CliError('BAD_ARGUMENT', `--search-seconds ${a.searchSeconds}: expected a number of seconds >= 0`);
  const arena = bytesFlag('--arena', a.arena);
  if (minAgreement !== undefined && method === 'none') throw new CliError('BAD_ARGUMENT', '--min-agreement needs a factorising --method (not none)');
  if (a.correct === true && !a.calib && !a.finetune) throw new CliError('BAD_ARGUMENT', '--correct needs calibration data: give --calib <data>');
  const t0 = performance.now();
  const { model } = loadModel(input);
  // Kinds the integer path lacks are refused before any work (the factor kinds are checked again below).
  const refused = full ? int8FullRefusals(model) : [];
  if (refused.length) throw new CompressError('INT8_UNSUPPORTED', `--quant int8-full: ${refused.join('; ')}`);
  // Real calibration samples where they are at hand: --calib, else the --finetune data.
  const calibSource = a.calib ?? a.finetune;
  let calibration: Tensor | undefined;
  let holdout: Tensor | undefined;
  if (calibSource) {
    // Inputs only; their shape is checked against the model's before any work.
    const src = limitDataset(loadData(calibSource, 'train'), CALIB_SEARCH + CALIB_HOLDOUT);
    // A model with several outputs: calibration reads inputs only, so only the input's shape is fitted.
    const several = model.graph.inputs.length === 1 && model.graph.outputs.length > 1;
    const ds = several ? fitData({ name: src.name, images: src.images, count: src.count, shape: src.shape, ...(src.file ? { file: src.file } : {}) }, model.graph.inputs[0]!.shape.slice(1), []).data : fitDataToModel(src, model).data;
    const per = ds.shape.reduce((x, y) => x * y, 1);
    // The search sees the first samples; the measured check runs on the rest, which it never saw.
    const n = ds.count > CALIB_SEARCH ? CALIB_SEARCH : Math.ceil(ds.count / 2);
    calibration = { shape: [n, ...ds.shape], data: ds.images.subarray(0, n * per) };
    if (ds.count > n) holdout = { shape: [ds.count - n, ...ds.shape], data: ds.images.subarray(n * per) };
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
    // int8-full: auto searches only the methods whose kinds the integer path runs.
    ...(full ? { kinds: INT8_KINDS } : {}),
    ...(ratio !== undefined ? { ratio } : {}),
    ...(a.prefer !== undefined ? { prefer: a.prefer as Prefer } : {}),
    ...(energy !== undefined ? { energy } : {}),
    ...(ranks ? { ranks } : {}),
    ...(calibration ? { calibration } : {}),
    ...(holdout ? { holdout } : {}),
    ...(minAgreement !== undefined ? { minAgreement } : {}),
    ...(searchSeconds !== undefined ? { searchSeconds } : {}),
    ...(roundRanks !== undefined ? { roundRanks } : {}),
    ...(arena !== undefined ? { arenaBytes: arena } : {}),
    ...(a.correct !== undefined ? { correct: a.correct } : {}),
    ...(a.hiddenBias !== undefined ? { hiddenBias: a.hiddenBias as 'full' | 'none' } : {}),
    ...(modes ? { modes } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(a.json ? {} : { log }),
    warn: log,
    onLayer: (done, total, label) => {
      bar.update(Math.round((100 * done) / Math.max(total, 1)), label);
    },
  });
  bar.stop();
  // Said once the conversion has succeeded, so that a failure stays one line on stderr.
  if (!calibSource && method !== 'none') process.stderr.write(`${syntheticNote(model)}\n`);
  let tuned = out;
  let finetune: FinetuneSummary | undefined;
  if (a.finetune !== undefined) {
    ({ model: tuned, summary: finetune } = finetuneAfterConvert(out, model, a.finetune, {
      ...(phases === 2 ? { epochs: '0' } : a.epochs !== undefined ? { epochs: a.epochs } : {}),
      ...(a.labels !== undefined ? { labels: a.labels } : {}),
      ...(phases !== undefined && phases >= 2 ? { blockwise: true } : {}),
      ...(blockSteps !== undefined ? { blockSteps } : {}),
      ...(a.seed !== undefined ? { seed: a.seed } : {}),
      ...(a.lr !== undefined ? { lr: a.lr } : {}),
      ...(maxMinutes !== undefined ? { maxMinutes } : {}),
    }));
  } else if (a.epochs !== undefined) {
    throw new CliError('BAD_ARGUMENT', '--epochs needs --finetune <data>');
  }
  let phaseReports: PhaseReport[] | undefined;
  if (phases !== undefined) {
    phaseReports = [{ phase: 1, name: 'decompose', accuracy: finetune?.accuracyBefore ?? null, params: report.params }];
    if (finetune && phases >= 2) phaseReports.push({ phase: 2, name: 'blockwise', accuracy: finetune.accuracyAfterBlockwise, params: finetune.params, blocks: finetune.blocks });
    if (finetune && phases === 3) phaseReports.push({ phase: 3, name: 'distil', accuracy: finetune.accuracy, params: finetune.params, epochs: finetune.epochs });
  }
  let final: Model;
  if (full) {
    const bar = progress('calibrate', calibration!.shape[0]!, !a.json || process.stderr.isTTY === true);
    final = quantizeInt8Full(tuned, calibration!, { onBatch: (done) => bar.update(done) });
    bar.stop();
  } else {
    final = quantizeModel(tuned, a.quant as QuantChoice);
  }
  final.metadata['convert.converter_version'] = VERSION;
  // The check of what is written: after fine-tuning and quantisation, on the same held-out samples.
  // --method none with a narrower dtype is checked too: quantisation alone can break a model.
  let check: AgreementCheck | undefined = report.check;
  let checkSkipped = report.checkSkipped;
  if (report.check ? finetune || a.quant !== 'f32' : method === 'none' && a.quant !== 'f32') {
    try {
      const hold = holdout ?? randomInputs(model, 1001);
      check = checkAgreement(model, final, hold, report.check?.data ?? (holdout ? 'calibration' : 'synthetic'), report.check?.predictedOutputError ?? undefined);
    } catch (e) {
      checkSkipped = (e as Error).message;
    }
  }
  if (check) {
    final.metadata['convert.agreement'] = check.agreement;
    final.metadata['convert.check_samples'] = check.samples;
  }
  // What is written must fit the device's arena: the firmware's plan of the final model, checked
  // before anything is written (ARENA_EXCEEDED names the layer and the bytes).
  let arenaFit: ArenaFit | undefined;
  if (arena !== undefined) arenaFit = checkArenaFit(final, arena);
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
    calibration: report.calibration === 'given' ? calibSource : report.calibration ?? null,
    check: check ?? null,
    correction: report.correction ?? null,
    ...(check !== report.check && report.check ? { checkBeforeFinetune: report.check } : {}),
    allocator: report.guards ? { guards: report.guards, search: report.search ?? null } : null,
    compute: report.compute ?? null,
    warning: null as string | null,
    ...(arenaFit ? { arena: { limit: arenaFit.limit, planned: arenaFit.arena, tables: arenaFit.tables, peak: arenaFit.peak } } : {}),
    ...(finetune ? { finetune } : {}),
    ...(phaseReports ? { phases: phaseReports } : {}),
  };
  // One line on stderr when the result strays from its source, or when the check cannot tell: the
  // user learns it here, not at eval.
  result.warning = checkWarning(check, {
    ...(calibSource !== undefined ? { calibSource } : {}),
    suggest: a.calib ?? (isImage28(model) ? 'fashion-mnist' : 'DATA'),
    finetuned: finetune !== undefined,
    ...(checkSkipped !== undefined ? { skipped: checkSkipped } : {}),
  });
  if (result.warning !== null) process.stderr.write(`warning: ${result.warning}\n`);
  if (a.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  printReport(report);
  if (report.search) printSearch(report.search);
  if (report.correction) process.stdout.write(`\n${correctionLine(report.correction)}\n`);
  if (check) {
    const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
    process.stdout.write(
      `\ncheck on ${check.samples} held-out ${check.data === 'synthetic' ? 'synthetic' : String(calibSource)} samples: ` +
        `${check.agreement !== null ? `top-1 agreement with the source ${pct(check.agreement)} (predicted ${pct(check.predictedAgreement)}), ` : ''}` +
        `output error ${check.outputError.toFixed(4)}${check.predictedOutputError !== null ? ` (predicted ${check.predictedOutputError.toFixed(4)})` : ''}\n`,
    );
  }
  process.stdout.write(
    `\n${a.output}: ${formatBytes(fileBytes)} (dense f32 ${formatBytes(sourceBytes)}, ${result.bytesRatio.toFixed(2)}x smaller); ` +
      `${report.params} params vs ${report.sourceParams} (${report.ratio.toFixed(2)}x) in ${result.seconds.toFixed(1)} s\n`,
  );
  if (report.compute) {
    const c = report.compute;
    process.stdout.write(`compute of the conv and dense layers (--prefer ${c.prefer}): ${(c.macs / 1e6).toFixed(2)} M multiply-adds per sample vs ${(c.sourceMacs / 1e6).toFixed(2)} M ` +
      `(${(c.sourceMacs / Math.max(1, c.macs)).toFixed(2)}x fewer); cost model ${c.us.toFixed(0)} µs vs ${c.sourceUs.toFixed(0)} µs at batch 1\n`);
  }
  if (arenaFit) process.stdout.write(`firmware arena ${arenaFit.arena} B + tables ${arenaFit.tables} B of the ${arenaFit.limit} B given (fullest layer ${arenaFit.peak.node}: ${arenaFit.peak.scratch} B scratch beside ${arenaFit.peak.live} B of activations)\n`);
  if (finetune) {
    const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(2)}%`);
    process.stdout.write(
      `fine-tuned on ${finetune.trainSamples} ${finetune.data} images for ${finetune.epochs} epoch(s): test accuracy ` +
        `${pct(finetune.accuracyBefore)} -> ${pct(finetune.accuracy)} (teacher ${pct(finetune.teacherAccuracy)}) on ${finetune.samples} images\n`,
    );
  }
  if (phaseReports) {
    const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(2)}%`);
    process.stdout.write(`${table(['phase', 'step', 'test accuracy', 'params'], phaseReports.map((p) => [p.phase, p.name === 'decompose' ? 'decompose' : p.name === 'blockwise' ? `block-wise (${finetune?.blockSteps ?? 0} steps)` : `distil end to end (${p.epochs ?? 0} epochs)`, pct(p.accuracy), p.params]))}\n`);
  }
}

/** One line on the per-channel output correction: where it ran, and whether it was kept. */
export function correctionLine(c: CorrectReport): string {
  const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);
  const fit = c.before && c.after
    ? c.before.agreement !== null && c.after.agreement !== null
      ? ` (top-1 agreement with the source on them ${pct(c.before.agreement)} -> ${pct(c.after.agreement)})`
      : ` (output error on them ${c.before.outputError.toFixed(4)} -> ${c.after.outputError.toFixed(4)})`
    : '';
  return `output correction of ${c.layers.length} factorised layers on ${c.samples} calibration samples${fit}: ${c.kept ? 'kept' : 'not kept'}`;
}

/** Calibration samples the search sees, and held-out samples for the measured check. */
const CALIB_SEARCH = 256;
const CALIB_HOLDOUT = 256;
/** Default time bound of auto's measured search in the CLI (seconds). */
export const DEFAULT_SEARCH_SECONDS = 60;
/** Below this top-1 agreement with the source, convert warns on stderr. */
export { WARN_AGREEMENT } from '../../converter/check.js';

export function parseAgreement(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const pctForm = v.trim().endsWith('%');
  const n = Number(pctForm ? v.trim().slice(0, -1) : v);
  const frac = pctForm || n > 1 ? n / 100 : n;
  if (v.trim() === '' || !Number.isFinite(n) || !(frac > 0 && frac <= 1)) {
    throw new CliError('BAD_ARGUMENT', `--min-agreement ${v}: expected a fraction in (0, 1] or a percentage such as 90%`);
  }
  return frac;
}


/** What synthetic calibration means for this model, in one line. */
function syntheticNote(model: Model): string {
  const known = isImage28(model) ? ' The input [1, 28, 28] matches fashion-mnist and mnist: --calib fashion-mnist (or mnist) would calibrate on real images.' : '';
  return `calibration: no --calib, so the rank search and the check use synthetic uniform [0, 1) inputs, which misjudge layers ` +
    `whose real inputs are far from uniform (after normalisation, on sparse images).${known}`;
}

function printSearch(s: NonNullable<CompressReport['search']>): void {
  const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
  process.stdout.write(`\nmeasured search (${s.fits} trial fits, ${s.runs} network runs, ${s.seconds.toFixed(1)} s): kept ${s.chosen}\n${table(
    ['methods', 'agreement (calib.)', 'output error', 'predicted', 'rounds', ...(s.trials.some((t) => t.macs !== undefined) ? ['M multiply-adds'] : [])],
    s.trials.map((t) => [t.family, t.failed ? (t.failed.startsWith('skipped') ? 'skipped' : 'no plan') : pct(t.agreement), t.failed ? '-' : t.outputError.toFixed(4), t.failed ? '-' : t.predictedOutputError.toFixed(4), t.rounds,
      ...(s.trials.some((x) => x.macs !== undefined) ? [t.macs === undefined || t.failed ? '-' : (t.macs / 1e6).toFixed(2)] : [])]),
  )}\n`);
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
