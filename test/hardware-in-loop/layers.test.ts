// Per-layer counts (issue 17): the Cortex-M4 firmware reads its instruction counter around each step
// of an inference (a node, or a fused chain run as one: FL_PROFILE_STEPS) and `stats` reports them;
// runHil names each step from the graph with its MACs (nodeMacs). On LeNet-5 converted from the
// PyTorch fixture with int8 factors, under QEMU: the steps cover every node once, in order, a step
// spans exactly a chain the mcu plan fuses, the MACs add up to graphMacs, and the steps' counts
// add up to at most the inference's count and to most of it.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { runHil } from '../../hardware-in-loop/hil.js';
import { reportTable } from '../../hardware-in-loop/report.js';
import { readFlm } from '../../runtime/format/reader.js';
import { graphMacs } from '../../targets/fit.js';
import { convertModel, fashionPixels, needBoard, startDevice } from '../firmware-bridge/host/device.js';

t.test('cortex-m4: stats.layers counts each step of the last inference', async (t) => {
  if (!needBoard(t, 'cortex-m4')) return;
  const data = fashionPixels(t, 3);
  if (!data) return;
  const flm = await convertModel(t, 'lenet5');
  if (!flm) return;
  const bytes = new Uint8Array(readFileSync(flm));
  const model = readFlm(bytes);
  const dev = await startDevice(t, 'cortex-m4');
  const r = await runHil({ modelBytes: bytes, modelPath: flm, transport: dev.serial, data: data.ds, board: 'cortex-m4', client: { timeoutMs: 2000, firstInferTimeoutMs: 30000, prepareTimeoutMs: 60000 } });
  t.ok(r.results, 'the samples ran');
  const layers = r.layers ?? [];
  t.ok(layers.length > 0, `${layers.length} steps reported`);
  t.equal(r.deviceStats?.['layers_lost'], 0, 'no step past the device\'s table');

  // every node once, in graph order
  const nodes = model.graph.nodes;
  let next = 0;
  for (const l of layers) {
    t.equal(l.first, next, `step ${l.first}-${l.last} starts where the last one ended`);
    next = l.last + 1;
    t.same(l.nodes, nodes.slice(l.first, l.last + 1).map((n) => n.name), `step ${l.first}-${l.last} names its nodes`);
  }
  t.equal(next, nodes.length, 'the steps cover the graph');

  // a step of several nodes is a chain the mcu plan streams: the outputs before its last are fused
  const plan = model.memoryPlan?.plans.find((p) => p.profile === 'mcu');
  const fused = new Set(plan?.values.filter((v) => v.fused).map((v) => v.name));
  t.ok(layers.some((l) => l.last > l.first), 'LeNet-5 has fused chains');
  for (const l of layers) {
    const inner = nodes.slice(l.first, l.last).flatMap((n) => n.outputs);
    t.ok(inner.every((o) => fused.has(o)), `step ${l.first}-${l.last}: its inner outputs are fused in the mcu plan`);
    t.notOk(fused.has(nodes[l.last]!.outputs[0]!), `step ${l.first}-${l.last}: its last output is stored`);
    if (l.macs > 0) {
      t.ok(l.cycles > 0, `${l.nodes.at(-1)}: ${l.cycles} instructions for ${l.macs} MACs`);
      t.equal(l.perMac, l.cycles / l.macs, `${l.nodes.at(-1)}: per MAC is their ratio`);
    } else t.equal(l.perMac, null, `${l.nodes.at(-1)}: no MACs, no ratio`);
  }
  t.equal(layers.reduce((a, l) => a + l.macs, 0), graphMacs(model), 'the steps\' MACs add up to graphMacs');

  // the steps are sub-intervals of the inference's own count (one SysTick reading each side)
  const sum = layers.reduce((a, l) => a + l.cycles, 0);
  const c = r.results!.cycles!;
  t.ok(sum <= c.max, `steps ${sum} <= the inference's ${c.max} instructions`);
  t.ok(sum >= 0.95 * c.p50, `steps ${sum} >= 95% of the inference's ${c.p50}: the count outside the steps is small`);
  t.match(reportTable(r), /layer \d+-\d+.*\d+ cycles, \d+ MACs, [\d.]+ per MAC/, 'the human table lists the layers');
});
