// An independent check of a bench's accuracy figures: each .flm is exported to ONNX by
// `factorlite export` and run by onnxruntime-node (not the factorlite runtime) on the Fashion-MNIST
// test set; prints one line per model and, with --json, one JSON object on stdout.
//
//   node --import tsx bench/ortAccuracy.ts bench/out/a.flm [bench/out/b.flm ...] [--limit N] [--json]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { labelledFor, limitDataset, loadData } from '../converter/data/datasets.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const argv = process.argv.slice(2);
const json = argv.includes('--json');
const li = argv.indexOf('--limit');
const limit = li >= 0 ? Number(argv[li + 1]) : undefined;
const files = argv.filter((a, i) => !a.startsWith('--') && !(li >= 0 && i === li + 1));
if (files.length === 0) throw new Error('usage: bench/ortAccuracy.ts model.flm [...] [--limit N] [--json]');

const test = labelledFor(limitDataset(loadData('fashion-mnist', 'test', {}), limit), [1, 28, 28], [10], 'train');
const per = test.shape.reduce((a, b) => a * b, 1);
const dir = mkdtempSync(join(tmpdir(), 'factorlite-ort-'));
const results: Array<{ model: string; accuracy: number; samples: number }> = [];
try {
  for (const file of files) {
    const onnx = join(dir, `${basename(file, '.flm')}.onnx`);
    const ex = spawnSync(process.execPath, [join(ROOT, 'bin', 'factorlite.js'), 'export', file, '-o', onnx, '--json'], { encoding: 'utf8' });
    if (ex.status !== 0) throw new Error(`export ${file}: ${ex.stderr.trim()}`);
    const s = await ort.InferenceSession.create(onnx);
    let ok = 0;
    for (let i = 0; i < test.count; i += 500) {
      const b = Math.min(500, test.count - i);
      const x = test.images.slice(i * per, (i + b) * per);
      const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', x, [b, ...test.shape]) });
      const y = out[s.outputNames[0]!]!.data as Float32Array;
      const k = y.length / b;
      for (let n = 0; n < b; n++) {
        let best = 0;
        for (let c = 1; c < k; c++) if (y[n * k + c]! > y[n * k + best]!) best = c;
        if (best === test.labels[i + n]) ok++;
      }
    }
    results.push({ model: file, accuracy: ok / test.count, samples: test.count });
    if (!json) process.stdout.write(`${file}: onnxruntime top-1 ${(100 * ok / test.count).toFixed(2)}% on ${test.count} test images\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (json) process.stdout.write(`${JSON.stringify({ data: 'fashion-mnist', results })}\n`);
