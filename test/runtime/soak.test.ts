// Memory that stays flat: a session given back with dispose() leaves nothing behind in its kernel
// backend (arenas, retained weights, arrays its layers derived from them). LeNet-5 compressed by
// Tucker at ratio 10 is loaded from its bytes, run once and disposed 2,000 times on the wasm
// backend: after the first 100 cycles the backend holds exactly what it held before them, its
// linear memory does not grow, and the process RSS stays within a bound. The long run
// (10,000 cycles, 100,000 inferences, RSS over time) is bench/soak.ts.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { writeFlm } from '../../converter/writer.js';
import { readFlm } from '../../runtime/format/reader.js';
import { hasWasmSimd, wasmBackend } from '../../runtime/kernels/backend.js';
import { numel } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import { missing } from '../support/require.js';
import { ratio10 } from './support/models.js';

const CYCLES = 2000;
const WARM = 100;
/** RSS may wander with the JS heap and the allocator; the leak this guards against was ~180 KB per cycle. */
const RSS_BOUND_MB = 8;

// A full collection before each RSS reading, so that garbage not yet collected is not counted as growth.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const NOTHING = { retainedArrays: 0, retainedBytes: 0, liveBytes: 0 };
const heldBy = (b: { held?: () => Record<string, number> }) => {
  const h = b.held!();
  return { retainedArrays: h['retainedArrays'], retainedBytes: h['retainedBytes'], liveBytes: h['liveBytes'] };
};

t.test('2,000 load / run / dispose cycles leave the wasm backend as they found it', async (t) => {
  if (!hasWasmSimd()) return void missing(t, 'this Node has no WebAssembly SIMD');
  const model = await ratio10(t, 'lenet5_fashion', 'tucker');
  if (!model) return;
  const bytes = writeFlm(model);
  const backend = await wasmBackend();
  const shape = model.graph.inputs[0]!.shape.map((d) => (d < 0 ? 1 : d));
  const x = { shape, data: new Float32Array(numel(shape)).fill(0.5) };
  const cycle = () => {
    const s = Session.create(readFlm(bytes), { backend });
    s.runBatch(x);
    s.dispose();
  };
  t.same(heldBy(backend), NOTHING, 'a fresh backend holds nothing');
  // While a session lives it does hold weights: the check below is not vacuous.
  const live = Session.create(readFlm(bytes), { backend });
  live.runBatch(x);
  const during = heldBy(backend);
  t.ok(during.retainedArrays > 0 && during.retainedBytes > 0 && during.liveBytes > during.retainedBytes, 'a live session retains weights and an arena');
  live.dispose();
  t.same(heldBy(backend), NOTHING, 'dispose gives all of it back');
  live.dispose();
  t.same(live.runBatch(x).shape, [1, 10], 'a disposed session still runs (a new arena, weights copied per call)');
  live.dispose();

  for (let i = 0; i < WARM; i++) cycle();
  gc();
  const rss0 = process.memoryUsage().rss;
  const held0 = heldBy(backend);
  const wasmBytes0 = backend.held!().memoryBytes;
  for (let i = WARM; i < CYCLES; i++) cycle();
  gc();
  const growthMB = (process.memoryUsage().rss - rss0) / 2 ** 20;
  t.same(heldBy(backend), held0, `after ${CYCLES} cycles the backend holds what it held after ${WARM}`);
  t.same(held0, NOTHING, 'which is nothing');
  t.equal(backend.held!().memoryBytes, wasmBytes0, 'linear memory did not grow');
  t.ok(growthMB < RSS_BOUND_MB, `RSS grew ${growthMB.toFixed(1)} MB over ${CYCLES - WARM} cycles (bound ${RSS_BOUND_MB} MB)`);
});

t.test('a session refused during prepare gives back what it had retained', async (t) => {
  if (!hasWasmSimd()) return void missing(t, 'this Node has no WebAssembly SIMD');
  const model = await ratio10(t, 'lenet5_fashion', 'tucker');
  if (!model) return;
  const backend = await wasmBackend();
  const bad = readFlm(writeFlm(model));
  // The last node gets a weight role that names no stored tensor: prepare fails after earlier nodes retained theirs.
  const last = bad.graph.nodes[bad.graph.nodes.length - 1]!;
  bad.graph.nodes[bad.graph.nodes.length - 1] = { ...last, op: 'dense', weights: { bias: [...bad.tensors.keys()][0]! } };
  t.throws(() => Session.create(bad, { backend }));
  t.same(heldBy(backend), NOTHING, 'nothing held after the refusal');
});
