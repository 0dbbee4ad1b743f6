// The convolution kernels before and after: the same conv2d calls (the shapes LeNet-5, ResNet-8 and
// DS-CNN run) on two builds of kernels.wasm, interleaved in one process, operands in a session-style
// arena and the weight retained, as a session runs them. Fastest of --calls calls each (the machine
// is shared; the fastest call is the closest to the work itself).
//
//   node [--experimental-wasm-relaxed-simd] --import tsx bench/convPaths.ts --before OLD.wasm [--calls 2000] [--warmup-ms 300] [--only TEXT]
//        [--batch 1,32] [--out FILE.md]
//
// --batch: the batch-1 cases at each of these batch sizes instead, with per-image columns.
//
// "after" is this checkout's SIMD128 build (kernels.wasm); where the engine has relaxed SIMD (Node
// 22+, or Node 20 with the flag) a third column times its relaxed-SIMD build (kernels-relaxed.wasm).
//
// OLD.wasm: e.g. `git show 522d986:runtime/kernels/wasm/kernels.wasm > bench/out/kernels-522d986.wasm`
// (the last commit before the direct kernels). The path is the one the current module takes.
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { hasWasmRelaxedSimd, wasmBackend, type KernelBackend } from '../runtime/kernels/backend.js';
import { conv2d, conv2dGeometry, type Conv2dParams } from '../runtime/kernels/reference.js';
import { arg, numberArg } from './lib/args.js';

const BEFORE = arg('before', '');
const CALLS = numberArg('calls', '2000');
const OUT = arg('out', '');
/** Milliseconds each backend runs a case before it is timed (--warmup-ms). */
const WARMUP_MS = numberArg('warmup-ms', '300');
/** --only TEXT: just the cases whose name contains TEXT. */
const ONLY = arg('only', '');
/** --batch 1,32: each batch-1 case also at these batch sizes (times then per image). */
const BATCH_SIZES = arg('batch', '').split(',').filter(Boolean).map(Number);
if (!BEFORE) throw new Error('--before OLD.wasm is required');

