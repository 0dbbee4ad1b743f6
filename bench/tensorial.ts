// The five methods of DESIGN.md on the same model, ratios and fine-tuning budget: the Tucker tensor
// layer (`tucker`: TTL for dense layers, Tucker-2 for convolutions), CP convolution (`cp`: CPAC-Conv,
// truncated SVD for dense layers), the reshaped tensorial methods (rcp, rtk, rtt, rtr; issue 12),
// flexible-activation decoupling (`decouple`) and ADTN (`adtn`), with the plain `tt` beside rtt.
// One row per model × ratio × method: parameters reached, test accuracy right after the
// decomposition and after fine-tuning (distillation from the source, as `convert --finetune`), the
// gap to the dense model, and minutes.
//
//   node --import tsx bench/tensorial.ts [--models lenet5_fashion] [--ratios 10,20]
//        [--methods tucker,cp,rcp,rtk,rtt,tt,decouple,adtn] [--limit 10000] [--ft-limit 20000]
//        [--epochs 1] [--max-minutes M] [--timing] [--readme README.md | --no-readme]
//   one extra run appended to the table (a `--ranks` JSON per layer and/or the three-phase recipe):
//   node --import tsx bench/tensorial.ts --append --label L --method M (--ratio R | --ranks FILE)
//        [--phases 1|2|3] [--block-steps N] [--epochs E] [--ft-limit N] [--lr X]
//   only rewrite the table and the README from bench/results/tensorial.json: --render
//
// `--max-minutes M` bounds each fine-tuning in wall-clock time (the cosine schedule is fitted to
// the steps that fit; the row says how many ran). `--timing`: for the tensorial kinds, contract
// against rebuild per layer (runtime/cost/autotune.ts) at batch 1 and 32.
//
// Writes bench/results/tensorial.{json,md} and the README section
// <!-- bench:tensorial:start --> ... <!-- bench:tensorial:end -->.
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compressModel, sourceParams, type Method } from '../converter/compress.js';
import { fitDataToModel, limitDataset, loadDataset, type Dataset } from '../converter/data/datasets.js';
import { decoupleModel } from '../converter/decoupleModel.js';
import { evaluate } from '../converter/evaluate.js';
import { flexactParams } from '../converter/methods/decouple.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { finetune } from '../converter/train/finetune.js';
import { autotune, measureMachine, type StrategyEntry } from '../runtime/cost/autotune.js';
import type { Model } from '../runtime/ir.js';
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
const APPEND = process.argv.includes('--append');
const MODELS = arg('models', 'lenet5_fashion').split(',').filter(Boolean);
const RATIOS = (APPEND ? arg('ratio', '') : arg('ratios', '10,20')).split(',').filter(Boolean).map(Number);
const METHODS = (APPEND ? arg('method', 'rtt') : arg('methods', 'tucker,cp,rcp,rtk,rtt,tt,decouple,adtn')).split(',').filter(Boolean);
const RANKS_FILE = arg('ranks', '');
const LABEL = arg('label', '');
const PHASES = Number(arg('phases', '0'));
const BLOCK_STEPS = Number(arg('block-steps', '300'));
const LR = Number(arg('lr', '0.001'));
const LIMIT = Number(arg('limit', '10000'));
const FT_LIMIT = Number(arg('ft-limit', '20000'));
const EPOCHS = Number(arg('epochs', '1'));
const MAX_MINUTES = Number(arg('max-minutes', '0'));
const TIMING = process.argv.includes('--timing');
/** Only rewrite the markdown and the README from bench/results/tensorial.json (no run). */
const RENDER = process.argv.includes('--render');
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const log = (s: string) => process.stderr.write(`${s}\n`);
const pct = (x: number | undefined) => (x === undefined ? '–' : `${(100 * x).toFixed(2)}%`);

