// Runtime benchmark for the README: our runtime on compressed LeNet-5, FC-2, ResNet-8 and DS-CNN
// against onnxruntime-node on the dense originals (its default threads, and one thread) and on the
// exported factorised graphs, batch 1 and 32, each engine in its own process (the measurement of
// `factorlite bench`, reused).
//
//   node --import tsx bench/runtime.ts [--warmup 10] [--warmup-ms 1000] [--iters 100] [--batch 1,32] [--tsx-runner]
//        [--models lenet5_fashion,mlp_fashion,resnet8,ds_cnn] [--kernels FILE.wasm --name runtime-before]
//        [--readme README.md | --no-readme] [--threads 2] [--models-dir DIR] [--render]
//
// --render remakes bench/results/<name>.md (and the README section) from <name>.json without
// measuring: the stored peaks and latencies, the ratios of RSS recomputed with the current targets.
// --kernels runs our engine on another build of kernels.wasm (an older commit's, for a before/after
// in one sitting); --name writes bench/results/<name>.{json,md} instead of runtime.*; --models
// runs some of the cases. --threads N (default 2; 1 turns it off) also runs our runtime with up to
// N threads (WebAssembly threads, runtime/kernels/threads.ts) against ORT with its default threads.
//
// The engine children run bench/lib/runner.ts compiled by tsc to bench/out/js/ with plain Node
// (no tsx loader in the measured process); --tsx-runner runs the sources through tsx instead.
//
// Compresses each model with the `factorlite convert` a user would run (the CLI itself, its
// command recorded in the results): <fixtures>/lenet5_fashion.onnx with `--ratio 10 --calib
// fashion-mnist --prefer speed`, <fixtures>/mlp_fashion.onnx at ratio 10 and 50, and MLPerf Tiny's
// ResNet-8 (IC) and DS-CNN (KWS) at ratio 4, as scripts/mlperf_tiny.py builds them (untrained:
// seeded weights, which do not change the time; --models-dir DIR takes that script's folder of
// trained ones instead, and IC then calibrates on its ic_data/); the reference kernels run on the
// first three only (ResNet-8 at batch 32 takes them seconds per call).
// Writes the .flm files to bench/out/, the results to
// bench/results/runtime.json and bench/results/runtime.md, and the README section
// <!-- bench:runtime:start --> ... <!-- bench:runtime:end -->.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RELAXED_SIMD_FLAG, rssRatios, runBench, TARGETS, type BenchReport, type EngineId, type Ratio } from './lib/runBench.js';
import { replaceReadmeSection } from './readme.js';
import { FIXTURES } from './lib/fixtures.js';
import { arg, numberArg } from './lib/args.js';
import { mlperfTinyModels } from '../scripts/mlperfTiny.js';
import { compileRunner } from './lib/compileRunner.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'out');
const RESULTS = join(ROOT, 'bench', 'results');

const WARMUP = numberArg('warmup', '10');
/** Every engine keeps warming up this long (JIT tiers settle; ORT gets the same). */
const WARMUP_MS = numberArg('warmup-ms', '1000');
const ITERS = numberArg('iters', '100');
const BATCHES = arg('batch', '1,32').split(',').map(Number);
const TSX_RUNNER = process.argv.includes('--tsx-runner');
const KERNELS = arg('kernels', '');
const NAME = arg('name', 'runtime');
/** The README shows the default results only (a --name run updates it when given --readme). */
const README = process.argv.includes('--no-readme') || (NAME !== 'runtime' && !process.argv.includes('--readme'))
  ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const MODELS = arg('models', '').split(',').filter(Boolean);
const THREADS = numberArg('threads', '2');
/** scripts/mlperf_tiny.py's folder of (trained) MLPerf Tiny models; untrained ones built here when absent. */
const MODELS_DIR = arg('models-dir', '');

const fixture = (file: string) => () => join(FIXTURES, file);
const mlperfDir = () => (MODELS_DIR ? resolve(MODELS_DIR) : mlperfTinyModels({ epochs: 0 }));
const mlperf = (file: string) => () => join(mlperfDir(), file);
/** IC's calibration images, where the models' folder has them (the trained models' does). */
const icCalib = (): string[] => (existsSync(join(mlperfDir(), 'ic_data', 'x_train.npy')) ? ['--calib', join(mlperfDir(), 'ic_data', 'x_train.npy')] : []);
/** Each case's `factorlite convert` flags after the ratio. */
const CASES: Array<{ name: string; label: string; onnx: () => string; ratio: number; flags: () => string[]; referenceKernels: boolean }> = [
  { name: 'lenet5_fashion', label: 'LeNet-5', onnx: fixture('lenet5_fashion.onnx'), ratio: 10, flags: () => ['--calib', 'fashion-mnist', '--prefer', 'speed'], referenceKernels: true },
  { name: 'mlp_fashion', label: 'FC-2', onnx: fixture('mlp_fashion.onnx'), ratio: 10, flags: () => [], referenceKernels: true },
  { name: 'mlp_fashion', label: 'FC-2', onnx: fixture('mlp_fashion.onnx'), ratio: 50, flags: () => [], referenceKernels: true },
  { name: 'resnet8', label: 'ResNet-8', onnx: mlperf('ic.onnx'), ratio: 4, flags: () => [...icCalib(), '--prefer', 'speed'], referenceKernels: false },
  { name: 'ds_cnn', label: 'DS-CNN', onnx: mlperf('kws.onnx'), ratio: 4, flags: () => ['--prefer', 'speed'], referenceKernels: false },
];

