// dwlr_conv2d on the firmware's int8-full path (core/ops/qdwlr.c) bit for bit with its definition,
// the Node reference (Int8Session, runtime/int8full/): a graph of dwlr nodes quantised by the
// converter (quantizeInt8Full) with pads, strides, dilations, a relu folded, no bias, a 9x9 kernel
// (more taps than the fast loops widen: the portable loops on every build), 66 channels (two
// blocks of the per-channel lists), planes too large for the fast loops' padded-plane buffer (they
// pad kh rows at a time) and planes that fit it, run by fl-host on the fast and the portable loops and by the
// Cortex-M4 build under QEMU; hostile metadata (v with a scale per row, a bias that could overflow
// the int32 accumulator) refused at prepare.
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
import { INT8_FULL_KEY, type Int8Full } from '../../../runtime/int8full/params.js';
import { TMP, buildPort, openDevice, randomTensor, runBitExact, seededRandom } from './support.js';

if (!getProfile('mcu')) registerProfile(mcuProfile);

const C = 2;
// planes of 32 x 16 and 31 x 15 padded bytes: more than the fast loops' buffer (384 B); an f32 input of
// 3,360 B: within the cortex-m4 build's 4 KB frame
const IN = [1, C, 30, 14];
const PER = C * 30 * 14;
const OUT = 5;

function dwlrModel(): Model {
  const tensor = randomTensor(seededRandom(4242));
  const nodes: GraphNode[] = [];
  const tensors: StoredTensor[] = [];
  const conv = (s: number[], p: number[], d: number[], group: number) => ({ strides: s, pads: p, dilations: d, group });
  const dw = (name: string, input: string, ch: number, r: number, k: number[], attrs: GraphNode['attrs'], bias = true) => {
    nodes.push({ name, op: 'dwlr_conv2d', inputs: [input], outputs: [`${name}.out`], attrs, weights: { u: `${name}.u`, v: `${name}.v`, ...(bias ? { bias: `${name}.b` } : {}) } });
    tensors.push(tensor(`${name}.u`, [ch, r], 0.7), tensor(`${name}.v`, [r, ...k], 0.7));
    if (bias) tensors.push(tensor(`${name}.b`, [ch], 0.3));
  };
  const op = (name: string, o: GraphNode['op'], input: string, attrs: GraphNode['attrs'] = {}, weights: Record<string, string> = {}) =>
    nodes.push({ name, op: o, inputs: [input], outputs: [`${name}.out`], attrs, weights });
  dw('d1', 'x', C, 2, [3, 3], conv([1, 1], [1, 1, 1, 1], [1, 1], C));
  op('r1', 'relu', 'd1.out');
  dw('d2', 'r1.out', C, 3, [3, 3], conv([2, 1], [0, 1, 1, 0], [1, 2], C), false);
  dw('d3', 'd2.out', C, 3, [9, 9], conv([1, 1], [4, 4, 4, 4], [1, 1], C));
  op('c', 'conv2d', 'd3.out', conv([1, 1], [0, 0, 0, 0], [1, 1], 1), { weight: 'c.w', bias: 'c.b' });
  tensors.push(tensor('c.w', [66, C, 1, 1]), tensor('c.b', [66], 0.2));
  dw('d4', 'c.out', 66, 2, [3, 5], conv([1, 1], [1, 2, 1, 2], [1, 1], 66));
  op('r4', 'relu', 'd4.out');
  op('g', 'global_avg_pool', 'r4.out');
  op('f', 'flatten', 'g.out', { axis: 1 });
  op('fc', 'dense', 'f.out', {}, { weight: 'fc.w', bias: 'fc.b' });
  tensors.push(tensor('fc.w', [OUT, 66]), tensor('fc.b', [OUT], 0.2));
  return { graph: { inputs: [{ name: 'x', shape: [-1, ...IN.slice(1)] }], outputs: ['fc.out'], nodes }, tensors: new Map(tensors.map((x) => [x.name, x])), metadata: {} };
}

function quantised(): Uint8Array {
  const rnd = seededRandom(4343);
  return writeFlm(quantizeInt8Full(dwlrModel(), { shape: [48, ...IN.slice(1)], data: Float32Array.from({ length: 48 * PER }, () => rnd()) }));
}

