// The int8-full path on the ATmega2560 (ports/avr/qavr.c, core/ops/qexact.c; FL_Q_STORE_LISTS):
//  - qexact.c built for the host: its input quantisation and output dequantisation, which use
//    binary32 and integers only (avr-gcc's double is 32 bits), against the workstation's own
//    binary64 code (runtime/int8full quantizeValue, Int8Session.dequantize's Float32Array store)
//    on 60,000 inputs: u8 pixels / 255, values a few ulps from a rounding tie, random bit patterns
//    (NaN, infinities, subnormals), subnormal inputs against the smallest scales;
//  - qrequant.h built for the host against multiplyByQuantizedMultiplier on 60,000 accumulators;
//  - through `hil --emulate avr` (simavr), the device's int8 outputs equal to the integer
//    reference's (Int8Session.runInt8) on every image, so its logits equal the workstation's:
//    a small random conv model for 28x28 images with every kernel of qavr.c (conv2d with strides,
//    pads, a dilated depthwise one, svd_conv2d, tucker2_conv2d, cp_conv2d, max / avg pool, relu,
//    flatten, dense), calibrated on Fashion-MNIST; and FC-2 svd x20 int8-full.
// Takes about 60 s (most of it simavr; the FC-2 conversion is cached under tmp/ and shared with
// int8full.test.ts).
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { multiplyByQuantizedMultiplier, quantizeValue } from '../../../runtime/int8full/requant.js';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { inferShapes } from '../../../runtime/plan/shapes.js';
import { writeFlm } from '../../../converter/writer.js';
import { quantizeInt8Full } from '../../../converter/int8Full.js';
import { REPO_ROOT, needFashion, needFixture, needPath } from '../../support/require.js';
import { TMP, fashion, randomTensor, seededRandom } from './support.js';

const FW = resolve(REPO_ROOT, 'firmware-bridge/firmware');

/** The cases as [x (binary32 bits), scale (binary64 bits), zero point, d]. */
function cases(n: number): Array<[number, bigint, number, number]> {
  const lcg = seededRandom(4242);
  const rnd = () => (lcg() + 1) / 2; // [0, 1)
  const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
  const f64 = new Float64Array(1), u64 = new BigUint64Array(f64.buffer);
  const out: Array<[number, bigint, number, number]> = [];
  while (out.length < n) {
    const kind = out.length % 5;
    let s = (1 + rnd()) * 2 ** (Math.floor(rnd() * 40) - 30);
    let x: number;
    if (kind === 0) { x = Math.fround(Math.floor(rnd() * 256) / 255); if (rnd() < 0.5) s = 1 / 255; }
    else if (kind === 1) { // binary32 x a few ulps from (m + 1/2) s
      f32[0] = (Math.floor(rnd() * 300) + 0.5) * s;
      u32[0] = u32[0]! + Math.floor(rnd() * 5) - 2;
      x = rnd() < 0.5 ? f32[0]! : -f32[0]!;
    } else if (kind === 2) { // the scale a few ulps from x / (m + 1/2)
      x = Math.fround(Math.floor(rnd() * 100000) / 997 + 0.001);
      f64[0] = x / (Math.floor(rnd() * 300) + 0.5);
      u64[0] = u64[0]! + BigInt(Math.floor(rnd() * 5) - 2);
      s = f64[0]!;
      if (rnd() < 0.5) x = -x;
    } else if (kind === 3) { u32[0] = Math.floor(rnd() * 2 ** 32); x = f32[0]!; }
    else { u32[0] = Math.floor(rnd() * 0x800000); x = f32[0]!; s = (1 + rnd()) * 2 ** (-126 + Math.floor(rnd() * 3)); }
    f32[0] = x;
    f64[0] = s;
    out.push([u32[0]!, u64[0]!, Math.floor(rnd() * 256) - 128, Math.floor(rnd() * 511) - 255]);
  }
  return out;
}

