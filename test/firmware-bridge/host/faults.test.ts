// The fault wrapper's byte-level behaviour on known streams: what each fault does, that a seed
// replays the same damage, and that the spec parser names what it cannot read.
import t from 'tap';
import { encodeFrame, FrameParser } from '../../../firmware-bridge/host/frame.js';
import { FaultStream, NO_FAULTS, parseFaultSpec } from '../../../firmware-bridge/host/transport.js';
import { seededRandom } from '../../../firmware-bridge/host/transport.js';

const frames = (n: number) => {
  const parts = Array.from({ length: n }, (_, i) => encodeFrame(i & 0xff, 0x85, { id: i, y: new Uint8Array(40).fill(i & 0xff) }));
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

t.test('spec parsing', async (t) => {
  t.same(parseFaultSpec('flip=0.01,drop=0.02,dup=0.03,cut=0.5,dir=rx,seed=9'), { flip: 0.01, drop: 0.02, dup: 0.03, cut: 0.5, dir: 'rx', seed: 9 });
  t.equal(parseFaultSpec('heavy,seed=3').seed, 3);
  t.ok(parseFaultSpec('light').flip > 0);
  t.throws(() => parseFaultSpec('flip=2'), { code: 'BAD_FAULT_SPEC' });
  t.throws(() => parseFaultSpec('bogus=1'), { code: 'BAD_FAULT_SPEC' });
  t.throws(() => parseFaultSpec('dir=up'), { code: 'BAD_FAULT_SPEC' });
});

t.test('no faults: bytes pass unchanged', async (t) => {
  const s = new FaultStream(NO_FAULTS, seededRandom(1));
  const b = frames(20);
  t.same([...s.apply(b)], [...b]);
});

t.test('each fault kind, counted, and a parser loses exactly the damaged frames', async (t) => {
  const b = frames(400);
  for (const kind of ['flip', 'drop', 'dup', 'cut'] as const) {
    const spec = { ...NO_FAULTS, [kind]: kind === 'cut' ? 0.1 : 0.002, seed: 5 };
    const s = new FaultStream(spec, seededRandom(5));
    const out = s.apply(b);
    const c = s.counts;
    const n = kind === 'flip' ? c.flipped : kind === 'drop' ? c.dropped : kind === 'dup' ? c.duplicated : c.cut;
    t.ok(n > 0, `${kind}: some faults injected (${n})`);
    if (kind === 'drop') t.equal(out.length, b.length - c.dropped);
    if (kind === 'dup') t.equal(out.length, b.length + c.duplicated);
    if (kind === 'flip') t.equal(out.length, b.length);
    // Whatever arrives intact is a frame that was sent, and nothing invalid gets through.
    const got: number[] = [];
    const p = new FrameParser((f) => got.push(f.seq));
    p.push(out);
    t.ok(got.length < 400, `${kind}: frames lost (${400 - got.length})`);
    t.ok(got.length > 400 - 4 * n - 2, `${kind}: at most a few frames lost per fault`);
    // Same seed, same damage.
    const again = new FaultStream(spec, seededRandom(5)).apply(b);
    t.same([...again], [...out], `${kind}: replayable from its seed`);
  }
});

t.test('a cut frame loses its tail and its closing zero', async (t) => {
  const f = encodeFrame(1, 0x81, { have: 123456 });
  const s = new FaultStream({ ...NO_FAULTS, cut: 1 }, seededRandom(3));
  const out = s.apply(f);
  t.equal(out[0], 0, 'leading zero kept');
  t.ok(out.length < f.length - 1, 'tail removed');
  t.notOk(out.subarray(1).includes(0), 'closing zero removed');
  t.same([...out.subarray(1)], [...f.subarray(1, out.length)], 'what remains is the frame head');
});
