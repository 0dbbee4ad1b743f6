// The arena session: after warm-up a call allocates no typed array (counted by patching every
// typed-array constructor, ArrayBuffer and the array-making methods), on LeNet-5 and FC-2 at ratio
// 10 for every factor method, on both kernel backends; and its outputs match a node-by-node run of
// the reference layers on fresh buffers (no arena, no plan).
import t from 'tap';
import { tensorToFloat32 } from '../../runtime/format/dtype.js';
import { FACTOR_OPS, numel, type Model, type Tensor } from '../../runtime/ir.js';
import { hasWasmSimd, referenceBackend, wasmBackend, type KernelBackend } from '../../runtime/kernels/backend.js';
import { runLayer } from '../../runtime/layers/index.js';
import { atBatch, nodeProfile, planArena, type PlanProfile } from '../../runtime/plan/index.js';
import { Session } from '../../runtime/session.js';
import { missing } from '../support/require.js';
import { countAllocations } from './support/allocations.js';
import { FACTOR_METHODS, RATIO10_FIXTURES, ratio10 } from './support/models.js';

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = s / 2 ** 32;
  }
  return out;
}

/** The graph evaluated node by node with runLayer on the reference kernels: fresh arrays, no plan. */
function referenceForward(model: Model, x: Tensor): Tensor {
  const values = new Map<string, Tensor>([[model.graph.inputs[0]!.name, x]]);
  const f32 = (name: string) => {
    const t = model.tensors.get(name)!;
    return { data: tensorToFloat32(t), shape: [...t.shape] };
  };
  for (const node of model.graph.nodes) {
    const ctx = {
      kernels: referenceBackend,
      optionalWeight: (role: string) => (node.weights[role] === undefined ? undefined : f32(node.weights[role]!)),
      weight: (role: string) => f32(node.weights[role]!),
    };
    const ins = node.inputs.map((n) => values.get(n) ?? f32(n));
    values.set(node.outputs[0]!, runLayer(node, ctx, ins));
  }
  return values.get(model.graph.outputs[0]!)!;
}

