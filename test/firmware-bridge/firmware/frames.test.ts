// The firmware tests' frame client (Frames in support.ts) on a scripted line, no device: the
// conditions behind "timeout waiting for answer to kind 3; got \u0000" forced one by one. A request
// the device dropped (its bytes arrived more than 200 ms apart) is resent with the same bytes; a
// byte run the device printed outside a frame (a Firmata answer: a zero, then bytes, no closing
// zero) does not take the real answer's leading zero with it; a stale answer is skipped. Last, the
// host port of the firmware with a request really cut by a 250 ms gap.
import t from 'tap';
import CRC32 from 'crc-32';
import { pack, unpack } from 'msgpackr';
import { Frames, Line, buildPort, nextCandidate, startDevice, type FrameLine } from './support.js';

// COBS written here, independent of support.ts: the encoder for short answers (< 254 bytes), the
// decoder for any request (a 0xFF block implies no zero).
function cobs(raw: Uint8Array): Uint8Array {
  const out: number[] = [];
  let block: number[] = [];
  for (const b of raw) {
    if (b === 0) { out.push(block.length + 1, ...block); block = []; } else block.push(b);
  }
  out.push(block.length + 1, ...block);
  return Uint8Array.from(out);
}
function uncobs(enc: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < enc.length;) {
    const code = enc[i++]!;
    for (let k = 1; k < code; k++) out.push(enc[i++]!);
    if (code < 0xff && i < enc.length) out.push(0);
  }
  return Uint8Array.from(out);
}
/** A device answer as on the wire: 0x00, COBS(seq, kind, body, crc), 0x00. */
function answer(seq: number, kind: number, body: unknown): Uint8Array {
  const b = pack(body);
  const raw = new Uint8Array(2 + b.length + 4);
  raw[0] = seq; raw[1] = kind; raw.set(b, 2);
  new DataView(raw.buffer).setUint32(2 + b.length, CRC32.buf(raw.subarray(0, 2 + b.length)) >>> 0, true);
  return Uint8Array.from([0, ...cobs(raw), 0]);
}

