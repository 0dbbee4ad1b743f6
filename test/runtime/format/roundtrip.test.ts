import t from 'tap';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFlm, writeFlmFile } from '../../../converter/writer.js';
import type { Model } from '../../../runtime/ir.js';
import {
  ALIGNMENT, PREAMBLE_SIZE, crc32, decodePreamble, dataOffsetFor, quantizeTensor, readFlm, readFlmFile, tensorToFloat32,
} from '../../../runtime/format/index.js';
import { edit, sampleModel, split } from './fixtures/flm.js';
import type { Asserts } from './fixtures/flm.js';

function sameModel(t: Asserts, got: Model, want: Model): void {
  t.same(got.graph, want.graph, 'graph');
  t.same(got.metadata, want.metadata, 'metadata');
  t.same([...got.tensors.keys()], [...want.tensors.keys()], 'tensor names, in order');
  for (const [name, w] of want.tensors) {
    const g = got.tensors.get(name)!;
    t.equal(g.dtype, w.dtype, `${name} dtype`);
    t.same(g.shape, w.shape, `${name} shape`);
    t.equal(g.data.constructor, w.data.constructor, `${name} array type`);
    t.same(Array.from(g.data), Array.from(w.data), `${name} data`);
    t.same(g.quant ? Array.from(g.quant.scale) : undefined, w.quant ? Array.from(w.quant.scale) : undefined, `${name} scale`);
    t.equal(g.quant?.axis, w.quant?.axis, `${name} axis`);
  }
}

t.test('round trip: f32/f16/i8, per-tensor and per-channel int8, factor and dense layers, metadata', async (t) => {
  const model = sampleModel();
  const bytes = writeFlm(model);
  sameModel(t, readFlm(bytes), model);
  const pre = decodePreamble(bytes);
  t.equal(pre.version, 1);
  t.equal(bytes.length, dataOffsetFor(pre.headerLen) + pre.dataLen);
  for (const entry of split(bytes).header.tensors) t.equal(entry.offset % ALIGNMENT, 0, `${entry.name} aligned`);
  t.same(writeFlm(readFlm(bytes)), bytes, 'rewriting a read model gives the same bytes');
});

t.test('zero-copy: tensors are views into the input buffer', async (t) => {
  const bytes = writeFlm(sampleModel());
  const m = readFlm(bytes);
  const u = m.tensors.get('fc1.u')!;
  t.equal(u.data.buffer, bytes.buffer, 'f32 shares the ArrayBuffer');
  t.equal(m.tensors.get('fc1.v')!.data.buffer, bytes.buffer, 'f16 shares the ArrayBuffer');
  t.equal(m.tensors.get('fc2.weight')!.data.buffer, bytes.buffer, 'i8 shares the ArrayBuffer');
  t.equal(tensorToFloat32(u), u.data, 'tensorToFloat32 on f32 returns the view itself');
  t.equal((u.data.byteOffset - bytes.byteOffset) % ALIGNMENT, 0, 'aligned within the file');
});

t.test('an input at an odd byteOffset is copied once and still parses', async (t) => {
  const bytes = writeFlm(sampleModel());
  const backing = new Uint8Array(bytes.length + 1);
  backing.set(bytes, 1);
  const odd = backing.subarray(1);
  const m = readFlm(odd);
  sameModel(t, m, sampleModel());
  const u = m.tensors.get('fc1.u')!;
  t.not(u.data.buffer, backing.buffer, 'copied');
  t.equal(m.tensors.get('fc1.v')!.data.buffer, u.data.buffer, 'one copy shared by all tensors');
});

t.test('empty model and zero-sized tensors', async (t) => {
  const empty: Model = { graph: { inputs: [{ name: 'x', shape: [1] }], outputs: ['x'], nodes: [] }, tensors: new Map(), metadata: {} };
  const bytes = writeFlm(empty);
  t.equal(decodePreamble(bytes).dataLen, 0);
  sameModel(t, readFlm(bytes), empty);

  const m = sampleModel();
  m.tensors = new Map([...m.tensors].flatMap(([k, v]) => (k === 'fc1.v'
    ? [['nothing', { name: 'nothing', dtype: 'f32', shape: [0, 3], data: new Float32Array(0) }], [k, v]]
    : [[k, v]])) as any);
  sameModel(t, readFlm(writeFlm(m)), m);
});

t.test('unknown top-level keys are ignored', async (t) => {
  const bytes = edit(writeFlm(sampleModel()), (p) => {
    p.header.future_thing = [1, 2, 3];
  });
  sameModel(t, readFlm(bytes), sampleModel());
});

t.test('memory_plan round-trips: the node plan at batch 1, and no plan on request', async (t) => {
  const m = readFlm(writeFlm(sampleModel()));
  t.equal(m.memoryPlan?.version, 1);
  const node = m.memoryPlan!.plans.find((p) => p.profile === 'node')!;
  t.equal(node.batch, 1);
  t.same(node.values.map((v) => v.name), ['x', 'h1', 'h2', 'h3', 'h4', 'y']);
  const again = readFlm(writeFlm(m, { memoryPlan: 'keep' }));
  t.same(again.memoryPlan, m.memoryPlan, 'keep writes the same plans');
  t.equal(readFlm(writeFlm(sampleModel(), { memoryPlan: 'none' })).memoryPlan, undefined);
});

