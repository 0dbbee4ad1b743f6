// Issue 12, item 4: the bias of FC-2's hidden layer past 1000x. FC-2 (784-1024-10) trained from
// scratch on full Fashion-MNIST by `factorlite train --arch mlp`, every run with the same epochs,
// batch, optimiser and seed (the command of bench/training.ts part 1):
//   dense, bias full      the reference;
//   dense, bias none      what dropping the hidden layer's 1,024-entry bias costs a dense layer;
//   <kind> --ratio 1000 --hidden-bias none   the hidden layer, bias included, >= 1000x smaller
//                         than dense (<= 804 params): the whole budget goes to the weight.
// Test accuracy on all 10,000 images, in the runtime (the written .flm).
//
//   node --import tsx bench/fc2Bias.ts [--runs dense:full,rtt:none,dense:none,rcp:none,tt:none]
//        [--ratio 1000] [--quick] [--parallel] [--readme README.md | --no-readme]
//
// --parallel starts every run at once (each is one single-threaded process); on a shared machine
// that gets the runs done sooner, and each row's wall minutes then include the others' load.
//
// Writes bench/results/fc2bias.{json,md} and the README section between the bench:fc2bias markers.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TRAIN_DEFAULTS, DEFAULT_LR } from '../cli/commands/train.js';
import { writeBenchResults } from './readme.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'results');
const WORK = join(ROOT, 'bench', 'out');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const quick = process.argv.includes('--quick');
const parallel = process.argv.includes('--parallel');
const RATIO = Number(arg('ratio', '1000'));
const RUNS = arg('runs', 'dense:full,rtt:none,dense:none,rcp:none,tt:none').split(',').filter(Boolean).map((s) => {
  const [layer, bias] = s.split(':');
  if (!layer || (bias !== 'full' && bias !== 'none')) throw new Error(`--runs ${s}: expected <layer>:full|none`);
  return { layer, bias };
});
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const say = (msg: string) => process.stderr.write(`[fc2 bias bench] ${msg}\n`);
const load = () => loadavg().map((x) => Number(x.toFixed(2)));
const STARTED = `Measured from ${new Date().toISOString()} on ${cpus().length} cores, Node ${process.version}.`;
const pct = (x: number | undefined) => (x === undefined ? '–' : `${(100 * x).toFixed(2)}%`);

interface Row {
  layer: string;
  bias: string;
  ratio: number | null;
  command: string;
  ok: boolean;
  error?: string;
  accuracy?: number;
  samples?: number;
  hiddenParams?: number;
  hiddenDenseParams?: number;
  hiddenCompression?: number;
  ranks?: number[];
  op?: string;
  minutes?: number;
  loadBefore?: number[];
  loadAfter?: number[];
}

function runCli(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'factorlite.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.on('exit', (code) => done({ code: code ?? 1, stdout }));
  });
}

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const rows: Row[] = [];
  const one = async (r: (typeof RUNS)[number]): Promise<void> => {
    const ratio = r.layer === 'dense' ? null : RATIO;
    const file = `fc2_${r.layer}_${r.bias}.flm`;
    const out = join(WORK, file);
    const args = [
      'train', '--arch', 'mlp', '--layer', r.layer, ...(ratio ? ['--ratio', String(ratio)] : []), '--hidden-bias', r.bias,
      '--data', 'fashion-mnist', '--epochs', String(TRAIN_DEFAULTS.epochs), '--batch', String(TRAIN_DEFAULTS.batch),
      '--optimizer', TRAIN_DEFAULTS.optimizer, '--seed', String(TRAIN_DEFAULTS.seed),
      ...(quick ? ['--limit', '6000', '--eval-limit', '2000'] : []),
      '-o', out, '--json', '--no-progress',
    ];
    const command = `factorlite ${args.join(' ').replace(out, `bench/out/${file}`)}`;
    say(`${command} (load ${load().join(' ')})`);
    const row: Row = { layer: r.layer, bias: r.bias, ratio, command, ok: false, loadBefore: load() };
    const t0 = performance.now();
    const res = await runCli(args);
    row.minutes = (performance.now() - t0) / 60000;
    row.loadAfter = load();
    try {
      if (res.code !== 0) throw new Error(`exit code ${res.code}`);
      const j = JSON.parse(res.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
      const hidden = (j['layers'] as Array<{ hidden: boolean; op: string; ranks: number[] }>).find((l) => l.hidden)!;
      Object.assign(row, {
        ok: true, accuracy: j['accuracy'], samples: j['samples'], hiddenParams: j['hiddenParams'], hiddenDenseParams: j['hiddenDenseParams'],
        hiddenCompression: j['hiddenCompression'], op: hidden.op, ranks: hidden.ranks,
      });
    } catch (e) {
      row.error = (e as Error).message;
    }
    say(`${r.layer} bias ${r.bias}: ${row.ok ? `${pct(row.accuracy)}, hidden ${row.hiddenParams} params (${row.hiddenCompression!.toFixed(1)}x)` : `failed (${row.error})`}, ${row.minutes.toFixed(2)} min`);
    rows.push(row);
    // Written after every run: a stopped bench keeps the runs it finished.
    report(rows, rows.length < RUNS.length);
  };
  if (parallel) await Promise.all(RUNS.map(one));
  else for (const r of RUNS) await one(r);
}