interface Row {
  model: string;
  /** Target ratio, or 0 for a run sized by --ranks. */
  ratio: number;
  method: string;
  label?: string;
  command: string;
  ok: boolean;
  error?: string;
  sourceParams?: number;
  params?: number;
  achievedRatio?: number;
  kinds?: string;
  before?: number;
  afterBlockwise?: number;
  after?: number;
  dense?: number;
  reference?: number;
  testImages?: number;
  ftImages?: number;
  epochs?: number;
  phases?: number;
  steps?: number;
  plannedSteps?: number;
  convertSeconds?: number;
  finetuneSeconds?: number;
  minutes?: number;
  load?: number[];
  lr?: number;
}

const TENSORIAL = new Set(['rcp', 'rtk', 'rtt', 'rtr']);

/** The .acc file beside a fixture (the accuracy PyTorch measured at export), if any. */
function referenceAccuracy(path: string): number | undefined {
  const acc = path.replace(/\.onnx$/, '.acc');
  return existsSync(acc) ? Number(readFileSync(acc, 'utf8').trim()) : undefined;
}

/**
 * `decouple` at ratio R: every dense → activation → dense pair becomes one flexact layer with as
 * many neurons as a 1/R share of the pair's parameters buys, then the remaining layers (the
 * convolutions) are brought to the same whole-model budget by Tucker-2 (`--method tucker`).
 */
function decoupleAt(source: Model, ratio: number, train: Dataset): { model: Model; kinds: string } {
  const total = sourceParams(source);
  const fit = fitDataToModel(limitDataset(train, 1256), source).data;
  const per = fit.shape.reduce((a, b) => a * b, 1);
  const samples = { shape: [1000, ...fit.shape], data: fit.images.subarray(0, 1000 * per) };
  const holdout = { shape: [fit.count - 1000, ...fit.shape], data: fit.images.subarray(1000 * per) };
  // Size r from the first pair the method would take: dense [h, in] -> act -> dense [out, h].
  const dense = source.graph.nodes.filter((n) => n.op === 'dense');
  const [first, second] = [dense[0]!, dense[1]!];
  const w1 = source.tensors.get(first.weights['weight']!)!.shape;
  const w2 = source.tensors.get(second.weights['weight']!)!.shape;
  const pairParams = w1[0]! * w1[1]! + w1[0]! + w2[0]! * w2[1]! + w2[0]!;
  let r = 1;
  while (flexactParams(w1[1]!, w2[0]!, r + 1, 3) <= pairParams / ratio) r++;
  const { model: dec } = decoupleModel(source, { neurons: r, samples, holdout, data: 'calibration', log: () => {} });
  const rest = sourceParams(dec);
  const model = rest * ratio > total * 1.001
    ? compressModel(dec, { method: 'tucker', ratio: (rest * ratio) / total, log: () => {}, check: false }).model
    : dec;
  return { model, kinds: `flexact r=${r}` };
}

