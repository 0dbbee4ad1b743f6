// The PyTorch peer's layers (bench/lib/torchStages.ts): every parametric kind of a factorised
// LeNet-5 read back from its ONNX export as Conv / Gemm stages that hold exactly the layer's
// parameters, in the kind's chain order; a kind whose export is no such chain is refused by name.
import t from 'tap';
import { buildNet } from '../../converter/train/arch.js';
import { torchStages, type TorchStage } from '../../bench/lib/torchStages.js';

const count = (s: TorchStage) => s.weight.reduce((a, b) => a * b, 1) + (s.bias ? s.weight[0]! : 0);

for (const layer of ['cp', 'svd'] as const) {
  t.test(`lenet5 --layer ${layer}: the stages hold each layer's parameters`, async (t) => {
    const net = buildNet({ arch: 'lenet5', layer, ratio: 10, seed: 0 });
    const model = net.toModel();
    for (const info of net.layers) {
      const node = model.graph.nodes.find((n) => n.name === info.name)!;
      const stages = torchStages(model, node, info.name.startsWith('conv') ? 4 : 2);
      t.equal(stages.reduce((a, s) => a + count(s), 0), info.params, `${info.name} (${info.op}): ${stages.map((s) => `${s.op}[${s.weight}]`).join(' ')}`);
      t.ok(stages.every((s, k) => s.bias === (k === stages.length - 1)), 'only the last stage has the bias');
    }
  });
}

t.test('a CP conv is 1x1, depthwise kh x 1, depthwise 1 x kw, 1x1', async (t) => {
  const net = buildNet({ arch: 'lenet5', layer: 'cp', ratio: 10, seed: 0 });
  const model = net.toModel();
  const info = net.layers.find((l) => l.name === 'conv2')!;
  const R = info.ranks[0]!;
  const stages = torchStages(model, model.graph.nodes.find((n) => n.name === 'conv2')!, 4);
  t.same(stages.map((s) => [s.op, s.weight, s.op === 'Conv' ? s.group : 0]), [
    ['Conv', [R, 20, 1, 1], 1], ['Conv', [R, 1, 5, 1], R], ['Conv', [R, 1, 1, 5], R], ['Conv', [50, R, 1, 1], 1],
  ]);
});

t.test('a Tucker-2 conv is 1x1, the core conv, 1x1', async (t) => {
  const net = buildNet({ arch: 'lenet5', layer: 'tucker', ratio: 10, seed: 0 });
  const model = net.toModel();
  const node = model.graph.nodes.find((n) => n.name === 'conv2')!;
  t.equal(node.op, 'tucker2_conv2d');
  const [r1, r2] = net.layers.find((l) => l.name === 'conv2')!.ranks as [number, number];
  const stages = torchStages(model, node, 4);
  t.same(stages.map((s) => s.weight), [[r1, 20, 1, 1], [r2, r1, 5, 5], [50, r2, 1, 1]]);
});

t.test('a kind whose export is not a Conv / Gemm chain is refused, named', async (t) => {
  const net = buildNet({ arch: 'lenet5', layer: 'tt', ratio: 10, seed: 0 });
  const model = net.toModel();
  const node = model.graph.nodes.find((n) => n.name === 'fc1')!;
  t.equal(node.op, 'tt_dense');
  t.throws(() => torchStages(model, node, 2), /fc1 \(tt_dense\)/);
});
