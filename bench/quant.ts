// Quantised factors against f32: LeNet-5 and FC-2 compressed at ratio 10 with svd, cp and tt, then
// stored as f32, f16, int8 per channel and int8 per tensor (`convert --quant`). For each: file
// bytes, and top-1 accuracy on the Fashion-MNIST test set in the factorlite runtime (the file is
// written and read back, so the accuracy is that of the stored factors).
//
//   node --import tsx bench/quant.ts [--limit 10000] [--methods svd,cp,tt] [--readme README.md | --no-readme]
//
// Writes bench/results/quant.{json,md} and the README section <!-- bench:quant:start --> ... end.
import { mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compressModel, type Method } from '../converter/compress.js';
import { limitDataset, loadDataset } from '../converter/data/datasets.js';
import { evaluate } from '../converter/evaluate.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { quantizeModel, QUANTS, type QuantChoice } from '../converter/quantize.js';
import { writeFlmFile } from '../converter/writer.js';
import { readFlmFile } from '../runtime/format/index.js';
import { initKernels } from '../runtime/kernels/backend.js';
import { Session } from '../runtime/session.js';
import { writeBenchResults } from './readme.js';
import { FIXTURES } from './lib/fixtures.js';
import { arg, numberArg } from './lib/args.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'out');
const RESULTS = join(ROOT, 'bench', 'results');

const LIMIT = numberArg('limit', '10000');
const METHODS = arg('methods', 'svd,cp,tt').split(',') as Method[];
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const RATIO = 10;
// int8 is int8-channel; measure the two named forms.
const FORMS: QuantChoice[] = QUANTS.filter((q) => q !== 'int8');
const MODELS = [
  { name: 'lenet5_fashion', label: 'LeNet-5' },
  { name: 'mlp_fashion', label: 'FC-2' },
];
const log = (s: string) => process.stderr.write(`${s}\n`);

interface Cell {
  quant: QuantChoice;
  bytes: number;
  accuracy: number;
  samples: number;
}
interface Row {
  model: string;
  method: Method;
  kinds: string;
  params: number;
  sourceParams: number;
  cells: Cell[];
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;

function markdown(rows: Row[], command: string, samples: number): string {
  const lines: string[] = [];
  lines.push(`Fashion-MNIST, first ${samples} test images; ratio ${RATIO} (parameters), factors stored as f32, f16, int8 with one scale per row of axis 0 ("channel") and int8 with one scale per tensor; biases stay f32. Bytes are the whole .flm file; "×" is the dense f32 model's bytes over the file's. Made by \`${command}\`.`);
  lines.push('');
  const head = ['model', 'method', 'layers', ...FORMS.flatMap((q) => [`${q} bytes`, `${q} top-1`])];
  lines.push(`| ${head.join(' | ')} |`);
  lines.push(`|${head.map(() => '---').join('|')}|`);
  for (const r of rows) {
    const f32 = r.cells.find((c) => c.quant === 'f32')!;
    const cells = [r.model, r.method, r.kinds];
    for (const q of FORMS) {
      const c = r.cells.find((x) => x.quant === q)!;
      const d = 100 * (c.accuracy - f32.accuracy);
      cells.push(`${kb(c.bytes)} (${((4 * r.sourceParams) / c.bytes).toFixed(1)}×)`, q === 'f32' ? pct(c.accuracy) : `${pct(c.accuracy)} (${d >= 0 ? '+' : ''}${d.toFixed(2)})`);
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push('');
  const worst = (q: QuantChoice) => Math.min(...rows.map((r) => r.cells.find((c) => c.quant === q)!.accuracy - r.cells.find((c) => c.quant === 'f32')!.accuracy));
  lines.push(`Largest accuracy drop against f32: ${FORMS.filter((q) => q !== 'f32').map((q) => `${q} ${(100 * worst(q)).toFixed(2)} pt`).join(', ')}.`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  await initKernels(log);
  const test = limitDataset(loadDataset('fashion-mnist', 'test'), LIMIT);
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), 256);
  const calibration = { shape: [train.count, ...train.shape], data: train.images };
  mkdirSync(OUT, { recursive: true });
  const rows: Row[] = [];
  for (const m of MODELS) {
    const dense = importOnnxFile(join(FIXTURES, `${m.name}.onnx`));
    for (const method of METHODS) {
      log(`${m.label} ${method}: compress at ratio ${RATIO}`);
      const { model, report } = compressModel(dense, { method, ratio: RATIO, calibration });
      const kinds = [...new Set(report.layers.filter((l) => l.op !== l.sourceOp).map((l) => l.op))].join(' + ');
      const cells: Cell[] = [];
      for (const q of FORMS) {
        const path = join(OUT, `quant_${m.name}_${method}_${q}.flm`);
        await writeFlmFile(quantizeModel(model, q), path);
        const bytes = statSync(path).size;
        const acc = evaluate(Session.create(await readFlmFile(path)), test, { batch: 250 });
        cells.push({ quant: q, bytes, accuracy: acc.accuracy, samples: acc.samples });
        log(`  ${q}: ${kb(bytes)}, top-1 ${pct(acc.accuracy)}`);
      }
      rows.push({ model: m.label, method, kinds, params: report.params, sourceParams: report.sourceParams, cells });
    }
  }
  const flags = [LIMIT !== 10000 ? ` --limit ${LIMIT}` : '', METHODS.join(',') !== 'svd,cp,tt' ? ` --methods ${METHODS.join(',')}` : ''].join('');
  const command = `node --import tsx bench/quant.ts${flags}`;
  const md = markdown(rows, command, test.count);
  writeBenchResults(RESULTS, 'quant', { command, date: new Date().toISOString(), ratio: RATIO, samples: test.count, rows }, md, README);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
