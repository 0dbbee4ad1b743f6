// TTL importance: the factor gradients against finite differences of the loss, and exact zeros for
// input pixels whose factor rows are zero (they cannot reach the output).
import t from 'tap';
import type { Dataset } from '../../../converter/data/datasets.js';
import { batchLoss, explainTtl, pixelMapOf, ttlGradients, ttlNodes } from '../../../converter/explain/ttl.js';
import { fromModel } from '../../../converter/train/fromModel.js';
import { randArray, rng, ttlModel } from './helpers.js';

t.test('factor gradients match central finite differences of the cross-entropy', async (t) => {
  const model = ttlModel([6], [2, 2], [2, 3], [2, 2, 2, 2]);
  const tm = fromModel(model);
  const nodes = ttlNodes(model);
  const r = rng(5);
  const B = 5;
  const x = randArray(B * 6, r, 1.5);
  const labels = Array.from({ length: B }, (_, i) => i % 4);
  const grads = ttlGradients(tm, nodes, x, [B, 6], labels);
  t.equal(grads[0]!.length, 4, 'one gradient per factor');
  const eps = 1e-2;
  let checked = 0;
  for (const [k, idx] of [[3, 2], [3, 5], [2, 1], [0, 3]] as const) {
    const v = tm.params[`ttl.factor.${k}`]!;
    const old = v.data[idx]!;
    v.data[idx] = old + eps;
    const up = batchLoss(tm, x, [B, 6], labels);
    v.data[idx] = old - eps;
    const down = batchLoss(tm, x, [B, 6], labels);
    v.data[idx] = old;
    const fd = (up - down) / (2 * eps);
    const g = grads[0]![k]![idx]!;
    t.ok(Math.abs(fd - g) <= 2e-3 + 0.02 * Math.abs(fd), `factor.${k}[${idx}]: backprop ${g.toFixed(6)} vs finite difference ${fd.toFixed(6)}`);
    checked++;
  }
  t.equal(checked, 4);
});

t.test('pixels behind zero factor rows get importance exactly 0, all others > 0', async (t) => {
  const model = ttlModel([1, 28, 28], [2, 5], [28, 28], [2, 3, 3, 3], 3);
  const rowsOff = [3, 7];
  const colsOff = [10];
  const f2 = model.tensors.get('ttl.factor.2')!.data as Float32Array; // image rows [28, 3]
  const f3 = model.tensors.get('ttl.factor.3')!.data as Float32Array; // image cols [28, 3]
  for (const i of rowsOff) f2.fill(0, i * 3, i * 3 + 3);
  for (const j of colsOff) f3.fill(0, j * 3, j * 3 + 3);
  const r = rng(11);
  const count = 40;
  const images = Float32Array.from({ length: count * 784 }, () => r());
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
  const ds: Dataset = { name: 'random', images, labels, count, shape: [1, 28, 28] };
  const [layer] = explainTtl(model, ds, { batch: 16 });
  t.ok(layer, 'one TTL layer explained');
  const modes = layer!.modes;
  t.same(modes.map((m) => `${m.side}${m.mode}:${m.size}`), ['out0:2', 'out1:5', 'in0:28', 'in1:28']);
  for (const i of rowsOff) {
    t.equal(modes[2]!.importance[i], 0, `image row ${i} importance is 0`);
    t.ok(modes[2]!.gradNorm[i]! > 0, `image row ${i} still has a raw gradient (why the map uses importance)`);
  }
  t.equal(modes[3]!.importance[10], 0);
  t.ok(layer!.pixelMap, 'a pixel map for a layer that reads the image');
  const pm = layer!.pixelMap!.values;
  t.equal(pm.length, 784);
  let zerosOk = true, positiveOk = true;
  for (let p = 0; p < 784; p++) {
    const off = rowsOff.includes(Math.floor(p / 28)) || colsOff.includes(p % 28);
    if (off && pm[p] !== 0) zerosOk = false;
    if (!off && !(pm[p]! > 0)) positiveOk = false;
  }
  t.ok(zerosOk, 'every pixel in a zeroed row or column scores exactly 0');
  t.ok(positiveOk, 'every other pixel scores > 0');
  t.equal(Math.max(...pm), 1, 'normalised to a maximum of 1');
  t.ok(Math.min(...pm) >= 0);
});

t.test('pixelMapOf multiplies the mode importances over row-major digits', async (t) => {
  const m = pixelMapOf([2, 3], [[1, 2], [0, 1, 4]]);
  t.same(m, [0, 1 / 8, 4 / 8, 0, 2 / 8, 1]);
});
