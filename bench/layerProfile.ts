// Where a model's time goes: per layer and per kernel call, on one kernel backend, at each batch
// size. The model is converted as bench/runtime.ts converts it (method auto at --ratio); the
// session runs on a backend whose kernels read the clock around every call, so each layer's time
// splits into its kernel calls (conv2d with its path, conv1x1, gemm, pool, relu) and the rest.
//
//   node --import tsx bench/layerProfile.ts [--model lenet5|fc2|resnet8|dscnn|FILE.onnx] [--ratio 10]
//        [--batch 1,32] [--repeats 200] [--backend wasm-simd] [--wasm kernels.wasm] [--threads 2] [--out FILE.md]
//        [--flm FILE.flm]
//
// --flm profiles that file as it is (e.g. the .flm bench/runtime.ts made with the user's
// `factorlite convert`) instead of converting --model here: a model converted here (method auto,
// no calibration, untrained MLPerf Tiny weights) can get another plan than the bench's file.
// --wasm runs the wasm-simd backend on another build of the module (e.g. an older commit's, for
// a before/after profile).
//
// Medians and fastest of --repeats runs after a warm-up of the same length (on a shared machine
// the fastest run is the closer estimate of the work itself). The clock readings add about 0.1 µs
// per kernel call, so small layers read a little slow; the whole-model lines are sums over layers.
import { readFileSync, writeFileSync } from 'node:fs';
import { readFlmFile } from '../runtime/format/reader.js';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { compressModel } from '../converter/compress.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { selectBackend, wasmBackend, type KernelBackend } from '../runtime/kernels/backend.js';
import type { Conv2dParams } from '../runtime/kernels/reference.js';
import { Session } from '../runtime/session.js';
import { mlperfTinyModels } from '../scripts/mlperfTiny.js';
import { arg, numberArg } from './lib/args.js';
import { FIXTURES } from './lib/fixtures.js';
import { cpuMs } from './lib/cpuTime.js';

const MODEL = arg('model', 'lenet5');
const RATIO = numberArg('ratio', '10');
const BATCHES = arg('batch', '1,32').split(',').map(Number);
const REPEATS = numberArg('repeats', '200');
const BACKEND = arg('backend', 'wasm-simd');
const OUT = arg('out', '');
const WASM = arg('wasm', '');
/** --threads N: the wasm-simd backend with up to N threads (kernels-mt.wasm). */
const THREADS = numberArg('threads', '1');
// --model FILE.flm is the same as --flm FILE.flm.
const FLM = arg('flm', '') || (arg('model', '').endsWith('.flm') ? arg('model', '') : '');

/** The kernel conv2d runs for these shapes, when the backend says (an older module may not). */
function pathOf(b: KernelBackend, xs: readonly number[], ws: readonly number[], p: Conv2dParams): string {
  try {
    return b.convPath?.(xs, ws, p) ?? b.name;
  } catch {
    return 'unknown';
  }
}

function onnxPath(name: string): string {
  if (name === 'lenet5') return join(FIXTURES, 'lenet5_fashion.onnx');
  if (name === 'fc2') return join(FIXTURES, 'mlp_fashion.onnx');
  if (name === 'resnet8') return join(mlperfTinyModels({ epochs: 0 }), 'ic.onnx');
  if (name === 'dscnn') return join(mlperfTinyModels({ epochs: 0 }), 'kws.onnx');
  return name;
}

/** Times every kernel call; `take()` hands over what was recorded since the last take. */
function timedBackend(b: KernelBackend): { backend: KernelBackend; take(): Array<{ what: string; ms: number }> } {
  let calls: Array<{ what: string; ms: number }> = [];
  const wrap = <F extends (...a: any[]) => any>(name: string, f: F, label: (...a: Parameters<F>) => string): F =>
    ((...a: Parameters<F>) => {
      const t0 = performance.now();
      const r = f(...a);
      calls.push({ what: `${name} ${label(...a)}`, ms: performance.now() - t0 });
      return r;
    }) as F;
  const backend: KernelBackend = {
    ...b,
    gemmNT: wrap('gemmNT', b.gemmNT, (_a, _b, M, N, K) => `${M}×${N}×${K}`),
    gemmNN: wrap('gemmNN', b.gemmNN, (_a, _b, M, N, K) => `${M}×${N}×${K}`),
    gemmTN: wrap('gemmTN', b.gemmTN, (_a, _b, M, N, K) => `${M}×${N}×${K}`),
    conv2dInto: wrap('conv2d', b.conv2dInto, (_x, xs, _w, ws, _b, p) =>
      `${xs[1]}→${ws[0]} ${ws[2]}×${ws[3]} g${p.group} s${p.strides.join(',')} on ${xs[2]}×${xs[3]} [${pathOf(b, xs, ws, p)}]`),
    conv1x1Into: wrap('conv1x1', b.conv1x1Into, (_x, xs, _w, O) => `${xs[1]}→${O} on ${xs[2]}×${xs[3]}`),
    ...(b.cpSeparableInto ? { cpSeparableInto: wrap('cpSeparable', b.cpSeparableInto, (_x, xs, _v, _h, kh, kw, vp, hp) =>
      `${xs[1]} ch ${kh}×1 s${vp.strides[0]} + 1×${kw} s${hp.strides[1]} on ${xs[2]}×${xs[3]}`) } : {}),
    maxPoolInto: wrap('maxPool', b.maxPoolInto, (_x, xs, p) => `${p.kernel.join('×')} on ${xs[1]}×${xs[2]}×${xs[3]}`),
    avgPoolInto: wrap('avgPool', b.avgPoolInto, (_x, xs, p) => `${p.kernel.join('×')} on ${xs[1]}×${xs[2]}×${xs[3]}`),
    globalAvgPoolInto: wrap('globalAvgPool', b.globalAvgPoolInto, (_x, xs) => `${xs.slice(1).join('×')}`),
    relu: wrap('relu', b.relu, (x) => `${x.length}`),
  };
  return { backend, take: () => { const c = calls; calls = []; return c; } };
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};
const fastest = (v: number[]): number => Math.min(...v);
const us = (ms: number): string => (ms * 1000).toFixed(ms < 0.01 ? 2 : 1);

