// GEMM kernel benchmark: GFLOP/s of our WebAssembly SIMD GEMM, the TypeScript reference and
// onnxruntime-node on the same MatMul, measured in one run, interleaved, median of N repetitions.
//
//   node --import tsx bench/kernels.ts [--reps 15] [--sizes 256x256x256,1x1024x784] [--threads 2] [--name kernels] [--no-readme]
//
// ORT runs twice: with one intra-op thread (the same single core our kernels use) and with its
// default thread pool. Our kernels run on one thread, and (weight kept) on up to --threads threads
// (WebAssembly threads; the cost model leaves small products on one). Writes
// bench/results/<name>.json (default kernels.json) and prints a table; updates the README section
// unless --no-readme.
import { cpus, loadavg } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { referenceBackend, wasmBackend, type KernelBackend } from '../runtime/kernels/backend.js';
import { replaceReadmeSection } from './readme.js';
import { arg, numberArg } from './lib/args.js';

const { onnx } = onnxProto;
const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'bench', 'results');

const REPS = numberArg('reps', '15');
const SIZES = arg('sizes', '256x256x256,64x64x64,1x1024x784,32x1024x784').split(',').map((s) => s.split('x').map(Number) as [number, number, number]);
/** Each repetition runs for at least this long, so that timer resolution does not matter. */
const MIN_REP_MS = 40;
const THREADS = numberArg('threads', '2');
const NAME = arg('name', 'kernels');
const README = !process.argv.includes('--no-readme');

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** y[M, N] = a[M, K] @ b[K, N] with b a constant initializer, as a weight is in a model. */
function matmulModel(b: Float32Array, M: number, N: number, K: number): Uint8Array {
  const DT = onnx.TensorProto.DataType;
  const vi = (name: string, dims: number[]): onnxProto.onnx.IValueInfoProto => ({
    name, type: { tensorType: { elemType: DT.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: 'factorlite-bench',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'matmul',
      node: [{ name: 'mm', opType: 'MatMul', input: ['a', 'b'], output: ['y'] }],
      input: [vi('a', [M, K])],
      output: [vi('y', [M, N])],
      initializer: [{ name: 'b', dims: [K, N], dataType: DT.FLOAT, rawData: new Uint8Array(b.buffer, b.byteOffset, b.byteLength) }],
    },
  }).finish();
}

interface Contender {
  name: string;
  /** Runs the product once; async so ORT fits the same loop. */
  run: () => void | Promise<unknown>;
  times: number[];
  iters: number;
}

/** Calls per repetition so that one repetition lasts about MIN_REP_MS. */
async function calibrate(c: Contender): Promise<void> {
  await c.run(); // warm-up: compilation, ORT's first-run allocations
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await c.run();
    const dt = performance.now() - t0;
    if (dt >= MIN_REP_MS || n >= 1 << 16) break;
    n = Math.min(n * 2, Math.ceil((n * MIN_REP_MS * 1.2) / Math.max(dt, 0.01)));
  }
  c.iters = n;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((u, v) => u - v);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function benchSize(wasm: KernelBackend, threaded: KernelBackend, M: number, N: number, K: number) {
  const kept = await wasmBackend(); // a second instance, in which b stays resident (retain)
  const a = rand(M * K, 1);
  const b = rand(K * N, 2);
  const out = new Float32Array(M * N);
  kept.retain(b);
  threaded.retain(b);
  const model = matmulModel(b, M, N, K);
  const ortOne = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const ortAll = await ort.InferenceSession.create(model);
  const feeds = { a: new ort.Tensor('float32', a, [M, K]) };

  const make = (name: string, run: Contender['run']): Contender => ({ name, run, times: [], iters: 1 });
  const contenders = [
    make('wasm-simd', () => wasm.gemmNN(a, b, M, N, K, out)),
    make('wasm-simd-retained', () => kept.gemmNN(a, b, M, N, K, out)),
    make('wasm-simd-threads', () => threaded.gemmNN(a, b, M, N, K, out)),
    make('reference', () => referenceBackend.gemmNN(a, b, M, N, K, out)),
    make('ort-1-thread', () => ortOne.run(feeds)),
    make('ort-default', () => ortAll.run(feeds)),
  ];
  // Agreement first: a fast wrong kernel is not a result.
  const want = new Float32Array(M * N);
  referenceBackend.gemmNN(a, b, M, N, K, want);
  wasm.gemmNN(a, b, M, N, K, out);
  const ortY = ((await ortOne.run(feeds))['y']!.data as Float32Array);
  let dWasm = 0;
  let dOrt = 0;
  for (let i = 0; i < want.length; i++) {
    dWasm = Math.max(dWasm, Math.abs(out[i]! - want[i]!));
    dOrt = Math.max(dOrt, Math.abs(ortY[i]! - want[i]!));
  }
  threaded.threads?.resetThreadsUsed();
  threaded.gemmNN(a, b, M, N, K, out);
  const threadsUsed = threaded.threads?.threadsUsed() ?? 1;
  let dThreads = 0;
  for (let i = 0; i < want.length; i++) dThreads = Math.max(dThreads, Math.abs(out[i]! - want[i]!));

  for (const c of contenders) await calibrate(c);
  for (let r = 0; r < REPS; r++) {
    // Interleaved, so background load hits every contender alike.
    for (const c of contenders) {
      const t0 = performance.now();
      for (let i = 0; i < c.iters; i++) await c.run();
      c.times.push((performance.now() - t0) / c.iters);
    }
  }
  await ortOne.release();
  await ortAll.release();
  threaded.unretain(b);
  const flop = 2 * M * N * K;
  const results = Object.fromEntries(contenders.map((c) => {
    const ms = median(c.times);
    return [c.name, { medianMs: ms, minMs: Math.min(...c.times), gflops: flop / ms / 1e6, itersPerRep: c.iters }];
  }));
  const g = (n: string) => results[n]!.gflops;
  return {
    M, N, K, flop, results,
    ratioWasmOverOrt1Thread: g('wasm-simd') / g('ort-1-thread'),
    ratioWasmRetainedOverOrt1Thread: g('wasm-simd-retained') / g('ort-1-thread'),
    ratioWasmRetainedOverOrtDefault: g('wasm-simd-retained') / g('ort-default'),
    ratioWasmOverOrtDefault: g('wasm-simd') / g('ort-default'),
    ratioWasmOverReference: g('wasm-simd') / g('reference'),
    ratioThreadsOverOrtDefault: g('wasm-simd-threads') / g('ort-default'),
    threadsUsed,
    maxAbsDiffVsReference: { 'wasm-simd': dWasm, 'wasm-simd-threads': dThreads, ort: dOrt },
  };
}

const wasm = await wasmBackend();
const threaded = await wasmBackend({ threads: THREADS });
const rows = [];
for (const [M, N, K] of SIZES) rows.push(await benchSize(wasm, threaded, M, N, K));
await threaded.threads?.close();

const report = {
  bench: 'kernels',
  date: new Date().toISOString(),
  node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  onnxruntime: ort.env.versions?.common ?? 'unknown',
  reps: REPS,
  threads: THREADS,
  /** 1, 5 and 15 minute load averages at the end (the 2 cores are shared). */
  load: loadavg(),
  note: 'GEMM y = a b (MatMul), our calls include copying operands into wasm memory and the result out '
    + '(wasm-simd-retained: b, the weight, stays in wasm memory; only a and y are copied); '
    + 'ORT calls include its input/output tensors. Median over reps of the mean time per call in a rep.',
  rows,
};
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, `${NAME}.json`), JSON.stringify(report, null, 2) + '\n');

