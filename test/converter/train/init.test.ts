// Initialisers: the reconstructed weight of each layer has the target variance gain / fan_in
// (within 20%, averaged over seeds). The weight is recovered by probing the layer with unit inputs:
// the identity matrix for dense kinds, one-hot kh x kw images for conv kinds (no padding).
import t from 'tap';
import {
  conv2dLayer, cpConv2d, dense, svdDense, trDense, ttDense, ttlDense, tucker2Conv2d, type TrainLayer,
} from '../../../converter/train/index.js';
import { constant, noGrad } from '../../../converter/train/tensor.js';

/** Mean of W^2 over the reconstructed weight (the layer has no bias). */
function weightPower(layer: TrainLayer, inShape: number[]): number {
  const fan = inShape.reduce((a, b) => a * b, 1);
  const eye = new Float32Array(fan * fan);
  for (let i = 0; i < fan; i++) eye[i * fan + i] = 1;
  const y = noGrad(() => layer.forward(constant(eye, [fan, ...inShape]))).data;
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i]! * y[i]!;
  return s / y.length;
}

// Products of few Gaussian factors have heavy tails: one draw is noisy, the mean over draws is not.
const SEEDS = Array.from({ length: 24 }, (_, i) => i + 1);
const cases: Array<{ name: string; make: (seed: number) => TrainLayer; inShape: number[]; gain?: number }> = [
  { name: 'dense', make: (seed) => dense(256, 64, { seed, bias: false }), inShape: [256] },
  { name: 'conv2d', make: (seed) => conv2dLayer(16, 32, [3, 3], {}, { seed, bias: false }), inShape: [16, 3, 3] },
  { name: 'svd_dense', make: (seed) => svdDense(256, 64, 8, { seed, bias: false }), inShape: [256] },
  { name: 'tucker2_conv2d', make: (seed) => tucker2Conv2d(16, 32, [3, 3], [8, 8], {}, { seed, bias: false }), inShape: [16, 3, 3] },
  // k_h and k_w columns have only 3 entries each; rank 64 keeps the estimate's spread small.
  { name: 'cp_conv2d', make: (seed) => cpConv2d(16, 32, [3, 3], 64, {}, { seed, bias: false }), inShape: [16, 3, 3] },
  { name: 'tt_dense', make: (seed) => ttDense([4, 4, 4], [4, 8, 8], [4, 4], { seed, bias: false }), inShape: [256] },
  { name: 'tr_dense', make: (seed) => trDense([4, 4, 4], [4, 8, 8], [3, 4, 4], { seed, bias: false }), inShape: [256] },
  { name: 'ttl_dense', make: (seed) => ttlDense([8, 8], [16, 16], [4, 4, 6, 6], { seed, bias: false }), inShape: [256] },
  { name: 'ttl_dense gain 1', make: (seed) => ttlDense([8, 8], [16, 16], [4, 4, 6, 6], { seed, bias: false, gain: 1 }), inShape: [256], gain: 1 },
];

t.test('reconstructed-weight variance is within 20% of gain / fan_in', async (t) => {
  for (const c of cases) {
    const fanIn = c.inShape.reduce((a, b) => a * b, 1);
    const target = (c.gain ?? 2) / fanIn;
    const got = SEEDS.map((s) => weightPower(c.make(s), c.inShape)).reduce((a, b) => a + b, 0) / SEEDS.length;
    const ratio = got / target;
    t.ok(Math.abs(ratio - 1) < 0.2, `${c.name}: variance ${got.toExponential(3)} / target ${target.toExponential(3)} = ${ratio.toFixed(3)}`);
  }
});

t.test('start values replace the random initialisation', async (t) => {
  const u = Float32Array.from({ length: 6 }, (_, i) => i);
  const layer = svdDense(4, 3, 2, { weights: { u } });
  t.same(Array.from(layer.params['u']!.data), Array.from(u));
  t.not(layer.params['u']!.data, u, 'copied, not aliased');
  t.same(Array.from(layer.params['bias']!.data), [0, 0, 0], 'bias starts at zero');
});
