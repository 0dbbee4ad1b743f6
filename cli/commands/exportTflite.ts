// `factorlite export m.flm -o m.tflite`: the factorised model as TFLite builtins (batch 1, NHWC)
// for TensorFlow Lite, TensorFlow Lite Micro and the vendor tools that take .tflite.
import { writeFileAtomic } from '../../converter/atomicWrite.js';
import { ExportError } from '../../converter/export/index.js';
import { limitDataset, loadDataset } from '../../converter/data/datasets.js';
import { exportTflite } from '../../converter/export/tflite.js';
import { exportTfliteInt8 } from '../../converter/export/tfliteInt8.js';
import type { Tensor } from '../../runtime/ir.js';
import { FACTOR_OPS } from '../../runtime/ir.js';
import { CliError } from '../errors.js';
import { isFlm, readFlmAt, readModelBytes } from '../modelFile.js';
import { formatBytes } from '../table.js';

export interface ExportTfliteArgs {
  output: string;
  int8?: boolean;
  calib?: string;
  int16Activations?: boolean;
  /** top1 | full: range of int8 class scores (default top1 when the output has as many columns as the calibration set has classes). */
  int8Outputs?: string;
  json?: boolean;
}

/** Calibration samples for --int8 activation ranges. */
const CALIBRATION_SAMPLES = 1000;

export function isTfliteOutput(path: string): boolean {
  return path.toLowerCase().endsWith('.tflite');
}

export async function exportTfliteCommand(path: string, a: ExportTfliteArgs): Promise<void> {
  if (a.calib && !a.int8) throw new CliError('BAD_ARGUMENT', '--calib applies to --int8 only');
  if (a.int16Activations && !a.int8) throw new CliError('BAD_ARGUMENT', '--int16-activations applies to --int8 only');
  if (a.int8 && !a.calib) throw new CliError('BAD_ARGUMENT', '--int8 needs --calib DATA (fashion-mnist, mnist or a directory of IDX files) for activation ranges');
  if (a.int8Outputs !== undefined && !a.int8) throw new CliError('BAD_ARGUMENT', '--int8-outputs applies to --int8 only');
  const outputs = a.int8Outputs as 'top1' | 'full' | undefined;
  if (outputs !== undefined && outputs !== 'top1' && outputs !== 'full') throw new CliError('BAD_ARGUMENT', `--int8-outputs must be top1 or full, got ${outputs}`);
  const bytes = readModelBytes(path);
  if (!isFlm(bytes)) throw new CliError('NOT_A_MODEL', `${path} is not a .flm file (export reads .flm; convert a model first)`);
  const model = readFlmAt(path, bytes);
  let calibration: Tensor | undefined;
  let classes: number | undefined;
  if (a.calib) {
    const ds = limitDataset(loadDataset(a.calib, 'train'), CALIBRATION_SAMPLES);
    calibration = { shape: [ds.count, ...ds.shape], data: ds.images };
    classes = ds.labels.length > 0 ? ds.labels.reduce((m, l) => Math.max(m, l), 0) + 1 : undefined;
  }
  let r;
  try {
    r = calibration ? exportTfliteInt8(model, { calibration, activationBits: a.int16Activations ? 16 : 8, outputs, classes }) : exportTflite(model);
  } catch (e) {
    if (e instanceof ExportError) throw new CliError('BAD_INPUT', `${path}: ${e.message}`, { cause: e });
    throw e;
  }
  try {
    await writeFileAtomic(a.output, r.bytes);
  } catch (e) {
    throw new CliError('BAD_ARGUMENT', `cannot write ${a.output} (${(e as Error).message})`, { cause: e });
  }
  const summary = {
    model: path,
    output: a.output,
    format: 'tflite',
    dtype: a.int8 ? (a.int16Activations ? 'int16x8' : 'int8') : 'f32',
    bytes: r.bytes.length,
    operators: r.operators,
    tensors: r.tensors,
    params: r.params,
    factorisedLayers: model.graph.nodes.filter((n) => FACTOR_OPS.has(n.op)).length,
    inputs: model.graph.inputs.map((i) => i.name),
    outputs: model.graph.outputs,
  };
  if (a.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  process.stdout.write(
    `wrote ${a.output}: TFLite ${a.int8 ? `${a.int16Activations ? '16x8 (int16 activations, int8 weights' : 'int8 (int8 weights and activations'}, float32 interface)` : 'float32'}, ${r.operators} operators, ${r.params} parameters (${formatBytes(r.bytes.length)}); `
    + `${summary.factorisedLayers} factorised layers kept as factors\n`,
  );
}
