// Time per training step of the two cases issue 14 names, on the trainer's JS loops or its
// WebAssembly SIMD kernels (converter/train/kernels.ts), for profiles and before/after figures:
//   lenet5: buildNet lenet5 --layer cp --ratio 10 (bench/training.ts part 3's net), Adam, batch 64
//   vgg:    models/vgg_bn_fashion.onnx compressed by auto at 10x (cached in bench/out as bench/auto.ts
//           does), then distillation fine-tuning steps (finetune(), the step of `convert --finetune`)
//
//   node --import tsx bench/trainStep.ts [--case lenet5|vgg] [--kernels js,wasm] [--steps N] [--warmup N]
//        [--student FILE.flm (vgg: this student instead of compressing)] [--json]
//
// Each kernel choice runs in turn in one process (the first runs the warm-up of the JIT as well);
// prints one line per run and, with --json, one JSON object on stdout. Run under `node --cpu-prof`
// for a profile. Figures go to the closing notes, not to a results file: bench/training.ts is the
// bench of record.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compressModel } from '../converter/compress.js';
import { limitDataset, loadDataset } from '../converter/data/datasets.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { buildNet } from '../converter/train/arch.js';
import { finetune } from '../converter/train/finetune.js';
import { setTrainKernels, trainKernels, trainKernelStats, type TrainKernelsChoice } from '../converter/train/kernels.js';
import { Trainer } from '../converter/train/trainer.js';
import { initKernels } from '../runtime/kernels/backend.js';
import { readFlm } from '../runtime/format/reader.js';
import { writeFlm } from '../converter/writer.js';
import type { Model, Tensor } from '../runtime/ir.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : def;
}
const CASE = arg('--case', 'lenet5');
const KERNELS = arg('--kernels', 'js,wasm').split(',') as TrainKernelsChoice[];
const say = (m: string) => process.stderr.write(`[trainStep] ${m}\n`);

async function lenet5(steps: number, warmup: number): Promise<number> {
  const batch = 64;
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), batch * (warmup + steps));
  const net = buildNet({ arch: 'lenet5', layer: 'cp', ratio: 10, seed: 0 });
  const trainer = new Trainer(net, train, undefined, { epochs: 1, batch, optimizer: { kind: 'adam', lr: 1e-3 }, schedule: { kind: 'constant' }, seed: 0 });
  let t0 = 0, t1 = 0;
  await trainer.run({
    onProgress: (p) => {
      if (p.batch === warmup - 1) t0 = performance.now();
      if (p.batch === warmup + steps - 1) t1 = performance.now();
    },
  });
  return (t1 - t0) / steps;
}

function vggStudent(): { student: Model; teacher: Model } {
  const src = join(ROOT, 'models', 'vgg_bn_fashion.onnx');
  if (!existsSync(src)) throw new Error(`${src} not found (scripts/train_vgg_bn.py makes it)`);
  const teacher = importOnnxFile(src);
  const given = process.argv.includes('--student') ? arg('--student', '') : undefined;
  if (given) return { student: readFlm(readFileSync(given)), teacher };
  const cached = join(ROOT, 'bench', 'out', 'auto-vgg_bn_fashion-10x.flm');
  if (existsSync(cached) && statSync(cached).mtimeMs > statSync(src).mtimeMs) return { student: readFlm(readFileSync(cached)), teacher };
  say('compressing vgg_bn_fashion (auto, 10x) once; cached in bench/out');
  // As bench/auto.ts does (same cache file): 256 training images to calibrate, the next 256 held out.
  const train = loadDataset('fashion-mnist', 'train');
  const calibration: Tensor = { shape: [256, 1, 28, 28], data: train.images.subarray(0, 256 * 784) };
  const holdout: Tensor = { shape: [256, 1, 28, 28], data: train.images.subarray(256 * 784, 512 * 784) };
  const student = compressModel(teacher, { method: 'auto', ratio: 10, calibration, holdout }).model;
  mkdirSync(dirname(cached), { recursive: true });
  writeFileSync(cached, writeFlm(student));
  return { student, teacher };
}

function vgg(steps: number, warmup: number): number {
  const { student, teacher } = vggStudent();
  const batch = 64;
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), batch * (warmup + steps));
  let t0 = 0, t1 = 0;
  finetune(student, teacher, train, undefined, {
    epochs: 1, batch, evaluateBefore: false,
    onProgress: (p) => {
      if (p.phase !== 'finetune') return;
      if (p.step === warmup - 1) t0 = performance.now();
      if (p.step === warmup + steps - 1) t1 = performance.now();
    },
  });
  return (t1 - t0) / steps;
}

const backend = await initKernels();
const rows: Array<Record<string, unknown>> = [];
for (const k of KERNELS) {
  setTrainKernels(k);
  const steps = Number(arg('--steps', CASE === 'vgg' ? '3' : '40'));
  const warmup = Number(arg('--warmup', CASE === 'vgg' ? '1' : '5'));
  const load = loadavg().map((x) => Number(x.toFixed(2)));
  trainKernelStats(true);
  const ms = CASE === 'vgg' ? vgg(steps, warmup) : await lenet5(steps, warmup);
  const stats = trainKernelStats(true);
  const row = { case: CASE, kernels: trainKernels(), steps, warmup, batch: 64, msPerStep: ms, imagesPerSecond: (64 * 1000) / ms, load, ...stats };
  rows.push(row);
  say(`${CASE} on ${row.kernels}: ${ms.toFixed(1)} ms/step, ${row.imagesPerSecond.toFixed(0)} images/s (load ${load.join(' ')}; runtime kernels ${backend.name}); ` +
    `wasm calls ${stats.calls}, staging ${stats.copyMs.toFixed(0)} ms of ${stats.wasmMs.toFixed(0)} ms in wasm wrappers (all steps incl. warm-up)`);
}
if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify({ rows })}\n`);
