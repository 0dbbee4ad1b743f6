// convert --target NAME [--latency-budget MS] [--margin F]: converter/targetFit.ts chooses the
// compression ratio and dtype that fit the device, or the command refuses with the numbers.
import { statSync } from 'node:fs';
import { type Method } from '../../converter/compress.js';
import { loadDataset, limitDataset } from '../../converter/data/datasets.js';
import { QUANTS, type QuantChoice } from '../../converter/quantize.js';
import { convertForTarget, TargetFitError } from '../../converter/targetFit.js';
import { writeFlmFile } from '../../converter/writer.js';
import { DEFAULT_MARGIN } from '../../targets/fit.js';
import { getTarget } from '../../targets/profiles.js';
import { CliError } from '../errors.js';
import { loadModel } from '../modelFile.js';
import { log } from '../progress.js';
import { formatBytes } from '../table.js';
import { VERSION } from '../version.js';
import { numberFlag } from '../flags.js';
import { checkOutputs } from '../outputs.js';
import { readRanksFile, type ConvertArgs } from './convertArgs.js';
import { checkAgreement, type AgreementCheck } from '../../converter/check.js';
import { randomInputs } from '../../converter/rank/sensitivity.js';
import type { Tensor } from '../../runtime/ir.js';
import { checkWarning, isImage28 } from './checkWarning.js';

export interface TargetArgs {
  target: string;
  latencyBudget?: string;
  margin?: string;
}

