// Each trainable factor layer against the runtime layer kind of the same name on the same factors
// (max |diff| / max |runtime| <= 1e-5), and its factor gradients against finite differences.
import t from 'tap';
import {
  conv2dLayer, cpConv2d, dense, svdDense, trDense, ttDense, ttlDense, tucker2Conv2d, type TrainLayer,
} from '../../../converter/train/index.js';
import type { Model, StoredTensor, Tensor } from '../../../runtime/ir.js';
import { Session } from '../../../runtime/session.js';
import { gradCheck, maxRelDiff, randn, randParam } from './gradcheck.js';

/** Runs `layer`'s runtime kind on its own factors, as a one-node model. */
export function runtimeForward(layer: TrainLayer, x: Tensor): Tensor {
  const tensors = new Map<string, StoredTensor>();
  const weights: Record<string, string> = {};
  for (const [role, v] of Object.entries(layer.params)) {
    const name = `n.${role}`;
    weights[role] = name;
    tensors.set(name, { name, dtype: 'f32', shape: [...v.shape], data: Float32Array.from(v.data) });
  }
  const model: Model = {
    graph: {
      inputs: [{ name: 'x', shape: [-1, ...x.shape.slice(1)] }],
      outputs: ['y'],
      nodes: [{ name: 'n', op: layer.op, inputs: ['x'], outputs: ['y'], attrs: layer.attrs, weights }],
    },
    tensors,
    metadata: {},
  };
  return Session.create(model).runBatch(x);
}

const cases: Array<{ name: string; make: () => TrainLayer; x: number[] }> = [
  { name: 'dense', make: () => dense(12, 7, { seed: 1 }), x: [3, 12] },
  { name: 'conv2d', make: () => conv2dLayer(3, 4, [3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }, { seed: 2 }), x: [2, 3, 6, 5] },
  { name: 'conv2d grouped', make: () => conv2dLayer(4, 6, [3, 2], { pads: [1, 0, 1, 1], group: 2 }, { seed: 3 }), x: [2, 4, 5, 4] },
  { name: 'svd_dense', make: () => svdDense(12, 7, 3, { seed: 4 }), x: [2, 2, 12] },
  { name: 'tucker2_conv2d', make: () => tucker2Conv2d(4, 5, [3, 3], [2, 3], { strides: [1, 2], pads: [1, 0, 1, 2] }, { seed: 5 }), x: [2, 4, 6, 5] },
  { name: 'cp_conv2d', make: () => cpConv2d(3, 5, [3, 2], 4, { strides: [2, 1], pads: [1, 1, 0, 1], dilations: [1, 2] }, { seed: 6 }), x: [2, 3, 7, 6] },
  { name: 'tt_dense', make: () => ttDense([2, 3, 2], [3, 2, 2], [2, 3], { seed: 7 }), x: [3, 12] },
  { name: 'tr_dense', make: () => trDense([2, 3, 2], [3, 2, 2], [2, 3, 2], { seed: 8 }), x: [3, 12] },
  { name: 'ttl_dense', make: () => ttlDense([3, 4], [2, 3, 2], [2, 3, 2, 2, 2], { seed: 9 }), x: [3, 12] },
  { name: 'tt_dense d=1', make: () => ttDense([5], [4], [], { seed: 10 }), x: [2, 4] },
];

t.test('forward equals the runtime layer kind on the same factors', async (t) => {
  cases.forEach((c, i) => {
    const layer = c.make();
    const bias = layer.params['bias'];
    if (bias) bias.data.set(randn(bias.size, 500 + i));
    const x = randParam(c.x, 600 + i);
    const y = layer.forward(x);
    const r = runtimeForward(layer, { shape: [...x.shape], data: x.data });
    t.same(y.shape, r.shape, `${c.name}: shape [${r.shape}]`);
    const d = maxRelDiff(y.data, r.data);
    t.ok(d <= 1e-5, `${c.name}: max rel diff ${d.toExponential(2)} <= 1e-5`);
  });
});

t.test('factor gradients against finite differences', async (t) => {
  cases.forEach((c, i) => {
    const layer = c.make();
    const bias = layer.params['bias'];
    if (bias) bias.data.set(randn(bias.size, 700 + i));
    const x = randParam(c.x, 800 + i);
    gradCheck(t, c.name, () => layer.forward(x), [x, ...Object.values(layer.params)], { maxPerInput: 40 });
  });
});

t.test('factor layers reject mismatched shapes', async (t) => {
  t.throws(() => ttDense([2, 3], [3], [2]), /same length/);
  t.throws(() => trDense([2, 3], [3, 2], [2]), /expected 2 ranks/);
  t.throws(() => ttlDense([2], [3], [2]), /needs 2 ranks/);
  t.throws(() => dense(4, 3, { weights: { weight: new Float32Array(5) } }), /start value for weight/);
  t.throws(() => ttDense([2, 2], [2, 2], [2]).forward(randParam([1, 5], 1)), /does not end in 4/);
});
