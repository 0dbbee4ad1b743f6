// Sessions made and dropped inside one synchronous stretch of work (the rank search of a
// compression makes one per trial) must not pile up their arenas. A session that keeps its arena in
// a plain ArrayBuffer (retainWeights: false) leaves it to the garbage collector: nothing may keep
// that buffer reachable after the session is gone, in particular not the finalization registry,
// whose held values live until its callbacks run, which waits for the event loop.
import t from 'tap';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Model } from '../../runtime/ir.js';
import { hasWasmSimd, referenceBackend, wasmBackend, type KernelBackend } from '../../runtime/kernels/backend.js';
import { Session } from '../../runtime/session.js';
import { missing } from '../support/require.js';

setFlagsFromString('--expose-gc');
const gcOnce = runInNewContext('gc') as () => void;
// V8 frees array buffers on a background sweeper after a collection; a second one finishes it.
const gc = (): void => {
  gcOnce();
  gcOnce();
};

/** One dense layer, 16 -> 16: at batch 32768 the arena holds 2 MB of input and 2 MB of output. */
function denseModel(): Model {
  const n = 16;
  const w = new Float32Array(n * n).map((_, i) => ((i * 7919) % 13) / 13 - 0.5);
  return {
    graph: {
      inputs: [{ name: 'x', shape: [-1, n] }],
      outputs: ['y'],
      nodes: [{ name: 'fc', op: 'dense', inputs: ['x'], outputs: ['y'], attrs: {}, weights: { weight: 'w' } }],
    },
    tensors: new Map([['w', { name: 'w', dtype: 'f32', shape: [n, n], data: w }]]),
    metadata: {},
  };
}

const MB = 2 ** 20;

async function heldAfter(backend: KernelBackend, sessions: number, dispose: boolean): Promise<{ growth: number; arena: number }> {
  const model = denseModel();
  const x = { shape: [32768, 16], data: new Float32Array(32768 * 16).fill(0.25) };
  // One session first, so that the kernels' own memory (the wasm staging area) has grown already.
  Session.create(model, { retainWeights: false, backend }).runBatch(x);
  gc();
  const start = process.memoryUsage().arrayBuffers;
  let arena = 0;
  for (let i = 0; i < sessions; i++) {
    const s = Session.create(model, { retainWeights: false, backend });
    s.runBatch(x);
    arena = s.arenaInfo()[0]!.arenaBytes;
    if (dispose) s.dispose();
  }
  // Still inside the same synchronous stretch: no finalization callback has had a chance to run.
  gc();
  return { growth: process.memoryUsage().arrayBuffers - start, arena };
}

const backends: Array<[string, KernelBackend | undefined]> = [['reference', referenceBackend]];
const wasm = hasWasmSimd() ? await wasmBackend() : undefined;
backends.push(['wasm-simd', wasm]);

for (const [name, backend] of backends) {
  t.test(`${name}: 40 sessions dropped without dispose() leave their heap arenas to the collector`, async (t) => {
    if (!backend) return void missing(t, 'WebAssembly SIMD is not available in this Node');
    const { growth, arena } = await heldAfter(backend, 40, false);
    t.ok(arena >= 4 * MB, `each arena holds the batch (${(arena / MB).toFixed(1)} MB)`);
    // Before the fix every arena stayed reachable: growth = 40 arenas (about 160 MB). The collector's
    // timing leaves some slack either way, so the bound is a quarter of that.
    t.ok(growth < 10 * arena, `array buffers grew by ${(growth / MB).toFixed(1)} MB after 40 sessions (${(40 * arena / MB).toFixed(0)} MB if every arena were kept)`);
  });
  t.test(`${name}: the same with dispose()`, async (t) => {
    if (!backend) return void missing(t, 'WebAssembly SIMD is not available in this Node');
    const { growth, arena } = await heldAfter(backend, 40, true);
    t.ok(growth < 10 * arena, `array buffers grew by ${(growth / MB).toFixed(1)} MB`);
  });
}
