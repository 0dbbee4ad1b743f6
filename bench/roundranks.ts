// The accuracy cost of `convert --round-ranks`: LeNet-5 and FC-2 at ratio 10 with svd, cp, tucker
// and tt; one rank search per (model, method), then the factors decomposed three times: ranks as
// chosen, rounded to multiples of 4, and of 8 (within the ratio's parameter budget). Accuracy on
// the Fashion-MNIST test set in the factorlite runtime.
//
//   node --import tsx bench/roundranks.ts [--limit 10000] [--methods svd,cp,tucker,tt] [--multiples 4,8]
//                                         [--readme README.md | --no-readme]
//
// Writes bench/results/roundranks.{json,md} and the README section
// <!-- bench:roundranks:start --> ... <!-- bench:roundranks:end -->.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyCompressionPlan, planCompression, type Method } from '../converter/compress.js';
import { limitDataset, loadDataset } from '../converter/data/datasets.js';
import { evaluate } from '../converter/evaluate.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { initKernels } from '../runtime/kernels/backend.js';
import { Session } from '../runtime/session.js';
import { writeBenchResults } from './readme.js';
import { FIXTURES } from './lib/fixtures.js';
import { arg, numberArg } from './lib/args.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const RESULTS = join(ROOT, 'bench', 'results');

const LIMIT = numberArg('limit', '10000');
const METHODS = arg('methods', 'svd,cp,tucker,tt').split(',') as Method[];
const MULTIPLES = arg('multiples', '4,8').split(',').map(Number);
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const RATIO = 10;
const MODELS = [
  { name: 'lenet5_fashion', label: 'LeNet-5' },
  { name: 'mlp_fashion', label: 'FC-2' },
];
const log = (s: string) => process.stderr.write(`${s}\n`);

interface Variant {
  roundRanks: number | null;
  layers: Array<{ name: string; op: string; ranks: number[]; chosen?: number[] }>;
  params: number;
  ratio: number;
  accuracy: number;
  samples: number;
  decomposeSeconds: number;
}
interface Row {
  model: string;
  method: Method;
  searchSeconds: number;
  variants: Variant[];
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const ranks = (v: Variant) => v.layers.filter((l) => l.ranks.length).map((l) => `${l.op} ${l.ranks.join('×')}`).join('; ') || '–';

function markdown(rows: Row[], command: string, samples: number): string {
  const lines: string[] = [];
  lines.push(`Fashion-MNIST, first ${samples} test images, ratio ${RATIO}, calibration on 256 training images; one rank search per row, then the layers decomposed as chosen and with every rank rounded to a multiple of ${MULTIPLES.join(' or ')} (rounded down where rounding up would exceed the ratio's parameter budget, never below 1). Made by \`${command}\`.`);
  lines.push('');
  const head = ['model', 'method', 'ranks as chosen', 'accuracy', ...MULTIPLES.flatMap((m) => [`ranks, multiples of ${m}`, `accuracy (${m})`, `change (${m})`, `ratio (${m})`])];
  lines.push(`| ${head.join(' | ')} |`);
  lines.push(`|${head.map(() => '---').join('|')}|`);
  for (const r of rows) {
    const base = r.variants.find((v) => v.roundRanks === null)!;
    const cells = [r.model, r.method, ranks(base), pct(base.accuracy)];
    for (const m of MULTIPLES) {
      const v = r.variants.find((x) => x.roundRanks === m)!;
      const d = 100 * (v.accuracy - base.accuracy);
      cells.push(ranks(v), pct(v.accuracy), `${d >= 0 ? '+' : ''}${d.toFixed(2)} pt`, `${v.ratio.toFixed(2)}×`);
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  const deltas = MULTIPLES.map((m) => rows.map((r) => r.variants.find((x) => x.roundRanks === m)!.accuracy - r.variants.find((x) => x.roundRanks === null)!.accuracy));
  lines.push('');
  lines.push(MULTIPLES.map((m, i) => {
    const d = deltas[i]!;
    const mean = (100 * d.reduce((a, b) => a + b, 0)) / d.length;
    return `Multiples of ${m}: mean change ${mean >= 0 ? '+' : ''}${mean.toFixed(2)} pt, worst ${(100 * Math.min(...d)).toFixed(2)} pt, best ${(100 * Math.max(...d)).toFixed(2)} pt.`;
  }).join(' '));
  return lines.join('\n');
}

async function main(): Promise<void> {
  await initKernels(log);
  const test = limitDataset(loadDataset('fashion-mnist', 'test'), LIMIT);
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), 256);
  const calibration = { shape: [train.count, ...train.shape], data: train.images };
  const rows: Row[] = [];
  for (const m of MODELS) {
    const dense = importOnnxFile(join(FIXTURES, `${m.name}.onnx`));
    for (const method of METHODS) {
      log(`${m.label} ${method}: rank search at ratio ${RATIO}`);
      const plan = planCompression(dense, { method, ratio: RATIO, calibration });
      const variants: Variant[] = [];
      for (const mult of [null, ...MULTIPLES]) {
        const t0 = performance.now();
        const { model, report } = applyCompressionPlan(dense, plan, mult === null ? {} : { roundRanks: mult });
        const decomposeSeconds = (performance.now() - t0) / 1000;
        const acc = evaluate(Session.create(model), test, { batch: 250 });
        const v: Variant = {
          roundRanks: mult,
          layers: report.layers.map((l) => ({ name: l.name, op: l.op, ranks: l.ranks, ...(l.ranksBeforeRounding ? { chosen: l.ranksBeforeRounding } : {}) })),
          params: report.params, ratio: report.ratio, accuracy: acc.accuracy, samples: acc.samples, decomposeSeconds,
        };
        variants.push(v);
        log(`  ${mult === null ? 'as chosen' : `multiples of ${mult}`}: ${ranks(v)}; ${v.ratio.toFixed(2)}x; accuracy ${pct(v.accuracy)} (${decomposeSeconds.toFixed(1)} s)`);
      }
      rows.push({ model: m.label, method, searchSeconds: plan.seconds, variants });
    }
  }
  const flags = [
    LIMIT !== 10000 ? ` --limit ${LIMIT}` : '',
    METHODS.join(',') !== 'svd,cp,tucker,tt' ? ` --methods ${METHODS.join(',')}` : '',
    MULTIPLES.join(',') !== '4,8' ? ` --multiples ${MULTIPLES.join(',')}` : '',
  ].join('');
  const command = `node --import tsx bench/roundranks.ts${flags}`;
  const md = markdown(rows, command, test.count);
  writeBenchResults(RESULTS, 'roundranks', { command, date: new Date().toISOString(), ratio: RATIO, samples: test.count, multiples: MULTIPLES, rows }, md, README);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
