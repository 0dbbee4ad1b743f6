// graphMacs: multiply-accumulates of one sample, the denominator of the firmware's instructions
// per MAC. Checked against the layer arithmetic of the fixtures' architectures, worked out here by
// hand from their shapes (LeNet-5: conv 1->20 5x5 on 28x28, pool, conv 20->50 5x5, pool, 800->500,
// 500->10; FC-2: 784->1024->10).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readFlmFile } from '../../runtime/format/reader.js';
import { graphMacs } from '../../targets/fit.js';
import { cli } from '../support/cli.js';
import { single, stored } from '../converter/export/harness.js';
import { needFixture } from '../support/require.js';

t.test('graphMacs counts dense and factor layers as the device runs them', async (t) => {
  const lenet = needFixture(t, 'lenet5_fashion.onnx');
  const mlp = needFixture(t, 'mlp_fashion.onnx');
  if (!lenet || !mlp) return;
  const dir = mkdtempSync(join(tmpdir(), 'flm-macs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  const dense = join(dir, 'lenet.flm');
  t.equal(cli(['convert', lenet, '-o', dense, '--method', 'none']).status, 0);
  const conv1 = 20 * 1 * 5 * 5 * 24 * 24;
  const conv2 = 50 * 20 * 5 * 5 * 8 * 8;
  t.equal(graphMacs(await readFlmFile(dense)), conv1 + conv2 + 800 * 500 + 500 * 10, 'dense LeNet-5');

  // FC-2's hidden layer as a rank-16 SVD pair: x -> V (784x16) -> U (16x1024), then 1024 -> 10.
  const ranks = join(dir, 'ranks.json');
  writeFileSync(ranks, JSON.stringify({ '/f1/Gemm': 16 }));
  const svd = join(dir, 'fc2.flm');
  const r = cli(['convert', mlp, '-o', svd, '--method', 'svd', '--ranks', ranks]);
  t.equal(r.status, 0, r.stderr);
  t.equal(graphMacs(await readFlmFile(svd)), 784 * 16 + 16 * 1024 + 1024 * 10, 'svd FC-2: the factors, not the rebuilt weight');
});

t.test('graphMacs counts a dwlr_conv2d as the device runs it: K = u v rebuilt, then the depthwise conv', async (t) => {
  // 8 channels, rank 3, 3x3 kernels, stride 1, pad 1 on a 7x6 map: 8 * 3 * 9 for K, 8 * 7 * 6 * 9 for the conv.
  const m = single('dwlr_conv2d', [8, 7, 6], { u: stored('u', [8, 3]), v: stored('v', [3, 3, 3]) }, { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 8 });
  t.equal(graphMacs(m), 8 * 3 * 9 + 8 * 7 * 6 * 9);
  const s2 = single('dwlr_conv2d', [8, 7, 6], { u: stored('u', [8, 2]), v: stored('v', [2, 3, 3]) }, { strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], group: 8 });
  t.equal(graphMacs(s2), 8 * 2 * 9 + 8 * 3 * 2 * 9, 'stride 2, no padding: a 3x2 output');
});
