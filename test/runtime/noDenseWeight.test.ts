// The runtime never forms the dense weight of a factorised layer. These layers stand for dense
// weights of 4 GiB to 16 GiB (beyond what this process may allocate for one typed array), so
// preparing or running them would fail if any step rebuilt the weight, even once at load.
import t from 'tap';
import type { GraphNode, Model, StoredTensor } from '../../runtime/ir.js';
import { numel } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';

function stored(name: string, shape: number[], fill = 0.01): StoredTensor {
  return { name, dtype: 'f32', shape, data: new Float32Array(numel(shape)).fill(fill) };
}

function model(node: Omit<GraphNode, 'inputs' | 'outputs' | 'name'>, inShape: number[], tensors: StoredTensor[]): Model {
  return {
    graph: { inputs: [{ name: 'x', shape: [-1, ...inShape] }], outputs: ['y'], nodes: [{ name: 'big', inputs: ['x'], outputs: ['y'], ...node }] },
    tensors: new Map(tensors.map((s) => [s.name, s])),
    metadata: {},
  };
}

const before = () => process.memoryUsage().arrayBuffers;

t.test('svd_dense standing for a 65536 x 65536 weight (16 GiB)', async (t) => {
  const n = 65536;
  const m = model({ op: 'svd_dense', attrs: {}, weights: { u: 'u', v: 'v' } }, [n], [stored('u', [n, 2]), stored('v', [2, n])]);
  const a0 = before();
  const y = Session.create(m).runBatch({ shape: [1, n], data: new Float32Array(n).fill(1) });
  t.same(y.shape, [1, n]);
  // Each output is sum_k u[o,k] * (sum_i v[k,i] * 1) = 2 * 0.01 * (0.01 * n).
  t.ok(Math.abs(y.data[123]! - 2 * 0.01 * 0.01 * n) < 1e-3);
  t.ok(before() - a0 < 64 * 2 ** 20, 'less than 64 MiB of array buffers grew');
});

t.test('tt_dense standing for a 32768 x 32768 weight (4 GiB)', async (t) => {
  const modes = [32, 32, 32];
  const ranks = [1, 2, 2, 1];
  const cores = modes.map((m, k) => stored(`c${k}`, [ranks[k]!, m, m, ranks[k + 1]!], 0.1));
  const weights = Object.fromEntries(cores.map((c, k) => [`core.${k}`, c.name]));
  const n = 32768;
  const mdl = model({ op: 'tt_dense', attrs: { out_modes: modes, in_modes: modes }, weights }, [n], cores);
  const y = Session.create(mdl).runBatch({ shape: [2, n], data: new Float32Array(2 * n).fill(1) });
  t.same(y.shape, [2, n]);
  // W[i, j] = prod_k (sum over bond paths) = 0.1^3 * 2 * 2 (two inner bonds of size 2); y = sum_j W = n * 0.004.
  t.ok(Math.abs(y.data[5]! - n * 0.004) / (n * 0.004) < 1e-4);
});

t.test('ttl_dense standing for a 32768 x 32768 weight (4 GiB)', async (t) => {
  const modes = [32, 32, 32];
  const dims = [...modes, ...modes];
  const ranks = dims.map(() => 2);
  const core = stored('core', ranks, 0.5);
  const factors = dims.map((d, k) => stored(`f${k}`, [d, 2], 0.1));
  const weights: Record<string, string> = { core: 'core', ...Object.fromEntries(factors.map((f, k) => [`factor.${k}`, f.name])) };
  const n = 32768;
  const mdl = model({ op: 'ttl_dense', attrs: { out_modes: modes, in_modes: modes }, weights }, [n], [core, ...factors]);
  const y = Session.create(mdl).runBatch({ shape: [1, n], data: new Float32Array(n).fill(1) });
  t.same(y.shape, [1, n]);
  // W[i, j] = 0.5 * 2^6 * 0.1^6; y = n * W.
  const expect = n * 0.5 * 64 * 1e-6;
  t.ok(Math.abs(y.data[7]! - expect) / expect < 1e-4);
});

t.test('tucker2_conv2d and cp_conv2d standing for a 16384 x 16384 x 3 x 3 kernel (9 GiB)', async (t) => {
  const C = 16384;
  const x = { shape: [1, C, 3, 3], data: new Float32Array(C * 9).fill(1) };
  const tucker = model(
    { op: 'tucker2_conv2d', attrs: { pads: [1, 1, 1, 1] }, weights: { u_in: 'ui', core: 'c', u_out: 'uo' } },
    [C, 3, 3], [stored('ui', [2, C]), stored('c', [2, 2, 3, 3]), stored('uo', [C, 2])],
  );
  t.same(Session.create(tucker).runBatch(x).shape, [1, C, 3, 3]);
  const cp = model(
    { op: 'cp_conv2d', attrs: { pads: [1, 1, 1, 1] }, weights: { a_in: 'ai', k_h: 'kh', k_w: 'kw', a_out: 'ao' } },
    [C, 3, 3], [stored('ai', [2, C]), stored('kh', [2, 3]), stored('kw', [2, 3]), stored('ao', [C, 2])],
  );
  const y = Session.create(cp).runBatch(x);
  t.same(y.shape, [1, C, 3, 3]);
  // Centre pixel sees all 9 taps: sum_r a_out * (sum_i a_in) * (sum k_h) * (sum k_w) = 2 * 0.01 * (0.01 C) * 0.03 * 0.03.
  const expect = 2 * 0.01 * 0.01 * C * 0.03 * 0.03;
  t.ok(Math.abs(y.data[4]! - expect) / expect < 1e-4);
});
