// The memory planner and checker (docs/FORMAT.md section 7) on the real compressed fixtures:
// plans check, in-place ops share bytes, and every rule of the checker fires on a plan broken
// in exactly that way.
import t from 'tap';
import { FlmError } from '../../../runtime/format/errors.js';
import { numel, type Model } from '../../../runtime/ir.js';
import {
  atBatch, checkPlan, getProfile, inferShapes, nodeProfile, planArena, type ArenaPlan,
} from '../../../runtime/plan/index.js';
import { FACTOR_METHODS, RATIO10_FIXTURES, ratio10 } from '../support/models.js';

const code = (fn: () => unknown): string => {
  try {
    fn();
    return 'no error';
  } catch (e) {
    return e instanceof FlmError ? e.code : `not an FlmError: ${String(e)}`;
  }
};

/** Independently of checkPlan: at every step, the buffers live then must not share bytes, except an in-place output with its input. */
function overlapsAt(model: Model, plan: ArenaPlan): string[] {
  const problems: string[] = [];
  const n = model.graph.nodes.length;
  for (let k = -1; k <= n; k++) {
    const live = [
      ...plan.values.filter((v) => !v.external && v.bytes > 0 && v.first <= k && k <= v.last).map((v) => ({ id: v.name, ...v })),
      ...plan.scratch.filter((s) => s.node === k).map((s) => ({ id: `scratch ${k}`, offset: s.offset, bytes: s.bytes, first: k, last: k })),
    ];
    for (let i = 0; i < live.length; i++) {
      for (let j = i + 1; j < live.length; j++) {
        const a = live[i]!;
        const b = live[j]!;
        if (a.offset >= b.offset + b.bytes || b.offset >= a.offset + a.bytes) continue;
        const node = model.graph.nodes[Math.max(a.first, b.first)];
        const inPlace = node && node.inputs[0] !== undefined && [a.id, b.id].includes(node.inputs[0]) && [a.id, b.id].includes(node.outputs[0]!) && a.offset === b.offset;
        if (!inPlace) problems.push(`step ${k}: ${a.id} and ${b.id}`);
      }
    }
  }
  return problems;
}

for (const fixture of RATIO10_FIXTURES) {
  for (const method of FACTOR_METHODS) {
    t.test(`${fixture} ratio 10 ${method}: node plans at batch 1 and 16`, async (t) => {
      const model = await ratio10(t, fixture, method);
      if (!model) return;
      for (const batch of [1, 16]) {
        const profile = atBatch(nodeProfile, batch);
        const plan = planArena(model, profile);
        t.doesNotThrow(() => checkPlan(model, plan, profile), `batch ${batch} checks`);
        t.same(overlapsAt(model, plan), [], `batch ${batch}: no live buffers share bytes`);
        const shapes = inferShapes(model, batch);
        for (const v of plan.values) t.equal(v.bytes, numel(shapes.values.get(v.name)!) * 4, `${v.name} bytes`);
        const naive = plan.values.reduce((s, v) => s + v.bytes, 0) + plan.scratch.reduce((s, v) => s + v.bytes, 0);
        t.ok(plan.arena < naive, `batch ${batch}: arena ${plan.arena} below one buffer each (${naive})`);
        // In place: every relu / flatten output whose input dies there takes the input's bytes.
        model.graph.nodes.forEach((node, k) => {
          if (node.op !== 'relu' && node.op !== 'flatten') return;
          const x = plan.values.find((v) => v.name === node.inputs[0])!;
          const y = plan.values.find((v) => v.name === node.outputs[0])!;
          if (x.last === k) t.equal(y.offset, x.offset, `${node.name} runs in place`);
        });
      }
      const mcu = model.memoryPlan!.plans.find((p) => p.profile === 'mcu');
      t.ok(mcu, 'the writer stored an mcu plan (the firmware runs every op)');
      if (mcu) {
        t.doesNotThrow(() => checkPlan(model, mcu, getProfile('mcu')!), 'mcu plan checks');
        const input = mcu.values.find((v) => v.first === -1)!;
        t.same([input.external, input.offset, input.bytes], [true, 0, 0], 'mcu input is external');
      }
    });
  }
}

