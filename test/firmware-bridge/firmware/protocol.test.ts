// The device side of the binary protocol (docs/PROTOCOL.md sections 1-3) on the host port, with a
// frame encoder written in the test: idempotent retries (same bytes -> same stored answer, the
// work done once), dropped frames counted, idle fill, upload offsets and resume, CRC check,
// prepare errors, input errors, and a SIGUSR1 power glitch that keeps the model store.
import t from 'tap';
import CRC32 from 'crc-32';
import { pack } from 'msgpackr';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { writeFlm } from '../../../converter/writer.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { Frames, Line, buildPort, startDevice } from './support.js';

function smallModel(): Uint8Array {
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  const w = new Float32Array(6 * 8).map((_, i) => ((i * 7) % 11) / 11 - 0.5);
  const tensors: StoredTensor[] = [
    { name: 'w', dtype: 'f32', shape: [6, 8], data: w },
    { name: 'b', dtype: 'f32', shape: [6], data: new Float32Array([0.1, -0.2, 0.3, 0, 0.5, -0.6]) },
  ];
  const nodes: GraphNode[] = [
    { name: 'd', op: 'dense', inputs: ['x'], outputs: ['y'], attrs: {}, weights: { weight: 'w', bias: 'b' } },
    { name: 'r', op: 'relu', inputs: ['y'], outputs: ['z'], attrs: {}, weights: {} },
  ];
  const m: Model = { graph: { inputs: [{ name: 'x', shape: [-1, 8] }], outputs: ['z'], nodes }, tensors: new Map(tensors.map((x) => [x.name, x])), metadata: {} };
  return writeFlm(m);
}

function expected(x: Float32Array): number[] {
  const out: number[] = [];
  for (let o = 0; o < 6; o++) {
    let s = 0;
    for (let k = 0; k < 8; k++) s += Math.fround((((o * 8 + k) * 7) % 11) / 11 - 0.5) * x[k]!;
    s += [0.1, -0.2, 0.3, 0, 0.5, -0.6][o]!;
    out.push(Math.max(0, s));
  }
  return out;
}

function frame(seq: number, kind: number, body?: unknown): Uint8Array {
  const b = body === undefined ? new Uint8Array(0) : new Uint8Array(pack(body));
  const raw = new Uint8Array(2 + b.length + 4);
  raw[0] = seq;
  raw[1] = kind;
  raw.set(b, 2);
  new DataView(raw.buffer).setUint32(2 + b.length, CRC32.buf(raw.subarray(0, 2 + b.length)) >>> 0, true);
  // COBS
  const out: number[] = [0];
  let i = 0;
  for (;;) {
    let j = i;
    while (j < raw.length && raw[j] !== 0 && j - i < 254) j++;
    out.push(j - i + 1, ...raw.subarray(i, j));
    if (j >= raw.length) break;
    i = j - i === 254 ? j : j + 1;
  }
  out.push(0);
  return Uint8Array.from(out);
}

