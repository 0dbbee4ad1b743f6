// The firmware's int8-full tables, add, concat and softmax (core/ops/qmisc.c) bit for bit with the
// Node reference (Int8Session, runtime/int8full/kernels.ts): a random graph with every such kind,
// calibrated by the converter (quantizeInt8Full), run by fl-host on the fast and the portable
// loops and by the Cortex-M4 build under QEMU; and hostile parameters refused at prepare.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { writeFlm } from '../../../converter/writer.js';
import { quantizeInt8Full } from '../../../converter/int8Full.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { Int8Session } from '../../../runtime/int8full/session.js';
import { INT8_FULL_KEY } from '../../../runtime/int8full/params.js';
import { TMP, buildPort, openDevice, randomTensor, runBitExact, seededRandom } from './support.js';

if (!getProfile('mcu')) registerProfile(mcuProfile);

const IN = [1, 4, 6, 6];
const PER = 4 * 6 * 6;

function miscModel(): Model {
  const tensor = randomTensor(seededRandom(515));
  const node = (name: string, op: GraphNode['op'], inputs: string[], attrs: GraphNode['attrs'] = {}, weights: Record<string, string> = {}): GraphNode =>
    ({ name, op, inputs, outputs: [`${name}.out`], attrs, weights });
  const conv = { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 };
  const scalar = (name: string, v: number): StoredTensor => ({ name, dtype: 'f32', shape: [1], data: Float32Array.of(v) }) as StoredTensor;
  const nodes: GraphNode[] = [
    node('c1', 'conv2d', ['x'], conv, { weight: 'c1.w', bias: 'c1.b' }),
    node('s1', 'sigmoid', ['c1.out']),
    node('c2', 'conv2d', ['x'], conv, { weight: 'c2.w', bias: 'c2.b' }),
    node('a1', 'add', ['s1.out', 'c2.out']),
    node('t1', 'tanh', ['a1.out']),
    node('m1', 'mul', ['t1.out', 'm1.k']),
    node('a2', 'add', ['m1.out', 'a2.k']),
    node('hs', 'hard_swish', ['a2.out']),
    node('hg', 'hard_sigmoid', ['hs.out']),
    node('lr', 'leaky_relu', ['hg.out'], { alpha: 0.1 }),
    node('cc', 'concat', ['lr.out', 'c2.out'], { axis: 1 }),
    node('g', 'global_avg_pool', ['cc.out']),
    node('f', 'flatten', ['g.out'], { axis: 1 }),
    node('d', 'dense', ['f.out'], {}, { weight: 'd.w', bias: 'd.b' }),
    node('sm', 'softmax', ['d.out'], { axis: -1 }),
  ];
  const tensors = [
    tensor('c1.w', [6, 4, 3, 3]), tensor('c1.b', [6], 0.2), tensor('c2.w', [6, 4, 3, 3]), tensor('c2.b', [6], 0.2),
    scalar('m1.k', 1.7), scalar('a2.k', -0.3), tensor('d.w', [5, 12], 2), tensor('d.b', [5], 0.5),
  ];
  return { graph: { inputs: [{ name: 'x', shape: [-1, 4, 6, 6] }], outputs: ['sm.out'], nodes }, tensors: new Map(tensors.map((x) => [x.name, x])), metadata: {} };
}

function quantised(): Uint8Array {
  const rnd = seededRandom(616);
  const calib = Float32Array.from({ length: 64 * PER }, () => rnd() * 2 - 1);
  return writeFlm(quantizeInt8Full(miscModel(), { shape: [64, ...IN.slice(1)], data: calib }));
}

