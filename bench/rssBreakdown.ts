// Where the peak RSS of a runtime session goes: each engine of bench/runtime.ts's RSS columns runs in
// a child of its own (bench/lib/runner.ts, compiled, on plain Node, as the bench runs it) with
// `trace`, which reads VmHWM / VmRSS (RssAnon, RssFile) after each step: the runner's own start,
// importing the runtime, starting the kernels (wasm compile, Liftoff), reading the .flm, creating
// the session (threaded sessions: kernels-mt.wasm and their workers), the first run (arena, the
// session's warm-up), the warm-up calls (V8 tiers hot wasm functions up to TurboFan here) and
// the timed calls. Beside them: the empty child (compiled runner, and the sources under tsx), ORT on
// the dense original (its peak, for the target ratio), and a diagnosis run of ours in a Node with
// --liftoff-only (no TurboFan: what the tier-up costs; slower kernels, so not a setting to use), and
// one with --wasm-num-compilation-tasks=1 (the tier-up one function at a time: what its parallel
// compile jobs add to the peak), and one importing the runtime as a single module (runtime/index.ts
// bundled by esbuild, which tsx brings) instead of its ~64 compiled modules: how much of the imports
// step is the module count, and how much only moves to the next steps.
//
//   node --import tsx bench/rssBreakdown.ts [--models lenet5_fashion,mlp_fashion_r10,...] [--batch 1,32]
//        [--warmup 50] [--warmup-ms 1000] [--iters 300] [--models-dir DIR] [--reuse-runner]
//
// Uses the .flm files bench/runtime.ts made in bench/out/ (run it first) and the ONNX originals
// (<fixtures>, --models-dir: scripts/mlperf_tiny.py's folder). Writes
// bench/results/rssBreakdown.{json,md}. RSS does not depend on the machine's load; the warm-up
// length matters (tier-up happens during it), so the defaults are the README bench's.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, numberArg } from './lib/args.js';
import { compileRunner } from './lib/compileRunner.js';
import { FIXTURES } from './lib/fixtures.js';
import { runInChild } from './lib/runBench.js';
import { readFlm } from '../runtime/format/reader.js';
import type { RunnerJob, RunnerResult, RssStep } from './lib/runner.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'out');
const RESULTS = join(ROOT, 'bench', 'results');
const WARMUP = numberArg('warmup', '50');
const WARMUP_MS = numberArg('warmup-ms', '1000');
const ITERS = numberArg('iters', '300');
const BATCHES = arg('batch', '1,32').split(',').map(Number);
const MODELS_DIR = arg('models-dir', '');
const ONLY = arg('models', '').split(',').filter(Boolean);
/** Issue 14: peak RSS above Node's own baseline <= 0.5x ORT's. */
const TARGET = 0.5;
/** The diagnosis row's one-module runtime (bundleRuntime). */
const BUNDLE = join(OUT, 'js', 'runtime', 'kernels', 'bundle.js');

const CASES = [
  { id: 'lenet5_fashion', label: 'LeNet-5 ×10', flm: 'lenet5_fashion_auto_r10.flm', onnx: () => join(FIXTURES, 'lenet5_fashion.onnx'), reference: true },
  { id: 'mlp_fashion_r10', label: 'FC-2 ×10', flm: 'mlp_fashion_auto_r10.flm', onnx: () => join(FIXTURES, 'mlp_fashion.onnx'), reference: true },
  { id: 'mlp_fashion_r50', label: 'FC-2 ×50', flm: 'mlp_fashion_auto_r50.flm', onnx: () => join(FIXTURES, 'mlp_fashion.onnx'), reference: true },
  { id: 'resnet8', label: 'ResNet-8 ×4', flm: 'resnet8_auto_r4.flm', onnx: () => join(resolve(MODELS_DIR), 'ic.onnx'), reference: false },
  { id: 'ds_cnn', label: 'DS-CNN ×4', flm: 'ds_cnn_auto_r4.flm', onnx: () => join(resolve(MODELS_DIR), 'kws.onnx'), reference: false },
];

interface Engine {
  id: string;
  label: string;
  job: Omit<RunnerJob, 'shape' | 'path'> & { path?: string };
  nodeFlags?: string[];
  /** A diagnosis (a Node flag that is not a setting to use): at the first batch size only. */
  diagnosis?: boolean;
}

