// `factorlite export m.flm -o m.tflite`: the factorised model as TFLite builtins (batch 1, NHWC)
// for TensorFlow Lite, TensorFlow Lite Micro and the vendor tools that take .tflite.
import { writeFileAtomic } from '../../converter/atomicWrite.js';
import { ExportError } from '../../converter/export/index.js';
import { exportTflite } from '../../converter/export/tflite.js';
import { readFlm } from '../../runtime/format/reader.js';
import { FACTOR_OPS } from '../../runtime/ir.js';
import { CliError } from '../errors.js';
import { isFlm, readModelBytes } from '../modelFile.js';
import { formatBytes } from '../table.js';

export interface ExportTfliteArgs {
  output: string;
  int8?: boolean;
  calib?: string;
  json?: boolean;
}

export function isTfliteOutput(path: string): boolean {
  return path.toLowerCase().endsWith('.tflite');
}

export async function exportTfliteCommand(path: string, a: ExportTfliteArgs): Promise<void> {
  if (a.int8 || a.calib) throw new CliError('BAD_ARGUMENT', '--int8 / --calib: integer TFLite export is not implemented yet (float32 only)');
  const bytes = readModelBytes(path);
  if (!isFlm(bytes)) throw new CliError('NOT_A_MODEL', `${path} is not a .flm file (export reads .flm; convert a model first)`);
  const model = readFlm(bytes);
  let r;
  try {
    r = exportTflite(model);
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
    dtype: 'f32',
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
    `wrote ${a.output}: TFLite float32, ${r.operators} operators, ${r.params} parameters (${formatBytes(r.bytes.length)}); `
    + `${summary.factorisedLayers} factorised layers kept as factors\n`,
  );
}
