// The firmware's int8-full path (core/ops/qparams.c, qkernels.c) against its definition, the Node
// runtime's reference integer kernels (runtime/int8full/, Int8Session): graphs made to walk every
// integer kernel and stage (dense; conv2d with pads, strides, dilations, groups, depthwise;
// svd_dense, svd_conv2d, tucker2_conv2d and cp_conv2d as their stages; max / avg (both counts) /
// global-avg pools with pads and ceil mode; relu folded into its producer and relu left as a node;
// flatten, reshape and identity, of the external input too), quantised by the converter
// (quantizeInt8Full on calibration data), then LeNet-5 x10 and FC-2 svd x20 converted by the CLI
// from the fixtures. Checks: the file carries an "mcu" plan; the host build, the host's portable
// loops (host-ref) and the Cortex-M4 build under QEMU give exactly the Node runtime's outputs (the
// dequantised f32 of the same int8, which the test decodes and compares to runInt8 too); hostile
// int8-full metadata is refused at prepare, never run.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { planModel, writeFlm } from '../../../converter/writer.js';
import { quantizeInt8Full } from '../../../converter/int8Full.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { inferShapes } from '../../../runtime/plan/shapes.js';
import { Int8Session } from '../../../runtime/int8full/session.js';
import { INT8_FULL_KEY } from '../../../runtime/int8full/params.js';
import { REPO_ROOT, needFashion, needFixture } from '../../support/require.js';
import { TMP, buildPort, fashion, openDevice, seededRandom, randomTensor } from './support.js';

const rnd = seededRandom(9001);
const tensor = randomTensor(rnd);
function node(name: string, op: GraphNode['op'], input: string, attrs: GraphNode['attrs'] = {}, weights: Record<string, string> = {}): GraphNode {
  return { name, op, inputs: [input], outputs: [`${name}.out`], attrs, weights };
}
const conv = (s: number[], p: number[], d = [1, 1], group = 1) => ({ strides: s, pads: p, dilations: d, group });

/** An f32 model; the last node's input features are found by shape inference when `tail` needs them. */
function model(input: number[], nodes: GraphNode[], tensors: StoredTensor[], tail?: (features: number) => { nodes: GraphNode[]; tensors: StoredTensor[] }): Model {
  const m: Model = { graph: { inputs: [{ name: 'x', shape: [-1, ...input.slice(1)] }], outputs: [`${nodes[nodes.length - 1]!.name}.out`], nodes }, tensors: new Map(tensors.map((x) => [x.name, x])), metadata: {} };
  if (!tail) return m;
  const shape = inferShapes(m, 1).values.get(m.graph.outputs[0]!)!;
  const more = tail(shape.slice(1).reduce((a, b) => a * b, 1));
  const all = [...nodes, ...more.nodes];
  return { ...m, graph: { ...m.graph, nodes: all, outputs: [`${all[all.length - 1]!.name}.out`] }, tensors: new Map([...m.tensors, ...more.tensors.map((x) => [x.name, x] as const)]) };
}

interface Case { name: string; input: number[]; model: Model }

