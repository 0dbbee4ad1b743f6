// The reshaped tensorial methods (rcp, rtk, rtt, rtr; issue 12) against the plain low-rank methods
// (cp, tucker, tt) at equal compression, on the LeNet-5 and FC-2 fixtures: test accuracy right
// after `convert --ratio R` and after the same fine-tuning budget (distillation from the source,
// as `convert --finetune`), with the kinds each method wrote and the ratio reached.
//
//   node --import tsx bench/tensorial.ts [--models lenet5_fashion,mlp_fashion] [--ratios 10,20]
//        [--methods rcp,rtk,rtt,cp,tucker,tt] [--limit 2000] [--ft-limit 4000] [--epochs 1]
//        [--readme README.md | --no-readme]
//
// For the tensorial kinds, contract against rebuild per layer (runtime/cost/autotune.ts: the cost
// model's choice, then both products timed) at batch 1 and 32 on this session's kernels.
//
// Writes bench/results/tensorial.{json,md} and the README section
// <!-- bench:tensorial:start --> ... <!-- bench:tensorial:end -->.
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compressModel, type Method } from '../converter/compress.js';
import { limitDataset, loadDataset } from '../converter/data/datasets.js';
import { evaluate } from '../converter/evaluate.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { finetune } from '../converter/train/finetune.js';
import { autotune, measureMachine, type StrategyEntry } from '../runtime/cost/autotune.js';
import { initKernels } from '../runtime/kernels/backend.js';
import { Session } from '../runtime/session.js';
import { FIXTURES } from './lib/fixtures.js';
import { writeBenchResults } from './readme.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const RESULTS = join(ROOT, 'bench', 'results');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const MODELS = arg('models', 'lenet5_fashion,mlp_fashion').split(',').filter(Boolean);
const RATIOS = arg('ratios', '10,20').split(',').filter(Boolean).map(Number);
const METHODS = arg('methods', 'rcp,rtk,rtt,cp,tucker,tt').split(',').filter(Boolean) as Method[];
const LIMIT = Number(arg('limit', '2000'));
const FT_LIMIT = Number(arg('ft-limit', '4000'));
const EPOCHS = Number(arg('epochs', '1'));
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const log = (s: string) => process.stderr.write(`${s}\n`);
const pct = (x: number | undefined) => (x === undefined ? '–' : `${(100 * x).toFixed(2)}%`);

interface Row {
  model: string;
  ratio: number;
  method: string;
  ok: boolean;
  error?: string;
  achievedRatio?: number;
  kinds?: string;
  before?: number;
  after?: number;
  convertSeconds?: number;
  finetuneSeconds?: number;
}

const TENSORIAL = new Set(['rcp', 'rtk', 'rtt', 'rtr']);

async function main(): Promise<void> {
  const started = `Measured ${new Date().toISOString()} on ${cpus().length} cores, load average at the start ${loadavg().map((x) => x.toFixed(2)).join(' ')}.`;
  const backend = await initKernels();
  const machine = measureMachine(backend);
  const timing: Array<StrategyEntry & { model: string; ratio: number; method: string }> = [];
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), FT_LIMIT);
  const test = limitDataset(loadDataset('fashion-mnist', 'test'), LIMIT);
  const rows: Row[] = [];
  const dense: Record<string, number> = {};
  for (const name of MODELS) {
    const path = join(FIXTURES, `${name}.onnx`);
    if (!existsSync(path)) {
      log(`${name}: ${path} missing, skipped`);
      continue;
    }
    const source = importOnnxFile(path);
    dense[name] = evaluate(Session.create(source), test).accuracy;
    log(`${name}: dense ${pct(dense[name])} on ${test.count} test images`);
    for (const ratio of RATIOS) {
      for (const method of METHODS) {
        const row: Row = { model: name, ratio, method, ok: false };
        try {
          const t0 = performance.now();
          const { model, report } = compressModel(source, { method, ratio, log: () => {}, check: false });
          row.convertSeconds = (performance.now() - t0) / 1000;
          row.achievedRatio = report.ratio;
          row.kinds = [...new Set(model.graph.nodes.filter((n) => Object.keys(n.weights).length > 0).map((n) => n.op))].join(', ');
          if (TENSORIAL.has(method) && ratio === RATIOS[0]) {
            for (const e of autotune(model, { batches: [1, 32], backend, machine }).entries) timing.push({ ...e, model: name, ratio, method });
          }
          const t1 = performance.now();
          const r = finetune(model, source, train, test, { epochs: EPOCHS, log: () => {} });
          row.finetuneSeconds = (performance.now() - t1) / 1000;
          row.before = r.before!.accuracy;
          row.after = r.after!.accuracy;
          row.ok = true;
          log(`${name} ${ratio}x ${method}: ${pct(row.before)} -> ${pct(row.after)} (${row.kinds}; ratio ${row.achievedRatio?.toFixed(1)}; ${row.convertSeconds.toFixed(0)} s + ${row.finetuneSeconds.toFixed(0)} s)`);
        } catch (e) {
          row.error = (e as Error).message.split('\n')[0];
          log(`${name} ${ratio}x ${method}: failed: ${row.error}`);
        }
        rows.push(row);
        // Written after every method: a stopped bench keeps what it finished.
        write(false);
      }
    }
  }
  write(true);

  function write(done: boolean): void {
    const lines = [
      started,
      '',
      `Reshaped tensorial methods against plain low-rank ones at equal compression (\`node --import tsx bench/tensorial.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}\`).`,
      `Accuracy on the first ${LIMIT} Fashion-MNIST test images, right after \`convert --method M --ratio R\` and after ${EPOCHS} epoch(s) of distillation fine-tuning on the first ${FT_LIMIT} training images (the same budget for every method).`,
      '`cp` of a dense layer is its SVD, `tt` of a convolution is Tucker-2 (the families of `--method`); rcp/rtk/rtt/rtr take both shapes.',
      '',
      '| model | ratio | method | kinds | reached | after convert | after fine-tuning | dense |',
      '|---|---|---|---|---|---|---|---|',
      ...rows.map((r) => (r.ok
        ? `| ${r.model} | ${r.ratio}× | ${r.method} | ${r.kinds} | ${r.achievedRatio?.toFixed(1)}× | ${pct(r.before)} | ${pct(r.after)} | ${pct(dense[r.model])} |`
        : `| ${r.model} | ${r.ratio}× | ${r.method} | failed: ${r.error} | | | | ${pct(dense[r.model])} |`)),
      '',
      `Contract (the input through the factors, never forming W) or rebuild (row tiles of W, then the GEMM / conv), per layer, at ${RATIOS[0]}×, on the ${backend.name} kernels: the cost model's choice, then both timed (median µs).`,
      '',
      '| model | method | layer | kind | batch | model picks | contract µs | rebuild µs | faster | agree |',
      '|---|---|---|---|---|---|---|---|---|---|',
      ...timing.map((e) => `| ${e.model} | ${e.method} | ${e.node} | ${e.op} | ${e.batch} | ${e.use} | ${e.measured_us.contract.toFixed(0)} | ${e.measured_us.rebuild.toFixed(0)} | ${e.measured_best} | ${e.agree ? 'yes' : 'no'} |`),
    ];
    if (!done) lines.push('', `(${rows.length} of ${MODELS.length * RATIOS.length * METHODS.length} rows so far.)`);
    writeBenchResults(RESULTS, 'tensorial', { command: process.argv.slice(2), limit: LIMIT, ftLimit: FT_LIMIT, epochs: EPOCHS, backend: backend.name, done, dense, rows, timing }, lines.join('\n'), README);
  }
}

await main();
