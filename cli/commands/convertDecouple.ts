// `factorlite convert model.onnx --method decouple --neurons r [--basis poly:D|bspline:K] [--samples N]
// [--calib DATA] [--finetune DATA]`: every replaceable dense → activation → dense pair becomes a
// flexact layer fitted on the pair's real inputs (converter/decoupleModel.ts). The fit table goes to
// stderr (it is progress of a long step as much as a result); --json prints one object on stdout.
import { statSync } from 'node:fs';
import { checkAgreement, type AgreementCheck } from '../../converter/check.js';
import { decoupleModel, type DecoupleReport } from '../../converter/decoupleModel.js';
import { fitDataToModel, limitDataset, loadData } from '../../converter/data/datasets.js';
import { DataError } from '../../converter/data/errors.js';
import { mulberry32 } from '../../converter/decompose/prng.js';
import { DEFAULT_BASIS, parseBasis } from '../../converter/methods/decouple.js';
import { quantizeModel, QUANTS, type QuantChoice } from '../../converter/quantize.js';
import { writeFlmFile } from '../../converter/writer.js';
import { numel, type Model, type Tensor } from '../../runtime/ir.js';
import { CliError } from '../errors.js';
import { integerFlag } from '../flags.js';
import { loadModel } from '../modelFile.js';
import { checkOutputs } from '../outputs.js';
import { log, progress } from '../progress.js';
import { formatBytes, table } from '../table.js';
import { VERSION } from '../version.js';
import type { TargetArgs } from './convertTarget.js';
import type { ConvertArgs } from './convertArgs.js';
import { finetuneAfterConvert, type FinetuneSummary } from './finetune.js';
import { parseAgreement } from './convert.js';
import { checkWarning, isImage28 } from './checkWarning.js';

export interface DecoupleArgs {
  /** r, the flexible neurons of each replaced pair. */
  neurons?: string;
  /** poly:D or bspline:K */
  basis?: string;
  /** Sample inputs the fit uses (default 1,000). */
  samples?: string;
}

/** With another --method, the decouple flags are a mistake: say so rather than ignore them. */
export function rejectDecoupleFlags(method: string, a: DecoupleArgs): void {
  for (const [flag, v] of [['--neurons', a.neurons], ['--basis', a.basis], ['--samples', a.samples]] as const) {
    if (v !== undefined) throw new CliError('BAD_ARGUMENT', `${flag} goes with --method decouple, not --method ${method}`);
  }
}

/** Default number of fit samples, and of held-out samples for the check. */
export const DECOUPLE_SAMPLES = 1000;
const HOLDOUT = 256;

/** Uniform [0, 1) inputs of the model's input shape when no data is given. */
function syntheticInputs(model: Model, rows: number, seed: number): Tensor {
  const input = model.graph.inputs[0];
  if (!input || model.graph.inputs.length !== 1) throw new CliError('BAD_INPUT', 'decouple needs a model with one input, or --calib data it can read');
  const shape = input.shape.map((d, i) => (d < 0 ? (i === 0 ? rows : NaN) : i === 0 ? rows : d));
  if (shape.some((d) => Number.isNaN(d))) throw new CliError('BAD_INPUT', `input ${input.name} has free dims other than the batch; give --calib`);
  const rnd = mulberry32(seed);
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = rnd();
  return { shape, data };
}