function cases(): Case[] {
  return [
    {
      // conv2d: pads, strides, dilations, groups, depthwise; relu folded; max pool (pads, ceil
      // mode) then a relu that stays a node; global-avg pool, flatten, dense
      name: 'convs',
      input: [1, 3, 11, 13],
      model: model([1, 3, 11, 13], [
        node('c1', 'conv2d', 'x', conv([1, 1], [1, 1, 1, 1]), { weight: 'c1.w', bias: 'c1.b' }),
        node('r1', 'relu', 'c1.out'),
        node('c2', 'conv2d', 'r1.out', conv([2, 1], [0, 1, 1, 0], [1, 2], 2), { weight: 'c2.w', bias: 'c2.b' }),
        node('c3', 'conv2d', 'c2.out', conv([1, 1], [1, 1, 1, 1], [1, 1], 8), { weight: 'c3.w', bias: 'c3.b' }),
        node('p1', 'max_pool', 'c3.out', { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 1, 1], ceil_mode: 1 }),
        node('r2', 'relu', 'p1.out'),
        node('g', 'global_avg_pool', 'r2.out'),
        node('f', 'flatten', 'g.out', { axis: 1 }),
        node('d', 'dense', 'f.out', {}, { weight: 'd.w', bias: 'd.b' }),
      ], [
        tensor('c1.w', [8, 3, 3, 3]), tensor('c1.b', [8], 0.2), tensor('c2.w', [8, 4, 3, 3]), tensor('c2.b', [8], 0.2),
        tensor('c3.w', [8, 1, 3, 3]), tensor('c3.b', [8], 0.2), tensor('d.w', [5, 8]), tensor('d.b', [5], 0.2),
      ]),
    },
    {
      // the factor chains as stages: svd_conv2d (relu folded), tucker2_conv2d (strides, pads),
      // cp_conv2d (its vertical and horizontal depthwise halves with different strides, pads and
      // dilations), avg pool without the pads in the count, flatten, svd_dense (relu folded),
      // reshape, identity, dense
      name: 'factors',
      input: [1, 4, 12, 10],
      model: model([1, 4, 12, 10], [
        node('s1', 'svd_conv2d', 'x', conv([1, 1], [1, 1, 1, 1]), { v: 's1.v', u: 's1.u', bias: 's1.b' }),
        node('r1', 'relu', 's1.out'),
        node('t1', 'tucker2_conv2d', 'r1.out', conv([2, 2], [1, 0, 1, 1]), { u_in: 't1.ui', core: 't1.c', u_out: 't1.uo', bias: 't1.b' }),
        node('k1', 'cp_conv2d', 't1.out', conv([1, 2], [2, 1, 0, 1], [2, 1]), { a_in: 'k1.ai', k_h: 'k1.kh', k_w: 'k1.kw', a_out: 'k1.ao', bias: 'k1.b' }),
        node('a1', 'avg_pool', 'k1.out', { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: 0 }),
        node('f', 'flatten', 'a1.out', { axis: 1 }),
      ], [
        tensor('s1.v', [3, 4, 3, 3]), tensor('s1.u', [6, 3]), tensor('s1.b', [6], 0.2),
        tensor('t1.ui', [4, 6]), tensor('t1.c', [5, 4, 3, 3]), tensor('t1.uo', [7, 5]), tensor('t1.b', [7], 0.2),
        tensor('k1.ai', [5, 7]), tensor('k1.kh', [5, 3]), tensor('k1.kw', [5, 3]), tensor('k1.ao', [6, 5]), tensor('k1.b', [6], 0.2),
      ], (F) => ({
        nodes: [
          node('sd', 'svd_dense', 'f.out', {}, { v: 'sd.v', u: 'sd.u', bias: 'sd.b' }),
          node('r2', 'relu', 'sd.out'),
          node('rs', 'reshape', 'r2.out', { shape: [-1, 9] }),
          node('id', 'identity', 'rs.out'),
          node('d', 'dense', 'id.out', {}, { weight: 'd.w' }),
        ],
        tensors: [tensor('sd.v', [4, F]), tensor('sd.u', [9, 4]), tensor('sd.b', [9], 0.2), tensor('d.w', [3, 9])],
      })),
    },
    {
      // avg pool with the pads in the count (uneven pads), a dilated max pool, a reshape to rows
      name: 'pools',
      input: [1, 3, 9, 9],
      model: model([1, 3, 9, 9], [
        node('c1', 'conv2d', 'x', conv([1, 1], [0, 0, 0, 0]), { weight: 'c1.w', bias: 'c1.b' }),
        node('a1', 'avg_pool', 'c1.out', { kernel: [2, 3], strides: [2, 2], pads: [1, 1, 0, 1], count_include_pad: 1 }),
        node('m1', 'max_pool', 'a1.out', { kernel: [2, 2], strides: [1, 1], dilations: [2, 2] }),
        node('rs', 'reshape', 'm1.out', { shape: [0, -1] }),
      ], [tensor('c1.w', [4, 3, 1, 1]), tensor('c1.b', [4], 0.2)], (F) => ({
        nodes: [node('d', 'dense', 'rs.out', {}, { weight: 'd.w', bias: 'd.b' })],
        tensors: [tensor('d.w', [4, F]), tensor('d.b', [4], 0.2)],
      })),
    },
    {
      // long reductions for the blocked kernels' other paths: a conv with K = 64*3*3 = 576 (one
      // column at a time), one with K = 120*3*3 = 1080 (past the column space: the row loops), odd
      // pixel and channel counts; a dense with K = 1125 (the plain loop)
      name: 'long',
      input: [1, 64, 5, 3],
      model: model([1, 64, 5, 3], [
        node('c1', 'conv2d', 'x', conv([1, 1], [1, 1, 1, 1]), { weight: 'c1.w', bias: 'c1.b' }),
        node('c2', 'conv2d', 'c1.out', conv([1, 1], [1, 1, 1, 1]), { weight: 'c2.w', bias: 'c2.b' }),
        node('f', 'flatten', 'c2.out', { axis: 1 }),
        node('d', 'dense', 'f.out', {}, { weight: 'd.w', bias: 'd.b' }),
      ], [
        tensor('c1.w', [120, 64, 3, 3], 0.1), tensor('c1.b', [120], 0.2), tensor('c2.w', [75, 120, 3, 3], 0.1), tensor('c2.b', [75], 0.2),
        tensor('d.w', [3, 1125], 0.1), tensor('d.b', [3], 0.2),
      ]),
    },
    {
      // FC-2's shape: a flatten of the external input (read where the quantised input lies),
      // svd_dense with its relu folded, dense
      name: 'mlp',
      input: [1, 1, 6, 6],
      model: model([1, 1, 6, 6], [
        node('f', 'flatten', 'x', { axis: 1 }),
        node('sd', 'svd_dense', 'f.out', {}, { v: 'sd.v', u: 'sd.u', bias: 'sd.b' }),
        node('r', 'relu', 'sd.out'),
        node('d', 'dense', 'r.out', {}, { weight: 'd.w', bias: 'd.b' }),
      ], [tensor('sd.v', [5, 36]), tensor('sd.u', [20, 5]), tensor('sd.b', [20], 0.2), tensor('d.w', [4, 20]), tensor('d.b', [4], 0.2)]),
    },
  ];
}

