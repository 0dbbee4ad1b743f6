// The conv-pool chain of the "mcu" profile (runtime/plan/fuse.ts, docs/FORMAT.md section 7):
// conv kinds -> [activation] -> max_pool | avg_pool streamed by the firmware, so the pre-pool
// values are fused (never stored). The planner fuses LeNet-5's two chains, the checker accepts the
// plan, and refuses it when the chain is broken or the profile does not stream conv chains.
import t from 'tap';
import { FlmError } from '../../../runtime/format/errors.js';
import { numel, type Model } from '../../../runtime/ir.js';
import { checkPlan, getProfile, inferShapes, nodeProfile, planArena, type ArenaPlan } from '../../../runtime/plan/index.js';
import { CONV_POOL_CHAIN, DENSE_CHAIN } from '../../../runtime/plan/fuse.js';
import { ratio10 } from '../support/models.js';

const code = (fn: () => unknown): string => {
  try {
    fn();
    return 'no error';
  } catch (e) {
    return e instanceof FlmError ? e.code : `not an FlmError: ${String(e)}`;
  }
};

t.test('LeNet-5 svd x10: the mcu plan streams both conv -> relu -> max_pool chains', async (t) => {
  const model = await ratio10(t, 'lenet5_fashion', 'svd');
  if (!model) return;
  const mcu = getProfile('mcu')!;
  t.ok(mcu.fuses?.includes(CONV_POOL_CHAIN), 'the mcu profile lists the conv-pool chain');
  const nodes = model.graph.nodes;
  const convs = nodes.flatMap((n, k) => (n.op === 'conv2d' || n.op === 'svd_conv2d' ? [k] : []));
  t.equal(convs.length, 2, 'two convs');
  for (const k of convs) t.same(nodes.slice(k, k + 3).map((n) => n.op).slice(1), ['relu', 'max_pool'], `node ${k} is conv, relu, max_pool`);
  const plan = planArena(model, mcu);
  const shapes = inferShapes(model, 1);
  const chainValues = convs.flatMap((k) => [nodes[k]!.outputs[0]!, nodes[k + 1]!.outputs[0]!]);
  for (const name of chainValues) {
    const v = plan.values.find((e) => e.name === name)!;
    t.same([v.fused, v.offset, v.bytes], [true, 0, 0], `${name} (${numel(shapes.values.get(name)!) * 4} B before pooling) is fused`);
  }
  // conv1's output alone (20 x 24 x 24 floats) is larger than the whole arena now
  const c1 = numel(shapes.values.get(nodes[convs[0]!]!.outputs[0]!)!) * 4;
  t.ok(plan.arena < c1, `arena ${plan.arena} B < conv1's unpooled output ${c1} B`);
  t.equal(code(() => checkPlan(model, plan, mcu)), 'no error', 'the fused plan checks');
  t.same(model.memoryPlan!.plans.find((e) => e.profile === 'mcu'), plan, 'the writer stores this plan');
  t.notOk(planArena(model, nodeProfile).values.some((v) => v.fused), 'node plans store every value');

  // the svd conv's scratch (its first stage) is live with the pool's output over the chain
  const k2 = convs[1]!;
  const scratch = plan.scratch.find((s) => s.node === k2)!;
  const pooled = plan.values.find((v) => v.name === nodes[k2 + 2]!.outputs[0])!;
  t.ok(scratch && scratch.bytes > 0, 'the svd conv keeps its first stage in scratch');
  t.ok(scratch.offset >= pooled.offset + pooled.bytes || pooled.offset >= scratch.offset + scratch.bytes, 'scratch and pooled output do not share bytes');

  const broken = (what: string, change: (q: ArenaPlan) => void, pr = mcu) => {
    const q: ArenaPlan = structuredClone(plan);
    change(q);
    t.equal(code(() => checkPlan(model, q, pr)), 'FLM_MEMORY_PLAN', what);
  };
  const entry = (q: ArenaPlan, name: string) => q.values.find((v) => v.name === name)!;
  const [conv1Out, relu1Out] = chainValues as [string, string];
  broken('profile that streams only dense chains', () => {}, { ...mcu, fuses: [DENSE_CHAIN] });
  broken('half a chain fused (relu output stored)', (q) => {
    const bytes = numel(shapes.values.get(relu1Out)!) * 4;
    Object.assign(entry(q, relu1Out), { fused: undefined, offset: q.arena, bytes });
    q.arena += bytes;
  });
  broken('half a chain fused (conv output stored)', (q) => {
    const bytes = numel(shapes.values.get(conv1Out)!) * 4;
    Object.assign(entry(q, conv1Out), { fused: undefined, offset: q.arena, bytes });
    q.arena += bytes;
  });
  broken('fused value with bytes', (q) => { entry(q, conv1Out).bytes = 4; });
  broken('the pooled output fused (its reader is a conv, not part of this chain)', (q) => {
    Object.assign(entry(q, nodes[convs[0]! + 2]!.outputs[0]!), { fused: true, offset: 0, bytes: 0 });
  });
  broken('scratch overlapping the pooled output (live together over the chain)', (q) => {
    q.scratch.find((s) => s.node === k2)!.offset = entry(q, pooled.name).offset;
  });
});

