// The cost model's FLOP counts against values worked out by hand, the order search, and the
// autotune's strategy list (one valid entry per factor node and batch; no timing assertions).
import t from 'tap';
import type { GraphNode, Model, OpName, StoredTensor } from '../../../runtime/ir.js';
import { numel } from '../../../runtime/ir.js';
import { estimate, type Machine } from '../../../runtime/cost/model.js';
import { autotune, measureMachine, toPlanStrategy } from '../../../runtime/cost/autotune.js';
import { referenceBackend } from '../../../runtime/kernels/backend.js';

const M: Machine = { backend: 'test', gemmGflopsLarge: 10, gemmGflopsSmall: 2, scalarGflops: 1, bandwidthGBs: 5, gatherGBs: 1, callUs: 1 };

function node(op: OpName, weights: string[], attrs: GraphNode['attrs'] = {}): GraphNode {
  return { name: op, op, inputs: ['x'], outputs: ['y'], attrs, weights: Object.fromEntries(weights.map((w) => [w, w])) };
}
const lookup = (shapes: Record<string, number[]>) => (role: string) => shapes[role];
const stepFlops = (e: { steps: Array<{ what: string; flops: number }> }) => Object.fromEntries(e.steps.map((s) => [s.what, s.flops]));

t.test('svd_dense: two GEMMs; rebuild = u v once plus one GEMM per tile', async (t) => {
  const e = estimate(node('svd_dense', ['u', 'v']), lookup({ u: [10, 3], v: [3, 20] }), 2, [20], { machine: M });
  t.equal(e.contract.flops, 2 * 2 * 3 * 20 + 2 * 2 * 10 * 3); // 360
  t.equal(e.rebuild.flops, 2 * 10 * 3 * 20 + 2 * 2 * 10 * 20); // 1200 + 800
  t.equal(e.tileRows, 10);
  t.equal(e.use, e.rebuild.us < e.contract.us ? 'rebuild' : 'contract');
  t.ok(Math.abs(e.contract.us - e.contract.steps.reduce((s, x) => s + x.us, 0)) < 1e-9, 'a path costs the sum of its steps');
  // Each step: calls x callUs + flops / rate + bytes / bandwidth (M = 2 rows: the matrix-vector rate).
  const s0 = e.contract.steps[0]!;
  t.equal(s0.rate, 'gemv');
  t.ok(Math.abs(s0.us - (1 + 240 / 2e3 + s0.bytes / 5e3)) < 1e-9);
});

t.test('tt_dense: the layer order and every order searched, FLOPs by hand', async (t) => {
  const n = node('tt_dense', ['core.0', 'core.1'], { out_modes: [2, 3], in_modes: [4, 5] });
  const e = estimate(n, lookup({ 'core.0': [1, 2, 4, 2], 'core.1': [2, 3, 5, 1] }), 1, [20], { machine: M });
  // Step 0: [n0 (r0) x (m0 r1)] = 4 x 4 against Q = 5: 160. Step 1: P = 2 calls of 10 x 3 x 1: 120.
  t.same(stepFlops(e.contract), { 'core.0': 160, 'core.1': 120 });
  t.equal(e.ordersSearched, 2);
  t.same(e.orders!.map((o) => [o.order, o.flops]), [[['core.0', 'core.1'], 280], [['core.1', 'core.0'], 336]]);
  t.same(e.layerOrder!.order, ['core.0', 'core.1']);
  t.equal(e.layerOrder!.flops, 280);
  // Rebuild: level 0 is a copy; the last core costs 2 * N0 * r1 * n1 = 80 per row, 6 rows; one GEMM tile of 6 x 20.
  t.equal(e.rebuild.flops, 6 * 80 + 2 * 6 * 20);
});

t.test('tr_dense and ttl_dense: orders searched are all permutations', async (t) => {
  const tr = estimate(node('tr_dense', ['core.0', 'core.1', 'core.2'], { out_modes: [2, 2, 2], in_modes: [3, 3, 3] }),
    lookup({ 'core.0': [2, 2, 3, 3], 'core.1': [3, 2, 3, 2], 'core.2': [2, 2, 3, 2] }), 4, [27], { machine: M });
  t.equal(tr.ordersSearched, 6);
  t.ok(tr.orders!.every((o, i, a) => i === 0 || a[i - 1]!.us <= o.us), 'cheapest first');
  const ttl = estimate(node('ttl_dense', ['core', 'factor.0', 'factor.1', 'factor.2'], { out_modes: [6], in_modes: [4, 5] }), lookup({ core: [3, 2, 2], 'factor.0': [6, 3], 'factor.1': [4, 2], 'factor.2': [5, 2] }), 1, [20], { machine: M });
  t.equal(ttl.ordersSearched, 24);
  t.same(ttl.layerOrder!.order, ['factor.1', 'factor.2', 'core', 'factor.0']);
  // The layer: mode products on n0 (4 -> 2) and n1 (5 -> 2), the core GEMM (1 x 3 x 4), the output factor (3 -> 6).
  t.same(stepFlops(ttl.contract), { 'factor.1': 2 * 1 * 2 * 4 * 5, 'factor.2': 2 * 2 * 2 * 5, core: 2 * 1 * 3 * 4, 'factor.0': 2 * 6 * 3 });
});

