// The one warning line convert prints when its measured check finds the result far from its source
// (or cannot tell): shared by convert, convert --target and convert --method decouple.
import { checkProblem, WARN_AGREEMENT, WARN_OUTPUT_ERROR, type AgreementCheck } from '../../converter/check.js';
import type { Model } from '../../runtime/ir.js';

export interface CheckWarningContext {
  /** What the held-out samples were, for the message: the --calib source, or absent for synthetic. */
  calibSource?: string;
  /** The data set to suggest for --calib / --finetune ('DATA' when none is known). */
  suggest: string;
  /** The result was fine-tuned already. */
  finetuned?: boolean;
  /** Why no check could run, when none did. */
  skipped?: string;
  /** How to compress less, for the advice (default 'lower --ratio'). */
  less?: string;
  /** How to fine-tune, for the advice (default `--finetune SUGGEST (about one epoch)`). */
  finetuneHow?: string;
}

/** A one-channel 28x28 image input, as Fashion-MNIST and MNIST models take. */
export function isImage28(model: Model): boolean {
  const s = model.graph.inputs[0]?.shape ?? [];
  return s.length === 4 && s[1] === 1 && s[2] === 28 && s[3] === 28;
}

/** The warning text (without "warning: "), or null when the check found nothing to say. */
export function checkWarning(check: AgreementCheck | null | undefined, ctx: CheckWarningContext): string | null {
  const less = ctx.less ?? 'lower --ratio';
  if (!check) return ctx.skipped !== undefined ? `no measured check of the result: ${ctx.skipped}; run factorlite eval on it before use` : null;
  const samples = `${check.samples} held-out ${check.data === 'synthetic' ? 'synthetic' : ctx.calibSource ?? 'calibration'} samples`;
  const fix = ctx.finetuned ? `fine-tune longer (--epochs N) or ${less}` : `fine-tune to win it back: ${ctx.finetuneHow ?? `--finetune ${ctx.suggest} (about one epoch)`}, or ${less}`;
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const p = checkProblem(check);
  if (!p) return null;
  switch (p.kind) {
    case 'not-finite':
      return `the result's outputs are not finite (NaN or infinity) on ${samples}; ${less}, or keep f32 weights (--quant f32)`;
    case 'low-agreement':
      return `top-1 agreement with the source is ${pct(p.agreement)} on ${samples} (below ${100 * WARN_AGREEMENT}%); ${fix}`;
    case 'weak-check':
      return `the check says little: the source gives class ${p.majorityClass} to ${pct(p.majorityShare)} of the ${samples}, so a model that ` +
        `always answered ${p.majorityClass} would agree about as often as this one (${pct(p.agreement)}); ` +
        (check.data === 'synthetic' ? `check on real inputs: --calib ${ctx.suggest}` : 'calibrate on samples of every class');
    case 'output-error':
      return `the outputs moved by ${p.outputError.toFixed(3)} of their norm (above ${WARN_OUTPUT_ERROR}) on ${samples}; ${fix}`;
  }
}