export async function convertToTarget(input: string, a: ConvertArgs & TargetArgs, quantGiven: boolean): Promise<void> {
  const target = getTarget(a.target);
  const margin = numberFlag('--margin', a.margin) ?? DEFAULT_MARGIN;
  if (!(margin >= 0 && margin < 1)) throw new CliError('BAD_ARGUMENT', `--margin ${a.margin}: expected a fraction in [0, 1)`);
  const latencyBudgetMs = numberFlag('--latency-budget', a.latencyBudget);
  if (latencyBudgetMs !== undefined && !(latencyBudgetMs > 0)) throw new CliError('BAD_ARGUMENT', `--latency-budget ${a.latencyBudget}: expected milliseconds > 0`);
  if (a.arena !== undefined) throw new CliError('BAD_ARGUMENT', `--arena goes without --target (--target ${a.target} takes its arena budget from its profile)`);
  if (a.finetune !== undefined) throw new CliError('BAD_ARGUMENT', '--finetune with --target is not built yet: convert --target, then factorlite finetune');
  if (quantGiven && !(QUANTS as readonly string[]).includes(a.quant)) throw new CliError('BAD_ARGUMENT', `--quant ${a.quant}: expected ${QUANTS.join(', ')}`);
  const ratio = numberFlag('--ratio', a.ratio, { ok: (n) => n >= 1, what: 'a number >= 1 (source size over compressed size)' });
  const energy = numberFlag('--energy', a.energy, { ok: (n) => n > 0 && n <= 1, what: 'a fraction in (0, 1] (the spectral energy kept)' });
  checkOutputs({ inputs: [input, a.ranks, a.calib], outputs: [a.output] });
  const ranks = a.ranks ? readRanksFile(a.ranks) : undefined;
  const fixed = ratio !== undefined || energy !== undefined || ranks !== undefined
    ? { ...(ratio !== undefined ? { ratio } : {}), ...(energy !== undefined ? { energy } : {}), ...(ranks ? { ranks } : {}) }
    : undefined;
  const t0 = performance.now();
  const { model } = loadModel(input);
  let calibration: Tensor | undefined;
  let holdout: Tensor | undefined;
  if (a.calib) {
    // As convert: the search sees the first 256 samples, the measured check the next 256.
    const ds = limitDataset(loadDataset(a.calib, 'train'), 512);
    const per = ds.shape.reduce((x, y) => x * y, 1);
    const n = ds.count > 256 ? 256 : Math.ceil(ds.count / 2);
    calibration = { shape: [n, ...ds.shape], data: ds.images.subarray(0, n * per) };
    if (ds.count > n) holdout = { shape: [ds.count - n, ...ds.shape], data: ds.images.subarray(n * per) };
  }
  const roundRanks = numberFlag('--round-ranks', a.roundRanks);
  let r;
  try {
    r = convertForTarget(model, target, {
      method: a.method as Method, margin,
      ...(latencyBudgetMs !== undefined ? { latencyBudgetMs } : {}),
      ...(quantGiven ? { quants: [a.quant as QuantChoice] } : {}),
      ...(fixed ? { fixed } : {}),
      ...(calibration ? { calibration } : {}),
      ...(roundRanks !== undefined ? { roundRanks } : {}),
      ...(a.correct !== undefined ? { correct: a.correct } : {}),
      ...(a.json ? {} : { log }),
    });
  } catch (e) {
    if (e instanceof TargetFitError && a.json) {
      process.stdout.write(`${JSON.stringify({ input, target: target.name, fits: false, why: e.message, tried: e.tried.map((t) => ({ ratio: t.ratio, quant: t.quant, ...t.fit, latencyOk: t.latencyOk })) })}\n`);
    }
    throw e;
  }
  r.model.metadata['convert.converter_version'] = VERSION;
  r.model.metadata['convert.target'] = target.name;
  // The measured check of what is written (compressed and quantised), as convert does without
  // --target: the ratio and dtype were chosen for the device, so the result may be far from the
  // source, and the user learns it here. Skipped only when the model is written as it came.
  let check: AgreementCheck | null = null;
  let skipped: string | undefined;
  if (r.report !== null || r.quant !== 'f32') {
    try {
      check = checkAgreement(model, r.model, holdout ?? randomInputs(model, 1001), holdout ? 'calibration' : 'synthetic');
      r.model.metadata['convert.agreement'] = check.agreement;
      r.model.metadata['convert.check_samples'] = check.samples;
    } catch (e) {
      skipped = (e as Error).message;
    }
  }
  await writeFlmFile(r.model, a.output);
  const bytes = statSync(a.output).size;
  const result = {
    input, output: a.output, target: target.name, fits: true, method: a.method, ratio: r.report?.ratio ?? 1, requestedRatio: r.ratio, quant: r.quant,
    params: r.report?.params ?? null, sourceParams: r.report?.sourceParams ?? null, bytes, fit: r.fit,
    latencyBudgetMs: latencyBudgetMs ?? null, tried: r.tried.length, seconds: (performance.now() - t0) / 1000,
    calibration: a.calib ?? 'synthetic', check,
    warning: checkWarning(check, {
      ...(a.calib !== undefined ? { calibSource: a.calib } : {}),
      suggest: a.calib ?? (isImage28(model) ? 'fashion-mnist' : 'DATA'),
      ...(skipped !== undefined ? { skipped } : {}),
      less: 'compress less (a lower --ratio, or a roomier --target)',
      finetuneHow: `factorlite finetune ${a.output} --teacher ${input} --data ${a.calib ?? (isImage28(model) ? 'fashion-mnist' : 'DATA')}`,
    }),
  };
  if (result.warning !== null) process.stderr.write(`warning: ${result.warning}\n`);
  if (a.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  process.stdout.write(
    `${a.output}: fits ${target.name} with a ${margin * 100}% margin: model ${formatBytes(r.fit.modelBytes)} of ${formatBytes(r.fit.modelBudget)}, ` +
      `arena ${formatBytes(r.fit.arenaBytes)} of ${formatBytes(r.fit.arenaBudget)}; ${r.quant}, ${result.ratio.toFixed(2)}x fewer parameters\n` +
      `predicted latency ${r.fit.latencyMs} ms per sample (${r.fit.latencySource})\n`,
  );
  if (check) {
    const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
    process.stdout.write(`check on ${check.samples} held-out ${check.data === 'synthetic' ? 'synthetic' : String(a.calib)} samples: ` +
      `${check.agreement !== null ? `top-1 agreement with the source ${pct(check.agreement)}, ` : ''}output error ${check.outputError.toFixed(4)}\n`);
  }
}