t.test('checkPlan rejects each broken rule with FLM_MEMORY_PLAN', async (t) => {
  const model = await ratio10(t, 'lenet5_fashion', 'tucker');
  if (!model) return;
  const profile = nodeProfile;
  const good = planArena(model, profile);
  const broken = (what: string, change: (p: ArenaPlan) => void, pr = profile) => {
    const p: ArenaPlan = structuredClone(good);
    change(p);
    t.equal(code(() => checkPlan(model, p, pr)), 'FLM_MEMORY_PLAN', what);
  };
  t.equal(code(() => checkPlan(model, good, profile)), 'no error', 'the planner\'s plan checks');
  const conv = good.values.findIndex((v) => v.first === 0);
  const scratchIdx = good.scratch.findIndex((s) => s.bytes > 0);
  broken('wrong profile', (p) => { p.profile = 'mcu'; });
  broken('batch 0', (p) => { p.batch = 0; });
  broken('align 12', (p) => { p.align = 12; });
  broken('align below the profile\'s', (p) => { p.align = 16; });
  broken('value missing', (p) => { p.values.splice(conv, 1); });
  broken('value twice', (p) => { p.values.push({ ...p.values[conv]! }); });
  broken('unknown value', (p) => { p.values.push({ name: 'ghost', offset: 0, bytes: 4, first: 0, last: 1 }); });
  broken('wrong first', (p) => { p.values[conv]!.first = 1; });
  broken('wrong last', (p) => { p.values[conv]!.last += 1; });
  broken('too few bytes', (p) => { p.values[conv]!.bytes -= 4; });
  broken('misaligned offset', (p) => { p.values[conv]!.offset += 4; });
  broken('past the arena', (p) => { p.arena = p.values[conv]!.offset + p.values[conv]!.bytes - 64; });
  broken('external on the node profile', (p) => { Object.assign(p.values[0]!, { external: true, offset: 0, bytes: 0 }); });
  broken('scratch too small', (p) => { p.scratch[scratchIdx]!.bytes = 64; p.peak_scratch = Math.max(...p.scratch.map((s) => s.bytes)); });
  broken('scratch missing', (p) => { p.scratch.splice(scratchIdx, 1); p.peak_scratch = Math.max(0, ...p.scratch.map((s) => s.bytes)); });
  broken('scratch twice for a node', (p) => { p.scratch.push({ ...p.scratch[scratchIdx]! }); });
  broken('scratch for no node', (p) => { p.scratch.push({ node: 99, offset: 0, bytes: 64 }); });
  broken('wrong peak_scratch', (p) => { p.peak_scratch += 64; });
  broken('two live values overlap', (p) => {
    // The graph input and the first conv's output are both live at node 0.
    p.values[conv]!.offset = p.values[0]!.offset;
  });
  broken('scratch overlaps a live input', (p) => {
    const s = p.scratch.find((e) => e.node === 0)!;
    s.offset = p.values[0]!.offset;
  });
  broken('strategy on a non-factor node', (p) => { p.strategy = [{ node: 1, use: 'contract', rows: 0 }]; });
  broken('rebuild with 0 rows', (p) => {
    const k = model.graph.nodes.findIndex((n) => n.op === 'ttl_dense' || n.op === 'tucker2_conv2d');
    p.strategy = [{ node: k, use: 'rebuild', rows: 0 }];
  });
  // Not in place: a relu output at its input's offset while the input lives on.
  const mcu = getProfile('mcu')!;
  broken('graph input not external on the mcu profile', (p) => { p.profile = 'mcu'; p.align = 8; }, mcu);
});

t.test('in place only where section 7 allows it', async (t) => {
  const model = await ratio10(t, 'lenet5_fashion', 'svd');
  if (!model) return;
  const plan = planArena(model, nodeProfile);
  // The first max_pool reads relu's output; putting the pool's output on its input is not in place.
  const k = model.graph.nodes.findIndex((n) => n.op === 'max_pool');
  const node = model.graph.nodes[k]!;
  const p = structuredClone(plan);
  const x = p.values.find((v) => v.name === node.inputs[0])!;
  const y = p.values.find((v) => v.name === node.outputs[0])!;
  y.offset = x.offset;
  t.equal(code(() => checkPlan(model, p, nodeProfile)), 'FLM_MEMORY_PLAN', 'max_pool cannot take its input\'s bytes');
});