t.test('integers encoded as uint64 / float64 by another writer are accepted', async (t) => {
  // 0xcf (uint64) for an offset, as a C writer might emit it; msgpackr hands it over as a bigint.
  const bytes = writeFlm(sampleModel());
  const pre = decodePreamble(bytes);
  const m = readFlm(edit(bytes, (p) => { p.header.tensors[1].offset = BigInt(p.header.tensors[1].offset); }));
  t.same(Array.from(m.tensors.get('fc1.v')!.data), Array.from(sampleModel().tensors.get('fc1.v')!.data));
  t.ok(pre.headerLen > 0);
});

t.test('tensorToFloat32 dequantises f16 and i8 (per-tensor and per-channel)', async (t) => {
  const m = readFlm(writeFlm(sampleModel()));
  const bias = tensorToFloat32(m.tensors.get('fc1.bias')!);
  t.same(Array.from(bias), [-127, -3, 0, 5, 60, 127].map((q) => Math.fround(q * Math.fround(0.01))));
  const w = tensorToFloat32(m.tensors.get('fc2.weight')!);
  const scales = [0.5, 0.25, 0.125, 1];
  t.same(Array.from(w), Array.from({ length: 24 }, (_, i) => (i * 5 - 60) * scales[Math.floor(i / 6)]!));
  const v = tensorToFloat32(m.tensors.get('fc1.v')!);
  for (let i = 0; i < 16; i++) t.ok(Math.abs(v[i]! - Math.sin(i)) < 1e-3, `f16 element ${i}`);
});

t.test('quantizeTensor: error within half a step, per tensor and per channel', async (t) => {
  const x = Float32Array.from({ length: 60 }, (_, i) => Math.cos(i) * (1 + (i % 3) * 10));
  const src = { name: 'w', dtype: 'f32' as const, shape: [3, 4, 5], data: x };
  for (const axis of [undefined, 0, 1, 2]) {
    const q = quantizeTensor(src, 'i8', axis === undefined ? {} : { perChannelAxis: axis });
    t.equal(q.quant!.scale.length, axis === undefined ? 1 : src.shape[axis]!);
    t.equal(q.quant!.axis, axis);
    const back = tensorToFloat32(q);
    const maxScale = Math.max(...q.quant!.scale);
    for (let i = 0; i < x.length; i++) {
      if (Math.abs(back[i]! - x[i]!) > maxScale / 2 + 1e-6) t.fail(`axis ${axis} element ${i}: ${back[i]} vs ${x[i]}`);
    }
  }
  const zero = quantizeTensor({ name: 'z', dtype: 'f32', shape: [2], data: new Float32Array(2) }, 'i8');
  t.same(Array.from(zero.quant!.scale), [1], 'all-zero tensor gets scale 1');
  const h = quantizeTensor(src, 'f16');
  t.equal(h.dtype, 'f16');
  t.ok(tensorToFloat32(h).every((v, i) => Math.abs(v - x[i]!) <= Math.abs(x[i]!) * 1e-3));
  const f = quantizeTensor(h, 'f32');
  t.ok(f.data instanceof Float32Array);
  // A quantised model round-trips through the file.
  const m = sampleModel();
  m.tensors.set('fc1.u', quantizeTensor(m.tensors.get('fc1.u')!, 'i8', { perChannelAxis: 1 }));
  sameModel(t, readFlm(writeFlm(m)), m);
});

t.test('writeFlmFile / readFlmFile: temp file then rename, nothing left behind', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flm-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'model.flm');
  await writeFlmFile(sampleModel(), path);
  await writeFlmFile(sampleModel(), path); // overwriting works too
  sameModel(t, await readFlmFile(path), sampleModel());
  t.same(await readdir(dir), ['model.flm']);
  const bad = sampleModel();
  bad.graph.nodes[0]!.weights.weight = 'fc2.weight';
  await t.rejects(writeFlmFile(bad, join(dir, 'bad.flm')), { code: 'FLM_DENSE_WEIGHT_IN_FACTOR_LAYER' });
  t.same(await readdir(dir), ['model.flm'], 'a refused model leaves no file');
});

t.test('header starts right after the preamble and the data at a 64-byte boundary', async (t) => {
  const bytes = writeFlm(sampleModel());
  const pre = decodePreamble(bytes);
  const b = bytes[PREAMBLE_SIZE]!;
  t.ok((b & 0xf0) === 0x80 || b === 0xde || b === 0xdf, 'header is a msgpack map');
  t.equal(dataOffsetFor(pre.headerLen) % 64, 0);
});

t.test('preamble bytes and CRC as docs/FORMAT.md specifies', async (t) => {
  t.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926, 'IEEE CRC32 check value');
  const bytes = writeFlm(sampleModel());
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  t.same(Array.from(bytes.subarray(0, 4)), [0x46, 0x4c, 0x4d, 0x00], 'magic');
  t.equal(dv.getUint16(4, true), 1, 'version');
  t.equal(dv.getUint16(6, true), 0, 'flags');
  const headerLen = dv.getUint32(8, true);
  const dataOffset = Math.ceil((24 + headerLen) / 64) * 64;
  t.equal(dv.getUint32(12, true), crc32(bytes.subarray(24)), 'CRC of everything after the preamble');
  t.equal(Number(dv.getBigUint64(16, true)), bytes.length - dataOffset, 'data_len');
  const u = sampleModel().tensors.get('fc1.u')!.data as Float32Array;
  t.equal(dv.getFloat32(dataOffset + 4, true), u[1], 'first tensor starts the data section, little-endian');
});