t.test('qexact.c on the host: quantisation and dequantisation equal to the binary64 reference', async (t) => {
  if (!needPath(t, '/usr/bin/gcc', 'gcc (Debian package gcc)')) return;
  const dir = mkdtempSync(join(tmpdir(), 'fl-qexact-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const all = cases(60000);
  writeFileSync(join(dir, 'cases.txt'), all.map(([x, s, zp, d]) => `${x} ${s} ${zp} ${d}`).join('\n') + '\n');
  writeFileSync(join(dir, 'drv.c'), `#include <stdio.h>
#include <string.h>
#include <inttypes.h>
#include "qexact.h"
int main(void) {
  unsigned long xb; unsigned long long sb; int zp, d;
  while (scanf("%lu %llu %d %d", &xb, &sb, &zp, &d) == 4) {
    float x, s32, y; double s; uint32_t x32 = (uint32_t)xb, yb; uint64_t s64 = (uint64_t)sb;
    memcpy(&x, &x32, 4); memcpy(&s, &s64, 8); s32 = (float)s;
    y = fl_qx_dequantize(d, s64); memcpy(&yb, &y, 4);
    printf("%d %" PRIu32 "\\n", fl_qx_quantize(x, s32, s64, zp), yb);
  }
  return 0;
}
`);
  const cc = spawnSync('gcc', ['-O2', '-Wall', '-Wextra', '-I', resolve(FW, 'core/ops'), '-o', join(dir, 'drv'), join(dir, 'drv.c'), resolve(FW, 'core/ops/qexact.c')], { encoding: 'utf8' });
  t.equal(cc.status, 0, `gcc: ${cc.stderr}`);
  if (cc.status !== 0) return;
  const r = spawnSync('sh', ['-c', `"${join(dir, 'drv')}" < "${join(dir, 'cases.txt')}"`], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const lines = r.stdout.trim().split('\n');
  t.equal(lines.length, all.length, 'one answer per case');
  const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer), f64 = new Float64Array(1), u64 = new BigUint64Array(f64.buffer);
  const y32 = new Float32Array(1), yu = new Uint32Array(y32.buffer);
  let badQ = 0, badD = 0, ties = 0, firstQ = '', firstD = '';
  for (let i = 0; i < all.length; i++) {
    const [xb, sb, zp, d] = all[i]!;
    u32[0] = xb; u64[0] = sb;
    const x = f32[0]!, s = f64[0]!;
    if (!(s >= 1.17549435e-38 && s <= 3.4e38)) continue;
    const [q, yb] = lines[i]!.split(' ').map(Number) as [number, number];
    const v = Math.abs(x / s);
    if (Math.abs(v - Math.floor(v) - 0.5) < 1e-9) ties++;
    if (q !== quantizeValue(x, s, zp)) { badQ++; firstQ ||= `x ${x} scale ${s} zp ${zp}: ${q}, the reference ${quantizeValue(x, s, zp)}`; }
    y32[0] = d * s; // Int8Session.dequantize: (q - zp) * scale in binary64, stored in a Float32Array
    if (yu[0] !== yb) { badD++; firstD ||= `d ${d} scale ${s}: bits ${yb}, the reference ${yu[0]}`; }
  }
  t.ok(ties > 5000, `${ties} quotients within 1e-9 of a rounding tie among the cases`);
  t.equal(badQ, 0, `quantisation equal to quantizeValue on every case ${firstQ}`);
  t.equal(badD, 0, `dequantisation equal to the reference's binary32 on every case ${firstD}`);
});

t.test('qrequant.h on the host: the requantisation equal to multiplyByQuantizedMultiplier', async (t) => {
  if (!needPath(t, '/usr/bin/gcc', 'gcc (Debian package gcc)')) return;
  const dir = mkdtempSync(join(tmpdir(), 'fl-qrequant-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lcg = seededRandom(77);
  const rnd = () => (lcg() + 1) / 2;
  const all: Array<[number, number, number]> = [];
  const edges = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 30, -(2 ** 30), 12345, -12345];
  for (const acc of edges) for (const mult of [0, 1, 2 ** 30, 2 ** 31 - 1, 1518500250]) for (const shift of [-31, -20, -9, -1, 0, 1, 5]) all.push([acc, mult, shift]);
  while (all.length < 60000) {
    const shift = Math.floor(rnd() * 40) - 31;
    const mult = Math.floor(2 ** 30 + rnd() * 2 ** 30); // what quantizeMultiplier gives: [2^30, 2^31)
    // accumulators of every size; with a left shift, small enough that acc 2^shift fits int32 (as the converter keeps them)
    const bits = shift > 0 ? 31 - shift : Math.floor(rnd() * 32);
    let acc = Math.floor((rnd() * 2 - 1) * 2 ** bits);
    if (rnd() < 0.2) acc = Math.round(acc / 2 ** Math.max(0, -shift - 1)) * 2 ** Math.max(0, -shift - 1); // ties of the rounding division
    all.push([acc | 0, mult, shift]);
  }
  writeFileSync(join(dir, 'cases.txt'), all.map((c) => c.join(' ')).join('\n') + '\n');
  writeFileSync(join(dir, 'drv.c'), `#include <stdio.h>
#include "qrequant.h"
int main(void) {
  long acc, mult; int sh;
  while (scanf("%ld %ld %d", &acc, &mult, &sh) == 3) printf("%ld\\n", (long)fl_qx_mbqm((uint32_t)(int32_t)acc, (int32_t)mult, sh));
  return 0;
}
`);
  const cc = spawnSync('gcc', ['-O2', '-Wall', '-Wextra', '-I', resolve(FW, 'ports/avr'), '-o', join(dir, 'drv'), join(dir, 'drv.c')], { encoding: 'utf8' });
  t.equal(cc.status, 0, `gcc: ${cc.stderr}`);
  if (cc.status !== 0) return;
  const r = spawnSync('sh', ['-c', `"${join(dir, 'drv')}" < "${join(dir, 'cases.txt')}"`], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const got = r.stdout.trim().split('\n').map(Number);
  t.equal(got.length, all.length, 'one answer per case');
  let bad = 0, first = '';
  for (let i = 0; i < all.length; i++) {
    const [acc, mult, shift] = all[i]!;
    const want = multiplyByQuantizedMultiplier(acc, mult, shift);
    if (got[i] !== want) { bad++; first ||= `acc ${acc} mult ${mult} shift ${shift}: ${got[i]}, the reference ${want}`; }
  }
  t.equal(bad, 0, `equal on all ${all.length} cases ${first}`);
});

/** `hil --emulate avr --json` on an int8-full file: the checks every AVR run shares. */
function hilAvr(t: Test, file: string, limit: number): void {
  const r = spawnSync(process.execPath, [resolve(REPO_ROOT, 'bin/factorlite.js'), 'hil', '--model', file, '--emulate', 'avr', '--data', 'fashion-mnist', '--limit', String(limit), '--json'], { encoding: 'utf8', timeout: 300_000 });
  t.equal(r.status, 0, r.stderr.trim().split('\n').at(-1));
  const rep = JSON.parse(r.stdout) as { fits: boolean; why: string | null; results: null | { answered: number; agreement: number; maxAbsLogitError: number; cycles: { p50: number } | null; int8Full?: { exact: number } } };
  t.ok(rep.fits, `fits the 8 KB ATmega2560 (${rep.why ?? ''})`);
  if (!rep.results) return void t.fail('nothing was run');
  t.equal(rep.results.answered, limit, 'every sample answered');
  t.equal(rep.results.int8Full?.exact, 1, 'every sample\'s int8 outputs are Int8Session.runInt8\'s');
  t.equal(rep.results.maxAbsLogitError, 0, 'the same f32 logits as Int8Session.run');
  t.equal(rep.results.agreement, 1, 'the same class on every image');
  t.ok(rep.results.cycles && rep.results.cycles.p50 > 0, `cycles counted (${rep.results.cycles?.p50})`);
}

const needAvr = (t: Test) => needPath(t, '/usr/bin/avr-gcc', 'avr-gcc (Debian package gcc-avr)')
  && needPath(t, '/usr/include/simavr/sim_avr.h', 'simavr headers (Debian package libsimavr-dev)');

// Two small conv models for 28x28 images (the node tables of one with every kernel would not fit
// the 4 KB arena), random weights, calibrated on Fashion-MNIST.
const convModels: Array<[string, (tensor: ReturnType<typeof randomTensor>) => { nodes: GraphNode[]; tensors: StoredTensor[] }]> = [
  ['conv2d with strides and pads (relu folded), max pool, svd_conv2d, a dilated depthwise conv2d', (tensor) => ({
    nodes: [
      node('c1', 'conv2d', 'x', conv([2, 2], [1, 1, 1, 1]), { weight: 'c1.w', bias: 'c1.b' }), // [2, 14, 14]
      node('m1', 'max_pool', 'c1.out', { kernel: [2, 2], strides: [2, 2] }), // [2, 7, 7]
      node('s1', 'svd_conv2d', 'm1.out', conv([1, 1], [1, 1, 1, 1]), { v: 's1.v', u: 's1.u', bias: 's1.b' }), // [4, 7, 7]
      node('c2', 'conv2d', 's1.out', conv([1, 1], [1, 2, 1, 2], [1, 2], 4), { weight: 'c2.w' }),
      node('f', 'flatten', 'c2.out', { axis: 1 }),
    ],
    tensors: [tensor('c1.w', [2, 1, 3, 3]), tensor('c1.b', [2], 0.2), tensor('s1.v', [3, 2, 3, 3]), tensor('s1.u', [4, 3]), tensor('s1.b', [4], 0.2),
      tensor('c2.w', [4, 1, 3, 3])],
  })],
  ['tucker2_conv2d, cp_conv2d, avg pool', (tensor) => ({
    nodes: [
      node('c1', 'conv2d', 'x', conv([4, 4], [0, 0, 0, 0]), { weight: 'c1.w' }), // [3, 7, 7]
      node('t1', 'tucker2_conv2d', 'c1.out', conv([2, 2], [1, 0, 1, 1]), { u_in: 't1.ui', core: 't1.c', u_out: 't1.uo' }),
      node('k1', 'cp_conv2d', 't1.out', conv([1, 2], [2, 1, 0, 1], [2, 1]), { a_in: 'k1.ai', k_h: 'k1.kh', k_w: 'k1.kw', a_out: 'k1.ao' }),
      node('a1', 'avg_pool', 'k1.out', { kernel: [2, 2], strides: [1, 1], pads: [1, 0, 0, 1], count_include_pad: 0 }),
      node('f', 'flatten', 'a1.out', { axis: 1 }),
    ],
    tensors: [tensor('c1.w', [3, 1, 4, 4]), tensor('t1.ui', [4, 3]), tensor('t1.c', [5, 4, 3, 3]), tensor('t1.uo', [6, 5]),
      tensor('k1.ai', [5, 6]), tensor('k1.kh', [5, 3]), tensor('k1.kw', [5, 3]), tensor('k1.ao', [6, 5])],
  })],
];
function node(name: string, op: GraphNode['op'], input: string, attrs: GraphNode['attrs'] = {}, weights: Record<string, string> = {}): GraphNode {
  return { name, op, inputs: [input], outputs: [`${name}.out`], attrs, weights };
}
function conv(s: number[], p: number[], d = [1, 1], group = 1) { return { strides: s, pads: p, dilations: d, group }; }

convModels.forEach(([what, build], i) => t.test(`hil --emulate avr on a small conv model (${what}) and a dense head: exact`, async (t) => {
  if (!needAvr(t) || !needFashion(t)) return;
  const tensor = randomTensor(seededRandom(31 + i));
  const { nodes, tensors } = build(tensor);
  let m: Model = { graph: { inputs: [{ name: 'x', shape: [-1, 1, 28, 28] }], outputs: ['f.out'], nodes }, tensors: new Map(tensors.map((x) => [x.name, x])), metadata: {} };
  const F = inferShapes(m, 1).values.get('f.out')![1]!;
  m = { ...m, graph: { ...m.graph, nodes: [...nodes, node('d', 'dense', 'f.out', {}, { weight: 'd.w', bias: 'd.b' })], outputs: ['d.out'] },
    tensors: new Map([...m.tensors, ['d.w', tensor('d.w', [10, F])], ['d.b', tensor('d.b', [10], 0.2)]]) };
  mkdirSync(TMP, { recursive: true });
  const file = resolve(TMP, `avr_convs${i}_int8full.flm`);
  writeFileSync(file, writeFlm(quantizeInt8Full(m, { shape: [64, 1, 28, 28], data: fashion(64).f32 })));
  hilAvr(t, file, 3);
}));

t.test('hil --emulate avr on a dense layer over 784 pixels with positive weights (sum w past int16): exact', async (t) => {
  if (!needAvr(t) || !needFashion(t)) return;
  const tensor = randomTensor(seededRandom(5));
  const w = tensor('d.w', [10, 784]);
  const wd = w.data as Float32Array;
  for (let i = 0; i < wd.length; i++) wd[i] = Math.abs(wd[i]!) + 0.1; // a row's int8 weights sum to about 784 * 80
  const m: Model = {
    graph: { inputs: [{ name: 'x', shape: [-1, 1, 28, 28] }], outputs: ['d.out'], nodes: [node('f', 'flatten', 'x', { axis: 1 }), node('d', 'dense', 'f.out', {}, { weight: 'd.w', bias: 'd.b' })] },
    tensors: new Map([['d.w', w], ['d.b', tensor('d.b', [10], 0.2)]]), metadata: {},
  };
  mkdirSync(TMP, { recursive: true });
  const file = resolve(TMP, 'avr_dense784_int8full.flm');
  writeFileSync(file, writeFlm(quantizeInt8Full(m, { shape: [64, 1, 28, 28], data: fashion(64).f32 })));
  hilAvr(t, file, 3);
});

t.test('hil --emulate avr on FC-2 svd x20 int8-full: the int8 outputs of the integer reference, exactly', async (t) => {
  if (!needAvr(t)) return;
  const src = needFixture(t, 'mlp_fashion.onnx');
  if (!src || !needFashion(t)) return;
  mkdirSync(TMP, { recursive: true });
  const args = ['--method', 'svd', '--ratio', '20'];
  const file = resolve(TMP, `mlp_fashion_${args.join('_')}_int8full.flm`); // the name int8full.test.ts caches it under
  if (!existsSync(file)) {
    const c = spawnSync(process.execPath, [resolve(REPO_ROOT, 'bin/factorlite.js'), 'convert', src, '-o', file, ...args, '--quant', 'int8-full', '--calib', 'fashion-mnist'], { encoding: 'utf8' });
    if (c.status !== 0) return void t.fail(`convert: ${c.stderr}`);
  }
  hilAvr(t, file, 4);
});
