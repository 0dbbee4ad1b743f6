// Compression benchmark: every fixture x method x ratio, post-training only (no fine-tuning).
// For each: convert time, parameters, .flm bytes, and top-1 accuracy on the Fashion-MNIST test set.
//
//   node --import tsx bench/compression.ts [--limit N] [--jobs 2] [--fixtures DIR]
//
// Writes bench/results/compression.json, bench/results/compression.md, bench/results/compression.svg
// and the README table between the bench:compression markers.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compressModel, type Method } from '../converter/compress.js';
import { loadDataset, limitDataset } from '../converter/data/datasets.js';
import { evaluate } from '../converter/evaluate.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { writeFlmFile } from '../converter/writer.js';
import { readFlmFile } from '../runtime/format/reader.js';
import { Session } from '../runtime/session.js';
import { initKernels } from '../runtime/kernels/backend.js';
import { accuracyPlot } from './plot.js';
import { replaceReadmeSection } from './readme.js';
import { FIXTURES as FIXTURE_DIR } from './lib/fixtures.js';
import { arg, numberArg } from './lib/args.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'results');
const FIXTURES = ['lenet5_fashion', 'mlp_fashion'];
const METHODS: Method[] = ['svd', 'tucker', 'cp', 'tt', 'tr', 'auto'];
const RATIOS = [2, 5, 10, 20];

interface Row {
  fixture: string;
  method: string;
  targetRatio: number;
  ok: boolean;
  error?: string;
  params?: number;
  sourceParams?: number;
  ratio?: number;
  bytes?: number;
  bytesRatio?: number;
  accuracy?: number;
  convertSeconds?: number;
  kinds?: string;
}


async function runJob(fixtureDir: string, fixture: string, method: Method, ratio: number, limit: number): Promise<Row> {
  const src = join(fixtureDir, `${fixture}.onnx`);
  const dense = importOnnxFile(src);
  const base: Row = { fixture, method, targetRatio: ratio, ok: false };
  try {
    // Calibration: 256 training images (never the test images the accuracy is measured on).
    const train = limitDataset(loadDataset('fashion-mnist', 'train'), 256);
    const calibration = { shape: [train.count, ...train.shape], data: train.images };
    const t1 = performance.now();
    const { model, report } = compressModel(dense, { method, ratio, calibration });
    const convertSeconds = (performance.now() - t1) / 1000;
    const path = join(ROOT, 'bench', 'out', `${fixture}_${method}_r${ratio}.flm`);
    await writeFlmFile(model, path);
    const bytes = statSync(path).size;
    const test = limitDataset(loadDataset('fashion-mnist', 'test'), limit);
    const acc = evaluate(Session.create(await readFlmFile(path)), test, { batch: 250 }).accuracy;
    const kinds = [...new Set(report.layers.filter((l) => l.op !== l.sourceOp).map((l) => l.op))].join('+') || 'dense';
    return {
      ...base, ok: true, params: report.params, sourceParams: report.sourceParams, ratio: report.ratio, bytes,
      bytesRatio: (report.sourceParams * 4) / bytes, accuracy: acc, convertSeconds, kinds,
    };
  } catch (e) {
    return { ...base, error: (e as Error).message.split('\n')[0] };
  }
}

