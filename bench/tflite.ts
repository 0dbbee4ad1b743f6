// TFLite export against the reference interpreter: LeNet-5 and FC-2 compressed ×10 (method auto),
// exported to .tflite as float32 and as int8 (calibrated on 1000 training images), run by
// @tensorflow/tfjs-tflite in Chromium on the Fashion-MNIST test set and compared, sample by sample,
// with the factorlite runtime on the .flm. Also: file sizes beside the dense originals (f32 and
// int8 .tflite), and the round trip .flm -> .tflite -> import.
//
//   node --import tsx bench/tflite.ts [--limit 10000] [--readme README.md | --no-readme]
//
// Writes bench/results/tflite.{json,md} and the README section <!-- bench:tflite:start --> ... end.
// The compressed models are cached in bench/out/tflite_<model>_x10.flm (delete to recompress).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compressModel } from '../converter/compress.js';
import { limitDataset, loadDataset } from '../converter/data/datasets.js';
import { argmaxRows } from '../converter/evaluate.js';
import { exportTflite } from '../converter/export/tflite.js';
import { exportTfliteInt8 } from '../converter/export/tfliteInt8.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { importTflite } from '../converter/tflite/index.js';
import { writeFlmFile } from '../converter/writer.js';
import { readFlm } from '../runtime/format/reader.js';
import type { Model } from '../runtime/ir.js';
import { Session } from '../runtime/session.js';
import { TfliteReference } from './lib/tfliteBrowser.js';
import { writeBenchResults } from './readme.js';
import { FIXTURES } from './lib/fixtures.js';
import { arg, numberArg } from './lib/args.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'out');
const RESULTS = join(ROOT, 'bench', 'results');

const LIMIT = numberArg('limit', '10000');
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const RATIO = 10;
const CALIB = 1000;
const MODELS = [
  { name: 'lenet5_fashion', label: 'LeNet-5' },
  { name: 'mlp_fashion', label: 'FC-2' },
];

const log = (s: string): void => { process.stderr.write(`${s}\n`); };

function compare(ours: Float32Array, theirs: Float32Array, labels: Uint8Array, n: number, classes: number) {
  const a = new Uint8Array(n);
  const b = new Uint8Array(n);
  argmaxRows(ours, n, classes, a, 0);
  argmaxRows(theirs, n, classes, b, 0);
  let agree = 0;
  let acc = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) agree++;
    if (b[i] === labels[i]) acc++;
  }
  let maxDiff = ours.length === theirs.length ? 0 : Infinity;
  for (let i = 0; i < ours.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i]! - theirs[i]!));
  return { agreement: agree / n, accuracy: acc / n, maxLogitDiff: maxDiff };
}

/** The runtime on every sample, in batches of 250 (a 10000-image LeNet batch would need GBs). */
function runAll(model: Model, sample: number[], data: Float32Array, n: number): Float32Array {
  const session = Session.create(model);
  const per = sample.reduce((a, b) => a * b, 1);
  const parts: Float32Array[] = [];
  for (let s = 0; s < n; s += 250) {
    const k = Math.min(250, n - s);
    parts.push(session.runBatch({ shape: [k, ...sample], data: data.subarray(s * per, (s + k) * per) }).data);
  }
  session.dispose();
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

async function compressed(name: string, dense: Model): Promise<Model> {
  const path = join(OUT, `tflite_${name}_x${RATIO}.flm`);
  if (!existsSync(path)) {
    log(`compressing ${name} ×${RATIO} (method auto)...`);
    const { model } = compressModel(dense, { method: 'auto', ratio: RATIO });
    await writeFlmFile(model, path);
  }
  return readFlm(readFileSync(path));
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const test = limitDataset(loadDataset('fashion-mnist', 'test'), LIMIT);
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), CALIB);
  const calibration = { shape: [train.count, ...train.shape], data: train.images };
  const n = test.count;
  const ref = await TfliteReference.start();
  const rows = [];
  try {
    for (const m of MODELS) {
      const dense = importOnnxFile(join(FIXTURES, `${m.name}.onnx`));
      const model = await compressed(m.name, dense);
      const ours = { data: runAll(model, test.shape, test.images, n) };
      const classes = ours.data.length / n;
      const f32 = exportTflite(model);
      const int8 = exportTfliteInt8(model, { calibration });
      const denseF32 = exportTflite(dense);
      const denseInt8 = exportTfliteInt8(dense, { calibration });
      log(`${m.label}: tfjs-tflite on ${n} images (f32, int8, dense int8)...`);
      const inShape = [1, test.shape[1]!, test.shape[2]!, test.shape[0]!];
      const tF32 = await ref.run(f32.bytes, inShape, test.images, n);
      const tInt8 = await ref.run(int8.bytes, inShape, test.images, n);
      const tDenseInt8 = await ref.run(denseInt8.bytes, inShape, test.images, n);
      const back = { data: runAll(importTflite(f32.bytes), inShape.slice(1), test.images, n) };
      const rt = compare(ours.data, back.data, test.labels, n, classes);
      const denseOurs = { data: runAll(dense, test.shape, test.images, n) };
      rows.push({
        model: m.label,
        samples: n,
        method: 'auto',
        ratio: RATIO,
        runtimeAccuracy: compare(ours.data, ours.data, test.labels, n, classes).accuracy,
        f32: { bytes: f32.bytes.length, operators: f32.operators, ...compare(ours.data, tF32.values, test.labels, n, classes) },
        int8: { bytes: int8.bytes.length, operators: int8.operators, ...compare(ours.data, tInt8.values, test.labels, n, classes) },
        denseF32: { bytes: denseF32.bytes.length },
        denseInt8: { bytes: denseInt8.bytes.length, ...compare(denseOurs.data, tDenseInt8.values, test.labels, n, classes) },
        roundTripMaxDiff: rt.maxLogitDiff,
      });
      log(JSON.stringify(rows[rows.length - 1]));
    }
  } finally {
    await ref.close();
  }
  const kb = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;
  const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
  const md = [
    `Fashion-MNIST test set (${n} images). Compressed ×${RATIO} with \`convert --method auto\`, exported with \`export -o m.tflite [--int8 --calib fashion-mnist]\`;`,
    'tfjs-tflite 0.0.1-alpha.10 (TensorFlow Lite in WebAssembly) in Chromium against the factorlite runtime on the `.flm` (f32).',
    'Dense originals: the ONNX fixtures imported with no factorisation and exported the same way.',
    '',
    '| model | .tflite f32 | agreement f32 | max logit diff f32 | .tflite int8 | agreement int8 | accuracy int8 (tfjs) | dense f32 .tflite | dense int8 .tflite | round trip max diff |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.model} | ${kb(r.f32.bytes)} | ${pct(r.f32.agreement)} | ${r.f32.maxLogitDiff.toExponential(2)} | ${kb(r.int8.bytes)} | ${pct(r.int8.agreement)} | ${pct(r.int8.accuracy)} (f32 runtime ${pct(r.runtimeAccuracy)}) | ${kb(r.denseF32.bytes)} | ${kb(r.denseInt8.bytes)} | ${r.roundTripMaxDiff.toExponential(2)} |`),
    '',
    'Agreement: top-1 of tfjs-tflite equals top-1 of the factorlite runtime. Round trip: `.flm` → `.tflite` → import → factorlite runtime, against the `.flm`.',
  ].join('\n');
  writeBenchResults(RESULTS, 'tflite', { date: new Date().toISOString(), rows }, md, README);
  process.stdout.write(`${md}\n`);
}

await main();
