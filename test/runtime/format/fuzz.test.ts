// Random and mutated bytes: every outcome is a Model or an FlmError, never another exception or a hang.
// Half of the mutations get their CRC repaired so that they reach the header and layout checks.
import t from 'tap';
import { writeFlm } from '../../../converter/writer.js';
import { FlmError, MAGIC, dataOffsetFor, PREAMBLE_SIZE, readFlm, type FlmErrorCode } from '../../../runtime/format/index.js';
import { assemble, fixCrc, sampleModel, split } from './fixtures/flm.js';
import type { Asserts } from './fixtures/flm.js';

/** xorshift32: reproducible without a dependency. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s % n;
  };
}

interface Tally { ok: number; codes: Map<string, number>; }

function attempt(t: Asserts, bytes: Uint8Array, tally: Tally, what: string): void {
  let model;
  try {
    model = readFlm(bytes);
  } catch (e) {
    if (!(e instanceof FlmError)) {
      t.fail(`${what}: threw ${String(e)}`);
      return;
    }
    if (e.message.includes('unexpected failure')) t.fail(`${what}: reader fell through to its catch-all: ${String(e.cause)}`);
    tally.codes.set(e.code, (tally.codes.get(e.code) ?? 0) + 1);
    return;
  }
  tally.ok++;
  // Whatever the reader accepts, the writer accepts too, and it reads back the same.
  try {
    const again = readFlm(writeFlm(model));
    if (again.tensors.size !== model.tensors.size) t.fail(`${what}: rewrite changed the tensor count`);
  } catch (e) {
    t.fail(`${what}: reader accepted a model the writer refuses: ${String(e)}`);
  }
}

const valid = writeFlm(sampleModel());

t.test('random byte strings', async (t) => {
  const r = rng(12345);
  const tally: Tally = { ok: 0, codes: new Map() };
  for (let i = 0; i < 3000; i++) {
    const b = Uint8Array.from({ length: r(300) }, () => r(256));
    // A third look like a real file (magic, version, consistent lengths, often a right CRC),
    // so they get past the preamble checks and into the msgpack scanner.
    if (i % 3 === 0 && b.length >= PREAMBLE_SIZE + 1) {
      const dv = new DataView(b.buffer);
      b.set(MAGIC, 0);
      dv.setUint16(4, 1, true);
      dv.setUint16(6, 0, true);
      const headerLen = 1 + r(b.length - PREAMBLE_SIZE);
      dv.setUint32(8, headerLen, true);
      dv.setBigUint64(16, BigInt(Math.max(0, b.length - dataOffsetFor(headerLen))), true);
      if (i % 2 === 0) fixCrc(b);
    }
    attempt(t, b, tally, `random #${i}`);
  }
  t.ok(tally.codes.size >= 5, `reached ${[...tally.codes.keys()].join(', ')}`);
});

type Mutation = (b: Uint8Array, r: (n: number) => number) => Uint8Array;

const mutations: Record<string, Mutation> = {
  bitFlips: (b, r) => {
    const c = b.slice();
    for (let k = 1 + r(4); k > 0; k--) { const i = r(c.length); c[i]! ^= 1 << r(8); }
    return c;
  },
  headerByte: (b, r) => {
    const c = b.slice();
    c[PREAMBLE_SIZE + r(Math.min(400, c.length - PREAMBLE_SIZE))] = r(256);
    return c;
  },
  truncate: (b, r) => b.slice(0, r(b.length)),
  insert: (b, r) => {
    const i = r(b.length + 1);
    const ins = Uint8Array.from({ length: 1 + r(8) }, () => r(256));
    const c = new Uint8Array(b.length + ins.length);
    c.set(b.subarray(0, i)); c.set(ins, i); c.set(b.subarray(i), i + ins.length);
    return c;
  },
  remove: (b, r) => {
    const i = r(b.length);
    const n = Math.min(1 + r(8), b.length - i);
    const c = new Uint8Array(b.length - n);
    c.set(b.subarray(0, i)); c.set(b.subarray(i + n), i);
    return c;
  },
  headerValue: (b, r) => {
    // Replace one value anywhere in the decoded header with a value of a random type.
    const p = split(b);
    const pool = [0, -1, 1, 2 ** 40, 1.5, NaN, 'x', '', 'fc1.u', 'h1', null, true, [], {}, [1, 2], { a: 1 }, 99999, 63];
    let node: any = p.header;
    for (let depth = 0; depth < 6; depth++) {
      const keys = Object.keys(node);
      if (keys.length === 0) break;
      const k = keys[r(keys.length)]!;
      const child = node[k];
      if (child === null || typeof child !== 'object' || r(3) === 0) {
        node[k] = pool[r(pool.length)];
        break;
      }
      node = child;
    }
    return assemble(p.header, p.data);
  },
  headerLength: (b, r) => {
    const c = b.slice();
    const dv = new DataView(c.buffer);
    const choices = [0, 1, dv.getUint32(8, true) + r(130) - 65, 0xffffffff, 16 * 1024 * 1024, r(1 << 20)];
    dv.setUint32(8, Math.max(0, choices[r(choices.length)]!) >>> 0, true);
    return c;
  },
  dataLength: (b, r) => {
    const c = b.slice();
    const dv = new DataView(c.buffer);
    dv.setBigUint64(16, BigInt(r(2)) ? BigInt(r(4096)) : 0xffffffffffffffffn - BigInt(r(1000)), true);
    return c;
  },
};

t.test('mutations of a valid file', async (t) => {
  const r = rng(987654321);
  const names = Object.keys(mutations);
  const tally: Tally = { ok: 0, codes: new Map() };
  const started = Date.now();
  for (let i = 0; i < 4800; i++) {
    const name = names[i % names.length]!;
    let b = mutations[name]!(valid, r);
    if (r(2) === 1) b = fixCrc(b);
    attempt(t, b, tally, `${name} #${i}`);
  }
  const reached = [...tally.codes.entries()].map(([c, n]) => `${c}:${n}`).join(' ');
  t.comment(`accepted ${tally.ok}; ${reached}; ${Date.now() - started} ms`);
  for (const c of ['FLM_CRC_MISMATCH', 'FLM_HEADER_DECODE', 'FLM_FILE_SIZE_MISMATCH', 'FLM_HEADER_SCHEMA', 'FLM_BAD_GRAPH'] as FlmErrorCode[]) {
    t.ok(tally.codes.has(c), `reached ${c}`);
  }
});