t.test('host port: binary protocol behaviour', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  const dev = await startDevice('host', bin, ['--flash', '4096']);
  t.teardown(() => dev.stop());
  const line = await Line.open(dev.path);
  t.teardown(() => line.close());
  const f = new Frames(line);
  const nextFrame = () => line.until((b) => {
    let s = 0;
    while (s < b.length && b[s] === 0) s++;
    const e = b.indexOf(0, s);
    return s < b.length && e > s ? e + 1 : -1;
  }, 5000, 'a frame');

  const h = await f.call(0x01);
  t.equal(h.body['proto'], 1, 'hello: protocol 1');
  t.equal(h.body['model'], null, 'no model yet');
  t.equal(h.body['flash'], 4096, '--flash sets the store capacity');
  const boot = h.body['boot'] as number;

  const noModel = await f.call(0x05, { id: 1, x: new Uint8Array(32), dtype: 'f32' });
  t.same([noModel.kind, noModel.body['code']], [0xff, 'NO_MODEL'], 'infer without a model: NO_MODEL');
  const big = await f.call(0x02, { size: 5000, crc: 0 });
  t.same([big.kind, big.body['code']], [0xff, 'TOO_LARGE'], 'model larger than the store: TOO_LARGE');

  const model = smallModel();
  const crc = CRC32.buf(model) >>> 0;
  const begin = await f.call(0x02, { size: model.length, crc });
  t.equal(begin.body['have'], 0, 'upload starts at 0');
  const gap = await f.call(0x03, { off: 10, data: model.subarray(10, 20) });
  t.same([gap.body['code'], gap.body['msg']], ['BAD_OFFSET', '0'], 'a chunk past have: BAD_OFFSET with have');
  const c1 = await f.call(0x03, { off: 0, data: model.subarray(0, 100) });
  t.equal(c1.body['have'], 100);
  const overlap = await f.call(0x03, { off: 50, data: model.subarray(50, 150) });
  t.equal(overlap.body['have'], 150, 'an overlapping chunk is compared and extended');
  const wrong = await f.call(0x03, { off: 0, data: new Uint8Array(10).fill(0xaa) });
  t.equal(wrong.body['code'], 'BAD_REQUEST', 'a chunk that differs from the stored bytes is refused');
  const early = await f.call(0x04);
  t.equal(early.body['code'], 'BAD_REQUEST', 'upload_end before all bytes: BAD_REQUEST');

  // power glitch in the middle of the upload: the store and its description survive
  dev.proc.kill('SIGUSR1');
  await new Promise((r) => setTimeout(r, 300));
  const h2 = await f.call(0x01);
  t.equal(h2.body['boot'], boot + 1, 'SIGUSR1: boot count grew');
  const resume = await f.call(0x02, { size: model.length, crc });
  t.equal(resume.body['have'], 150, 'upload_begin with the same size and CRC resumes at have');
  const rest = await f.call(0x03, { off: 150, data: model.subarray(150) });
  t.equal(rest.body['have'], model.length);
  const end = await f.call(0x04);
  t.equal(end.kind, 0x84, `upload_end: ready ${JSON.stringify(end.body)}`);
  t.same(end.body['in'], [1, 8]);
  t.same(end.body['out'], [1, 6]);

  // infer, then the same bytes again: the stored answer, no second inference
  const x = new Float32Array([1, -1, 0.5, 0.25, -0.75, 2, 0, 1.5]);
  const req = frame(200, 0x05, { id: 42, x: new Uint8Array(x.buffer), dtype: 'f32' });
  line.write(req);
  const a1 = await nextFrame();
  line.write(req);
  const a2 = await nextFrame();
  t.same(a2, a1, 'a retried request gets the byte-identical stored answer');
  const st = await f.call(0x06);
  t.equal(st.body['infers'], 1, 'the inference ran once');
  t.equal(st.body['retries_served'], 1, 'one retry served from the stored answer');
  const inf = await f.call(0x05, { id: 43, x: new Uint8Array(x.buffer), dtype: 'f32' });
  const yb = inf.body['y'] as Uint8Array;
  const y = Array.from(new Float32Array(yb.buffer.slice(yb.byteOffset, yb.byteOffset + yb.byteLength)));
  const want = expected(x);
  t.ok(y.every((v, i) => Math.abs(v - want[i]!) < 1e-5), `dense + relu computed (${y.map((v) => v.toFixed(4))})`);
  const badIn = await f.call(0x05, { id: 44, x: new Uint8Array(12), dtype: 'f32' });
  t.equal(badIn.body['code'], 'BAD_INPUT', 'wrong input size: BAD_INPUT');
  const u8 = await f.call(0x05, { id: 45, x: Uint8Array.from([255, 0, 128, 64, 32, 16, 8, 4]), dtype: 'u8', div: 255 });
  const yu = new Float32Array((u8.body['y'] as Uint8Array).slice().buffer);
  const wantU = expected(Float32Array.from([255, 0, 128, 64, 32, 16, 8, 4], (v) => v / 255));
  t.ok(Array.from(yu).every((v, i) => Math.abs(v - wantU[i]!) < 1e-5), 'u8 input with div');

  // corrupted and cut frames are dropped and counted; idle zeros are ignored
  const before = (await f.call(0x06)).body['bad_frames'] as number;
  const corrupt = frame(9, 0x01);
  corrupt[3] ^= 0x40;
  line.write(corrupt);
  line.write(new Uint8Array([0, 0, 0, 0]));
  line.write(frame(10, 0x01).subarray(0, 5)); // cut short: its end swallows the next frame's start
  const after = await f.call(0x06);
  t.equal(after.kind, 0x86, 'the next request after garbage is answered (at most one frame lost)');
  t.ok((after.body['bad_frames'] as number) >= before + 1, `bad frames counted (${before} -> ${after.body['bad_frames']})`);

  // reset command: answered, then the device reboots with its model
  const rs = await f.call(0x07);
  t.same(rs.body, { ok: true }, 'reset answers first');
  await new Promise((r) => setTimeout(r, 300));
  const h3 = await f.call(0x01);
  t.equal(h3.body['boot'], boot + 2, 'boot count grew again');
  t.same(h3.body['model'], { size: model.length, crc, ready: true }, 'the model is still ready after reset');

  // a model that prepare refuses: the error names the check
  const broken = new Uint8Array(model);
  broken[30] ^= 0xff;
  new DataView(broken.buffer).setUint32(12, CRC32.buf(broken.subarray(24)) >>> 0, true);
  const up = await f.upload(broken);
  t.equal(up.body['code'], 'MODEL_INVALID', 'a malformed model: MODEL_INVALID');
  t.match(String(up.body['msg']), /^FLM_[A-Z_]+: /, `the message names the check: ${up.body['msg']}`);
});
