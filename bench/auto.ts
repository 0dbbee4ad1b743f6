// `--method auto` against every single method at 5x, 10x and 20x, without fine-tuning, on the
// LeNet-5 and FC-2 fixtures and the VGG-style BatchNorm CNN of scripts/train_vgg_bn.py (when its
// ONNX file exists): test accuracy, top-1 agreement with the source on held-out calibration images
// (the measured check of convert), whether convert would warn, and convert time. Optionally, one
// fine-tuning epoch after auto (LeNet-5 at 20x, VGG at 10x by default) against the dense accuracy.
//
//   node --import tsx bench/auto.ts [--models lenet5_fashion,mlp_fashion,vgg_bn_fashion] [--ratios 5,10,20]
//        [--methods auto,svd,cp,tucker,tt,tr] [--limit 2000] [--finetune lenet5_fashion:20,vgg_bn_fashion:10]
//        [--ft-limit 60000] [--readme README.md | --no-readme]
//
// Calibration as `convert --calib fashion-mnist`: 256 training images for the search, the next 256
// held out for the check. Writes bench/results/auto.{json,md} and the README section
// <!-- bench:auto:start --> ... <!-- bench:auto:end -->.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compressModel, type Method } from '../converter/compress.js';
import { limitDataset, loadDataset } from '../converter/data/datasets.js';
import { evaluate } from '../converter/evaluate.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { finetune } from '../converter/train/finetune.js';
import { splitValidation } from '../cli/commands/finetune.js';
import { initKernels } from '../runtime/kernels/backend.js';
import type { Model, Tensor } from '../runtime/ir.js';
import { Session } from '../runtime/session.js';
import { writeBenchResults } from './readme.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const FIXTURES = [process.env['FACTORLITE_FIXTURES'], resolve(ROOT, '..', 'shared', 'fixtures'), resolve(ROOT, '..', '..', 'shared', 'fixtures'), '/work/shared/fixtures']
  .find((d): d is string => d !== undefined && existsSync(d)) ?? '/work/shared/fixtures';
const RESULTS = join(ROOT, 'bench', 'results');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const LIMIT = Number(arg('limit', '2000'));
const MODELS = arg('models', 'lenet5_fashion,mlp_fashion,vgg_bn_fashion').split(',').filter(Boolean);
const RATIOS = arg('ratios', '5,10,20').split(',').map(Number);
const METHODS = arg('methods', 'auto,svd,cp,tucker,tt,tr').split(',') as Method[];
const FINETUNE = arg('finetune', '').split(',').filter(Boolean).map((s) => {
  const [m, r] = s.split(':');
  return { model: m!, ratio: Number(r) };
});
const FT_LIMIT = Number(arg('ft-limit', '60000'));
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const log = (s: string) => process.stderr.write(`${s}\n`);

function modelPath(name: string): string | undefined {
  for (const p of [join(FIXTURES, `${name}.onnx`), join(ROOT, 'models', `${name}.onnx`)]) if (existsSync(p)) return p;
  return undefined;
}

interface Row {
  model: string;
  ratio: number;
  method: Method;
  ok: boolean;
  error?: string;
  accuracy?: number;
  agreement?: number | null;
  predictedAgreement?: number | null;
  warned?: boolean;
  kinds?: string;
  achievedRatio?: number;
  seconds?: number;
  searchSeconds?: number;
  chosen?: string;
}
interface FtRow {
  model: string;
  ratio: number;
  dense: number;
  before: number;
  after: number;
  bestEpoch: number | null;
  trainSamples: number;
  seconds: number;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '–' : `${(100 * x).toFixed(2)}%`);