t.test('conv kinds: im2col GEMMs by hand', async (t) => {
  const tk = estimate(node('tucker2_conv2d', ['u_in', 'core', 'u_out']), lookup({ u_in: [2, 3], core: [4, 2, 3, 3], u_out: [5, 4] }), 1, [3, 6, 6], { machine: M });
  t.same(stepFlops(tk.contract), { '1x1 u_in': 2 * 2 * 3 * 36, 'core conv': 2 * 4 * 18 * 16, '1x1 u_out': 2 * 5 * 4 * 16 });
  t.same(stepFlops(tk.rebuild), { 'rebuild: u_out core': 2 * 5 * 4 * 18, 'rebuild: u_in^T t': 2 * 5 * 3 * 2 * 9, 'rebuild: tile writes': 0, 'conv tiles of 5': 2 * 5 * 27 * 16 });
  const cp = estimate(node('cp_conv2d', ['a_in', 'k_h', 'k_w', 'a_out']), lookup({ a_in: [2, 3], k_h: [2, 3], k_w: [2, 3], a_out: [4, 2] }), 1, [3, 5, 5], { machine: M });
  // No padding: the 3 x 1 stage (rows as wide as the input's) on the 'depthwise valid' kernel, the
  // 1 x 3 stage (rows of 3 outputs, under its 4) on the lane-packed one (runtime/kernels/wasm/depthwise.c).
  t.same(stepFlops(cp.contract), { '1x1 a_in': 300, 'depthwise k_h (depthwise valid)': 2 * 2 * 3 * 15, 'depthwise k_w (depthwise packed)': 2 * 2 * 3 * 9, '1x1 a_out': 2 * 4 * 2 * 9 });
  for (const s of cp.contract.steps.filter((x) => x.what.includes('valid'))) {
    t.equal(s.rate, 'gemm', `${s.what}: at the GEMM rate`);
    t.equal(s.gather ?? 0, 0, `${s.what}: no im2col matrix`);
  }
  for (const s of cp.contract.steps.filter((x) => x.what.includes('packed'))) {
    t.equal(s.rate, 'gemm', `${s.what}: at the GEMM rate`);
    t.equal(s.eff, 0.4, `${s.what}: times the packed kernel's share of it`);
    t.equal(s.gather ?? 0, 0, `${s.what}: no im2col matrix`);
  }
  const sv = estimate(node('svd_conv2d', ['v', 'u'], { pads: [1, 1, 1, 1] }), lookup({ v: [3, 2, 3, 3], u: [8, 3] }), 2, [2, 4, 4], { machine: M });
  t.same(stepFlops(sv.contract), { 'conv v': 2 * 2 * 3 * 18 * 16, '1x1 u': 2 * 2 * 8 * 3 * 16 });
  t.throws(() => estimate(node('svd_conv2d', ['v', 'u']), lookup({ v: [3, 2, 3, 3], u: [8, 3] }), 1, [18], { machine: M }), /\[C, H, W\]/);
});

t.test('the tile bound and the choice follow the batch', async (t) => {
  const n = node('svd_dense', ['u', 'v']);
  const shapes = lookup({ u: [1024, 36], v: [36, 784] });
  const e = estimate(n, shapes, 1, [784], { machine: M });
  t.equal(e.tileRows, 20, '20 rows x 784 floats fit 64 KiB');
  t.ok(e.scratchBytes <= 64 * 1024);
  t.equal(estimate(n, shapes, 1, [784], { machine: M, tileBytes: 16 * 1024 }).tileRows, 4);
  t.equal(e.use, 'contract', 'rank 36 through 1024 x 784: contracting is cheaper at batch 1');
  t.equal(estimate(n, shapes, 4096, [784], { machine: M }).use, 'contract', 'and at any batch: 36 x (1024 + 784) < 1024 x 784');
  // Near full rank, r (out + in) > out x in: at a large batch, rebuilding once and multiplying wins.
  const wide = lookup({ u: [64, 60], v: [60, 64] });
  t.equal(estimate(n, wide, 1, [64], { machine: M }).use, 'contract');
  t.equal(estimate(n, wide, 4096, [64], { machine: M }).use, 'rebuild');
});

function stored(name: string, shape: number[]): StoredTensor {
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 1.3 + name.length);
  return { name, dtype: 'f32', shape, data };
}