interface ConvertJson {
  params: number;
  ratio: number;
  layers: Array<{ name: string; op: string; ranks: number[] }>;
  compute: { prefer: string; macs: number; sourceMacs: number } | null;
  check: { agreement: number | null } | null;
}

/** Runs `factorlite convert SRC -o FLM --ratio R FLAGS --json` as a user would; returns its report and the command. */
function convert(src: string, flm: string, ratio: number, flags: string[]): { report: ConvertJson; command: string } {
  const args = ['convert', src, '-o', flm, '--ratio', String(ratio), ...flags, '--json'];
  const out = execFileSync(process.execPath, [join(ROOT, 'bin', 'factorlite.js'), ...args], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  const show = (a: string) => (a === flm ? relative(ROOT, flm) : a.startsWith(FIXTURES) ? `<fixtures>${a.slice(FIXTURES.length)}`
    : a.startsWith(mlperfDir()) ? `<models-dir>${a.slice(mlperfDir().length)}` : a);
  const command = `factorlite ${args.slice(0, -1).map(show).join(' ')}`;
  return { report: JSON.parse(out) as ConvertJson, command };
}

interface CaseResult {
  model: string;
  source: string;
  flm: string;
  targetRatio: number;
  /** Parameter ratio the compressor reached. */
  paramsRatio: number;
  /** The `factorlite convert` that made the .flm. */
  convert: string;
  /** Multiply-adds per sample of the conv and dense layers, compressed and source (convert's report). */
  macs: number | null;
  sourceMacs: number | null;
  /** Top-1 agreement with the source on convert's held-out check samples. */
  agreement: number | null;
  layers: Array<{ name: string; op: string; ranks: number[] }>;
  report: BenchReport;
}

const log = (s: string) => process.stderr.write(`${s}\n`);
const num = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toPrecision(3));
const cell = (r: Ratio) => (r.value === null ? '–' : r.met ? `${r.value.toFixed(2)} ✓` : `**${r.value.toFixed(2)}** ✗ (${(r.value / r.target).toFixed(1)}× over)`);

const loadText = (l: number[]) => l.map((v) => v.toFixed(2)).join(' ');

