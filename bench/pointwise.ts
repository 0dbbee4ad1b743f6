// The 1x1 convolution over the whole batch as one GEMM (runtime/kernels/wasm/conv1x1.c) against
// the per-image direct kernel it replaces where it pays (conv.c's CONV_1X1_DIRECT, which conv2d
// still runs for 1x1 weights), in one module, on the 1x1 shapes of the bench models' factorised
// graphs and a few around the rule's edges. Each shape: conv1x1 and conv2d on the same operands in
// the module's memory, alternating, CPU time of this process (process.cpuUsage: less disturbed
// than wall time when other jobs share the cores), fastest of --rounds rounds; outputs compared
// bit for bit.
//
//   node --import tsx bench/pointwise.ts [--wasm runtime/kernels/wasm/kernels.wasm] [--rounds 12]
//        [--readme README.md | --no-readme]
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, numberArg } from './lib/args.js';
import { writeBenchResults } from './readme.js';
import { fastestPerCall } from './lib/cpuTime.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const WASM = arg('wasm', join(ROOT, 'runtime/kernels/wasm/kernels.wasm'));
const ROUNDS = numberArg('rounds', '12');
const README = process.argv.includes('--no-readme') ? null : arg('readme', join(ROOT, 'README.md'));

interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  conv1x1(x: number, w: number, bias: number, out: number, N: number, C: number, HW: number, O: number): void;
  conv2d(x: number, w: number, bias: number, out: number, cols: number, N: number, C: number, H: number, W: number, O: number,
    KH: number, KW: number, G: number, sh: number, sw: number, pt: number, pl: number, dh: number, dw: number, OH: number, OW: number): void;
}

/** [what, N, C, H, W, O]. */
const SHAPES: Array<[string, number, number, number, number, number]> = [
  ['LeNet-5 ×10 SVD conv, 42 → 50 on 8×8', 1, 42, 8, 8, 50],
  ['LeNet-5 ×10 SVD conv, 42 → 50 on 8×8', 32, 42, 8, 8, 50],
  ['64 → 64 on 8×8 (ResNet-8 last stage width)', 1, 64, 8, 8, 64],
  ['64 → 64 on 8×8', 32, 64, 8, 8, 64],
  ['64 → 32 on 8×8', 32, 64, 8, 8, 32],
  ['32 → 32 on 4×4', 32, 32, 4, 4, 32],
  ['DS-CNN ×4 SVD conv, 64 → 11 on 25×5 (not taken: 125 pixels)', 32, 64, 25, 5, 11],
  ['DS-CNN ×4 SVD conv, 11 → 64 on 25×5 (not taken)', 32, 11, 25, 5, 64],
  ['16 → 16 on 32×32 (not taken: wide map)', 32, 16, 32, 32, 16],
  ['20 → 20 on 8×8 (not taken: 20 input channels)', 32, 20, 8, 8, 20],
];

const x = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(WASM)), {}).exports as unknown as Exports;
const base = ((x.__heap_base.value as number) + 15) & ~15;
const rows: Array<{ what: string; N: number; C: number; HW: number; O: number; direct_us: number; batch_us: number; ratio: number; bitEqual: boolean }> = [];
const load0 = loadavg();
for (const [what, N, C, H, W, O] of SHAPES) {
  const HW = H * W;
  const nx = N * C * HW, nw = O * C, no = N * O * HW;
  const px = base, pw = px + 4 * nx, pb = pw + 4 * nw, po1 = pb + 4 * O, po2 = po1 + 4 * no, pc = po2 + 4 * no;
  const need = pc + 4096;
  if (x.memory.buffer.byteLength < need) x.memory.grow(Math.ceil((need - x.memory.buffer.byteLength) / 65536));
  const f = new Float32Array(x.memory.buffer);
  for (let i = 0; i < nx + nw + O; i++) f[px / 4 + i] = Math.sin(i * 0.37);
  const fns = [
    () => x.conv2d(px, pw, pb, po1, pc, N, C, H, W, O, 1, 1, 1, 1, 1, 0, 0, 1, 1, H, W),
    () => x.conv1x1(px, pw, pb, po2, N, C, HW, O),
  ];
  const iters = Math.max(3, Math.floor(4e7 / (N * C * HW * O)));
  for (const fn of fns) for (let i = 0; i < 100; i++) fn();
  const best = fastestPerCall(fns, iters, ROUNDS);
  const g = new Float32Array(x.memory.buffer);
  let bitEqual = true;
  for (let i = 0; i < no; i++) if (!Object.is(g[po1 / 4 + i], g[po2 / 4 + i])) bitEqual = false;
  rows.push({ what, N, C, HW, O, direct_us: best[0]! * 1000, batch_us: best[1]! * 1000, ratio: best[1]! / best[0]!, bitEqual });
  process.stderr.write(`${what} batch ${N}: ${(best[0]! * 1000).toFixed(1)} / ${(best[1]! * 1000).toFixed(1)} µs\n`);
}
const load1 = loadavg();
const cmd = `node --import tsx bench/pointwise.ts${ROUNDS === 12 ? '' : ` --rounds ${ROUNDS}`}`;
const md = [
  `${cpus()[0]?.model ?? 'CPU'} (${cpus().length} cores), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, module ${WASM.replace(`${ROOT}/`, '')}; `
  + `CPU time per call, fastest of ${ROUNDS} alternating rounds; load average ${load0.map((v) => v.toFixed(2)).join(' ')} at the start, ${load1.map((v) => v.toFixed(2)).join(' ')} at the end. Made by \`${cmd}\`.`,
  '',
  '| 1x1 convolution | batch | per-image direct (conv2d) µs | conv1x1 µs | conv1x1 / direct | bit-equal |',
  '|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.what} | ${r.N} | ${r.direct_us.toFixed(1)} | ${r.batch_us.toFixed(1)} | ${r.ratio.toFixed(2)} | ${r.bitEqual ? 'yes' : 'no'} |`),
].join('\n');
process.stdout.write(`${md}\n`);
writeBenchResults(join(ROOT, 'bench/results'), 'pointwise', { wasm: WASM, rounds: ROUNDS, loadavg: [load0, load1], rows }, md, README);