const p = (s: number, pad: number, group = 1): Conv2dParams => ({ strides: [s, s], pads: [pad, pad, pad, pad], dilations: [1, 1], group });
const CASES: Array<{ model: string; x: number[]; w: number[]; p: Conv2dParams }> = [
  { model: 'LeNet-5 c1', x: [1, 1, 28, 28], w: [20, 1, 5, 5], p: p(1, 0) },
  { model: 'LeNet-5 ×10 c2 (svd r = 42)', x: [1, 20, 12, 12], w: [42, 20, 5, 5], p: p(1, 0) },
  { model: 'LeNet-5 ×10 c2 1×1', x: [1, 42, 8, 8], w: [50, 42, 1, 1], p: p(1, 0) },
  { model: 'LeNet-5 ×10 CP 1×1 20→82', x: [1, 20, 12, 12], w: [82, 20, 1, 1], p: p(1, 0) },
  { model: 'LeNet-5 ×10 CP 5×1 stage (r = 82)', x: [1, 82, 12, 12], w: [82, 1, 5, 1], p: p(1, 0, 82) },
  { model: 'LeNet-5 ×10 CP 1×5 stage (r = 82)', x: [1, 82, 8, 12], w: [82, 1, 1, 5], p: p(1, 0, 82) },
  { model: 'LeNet-5 ×10 CP 1×1 82→50', x: [1, 82, 8, 8], w: [50, 82, 1, 1], p: p(1, 0) },
  { model: 'CP k×1 stage, pad 1, on 25×5', x: [1, 64, 25, 5], w: [64, 1, 3, 1], p: { strides: [1, 1], pads: [1, 0, 1, 0], dilations: [1, 1], group: 64 } },
  { model: 'depthwise 1×3 valid on 16×16', x: [1, 16, 16, 16], w: [16, 1, 1, 3], p: p(1, 0, 16) },
  { model: 'depthwise 3×3 valid on 10×10', x: [1, 32, 10, 10], w: [32, 1, 3, 3], p: p(1, 0, 32) },
  { model: 'ResNet-8 stem', x: [1, 3, 32, 32], w: [16, 3, 3, 3], p: p(1, 1) },
  { model: 'ResNet-8 16→16', x: [1, 16, 32, 32], w: [16, 16, 3, 3], p: p(1, 1) },
  { model: 'ResNet-8 16→32 stride 2', x: [1, 16, 32, 32], w: [32, 16, 3, 3], p: p(2, 1) },
  { model: 'ResNet-8 64→64 on 8×8', x: [1, 64, 8, 8], w: [64, 64, 3, 3], p: p(1, 1) },
  { model: 'DS-CNN depthwise 3×3', x: [1, 64, 25, 5], w: [64, 1, 3, 3], p: p(1, 1, 64) },
  { model: 'DS-CNN pointwise', x: [1, 64, 25, 5], w: [64, 64, 1, 1], p: p(1, 0) },
  { model: 'CP k×1 stage (r = 16)', x: [1, 16, 16, 16], w: [16, 1, 3, 1], p: { strides: [1, 1], pads: [1, 0, 1, 0], dilations: [1, 1], group: 16 } },
  { model: 'DS-CNN svd 1×1, r = 1', x: [1, 64, 25, 5], w: [1, 64, 1, 1], p: p(1, 0) },
  { model: 'DS-CNN first conv, svd r = 1 (10×4 stride 2)', x: [1, 1, 49, 10], w: [1, 1, 10, 4], p: { strides: [2, 2], pads: [5, 1, 5, 1], dilations: [1, 1], group: 1 } },
  { model: 'DS-CNN svd 1×1, r = 11', x: [1, 64, 25, 5], w: [11, 64, 1, 1], p: p(1, 0) },
  { model: 'ResNet-8 tucker2 1×1 32→2', x: [1, 32, 16, 16], w: [2, 32, 1, 1], p: p(1, 0) },
  { model: 'ResNet-8 tucker2 core 11→11 on 8×8', x: [1, 11, 8, 8], w: [11, 11, 3, 3], p: p(1, 1) },
  { model: 'LeNet-5 c1, batch 32', x: [32, 1, 28, 28], w: [20, 1, 5, 5], p: p(1, 0) },
  { model: 'LeNet-5 ×10 c2, batch 32', x: [32, 20, 12, 12], w: [42, 20, 5, 5], p: p(1, 0) },
  { model: 'DS-CNN depthwise 3×3, batch 32', x: [32, 64, 25, 5], w: [64, 1, 3, 3], p: p(1, 1, 64) },
  { model: 'ResNet-8 16→32 stride 2, batch 32', x: [32, 16, 32, 32], w: [32, 16, 3, 3], p: p(2, 1) },
  { model: 'ResNet-8 tucker2 core 2→3 stride 2', x: [1, 2, 16, 16], w: [3, 2, 3, 3], p: p(2, 1) },
  { model: 'ResNet-8 shortcut 1×1 16→32 stride 2', x: [1, 16, 32, 32], w: [32, 16, 1, 1], p: p(2, 0) },
  { model: 'ResNet-8 shortcut 1×1 32→64 stride 2', x: [1, 32, 16, 16], w: [64, 32, 1, 1], p: p(2, 0) },
  { model: 'depthwise 3×3 stride 2 on 16×16', x: [1, 32, 16, 16], w: [32, 1, 3, 3], p: p(2, 1, 32) },
  { model: 'depthwise 5×5 on 12×12', x: [1, 16, 12, 12], w: [16, 1, 5, 5], p: p(1, 2, 16) },
  { model: 'CP 1×k stage (r = 16) on 25×5', x: [1, 16, 25, 5], w: [16, 1, 1, 3], p: { strides: [1, 1], pads: [0, 1, 0, 1], dilations: [1, 1], group: 16 } },
];

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Fastest of CALLS calls of one conv on backend b, operands in its arena. */
function time(b: KernelBackend, c: (typeof CASES)[number], x: Float32Array, w: Float32Array): number {
  const g = conv2dGeometry(c.x, c.w, c.p);
  const nx = numel(c.x), no = numel(g.shape);
  // Retained first: retaining may grow the module's memory, which detaches views made before it.
  b.retain(w);
  b.prepareConv?.(w, c.w, c.p);
  const arena = b.allocArena((nx + no + g.cols) * 4);
  const all = new Float32Array(arena.buffer(), arena.byteOffset, nx + no + g.cols);
  const xa = all.subarray(0, nx);
  xa.set(x);
  const out = all.subarray(nx, nx + no);
  const cols = all.subarray(nx + no);
  // Warm-up: V8 first runs a wasm function as baseline (Liftoff) code and swaps in the optimised
  // code once it is hot and compiled in the background, which a loaded machine delays; a kernel
  // first called here (a new path) would otherwise be timed partly on baseline code.
  for (const end = performance.now() + WARMUP_MS; performance.now() < end;) b.conv2dInto(xa, c.x, w, c.w, undefined, c.p, out, cols);
  let best = Infinity;
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    b.conv2dInto(xa, c.x, w, c.w, undefined, c.p, out, cols);
    best = Math.min(best, performance.now() - t0);
  }
  if (all.buffer !== arena.buffer()) throw new Error(`${c.model}: the arena moved while timing (memory grew)`);
  const want = conv2d(x, c.x, w, c.w, undefined, c.p).data;
  let d = 0;
  for (let i = 0; i < no; i++) d = Math.max(d, Math.abs(out[i]! - want[i]!));
  if (!(d < 1e-3)) throw new Error(`${c.model}: result differs from the reference by ${d}`);
  b.unretain(w);
  arena.release();
  return best * 1000;
}