function markdown(results: CaseResult[], command: string, load: { start: number[]; end: number[] }): string {
  const first = results[0]!.report;
  const lines: string[] = [];
  lines.push(
    `${first.machine.cpu} (${first.machine.cores} cores), Node ${first.machine.node}, ${first.date.slice(0, 10)}; ${first.warmup} warm-up calls (continued for at least ${first.warmupMs} ms) + ${first.iters} timed calls per engine and batch, `
    + `random inputs (seed ${first.seed}); onnxruntime-node with ${first.ortThreads ?? 'its default'} intra-op threads (and, in the \`1 thread\` column and rows, with one), our runtime on one thread, and in the \`${THREADS} threads\` column and rows with up to ${THREADS} (WebAssembly threads; the cost model proposes splits of big layers, and a warm-up measurement per node keeps those that pay). `
    + `\`relaxed SIMD\`: our runtime in a Node started with ${RELAXED_SIMD_FLAG}, where it loads the kernels' relaxed-SIMD build (fused multiply-add; Node 22 and later load it by default), on one thread and with up to ${THREADS} (kernels-mt-relaxed.wasm). `
    + `Made by \`${command}\`. Targets: latency ≤ ${TARGETS.latencyVsDense}× ORT on the dense original, ≤ ${TARGETS.latencyVsFactorised}× ORT on the same factorised graph, `
    + `peak RSS above Node's own baseline ≤ ${TARGETS.rssAboveBaseline}× ORT's (the last column; the one before it, whole peaks with Node's baseline in both, is context); ✗ marks a missed target and says by how much. `
    + `Load average (1, 5, 15 min) at the start ${loadText(load.start)}, at the end ${loadText(load.end)} (the 2 cores are shared).`,
    '',
    `| model | batch | latency ours / ORT dense | latency ours / ORT dense, 1 thread | latency ours ${THREADS} threads / ORT dense | latency ours / ORT factorised | relaxed SIMD: ours / ORT dense | relaxed SIMD: ours / ORT factorised | relaxed SIMD, ${THREADS} threads: ours / ORT dense | peak RSS ours / ORT dense | RSS above Node baseline, ${THREADS} threads: ours / ORT dense | RSS above Node baseline, ours / ORT dense |`,
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const c of results) {
    for (const q of c.report.ratios) {
      const one = q.latencyVsDenseOneThread;
      const th = q.latencyThreadsVsDense;
      const rx = (v: number | null | undefined, target: number) => (v == null ? '–' : cell({ value: v, target, met: v <= target }));
      lines.push(`| ${c.model} | ${q.batch} | ${cell(q.latencyVsDense)} | ${one == null ? '–' : one.toFixed(2)} | ${th == null ? '–' : th.toFixed(2)} | ${cell(q.latencyVsFactorised)} | ${rx(q.latencyRelaxedVsDense, TARGETS.latencyVsDense)} | ${rx(q.latencyRelaxedVsFactorised, TARGETS.latencyVsFactorised)} | ${rx(q.latencyRelaxedThreadsVsDense, TARGETS.latencyVsDense)} | ${q.rssVsDense == null ? '–' : q.rssVsDense.toFixed(2)} | ${q.rssAboveBaselineThreadsVsDense == null ? '–' : q.rssAboveBaselineThreadsVsDense.toFixed(2)} | ${cell(q.rssAboveBaselineVsDense)} |`);
    }
  }
  lines.push(
    '',
    '| model | engine | batch | p50 ms | p95 ms | images/s | load ms | peak RSS MB |',
    '|---|---|---|---|---|---|---|---|',
  );
  const names: Record<EngineId, string> = {
    ours: 'factorlite', 'ours-threads': `factorlite, up to ${THREADS} threads`, 'ours-relaxed': 'factorlite, relaxed SIMD', 'ours-relaxed-threads': `factorlite, relaxed SIMD, up to ${THREADS} threads`, 'ours-reference': 'factorlite, reference kernels', 'ort-dense': 'ORT, dense original', 'ort-dense-1t': 'ORT, dense original, 1 thread', 'ort-factorised': 'ORT, exported factorised',
  };
  for (const c of results) {
    for (const e of c.report.engines) {
      if (e.error) {
        lines.push(`| ${c.model} | ${names[e.id]} | – | failed: ${e.error.replace(/\|/g, '\\|')} | | | | |`);
        continue;
      }
      for (const r of e.results) {
        const label = e.id === 'ours' || e.id === 'ours-threads' || e.id === 'ours-relaxed' || e.id === 'ours-relaxed-threads' ? `${names[e.id]} (${r.backend})` : names[e.id];
        lines.push(`| ${c.model} | ${label} | ${r.batch} | ${num(r.p50Ms)} | ${num(r.p95Ms)} | ${num(r.throughput)} | ${num(r.loadMs)} | ${r.peakRssMB.toFixed(1)} |`);
      }
    }
  }
  lines.push('', 'Each model was compressed by the `factorlite convert` a user would run (multiply-adds per sample of its conv and dense layers, from convert\'s report; agreement: top-1 with the source on convert\'s held-out check samples):', '');
  for (const c of results) {
    const macs = c.macs !== null && c.sourceMacs !== null ? `: ${(c.macs / 1e6).toFixed(2)} M multiply-adds (dense ${(c.sourceMacs / 1e6).toFixed(2)} M)` : '';
    lines.push(`- ${c.model}: \`${c.convert}\`${macs}${c.agreement !== null ? `, agreement ${(100 * c.agreement).toFixed(1)}%` : ''}`);
  }
  const base = results.map((c) => c.report.baselineRssMB);
  lines.push(
    '',
    `Peak RSS is the high-water mark (${first.rssSource === 'VmHWM' ? 'VmHWM in /proc/self/status; getrusage maxRSS would include the parent\'s RSS, which survives fork + exec' : first.rssSource}) `
    + `of a child process that ran one engine at one batch size. `
    + `An empty child started the same way (${first.runner === 'js' ? 'plain Node running the compiled runner' : 'Node with the tsx loader'}) peaks at ${Math.min(...base).toFixed(1)}–${Math.max(...base).toFixed(1)} MB, `
    + `so a ratio of whole peaks cannot fall far below baseline / ORT's peak: the target is on the peaks above it (the last column; the one before it gives the same for our runtime with up to ${THREADS} threads). `
    + `Load time: reading the file and creating the session (kernel start-up and imports not included).`,
  );
  return lines.join('\n');
}

/**
 * --render: the tables again from bench/results/<name>.json, the stored run's measurements as they
 * are, with the ratios' RSS fields recomputed by the current definitions (rssRatios) and targets.
 */
