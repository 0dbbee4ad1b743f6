// bench/lib/runBench.ts's relaxed-SIMD engine: a runner child started with RELAXED_SIMD_FLAG loads
// the kernels' relaxed-SIMD build (its backend says so), the plain child the build this Node picks
// by default, and both compute the same outputs within float tolerance.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { RELAXED_SIMD_FLAG, runInChild } from '../../bench/lib/runBench.js';
import { writeFlm } from '../../converter/writer.js';
import { hasWasmRelaxedSimd } from '../../runtime/kernels/backend.js';
import type { Model, StoredTensor } from '../../runtime/ir.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-relaxed-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const vals = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k) * 0.3);

/** [N, 2, 9, 9] -> conv 6x2x3x3 (pad 1) -> relu -> flatten -> dense 486 -> 5. */
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

t.test('the relaxed-SIMD runner child loads the relaxed build and agrees with the plain one', async (t) => {
  const path = join(dir, 'conv.flm');
  writeFileSync(path, writeFlm(convModel()));
  const job = { engine: 'flm' as const, path, shape: [3, 2, 9, 9], warmup: 1, iters: 3, seed: 1, sample: 15 };
  const plain = await runInChild(job, 120_000);
  const relaxed = await runInChild(job, 120_000, undefined, [RELAXED_SIMD_FLAG]);
  t.equal(plain.backend, hasWasmRelaxedSimd() ? 'wasm-simd, relaxed' : 'wasm-simd', 'plain Node: the build this Node supports');
  t.equal(relaxed.backend, 'wasm-simd, relaxed', `with ${RELAXED_SIMD_FLAG}: the relaxed build`);
  t.equal(relaxed.outputSample.length, 15);
  let d = 0;
  let m = 0;
  for (let i = 0; i < 15; i++) {
    d = Math.max(d, Math.abs(relaxed.outputSample[i]! - plain.outputSample[i]!));
    m = Math.max(m, Math.abs(plain.outputSample[i]!));
  }
  t.ok(m > 0, 'outputs are not all zero');
  t.ok(d <= 1e-5 * (1 + m) * Math.sqrt(486), `outputs agree (max abs diff ${d})`);
});