t.test('fl-host: int8-full dwlr_conv2d bit for bit with Int8Session, on the fast and the portable loops', async (t) => {
  const bins = { host: buildPort(t, 'host'), 'host-ref': buildPort(t, 'host-ref') };
  if (!bins.host || !bins['host-ref']) return;
  mkdirSync(TMP, { recursive: true });
  const bytes = quantised();
  const model = readFlm(bytes);
  t.same(Object.keys((model.metadata[INT8_FULL_KEY] as Int8Full).nodes).filter((n) => n.startsWith('d')).sort(), ['d1', 'd2', 'd3', 'd4'], 'every dwlr node has its stage');
  t.ok(model.memoryPlan?.plans.some((p) => p.profile === 'mcu'), 'the file has an mcu plan');
  const file = resolve(TMP, 'int8dwlr.flm');
  writeFileSync(file, bytes);
  const rnd = seededRandom(4444);
  const n = 5;
  const x = Float32Array.from({ length: n * PER }, (_, i) => rnd() * (i >= (n - 1) * PER ? 4 : 1)); // the last sample saturates
  const want = Int8Session.create(model).runBatch({ shape: [n, ...IN.slice(1)], data: x }).data;
  runBitExact(t, bins, file, x, want);
  t.ok(new Set(Array.from({ length: n }, (_, k) => Array.from(want.slice(OUT * k, OUT * k + OUT)).join())).size === n, 'the samples give different outputs');

  type Q = Int8Full & Record<string, unknown>;
  const hostile: Array<[string, (m: Model, q: Q) => Model]> = [
    ['v with a scale per row', (m) => {
      const v = m.tensors.get('d1.v')!;
      const tensors = new Map(m.tensors);
      tensors.set('d1.v', { ...v, quant: { scale: Float32Array.of(v.quant!.scale[0]!, v.quant!.scale[0]!), axis: 0 } });
      return { ...m, tensors };
    }],
    ['a bias that could overflow the int32 accumulator', (m, q) => {
      q.nodes['d1']![0]!.bias![1] = 2147480000;
      return { ...m, metadata: { ...m.metadata, [INT8_FULL_KEY]: q } };
    }],
  ];
  for (const [what, mutate] of hostile) {
    const m = mutate(model, structuredClone(model.metadata[INT8_FULL_KEY]) as Q);
    const f = resolve(TMP, 'int8dwlr-hostile.flm');
    writeFileSync(f, writeFlm(m, { memoryPlan: 'keep' }));
    const r = spawnSync(bins.host, ['--check', f], { encoding: 'utf8' });
    t.equal(r.status, 2, `${what}: refused`);
    t.match(r.stderr, /FLM_BAD_METADATA.*dwlr_conv2d/, `${what}: ${r.stderr.trim()}`);
  }
});

t.test('cortex-m4 under QEMU: int8-full dwlr_conv2d bit for bit with Int8Session', async (t) => {
  const frames = await openDevice(t);
  if (!frames) return;
  const bytes = quantised();
  const model = readFlm(bytes);
  const end = await frames.upload(bytes);
  t.equal(end.kind, 0x84, `upload_end accepted ${end.kind === 0x84 ? '' : JSON.stringify(end.body)}`);
  if (end.kind !== 0x84) return;
  const rnd = seededRandom(4545);
  const n = 2;
  const x = Float32Array.from({ length: n * PER }, () => rnd());
  const want = Int8Session.create(model).runBatch({ shape: [n, ...IN.slice(1)], data: x }).data;
  for (let k = 0; k < n; k++) {
    const xs = x.slice(k * PER, (k + 1) * PER);
    const inf = await frames.call(0x05, { id: k + 1, x: new Uint8Array(xs.buffer), dtype: 'f32' }, 60000);
    t.equal(inf.kind, 0x85, `infer ${k} answered ${inf.kind === 0xff ? JSON.stringify(inf.body) : ''}`);
    if (inf.kind !== 0x85) return;
    const yb = inf.body['y'] as Uint8Array;
    const y = new Float32Array(yb.buffer.slice(yb.byteOffset, yb.byteOffset + yb.byteLength));
    const w = want.slice(k * OUT, (k + 1) * OUT);
    t.ok(y.length === OUT && y.every((v, i) => Object.is(v, w[i])), `sample ${k}: the Node reference's outputs, float for float`);
  }
});
