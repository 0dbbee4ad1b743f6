// Malformed models against the firmware's prepare: "prepare validates, eval never crashes or
// hangs". Valid .flm files are mutated (header bytes with the CRC fixed up so that the msgpack and
// schema checks are reached, raw bytes anywhere, truncations, length fields, data bytes) and fed
// to the host port built with AddressSanitizer and UBSan (fl-host --check: prepare, then one
// inference on zeros when accepted). Every run must end in "ok" or a named rejection, within a
// time limit, with no sanitizer report; and whatever the TypeScript reader refuses, the device
// refuses too.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import CRC32 from 'crc-32';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { quantizeTensor } from '../../../runtime/format/dtype.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { TMP, buildPort } from './support.js';
import { assemble, split } from '../../../bench/fuzzFlm.js';

let seed = 987654321;
function rand(n: number): number {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return Math.floor((seed / 2 ** 32) * n);
}

function tensor(name: string, shape: number[], dtype: 'f32' | 'f16' | 'i8'): StoredTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (rand(2000) - 1000) / 1000;
  const f: StoredTensor = { name, dtype: 'f32', shape, data };
  return dtype === 'f32' || shape.length === 1 ? f : quantizeTensor(f, dtype, dtype === 'i8' ? { perChannelAxis: 0 } : {});
}

function base(dtype: 'f32' | 'f16' | 'i8'): Uint8Array {
  const n = (name: string, op: GraphNode['op'], inputs: string[], attrs: GraphNode['attrs'], weights: Record<string, string>): GraphNode =>
    ({ name, op, inputs, outputs: [`${name}.o`], attrs, weights });
  const tensors = [
    tensor('c.v', [3, 2, 3, 3], dtype), tensor('c.u', [4, 3], dtype), tensor('c.b', [4], 'f32'),
    tensor('t.0', [1, 4, 4, 3], dtype), tensor('t.1', [3, 3, 4, 1], dtype), tensor('t.b', [12], 'f32'),
    tensor('h.w', [8, 12], dtype), tensor('h.b', [8], 'f32'), tensor('d.w', [5, 8], dtype),
  ];
  const model: Model = {
    graph: {
      inputs: [{ name: 'x', shape: [-1, 2, 6, 6] }],
      outputs: ['d.o'],
      nodes: [
        n('c', 'svd_conv2d', ['x'], { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 }, { v: 'c.v', u: 'c.u', bias: 'c.b' }),
        n('r', 'relu', ['c.o'], {}, {}),
        n('p', 'max_pool', ['r.o'], { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], ceil_mode: 0 }, {}),
        n('f', 'flatten', ['p.o'], { axis: 1 }, {}),
        n('t', 'tt_dense', ['f.o'], { out_modes: [4, 3], in_modes: [4, 4] }, { 'core.0': 't.0', 'core.1': 't.1', bias: 't.b' }),
        // a fused dense -> relu -> dense chain (the mcu plan streams it)
        n('h', 'dense', ['t.o'], {}, { weight: 'h.w', bias: 'h.b' }),
        n('hr', 'relu', ['h.o'], {}, {}),
        n('d', 'dense', ['hr.o'], {}, { weight: 'd.w' }),
      ],
    },
    tensors: new Map(tensors.map((x) => [x.name, x])),
    metadata: { 'source.model': 'fuzz', 'convert.method': 'mixed' },
  };
  return writeFlm(model);
}

function fixCrc(b: Uint8Array): void {
  if (b.length < 24) return;
  new DataView(b.buffer, b.byteOffset).setUint32(12, CRC32.buf(b.subarray(24)) >>> 0, true);
}

function mutate(src: Uint8Array, kind: number): Uint8Array {
  const b = new Uint8Array(src);
  const hlen = new DataView(b.buffer).getUint32(8, true);
  switch (kind) {
    case 0: { // header bytes, CRC fixed: msgpack, schema, graph and plan checks
      const k = 1 + rand(3);
      for (let i = 0; i < k; i++) b[24 + rand(hlen)] = rand(256);
      fixCrc(b);
      return b;
    }
    case 1: { // one header byte +-1 (counts, small ints, type tags), CRC fixed
      const at = 24 + rand(hlen);
      b[at] = (b[at]! + (rand(2) ? 1 : 255)) & 255;
      fixCrc(b);
      return b;
    }
    case 2: // any byte, CRC not fixed
      b[rand(b.length)] ^= 1 << rand(8);
      return b;
    case 3: // truncation
      return b.subarray(0, rand(b.length));
    case 4: { // preamble length fields
      const dv = new DataView(b.buffer);
      if (rand(2)) dv.setUint32(8, rand(2) ? rand(hlen * 2) : 0xffffffff, true);
      else dv.setUint32(16, rand(b.length * 2), true);
      return b;
    }
    default: { // data bytes, CRC fixed: the model stays valid, weights change
      const from = (24 + hlen + 63) & ~63;
      for (let i = 0; i < 8; i++) b[from + rand(b.length - from)] = rand(256);
      fixCrc(b);
      return b;
    }
  }
}