t.test('fl-host: int8-full tables, add, concat and softmax bit for bit with Int8Session', async (t) => {
  const bins = { host: buildPort(t, 'host'), 'host-ref': buildPort(t, 'host-ref') };
  if (!bins.host || !bins['host-ref']) return;
  mkdirSync(TMP, { recursive: true });
  const bytes = quantised();
  const model = readFlm(bytes);
  const q = model.metadata[INT8_FULL_KEY] as Record<string, Record<string, unknown>>;
  t.same([Object.keys(q['lut'] ?? {}).sort(), Object.keys(q['add'] ?? {}), Object.keys(q['concat'] ?? {}), Object.keys(q['softmax'] ?? {})],
    [['a2', 'hg', 'hs', 'lr', 'm1', 's1', 't1'], ['a1'], ['cc'], ['sm']], 'every kind of qmisc.c is in the file');
  t.ok(model.memoryPlan?.plans.some((p) => p.profile === 'mcu'), 'the file has an mcu plan');
  const file = resolve(TMP, 'int8misc.flm');
  writeFileSync(file, bytes);
  const rnd = seededRandom(717);
  const n = 6;
  const x = Float32Array.from({ length: n * PER }, (_, i) => (rnd() * 2 - 1) * (i >= (n - 1) * PER ? 6 : 1));
  const s = Int8Session.create(model);
  const want = s.runBatch({ shape: [n, ...IN.slice(1)], data: x }).data;
  runBitExact(t, bins, file, x, want);
  t.ok(new Set(Array.from({ length: n }, (_, k) => Array.from(want.slice(5 * k, 5 * k + 5)).join())).size > 1, 'the samples give different softmax outputs');

  type Q = Record<string, Record<string, any>>;
  const mutations: Array<[string, (q: Q) => void]> = [
    ['a lut of 255 entries', (q) => { (q['lut']!['t1'] as number[]).pop(); }],
    ['a lut entry out of int8', (q) => { (q['lut']!['s1'] as number[])[3] = 200; }],
    ['an add without outShift', (q) => { delete q['add']!['a1'].outShift; }],
    ['a concat with one shift', (q) => { (q['concat']!['cc'].shift as number[]).pop(); }],
    ['a softmax table not starting at 65536', (q) => { (q['softmax']!['sm'] as number[])[0] = 65535; }],
    ['no table for a sigmoid', (q) => { delete q['lut']!['s1']; }],
  ];
  for (const [what, mutate] of mutations) {
    const m = structuredClone(model.metadata[INT8_FULL_KEY]) as Q;
    mutate(m);
    const f = resolve(TMP, 'int8misc-hostile.flm');
    writeFileSync(f, writeFlm({ ...model, metadata: { ...model.metadata, [INT8_FULL_KEY]: m } }, { memoryPlan: 'keep' }));
    const r = spawnSync(bins.host, ['--check', f], { encoding: 'utf8' });
    t.equal(r.status, 2, `${what}: refused`);
    t.match(r.stderr, /FLM_BAD_METADATA/, `${what}: ${r.stderr.trim()}`);
  }
});

t.test('cortex-m4 under QEMU: the same graph bit for bit with Int8Session', async (t) => {
  const frames = await openDevice(t);
  if (!frames) return;
  const bytes = quantised();
  const model = readFlm(bytes);
  const end = await frames.upload(bytes);
  t.equal(end.kind, 0x84, `upload_end accepted ${end.kind === 0x84 ? '' : JSON.stringify(end.body)}`);
  if (end.kind !== 0x84) return;
  const rnd = seededRandom(818);
  const n = 2;
  const x = Float32Array.from({ length: n * PER }, () => rnd() * 2 - 1);
  const want = Int8Session.create(model).runBatch({ shape: [n, ...IN.slice(1)], data: x }).data;
  for (let k = 0; k < n; k++) {
    const xs = x.slice(k * PER, (k + 1) * PER);
    const inf = await frames.call(0x05, { id: k + 1, x: new Uint8Array(xs.buffer), dtype: 'f32' }, 60000);
    t.equal(inf.kind, 0x85, `infer ${k} answered ${inf.kind === 0xff ? JSON.stringify(inf.body) : ''}`);
    if (inf.kind !== 0x85) return;
    const yb = inf.body['y'] as Uint8Array;
    const y = new Float32Array(yb.buffer.slice(yb.byteOffset, yb.byteOffset + yb.byteLength));
    const w = want.slice(k * 5, (k + 1) * 5);
    t.ok(y.length === 5 && y.every((v, i) => Object.is(v, w[i])), `sample ${k}: the Node reference's outputs, float for float`);
  }
});
