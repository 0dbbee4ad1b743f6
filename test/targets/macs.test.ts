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