function relErr(got: Float32Array, want: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i]! - want[i]!) ** 2;
    den += want[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

t.test('the allocation counter sees allocations', async (t) => {
  const x = new Float32Array(8);
  t.ok(countAllocations(() => new Float32Array(2)).total >= 1, 'new Float32Array');
  t.ok(countAllocations(() => x.subarray(1)).total >= 1, 'subarray');
  t.ok(countAllocations(() => x.slice()).total >= 1, 'slice');
  t.ok(countAllocations(() => Float32Array.from([1, 2])).total >= 1, 'from');
  t.ok(countAllocations(() => new ArrayBuffer(4)).total >= 1, 'ArrayBuffer');
  t.equal(countAllocations(() => x.fill(1)).total, 0, 'fill allocates nothing');
  t.equal(typeof Float32Array.from, 'function', 'restored');
  t.ok(new Float32Array(2) instanceof Float32Array, 'constructor restored');
});

const backends: Array<[string, () => Promise<KernelBackend | undefined>]> = [
  ['reference', async () => referenceBackend],
  ['wasm-simd', async () => (hasWasmSimd() ? wasmBackend() : undefined)],
];

for (const fixture of RATIO10_FIXTURES) {
  for (const method of FACTOR_METHODS) {
    t.test(`${fixture} ratio 10 ${method}: no allocation after warm-up, outputs match the reference layers`, async (t) => {
      const model = await ratio10(t, fixture, method);
      if (!model) return;
      t.ok(model.graph.nodes.some((n) => n.op !== 'dense' && n.op !== 'conv2d' && n.weights && Object.keys(n.weights).length > 0), 'has factor layers');
      const stored = model.memoryPlan?.plans.find((p) => p.profile === 'node');
      t.equal(stored?.batch, 1, 'the writer stored a node plan at batch 1');
      const inShape = model.graph.inputs[0]!.shape;
      for (const [name, load] of backends) {
        const backend = await load();
        if (!backend) {
          missing(t, `${name} backend unavailable`);
          continue;
        }
        const s = Session.create(model, { backend });
        t.same(s.planNotes, [], `${name}: the stored plan checks at load`);
        for (const batch of [1, 3]) {
          const shape = [batch, ...inShape.slice(1)];
          const x: Tensor = { shape, data: random(numel(shape), 7 + batch) };
          const want = referenceForward(model, x);
          const out = new Float32Array(want.data.length);
          s.runInto([x], [out]);
          s.runInto([x], [out]);
          const c = countAllocations(() => {
            for (let i = 0; i < 5; i++) s.runInto([x], [out]);
          });
          t.equal(c.total, 0, `${name} batch ${batch}: typed arrays allocated in 5 calls after warm-up: ${JSON.stringify(c.kinds)}`);
          const err = relErr(out, want.data);
          t.ok(err < 1e-4, `${name} batch ${batch}: relative error vs reference layers ${err.toExponential(2)}`);
          const viaRun = s.run({ [s.inputNames[0]!]: x })[s.outputNames[0]!]!;
          t.same(viaRun.shape, want.shape, 'run() gives the output shape');
          t.same(Array.from(viaRun.data), Array.from(out), 'run() copies out what runInto wrote');
          t.ok(countAllocations(() => s.run({ [s.inputNames[0]!]: x })).total > 0, 'the counter sees run() copying its output out');
        }
        const info = s.arenaInfo();
        t.same(info.map((a) => [a.batch, a.source]), [[1, 'stored'], [3, 'planned']], `${name}: batch 1 uses the stored plan, batch 3 plans for itself`);
        t.ok(info.every((a) => a.arenaBytes >= a.peakScratchBytes), 'arena holds the scratch');
        s.dispose();
      }
    });
  }
}

t.test('a stored plan that does not check is rejected at load; the session plans for itself and says so', async (t) => {
  const model = await ratio10(t, 'lenet5_fashion', 'svd');
  if (!model) return;
  const plan = model.memoryPlan!.plans.find((p) => p.profile === 'node')!;
  plan.scratch[0]!.bytes = 4;
  plan.peak_scratch = Math.max(...plan.scratch.map((s) => s.bytes));
  const s = Session.create(model, { backend: referenceBackend });
  t.equal(s.planNotes.length, 1);
  t.match(s.planNotes[0]!, /rejected \(FLM_MEMORY_PLAN: .*scratch/);
  const x: Tensor = { shape: [1, 1, 28, 28], data: random(784, 3) };
  const y = s.runBatch(x);
  t.ok(relErr(y.data, referenceForward(model, x).data) < 1e-5, 'still right');
  t.same(s.arenaInfo().map((a) => a.source), ['planned']);
});

t.test('keepAll returns every intermediate, each as it was when written', async (t) => {
  const model = await ratio10(t, 'lenet5_fashion', 'tucker');
  if (!model) return;
  const s = Session.create(model, { backend: referenceBackend });
  const x: Tensor = { shape: [2, 1, 28, 28], data: random(2 * 784, 5) };
  const all = s.run({ [s.inputNames[0]!]: x }, true);
  // Recompute each node from the kept values: in-place ops overwrite their input in the arena, so
  // a value read back after the run would be wrong; keepAll must have copied it in time.
  for (const node of model.graph.nodes) {
    const f32 = (name: string) => ({ data: tensorToFloat32(model.tensors.get(name)!), shape: [...model.tensors.get(name)!.shape] });
    const ctx = {
      kernels: referenceBackend,
      optionalWeight: (role: string) => (node.weights[role] === undefined ? undefined : f32(node.weights[role]!)),
      weight: (role: string) => f32(node.weights[role]!),
    };
    const y = runLayer(node, ctx, node.inputs.map((n) => all[n] ?? f32(n)));
    t.ok(relErr(all[node.outputs[0]!]!.data, y.data) < 1e-6, `${node.name} (${node.op})`);
  }
});

for (const fixture of RATIO10_FIXTURES) {
  t.test(`${fixture} ratio 10: stored "rebuild" strategies (every factor layer, 7-row tiles) run right`, async (t) => {
    for (const method of FACTOR_METHODS) {
      const model = await ratio10(t, fixture, method);
      if (!model) return;
      const rebuildAll: PlanProfile['strategy'] = (k, node) => (FACTOR_OPS.has(node.op) ? { node: k, use: 'rebuild', rows: 7 } : undefined);
      const plans = [1, 2].map((b) => planArena(model, { ...atBatch(nodeProfile, b), strategy: rebuildAll }));
      t.ok(plans[0]!.strategy!.length > 0, `${method}: factor layers get a strategy`);
      const m: Model = { ...model, memoryPlan: { version: 1, plans } };
      for (const [name, load] of backends) {
        const backend = await load();
        if (!backend) continue;
        const s = Session.create(m, { backend });
        t.same(s.planNotes, [], `${method} ${name}: both stored plans check`);
        for (const batch of [1, 2]) {
          const shape = [batch, ...model.graph.inputs[0]!.shape.slice(1)];
          const x: Tensor = { shape, data: random(numel(shape), 11 + batch) };
          const want = referenceForward(model, x);
          const out = new Float32Array(want.data.length);
          s.runInto([x], [out]);
          const err = relErr(out, want.data);
          t.ok(err < 1e-4, `${method} ${name} batch ${batch}: rebuild vs reference layers ${err.toExponential(2)}`);
          const c = countAllocations(() => s.runInto([x], [out]));
          t.equal(c.total, 0, `${method} ${name} batch ${batch}: rebuild allocates nothing per call: ${JSON.stringify(c.kinds)}`);
        }
        t.same(s.arenaInfo().map((a) => a.source), ['stored', 'stored']);
      }
    }
  });
}

t.test('wasm: sessions that grow the shared memory leave each other right', async (t) => {
  if (!hasWasmSimd()) return missing(t, 'WebAssembly SIMD unavailable');
  const backend = await wasmBackend();
  const a = await ratio10(t, 'lenet5_fashion', 'cp');
  const b = await ratio10(t, 'mlp_fashion', 'tt');
  if (!a || !b) return;
  const x: Tensor = { shape: [2, 1, 28, 28], data: random(2 * 784, 21) };
  const wantA = referenceForward(a, x);
  const wantB = referenceForward(b, x);
  const sa = Session.create(a, { backend });
  const outA = new Float32Array(wantA.data.length);
  sa.runInto([x], [outA]);
  // A second session, then a large batch on it: both grow the module's memory under sa's views.
  const sb = Session.create(b, { backend });
  const outB = new Float32Array(wantB.data.length);
  sb.runInto([x], [outB]);
  const big: Tensor = { shape: [256, 1, 28, 28], data: random(256 * 784, 22) };
  sb.runBatch(big);
  outA.fill(0);
  sa.runInto([x], [outA]);
  t.ok(relErr(outA, wantA.data) < 1e-4, `first session after the memory grew: ${relErr(outA, wantA.data).toExponential(2)}`);
  sb.runInto([x], [outB]);
  t.ok(relErr(outB, wantB.data) < 1e-4, 'second session');
  sa.dispose();
  sb.dispose();
});