t.test('malformed models: no crash, no hang, every rejection named', async (t) => {
  const bin = buildPort(t, 'host-asan');
  if (!bin) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  const file = resolve(TMP, `fuzz-${process.pid}.flm`);
  const env = { ...process.env, ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0:exitcode=99', UBSAN_OPTIONS: 'halt_on_error=1:exitcode=98' };
  const codes = new Map<string, number>();
  let accepted = 0;
  let runs = 0;
  const bases = (['f32', 'f16', 'i8'] as const).map(base);
  // the unmutated models are accepted
  for (const b of bases) {
    writeFileSync(file, b);
    const r = spawnSync(bin, ['--check', file], { encoding: 'utf8', env, timeout: 20000 });
    t.equal(r.status, 0, `valid model accepted: ${r.stdout.trim()} ${r.stderr.trim()}`);
  }
  const N = Number(process.env['FL_FUZZ_N'] ?? 240); // more for a longer local run
  let bad = 0;
  for (let i = 0; i < N; i++) {
    const m = mutate(bases[i % 3]!, rand(6));
    writeFileSync(file, m);
    let tsRejects = false;
    try {
      readFlm(m);
    } catch {
      tsRejects = true;
    }
    // every other run with the store read through the port, as on a part whose flash is not memory
    const r = spawnSync(bin, ['--check', file], { encoding: 'utf8', env: { ...env, FL_HOST_NOMAP: i % 2 ? '1' : '0' }, timeout: 20000 });
    runs++;
    const named = /^fl-host: ([A-Z][A-Z0-9_]+): \S/.exec(r.stderr);
    const ok = r.signal === null && ((r.status === 0 && /^ok /.test(r.stdout)) || (r.status === 2 && named !== null));
    if (!ok || (tsRejects && r.status !== 2)) {
      bad++;
      if (bad <= 5) {
        writeFileSync(resolve(TMP, `fuzz-fail-${i}.flm`), m);
        t.fail(`mutation ${i}: status ${r.status} signal ${r.signal} ts-rejects ${tsRejects}\n${r.stdout}${r.stderr.slice(0, 2000)}`);
      }
      continue;
    }
    if (r.status === 0) accepted++;
    else codes.set(named![1]!, (codes.get(named![1]!) ?? 0) + 1);
  }
  t.equal(bad, 0, `${runs} mutated models: ${accepted} accepted, rejections ${JSON.stringify(Object.fromEntries(codes))}`);
  t.ok(codes.size >= 5, 'the mutations reach several different checks');

  // well-formed files whose attributes would make eval run for hours: refused at prepare. The
  // writer refuses some of them now (FLM_ATTR_RANGE), so the attributes go into the header of a
  // valid file, which is then re-assembled with a correct CRC.
  const hostile = (attrs: GraphNode['attrs']): Uint8Array => {
    const valid = writeFlm({
      graph: { inputs: [{ name: 'x', shape: [1, 1, 4, 4] }], outputs: ['p.o'], nodes: [{ name: 'p', op: 'max_pool', inputs: ['x'], outputs: ['p.o'], attrs: { kernel: [2, 2] }, weights: {} }] },
      tensors: new Map(),
      metadata: {},
    });
    const { header, data } = split(valid);
    header.graph.nodes[0].attrs = attrs;
    return assemble(header, data);
  };
  for (const [what, attrs] of [
    ['a 65535 x 65535 pooling window over huge pads', { kernel: [65535, 65535], strides: [1, 1], pads: [65535, 65535, 65535, 65535], dilations: [1, 1] }],
    ['a pooling window larger than the padded input', { kernel: [9, 9], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1] }],
    ['a stride of 0', { kernel: [2, 2], strides: [0, 1], pads: [0, 0, 0, 0], dilations: [1, 1] }],
  ] as const) {
    writeFileSync(file, hostile(attrs as unknown as GraphNode['attrs']));
    const r = spawnSync(bin, ['--check', file], { encoding: 'utf8', env, timeout: 20000 });
    t.equal(r.status, 2, `${what}: refused (${r.stderr.trim()})`);
  }
});
