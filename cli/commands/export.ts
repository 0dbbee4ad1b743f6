// `factorlite export m.flm -o m.onnx`: the factorised model as an ONNX graph of small Convs and
// MatMuls over its factors, for onnxruntime, TensorRT or any other ONNX tool.
import onnxProto from 'onnx-proto';
import { DEFAULT_EXPORT_OPSET, exportOnnx, ExportError, MAX_EXPORT_OPSET, MIN_EXPORT_OPSET } from '../../converter/export/index.js';
import { FACTOR_OPS } from '../../runtime/ir.js';
import { CliError } from '../errors.js';
import { isFlm, readFlmAt, readModelBytes } from '../modelFile.js';
import { formatBytes } from '../table.js';
import { checkOutputs } from '../outputs.js';
import { exportTfliteCommand, isTfliteOutput } from './exportTflite.js';
import { writeFileAtomic } from '../../converter/atomicWrite.js';
import { integerFlag } from '../flags.js';

export interface ExportArgs {
  output: string;
  opset?: string | number;
  json?: boolean;
  int8?: boolean;
  calib?: string;
  int16Activations?: boolean;
  int8Outputs?: string;
}

function parseOpset(v: string | number | undefined): number {
  return integerFlag('--opset', v, MIN_EXPORT_OPSET, `an integer from ${MIN_EXPORT_OPSET} to ${MAX_EXPORT_OPSET}`, MAX_EXPORT_OPSET) ?? DEFAULT_EXPORT_OPSET;
}

async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeFileAtomic(path, bytes);
  } catch (e) {
    throw new CliError('BAD_ARGUMENT', `cannot write ${path} (${(e as Error).message})`, { cause: e });
  }
}

export async function exportCommand(path: string, a: ExportArgs): Promise<void> {
  if (isTfliteOutput(a.output)) {
    checkOutputs({ inputs: [path], outputs: [a.output] });
    return exportTfliteCommand(path, a);
  }
  if (a.int8 || a.calib || a.int16Activations || a.int8Outputs !== undefined) throw new CliError('BAD_ARGUMENT', '--int8, --calib, --int16-activations and --int8-outputs apply to .tflite output only');
  const opset = parseOpset(a.opset);
  checkOutputs({ inputs: [path], outputs: [a.output] });
  const bytes = readModelBytes(path);
  if (!isFlm(bytes)) throw new CliError('NOT_A_MODEL', `${path} is not a .flm file (export reads .flm; convert an ONNX model first)`);
  const model = readFlmAt(path, bytes);
  let onnxBytes: Uint8Array;
  try {
    onnxBytes = exportOnnx(model, { opset });
  } catch (e) {
    if (e instanceof ExportError) throw new CliError('BAD_INPUT', `${path}: ${e.message}`, { cause: e });
    throw e;
  }
  await writeAtomic(a.output, onnxBytes);
  const g = onnxProto.onnx.ModelProto.decode(onnxBytes).graph;
  const inits = g?.initializer ?? [];
  const sizes = inits.map((i) => (i.dims ?? []).reduce((s: number, d) => s * Number(d), 1));
  const summary = {
    model: path,
    output: a.output,
    opset,
    bytes: onnxBytes.length,
    nodes: g?.node?.length ?? 0,
    initializers: inits.length,
    params: sizes.reduce((s, n) => s + n, 0),
    largestInitializer: sizes.length ? Math.max(...sizes) : 0,
    factorisedLayers: model.graph.nodes.filter((n) => FACTOR_OPS.has(n.op)).length,
    inputs: model.graph.inputs.map((i) => i.name),
    outputs: model.graph.outputs,
  };
  if (a.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  process.stdout.write(
    `wrote ${a.output}: ONNX opset ${opset}, ${summary.nodes} nodes, ${summary.params} parameters in ${summary.initializers} initializers `
    + `(${formatBytes(onnxBytes.length)}); ${summary.factorisedLayers} factorised layers kept as factors\n`,
  );
}
