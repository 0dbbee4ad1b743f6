// The arguments of `convert` and its --ranks file, shared by convert.ts and convertTarget.ts.
import { readFileSync } from 'node:fs';
import { CliError } from '../errors.js';

export interface ConvertArgs {
  output: string;
  labels?: string;
  method: string;
  ratio?: string;
  /** accuracy | speed (CompressOptions.prefer). */
  prefer?: string;
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
  /**
   * The tensorial-networks recipe: 1 = decompose only, 2 = then train block by block against the
   * source, 3 = then distil end to end (2 and 3 need --finetune).
   */
  phases?: string;
  /** Steps of the block-wise phase (with --phases 2|3). */
  blockSteps?: string;
  /** Top-1 agreement with the source the result must reach (0..1, or a percentage). */
  minAgreement?: string;
  /** Time bound of auto's measured search (seconds). */
  searchSeconds?: string;
  /** The device's arena (bytes, or 480K): every layer takes a form whose firmware scratch fits. */
  arena?: string;
  /** Per-channel output correction: true always, false never, undefined when it brings the result closer (with calibration). */
  correct?: boolean;
  /** full | none: none drops the bias of the factorised hidden layers (all but the last, the classifier). */
  hiddenBias?: string;
  /** Seed of the decomposition and of the fine-tuning. */
  seed?: string;
  /** Learning rate of the fine-tuning (with --finetune). */
  lr?: string;
  /** Wall-clock bound of the end-to-end distillation, minutes (with --finetune). */
  maxMinutes?: string;
  /** OUT/IN or layer=OUT/IN,...: the reshape of the tensorial methods (converter/methods/layerModes.ts). */
  modes?: string;
  json?: boolean;
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
