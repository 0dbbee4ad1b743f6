// bench/lib/runner.ts with `trace` (bench/rssBreakdown.ts): the RSS after each step of a session's
// life, in order, the peak never falling, the last one the result's peak; what the session holds;
// and a threaded session whose cost model splits nothing has started no worker thread (each is a
// Node environment of its own, about 10 MB of RSS: runtime/kernels/threads.ts starts them lazily).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runInChild } from '../../bench/lib/runBench.js';
import { writeFlm } from '../../converter/writer.js';
import { hasWasmSimd, hasWasmThreads } from '../../runtime/kernels/backend.js';
import type { Model, StoredTensor } from '../../runtime/ir.js';
import { missing } from '../support/require.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-rsstrace-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const vals = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k) * 0.3);

/** [N, 2, 9, 9] -> conv 6x2x3x3 (pad 1) -> relu -> flatten -> dense 486 -> 5: far too small to split. */
function convModel(): Model {
  const tensors: StoredTensor[] = [
    { name: 'c.weight', dtype: 'f32', shape: [6, 2, 3, 3], data: vals(108, 0.7) },
    { name: 'c.bias', dtype: 'f32', shape: [6], data: vals(6, 0.4) },
    { name: 'f.weight', dtype: 'f32', shape: [5, 486], data: vals(5 * 486, 1.3) },
    { name: 'f.bias', dtype: 'f32', shape: [5], data: vals(5, 2.1) },
  ];
  return {
    graph: {
      inputs: [{ name: 'x', shape: [-1, 2, 9, 9] }],
      outputs: ['y'],
      nodes: [
        { name: 'c', op: 'conv2d', inputs: ['x'], outputs: ['h'], attrs: { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }, weights: { weight: 'c.weight', bias: 'c.bias' } },
        { name: 'act', op: 'relu', inputs: ['h'], outputs: ['a'], attrs: {}, weights: {} },
        { name: 'flat', op: 'flatten', inputs: ['a'], outputs: ['z'], attrs: { axis: 1 }, weights: {} },
        { name: 'f', op: 'dense', inputs: ['z'], outputs: ['y'], attrs: {}, weights: { weight: 'f.weight', bias: 'f.bias' } },
      ],
    },
    tensors: new Map(tensors.map((x) => [x.name, x])),
    metadata: { 'source.model': 'conv' },
  };
}

t.test('a traced runner child reports RSS per step and what its threaded session holds', async (t) => {
  if (process.platform !== 'linux') return missing(t, 'VmHWM (Linux)');
  if (!hasWasmSimd() || !hasWasmThreads()) return missing(t, 'WebAssembly SIMD and threads');
  const path = join(dir, 'conv.flm');
  writeFileSync(path, writeFlm(convModel()));
  const r = await runInChild({ engine: 'flm', path, shape: [1, 2, 9, 9], warmup: 2, iters: 3, seed: 1, threads: 2, trace: true }, 120_000);
  const steps = r.steps ?? [];
  t.same(steps.map((s) => s.step), ['start', 'imports', 'kernels', 'read', 'session', 'first run', 'warm-up', 'timed']);
  // VmHWM is max(the high-water mark the kernel last recorded, the RSS now), and Linux reads its RSS
  // counters approximately (per-CPU counters, folded lazily), so a later reading can come out a few
  // hundred KB below an earlier one; a real fall of the peak would be far larger than this slack.
  const slackMB = 1;
  for (let i = 1; i < steps.length; i++) {
    const [a, b] = [steps[i - 1]!.hwmMB, steps[i]!.hwmMB];
    t.ok(b >= a - slackMB, `${steps[i]!.step}: the peak never falls by more than ${slackMB} MB (${a} -> ${b} MB)`);
  }
  for (const s of steps) t.ok(s.rssMB > 0 && s.rssMB <= s.hwmMB + 0.01 && s.anonMB > 0 && s.fileMB > 0, `${s.step}: RSS ${s.rssMB} MB within the peak ${s.hwmMB} MB`);
  t.ok(r.peakRssMB >= steps.at(-1)!.hwmMB, `the result's peak (read last) is at least the last step's (${r.peakRssMB} >= ${steps.at(-1)!.hwmMB})`);
  const m = r.memory!;
  t.equal(m.modelTensorBytes, 4 * (108 + 6 + 5 * 486 + 5), 'the model\'s tensors, f32');
  t.ok(m.wasmMemoryBytes > 0 && m.arenaBytes > 0 && m.retainedBytes >= m.modelTensorBytes, `wasm memory ${m.wasmMemoryBytes}, arena ${m.arenaBytes}, retained ${m.retainedBytes}`);
  t.equal(m.workers, 0, 'threads 2 on a model with nothing to split: no worker thread started');
  t.notMatch(r.backend, /threads/, 'and every node ran on one thread');
});
