// The int8-full path (convert --quant int8-full) against the f32 compressed model it is
// calibrated from and against int8 weights with f32 activations (--quant int8): top-1 accuracy on
// the Fashion-MNIST test set, top-1 agreement of the integer path with the f32 model, and bytes.
// Each model is converted by the command line as a user would: the f32 compressed model first
// (auto --ratio, or a method), then `convert that.flm --method none --quant int8|int8-full
// --calib fashion-mnist`, so the three files share their factors exactly. The integer path runs
// on the reference integer kernels (runtime/int8full), the model's definition.
//
//   node --import tsx bench/int8full.ts [--limit 10000] [--no-readme]
//
// Writes bench/results/int8full.{json,md} and the README section <!-- bench:int8full:start --> ... end.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { limitDataset, loadDataset } from '../converter/data/datasets.js';
import { argmaxRows } from '../converter/evaluate.js';
import { readFlm } from '../runtime/format/reader.js';
import { Int8Session } from '../runtime/int8full/session.js';
import { Session } from '../runtime/session.js';
import { writeBenchResults } from './readme.js';
import { FIXTURES } from './lib/fixtures.js';
import { numberArg } from './lib/args.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'out');
const LIMIT = numberArg('limit', '10000');
const README = process.argv.includes('--no-readme') ? null : join(ROOT, 'README.md');
const log = (s: string) => process.stderr.write(`${s}\n`);

const MODELS = [
  { label: 'LeNet-5 ×10 (auto)', onnx: 'lenet5_fashion.onnx', tag: 'lenet5_r10', args: ['--ratio', '10'] },
  { label: 'FC-2 svd ×20', onnx: 'mlp_fashion.onnx', tag: 'fc2_svd20', args: ['--method', 'svd', '--ratio', '20'] },
];

function convert(input: string, out: string, args: string[]): void {
  log(`convert ${input} -> ${out} ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'factorlite.js'), 'convert', input, '-o', out, ...args, '--calib', 'fashion-mnist', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`convert ${input} ${args.join(' ')} failed`);
}

function top1(y: Float32Array, rows: number): Uint8Array {
  const out = new Uint8Array(rows);
  argmaxRows(y, rows, y.length / rows, out, 0);
  return out;
}
const share = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + (v === b[i] ? 1 : 0), 0) / a.length;
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

mkdirSync(OUT, { recursive: true });
const ds = limitDataset(loadDataset('fashion-mnist', 'test'), LIMIT);
const x = { shape: [ds.count, 1, 28, 28], data: ds.images };
const rows = [];
for (const m of MODELS) {
  const f32 = join(OUT, `int8full_${m.tag}_f32.flm`);
  const w8 = join(OUT, `int8full_${m.tag}_int8.flm`);
  const full = join(OUT, `int8full_${m.tag}_full.flm`);
  convert(join(FIXTURES, m.onnx), f32, m.args);
  convert(f32, w8, ['--method', 'none', '--quant', 'int8']);
  convert(f32, full, ['--method', 'none', '--quant', 'int8-full']);
  const model = readFlm(readFileSync(full));
  const pF = top1(Session.create(readFlm(readFileSync(f32)), { retainWeights: false }).runBatch(x).data, ds.count);
  const pW = top1(Session.create(readFlm(readFileSync(w8)), { retainWeights: false }).runBatch(x).data, ds.count);
  const t0 = performance.now();
  const pQ = top1(Int8Session.create(model).runBatch(x).data, ds.count);
  const ms = (performance.now() - t0) / ds.count;
  const row = {
    model: m.label, kinds: model.graph.nodes.filter((n) => n.weights && Object.keys(n.weights).length).map((n) => n.op).join(', '),
    samples: ds.count,
    accuracy: { f32: share(pF, ds.labels), int8: share(pW, ds.labels), int8Full: share(pQ, ds.labels) },
    agreementWithF32: { int8: share(pW, pF), int8Full: share(pQ, pF) },
    bytes: { f32: statSync(f32).size, int8: statSync(w8).size, int8Full: statSync(full).size },
    referenceMsPerImage: ms,
  };
  log(JSON.stringify(row));
  rows.push(row);
}
const md = [
  `Fashion-MNIST test set, ${ds.count} images; \`node --import tsx bench/int8full.ts\`. The int8-full column runs the reference integer kernels (int8 activations, int32 accumulators, TFLM requantisation); agreement is top-1 against the f32 compressed model the file was calibrated from (256 training images).`,
  '',
  '| model | layer kinds | accuracy f32 | int8 weights | int8-full | agreement int8 / int8-full vs f32 | bytes f32 / int8 / int8-full |',
  '|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.model} | ${r.kinds} | ${pct(r.accuracy.f32)} | ${pct(r.accuracy.int8)} | ${pct(r.accuracy.int8Full)} | ${pct(r.agreementWithF32.int8)} / ${pct(r.agreementWithF32.int8Full)} | ${r.bytes.f32} / ${r.bytes.int8} / ${r.bytes.int8Full} |`),
].join('\n');
writeBenchResults(join(ROOT, 'bench', 'results'), 'int8full', { rows }, md, README);
