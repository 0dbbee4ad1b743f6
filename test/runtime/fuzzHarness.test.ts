// The short CI run of the kept fuzz harness (bench/fuzzFlm.ts; the long run is bench/fuzz.ts):
// raw and structure-aware mutants of seed models covering every op kind, through the reader, a
// session and one inference on each kernel backend, and every 4th through the firmware's host
// build. No untyped error, no call over 5 s, and the firmware refuses whatever the reader refuses.
import { resolve } from 'node:path';
import t from 'tap';
import { fuzzFlm, mutant, rng, seedModels } from '../../bench/fuzzFlm.js';
import { readFlm } from '../../runtime/format/index.js';
import { hasWasmSimd, referenceBackend, wasmBackend, type KernelBackend } from '../../runtime/kernels/backend.js';
import { Session } from '../../runtime/session.js';
import { TMP, buildPort } from '../firmware-bridge/firmware/support.js';
import { missing } from '../support/require.js';

t.test('the seeds are valid models that run', async (t) => {
  for (const s of seedModels()) {
    const m = readFlm(s);
    const shape = m.graph.inputs[0]!.shape.map((d) => (d < 0 ? 1 : d));
    const y = Session.create(m).runBatch({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) });
    t.ok(y.data.every(Number.isFinite), `${m.graph.nodes.length} nodes run to finite outputs`);
  }
});

t.test('mutants are reproducible and mostly differ from their seed', async (t) => {
  const seed = seedModels()[0]!;
  const a = Array.from({ length: 50 }, ((r) => () => mutant(seed, r))(rng(3)));
  const b = Array.from({ length: 50 }, ((r) => () => mutant(seed, r))(rng(3)));
  t.same(a.map((x) => Buffer.from(x).toString('hex')), b.map((x) => Buffer.from(x).toString('hex')), 'same seed, same mutants');
  t.ok(a.filter((x) => Buffer.compare(Buffer.from(x), Buffer.from(seed)) !== 0).length >= 40, 'at least 40 of 50 differ from the seed');
});

t.test('a short fuzz run: typed outcomes only, firmware agrees', async (t) => {
  const backends: KernelBackend[] = [referenceBackend];
  if (hasWasmSimd()) backends.push(await wasmBackend());
  else missing(t, 'this Node has no WebAssembly SIMD');
  const firmware = buildPort(t, 'host');
  const r = fuzzFlm({ count: 1500, seed: 20261206, backends, ...(firmware ? { firmware } : {}), firmwareEvery: 4, saveDir: resolve(TMP, 'fuzz') });
  t.same(r.findings, [], `${r.mutants} mutants: ${r.accepted} accepted, ${r.inferences} inferences, refusals ${JSON.stringify(r.refused)}, session refusals ${JSON.stringify(r.sessionRefused)}`);
  t.ok(Object.keys(r.refused).length >= 12, 'the mutants reach at least 12 different reader checks');
  t.ok(Object.keys(r.refused).some((c) => c.startsWith('FLM_ATTR_')), 'and the attribute table');
  t.ok(r.inferences > 100, 'and many run to an inference');
  if (firmware) t.equal(r.firmwareAgreed, r.firmwareChecked, `firmware checked ${r.firmwareChecked} mutants, each clean and agreeing`);
});
