// Training end to end on the mnist package digits: seeded batches, every architecture and layer
// kind exported to a runtime model, repeatable runs, learning (TT hidden layer >= 200x smaller,
// > 70% held out after 2 epochs on 2,000 images), the written .flm giving the trainer's logits,
// resume continuing exactly, and the train command's arguments and JSON.
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { limitDataset, loadDataset } from '../../../converter/data/datasets.js';
import { ARCH_NAMES, buildNet, LAYER_CHOICES, paramSummary, type NetConfig } from '../../../converter/train/arch.js';
import { loadCheckpoint, saveCheckpoint, statePath } from '../../../converter/train/checkpoint.js';
import { BatchLoader } from '../../../converter/train/loader.js';
import { constant, noGrad } from '../../../converter/train/tensor.js';
import { Trainer, type TrainConfig } from '../../../converter/train/trainer.js';
import { writeFlmFile } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { Session } from '../../../runtime/session.js';
import { trainCommand, type TrainArgs } from '../../../cli/commands/train.js';
import { maxRelDiff } from './gradcheck.js';
import { capture } from '../../support/capture.js';

const trainAll = loadDataset('mnist', 'train');
const testAll = loadDataset('mnist', 'test');
const dir = mkdtempSync(join(tmpdir(), 'factorlite-train-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const cfg = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  epochs: 2, batch: 50, optimizer: { kind: 'adam', lr: 0.003 }, schedule: { kind: 'cosine' }, seed: 1, ...over,
});

t.test('loader: seeded per-epoch permutations, every sample once', async (t) => {
  const ds = limitDataset(trainAll, 103);
  const a = new BatchLoader(ds, { batch: 10, seed: 7 });
  t.equal(a.batchesPerEpoch, 11);
  const seen = new Uint8Array(ds.count);
  const labels: number[] = [];
  for (const b of a.epoch(0)) {
    t.equal(b.images.length, b.n * 784);
    labels.push(...b.labels);
  }
  for (const k of a.order(0)) seen[k]!++;
  t.ok(seen.every((c) => c === 1), 'a permutation');
  t.same(Array.from(new BatchLoader(ds, { batch: 10, seed: 7 }).order(0)), Array.from(a.order(0)), 'same seed, same order');
  t.not(Array.from(a.order(1)).join(), Array.from(a.order(0)).join(), 'a new order each epoch');
  t.not(Array.from(new BatchLoader(ds, { batch: 10, seed: 8 }).order(0)).join(), Array.from(a.order(0)).join(), 'another seed, another order');
  t.same(labels, Array.from(a.order(0)).map((k) => ds.labels[k]!), 'batches follow the order');
  const first = a.epoch(0).next().value!;
  const k0 = a.order(0)[0]!;
  t.same(Array.from(first.images.subarray(0, 784)), Array.from(ds.images.subarray(k0 * 784, (k0 + 1) * 784)), 'images follow the order');
  t.same(Array.from(new BatchLoader(ds, { batch: 10, shuffle: false }).order(3)).slice(0, 3), [0, 1, 2]);
});

t.test('every architecture and layer kind: ranks meet the ratio, and the runtime model equals forward', async (t) => {
  const x = limitDataset(testAll, 2);
  for (const arch of ARCH_NAMES) {
    for (const layer of LAYER_CHOICES) {
      // The conv nets are slow to export and run for every kind: check them on a few kinds.
      if (arch !== 'mlp' && !['dense', 'svd', 'tucker', 'cp'].includes(layer)) continue;
      const c: NetConfig = { arch, layer, ratio: 8, seed: 3 };
      const net = buildNet(c);
      for (const l of net.layers) {
        if (l.hidden && layer !== 'dense') t.ok(l.params <= l.denseParams / 8 || l.ranks.every((r) => r === 1), `${arch}/${layer} ${l.name} ${l.op}: ${l.params} <= ${l.denseParams} / 8`);
        if (!l.hidden) t.ok(['dense', 'conv2d'].includes(l.op), `${arch}/${layer} ${l.name} stays dense`);
      }
      const y = noGrad(() => net.forward(constant(x.images, [2, 1, 28, 28])));
      t.same(y.shape, [2, 10]);
      const r = Session.create(net.toModel(), { retainWeights: false }).runBatch({ shape: [2, 1, 28, 28], data: x.images });
      const d = maxRelDiff(y.data, r.data);
      t.ok(d < 1e-4, `${arch}/${layer}: runtime vs forward ${d.toExponential(1)}`);
    }
  }
  // The TT FC-2 hidden layer at ratio 200: modes 4x4x8x8 by 4x4x7x7, rank 5, bias dense.
  const tt = buildNet({ arch: 'mlp', layer: 'tt', ratio: 200 }).layers[0]!;
  t.same([tt.op, tt.ranks, tt.outModes, tt.inModes, tt.params], ['tt_dense', [5, 5, 5], [4, 4, 8, 8], [4, 4, 7, 7], 3184]);
  t.ok(tt.denseParams / tt.params >= 200, `${(tt.denseParams / tt.params).toFixed(1)}x >= 200x`);
  t.throws(() => buildNet({ arch: 'resnet' as never, layer: 'tt' }), /unknown architecture/);
  t.throws(() => buildNet({ arch: 'mlp', layer: 'tt', ratio: 0.5 }), /ratio/);
});