function report(done: Row[], partial: boolean): void {
  const at = (r: Row) => RUNS.findIndex((x) => x.layer === r.layer && x.bias === r.bias);
  const rows = [...done].sort((a, b) => at(a) - at(b));
  const ref = rows.find((r) => r.layer === 'dense' && r.bias === 'full' && r.ok);
  const gap = (r: Row) => (ref && r.ok ? 100 * (ref.accuracy! - r.accuracy!) : undefined);
  const target = Math.floor(803840 / 1000);
  const lines = [
    STARTED,
    '',
    `FC-2 (784-1024-10) on Fashion-MNIST trained from scratch by \`factorlite train --arch mlp\` (${TRAIN_DEFAULTS.epochs} epochs, batch ${TRAIN_DEFAULTS.batch}, ${TRAIN_DEFAULTS.optimizer} lr ${DEFAULT_LR[TRAIN_DEFAULTS.optimizer]}, ${TRAIN_DEFAULTS.schedule}, seed ${TRAIN_DEFAULTS.seed}${quick ? ', --quick: 6000 training / 2000 test images' : ''}); accuracy of the written .flm in the runtime. \`--hidden-bias none\`: the hidden layer has no bias and its whole budget goes to the weight; the compression is against the dense layer with its bias (803,840). Made by \`node --import tsx bench/fc2Bias.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}\`.`,
    '',
    '| hidden layer | hidden bias | kind, ranks | test accuracy | test images | hidden params | compression | gap to dense | wall min | load before |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => (r.ok
      ? `| ${r.layer}${r.ratio ? ` --ratio ${r.ratio}` : ''} | ${r.bias} | ${r.op}${r.ranks!.length ? ` [${r.ranks!.join(', ')}]` : ''} | ${pct(r.accuracy)} | ${r.samples} | ${r.hiddenParams} | ${r.hiddenCompression!.toFixed(1)}× | ${gap(r) === undefined ? '–' : `${gap(r)!.toFixed(2)}`} | ${r.minutes!.toFixed(2)} | ${r.loadBefore!.join(' ')} |`
      : `| ${r.layer} | ${r.bias} | failed: ${r.error} | | | | | | ${r.minutes!.toFixed(2)} | ${r.loadBefore!.join(' ')} |`)),
    '',
    `Target (issue 12): hidden layer, bias included, ≤ ${target} params (≥ 1000×) within 1 point of dense: ` +
      (rows.filter((r) => r.ok && r.layer !== 'dense').map((r) => `${r.layer} ${r.hiddenParams! <= target && gap(r) !== undefined && gap(r)! <= 1 ? 'met' : 'not met'} (${r.hiddenParams} params, gap ${gap(r)?.toFixed(2) ?? '–'} points)`).join('; ') || 'no run') + '.',
  ];
  if (partial) lines.push('', `(${rows.length} of ${RUNS.length} runs so far.)`);
  writeBenchResults(OUT, 'fc2bias', { ratio: RATIO, quick, epochs: TRAIN_DEFAULTS.epochs, partial, rows }, lines.join('\n'), README);
}

await main();