export async function convertDecoupleCommand(input: string, a: ConvertArgs & DecoupleArgs & Partial<TargetArgs>): Promise<void> {
  for (const [flag, v] of [['--ratio', a.ratio], ['--energy', a.energy], ['--ranks', a.ranks], ['--round-ranks', a.roundRanks], ['--target', a.target], ['--arena', a.arena], ['--phases', a.phases], ['--block-steps', a.blockSteps]] as const) {
    if (v !== undefined) throw new CliError('BAD_ARGUMENT', `${flag} does not apply to --method decouple (its size is --neurons r)`);
  }
  if (a.neurons === undefined) throw new CliError('BAD_ARGUMENT', '--method decouple needs --neurons r (the flexible neurons per replaced pair)');
  const neurons = integerFlag('--neurons', a.neurons, 1, 'a positive integer')!;
  const samples = integerFlag('--samples', a.samples, 2, 'an integer >= 2') ?? DECOUPLE_SAMPLES;
  if (!(QUANTS as readonly string[]).includes(a.quant)) throw new CliError('BAD_ARGUMENT', `--quant ${a.quant}: expected one of ${QUANTS.join(', ')}`);
  const basis = a.basis ?? DEFAULT_BASIS;
  parseBasis(basis);
  const minAgreement = parseAgreement(a.minAgreement);
  if (a.labels !== undefined && !a.finetune) throw new CliError('BAD_ARGUMENT', '--labels goes with --finetune x.npy');
  if (a.epochs !== undefined && !a.finetune) throw new CliError('BAD_ARGUMENT', '--epochs needs --finetune <data>');
  checkOutputs({ inputs: [input, a.calib, a.finetune], outputs: [a.output] });
  const t0 = performance.now();
  const { model } = loadModel(input);

  // The fit's samples and the held-out check come from --calib, else the --finetune data, else synthetic.
  const source = a.calib ?? a.finetune;
  let fitSet: Tensor;
  let holdout: Tensor;
  if (source) {
    const ds = fitDataToModel(limitDataset(loadData(source, 'train'), samples + HOLDOUT), model).data;
    const per = ds.shape.reduce((x, y) => x * y, 1);
    const n = ds.count > samples ? samples : Math.ceil(ds.count / 2);
    fitSet = { shape: [n, ...ds.shape], data: ds.images.subarray(0, n * per) };
    holdout = { shape: [ds.count - n, ...ds.shape], data: ds.images.subarray(n * per) };
    if (ds.count - n < 1) throw new CliError('BAD_INPUT', `${source}: ${ds.count} sample(s) leave none to check on; give at least 2`);
  } else {
    fitSet = syntheticInputs(model, samples, 1);
    holdout = syntheticInputs(model, HOLDOUT, 1001);
  }
  if (a.finetune) {
    const fit = fitDataToModel(loadData(a.finetune, 'test', a.labels !== undefined ? { labels: a.labels } : {}), model);
    if (fit.mode !== 'classes') throw new DataError('DATA_NO_LABELS', `--finetune ${a.finetune}: fine-tuning needs class labels (give --labels y.npy)`);
  }
  const bar = progress('decouple', 100, !a.json || process.stderr.isTTY === true);
  const { model: out, report } = decoupleModel(model, {
    neurons, basis, samples: fitSet, holdout, data: source ? 'calibration' : 'synthetic', log,
    onPair: (done, total, label) => bar.update(Math.round((100 * done) / Math.max(total, 1)), label),
  });
  bar.stop();
  if (!source) {
    process.stderr.write('calibration: no --calib or --finetune data, so the fit samples synthetic uniform [0, 1) inputs; ' +
      'a pair fitted there may be far off on real inputs (--calib fashion-mnist for 28x28 images)\n');
  }
  printFits(report);

  let tuned = out;
  let finetune: FinetuneSummary | undefined;
  if (a.finetune) {
    ({ model: tuned, summary: finetune } = finetuneAfterConvert(out, model, a.finetune, {
      ...(a.epochs !== undefined ? { epochs: a.epochs } : {}),
      ...(a.labels !== undefined ? { labels: a.labels } : {}),
    }));
  }
  const final = quantizeModel(tuned, a.quant as QuantChoice);
  final.metadata['convert.converter_version'] = VERSION;
  let check: AgreementCheck | null = report.check;
  if (check && (finetune || a.quant !== 'f32')) check = checkAgreement(model, final, holdout, check.data);
  if (check) {
    final.metadata['convert.agreement'] = check.agreement;
    final.metadata['convert.check_samples'] = check.samples;
  }
  if (minAgreement !== undefined) {
    if (!check || check.agreement === null) throw new CliError('BAD_INPUT', '--min-agreement cannot be checked on this model (no class outputs)');
    if (check.agreement < minAgreement) {
      throw new CliError('BAD_INPUT', `top-1 agreement with the source ${(100 * check.agreement).toFixed(1)}% on ${check.samples} held-out samples is below ` +
        `--min-agreement ${(100 * minAgreement).toFixed(1)}% with ${neurons} neurons; more --neurons, a higher --basis degree or --finetune DATA win it back`);
    }
  }
  await writeFlmFile(final, a.output);
  const bytes = statSync(a.output).size;
  const result = {
    input, output: a.output, method: 'decouple', quant: a.quant, neurons, basis,
    sourceParams: report.sourceParams, params: report.params, ratio: report.ratio,
    bytes, seconds: (performance.now() - t0) / 1000,
    calibration: source ?? 'synthetic',
    pairs: report.pairs, skipped: report.skipped,
    check,
    ...(check !== report.check && report.check ? { checkBeforeFinetune: report.check } : {}),
    ...(finetune ? { finetune } : {}),
    warning: checkWarning(check, {
      ...(source !== undefined ? { calibSource: source } : {}),
      suggest: a.calib ?? (isImage28(model) ? 'fashion-mnist' : 'DATA'),
      finetuned: finetune !== undefined,
      less: 'raise --neurons',
    }),
  };
  if (result.warning !== null) process.stderr.write(`warning: ${result.warning}\n`);
  if (a.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);
  if (check) {
    process.stdout.write(`check on ${check.samples} held-out ${check.data === 'synthetic' ? 'synthetic' : String(source)} samples: ` +
      `${check.agreement !== null ? `top-1 agreement with the source ${pct(check.agreement)}, ` : ''}output error ${check.outputError.toFixed(4)}\n`);
  }
  process.stdout.write(`${a.output}: ${formatBytes(bytes)}; ${report.params} params vs ${report.sourceParams} (${report.ratio.toFixed(2)}x) in ${result.seconds.toFixed(1)} s\n`);
  if (finetune) {
    process.stdout.write(`fine-tuned on ${finetune.trainSamples} ${finetune.data} images for ${finetune.epochs} epoch(s): test accuracy ` +
      `${pct(finetune.accuracyBefore)} -> ${pct(finetune.accuracy)} (teacher ${pct(finetune.teacherAccuracy)}) on ${finetune.samples} images\n`);
  }
}

/** The fit of every pair against truncated SVD at the same size, on stderr. */
function printFits(r: DecoupleReport): void {
  const rows = r.pairs.map((p) => [
    `${p.nodes[0]} → ${p.activation} → ${p.nodes[2]}`, `${p.inputs}→${p.hidden}→${p.outputs}`, p.neurons, p.degree,
    p.jacobianError.toFixed(4), p.valueError.toFixed(4), p.heldOutValueError.toFixed(4), p.paramsBefore, p.paramsAfter,
    p.svd ? `${p.svd.rank} (${p.svd.params})` : '-', p.svd ? p.svd.heldOutValueError.toFixed(4) : '-',
  ]);
  process.stderr.write(`${table(
    ['pair', 'shape', 'neurons', 'degree', 'J error', 'F error', 'F held out', 'params before', 'params after', 'SVD rank (params)', 'SVD F held out'],
    rows,
  )}\n`);
  for (const s of r.skipped) process.stderr.write(`kept ${s.nodes.join(' → ')}: ${s.reason}\n`);
}