t.test('a seeded run is repeatable', async (t) => {
  const ds = limitDataset(trainAll, 300);
  const run = (seed: number) => {
    const tr = new Trainer(buildNet({ arch: 'mlp', layer: 'tt', ratio: 200, seed }), ds, undefined, cfg({ epochs: 1, seed }));
    return tr.trainEpoch().loss;
  };
  const a = run(5);
  t.equal(run(5), a, `same loss twice (${a})`);
  t.not(run(6), a, 'another seed, another loss');
});

t.test('mlp with a TT hidden layer (>= 200x smaller) learns; the .flm gives the trainer\'s logits', async (t) => {
  const trainSet = limitDataset(trainAll, 2000);
  const net = buildNet({ arch: 'mlp', layer: 'tt', ratio: 200, seed: 0 });
  const sum = paramSummary(net);
  t.ok(sum.hiddenDenseParams / sum.hiddenParams >= 200, `hidden layer ${sum.hiddenParams} params`);
  const tr = new Trainer(net, trainSet, testAll, cfg({ epochs: 2, batch: 64, seed: 0 }));
  const steps: number[] = [];
  const hist = await tr.run({ onProgress: (p) => steps.push(p.loss) });
  t.equal(steps.length, 2 * 32, 'a progress report per batch');
  t.ok(hist[1]!.loss < hist[0]!.loss, `loss falls: ${hist.map((h) => h.loss.toFixed(3)).join(' -> ')}`);
  t.ok(hist[0]!.loss < Math.log(10), 'below chance level loss');
  t.ok(hist[1]!.testAccuracy! > 0.7, `held-out accuracy ${hist[1]!.testAccuracy} > 0.7 (${hist[1]!.testSamples} images)`);

  const path = join(dir, 'mlp_tt.flm');
  await writeFlmFile(tr.exportModel(), path);
  const model = readFlm(readFileSync(path));
  t.notOk([...model.graph.nodes].some((n) => n.op === 'tt_dense' && n.weights['weight']), 'no dense weight in the TT node');
  const x = limitDataset(testAll, 64);
  const got = Session.create(model).runBatch({ shape: [64, 1, 28, 28], data: x.images });
  const want = tr.logits(x.images, 64);
  const d = maxRelDiff(got.data, want);
  t.ok(d < 1e-5, `runtime on the file vs trainer forward: ${d.toExponential(1)}`);
  t.equal(model.metadata['train.epoch'], 2);
});

t.test('resume from a checkpoint continues exactly', async (t) => {
  const ds = limitDataset(trainAll, 300);
  const test = limitDataset(testAll, 100);
  const net0: NetConfig = { arch: 'lenet5', layer: 'cp', ratio: 20, seed: 2 };
  const c = cfg({ epochs: 3, batch: 60, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true }, schedule: { kind: 'cosine', warmup: 2 } });

  const whole = new Trainer(buildNet(net0), ds, test, c);
  await whole.run();

  const path = join(dir, 'resume.flm');
  const first = new Trainer(buildNet(net0), ds, test, c);
  first.trainEpoch();
  await saveCheckpoint(path, first.exportModel(), first.state());
  const { model, state } = loadCheckpoint(path);
  const net = buildNet(state.net);
  net.loadWeights(model);
  const rest = new Trainer(net, ds, test, state.config);
  rest.restore(state);
  await rest.run({ checkpoint: path });

  const a = whole.net.params, b = rest.net.params;
  t.ok(Object.keys(a).every((k) => a[k]!.data.every((v, i) => v === b[k]!.data[i])), 'parameters bit for bit');
  t.same(rest.history.map((h) => h.loss), whole.history.map((h) => h.loss), 'same losses');
  t.same(rest.history.map((h) => h.testAccuracy), whole.history.map((h) => h.testAccuracy), 'same test accuracies');
  t.equal(loadCheckpoint(path).state.epoch, 3, 'checkpoint after the last epoch');

  // A sidecar from another epoch, or another data size, is refused.
  await saveCheckpoint(join(dir, 'other.flm'), first.exportModel(), { ...first.state(), epoch: 2, step: 10 });
  t.throws(() => loadCheckpoint(join(dir, 'other.flm')), { code: 'CHECKPOINT_MISMATCH' });
  t.throws(() => new Trainer(buildNet(net0), limitDataset(ds, 200), test, c).restore(state), /steps over/);
  t.throws(() => loadCheckpoint(join(dir, 'none.flm')), { code: 'CHECKPOINT_MISSING' });
});