/** n random samples in [-1, 1], the last one scaled by 8 (the input quantisation saturates). */
function inputs(c: Case, n: number): Float32Array {
  const per = c.input.slice(1).reduce((a, b) => a * b, 1);
  const x = new Float32Array(n * per);
  for (let i = 0; i < x.length; i++) x[i] = rnd() * (i >= (n - 1) * per ? 8 : 1);
  return x;
}

/** The int8-full file of a case: calibrated on 64 random samples, with the writer's plans. */
function quantised(c: Case): Uint8Array {
  const per = c.input.slice(1).reduce((a, b) => a * b, 1);
  const calib = new Float32Array(64 * per);
  for (let i = 0; i < calib.length; i++) calib[i] = rnd();
  return writeFlm(quantizeInt8Full(c.model, { shape: [64, ...c.input.slice(1)], data: calib }));
}

/** The Node definition: dequantised outputs and the int8 outputs, sample by sample. */
function definition(bytes: Uint8Array, x: Float32Array, n: number): { y: Float32Array; q: Int8Array } {
  const m = readFlm(bytes);
  const s = Int8Session.create(m);
  const shape = [n, ...m.graph.inputs[0]!.shape.slice(1)];
  const y = s.runBatch({ shape, data: x }).data;
  const q = s.runInt8(s.quantizeInput({ shape, data: x }))[s.outputNames[0]!]!.data;
  return { y, q };
}

/** The device's f32 outputs decoded to the int8 they dequantise (exact: q -> f32 is one to one). */
function decode(bytes: Uint8Array, y: Float32Array): Int8Array {
  const m = readFlm(bytes);
  const [scale, zp] = (m.metadata[INT8_FULL_KEY] as { values: Record<string, [number, number]> }).values[m.graph.outputs[0]!]!;
  return Int8Array.from(y, (v) => Math.round(v / scale) + zp);
}

