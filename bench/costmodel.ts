// Cost model against measurement: for LeNet-5 and FC-2 compressed at ratio 10 by every method,
// the autotune (runtime/cost/autotune.ts) times both products of each factor layer (contracting
// through the factors, and rebuilding the weight tile by tile then multiplying) at batch 1 and 32,
// next to the cost model's prediction, and counts how often the model picks the faster one.
//
//   node --import tsx bench/costmodel.ts [--methods auto,svd,cp,tucker,tt,tr] [--batch 1,32] [--min-ms 60]
//                                        [--readme README.md | --no-readme]
//
// Uses bench/out/<model>_<method>_r10.flm when bench/compression.ts made it, else compresses the
// fixture here (slow for cp and tr). Writes bench/results/costmodel.{json,md} and the README
// section <!-- bench:costmodel:start --> ... <!-- bench:costmodel:end -->.
import { existsSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../cli/modelFile.js';
import { compressModel, type Method } from '../converter/compress.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { writeFlmFile } from '../converter/writer.js';
import { autotune, measureMachine, type StrategyEntry } from '../runtime/cost/autotune.js';
import type { Machine } from '../runtime/cost/model.js';
import { selectBackend } from '../runtime/kernels/backend.js';
import type { Model } from '../runtime/ir.js';
import { writeBenchResults } from './readme.js';
import { FIXTURES } from './lib/fixtures.js';
import { arg, numberArg } from './lib/args.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'out');
const RESULTS = join(ROOT, 'bench', 'results');

const METHODS = arg('methods', 'auto,svd,cp,tucker,tt,tr').split(',') as Method[];
const BATCHES = arg('batch', '1,32').split(',').map(Number);
const MIN_MS = numberArg('min-ms', '60');
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const MODELS = [
  { name: 'lenet5_fashion', label: 'LeNet-5' },
  { name: 'mlp_fashion', label: 'FC-2' },
];
const RATIO = 10;
const log = (s: string) => process.stderr.write(`${s}\n`);

async function modelFor(name: string, method: Method): Promise<{ model: Model; path: string; made: boolean }> {
  const path = join(OUT, `${name}_${method}_r${RATIO}.flm`);
  if (existsSync(path)) return { model: loadModel(path).model, path, made: false };
  log(`compressing ${name} with ${method} at ratio ${RATIO} (no ${path} yet)`);
  const dense = importOnnxFile(join(FIXTURES, `${name}.onnx`));
  const { model } = compressModel(dense, { method, ratio: RATIO });
  mkdirSync(OUT, { recursive: true });
  await writeFlmFile(model, path);
  return { model, path, made: true };
}

interface Row extends StrategyEntry {
  model: string;
  method: Method;
}

const us = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

function markdown(rows: Row[], machine: Machine, command: string, backend: string): string {
  const agree = rows.filter((r) => r.agree).length;
  const costly = rows.filter((r) => !r.agree);
  // Time lost by following the model where it picked the slower product.
  const lost = costly.map((r) => (r.use === 'rebuild' ? r.measured_us.rebuild / r.measured_us.contract : r.measured_us.contract / r.measured_us.rebuild));
  const lines: string[] = [];
  lines.push(
    `${cpus()[0]?.model.trim() ?? 'cpu'} (${cpus().length} cores), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, kernels ${backend}. `
    + `Made by \`${command}\`. Machine constants measured first: GEMM ${machine.gemmGflopsLarge.toFixed(1)} GFLOP/s (>= 4 rows), `
    + `${machine.gemmGflopsSmall.toFixed(1)} GFLOP/s (1-3 rows), TypeScript loops ${machine.scalarGflops.toFixed(2)} GFLOP/s, `
    + `copies ${machine.bandwidthGBs.toFixed(0)} GB/s, im2col ${machine.gatherGBs.toFixed(1)} GB/s, ${machine.callUs.toFixed(2)} µs per kernel call. `
    + `"contract" runs the layer kind as the runtime does; "rebuild" rebuilds the weight ${'≤'} 64 KiB of rows at a time from the factors (runtime/exec/) and multiplies each tile. `
    + `Times are medians of single calls (µs).`,
  );
  lines.push('');
  lines.push(`**The model picked the faster product in ${agree} of ${rows.length} cases (${((100 * agree) / rows.length).toFixed(0)}%).**`
    + (costly.length ? ` Where it did not, following it cost ${lost.map((x) => `${x.toFixed(2)}×`).join(', ')} the faster product's time.` : ''));
  lines.push('');
  lines.push('| model | method | layer | op | batch | tile rows | predicted contract | predicted rebuild | model picks | measured contract | measured rebuild | faster | agree |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    lines.push(`| ${r.model} | ${r.method} | ${r.node} | ${r.op} | ${r.batch} | ${r.rows} | ${us(r.predicted_us.contract)} | ${us(r.predicted_us.rebuild)} | ${r.use} | ${us(r.measured_us.contract)} | ${us(r.measured_us.rebuild)} | ${r.measured_best} | ${r.agree ? '✓' : '✗'} |`);
  }
  const orders = rows.filter((r) => r.best_order && r.batch === BATCHES[0]);
  if (orders.length) {
    lines.push('');
    lines.push(`Best modelled contraction order of the input through the factors (batch ${BATCHES[0]}), searched over every left-deep order; the runtime's layers contract cores 0..d-1 (TT/TR) and input factors, core, output factors (TTL):`);
    lines.push('');
    for (const r of orders) {
      const same = r.predicted_us.layer_order !== undefined && r.predicted_us.layer_order <= r.predicted_us.best_order! * (1 + 1e-9);
      lines.push(`- ${r.model} ${r.method} ${r.node} (${r.op}): ${r.best_order!.join(' → ')}, ${us(r.predicted_us.best_order!)} µs predicted`
        + (same ? ' (the layer\'s own order)' : `; the layer's order: ${us(r.predicted_us.layer_order!)} µs under the same model`));
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { backend, tried } = await selectBackend();
  log(`kernels: ${backend.name}${tried.length > 1 ? ` (${tried.filter((t) => t.error).map((t) => `${t.name}: ${t.error}`).join('; ')})` : ''}`);
  const machine = measureMachine(backend, MIN_MS);
  log(`machine: ${JSON.stringify(machine)}`);
  const rows: Row[] = [];
  const models: Array<{ model: string; method: Method; flm: string; compressedHere: boolean }> = [];
  for (const m of MODELS) {
    for (const method of METHODS) {
      const { model, path, made } = await modelFor(m.name, method);
      models.push({ model: m.label, method, flm: path.slice(ROOT.length + 1), compressedHere: made });
      log(`${m.label} ${method}: autotune at batch ${BATCHES.join(', ')}`);
      const r = autotune(model, { batches: BATCHES, backend, machine, minMs: MIN_MS, log: (s) => log(`  ${s}`) });
      for (const e of r.entries) rows.push({ model: m.label, method, ...e });
    }
  }
  const flags = [
    METHODS.join(',') !== 'auto,svd,cp,tucker,tt,tr' ? ` --methods ${METHODS.join(',')}` : '',
    BATCHES.join(',') !== '1,32' ? ` --batch ${BATCHES.join(',')}` : '',
    MIN_MS !== 60 ? ` --min-ms ${MIN_MS}` : '',
  ].join('');
  const command = `node --import tsx bench/costmodel.ts${flags}`;
  const agree = rows.filter((r) => r.agree).length;
  const md = markdown(rows, machine, command, backend.name);
  log(`agreement ${agree}/${rows.length}`);
  writeBenchResults(RESULTS, 'costmodel', {
    command, date: new Date().toISOString(), backend: backend.name, machine, ratio: RATIO, batches: BATCHES,
    agreement: { agree, cases: rows.length, rate: agree / rows.length }, models, entries: rows,
  }, md, README);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