t.test('autotune: one valid entry per factor node and batch, and the plan strategy list', async (t) => {
  const tensors = [stored('u', [12, 3]), stored('v', [3, 20]), stored('b1', [12]), stored('c0', [1, 2, 3, 2]), stored('c1', [2, 3, 4, 1])];
  const model: Model = {
    graph: {
      inputs: [{ name: 'x', shape: [-1, 20] }],
      outputs: ['y'],
      nodes: [
        { name: 's', op: 'svd_dense', inputs: ['x'], outputs: ['h'], attrs: {}, weights: { u: 'u', v: 'v', bias: 'b1' } },
        { name: 'r', op: 'relu', inputs: ['h'], outputs: ['h2'], attrs: {}, weights: {} },
        { name: 't', op: 'tt_dense', inputs: ['h2'], outputs: ['y'], attrs: { out_modes: [2, 3], in_modes: [3, 4] }, weights: { 'core.0': 'c0', 'core.1': 'c1' } },
      ],
    },
    tensors: new Map(tensors.map((s) => [s.name, s])),
    metadata: {},
  };
  const machine = measureMachine(referenceBackend, 5);
  for (const k of ['gemmGflopsLarge', 'gemmGflopsSmall', 'scalarGflops', 'bandwidthGBs', 'gatherGBs', 'callUs'] as const) {
    t.ok(Number.isFinite(machine[k]) && machine[k] > 0, `machine ${k} = ${machine[k]}`);
  }
  const r = autotune(model, { batches: [1, 5], backend: referenceBackend, machine, minMs: 1, minCalls: 2 });
  t.same(r.entries.map((e) => [e.node, e.batch]), [['s', 1], ['s', 5], ['t', 1], ['t', 5]]);
  for (const e of r.entries) {
    t.ok(e.use === 'contract' || e.use === 'rebuild');
    t.ok(Number.isInteger(e.rows) && e.rows >= 1);
    for (const v of [e.predicted_us.contract, e.predicted_us.rebuild, e.measured_us.contract, e.measured_us.rebuild]) t.ok(Number.isFinite(v) && v > 0);
    t.equal(e.measured_best, e.measured_us.rebuild < e.measured_us.contract ? 'rebuild' : 'contract');
    t.equal(e.agree, e.measured_best === e.use);
    t.ok(e.max_rel_diff < 1e-4, `${e.node} batch ${e.batch}: both products agree (${e.max_rel_diff})`);
  }
  t.ok(r.entries.find((e) => e.node === 't')!.best_order, 'TT entries name the best order');
  const plan = toPlanStrategy(model, r.entries, 5);
  t.same(plan.map((p) => p.node), [0, 2]);
  for (const p of plan) t.equal(p.rows === 0, p.use === 'contract');
});

t.test('strategyFor and rebuildScratchFloats agree with estimate and with the tiled product', async (t) => {
  const { prepareTiled } = await import('../../../runtime/exec/tiled.js');
  const { rebuildScratchFloats, strategyFor } = await import('../../../runtime/cost/model.js');
  const n = node('svd_dense', ['u', 'v']);
  const wide = lookup({ u: [64, 60], v: [60, 64] });
  t.same(strategyFor(n, wide, 1, [64], { machine: M }), { use: 'contract', rows: 0 });
  t.same(strategyFor(n, wide, 4096, [64], { machine: M }), { use: 'rebuild', rows: 64 });
  const cases: Array<{ n: GraphNode; shapes: Record<string, number[]>; input: number[] }> = [
    { n: node('svd_dense', ['u', 'v']), shapes: { u: [30, 4], v: [4, 50] }, input: [3, 50] },
    { n: node('tucker2_conv2d', ['u_in', 'core', 'u_out'], { pads: [1, 1, 1, 1] }), shapes: { u_in: [2, 3], core: [4, 2, 3, 3], u_out: [5, 4] }, input: [2, 3, 6, 6] },
    { n: node('tt_dense', ['core.0', 'core.1'], { out_modes: [2, 3], in_modes: [4, 5] }), shapes: { 'core.0': [1, 2, 4, 2], 'core.1': [2, 3, 5, 1] }, input: [1, 20] },
  ];
  for (const c of cases) {
    const weights = new Map(Object.entries(c.shapes).map(([k, s]) => [k, { shape: s, data: new Float32Array(numel(s)) }]));
    const ctx = { kernels: referenceBackend, optionalWeight: (r: string) => weights.get(r), weight: (r: string) => weights.get(r)! };
    for (const rows of [1, 2, 4]) {
      const tiled = prepareTiled(c.n, ctx, rows);
      t.equal(rebuildScratchFloats(c.n, lookup(c.shapes), c.input, rows), tiled.scratchFloats(c.input), `${c.n.op} rows ${rows}`);
    }
  }
});