async function worker(index: number, count: number, limit: number, fixtureDir: string): Promise<void> {
  const jobs = FIXTURES.flatMap((f) => METHODS.flatMap((m) => RATIOS.map((r) => ({ f, m, r }))));
  const rows: Row[] = [];
  for (const [i, j] of jobs.entries()) {
    if (i % count !== index) continue;
    const t = performance.now();
    rows.push(await runJob(fixtureDir, j.f, j.m, j.r, limit));
    process.stderr.write(`[worker ${index}] ${j.f} ${j.m} x${j.r}: ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
  }
  writeFileSync(join(ROOT, 'bench', 'out', `compression-part-${index}.json`), JSON.stringify(rows));
}

function markdown(rows: Row[], dense: Record<string, { params: number; bytes: number; accuracy: number }>, limit: number): string {
  const lines = [
    `Post-training decomposition, no fine-tuning, ranks chosen by \`--ratio\` with 256 training images as calibration. ` +
      `Accuracy on ${limit} Fashion-MNIST test images in the factorlite runtime. ` +
      'Bytes: the f32 `.flm` file; ratios are against the dense f32 parameters. Convert time includes the rank search.',
    '',
    '| fixture | method | target | layer kinds | params | param ratio | bytes | byte ratio | accuracy | convert s |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const f of FIXTURES) {
    const d = dense[f]!;
    lines.push(`| ${f} | dense | 1 | dense | ${d.params} | 1.00 | ${d.bytes} | 1.00 | ${(100 * d.accuracy).toFixed(2)}% | - |`);
    for (const r of rows.filter((x) => x.fixture === f)) {
      if (!r.ok) {
        lines.push(`| ${f} | ${r.method} | ${r.targetRatio} | - | - | - | - | - | failed: ${r.error} | - |`);
        continue;
      }
      lines.push(
        `| ${f} | ${r.method} | ${r.targetRatio} | ${r.kinds} | ${r.params} | ${r.ratio!.toFixed(2)} | ${r.bytes} | ` +
          `${r.bytesRatio!.toFixed(2)} | ${(100 * r.accuracy!).toFixed(2)}% | ${r.convertSeconds!.toFixed(1)} |`,
      );
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  await initKernels((line) => process.stderr.write(`${line}\n`));
  const limit = numberArg('limit', '10000');
  const fixtureDir = arg('fixtures', FIXTURE_DIR);
  mkdirSync(join(ROOT, 'bench', 'out'), { recursive: true });
  const w = process.argv.indexOf('--worker');
  if (w >= 0) {
    const [i, n] = process.argv[w + 1]!.split('/').map(Number) as [number, number];
    await worker(i, n, limit, fixtureDir);
    return;
  }
  for (const f of FIXTURES) {
    if (!existsSync(join(fixtureDir, `${f}.onnx`))) throw new Error(`fixture ${f}.onnx not found in ${fixtureDir} (use --fixtures DIR)`);
  }
  const jobs = numberArg('jobs', '2');
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: jobs }, (_, i) => new Promise<void>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', `${i}/${jobs}`, '--limit', String(limit), '--fixtures', fixtureDir], { stdio: ['ignore', 'inherit', 'inherit'] });
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker ${i} exited with ${code}`))));
    })),
  );
  const rows: Row[] = [];
  for (let i = 0; i < jobs; i++) rows.push(...(JSON.parse(readFileSync(join(ROOT, 'bench', 'out', `compression-part-${i}.json`), 'utf8')) as Row[]));
  const order = (r: Row) => FIXTURES.indexOf(r.fixture) * 1000 + METHODS.indexOf(r.method as Method) * 100 + r.targetRatio;
  rows.sort((a, b) => order(a) - order(b));
  const test = limitDataset(loadDataset('fashion-mnist', 'test'), limit);
  const dense: Record<string, { params: number; bytes: number; accuracy: number }> = {};
  for (const f of FIXTURES) {
    const m = importOnnxFile(join(fixtureDir, `${f}.onnx`));
    const params = Number(m.metadata['source.params']);
    dense[f] = { params, bytes: params * 4, accuracy: evaluate(Session.create(m), test, { batch: 250 }).accuracy };
  }
  mkdirSync(OUT, { recursive: true });
  const result = { date: new Date().toISOString(), limit, seconds: (performance.now() - t0) / 1000, dense, rows };
  writeFileSync(join(OUT, 'compression.json'), `${JSON.stringify(result, null, 2)}\n`);
  const md = markdown(rows, dense, limit);
  writeFileSync(join(OUT, 'compression.md'), `${md}\n`);
  writeFileSync(join(OUT, 'compression.svg'), accuracyPlot(rows, dense, FIXTURES, METHODS));
  replaceReadmeSection(join(ROOT, 'README.md'), 'bench:compression', `${md}\n\n![accuracy against compression](bench/results/compression.svg)`);
  process.stderr.write(`compression bench: ${rows.length} runs in ${result.seconds.toFixed(0)} s; wrote ${OUT}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench/compression: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