t.test('train command: one-line argument errors, JSON on stdout, --resume', async (t) => {
  const base: TrainArgs = { arch: 'mlp', layer: 'tt', ratio: '200', data: 'mnist', output: join(dir, 'cli.flm'), progress: false };
  const bad: Array<[Partial<TrainArgs>, RegExp]> = [
    [{ arch: 'resnet' }, /--arch resnet: expected one of mlp, lenet5, vgg/],
    [{ layer: 'foo' }, /--layer foo/],
    [{ ratio: '0.5' }, /--ratio 0.5/],
    [{ epochs: '0' }, /--epochs 0/],
    [{ lr: 'fast' }, /--lr fast/],
    [{ optimizer: 'lion' }, /--optimizer lion/],
    [{ layer: undefined }, /--layer is required/],
    [{ output: join(dir, 'x.onnx') }, /must be a .flm/],
    [{ resume: true, output: join(dir, 'missing.flm') }, /no checkpoint to resume/],
  ];
  for (const [over, re] of bad) await t.rejects(trainCommand({ ...base, ...over }), { code: /BAD_/, message: re }, re.source);

  const args: TrainArgs = { ...base, epochs: '1', limit: '200', evalLimit: '100', json: true };
  const { out, err } = await capture(() => trainCommand(args));
  const lines = out.trim().split('\n');
  t.equal(lines.length, 1, 'one line on stdout');
  const j = JSON.parse(lines[0]!);
  t.match(j, { arch: 'mlp', layer: 'tt', ratio: 200, trainSamples: 200, samples: 100, hiddenParams: 3184, hiddenDenseParams: 803840, epochs: 1 });
  t.ok(j.accuracy > 0.1 && j.hiddenCompression >= 200 && j.imagesPerSecond > 0 && j.seconds > 0, 'accuracy, compression, speed');
  t.match(err, /epoch 1\/1: loss/);
  t.equal(loadCheckpoint(args.output).state.epoch, 1);

  const again = await capture(() => trainCommand({ ...args, arch: undefined, layer: undefined, ratio: undefined, epochs: '2', resume: true }));
  const k = JSON.parse(again.out);
  t.match(k, { resumedFromEpoch: 1, epochs: 2, arch: 'mlp', layer: 'tt' });
  t.equal(k.history.length, 2);
  await t.rejects(trainCommand({ ...args, arch: 'lenet5', resume: true }), /--arch lenet5 differs/);
  t.ok(statePath(args.output).endsWith('.flm.state.json'));
});

