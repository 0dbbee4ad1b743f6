// Does the int8-weight GEMM pay? y = x W^T for a dense layer, W [N, K] kept inside WebAssembly
// memory either as f32 (the wasm-simd backend's gemmNT with the weight retained, as the runtime
// keeps weights) or as int8 with one scale per row (runtime/kernels/int8.ts, gemm_nt_i8).
// Interleaved repetitions, median; GFLOP/s and weight bytes per call.
//
//   node --import tsx bench/int8.ts [--reps 15] [--sizes 1x1024x784,...] [--readme README.md | --no-readme]
//
// Writes bench/results/int8.{json,md} and the README section <!-- bench:int8:start --> ... end.
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { quantizeTensor } from '../runtime/format/dtype.js';
import { wasmBackend } from '../runtime/kernels/backend.js';
import { int8WeightOf, loadInt8Gemm } from '../runtime/kernels/int8.js';
import { writeBenchResults } from './readme.js';
import { arg, numberArg } from './lib/args.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const RESULTS = join(ROOT, 'bench', 'results');
const REPS = numberArg('reps', '15');
// M x N x K: batch x outputs x inputs. FC-2's hidden layer, LeNet-5's first dense layer, a square
// layer that fits the caches, and large layers whose weights do not.
const SIZES = arg('sizes', '1x1024x784,1x500x800,1x256x256,1x2048x2048,1x4096x4096,4x4096x4096,32x1024x784,32x4096x4096,256x256x256')
  .split(',').map((s) => s.split('x').map(Number) as [number, number, number]);
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const MIN_REP_MS = 30;

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** Microseconds per call of `fn`, over at least MIN_REP_MS. */
function rep(fn: () => void): number {
  let calls = 0;
  const t0 = performance.now();
  do {
    fn();
    calls++;
  } while (performance.now() - t0 < MIN_REP_MS);
  return ((performance.now() - t0) * 1000) / calls;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Result {
  M: number;
  N: number;
  K: number;
  f32Us: number;
  int8Us: number;
  f32Gflops: number;
  int8Gflops: number;
  speedup: number;
  weightBytesF32: number;
  weightBytesInt8: number;
  maxAbsDiff: number;
}

async function main(): Promise<void> {
  const results: Result[] = [];
  for (const [M, N, K] of SIZES) {
    // Separate instances per size, so that earlier weights do not fill either memory.
    const i8 = await loadInt8Gemm();
    const wasm = await wasmBackend();
    const w = rand(N * K, 7 + N);
    const x = rand(M * K, 11 + M);
    const qw = int8WeightOf(quantizeTensor({ name: 'w', dtype: 'f32', shape: [N, K], data: w }, 'i8', { perChannelAxis: 0 }));
    const deq = new Float32Array(N * K);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) deq[n * K + k] = qw.q[n * K + k]! * qw.scale[n]!;
    wasm.retain(deq);
    i8.retain(qw);
    const yF = new Float32Array(M * N);
    const yQ = new Float32Array(M * N);
    const tf: number[] = [];
    const tq: number[] = [];
    for (let r = 0; r < REPS; r++) {
      tf.push(rep(() => wasm.gemmNT(x, deq, M, N, K, undefined, yF)));
      tq.push(rep(() => i8.gemmNT(x, qw, M, undefined, yQ)));
    }
    let d = 0;
    for (let i = 0; i < yF.length; i++) d = Math.max(d, Math.abs(yF[i]! - yQ[i]!));
    const f32Us = median(tf);
    const int8Us = median(tq);
    const flops = 2 * M * N * K;
    const row: Result = {
      M, N, K, f32Us, int8Us, f32Gflops: flops / (f32Us * 1e3), int8Gflops: flops / (int8Us * 1e3), speedup: f32Us / int8Us,
      weightBytesF32: 4 * N * K, weightBytesInt8: N * K + 4 * N, maxAbsDiff: d,
    };
    results.push(row);
    process.stderr.write(`${M}x${N}x${K}: f32 ${f32Us.toFixed(1)} us, int8 ${int8Us.toFixed(1)} us (${row.speedup.toFixed(2)}x); max |diff| ${d.toExponential(1)}\n`);
  }
  const command = `node --import tsx bench/int8.ts${REPS !== 15 ? ` --reps ${REPS}` : ''}${process.argv.includes('--sizes') ? ` --sizes ${arg('sizes', '')}` : ''}`;
  const mib = (b: number) => (b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : `${(b / 1024).toFixed(0)} KiB`);
  const lines: string[] = [];
  lines.push(`y = x Wᵀ with W [N, K] kept in WebAssembly memory as f32 (wasm-simd gemmNT, weight retained) or as int8 with one scale per row (gemm_nt_i8); the f32 weight is the dequantised int8 one, so both compute the same product. Median of ${REPS} interleaved repetitions, µs per call, on ${cpus()[0]?.model.trim() ?? 'cpu'} (${cpus().length} cores), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}. Made by \`${command}\`.`);
  lines.push('');
  lines.push('| M×N×K | weight f32 | weight int8 | f32 µs | int8 µs | f32 GFLOP/s | int8 GFLOP/s | int8 speed-up |');
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    lines.push(`| ${r.M}×${r.N}×${r.K} | ${mib(r.weightBytesF32)} | ${mib(r.weightBytesInt8)} | ${r.f32Us.toFixed(1)} | ${r.int8Us.toFixed(1)} | ${r.f32Gflops.toFixed(1)} | ${r.int8Gflops.toFixed(1)} | ${r.speedup >= 1 ? `**${r.speedup.toFixed(2)}×**` : `${r.speedup.toFixed(2)}×`} |`);
  }
  const md = lines.join('\n');
  writeBenchResults(RESULTS, 'int8', { command, date: new Date().toISOString(), reps: REPS, results }, md, README);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
