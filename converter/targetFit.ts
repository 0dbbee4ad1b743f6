// convert --target: a thin layer over compressModel and quantizeModel that makes a model fit a
// device profile (targets/): the model file within the target's model budget, the arena (scratch
// included) within its arena budget, both less a margin, and with --latency-budget a predicted
// latency within it. It searches the fewest compression and the widest dtype that fit, since
// those lose the least accuracy: first the model as it is, then, at each ratio, dtypes f32, f16,
// int8 in that order; the ratio starts from the one the byte budget implies at the narrowest
// dtype and grows by 1.5x (a latency budget also pushes it) until everything fits.
import type { Model } from '../runtime/ir.js';
import { checkFit, type FitReport } from '../targets/fit.js';
import type { TargetProfile } from '../targets/profiles.js';
import { compressModel, CompressError, sourceParams, type CompressOptions, type CompressReport, type Method } from './compress.js';
import { quantizeModel, type QuantChoice } from './quantize.js';
import { writeFlm } from './writer.js';

export class TargetFitError extends Error {
  readonly code = 'DOES_NOT_FIT';
  constructor(message: string, readonly tried: TargetAttempt[]) {
    super(message);
    this.name = 'TargetFitError';
  }
}

export interface TargetAttempt {
  ratio: number | null;
  quant: QuantChoice;
  fit: FitReport;
  latencyOk: boolean;
}

export interface TargetFitOptions {
  method: Method;
  margin: number;
  latencyBudgetMs?: number;
  /** Dtypes to try, widest first (default f32, f16, int8). */
  quants?: QuantChoice[];
  /** Fixed compression (the user's --ratio / --energy / --ranks): only dtypes are searched. */
  fixed?: Pick<CompressOptions, 'ratio' | 'energy' | 'ranks'>;
  calibration?: CompressOptions['calibration'];
  roundRanks?: number;
  /** The per-channel output correction (CompressOptions.correct; default: tried with calibration). */
  correct?: boolean;
  maxTries?: number;
  log?: (line: string) => void;
}

export interface TargetFitResult {
  model: Model;
  bytes: Uint8Array;
  report: CompressReport | null;
  ratio: number | null;
  quant: QuantChoice;
  fit: FitReport;
  tried: TargetAttempt[];
}

const BYTES: Record<string, number> = { f32: 4, f16: 2, int8: 1, 'int8-channel': 1, 'int8-tensor': 1 };

export function convertForTarget(source: Model, target: TargetProfile, o: TargetFitOptions): TargetFitResult {
  const log = o.log ?? (() => undefined);
  const quants = o.quants ?? (['f32', 'f16', 'int8'] as QuantChoice[]);
  const tried: TargetAttempt[] = [];
  const total = sourceParams(source);
  // On a microcontroller each layer takes only forms whose firmware scratch fits the arena budget.
  const arena = target.kind === 'mcu' ? { arenaBytes: Math.floor(target.budget.arenaBytes * (1 - o.margin)) } : {};
  const attempt = (compressed: Model, report: CompressReport | null, ratio: number | null): TargetFitResult | undefined => {
    for (const quant of quants) {
      const q = quantizeModel(compressed, quant);
      const bytes = writeFlm(q);
      const fit = checkFit(q, bytes.length, target, o.margin);
      const latencyOk = o.latencyBudgetMs === undefined || fit.latencyMs <= o.latencyBudgetMs;
      tried.push({ ratio, quant, fit, latencyOk });
      log(`target ${target.name}: ratio ${ratio ?? '-'} ${quant}: ${bytes.length} B model, ${fit.arenaBytes} B arena, ${fit.latencyMs} ms predicted${fit.fits && latencyOk ? ' fits' : ''}`);
      if (fit.fits && latencyOk) return { model: q, bytes, report, ratio, quant, fit, tried };
    }
    return undefined;
  };

  if (o.fixed || o.method === 'none') {
    const { model, report } = o.method === 'none' ? { model: source, report: null } : compressModel(source, { method: o.method, ...o.fixed, ...arena, ...(o.calibration ? { calibration: o.calibration } : {}), ...(o.roundRanks ? { roundRanks: o.roundRanks } : {}), ...(o.correct !== undefined ? { correct: o.correct } : {}) });
    const r = attempt(model, report, report ? report.ratio : null);
    if (r) return r;
    throw refusal(target, tried, o);
  }
  // Uncompressed first when the dense model may fit (no accuracy lost), then the ratio that the
  // byte budget implies at the narrowest dtype, growing until everything fits.
  if (total * Math.max(...quants.map((q) => BYTES[q] ?? 4)) <= target.budget.modelBytes * (1 - o.margin) || target.kind === 'node') {
    const r = attempt(source, null, null);
    if (r) return r;
  }
  const narrowest = Math.min(...quants.map((q) => BYTES[q] ?? 4));
  let ratio = Math.max(1.05, ((total * narrowest) / Math.max(1, target.budget.modelBytes * (1 - o.margin))) * 1.1);
  // Bracket: the largest ratio whose file was too big while its arena fitted. When a higher ratio
  // fits the bytes but not the arena (the ranks, hence the scratch, change with the ratio), the
  // next try is the geometric mean of the two rather than more compression.
  let tooBig: number | undefined;
  for (let k = 0; k < (o.maxTries ?? 6); k++) {
    let out;
    try {
      out = compressModel(source, { method: o.method, ratio, ...arena, ...(o.calibration ? { calibration: o.calibration } : {}), ...(o.roundRanks ? { roundRanks: o.roundRanks } : {}), ...(o.correct !== undefined ? { correct: o.correct } : {}) });
    } catch (e) {
      if (e instanceof CompressError && e.code === 'RANK_UNREACHABLE') break;
      throw e;
    }
    const r = attempt(out.model, out.report, +ratio.toFixed(2));
    if (r) return r;
    const fit = tried[tried.length - 1]!.fit;
    // Kernels missing on the target: no compression helps.
    if (fit.unsupported.length) break;
    const bytesOk = fit.modelBytes <= fit.modelBudget;
    const arenaOk = fit.arenaBytes <= fit.arenaBudget;
    if (!bytesOk && arenaOk) tooBig = ratio;
    if (bytesOk && !arenaOk && tooBig !== undefined && ratio / tooBig > 1.1) ratio = Math.sqrt(ratio * tooBig);
    else ratio *= 1.5;
  }
  throw refusal(target, tried, o);
}

function refusal(target: TargetProfile, tried: TargetAttempt[], o: TargetFitOptions): TargetFitError {
  const best = tried.reduce<TargetAttempt | undefined>((b, t) => (!b || t.fit.modelBytes < b.fit.modelBytes ? t : b), undefined);
  if (!best) return new TargetFitError(`nothing fits ${target.name}: no candidate could be built`, tried);
  const why = [...best.fit.why];
  if (!best.latencyOk) why.push(`predicted latency ${best.fit.latencyMs} ms is over the ${o.latencyBudgetMs} ms budget`);
  return new TargetFitError(
    `nothing fits ${target.name} after ${tried.length} candidates; the smallest (ratio ${best.ratio ?? '-'}, ${best.quant}): ${why.join('; ')}`,
    tried,
  );
}