async function main(): Promise<void> {
  await initKernels();
  const train = loadDataset('fashion-mnist', 'train');
  const test = limitDataset(loadDataset('fashion-mnist', 'test'), LIMIT);
  const per = 784;
  const calibration: Tensor = { shape: [256, 1, 28, 28], data: train.images.subarray(0, 256 * per) };
  const holdout: Tensor = { shape: [256, 1, 28, 28], data: train.images.subarray(256 * per, 512 * per) };
  const rows: Row[] = [];
  const dense: Record<string, number> = {};
  const sources: Record<string, Model> = {};
  for (const name of MODELS) {
    const path = modelPath(name);
    if (!path) {
      log(`skip ${name}: no ONNX file (fixtures or models/; run scripts/train_vgg_bn.py for the VGG model)`);
      continue;
    }
    const model = importOnnxFile(path);
    sources[name] = model;
    dense[name] = evaluate(Session.create(model), test).accuracy;
    log(`${name}: dense ${pct(dense[name])} on ${test.count} test images`);
    for (const ratio of RATIOS) {
      for (const method of METHODS) {
        const t0 = performance.now();
        try {
          const { model: out, report } = compressModel(model, { method, ratio, calibration, holdout });
          const seconds = (performance.now() - t0) / 1000;
          const accuracy = evaluate(Session.create(out), test).accuracy;
          const c = report.check!;
          rows.push({
            model: name, ratio, method, ok: true, accuracy, agreement: c.agreement, predictedAgreement: c.predictedAgreement,
            warned: c.agreement !== null && c.agreement < 0.9,
            kinds: [...new Set(report.layers.filter((l) => l.method !== 'dense').map((l) => l.op))].join('+'),
            achievedRatio: report.ratio, seconds, ...(report.search ? { searchSeconds: report.search.seconds, chosen: report.search.chosen } : {}),
          });
          log(`${name} ${ratio}x ${method}: ${pct(accuracy)} (agreement ${pct(c.agreement)}) in ${seconds.toFixed(1)} s`);
        } catch (e) {
          rows.push({ model: name, ratio, method, ok: false, error: (e as Error).message });
          log(`${name} ${ratio}x ${method}: ${(e as Error).message}`);
        }
      }
    }
  }
  const ft: FtRow[] = [];
  for (const f of FINETUNE) {
    const model = sources[f.model];
    if (!model) continue;
    const t0 = performance.now();
    const { model: out } = compressModel(model, { method: 'auto', ratio: f.ratio, calibration, holdout });
    const { train: tr, validation } = splitValidation(train, FT_LIMIT < train.count ? FT_LIMIT : undefined);
    const r = finetune(out, model, tr, test, { epochs: 1, ...(validation ? { validation } : {}), log });
    ft.push({
      model: f.model, ratio: f.ratio, dense: dense[f.model]!, before: r.before!.accuracy, after: r.after!.accuracy,
      bestEpoch: r.best?.epoch ?? null, trainSamples: tr.count, seconds: (performance.now() - t0) / 1000,
    });
    log(`${f.model} ${f.ratio}x auto + 1 epoch: ${pct(r.before!.accuracy)} -> ${pct(r.after!.accuracy)} (dense ${pct(dense[f.model])})`);
  }

  const cmd = `node --import tsx bench/auto.ts ${process.argv.slice(2).join(' ')}`.trim();
  const lines = [
    `Made by \`${cmd}\`. No fine-tuning in the first table. Accuracy on the first ${test.count} Fashion-MNIST test images in the factorlite runtime; agreement: top-1 agreement with the source on 256 held-out training images (the check \`convert\` prints); "warns": convert prints a warning (agreement below 90%).`,
    '',
    '| model | ratio | method | kinds | accuracy | dense | agreement (predicted) | warns | best single − auto | convert s |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const same = rows.filter((x) => x.model === r.model && x.ratio === r.ratio && x.method !== 'auto' && x.ok);
    const best = same.length ? Math.max(...same.map((x) => x.accuracy!)) : NaN;
    const gap = r.method === 'auto' && r.ok && Number.isFinite(best) ? `${(100 * (best - r.accuracy!)).toFixed(2)}` : '';
    lines.push(r.ok
      ? `| ${r.model} | ${r.ratio} | ${r.method}${r.chosen ? ` (kept ${r.chosen})` : ''} | ${r.kinds || '–'} | ${pct(r.accuracy)} | ${pct(dense[r.model])} | ${pct(r.agreement)} (${pct(r.predictedAgreement)}) | ${r.warned ? 'yes' : 'no'} | ${gap} | ${r.seconds!.toFixed(1)} |`
      : `| ${r.model} | ${r.ratio} | ${r.method} | – | failed: ${r.error!.slice(0, 80)} | | | | | |`);
  }
  const silent = rows.filter((r) => r.ok && r.agreement !== null && r.agreement! < 0.5 && !r.warned);
  lines.push('', `Results below 50% agreement without a warning: ${silent.length}.`);
  if (ft.length) {
    lines.push('', '| model | ratio | dense | auto, no fine-tuning | auto + 1 epoch (best checkpoint) | epoch kept | training images | seconds |', '|---|---|---|---|---|---|---|---|');
    for (const f of ft) lines.push(`| ${f.model} | ${f.ratio} | ${pct(f.dense)} | ${pct(f.before)} | ${pct(f.after)} | ${f.bestEpoch ?? '–'} | ${f.trainSamples} | ${f.seconds.toFixed(0)} |`);
  }
  writeBenchResults(RESULTS, 'auto', { command: cmd, limit: test.count, dense, rows, finetune: ft }, lines.join('\n'), README);
}

await main();
