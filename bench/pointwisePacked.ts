// The packed 1x1 kernel (runtime/kernels/wasm/conv1x1.c, pointwise_packed: 8-pixel tiles copied
// contiguous in strips, 4 x 8 register tiles) against the kernels conv1x1 chose before it (the
// per-image direct kernel of conv.c, or conv1x1.c's batch GEMM on 8x8 maps), on the 1x1 shapes of
// ResNet-8 ×4's CP and SVD stages and DS-CNN ×4's pointwise convs, at batch 1 and 32. Two modules
// in one process: conv1x1 of --before (a module from before the packed kernel: whatever it chose)
// and the packed kernel of --wasm by itself (conv1x1_packed, whether or not conv1x1 takes it there);
// calls alternate, CPU time of this process (process.cpuUsage), fastest of --rounds rounds; outputs
// compared bit for bit.
//
//   node --import tsx bench/pointwisePacked.ts --before OLD.wasm [--wasm runtime/kernels/wasm/kernels.wasm]
//        [--rounds 9] [--json] [--out FILE.md]
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, numberArg } from './lib/args.js';
import { fastestPerCall } from './lib/cpuTime.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const WASM = arg('wasm', join(ROOT, 'runtime/kernels/wasm/kernels.wasm'));
const BEFORE = arg('before', '');
const ROUNDS = numberArg('rounds', '9');
const OUT = arg('out', '');
const JSON_OUT = process.argv.includes('--json');
if (!BEFORE) {
  process.stderr.write('pointwisePacked: --before OLD.wasm is required (the module to compare against)\n');
  process.exit(2);
}

interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  conv1x1(x: number, w: number, bias: number, out: number, N: number, C: number, HW: number, O: number): void;
  conv1x1_packed?(x: number, w: number, bias: number, out: number, N: number, C: number, HW: number, O: number): number;
}

/** [what, C, HW, O]; each at batch 1 and 32. */
const SHAPES: Array<[string, number, number, number]> = [
  ['16 → 25 on 32×32', 16, 1024, 25],
  ['25 → 16 on 32×32', 25, 1024, 16],
  ['16 → 30 on 32×32', 16, 1024, 30],
  ['30 → 16 on 32×32', 30, 1024, 16],
  ['16 → 16 on 32×32', 16, 1024, 16],
  ['16 → 40 on 32×32', 16, 1024, 40],
  ['32 → 31 on 16×16', 32, 256, 31],
  ['40 → 32 on 16×16', 40, 256, 32],
  ['32 → 47 on 16×16', 32, 256, 47],
  ['47 → 32 on 16×16', 47, 256, 32],
  ['67 → 64 on 8×8', 67, 64, 64],
  ['64 → 18 on 8×8', 64, 64, 18],
  ['18 → 64 on 8×8', 18, 64, 64],
  ['4 → 64 on 8×8', 4, 64, 64],
  ['64 → 64 on 8×8', 64, 64, 64],
  ['DS-CNN 64 → 64 on 25×5', 64, 125, 64],
  ['DS-CNN ×4 SVD 1 → 64 on 25×5', 1, 125, 64],
  ['DS-CNN ×4 SVD 6 → 64 on 25×5', 6, 125, 64],
  ['DS-CNN ×4 SVD 17 → 64 on 25×5', 17, 125, 64],
];

const load = (file: string): Exports => new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file)), {}).exports as unknown as Exports;
const after = load(WASM);
const before = load(BEFORE);
if (!after.conv1x1_packed) throw new Error(`${WASM} has no conv1x1_packed export`);
interface Row { what: string; N: number; C: number; HW: number; O: number; before_us: number; packed_us: number; ratio: number; gmacs: number; bitEqual: boolean }
const rows: Row[] = [];
const load0 = loadavg();
for (const N of [1, 32]) {
  for (const [what, C, HW, O] of SHAPES) {
    const nx = N * C * HW, nw = O * C, no = N * O * HW;
    const lay = (m: Exports) => {
      const px = ((m.__heap_base.value as number) + 15) & ~15;
      const pw = px + 4 * nx, pb = pw + 4 * nw, po = pb + 4 * (O + 4);
      const need = po + 4 * no + 64;
      if (m.memory.buffer.byteLength < need) m.memory.grow(Math.ceil((need - m.memory.buffer.byteLength) / 65536));
      const f = new Float32Array(m.memory.buffer);
      for (let i = 0; i < nx + nw + O; i++) f[px / 4 + i] = Math.sin(i * 0.37);
      return { px, pw, pb, po };
    };
    const a = lay(after), b = lay(before);
    const fns = [
      () => before.conv1x1(b.px, b.pw, b.pb, b.po, N, C, HW, O),
      () => after.conv1x1_packed!(a.px, a.pw, a.pb, a.po, N, C, HW, O),
    ];
    const iters = Math.max(2, Math.floor(2e7 / (N * C * HW * O)));
    for (const fn of fns) for (let i = 0; i < iters; i++) fn();
    const best = fastestPerCall(fns, iters, ROUNDS);
    const ga = new Float32Array(after.memory.buffer, a.po, no), gb = new Float32Array(before.memory.buffer, b.po, no);
    let bitEqual = true;
    for (let i = 0; i < no; i++) if (!Object.is(ga[i], gb[i])) bitEqual = false;
    const row = { what, N, C, HW, O, before_us: best[0]! * 1000, packed_us: best[1]! * 1000, ratio: best[1]! / best[0]!, gmacs: (N * C * HW * O) / (best[1]! * 1e6), bitEqual };
    rows.push(row);
    process.stderr.write(`${what} batch ${N}: before ${row.before_us.toFixed(1)} µs, packed ${row.packed_us.toFixed(1)} µs (${row.ratio.toFixed(2)}), ${row.gmacs.toFixed(1)} G MAC/s\n`);
  }
}
const load1 = loadavg();
const md = [
  `${cpus()[0]?.model ?? 'CPU'} (${cpus().length} cores), Node ${process.version}, ${new Date().toISOString()}; CPU time per call, fastest of ${ROUNDS} alternating rounds; `
  + `load average ${load0.map((v) => v.toFixed(2)).join(' ')} at the start, ${load1.map((v) => v.toFixed(2)).join(' ')} at the end. Made by \`node --import tsx bench/pointwisePacked.ts --before ${BEFORE} --wasm ${WASM.replace(`${ROOT}/`, '')}\`.`,
  '',
  '| 1x1 convolution | batch | conv1x1 before µs | packed µs | packed / before | packed G MAC/s | bit-equal |',
  '|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.what} | ${r.N} | ${r.before_us.toFixed(1)} | ${r.packed_us.toFixed(1)} | ${r.ratio.toFixed(2)} | ${r.gmacs.toFixed(1)} | ${r.bitEqual ? 'yes' : 'no'} |`),
].join('\n');
process.stdout.write(JSON_OUT ? `${JSON.stringify({ rows, loadavg: [load0, load1] })}\n` : `${md}\n`);
if (OUT) writeFileSync(OUT, `${md}\n`);