const ENGINES: Engine[] = [
  { id: 'ours', label: 'ours (wasm-simd, 1 thread)', job: { engine: 'flm', trace: true } },
  { id: 'ours-threads', label: 'ours, up to 2 threads', job: { engine: 'flm', threads: 2, trace: true } },
  { id: 'ours-reference', label: 'ours, reference kernels', job: { engine: 'flm', backends: ['reference'], trace: true } },
  { id: 'ours-liftoff', label: 'ours, node --liftoff-only (diagnosis)', job: { engine: 'flm', trace: true }, nodeFlags: ['--liftoff-only'], diagnosis: true },
  { id: 'ours-1task', label: 'ours, node --wasm-num-compilation-tasks=1 (diagnosis)', job: { engine: 'flm', trace: true }, nodeFlags: ['--wasm-num-compilation-tasks=1'], diagnosis: true },
  { id: 'ours-bundle', label: 'ours, runtime bundled into one module (diagnosis)', job: { engine: 'flm', trace: true, bundle: BUNDLE }, diagnosis: true },
  { id: 'ort-dense', label: 'ORT, dense original', job: { engine: 'ort' } },
];

const log = (s: string) => process.stderr.write(`${s}\n`);

/** Writes BUNDLE: runtime/index.ts and what it imports as one ES module (beside the compiled wasmKernels.js, so it finds kernels.wasm as that does). */
async function bundleRuntime(): Promise<void> {
  const { build } = await import('esbuild');
  await build({ entryPoints: [join(ROOT, 'runtime', 'index.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: BUNDLE, external: ['crc-32'], logLevel: 'warning' });
}
const mb = (v: number) => v.toFixed(1);

interface Row {
  model: string;
  batch: number;
  engine: string;
  label: string;
  peakRssMB: number;
  p50Ms: number;
  backend: string;
  steps?: RssStep[];
  memory?: RunnerResult['memory'];
  error?: string;
}

/** Each step's growth of the peak (VmHWM) over the step before it, MB; the first over the baseline. */
function increments(steps: RssStep[], baseline: number): Record<string, number> {
  const out: Record<string, number> = {};
  let prev = baseline;
  for (const s of steps) {
    out[s.step] = s.hwmMB - prev;
    prev = Math.max(prev, s.hwmMB);
  }
  return out;
}

const state = { load0: [] as number[], baseline: NaN, baselineTsx: NaN, rows: [] as Row[] };

const STEP_COLUMNS = ['start', 'imports', 'kernels', 'read', 'session', 'first run', 'warm-up', 'timed'];

async function main(): Promise<void> {
  state.load0 = loadavg();
  mkdirSync(RESULTS, { recursive: true });
  // --reuse-runner: the runner bench/out/js already holds (tsc takes minutes on a loaded machine).
  const compiled = join(OUT, 'js', 'bench', 'lib', 'runner.js');
  const runner = process.argv.includes('--reuse-runner') && existsSync(compiled) ? compiled : compileRunner();
  log(`rssBreakdown: children run ${relative(ROOT, runner)} (compiled by tsc) with plain Node`);
  await bundleRuntime();
  const baseline = (state.baseline = (await runInChild({ engine: 'baseline' }, undefined, runner)).peakRssMB);
  state.baselineTsx = (await runInChild({ engine: 'baseline' })).peakRssMB;
  log(`rssBreakdown: empty child ${mb(baseline)} MB (compiled runner), ${mb(state.baselineTsx)} MB (sources under tsx)`);
  const rows = state.rows;
  const cases = CASES.filter((c) => ONLY.length === 0 || ONLY.includes(c.id));
  for (const c of cases) {
    const flm = join(OUT, c.flm);
    if (!existsSync(flm)) throw new Error(`${relative(ROOT, flm)} not found: run bench/runtime.ts first (it converts the models)`);
    if (!c.reference && !MODELS_DIR) throw new Error(`${c.label} needs --models-dir (scripts/mlperf_tiny.py's folder)`);
    const onnx = c.onnx();
    const inShape = readFlm(readFileSync(flm)).graph.inputs[0]!.shape;
    for (const batch of BATCHES) {
      for (const e of ENGINES) {
        if (e.id === 'ours-reference' && !c.reference) continue;
        if (e.diagnosis && batch !== BATCHES[0]) continue;
        const path = e.job.engine === 'ort' ? onnx : flm;
        const job: RunnerJob = { ...e.job, path, shape: [batch, ...inShape.slice(1)], warmup: WARMUP, warmupMs: WARMUP_MS, iters: ITERS, seed: 1 } as RunnerJob;
        log(`rssBreakdown: ${c.label} batch ${batch}: ${e.label}`);
        try {
          const r = await runInChild(job, undefined, runner, e.nodeFlags);
          rows.push({ model: c.label, batch, engine: e.id, label: e.label, peakRssMB: r.peakRssMB, p50Ms: r.p50Ms, backend: r.backend, ...(r.steps ? { steps: r.steps } : {}), ...(r.memory ? { memory: r.memory } : {}) });
        } catch (err) {
          rows.push({ model: c.label, batch, engine: e.id, label: e.label, peakRssMB: NaN, p50Ms: NaN, backend: '', error: (err as Error).message });
        }
        write(false);
      }
    }
  }
  write(true);
}

function write(done: boolean): void {
  const command = `node --import tsx bench/rssBreakdown.ts --warmup ${WARMUP} --warmup-ms ${WARMUP_MS} --iters ${ITERS}${BATCHES.join(',') === '1,32' ? '' : ` --batch ${BATCHES.join(',')}`}${ONLY.length ? ` --models ${ONLY.join(',')}` : ''}${MODELS_DIR ? ' --models-dir <models-dir>' : ''}`;
  const load = { start: state.load0, end: loadavg() };
  // Written after every child (a run cut short keeps what it measured; `complete` says which).
  writeFileSync(join(RESULTS, 'rssBreakdown.json'), `${JSON.stringify({ command, complete: done, date: new Date().toISOString(), node: process.version, load, baselineRssMB: state.baseline, baselineTsxRssMB: state.baselineTsx, target: TARGET, rows: state.rows }, null, 1)}\n`);
  const md = markdown(state.rows, state.baseline, state.baselineTsx, command, load);
  writeFileSync(join(RESULTS, 'rssBreakdown.md'), `${md}\n`);
  if (done) process.stdout.write(`${md}\n`);
}

function markdown(rows: Row[], baseline: number, baselineTsx: number, command: string, load: { start: number[]; end: number[] }): string {
  const lines: string[] = [];
  lines.push(
    `Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; made by \`${command}\`; load average at the start ${load.start.map((v) => v.toFixed(2)).join(' ')}, at the end ${load.end.map((v) => v.toFixed(2)).join(' ')} (p50 latencies here are under that load: the bench's own table has the ratios). `
    + `Empty child (the baseline): ${mb(baseline)} MB with the compiled runner on plain Node, ${mb(baselineTsx)} MB with the sources under the tsx loader (the bench uses the compiled one). `
    + `Columns after "above baseline": how much each step raised the peak (VmHWM), MB: start = the runner's own imports over the empty child; imports = the runtime's modules; kernels = selectBackend (wasm compile and instantiate, Liftoff); read = the .flm; session = Session.create (threaded: kernels-mt.wasm and its worker); first run = arena, plan, the session's warm-up; warm-up = ${WARMUP} calls and at least ${WARMUP_MS} ms more (V8 compiles hot wasm functions with TurboFan here); timed = ${ITERS} calls. `
    + `vs ORT: (peak − baseline) / (ORT dense peak − baseline), target ≤ ${TARGET}, marked on the engine the bench's target column measures. The diagnosis rows run at the first batch size only.`,
    '',
    `| model | batch | engine | peak MB | above baseline MB | vs ORT | ${STEP_COLUMNS.join(' | ')} | wasm memory MB | arena MB | weights MB | workers | p50 ms |`,
    `|---|---|---|---|---|---|${STEP_COLUMNS.map(() => '---|').join('')}---|---|---|---|---|`,
  );
  for (const r of rows) {
    const ort = rows.find((x) => x.model === r.model && x.batch === r.batch && x.engine === 'ort-dense');
    const vs = ort && r.engine !== 'ort-dense' && Number.isFinite(r.peakRssMB) ? (r.peakRssMB - baseline) / (ort.peakRssMB - baseline) : null;
    const vsText = vs === null ? '–' : r.engine === 'ours' ? (vs <= TARGET ? `${vs.toFixed(2)} ✓` : `**${vs.toFixed(2)}** ✗ (${(vs / TARGET).toFixed(1)}× over)`) : vs.toFixed(2);
    if (r.error) {
      lines.push(`| ${r.model} | ${r.batch} | ${r.label} | failed: ${r.error.replace(/\|/g, '\\|')} |${' |'.repeat(7 + STEP_COLUMNS.length)}`);
      continue;
    }
    const inc = r.steps ? increments(r.steps, baseline) : {};
    const m = r.memory;
    lines.push(`| ${r.model} | ${r.batch} | ${r.label} | ${mb(r.peakRssMB)} | ${mb(r.peakRssMB - baseline)} | ${vsText} | ${STEP_COLUMNS.map((s) => (inc[s] === undefined ? '–' : mb(inc[s]!))).join(' | ')} | `
      + `${m ? mb(m.wasmMemoryBytes / 1e6) : '–'} | ${m ? mb(m.arenaBytes / 1e6) : '–'} | ${m ? mb(m.modelTensorBytes / 1e6) : '–'} | ${m ? m.workers : '–'} | ${r.p50Ms.toPrecision(3)} |`);
  }
  return lines.join('\n');
}

await main();