function render(): void {
  const path = join(RESULTS, `${NAME}.json`);
  const stored = JSON.parse(readFileSync(path, 'utf8')) as { command: string; load: { start: number[]; end: number[] }; results: CaseResult[] } & Record<string, unknown>;
  for (const c of stored.results) {
    const rep = c.report;
    rep.targets = { ...TARGETS };
    rep.ratios = rep.ratios.map((q) => ({ ...q, ...rssRatios(rep.engines, rep.baselineRssMB, q.batch, rep.engines.some((e) => e.id === 'ours-threads')) }));
  }
  writeFileSync(path, `${JSON.stringify({ ...stored, targets: TARGETS }, null, 1)}\n`);
  const md = markdown(stored.results, stored.command, stored.load);
  writeFileSync(join(RESULTS, `${NAME}.md`), `${md}\n`);
  process.stdout.write(`${md}\n`);
  if (README) {
    replaceReadmeSection(README, 'bench:runtime', md);
    log(`bench/runtime: updated ${README}`);
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--render')) return render();
  const loadStart = loadavg();
  mkdirSync(OUT, { recursive: true });
  mkdirSync(RESULTS, { recursive: true });
  const results: CaseResult[] = [];
  const runner = TSX_RUNNER ? undefined : compileRunner(KERNELS);
  if (runner) log(`bench/runtime: engines run ${relative(ROOT, runner)} (compiled by tsc) with plain Node`);
  if (KERNELS && TSX_RUNNER) throw new Error('--kernels needs the compiled runner (drop --tsx-runner)');
  for (const c of CASES.filter((k) => MODELS.length === 0 || MODELS.includes(k.name))) {
    const src = c.onnx();
    if (!existsSync(src)) throw new Error(`model ${src} not found (fixtures: set FACTORLITE_FIXTURES)`);
    const flm = join(OUT, `${c.name}_auto_r${c.ratio}.flm`);
    log(`bench/runtime: compressing ${src} at ratio ${c.ratio}`);
    const { report, command: convertCommand } = convert(src, flm, c.ratio, c.flags());
    log(`bench/runtime: ${convertCommand}: ${report.params} parameters, ${report.ratio.toFixed(1)}x fewer${report.compute ? `, ${(report.compute.macs / 1e6).toFixed(2)} M multiply-adds (source ${(report.compute.sourceMacs / 1e6).toFixed(2)} M)` : ''}; measuring`);
    const rep = await runBench({
      model: flm, vs: src, batches: BATCHES, warmup: WARMUP, warmupMs: WARMUP_MS, iters: ITERS, seed: 1,
      referenceKernels: c.referenceKernels, ortOneThread: true, relaxedSimd: true, ...(runner ? { runner } : {}), ...(THREADS > 1 ? { threads: THREADS } : {}),
    });
    results.push({
      model: `${c.label} ×${c.ratio} (reached ${report.ratio.toFixed(1)}×)`,
      source: relative(ROOT, src), flm: relative(ROOT, flm), targetRatio: c.ratio, paramsRatio: report.ratio, convert: convertCommand,
      macs: report.compute?.macs ?? null, sourceMacs: report.compute?.sourceMacs ?? null, agreement: report.check?.agreement ?? null,
      layers: report.layers.map((l) => ({ name: l.name, op: l.op, ranks: l.ranks })),
      report: { ...rep, model: relative(ROOT, flm), vs: relative(ROOT, src) },
    });
  }
  const command = `node --import tsx bench/runtime.ts --warmup ${WARMUP} --warmup-ms ${WARMUP_MS} --iters ${ITERS}${BATCHES.join(',') === '1,32' ? '' : ` --batch ${BATCHES.join(',')}`}${TSX_RUNNER ? ' --tsx-runner' : ''}`
    + `${MODELS.length ? ` --models ${MODELS.join(',')}` : ''}${THREADS === 2 ? '' : ` --threads ${THREADS}`}${MODELS_DIR ? ' --models-dir <models-dir>' : ''}${KERNELS ? ` --kernels ${KERNELS}` : ''}${NAME === 'runtime' ? '' : ` --name ${NAME}`}`;
  writeFileSync(join(RESULTS, `${NAME}.json`), `${JSON.stringify({ command, kernels: KERNELS || 'runtime/kernels/wasm/kernels.wasm', load: { start: loadStart, end: loadavg() }, targets: TARGETS, results }, null, 1)}\n`);
  const md = markdown(results, command, { start: loadStart, end: loadavg() });
  writeFileSync(join(RESULTS, `${NAME}.md`), `${md}\n`);
  process.stdout.write(`${md}\n`);
  if (README) {
    replaceReadmeSection(README, 'bench:runtime', md);
    log(`bench/runtime: updated ${README}`);
  }
}

await main();
