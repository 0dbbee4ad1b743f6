// TFLite export against the reference interpreter: LeNet-5 and FC-2 compressed ×10 (method auto,
// and FC-2 also with tt / tr / tucker, whose dense layers become tt_dense / tr_dense / ttl_dense),
// exported to .tflite as float32, int8 and 16x8 (int16 activations; both calibrated on 1000
// training images), run by @tensorflow/tfjs-tflite in Chromium on the Fashion-MNIST test set and
// compared, sample by sample, with the factorlite runtime on the .flm. Also: file sizes beside the
// dense originals (f32 and int8 .tflite), and the round trip .flm -> .tflite -> import.
//
//   node --import tsx bench/tflite.ts [--limit 10000] [--readme README.md | --no-readme]
//
// Writes bench/results/tflite.{json,md} and the README section <!-- bench:tflite:start --> ... end.
// The compressed models are cached in bench/out/tflite_<model>[_<method>]_x10.flm (delete to recompress).
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
import { FACTOR_OPS, type Model } from '../runtime/ir.js';
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
const MODELS: Array<{ name: string; label: string; method: 'auto' | 'tt' | 'tr' | 'tucker' }> = [
  { name: 'lenet5_fashion', label: 'LeNet-5', method: 'auto' },
  { name: 'mlp_fashion', label: 'FC-2', method: 'auto' },
  { name: 'mlp_fashion', label: 'FC-2', method: 'tucker' },
  { name: 'mlp_fashion', label: 'FC-2', method: 'tt' },
  { name: 'mlp_fashion', label: 'FC-2', method: 'tr' },
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

/** Rows whose largest output value is shared by two or more classes. */
function ties(values: Float32Array, n: number, classes: number): { tiedRows: number } {
  let tied = 0;
  for (let i = 0; i < n; i++) {
    const row = values.subarray(i * classes, (i + 1) * classes);
    let m = -Infinity;
    let c = 0;
    for (const v of row) {
      if (v > m) { m = v; c = 1; } else if (v === m) c++;
    }
    if (c > 1) tied++;
  }
  return { tiedRows: tied };
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

async function compressed(name: string, dense: Model, method: 'auto' | 'tt' | 'tr' | 'tucker'): Promise<Model> {
  const path = join(OUT, `tflite_${name}${method === 'auto' ? '' : `_${method}`}_x${RATIO}.flm`);
  if (!existsSync(path)) {
    log(`compressing ${name} ×${RATIO} (method ${method})...`);
    const { model } = compressModel(dense, { method, ratio: RATIO });
    await writeFlmFile(model, path);
  }
  return readFlm(readFileSync(path));
}

interface Compared { agreement: number; accuracy: number; maxLogitDiff: number }
interface Row {
  model: string; samples: number; method: string; kinds: string[]; ratio: number; runtimeAccuracy: number;
  f32: Compared & { bytes: number; operators: number };
  int8: Compared & { bytes: number; operators: number; tiedRows: number };
  int8FullRangeOutputs: Compared & { tiedRows: number };
  int16x8: Compared & { bytes: number; operators: number; tiedRows: number };
  denseF32: { bytes: number };
  denseInt8: { bytes: number; agreement: number };
  roundTripMaxDiff: number;
}

/** Writes bench/results/tflite.{json,md} and the README section from the rows so far; returns the markdown. */
function report(rows: Row[], n: number, complete: boolean): string {
  const kb = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;
  const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
  const md = [
    ...(complete ? [] : [`Partial run: ${rows.length} of ${MODELS.length} rows so far (the table is rewritten after each row).`, '']),
    `Fashion-MNIST test set (${n} images). Compressed ×${RATIO} with \`convert --method M --ratio ${RATIO}\` (no fine-tuning), exported with \`export -o m.tflite [--int8 [--int16-activations] --calib fashion-mnist]\`;`,
    'tfjs-tflite 0.0.1-alpha.10 (TensorFlow Lite in WebAssembly) in Chromium against the factorlite runtime on the `.flm` (f32).',
    'Dense originals: the ONNX fixtures imported with no factorisation and exported the same way.',
    '',
    '| model | method (factor kinds) | .tflite f32 | agreement f32 | max logit diff f32 | .tflite int8 | agreement int8 (ties) | int8, min/max outputs (ties) | accuracy int8 (tfjs) | .tflite 16x8 | agreement 16x8 | dense f32 / int8 .tflite (int8 agreement) | round trip max diff |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.model} | ${r.method} (${r.kinds.join(', ')}) | ${kb(r.f32.bytes)} | ${pct(r.f32.agreement)} | ${r.f32.maxLogitDiff.toExponential(2)} | ${kb(r.int8.bytes)} | ${pct(r.int8.agreement)} (${r.int8.tiedRows}) | ${pct(r.int8FullRangeOutputs.agreement)} (${r.int8FullRangeOutputs.tiedRows}) | ${pct(r.int8.accuracy)} (f32 runtime ${pct(r.runtimeAccuracy)}) | ${kb(r.int16x8.bytes)} | ${pct(r.int16x8.agreement)} | ${kb(r.denseF32.bytes)} / ${kb(r.denseInt8.bytes)} (${pct(r.denseInt8.agreement)}) | ${r.roundTripMaxDiff.toExponential(2)} |`),
    '',
    'Agreement: top-1 of tfjs-tflite equals top-1 of the factorlite runtime. Ties: test images whose int8 output has two equal top logits.',
    '`--int8` (default `--int8-outputs top1`): the logits\' int8 range keeps the calibration images\' top-1 (low logits may clamp); "min/max outputs" is `--int8-outputs full`,',
    'the range of all calibration logits (8-bit logits 1/255 of that range apart: close top logits tie). Dense int8 column: the default. Round trip: `.flm` → `.tflite` → import → factorlite runtime, against the `.flm`.',
  ].join('\n');
  writeBenchResults(RESULTS, 'tflite', { date: new Date().toISOString(), complete, rows }, md, README);
  return md;
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const test = limitDataset(loadDataset('fashion-mnist', 'test'), LIMIT);
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), CALIB);
  const calibration = { shape: [train.count, ...train.shape], data: train.images };
  /** Classes of the calibration labels, as `export --int8 --calib` passes them. */
  const labelClasses = train.labels.reduce((m, l) => Math.max(m, l), 0) + 1;
  const n = test.count;
  const ref = await TfliteReference.start();
  const rows: Row[] = [];
  const denseCache = new Map<string, { f32: number; int8: number; int8Agreement: number }>();
  try {
    for (const m of MODELS) {
      const dense = importOnnxFile(join(FIXTURES, `${m.name}.onnx`));
      const model = await compressed(m.name, dense, m.method);
      const kinds = [...new Set(model.graph.nodes.filter((nd) => FACTOR_OPS.has(nd.op)).map((nd) => nd.op))];
      const ours = { data: runAll(model, test.shape, test.images, n) };
      const classes = ours.data.length / n;
      const f32 = exportTflite(model);
      const int8 = exportTfliteInt8(model, { calibration, classes: labelClasses });
      const int8Full = exportTfliteInt8(model, { calibration, outputs: 'full' });
      const a16 = exportTfliteInt8(model, { calibration, activationBits: 16 });
      log(`${m.label} ${m.method} (${kinds.join(', ')}): tfjs-tflite on ${n} images (f32, int8, int8 with min/max outputs, 16x8)...`);
      const inShape = [1, test.shape[1]!, test.shape[2]!, test.shape[0]!];
      const tF32 = await ref.run(f32.bytes, inShape, test.images, n);
      const tInt8 = await ref.run(int8.bytes, inShape, test.images, n);
      const tInt8Full = await ref.run(int8Full.bytes, inShape, test.images, n);
      const tA16 = await ref.run(a16.bytes, inShape, test.images, n);
      let d = denseCache.get(m.name);
      if (!d) {
        const denseF32 = exportTflite(dense);
        const denseInt8 = exportTfliteInt8(dense, { calibration, classes: labelClasses });
        const tDenseInt8 = await ref.run(denseInt8.bytes, inShape, test.images, n);
        const denseOurs = { data: runAll(dense, test.shape, test.images, n) };
        d = { f32: denseF32.bytes.length, int8: denseInt8.bytes.length, int8Agreement: compare(denseOurs.data, tDenseInt8.values, test.labels, n, classes).agreement };
        denseCache.set(m.name, d);
      }
      const back = { data: runAll(importTflite(f32.bytes), inShape.slice(1), test.images, n) };
      const rt = compare(ours.data, back.data, test.labels, n, classes);
      rows.push({
        model: m.label,
        samples: n,
        method: m.method,
        kinds,
        ratio: RATIO,
        runtimeAccuracy: compare(ours.data, ours.data, test.labels, n, classes).accuracy,
        f32: { bytes: f32.bytes.length, operators: f32.operators, ...compare(ours.data, tF32.values, test.labels, n, classes) },
        int8: { bytes: int8.bytes.length, operators: int8.operators, ...compare(ours.data, tInt8.values, test.labels, n, classes), ...ties(tInt8.values, n, classes) },
        int8FullRangeOutputs: { ...compare(ours.data, tInt8Full.values, test.labels, n, classes), ...ties(tInt8Full.values, n, classes) },
        int16x8: { bytes: a16.bytes.length, operators: a16.operators, ...compare(ours.data, tA16.values, test.labels, n, classes), ...ties(tA16.values, n, classes) },
        denseF32: { bytes: d.f32 },
        denseInt8: { bytes: d.int8, agreement: d.int8Agreement },
        roundTripMaxDiff: rt.maxLogitDiff,
      });
      log(JSON.stringify(rows[rows.length - 1]));
      if (rows.length < MODELS.length) report(rows, n, false);
    }
  } finally {
    await ref.close();
  }
  const md = report(rows, n, true);
  process.stdout.write(`${md}\n`);
}

await main();
