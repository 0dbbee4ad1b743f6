// The ATmega2560 (simavr, 16 MHz) numbers of issue 5:
//  1. the firmware's flash and SRAM (build/avr/size.json);
//  2. a small factorised model for 28x28 images (test/firmware-bridge/firmware/avrModel.ts) on the
//     8 KB part through `factorlite hil --emulate avr`: agreement, cycles per inference;
//  3. factorised FC-2 models (accuracy on the workstation, file size) on the same 8 KB part
//     (`firmware.elf`, not the external-SRAM build): the mcu plan streams svd_dense -> relu ->
//     dense (fused values, docs/FORMAT.md section 7), so the 1,024-float hidden vector is never
//     stored; agreement with the workstation on Fashion-MNIST test images, cycles, arena;
//  4. FC-2 svd x20 int8-full (int8 activations, calibrated on Fashion-MNIST) on the int8-full image
//     (firmware-int8.elf, `make avr-int8`; issue 17): cycles per inference against the f32-activation
//     path of the same rank in this run, exactness against the integer reference, top-1 against f32
//     activations, cycles per MAC per layer.
//
//   node --import tsx bench/avr.ts [--limit 20] [--small-limit 10]
//
// Writes bench/out/avr_*.flm, bench/results/avr.json and bench/results/avr.md.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { smallModel } from './lib/avrModel.js';
import { FIXTURES } from './lib/fixtures.js';
import { numberArg } from './lib/args.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const FW = join(ROOT, 'firmware-bridge', 'firmware');
const BUILD = join(FW, 'build', 'avr');
const OUT = join(ROOT, 'bench', 'out');
const RESULTS = join(ROOT, 'bench', 'results');
const log = (s: string) => process.stderr.write(`${s}\n`);

const LIMIT = numberArg('limit', '20');
const SMALL_LIMIT = numberArg('small-limit', '10');