t.test('--hidden-bias none: the hidden layers have no bias and the budget goes to the weight (FC-2 at 1000x in <= 804 params)', async (t) => {
  const x = limitDataset(testAll, 2);
  const runs: NetConfig[] = [
    ...(['dense', 'svd', 'tucker', 'tt', 'tr', 'rtt'] as const).map((layer): NetConfig => ({ arch: 'mlp', layer, ratio: 8, seed: 5, hiddenBias: false })),
    { arch: 'lenet5', layer: 'cp', ratio: 8, seed: 5, hiddenBias: false },
    { arch: 'lenet5', layer: 'rtt', ratio: 8, seed: 5, hiddenBias: false },
  ];
  for (const c of runs) {
    const net = buildNet(c);
    const model = net.toModel();
    for (const l of net.layers) {
      const node = model.graph.nodes.find((n) => n.name === l.name)!;
      t.equal('bias' in node.weights, !l.hidden, `${c.arch}/${c.layer} ${l.name}: ${l.hidden ? 'no bias' : 'keeps its bias'}`);
      if (l.hidden && c.layer !== 'dense') t.ok(l.params <= l.denseParams / 8, `${c.arch}/${c.layer} ${l.name}: ${l.params} <= ${l.denseParams} / 8`);
      if (l.hidden && c.layer === 'dense') t.equal(l.params, 784 * 1024, 'a dense hidden layer counts its weight only');
    }
    t.equal(model.metadata['train.hidden_bias'], false);
    const y = noGrad(() => net.forward(constant(x.images, [2, 1, 28, 28])));
    const r = Session.create(model, { retainWeights: false }).runBatch({ shape: [2, 1, 28, 28], data: x.images });
    t.ok(maxRelDiff(y.data, r.data) < 1e-4, `${c.arch}/${c.layer}: runtime vs forward without hidden bias`);
  }
  // FC-2's hidden layer at 1000x: without a bias, TT rank 2 (432 params, 72 r + 72 r^2; rank 3 is
  // 864 > 803.84); with one, the 1,024 bias entries alone are over the budget.
  const fc1 = buildNet({ arch: 'mlp', layer: 'tt', ratio: 1000, hiddenBias: false }).layers[0]!;
  t.same([fc1.op, fc1.ranks, fc1.params, fc1.denseParams], ['tt_dense', [2, 2, 2], 432, 803840]);
  t.ok(fc1.params <= 804, 'fits the 1000x budget');
  const withBias = buildNet({ arch: 'mlp', layer: 'tt', ratio: 1000 }).layers[0]!;
  t.same([withBias.ranks, withBias.params], [[1, 1, 1], 144 + 1024], 'with the bias: rank 1 and still over');
  t.equal(buildNet({ arch: 'mlp', layer: 'tt', ratio: 200 }).config.hiddenBias, true, 'a bias by default');
  // The reshaped kinds (--layer rcp|rtk|rtt|rtr) in the converter's layout: FC-2 as modes
  // [4, 4, 8, 8] x [7, 7, 4, 4], reshaped dims [28, 28, 32, 32, 1]; rtt at rank 3 is 1 + 84 + 252 +
  // 288 + 96 = 721 params (rank 4: 1201), rcp rank 6 is 6 x 121 = 726, rtk [1, 4, 4, 4, 4] is 737.
  const fc = (layer: NetConfig['layer']) => buildNet({ arch: 'mlp', layer, ratio: 1000, hiddenBias: false }).layers[0]!;
  t.same([fc('rtt').op, fc('rtt').ranks, fc('rtt').params, fc('rtt').outModes, fc('rtt').inModes], ['rtt_dense', [3, 3, 3, 1], 721, [4, 4, 8, 8], [7, 7, 4, 4]]);
  t.same([fc('rcp').ranks, fc('rcp').params], [[6], 726]);
  t.same([fc('rtk').ranks, fc('rtk').params], [[1, 4, 4, 4, 4], 737]);

  const base: TrainArgs = { arch: 'mlp', layer: 'tt', ratio: '1000', data: 'mnist', output: join(dir, 'nobias.flm'), progress: false };
  await t.rejects(trainCommand({ ...base, hiddenBias: 'zero' }), { code: 'BAD_ARGUMENT', message: /--hidden-bias zero: expected one of full, none/ });
  const args: TrainArgs = { ...base, hiddenBias: 'none', epochs: '1', limit: '200', evalLimit: '100', json: true };
  const { out } = await capture(() => trainCommand(args));
  const j = JSON.parse(out);
  t.match(j, { hiddenBias: 'none', hiddenParams: 432, hiddenDenseParams: 803840, epochs: 1 });
  t.ok(j.hiddenCompression >= 1000, `${j.hiddenCompression.toFixed(0)}x >= 1000x`);
  const flm = readFlm(readFileSync(args.output));
  t.notOk(flm.graph.nodes.find((n) => n.name === 'fc1')!.weights['bias'], 'the written .flm has no hidden bias');
  const again = JSON.parse((await capture(() => trainCommand({ ...args, arch: undefined, layer: undefined, ratio: undefined, hiddenBias: undefined, epochs: '2', resume: true }))).out);
  t.match(again, { resumedFromEpoch: 1, hiddenBias: 'none', hiddenParams: 432 });
  await t.rejects(trainCommand({ ...args, hiddenBias: 'full', epochs: '3', resume: true }), /--hidden-bias full differs from the checkpoint's none/);
});