async function main(): Promise<void> {
  const load0 = loadavg();
  const started = `Measured ${new Date().toISOString()} on ${cpus().length} cores, load average at the start ${load0.map((x) => x.toFixed(2)).join(' ')}.`;
  const backend = await initKernels();
  const machine = TIMING ? measureMachine(backend) : undefined;
  const timing: Array<StrategyEntry & { model: string; ratio: number; method: string }> = [];
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), FT_LIMIT);
  const test = limitDataset(loadDataset('fashion-mnist', 'test'), LIMIT);
  const previous = (APPEND || RENDER) && existsSync(join(RESULTS, 'tensorial.json'))
    ? (JSON.parse(readFileSync(join(RESULTS, 'tensorial.json'), 'utf8')) as { rows: Row[]; header?: string; timing?: typeof timing })
    : undefined;
  const rows: Row[] = previous ? previous.rows.filter((r) => !(LABEL && r.label === LABEL)) : [];
  if (previous?.timing) timing.push(...previous.timing);
  const header = previous?.header ?? started;
  const command = `node --import tsx bench/tensorial.ts ${process.argv.slice(2).join(' ')}`.trim();
  const ranks = RANKS_FILE ? (JSON.parse(readFileSync(RANKS_FILE, 'utf8')) as Record<string, unknown>) : undefined;
  const sizes = ranks ? [0] : RATIOS;
  for (const name of RENDER ? [] : MODELS) {
    const path = join(FIXTURES, `${name}.onnx`);
    if (!existsSync(path)) {
      log(`${name}: ${path} missing, skipped`);
      continue;
    }
    const source = importOnnxFile(path);
    const dense = evaluate(Session.create(source), test).accuracy;
    const reference = referenceAccuracy(path);
    log(`${name}: dense ${pct(dense)} on ${test.count} test images (.acc ${pct(reference)})`);
    for (const ratio of sizes) {
      for (const method of METHODS) {
        const row: Row = { model: name, ratio, method, command, ok: false, dense, reference, testImages: test.count, ftImages: train.count, epochs: EPOCHS, phases: PHASES || undefined, load: loadavg(), lr: LR };
        if (LABEL) row.label = LABEL;
        try {
          const t0 = performance.now();
          let model: Model;
          if (method === 'decouple') {
            const d = decoupleAt(source, ratio, train);
            model = d.model;
          } else {
            model = compressModel(source, { method: method as Method, ...(ranks ? { ranks } : { ratio }), log: () => {}, check: false }).model;
          }
          row.convertSeconds = (performance.now() - t0) / 1000;
          row.sourceParams = sourceParams(source);
          row.params = sourceParams(model);
          row.achievedRatio = row.sourceParams / row.params;
          row.kinds = model.graph.nodes.filter((n) => Object.keys(n.weights).length > 0).map((n) => n.op).join(', ');
          if (TIMING && TENSORIAL.has(method) && ratio === sizes[0]) {
            for (const e of autotune(model, { batches: [1, 32], backend, machine: machine! }).entries) timing.push({ ...e, model: name, ratio, method });
          }
          log(`${name} ${ratio || 'ranks'} ${method}: ${row.params} params (${row.achievedRatio.toFixed(1)}x) in ${row.convertSeconds.toFixed(0)} s; fine-tuning`);
          const t1 = performance.now();
          let last = 0;
          const r = finetune(model, source, train, test, {
            epochs: EPOCHS, lr: LR, log: () => {},
            ...(PHASES >= 2 ? { blockwise: true, blockSteps: BLOCK_STEPS } : {}),
            ...(PHASES === 2 ? { epochs: 0 } : {}),
            ...(MAX_MINUTES > 0 ? { maxSeconds: MAX_MINUTES * 60 } : {}),
            onProgress: (p) => {
              if (performance.now() - last > 30000) {
                last = performance.now();
                log(`  ${p.phase} epoch ${p.epoch + 1}/${p.epochs} step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)}`);
              }
            },
          });
          row.finetuneSeconds = (performance.now() - t1) / 1000;
          row.minutes = (row.convertSeconds + row.finetuneSeconds) / 60;
          row.before = r.before!.accuracy;
          row.afterBlockwise = r.afterBlockwise?.accuracy;
          row.after = r.after!.accuracy;
          row.steps = r.steps;
          row.plannedSteps = r.plannedSteps;
          row.ok = true;
          log(`${name} ${ratio || 'ranks'} ${method}: ${pct(row.before)} -> ${pct(row.after)} (${row.kinds}; ${row.params} params, ${row.achievedRatio.toFixed(1)}x; ${row.minutes.toFixed(1)} min)`);
        } catch (e) {
          row.error = (e as Error).message.split('\n')[0];
          log(`${name} ${ratio} ${method}: failed: ${row.error}`);
        }
        rows.push(row);
        // Written after every method: a stopped bench keeps what it finished.
        write(false);
      }
    }
  }
  write(true);

  function write(done: boolean): void {
    const gap = (r: Row, to: number | undefined) => (to === undefined || r.after === undefined ? '–' : (100 * (to - r.after)).toFixed(2));
    const lrOf = (r: Row) => r.lr ?? Number(/--lr (\S+)/.exec(r.command)?.[1] ?? '0.001');
    const budget = (r: Row) => `lr ${lrOf(r)}, ${r.phases === 3 ? `3 phases (${BLOCK_STEPS} block steps), ` : ''}${r.epochs}×${r.ftImages}${r.steps !== undefined && r.plannedSteps !== undefined && r.steps < r.plannedSteps ? ` (${r.steps}/${r.plannedSteps} steps)` : ''}`;
    const commands = [...new Set(rows.map((r) => r.command))];
    const lines = [
      header,
      '',
      'The five methods of DESIGN.md on LeNet-5 (`lenet5_fashion.onnx`) at equal whole-model compression: `tucker` (TTL for the dense layers, Tucker-2 for the convolutions), `cp` (CPAC-Conv, truncated SVD for the dense layers), the reshaped tensorial `rcp` / `rtk` / `rtt`, `decouple` (each dense → relu → dense pair as one flexible-activation layer with the neurons a 1/R share buys, the convolutions then Tucker-2 to the same whole-model budget) and `adtn` (dense layers; convolutions Tucker-2), with the plain `tt` (TT-matrix dense layers, Tucker-2 convolutions) beside rtt.',
      `Test accuracy on the first N Fashion-MNIST test images (the column "test") right after \`compressModel\` (\`convert --method M --ratio R\`, or \`--ranks\`) and after fine-tuning by distillation from the source (\`finetune\`, as \`convert --finetune\`: Adam cosine from the budget column\'s lr, batch 64, T 4, α 0.7; the budget column: epochs × training images). Gap: points under the dense model on the same test images (under the fixture's \`.acc\` in the last column). Minutes: decomposition + fine-tuning, on a shared 2-core machine (load average in tensorial.json).`,
      '',
      '| model | ratio | method | layers | params | reached | after convert | after fine-tuning | gap to dense | gap to .acc | test | budget | minutes |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map((r) => {
        const what = r.label ? `${r.method} (${r.label})` : r.method;
        const ratio = r.ratio ? `${r.ratio}×` : 'ranks';
        return r.ok
          ? `| ${r.model} | ${ratio} | ${what} | ${r.kinds} | ${r.params} | ${r.achievedRatio?.toFixed(1)}× | ${pct(r.before)} | ${pct(r.after)} | ${gap(r, r.dense)} | ${gap(r, r.reference)} | ${r.testImages} | ${budget(r)} | ${r.minutes?.toFixed(1)} |`
          : `| ${r.model} | ${ratio} | ${what} | failed: ${r.error} | | | | | | | | | |`;
      }),
      '',
      `Dense: ${[...new Set(rows.map((r) => `${r.model} ${pct(r.dense)} on the first ${r.testImages} test images (.acc ${pct(r.reference)})`))].join('; ')}.`,
      '',
      'Made by:',
      '',
      ...commands.map((c) => `    ${c}`),
    ];
    if (timing.length > 0) {
      lines.push(
        '',
        'Contract (the input through the factors, never forming W) or rebuild (row tiles of W, then the GEMM / conv), per layer: the cost model\'s choice, then both timed (median µs).',
        '',
        '| model | method | layer | kind | batch | model picks | contract µs | rebuild µs | faster | agree |',
        '|---|---|---|---|---|---|---|---|---|---|',
        ...timing.map((e) => `| ${e.model} | ${e.method} | ${e.node} | ${e.op} | ${e.batch} | ${e.use} | ${e.measured_us.contract.toFixed(0)} | ${e.measured_us.rebuild.toFixed(0)} | ${e.measured_best} | ${e.agree ? 'yes' : 'no'} |`),
      );
    }
    if (!done && !RENDER) lines.push('', `(run in progress: ${rows.length} rows so far.)`);
    writeBenchResults(RESULTS, 'tensorial', { header, backend: backend.name, done, rows, timing }, lines.join('\n'), README);
  }
}

await main();