t.test('mcu plan streams FC-2\'s svd_dense -> relu -> dense chain (fused values)', async (t) => {
  const model = await ratio10(t, 'mlp_fashion', 'svd');
  if (!model) return;
  const mcu = getProfile('mcu')!;
  const nodes = model.graph.nodes;
  const p = nodes.findIndex((n) => n.op === 'svd_dense');
  t.same(nodes.slice(p, p + 3).map((n) => n.op), ['svd_dense', 'relu', 'dense'], 'FC-2 is flatten, svd_dense, relu, dense');
  const plan = planArena(model, mcu);
  const hidden = [nodes[p]!.outputs[0]!, nodes[p + 1]!.outputs[0]!];
  for (const name of hidden) {
    const v = plan.values.find((e) => e.name === name)!;
    t.same([v.fused, v.offset, v.bytes], [true, 0, 0], `${name} (the 1024-float hidden vector) is fused, never stored`);
  }
  const logits = plan.values.find((v) => v.name === nodes[p + 2]!.outputs[0])!;
  const scratch = plan.scratch.find((s) => s.node === p)!;
  const rank = model.tensors.get(nodes[p]!.weights.u!)!.shape[1]!;
  t.equal(scratch.bytes, 4 * rank, 'the svd producer keeps t = v x (rank floats) in its scratch');
  // the chain runs as one step: the producer's scratch and the consumer's output are live together
  t.ok(scratch.offset >= logits.offset + logits.bytes || logits.offset >= scratch.offset + scratch.bytes, 'scratch and logits do not share bytes');
  t.equal(plan.arena, logits.bytes + scratch.bytes, `arena ${plan.arena} = logits + rank floats (no 4 KB hidden vector)`);
  t.equal(code(() => checkPlan(model, plan, mcu)), 'no error', 'the fused plan checks');
  t.same(model.memoryPlan!.plans.find((e) => e.profile === 'mcu'), plan, 'the writer stores this plan');
  // the node profile never fuses
  t.notOk(planArena(model, nodeProfile).values.some((v) => v.fused), 'node plans store every value');

  const broken = (what: string, change: (q: ArenaPlan) => void, pr = mcu) => {
    const q: ArenaPlan = structuredClone(plan);
    change(q);
    t.equal(code(() => checkPlan(model, q, pr)), 'FLM_MEMORY_PLAN', what);
  };
  const entry = (q: ArenaPlan, name: string) => q.values.find((v) => v.name === name)!;
  broken('fused under the node profile', (q) => { q.profile = 'node'; q.align = 64; }, nodeProfile);
  broken('half a chain fused (relu output stored)', (q) => {
    Object.assign(entry(q, hidden[1]!), { fused: undefined, offset: q.arena, bytes: 4096 });
    q.arena += 4096;
  });
  broken('fused value with bytes', (q) => { entry(q, hidden[0]!).bytes = 4096; });
  broken('fused and external', (q) => { entry(q, hidden[0]!).external = true; });
  broken('the logits (a graph output) fused', (q) => { Object.assign(entry(q, logits.name), { fused: true, offset: 0, bytes: 0 }); });
  broken('the flattened input fused', (q) => {
    Object.assign(entry(q, nodes[p]!.inputs[0]!), { fused: true, external: undefined });
  });
  broken('scratch overlapping the logits (live together over the chain)', (q) => {
    q.scratch.find((s) => s.node === p)!.offset = entry(q, logits.name).offset;
  });
  // a profile that streams no chains refuses the plan
  broken('profile without the dense chain', () => {}, { ...mcu, fuses: [] });
});

t.test('fusion: only chains whose intermediates the chain alone reads', async (t) => {
  const model = await ratio10(t, 'mlp_fashion', 'svd');
  if (!model) return;
  const mcu = getProfile('mcu')!;
  const g = structuredClone(model.graph);
  // relu's output also becomes a graph output: the hidden vector must be stored, nothing fuses
  const relu = g.nodes.find((n) => n.op === 'relu')!;
  const m2: Model = { ...model, graph: { ...g, outputs: [...g.outputs, relu.outputs[0]!] }, memoryPlan: undefined };
  const plan = planArena(m2, mcu);
  t.notOk(plan.values.some((v) => v.fused), 'no value fused when the hidden vector is also an output');
  t.equal(code(() => checkPlan(m2, plan, mcu)), 'no error', 'that plan checks');
  const forced = structuredClone(plan);
  for (const v of forced.values) if (v.name === relu.inputs[0]) Object.assign(v, { fused: true, offset: 0, bytes: 0 });
  t.equal(code(() => checkPlan(m2, forced, mcu)), 'FLM_MEMORY_PLAN', 'fusing it anyway is refused');
});