async function main(): Promise<void> {
  const src = FLM || onnxPath(MODEL);
  const { model, what } = FLM ? { model: await readFlmFile(FLM), what: 'as stored' }
    : (({ model: m, report }) => ({ model: m, what: `method auto at ratio ${RATIO} (reached ${report.ratio.toFixed(1)}×)` }))(compressModel(importOnnxFile(src), { method: 'auto', ratio: RATIO }));
  const backend = WASM ? await wasmBackend({ bytes: readFileSync(WASM) })
    : THREADS > 1 ? await wasmBackend({ threads: THREADS }) : (await selectBackend([BACKEND])).backend;
  const timed = timedBackend(backend);
  const session = Session.create(model, { backend: timed.backend });
  const nodes = model.graph.nodes;
  const lines: string[] = [
    `${FLM ? '' : `${MODEL} `}(${src.split('/').pop()}), ${what}, backend ${backend.name}${WASM ? ` (module ${WASM})` : ''}${THREADS > 1 ? `, up to ${THREADS} threads` : ''}, Node ${process.version}, ${new Date().toISOString()}; median and fastest of ${REPEATS} runs, µs; load average ${loadavg().map((v) => v.toFixed(2)).join(' ')} at the start. Made by \`node --import tsx bench/layerProfile.ts ${FLM ? `--flm ${FLM}` : `--model ${MODEL} --ratio ${RATIO}`} --batch ${BATCHES.join(',')} --repeats ${REPEATS}${WASM ? ` --wasm ${WASM}` : ''}${THREADS > 1 ? ` --threads ${THREADS}` : ''}\`.`,
    '',
  ];
  for (const batch of BATCHES) {
    const shape = session.inputShapes[0]!.map((d, i) => (i === 0 || d < 0 ? batch : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.37);
    const feeds = { [session.inputNames[0]!]: { shape, data: x } };
    session.layerTimes(feeds, REPEATS);
    timed.take();
    // Per node: the kernel calls of each run, in order.
    const perNode = nodes.map(() => new Map<string, number[]>());
    // CPU time of this process per node (process.cpuUsage, read at each node's end): wall time less
    // what the scheduler gave other processes, so a loaded machine shows as wall above CPU.
    const cpu = nodes.map(() => [] as number[]);
    let lastCpu = cpuMs();
    const layer = session.layerTimes(feeds, REPEATS, (k) => {
      const now = cpuMs();
      cpu[k]!.push(now - lastCpu);
      const seen = new Map<string, number>();
      for (const c of timed.take()) seen.set(c.what, (seen.get(c.what) ?? 0) + c.ms);
      for (const [what, ms] of seen) {
        const list = perNode[k]!.get(what) ?? [];
        list.push(ms);
        perNode[k]!.set(what, list);
      }
      lastCpu = cpuMs();
    });
    const total = layer.reduce((a, l) => a + l.ms, 0);
    const totalMin = layer.reduce((a, l) => a + l.minMs, 0);
    const cpuTotal = cpu.reduce((a, v) => a + median(v), 0);
    lines.push(`Batch ${batch}: the layer medians sum to ${us(total)} µs (${us(total / batch)} µs per image); the fastest runs to ${us(totalMin)} µs (${us(totalMin / batch)} µs per image); the medians of CPU time to ${us(cpuTotal)} µs (${us(cpuTotal / batch)} µs per image).`, '');
    lines.push('The fastest of a layer and the fastest of each of its kernel calls come from different runs: on a loaded machine a layer whose every run lost the core once reads slower than the sum of its calls\' fastest (the time is the scheduler\'s, not the layer\'s: compare the CPU column). CPU time is the whole process\'s (V8\'s helper threads too) read at each layer\'s end, about a microsecond of it the reading itself: read it on layers of 100 µs or more.', '');
    lines.push('| # | layer | op | median µs | fastest µs | CPU µs (median) | share of fastest | kernel calls (median / fastest µs per run) |', '|---|---|---|---|---|---|---|---|');
    for (const l of layer) {
      const calls = [...perNode[l.node]!].map(([what, v]) => `${what}: ${us(median(v))} / ${us(fastest(v))}`).join('; ');
      lines.push(`| ${l.node} | ${l.name} | ${l.op} | ${us(l.ms)} | ${us(l.minMs)} | ${us(median(cpu[l.node]!))} | ${((100 * l.minMs) / totalMin).toFixed(1)}% | ${calls || '–'} |`);
    }
    lines.push('');
  }
  const md = lines.join('\n');
  process.stdout.write(`${md}\n`);
  if (OUT) writeFileSync(OUT, `${md}\n`);
}

await main();