function cli(args: string[]): string {
  log(`factorlite ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'factorlite.js'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`factorlite ${args[0]} failed (${r.status})`);
  return r.stdout;
}

interface HilJson {
  fits: boolean;
  layers?: Array<{ nodes: string[]; ops: string[]; macs: number; cycles: number; perMac: number | null }> | null;
  why: string | null;
  arena: { used: number; available: number } | null;
  upload: { bytes: number; seconds: number; bytesPerSecond: number } | null;
  results: null | {
    answered: number; agreement: number; maxAbsLogitError: number; deviceAccuracy: number; desktopAccuracy: number;
    latencyUs: { p50: number; p95: number }; cycles: { p50: number; p95: number } | null;
    int8Full?: { exact: number; f32Agreement: number; f32Accuracy: number | null };
  };
}

if (!existsSync(FIXTURES)) throw new Error(`the shared fixtures (mlp_fashion.onnx) are not found at ${FIXTURES} (set FACTORLITE_FIXTURES)`);
mkdirSync(OUT, { recursive: true });
mkdirSync(RESULTS, { recursive: true });

log('make avr');
const mk = spawnSync('make', ['-C', FW, 'avr'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
if (mk.status !== 0) throw new Error('make avr failed');
const size = JSON.parse(readFileSync(join(BUILD, 'size.json'), 'utf8')) as Record<string, number | string>;
log('make avr-int8');
const mk8 = spawnSync('make', ['-C', FW, 'avr-int8'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
if (mk8.status !== 0) throw new Error('make avr-int8 failed');
const size8 = JSON.parse(readFileSync(join(BUILD, 'int8', 'size.json'), 'utf8')) as Record<string, number | string>;

const small = join(OUT, 'avr_small28.flm');
writeFileSync(small, smallModel());
const smallRun = JSON.parse(cli(['hil', '--model', small, '--emulate', 'avr', '--data', 'fashion-mnist', '--limit', String(SMALL_LIMIT), '--json'])) as HilJson;

const ranks = join(OUT, 'avr_fc2_ranks16.json');
writeFileSync(ranks, JSON.stringify({ '/f1/Gemm': 16 }));
const fc2Models = [
  { label: 'FC-2 svd ×10 (rank 36), int8 per row', file: join(OUT, 'avr_fc2_x10_i8.flm'), args: ['--method', 'svd', '--ratio', '10', '--quant', 'int8'] },
  { label: 'FC-2 svd ×10 (rank 36), int8 per tensor', file: join(OUT, 'avr_fc2_x10_i8t.flm'), args: ['--method', 'svd', '--ratio', '10', '--quant', 'int8-tensor'] },
  { label: 'FC-2 svd ×20 (rank 16), int8 per row', file: join(OUT, 'avr_fc2_x20_i8.flm'), args: ['--method', 'svd', '--ratio', '20', '--quant', 'int8'] },
];
const fc2 = [];
for (const m of fc2Models) {
  cli(['convert', join(FIXTURES, 'mlp_fashion.onnx'), '-o', m.file, ...m.args, '--json']);
  const acc = (JSON.parse(cli(['eval', m.file, '--data', 'fashion-mnist', '--json'])) as { accuracy: number }).accuracy;
  const hil = JSON.parse(cli(['hil', '--model', m.file, '--emulate', 'avr', '--data', 'fashion-mnist', '--limit', String(LIMIT), '--json'])) as HilJson;
  fc2.push({ label: m.label, bytes: readFileSync(m.file).length, accuracy: acc, hil });
}

// int8-full: `hil --emulate avr` runs it on the int8-full image
const fullFile = join(OUT, 'avr_fc2_x20_int8full.flm');
cli(['convert', join(FIXTURES, 'mlp_fashion.onnx'), '-o', fullFile, '--method', 'svd', '--ratio', '20', '--quant', 'int8-full', '--calib', 'fashion-mnist', '--json']);
const fullAcc = (JSON.parse(cli(['eval', fullFile, '--data', 'fashion-mnist', '--json'])) as { accuracy: number }).accuracy;
const fullHil = JSON.parse(cli(['hil', '--model', fullFile, '--emulate', 'avr', '--data', 'fashion-mnist', '--limit', String(LIMIT), '--json'])) as HilJson;
const full = { label: 'FC-2 svd ×20 (rank 16), int8-full', bytes: readFileSync(fullFile).length, accuracy: fullAcc, hil: fullHil };
const f32Row = fc2.find((f) => f.label.startsWith('FC-2 svd ×20'))!;
const ratio = fullHil.results?.cycles && f32Row.hil.results?.cycles ? fullHil.results.cycles.p50 / f32Row.hil.results.cycles.p50 : null;

const result = {
  date: new Date().toISOString(),
  board: 'atmega2560 (simavr), 16 MHz',
  size,
  small: { model: 'test/firmware-bridge/firmware/avrModel.ts: [1,1,28,28] -> flatten -> svd_dense rank 8 -> 64 -> relu -> dense 10, int8 per row', bytes: readFileSync(small).length, hil: smallRun },
  fc2,
  int8Full: { image: size8, ...full, cyclesVsF32: ratio },
};
writeFileSync(join(RESULTS, 'avr.json'), `${JSON.stringify(result, null, 2)}\n`);

const M = (n: number | undefined) => (n === undefined ? '–' : `${(n / 1e6).toFixed(2)}M`);
const L: string[] = [];
L.push(`ATmega2560 in simavr at 16 MHz, \`node --import tsx bench/avr.ts --limit ${LIMIT} --small-limit ${SMALL_LIMIT}\` (${result.date.slice(0, 10)}).`);
L.push('');
L.push(`Firmware (\`make avr\`): flash ${size['flash']} B (text ${size['text']}, data ${size['data']}, flash strings ${size['flash_strings']}, boot section ${size['bootloader']}); SRAM ${size['sram']} B static of 8192 (arena ${size['arena']}), ${size['stack_left']} B left for the stack; model store ${size['model_store']} B.`);
L.push('');
L.push('| model | bytes | workstation accuracy | 8 KB ATmega2560 | cycles / inference (p50) | at 16 MHz | samples agreeing | max \\|logit error\\| |');
L.push('|---|---|---|---|---|---|---|---|');
const sr = smallRun.results;
L.push(`| small 28×28 factorised MLP (untrained, for agreement) | ${result.small.bytes} | – | runs (arena ${smallRun.arena?.used} of ${smallRun.arena?.available}) | ${M(sr?.cycles?.p50)} | ${sr ? (sr.latencyUs.p50 / 1e6).toFixed(2) : '–'} s | ${sr ? `${Math.round(sr.agreement * sr.answered)}/${sr.answered}` : '–'} | ${sr ? sr.maxAbsLogitError.toExponential(1) : '–'} |`);
for (const f of fc2) {
  const r = f.hil.results;
  L.push(`| ${f.label} | ${f.bytes} | ${(100 * f.accuracy).toFixed(2)}% | ${f.hil.fits ? `runs (arena ${f.hil.arena?.used} of ${f.hil.arena?.available})` : `refused: ${f.hil.why}`} | ${M(r?.cycles?.p50)} | ${r ? (r.latencyUs.p50 / 1e6).toFixed(2) : '–'} s | ${r ? `${Math.round(r.agreement * r.answered)}/${r.answered}` : '–'} | ${r ? r.maxAbsLogitError.toExponential(1) : '–'} |`);
}
{
  const f = full, r = f.hil.results;
  L.push(`| ${f.label} (int8-full image) | ${f.bytes} | ${(100 * f.accuracy).toFixed(2)}% | ${f.hil.fits ? `runs (arena ${f.hil.arena?.used} of ${f.hil.arena?.available})` : `refused: ${f.hil.why}`} | ${M(r?.cycles?.p50)} | ${r ? (r.latencyUs.p50 / 1e6).toFixed(2) : '–'} s | ${r ? `${Math.round(r.agreement * r.answered)}/${r.answered}` : '–'} | ${r ? r.maxAbsLogitError.toExponential(1) : '–'} |`);
}
L.push('');
L.push('FC-2 runs on the internal 8 KB: the "mcu" plan fuses svd_dense -> relu -> dense (docs/FORMAT.md section 7, fused values), which the firmware runs one hidden unit at a time, so the 4 KB hidden vector is never stored (plan arena: 10 logits + the rank-r vector t = v x). Details: firmware-bridge/firmware/ports/avr/README.md.');
{
  const r = full.hil.results;
  L.push('');
  L.push(`**int8-full** (issue 17), FC-2 svd ×20 with int8 activations on the int8-full image (\`make avr-int8\`: flash ${size8['flash']} B, model store ${size8['model_store']} B, ${size8['stack_left']} B left for the stack): **${M(r?.cycles?.p50)} cycles p50, ${ratio === null ? '–' : `${ratio.toFixed(3)}×`} the f32-activation path's ${M(f32Row.hil.results?.cycles?.p50)}** for the same rank (target ≤ 0.2×); int8 outputs equal to the integer reference (Int8Session.runInt8) on ${r?.int8Full ? `${Math.round(r.int8Full.exact * r.answered)}/${r.answered}` : '–'} images, top-1 agreement with f32 activations ${r?.int8Full ? `${(100 * r.int8Full.f32Agreement).toFixed(0)}%` : '–'}. Per layer (the last inference):`);
  L.push('');
  L.push('| layer | op | MACs | cycles | cycles / MAC |');
  L.push('|---|---|---|---|---|');
  for (const l of full.hil.layers ?? []) L.push(`| ${l.nodes.join(', ')} | ${l.ops.join(', ')} | ${l.macs} | ${l.cycles} | ${l.perMac === null ? '–' : l.perMac.toFixed(1)} |`);
  const inLayers = (full.hil.layers ?? []).reduce((a, l) => a + l.cycles, 0);
  L.push('');
  L.push(`The layers sum to ${inLayers} cycles; the rest of the inference is the input's quantisation (784 pixels, binary64-exact in binary32 and integers, ports/avr/qexact.c), and the output's dequantisation (the device's count spans the inference only).`);
}
writeFileSync(join(RESULTS, 'avr.md'), `${L.join('\n')}\n`);
process.stdout.write(`${L.join('\n')}\n`);
