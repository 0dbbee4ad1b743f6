// The runtime's own header decoder against msgpackr (what the writer encodes with): the same
// values for every type of the plain subset, and the subset's refusals.
import { Packr, Unpackr } from 'msgpackr';
import t from 'tap';
import { FlmError } from '../../../runtime/format/errors.js';
import { decodePlainMsgpack } from '../../../runtime/format/msgpack-subset.js';

const pack = (v: unknown) => new Packr({ useRecords: false }).pack(v);
const unpack = (b: Uint8Array) => new Unpackr({ useRecords: false, mapsAsObjects: true }).unpack(b);

/** msgpackr hands 64-bit integers over as bigints; ours gives numbers where they are safe. */
function safeNumbers(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (Array.isArray(v)) return v.map(safeNumbers);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, safeNumbers(x)]));
  return v;
}

t.test('same values as msgpackr', async (t) => {
  const values: unknown[] = [
    null, true, false, 0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53) + 1,
    0.5, -1.25, 1e-300, Math.PI, '', 'a', 'é€😀', 'x'.repeat(31), 'x'.repeat(32), 'y'.repeat(300), 'z'.repeat(70000),
    [], [1, [2, [3, []]]], Array.from({ length: 20 }, (_, i) => i * 1000),
    {}, { a: 1, b: [true, null], c: { d: 'e' } }, Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, i])),
    { graph: { nodes: [{ name: 'n', op: 3, attrs: { strides: [1, 1] } }] }, metadata: { 'a.b': 0.1 } },
  ];
  for (const v of values) {
    const b = pack(v);
    t.same(decodePlainMsgpack(b), safeNumbers(unpack(b)), `${JSON.stringify(v)?.slice(0, 40)}`);
  }
  // float32 and 64-bit integers as another writer may emit them
  const f32 = Uint8Array.of(0xca, 0x3f, 0xc0, 0x00, 0x00);
  t.equal(decodePlainMsgpack(f32), 1.5);
  t.equal(decodePlainMsgpack(Uint8Array.of(0xcf, 0, 0, 0, 0, 0, 0, 1, 0)), 256, 'uint64 256');
  t.equal(decodePlainMsgpack(Uint8Array.of(0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe)), -2, 'int64 -2');
  t.equal(typeof decodePlainMsgpack(Uint8Array.of(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), 'bigint', 'uint64 beyond 2^53 stays a bigint');
});

t.test('a "__proto__" key is an own key, not a prototype', async (t) => {
  // fixmap(1) { "__proto__": { "x": 1 } }
  const key = new TextEncoder().encode('__proto__');
  const b = Uint8Array.from([0x81, 0xa0 | key.length, ...key, 0x81, 0xa1, 0x78, 0x01]);
  const o = decodePlainMsgpack(b) as Record<string, unknown>;
  t.ok(Object.hasOwn(o, '__proto__'));
  t.equal(Object.getPrototypeOf(o), Object.prototype);
  t.equal((o as { x?: unknown }).x, undefined);
});

t.test('refuses what is outside the subset', async (t) => {
  const bad: Array<[string, Uint8Array]> = [
    ['bin 8', Uint8Array.of(0xc4, 1, 0)],
    ['ext', Uint8Array.of(0xd4, 1, 0)],
    ['0xc1', Uint8Array.of(0xc1)],
    ['non-string key', Uint8Array.of(0x81, 0x01, 0x02)],
    ['duplicate key', Uint8Array.of(0x82, 0xa1, 0x61, 1, 0xa1, 0x61, 2)],
    ['truncated', Uint8Array.of(0x92, 1)],
    ['bytes left over', Uint8Array.of(1, 2)],
    ['bad UTF-8', Uint8Array.of(0xa1, 0xff)],
    ['count beyond the bytes', Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff)],
    ['too deep', Uint8Array.from(Array.from({ length: 200 }, () => 0x91).concat([0]))],
  ];
  for (const [what, b] of bad) {
    let code = 'no error';
    try {
      decodePlainMsgpack(b);
    } catch (e) {
      code = e instanceof FlmError ? e.code : String(e);
    }
    t.equal(code, 'FLM_HEADER_DECODE', what);
  }
});
