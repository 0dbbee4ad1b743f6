// The int8-full path (convert --quant int8-full) against the f32 compressed model it is
// calibrated from and against int8 weights with f32 activations (--quant int8): top-1 accuracy on
// the Fashion-MNIST test set, top-1 agreement of the integer path with the f32 model, and bytes.
// Each model is converted by the command line as a user would: the f32 compressed model first
// (auto --ratio, or a method), then `convert that.flm --method none --quant int8|int8-full
// --calib fashion-mnist`, so the three files share their factors exactly. The integer path runs
// on the reference integer kernels (runtime/int8full), the model's definition.
//
// Part 2 (--part mlperf): MLPerf Tiny's IC (ResNet-8, residual adds), KWS (DS-CNN, depthwise
// convs) and AD (the dense autoencoder) from scripts/mlperf_tiny.py's cached build, each dense and
// at 4x, converted to int8-full with
// calibration data (IC: 256 training images; KWS / AD: 256 seeded standard-normal inputs, another
// seed than the evaluation inputs). IC at 4x is not fine-tuned here (the agreement of the integer
// path with its own f32 model is the measure; bench/mlperf-tiny.ts fine-tunes). Agreement of the integer path with the f32 compressed model:
// IC top-1 on Fashion-MNIST-32x32 test images; KWS / AD on 256 seeded standard-normal inputs (the
// distribution of the script's fixed inputs), mean squared error and top-1 agreement (AD: the
// share of samples whose largest output coordinate agrees). Activation arena: the memory planner's
// firmware (mcu) profile on each graph with f32 activations and with int8 ones
// (runtime/plan/profiles.ts int8Activations), LeNet-5 x10 included.
//
//   node --import tsx bench/int8full.ts [--part fashion|mlperf|all] [--limit 10000] [--ic-limit 1000] [--reuse] [--no-readme]
//
// Writes bench/results/int8full.{json,md} (and int8full-mlperf.{json,md}) and the README sections
// <!-- bench:int8full:start --> ... end and <!-- bench:int8full-mlperf:start --> ... end.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fitDataToModel, limitDataset, loadData, loadDataset } from '../converter/data/datasets.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { writeNpy } from '../cli/npy.js';
import { planArena } from '../runtime/plan/planner.js';
import { mcuProfile } from '../runtime/plan/mcu.js';
import { int8Activations } from '../runtime/plan/profiles.js';
import { mlperfTinyModels } from '../scripts/mlperfTiny.js';
import type { Model, Tensor } from '../runtime/ir.js';
import { argmaxRows } from '../converter/evaluate.js';
import { readFlm } from '../runtime/format/reader.js';
import { Int8Session } from '../runtime/int8full/session.js';
import { Session } from '../runtime/session.js';
import { writeBenchResults } from './readme.js';
import { FIXTURES } from './lib/fixtures.js';
import { arg, numberArg } from './lib/args.js';

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
const PART = arg('part', 'all');
const REUSE = process.argv.includes('--reuse');
if (PART === 'fashion' || PART === 'all') fashionPart();
if (PART === 'mlperf' || PART === 'all') await mlperfPart();

function fashionPart(): void {
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
}

