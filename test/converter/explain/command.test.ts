// factorlite explain on models trained a few steps: a TTL MLP (heat map) and a CP LeNet-5 (bar
// chart); one-line errors for a model with neither layer kind and for a missing data folder.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { explainCommand, type ExplainArgs, type ExplainResult } from '../../../cli/commands/explain.js';
import { loadDataset } from '../../../converter/data/datasets.js';
import { buildNet, type NetConfig } from '../../../converter/train/arch.js';
import { softmaxCrossEntropy } from '../../../converter/train/ops/loss.js';
import { backward, constant } from '../../../converter/train/tensor.js';
import { writeFlmFile } from '../../../converter/writer.js';
import { randArray, rng, ttlModel } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-explain-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A few SGD steps on mnist, then the .flm. */
async function trained(cfg: NetConfig, file: string, steps = 3, batch = 16): Promise<string> {
  const net = buildNet(cfg);
  const ds = loadDataset('mnist', 'train');
  for (let s = 0; s < steps; s++) {
    const x = ds.images.slice(s * batch * 784, (s + 1) * batch * 784);
    const loss = softmaxCrossEntropy(net.forward(constant(x, [batch, 1, 28, 28])), ds.labels.subarray(s * batch, (s + 1) * batch));
    for (const v of Object.values(net.params)) v.zeroGrad();
    backward(loss);
    for (const v of Object.values(net.params)) if (v.grad) for (let i = 0; i < v.size; i++) v.data[i]! -= 0.05 * v.grad[i]!;
  }
  const path = join(dir, file);
  await writeFlmFile(net.toModel(), path);
  return path;
}

/** Runs the command with stdout captured; returns what it printed and returned. */
async function run(model: string, a: ExplainArgs): Promise<{ out: string; res: ExplainResult }> {
  const write = process.stdout.write.bind(process.stdout);
  let out = '';
  process.stdout.write = ((chunk: string | Uint8Array) => { out += String(chunk); return true; }) as typeof process.stdout.write;
  try {
    const res = await explainCommand(model, a);
    return { out, res };
  } finally {
    process.stdout.write = write;
  }
}

t.test('TTL model: heat map at -o and JSON', async (t) => {
  const model = await trained({ arch: 'mlp', layer: 'tucker', ratio: 20, seed: 0 }, 'ttl.flm');
  const output = join(dir, 'ttl.png');
  const { out } = await run(model, { data: 'mnist', limit: '48', output, json: true, progress: false });
  const j = JSON.parse(out) as ExplainResult;
  t.equal(out.trim().split('\n').length, 1, 'one JSON line on stdout');
  t.equal(j.kind, 'ttl');
  t.same(j.files, [output]);
  t.equal(j.samples, 48);
  const layer = j.layers[0]! as ExplainResult['layers'][0] & { pixelMap?: { values: number[] }; modes: Array<{ side: string; importance: number[] }> };
  t.equal(layer.layer, 'fc1');
  t.ok(layer.pixelMap, 'the first layer has a pixel map');
  t.equal(layer.modes.filter((m) => m.side === 'in').length, 2);
  t.equal(layer.picture.type, 'heatmap');
  const img = PNG.sync.read(readFileSync(output));
  t.same([img.width, img.height], [280, 280]);
  const vals = layer.pixelMap!.values;
  const best = vals.indexOf(Math.max(...vals));
  const o = 4 * ((Math.floor(best / 28) * 10 + 5) * 280 + (best % 28) * 10 + 5);
  t.same(Array.from(img.data.subarray(o, o + 3)), [252, 255, 164], 'the most important pixel is drawn at the top colour');
  // MNIST's corner pixel is 0 in every image: no gradient reaches its row and column factor rows.
  t.equal(vals[0], 0, 'the always-blank corner pixel scores 0');
});

t.test('CP model: bar chart at -o, text output', async (t) => {
  const model = await trained({ arch: 'lenet5', layer: 'cp', ratio: 10, seed: 0 }, 'cp.flm', 2, 8);
  const output = join(dir, 'cp.png');
  const { out, res } = await run(model, { data: 'mnist', limit: '8', output, progress: false });
  t.match(out, /conv2 \(cp_conv2d, rank \d+\): top terms/);
  t.equal(res.kind, 'cp');
  t.same(res.files, [output]);
  const l = res.layers[0]! as ExplainResult['layers'][0] & { termSignificance: number[]; outputMaps: number[]; inputMaps: number[] };
  t.equal(l.outputMaps.length, 50);
  t.equal(l.inputMaps.length, 20);
  t.equal(l.picture.type, 'bars');
  const img = PNG.sync.read(readFileSync(output));
  t.same([img.width, img.height], [l.picture.width, l.picture.height]);
});

t.test('errors: neither kind, missing data folder', async (t) => {
  const dense = await trained({ arch: 'mlp', layer: 'dense', seed: 0 }, 'dense.flm', 1);
  const output = join(dir, 'none.png');
  await t.rejects(explainCommand(dense, { data: 'mnist', output, progress: false }), { code: 'BAD_INPUT', message: /no ttl_dense or cp_conv2d layer/ });
  const ttl = join(dir, 'ttl.flm');
  await t.rejects(explainCommand(ttl, { data: join(dir, 'no-such-folder'), output, progress: false }), { code: 'DATA_NOT_FOUND', message: /does not exist/ });
  await t.rejects(explainCommand(join(dir, 'missing.flm'), { data: 'mnist', output, progress: false }));
  t.notOk(existsSync(output), 'no picture written on error');
});

t.test('a model with both kinds: heat map at -o, CP chart at <stem>.<layer>.png', async (t) => {
  const m = ttlModel([1, 28, 28], [4, 4], [28, 28], [2, 2, 3, 3], 4);
  const r = rng(8);
  const R = 3;
  const cp: Array<[string, number[]]> = [['cp.a_in', [R, 1]], ['cp.k_h', [R, 3]], ['cp.k_w', [R, 3]], ['cp.a_out', [5, R]]];
  for (const [name, shape] of cp) m.tensors.set(name, { name, dtype: 'f32', shape, data: randArray(shape[0]! * shape[1]!, r) });
  m.graph.nodes.push(
    { name: 'img', op: 'reshape', inputs: ['y'], outputs: ['y4'], attrs: { shape: [-1, 1, 4, 4] }, weights: {} },
    {
      name: 'conv/cp', op: 'cp_conv2d', inputs: ['y4'], outputs: ['c'],
      attrs: { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 },
      weights: { a_in: 'cp.a_in', k_h: 'cp.k_h', k_w: 'cp.k_w', a_out: 'cp.a_out' },
    },
    { name: 'flat2', op: 'flatten', inputs: ['c'], outputs: ['logits'], attrs: { axis: 1 }, weights: {} },
  );
  m.graph.outputs = ['logits'];
  const model = join(dir, 'both.flm');
  await writeFlmFile(m, model);
  const output = join(dir, 'both.png');
  const { res } = await run(model, { data: 'mnist', limit: '16', output, json: true, progress: false });
  t.equal(res.kind, 'ttl+cp');
  t.same(res.files, [output, join(dir, 'both.conv_cp.png')]);
  t.same(res.layers.map((l) => [l.layer, l.kind, l.picture.type]), [['ttl', 'ttl', 'heatmap'], ['conv/cp', 'cp', 'bars']]);
  for (const f of res.files) {
    const img = PNG.sync.read(readFileSync(f));
    t.ok(img.width > 0 && img.height > 0, `${f} decodes`);
  }
});
