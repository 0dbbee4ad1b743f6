// COBS and frame codec against known byte strings (COBS examples written out by hand from the
// published table of examples) and round trips; the stream parser's resync rules.
import t from 'tap';
import { cobsDecode, cobsEncode } from '../../../firmware-bridge/host/cobs.js';
import { crc32, decodeFrameBytes, encodeFrame, encodeRaw, FrameParser, packBody, unpackBody, type Frame } from '../../../firmware-bridge/host/frame.js';
import { seededRandom } from '../../../firmware-bridge/host/transport.js';

const hex = (s: string) => Uint8Array.from(s.trim().split(/\s+/).filter(Boolean).map((h) => parseInt(h, 16)));
const range = (a: number, b: number) => Uint8Array.from({ length: b - a + 1 }, (_, i) => a + i);
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

t.test('COBS: the table of examples', async (t) => {
  const cases: Array<[string, Uint8Array, Uint8Array]> = [
    ['empty', hex(''), hex('01')],
    ['00', hex('00'), hex('01 01')],
    ['00 00', hex('00 00'), hex('01 01 01')],
    ['00 11 00', hex('00 11 00'), hex('01 02 11 01')],
    ['11 22 00 33', hex('11 22 00 33'), hex('03 11 22 02 33')],
    ['11 22 33 44', hex('11 22 33 44'), hex('05 11 22 33 44')],
    ['11 00 00 00', hex('11 00 00 00'), hex('02 11 01 01 01')],
    ['01..FE (254 bytes)', range(0x01, 0xfe), cat(hex('FF'), range(0x01, 0xfe))],
    ['00..FE (255 bytes)', range(0x00, 0xfe), cat(hex('01 FF'), range(0x01, 0xfe))],
    ['01..FF (255 bytes)', range(0x01, 0xff), cat(hex('FF'), range(0x01, 0xfe), hex('02 FF'))],
    ['02..FF 00 (255 bytes)', cat(range(0x02, 0xff), hex('00')), cat(hex('FF'), range(0x02, 0xff), hex('01 01'))],
    ['03..FF 00 01 (255 bytes)', cat(range(0x03, 0xff), hex('00 01')), cat(hex('FE'), range(0x03, 0xff), hex('02 01'))],
  ];
  for (const [name, raw, enc] of cases) {
    t.same([...cobsEncode(raw)], [...enc], `encode ${name}`);
    t.same([...cobsDecode(enc)], [...raw], `decode ${name}`);
  }
});

t.test('COBS: round trips and no zeros, random lengths', async (t) => {
  const rnd = seededRandom(42);
  for (let k = 0; k < 300; k++) {
    const n = Math.floor(rnd() * 1200);
    const raw = Uint8Array.from({ length: n }, () => (rnd() < 0.2 ? 0 : Math.floor(rnd() * 256)));
    const enc = cobsEncode(raw);
    t.notOk(enc.includes(0), `no zero in ${n}-byte encoding`);
    t.ok(enc.length <= n + Math.floor(n / 254) + 1, 'overhead at most one byte per 254');
    if (!Buffer.from(cobsDecode(enc)).equals(Buffer.from(raw))) t.fail(`round trip of ${n} bytes`);
  }
});

t.test('COBS: invalid encodings throw CobsError', async (t) => {
  t.throws(() => cobsDecode(hex('05 11 22')), { code: 'COBS_TRUNCATED' }, 'block runs past the end');
  t.throws(() => cobsDecode(hex('03 11 00')), { code: 'COBS_ZERO' }, 'zero inside a block');
  t.throws(() => cobsDecode(hex('00')), { code: 'COBS_ZERO' }, 'zero code byte');
});

t.test('frame: layout, CRC and msgpack body', async (t) => {
  // seq 7, kind hello, no body: raw = 07 01 crc32(07 01) LE.
  const raw = encodeRaw(7, 1, new Uint8Array(0));
  const crc = crc32(hex('07 01'));
  t.same([...raw], [7, 1, crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24]);
  // CRC32 check value of the IEEE polynomial.
  t.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  const wire = encodeFrame(7, 1);
  t.equal(wire[0], 0);
  t.equal(wire[wire.length - 1], 0);
  t.notOk(wire.subarray(1, -1).includes(0));
  const f = decodeFrameBytes(wire.subarray(1, -1)) as Frame;
  t.same([f.seq, f.kind, f.body.length], [7, 1, 0]);

  // Plain msgpack: a fixmap with string keys, bin for bytes.
  t.same([...packBody({ have: 5 })], [...hex('81 a4 68 61 76 65 05')]);
  t.same([...packBody({ x: new Uint8Array([1, 2]) })], [...hex('81 a1 78 c4 02 01 02')]);
  const body = { id: 300, x: new Uint8Array([0, 255, 0]), dtype: 'u8', div: 255 };
  const g = decodeFrameBytes(encodeFrame(255, 5, body).subarray(1, -1)) as Frame;
  const back = unpackBody(g.body) as typeof body;
  t.equal(back.id, 300);
  t.same([...back.x], [0, 255, 0]);

  // Every single-bit error is caught by the CRC (or by COBS).
  const clean = encodeFrame(3, 2, { size: 1000, crc: 12345 }).subarray(1, -1);
  let caught = 0;
  for (let i = 0; i < clean.length; i++) {
    for (let b = 0; b < 8; b++) {
      const bad = clean.slice();
      bad[i]! ^= 1 << b;
      if (bad.includes(0)) {
        caught++;
        continue;
      }
      if (typeof decodeFrameBytes(bad) === 'string') caught++;
    }
  }
  t.equal(caught, clean.length * 8, 'all single-bit flips rejected');
  t.equal(decodeFrameBytes(hex('02 01')), 'short');
  t.equal(decodeFrameBytes(encodeFrame(1, 5, { x: new Uint8Array(100) }).subarray(1, -1), 50), 'long');
});

t.test('stream parser: idle fill, resync after a cut, other dialects, gaps', async (t) => {
  const got: Frame[] = [];
  const other: number[] = [];
  let now = 0;
  const p = new FrameParser((f) => got.push(f), { onOther: (b) => other.push(...b), now: () => now });
  const a = encodeFrame(1, 0x81, { have: 1 });
  const b = encodeFrame(2, 0x81, { have: 2 });
  const c = encodeFrame(3, 0x81, { have: 3 });
  // Text before any frame goes to the other dialect.
  p.push(new TextEncoder().encode('m-ready\r\n'));
  // Idle fill between frames, then a frame cut short (its tail and closing zero lost): the next
  // frame's leading zero ends the broken one, and the frame after it still arrives.
  p.push(cat(hex('00 00 00'), a, hex('00 00'), b.subarray(0, 5), c, b));
  t.same(got.map((f) => f.seq), [1, 3, 2]);
  t.equal(p.counters.dropped.crc + p.counters.dropped.cobs + p.counters.dropped.short, 1, 'one frame lost');
  t.equal(String.fromCharCode(...other), 'm-ready\r\n');
  // A partial frame followed by a gap of more than 200 ms is dropped.
  p.push(a.subarray(0, 4));
  now += 250;
  p.push(a.subarray(4));
  t.equal(p.counters.dropped.gap, 1);
  // After the gap the parser is back in dialect detection: the tail's bytes are "other" until its
  // closing zero, which opens a frame; the next whole frame then decodes.
  p.push(c);
  t.same(got.map((f) => f.seq), [1, 3, 2, 3]);
});