function convertCli(input: string, out: string, args: string[]): void {
  log(`convert ${input} -> ${out} ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'factorlite.js'), 'convert', input, '-o', out, ...args, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`convert ${input} ${args.join(' ')} failed`);
}

/** Stored weight elements of a model (factors included). */
function paramsOf(model: Model): number {
  let n = 0;
  for (const node of model.graph.nodes) for (const w of Object.values(node.weights)) n += model.tensors.get(w)!.data.length;
  return n;
}

/** Seeded standard-normal inputs [n, ...shape] (xorshift + Box-Muller), written as .npy. */
function normalNpy(file: string, n: number, shape: number[], seed: number): Tensor {
  let st = seed >>> 0 || 1;
  const u = () => {
    st ^= st << 13; st >>>= 0; st ^= st >>> 17; st ^= st << 5; st >>>= 0;
    return (st + 0.5) / 4294967296;
  };
  const per = shape.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n * per }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
  writeFileSync(file, writeNpy([n, ...shape], data));
  return { shape: [n, ...shape], data };
}

/** Activation arena of the firmware's plan for `model`'s graph: f32 and int8 activations. */
function arenas(model: Model): { f32: number; int8: number } {
  return { f32: planArena(model, mcuProfile).arena, int8: planArena(model, int8Activations(mcuProfile)).arena };
}

async function mlperfPart(): Promise<void> {
  const dir = mlperfTinyModels({ epochs: 2, trainLimit: 20000, testLimit: 1000, samples: 16, finetuneLimit: 20000, log: true });
  const out = join(OUT, 'int8full-mlperf');
  mkdirSync(out, { recursive: true });
  const icLimit = numberArg('ic-limit', '1000');
  const rows: Array<Record<string, unknown>> = [];
  const specs = [
    { model: 'ic', variant: 'dense', args: ['--method', 'none'] },
    { model: 'ic', variant: '4x', args: ['--ratio', '4'] },
    { model: 'kws', variant: 'dense', args: ['--method', 'none'] },
    { model: 'kws', variant: '4x', args: ['--ratio', '4'] },
    { model: 'ad', variant: 'dense', args: ['--method', 'none'] },
    // AD is all dense layers: svd is the one factor kind of a dense layer the integer path runs (auto
    // with --quant f32 picks ttl_dense here).
    { model: 'ad', variant: '4x svd', args: ['--method', 'svd', '--ratio', '4'] },
  ];
  for (const sp of specs) {
    const t0 = performance.now();
    const tag = `${sp.model}_${sp.variant.split(/[, ]/)[0]}`;
    const f32 = join(out, `${tag}_f32.flm`);
    const full = join(out, `${tag}_full.flm`);
    let calib: string;
    let evalX: Tensor;
    let labels: Uint8Array | undefined;
    if (sp.model === 'ic') {
      calib = join(dir, 'ic_data');
      const m0 = await importOnnxFile(join(dir, 'ic.onnx'));
      const fit = fitDataToModel(limitDataset(loadData(join(dir, 'ic_data'), 'test'), icLimit), m0);
      evalX = { shape: [fit.data.count, ...fit.data.shape], data: fit.data.images };
      labels = fit.labels;
    } else {
      const shape = sp.model === 'kws' ? [1, 49, 10] : [640];
      calib = join(out, `${sp.model}_calib.npy`);
      normalNpy(calib, 256, shape, 1);
      evalX = normalNpy(join(out, `${sp.model}_eval.npy`), 256, shape, 2);
    }
    // The f32 compressed model, then the int8-full file from it (the two share their factors).
    // --reuse keeps both files of an earlier run of this bench (the conversions are the slow part).
    if (!(REUSE && existsSync(f32) && existsSync(full))) {
      convertCli(join(dir, `${sp.model}.onnx`), f32, [...sp.args, '--quant', 'f32', '--calib', calib]);
      convertCli(f32, full, ['--method', 'none', '--quant', 'int8-full', '--calib', calib]);
    }
    const mf = readFlm(readFileSync(f32));
    const mq = readFlm(readFileSync(full));
    const yf = Session.create(mf, { retainWeights: false }).runBatch(evalX).data;
    const t1 = performance.now();
    const yq = Int8Session.create(mq).runBatch(evalX).data;
    const msPer = (performance.now() - t1) / evalX.shape[0]!;
    const n = evalX.shape[0]!;
    const pf = top1(yf, n);
    const pq = top1(yq, n);
    let se = 0;
    let sf = 0;
    for (let i = 0; i < yf.length; i++) {
      se += (yf[i]! - yq[i]!) ** 2;
      sf += yf[i]! ** 2;
    }
    const ar = arenas(mf);
    const row = {
      model: sp.model, variant: sp.variant, samples: n,
      kinds: [...new Set(mq.graph.nodes.map((x) => x.op))].join(', '),
      params: paramsOf(mf),
      agreement: share(pq, pf),
      mse: se / yf.length,
      meanSquareF32: sf / yf.length,
      ...(labels ? { accuracy: { f32: share(pf, labels), int8Full: share(pq, labels) } } : {}),
      bytes: { f32: statSync(f32).size, int8Full: statSync(full).size },
      arena: { ...ar, ratio: ar.int8 / ar.f32 },
      referenceMsPerSample: msPer,
      seconds: (performance.now() - t0) / 1000,
    };
    log(JSON.stringify(row));
    rows.push(row);
  }
  // LeNet-5 x10: the graph of the firmware bench's file (bench/out/hil_lenet5_r10_int8.flm) when present.
  const lenet = join(OUT, 'hil_lenet5_r10_int8.flm');
  const lenetArena = existsSync(lenet) ? arenas(readFlm(readFileSync(lenet))) : null;
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  const md = [
    `MLPerf Tiny models from \`scripts/mlperf_tiny.py\` (IC trained 2 epochs on 20,000 Fashion-MNIST images padded to 3×32×32), each converted by the CLI to an f32 model (dense, or \`--ratio 4\`: auto for IC and KWS, svd for AD; no fine-tuning) and then \`convert f32.flm --method none --quant int8-full --calib …\` (IC: its training images; KWS / AD: 256 seeded standard-normal inputs). \`nice -n 10 node --import tsx bench/int8full.ts --part mlperf --ic-limit ${icLimit}\`. Agreement: top-1 of the integer path (reference integer kernels) against the f32 file on ${rows[0]?.['samples']} Fashion-MNIST-32×32 test images (IC) or 256 other seeded standard-normal inputs (KWS, AD; for AD the largest output coordinate). MSE: mean squared difference of the outputs (mean square of the f32 outputs beside it). Arena: the memory planner's firmware profile (batch 1, input read in place, the firmware's fused chains) with f32 activations and with int8 activations, for the same graph.`,
    '',
    '| model | variant | params | agreement int8-full vs f32 | MSE (f32 mean square) | top-1 f32 / int8-full | bytes f32 / int8-full | arena f32 / int8 | ratio |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const a = r['arena'] as { f32: number; int8: number; ratio: number };
      const acc = r['accuracy'] as { f32: number; int8Full: number } | undefined;
      const b = r['bytes'] as { f32: number; int8Full: number };
      return `| ${String(r['model'])} | ${String(r['variant'])} | ${(r['params'] as number).toLocaleString('en')} | ${pct(r['agreement'] as number)} of ${String(r['samples'])} | ${(r['mse'] as number).toExponential(2)} (${(r['meanSquareF32'] as number).toExponential(2)}) | ${acc ? `${pct(acc.f32)} / ${pct(acc.int8Full)}` : '–'} | ${b.f32.toLocaleString('en')} / ${b.int8Full.toLocaleString('en')} | ${kib(a.f32)} / ${kib(a.int8)} | ${a.ratio.toFixed(3)}× |`;
    }),
    ...(lenetArena ? [`| LeNet-5 ×10 | (bench/out/hil_lenet5_r10_int8.flm's graph) | | | | | | ${kib(lenetArena.f32)} / ${kib(lenetArena.int8)} | ${(lenetArena.int8 / lenetArena.f32).toFixed(3)}× |`] : []),
  ].join('\n');
  writeBenchResults(join(ROOT, 'bench', 'results'), 'int8full-mlperf', { rows, lenetArena }, md, README);
}