const before = await wasmBackend({ bytes: readFileSync(BEFORE) });
const after = await wasmBackend({ simd: 'simd128' });
const relaxed = hasWasmRelaxedSimd() ? await wasmBackend({ simd: 'relaxed' }) : undefined;
const flag = relaxed && process.execArgv.includes('--experimental-wasm-relaxed-simd') ? ' --experimental-wasm-relaxed-simd' : '';
const lines = [
  `conv2d, fastest of ${CALLS} calls after ${WARMUP_MS} ms of warm-up, µs; kernels.wasm of ${BEFORE} (before) and of this checkout (after${relaxed ? '; and its relaxed-SIMD build, kernels-relaxed.wasm' : ''}), interleaved per shape in one process; Node ${process.version}, ${new Date().toISOString()}, load average ${loadavg().map((v) => v.toFixed(2)).join(' ')} at the start. Made by \`node${flag} --import tsx bench/convPaths.ts --before ${BEFORE} --calls ${CALLS} --warmup-ms ${WARMUP_MS}${ONLY ? ` --only '${ONLY}'` : ''}${BATCH_SIZES.length ? ` --batch ${BATCH_SIZES.join(',')}` : ''}\`.`,
  '',
  `| layer | x | w | stride, pad | path now | MACs | before µs | after µs |${BATCH_SIZES.length ? ' before µs/image | after µs/image |' : ''} speed-up | GFLOP/s after |${relaxed ? ' relaxed µs | speed-up relaxed | GFLOP/s relaxed |' : ''}`,
  `|---|---|---|---|---|---|---|---|${BATCH_SIZES.length ? '---|---|' : ''}---|---|${relaxed ? '---|---|---|' : ''}`,
];
const cases = BATCH_SIZES.length
  ? CASES.filter((k) => k.x[0] === 1).flatMap((k) => BATCH_SIZES.map((n) => ({ ...k, model: n === 1 ? k.model : `${k.model}, batch ${n}`, x: [n, ...k.x.slice(1)] })))
  : CASES;
for (const c of cases.filter((k) => k.model.includes(ONLY))) {
  const x = new Float32Array(numel(c.x)).map((_, i) => Math.sin(i * 0.37));
  const w = new Float32Array(numel(c.w)).map((_, i) => Math.cos(i * 0.11) * 0.1);
  const tb = time(before, c, x, w);
  const ta = time(after, c, x, w);
  const tr = relaxed ? time(relaxed, c, x, w) : NaN;
  const g = conv2dGeometry(c.x, c.w, c.p);
  const macs = numel(g.shape) * c.w[1]! * c.w[2]! * c.w[3]!;
  const per = c.x[0]!;  // per-image times with --batch
  const rel = relaxed ? ` ${tr.toFixed(1)} | ${(tb / tr).toFixed(2)}× | ${((2 * macs) / (tr * 1e3)).toFixed(1)} |` : '';
  const img = BATCH_SIZES.length ? ` ${(tb / per).toFixed(2)} | ${(ta / per).toFixed(2)} |` : '';
  lines.push(`| ${c.model} | [${c.x}] | [${c.w}] | ${c.p.strides[0]}, ${c.p.pads[0]} | ${after.convPath?.(c.x, c.w, c.p)} | ${(macs / 1e6).toFixed(2)} M | ${tb.toFixed(1)} | ${ta.toFixed(1)} |${img} ${(tb / ta).toFixed(2)}× | ${((2 * macs) / (ta * 1e3)).toFixed(1)} |${rel}`);
}
const md = lines.join('\n');
process.stdout.write(`${md}\n`);
if (OUT) writeFileSync(OUT, `${md}\n`);