const pad = (s: string, n: number) => s.padStart(n);
console.log(`kernels bench: ${report.cpu}, ${report.cores} cores, node ${report.node}, median of ${REPS}`);
console.log(['M x N x K', 'wasm-simd', 'wasm+keep', `keep ${THREADS}thr`, 'reference', 'ort 1-thr', 'ort default', 'wasm/ort1', 'keep/ort1', 'keep/ortD', 'thr/ortD'].map((h, i) => pad(h, i ? 11 : 16)).join(' '));
for (const r of rows) {
  const g = (n: string) => r.results[n]!.gflops.toFixed(2);
  console.log([
    pad(`${r.M}x${r.N}x${r.K}`, 16), pad(g('wasm-simd'), 11), pad(g('wasm-simd-retained'), 11), pad(`${g('wasm-simd-threads')} (${r.threadsUsed})`, 11), pad(g('reference'), 11),
    pad(g('ort-1-thread'), 11), pad(g('ort-default'), 11), pad(r.ratioWasmOverOrt1Thread.toFixed(2), 11),
    pad(r.ratioWasmRetainedOverOrt1Thread.toFixed(2), 11), pad(r.ratioWasmRetainedOverOrtDefault.toFixed(2), 11),
    pad(r.ratioThreadsOverOrtDefault.toFixed(2), 11),
  ].join(' '));
}
console.log(`(GFLOP/s; wasm+keep: b retained in wasm memory, as a weight; wrote bench/results/${NAME}.json)`);

// The README table comes from this run.
const md = [
  `GEMM y = a·b, GFLOP/s, median of ${REPS} interleaved repetitions on ${report.cpu} (${report.cores} cores), ${report.date.slice(0, 10)}. ` +
    '"kept" = the weight b stays in wasm memory, as the runtime keeps weights; ORT = onnxruntime-node on a MatMul graph. '
    + `"threads" = kept, with up to ${THREADS} threads (WebAssembly threads; in brackets the threads the cost model gave the product). `
    + `Load average at the end ${report.load.map((v) => v.toFixed(2)).join(' ')}.`,
  '',
  '| M×N×K | wasm-simd | wasm-simd, kept | kept, threads | reference (TS) | ORT 1 thread | ORT default | kept / ORT 1 thread | kept / ORT default | threads / ORT default |',
  '|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => {
    const g = (n: string) => r.results[n]!.gflops.toFixed(1);
    return `| ${r.M}×${r.N}×${r.K} | ${g('wasm-simd')} | ${g('wasm-simd-retained')} | ${g('wasm-simd-threads')} (${r.threadsUsed}) | ${g('reference')} | ${g('ort-1-thread')} | ${g('ort-default')} | ` +
      `${r.ratioWasmRetainedOverOrt1Thread.toFixed(2)} | ${r.ratioWasmRetainedOverOrtDefault.toFixed(2)} | ${r.ratioThreadsOverOrtDefault.toFixed(2)} |`;
  }),
].join('\n');
writeFileSync(join(OUT, `${NAME}.md`), `${md}\n`);
if (README) replaceReadmeSection(join(ROOT, 'README.md'), 'bench:kernels', md);