/** A line whose device is a script: it sees each write (0-based count) and returns the bytes it sends back. */
class ScriptedLine implements FrameLine {
  buf = Buffer.alloc(0);
  writes: Uint8Array[] = [];
  private waiters: Array<() => void> = [];
  constructor(private readonly device: (req: { seq: number; kind: number; body: unknown }, n: number) => Uint8Array[]) {}
  write(b: Uint8Array | string): void {
    const bytes = typeof b === 'string' ? Buffer.from(b, 'latin1') : Uint8Array.from(b);
    this.writes.push(bytes);
    if (bytes[0] !== 0 || bytes[bytes.length - 1] !== 0) throw new Error('a request frame starts and ends with a zero');
    const raw = uncobs(bytes.subarray(1, bytes.length - 1));
    const req = { seq: raw[0]!, kind: raw[1]!, body: raw.length > 6 ? unpack(raw.subarray(2, raw.length - 4)) : undefined };
    const out = this.device(req, this.writes.length - 1);
    setTimeout(() => {
      for (const o of out) this.buf = Buffer.concat([this.buf, o]);
      for (const w of this.waiters.splice(0)) w();
    }, 5);
  }
  async until(pred: (b: Buffer) => number, timeoutMs: number, what: string): Promise<Buffer> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const at = pred(this.buf);
      if (at >= 0) {
        const out = this.buf.subarray(0, at);
        this.buf = this.buf.subarray(at);
        return out;
      }
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what}; got ${JSON.stringify(this.buf.toString('latin1'))}`);
      await new Promise<void>((res) => {
        const timer = setTimeout(res, left);
        this.waiters.push(() => { clearTimeout(timer); res(); });
      });
    }
  }
}

t.test('nextCandidate: zeros delimit, the closing zero stays for the next frame', async (t) => {
  t.equal(nextCandidate(Uint8Array.from([0, 0, 5])), undefined, 'no closing zero yet');
  t.same(nextCandidate(Uint8Array.from([0, 0, 5, 6, 0, 7])), { skip: 4, frame: Uint8Array.from([5, 6]) }, 'idle zeros skipped, frame up to (not with) its zero');
  t.same(nextCandidate(Uint8Array.from([9, 0, 2, 1, 0])), { skip: 1, frame: Uint8Array.from([9]) }, 'bytes before a zero are a candidate of their own');
});

t.test('a dropped request, then a Firmata-style byte run: the resend is answered', async (t) => {
  // Write 0: the device lost the frame (cut by a gap) and its tail reached Firmata, which answered
  // "0x00 0xF9 0x02" (no closing zero). Write 1, the same bytes: answered.
  const line = new ScriptedLine((req, n) => (n === 0 ? [Uint8Array.from([0, 0xf9, 0x02])] : [answer(req.seq, req.kind | 0x80, { have: 2048 })]));
  const f = new Frames(line, 200);
  const r = await f.call(0x03, { off: 0, data: new Uint8Array(2048).fill(7) }, 5000);
  t.same([r.kind, r.body], [0x83, { have: 2048 }], 'the answer to the resend');
  t.equal(line.writes.length, 2, 'sent twice');
  t.same(line.writes[1], line.writes[0], 'the resend is the same bytes (same seq, same CRC)');
});

t.test('a byte run before the answer in the same read does not eat its leading zero', async (t) => {
  const line = new ScriptedLine((req) => [Uint8Array.from([0, 0xf0, 0x79, 0x02]), answer(req.seq, req.kind | 0x80, { proto: 1 })]);
  const f = new Frames(line, 10_000);
  const r = await f.call(0x01, undefined, 2000);
  t.same([r.kind, r.body], [0x81, { proto: 1 }], 'answered at the first try');
  t.equal(line.writes.length, 1, 'no resend');
  t.equal(line.buf.length, 0, 'the answer went with its closing zero: the line is left as before the call');
});

t.test('a stale answer (an earlier seq) and a broken frame are skipped', async (t) => {
  const line = new ScriptedLine((req) => {
    const broken = answer(req.seq, req.kind | 0x80, { x: 1 });
    broken[3] ^= 0x40; // CRC no longer matches
    return [answer((req.seq + 255) & 0xff, req.kind | 0x80, { stale: true }), broken, answer(req.seq, req.kind | 0x80, { fresh: true })];
  });
  const r = await new Frames(line, 10_000).call(0x05, { id: 1 }, 2000);
  t.same(r.body, { fresh: true }, 'the answer with the request seq and a good CRC');
});

t.test('no answer at all: resent until the timeout, then the one-line timeout error', async (t) => {
  const line = new ScriptedLine(() => []);
  await t.rejects(new Frames(line, 100).call(0x03, { off: 0 }, 450), /timeout waiting for answer to kind 3/);
  t.ok(line.writes.length >= 4 && line.writes.length <= 5, `sent ${line.writes.length} times in 450 ms at about 112 ms per try (a quarter of the timeout, over 100 ms + 1 ms per 2 request bytes)`);
});

t.test('the host port drops a request cut by a 250 ms gap; the resend is answered', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  const dev = await startDevice('host', bin, ['--flash', '4096']);
  t.teardown(() => dev.stop());
  const line = await Line.open(dev.path);
  t.teardown(() => line.close());
  // The first request goes out in two halves 250 ms apart (over the device's 200 ms gap rule).
  let writes = 0;
  const cut: FrameLine = {
    write: (b) => {
      if (writes++ > 0) return line.write(b);
      const bytes = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
      const half = bytes.length >> 1;
      line.write(bytes.subarray(0, half));
      setTimeout(() => line.write(bytes.subarray(half)), 250);
    },
    until: (pred, ms, what) => line.until(pred, ms, what),
  };
  const h = await new Frames(cut, 1000).call(0x01, undefined, 5000);
  t.same([h.kind, h.body['proto']], [0x81, 1], 'hello answered');
  t.equal(writes, 2, 'after one resend');
  const st = await new Frames(line).call(0x06);
  t.equal(st.body['bad_frames'], 1, 'the device counted the cut frame as bad');
});