function runHost(bin: string, file: string, x: Float32Array, env: Record<string, string> = {}): Float32Array | string {
  const inF = `${file}.in`;
  const outF = `${file}.out`;
  writeFileSync(inF, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  const r = spawnSync(bin, ['--run', file, inF, outF], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) return r.stderr.trim();
  const b = readFileSync(outF);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

const same = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.from(a).every((v, i) => Object.is(v, b[i]));

function checkHost(t: Test, bins: Record<string, string>, what: string, bytes: Uint8Array, file: string, x: Float32Array, n: number): void {
  const want = definition(bytes, x, n);
  for (const [build, bin] of Object.entries(bins)) {
    const y = runHost(bin, file, x);
    if (typeof y === 'string') {
      t.fail(`${what} (${build}): fl-host --run failed: ${y}`);
      continue;
    }
    t.ok(same(y, want.y), `${what} (${build}): the device's ${y.length} outputs are the Node runtime's, float for float`);
    t.ok(same(decode(bytes, y), want.q), `${what} (${build}): the same int8 outputs as Int8Session.runInt8`);
  }
}

t.test('host: every integer kernel and stage bit for bit with the Node reference', async (t) => {
  const fast = buildPort(t, 'host');
  const ref = fast && buildPort(t, 'host-ref');
  if (!fast || !ref) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  for (const c of cases()) {
    const bytes = quantised(c);
    const plan = readFlm(bytes).memoryPlan?.plans.find((p) => p.profile === 'mcu');
    t.ok(plan, `${c.name}: the int8-full file has an mcu plan`);
    const file = resolve(TMP, `int8full-${c.name}.flm`);
    writeFileSync(file, bytes);
    checkHost(t, { host: fast, 'host-ref': ref }, c.name, bytes, file, inputs(c, 4), 4);
  }
});

t.test('host: hostile int8-full metadata is refused at prepare', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  const c = cases()[1]!;
  const good = readFlm(quantised(c));
  type Q = { values: Record<string, [number, number]>; nodes: Record<string, Array<Record<string, unknown>>> };
  const mutations: Array<[string, (q: Q) => void]> = [
    ['a stage with one mult too few', (q) => { (q.nodes['k1']![2]!['mult'] as number[]).pop(); }],
    ['a shift out of range', (q) => { (q.nodes['t1']![1]!['shift'] as number[])[0] = 31; }],
    ['a stage missing', (q) => { q.nodes['s1']!.pop(); }],
    ['a broken chain (stage in differs from what precedes it)', (q) => { q.nodes['t1']![2]!['in'] = [1, 0]; }],
    ['a zero scale', (q) => { q.values['x'] = [0, 0]; }],
    ['a pool changing the quantisation', (q) => { q.values['a1.out'] = [0.5, 3]; }],
    ['the wrong weight role', (q) => { q.nodes['s1']![0]!['w'] = 'u'; }],
    ['a clamp min above max', (q) => { q.nodes['sd']![1]!['min'] = 100; q.nodes['sd']![1]!['max'] = 10; }],
  ];
  for (const [what, mutate] of mutations) {
    const q = structuredClone(good.metadata[INT8_FULL_KEY]) as Q;
    mutate(q);
    const file = resolve(TMP, 'int8full-hostile.flm');
    writeFileSync(file, writeFlm({ ...good, metadata: { ...good.metadata, [INT8_FULL_KEY]: q } }, { memoryPlan: 'keep' }));
    const r = spawnSync(bin, ['--check', file], { encoding: 'utf8' });
    t.equal(r.status, 2, `${what}: refused`);
    t.match(r.stderr, /FLM_BAD_METADATA|MODEL_INVALID/, `${what}: ${r.stderr.trim()}`);
  }
});

/** factorlite convert of a fixture to int8-full (cached under tmp/). */
function convertFull(t: Test, fixture: string, args: string[]): string | undefined {
  const src = needFixture(t, fixture);
  if (!src || !needFashion(t)) return undefined;
  const out = resolve(TMP, `${fixture.replace('.onnx', '')}_${args.join('_')}_int8full.flm`);
  if (!existsSync(out)) {
    const r = spawnSync(process.execPath, [resolve(REPO_ROOT, 'bin/factorlite.js'), 'convert', src, '-o', out, ...args, '--quant', 'int8-full', '--calib', 'fashion-mnist'], { encoding: 'utf8' });
    if (r.status !== 0) return void t.fail(`convert ${fixture} ${args.join(' ')} int8-full: ${r.stderr}`);
  }
  // a cached file's mcu plan may come from an older planner: write it again with the current one
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  const model = readFlm(new Uint8Array(readFileSync(out)));
  const mcu = (m: Model['memoryPlan']) => JSON.stringify(m?.plans.find((p) => p.profile === 'mcu') ?? null);
  if (mcu(model.memoryPlan) !== mcu(planModel(model))) writeFileSync(out, writeFlm(model));
  return out;
}

const REAL: Array<[string, string, string[]]> = [
  ['LeNet-5 x10', 'lenet5_fashion.onnx', ['--ratio', '10']],
  ['FC-2 svd x20', 'mlp_fashion.onnx', ['--method', 'svd', '--ratio', '20']],
];

t.test('host: LeNet-5 x10 and FC-2 svd x20 int8-full on 200 test images, bit for bit', async (t) => {
  const fast = buildPort(t, 'host');
  const ref = fast && buildPort(t, 'host-ref');
  if (!fast || !ref) return;
  mkdirSync(TMP, { recursive: true });
  const n = 200;
  for (const [what, fixture, args] of REAL) {
    const file = convertFull(t, fixture, args);
    if (!file) continue;
    const bytes = new Uint8Array(readFileSync(file));
    t.ok(readFlm(bytes).memoryPlan?.plans.some((p) => p.profile === 'mcu'), `${what}: the int8-full file has an mcu plan`);
    checkHost(t, { host: fast, 'host-ref': ref }, what, bytes, file, fashion(n).f32, n);
  }
});

for (const build of ['cortex-m4', 'cortex-m4-ref'] as const) {
t.test(`${build} under QEMU (${build === 'cortex-m4' ? 'the DSP loops: SXTB16, SMLAD' : 'the portable loops'}): the int8-full kernels bit for bit with the Node reference`, async (t) => {
  const frames = await openDevice(t, build);
  if (!frames) return;
  mkdirSync(TMP, { recursive: true });
  const runs: Array<[string, Uint8Array, Float32Array, number]> = cases().map((c) => [c.name, quantised(c), inputs(c, 2), 2]);
  for (const [what, fixture, args] of REAL) {
    const file = convertFull(t, fixture, args);
    if (file) runs.push([what, new Uint8Array(readFileSync(file)), fashion(3).f32, 3]);
  }
  for (const [what, bytes, x, n] of runs) {
    const end = await frames.upload(bytes);
    t.equal(end.kind, 0x84, `${what}: upload_end accepted ${end.kind === 0x84 ? '' : JSON.stringify(end.body)}`);
    if (end.kind !== 0x84) continue;
    const want = definition(bytes, x, n);
    const per = x.length / n;
    const got = new Float32Array(want.y.length);
    const outPer = want.y.length / n;
    let ok = true;
    for (let k = 0; k < n && ok; k++) {
      const xs = x.slice(k * per, (k + 1) * per);
      const inf = await frames.call(0x05, { id: k + 1, x: new Uint8Array(xs.buffer), dtype: 'f32' }, 120000);
      ok = inf.kind === 0x85;
      t.equal(inf.kind, 0x85, `${what}: infer answered ${inf.kind === 0xff ? JSON.stringify(inf.body) : ''}`);
      if (!ok) break;
      const yb = inf.body['y'] as Uint8Array;
      got.set(new Float32Array(yb.buffer.slice(yb.byteOffset, yb.byteOffset + yb.byteLength)), k * outPer);
    }
    if (!ok) continue;
    t.ok(same(got, want.y), `${what} on ${build}: the Node runtime's outputs, float for float`);
    t.ok(same(decode(bytes, got), want.q), `${what} on ${build}: the same int8 outputs as Int8Session.runInt8`);
  }
});
}

t.test('hil --emulate cortex-m4 on FC-2 svd x20 int8-full: exact agreement, top-1 against f32 activations', async (t) => {
  if (!buildPort(t, 'cortex-m4')) return;
  mkdirSync(TMP, { recursive: true });
  const file = convertFull(t, 'mlp_fashion.onnx', ['--method', 'svd', '--ratio', '20']);
  if (!file) return;
  const limit = 20;
  const r = spawnSync(process.execPath, [resolve(REPO_ROOT, 'bin/factorlite.js'), 'hil', '--model', file, '--emulate', 'cortex-m4', '--data', 'fashion-mnist', '--limit', String(limit), '--timeout', '3000', '--json'], { encoding: 'utf8', timeout: 300_000 });
  t.equal(r.status, 0, r.stderr.trim().split('\n').at(-1));
  const rep = JSON.parse(r.stdout) as { results: { answered: number; agreement: number; maxAbsLogitError: number; int8Full?: { exact: number; f32Agreement: number; f32Accuracy: number | null } } | null };
  if (!rep.results) return void t.fail('nothing was run');
  t.equal(rep.results.answered, limit, 'every sample answered');
  t.equal(rep.results.agreement, 1, 'the same class as the integer reference on every image');
  t.equal(rep.results.maxAbsLogitError, 0, 'the same logits');
  t.equal(rep.results.int8Full?.exact, 1, 'int8-full: every sample\'s int8 outputs are the reference\'s');
  const f = rep.results.int8Full;
  t.ok(f && f.f32Agreement >= 0.9 && f.f32Accuracy !== null, `top-1 against the same file with f32 activations reported (${f?.f32Agreement}, its accuracy ${f?.f32Accuracy})`);
});