t.test('conv-pool fusion: only chains the chain alone reads, with an activation or none', async (t) => {
  const model = await ratio10(t, 'lenet5_fashion', 'svd');
  if (!model) return;
  const mcu = getProfile('mcu')!;
  const g = structuredClone(model.graph);
  const k = g.nodes.findIndex((n) => n.op === 'conv2d' || n.op === 'svd_conv2d');
  const relu = g.nodes[k + 1]!;

  // relu's output is also a graph output: that chain stores its values; the other still fuses
  const m2: Model = { ...model, graph: { ...g, outputs: [...g.outputs, relu.outputs[0]!] }, memoryPlan: undefined };
  const plan2 = planArena(m2, mcu);
  t.notOk(plan2.values.find((v) => v.name === relu.outputs[0])!.fused, 'a graph output is never fused');
  t.notOk(plan2.values.find((v) => v.name === relu.inputs[0])!.fused, 'nor the rest of its chain');
  const k2 = g.nodes.findIndex((n, i) => i > k && (n.op === 'conv2d' || n.op === 'svd_conv2d'));
  const second = [g.nodes[k2]!.outputs[0]!, g.nodes[k2 + 1]!.outputs[0]!];
  t.same(plan2.values.filter((v) => v.fused && second.includes(v.name)).map((v) => v.name), second, 'the second chain still fuses');
  t.equal(code(() => checkPlan(m2, plan2, mcu)), 'no error', 'that plan checks');
  const forced = structuredClone(plan2);
  for (const v of forced.values) if (v.name === relu.inputs[0]) Object.assign(v, { fused: true, offset: 0, bytes: 0 });
  t.equal(code(() => checkPlan(m2, forced, mcu)), 'FLM_MEMORY_PLAN', 'fusing it anyway is refused');

  // an op between conv and pool that is not an elementwise activation (softmax over channels):
  // no chain
  const g3 = structuredClone(model.graph);
  g3.nodes[k + 1] = { ...g3.nodes[k + 1]!, op: 'softmax', attrs: { axis: 1 } };
  const m3: Model = { ...model, graph: g3, memoryPlan: undefined };
  const plan3 = planArena(m3, mcu);
  t.notOk(plan3.values.some((v) => v.name === g3.nodes[k]!.outputs[0] && v.fused), 'conv -> softmax -> pool is not fused');
  const forced3 = structuredClone(plan3);
  for (const v of forced3.values) {
    if (v.name === g3.nodes[k]!.outputs[0] || v.name === g3.nodes[k + 1]!.outputs[0]) Object.assign(v, { fused: true, offset: 0, bytes: 0 });
  }
  t.equal(code(() => checkPlan(m3, forced3, mcu)), 'FLM_MEMORY_PLAN', 'fusing conv -> softmax -> pool is refused');

  // conv -> pool with no activation: a two-node chain, its one intermediate fused
  const g4 = structuredClone(model.graph);
  const pool = g4.nodes[k + 2]!;
  g4.nodes[k + 2] = { ...pool, inputs: [g4.nodes[k]!.outputs[0]!] };
  g4.nodes.splice(k + 1, 1);
  const m4: Model = { ...model, graph: g4, memoryPlan: undefined };
  const plan4 = planArena(m4, mcu);
  t.same(plan4.values.filter((v) => v.fused).map((v) => v.name).slice(0, 1), [g4.nodes[k]!.outputs[0]], 'conv -> max_pool fuses the conv output');
  t.equal(code(() => checkPlan(m4, plan4, mcu)), 'no error', 'that plan checks');
});
