// finetune's wall-clock bound (maxSeconds): a bound too short for any step stops at the first
// re-estimate of the pace (after 4 steps) with the epoch cut there; a bound long enough runs every
// step of every epoch, with the teacher's logits computed batch by batch, and trains as well as a
// run without a bound (the teacher's logits are the same numbers either way). On the LeNet-5
// fixture compressed by SVD at 20x, 1,000 Fashion-MNIST training images (16 steps of 64 an epoch),
// 1,000 test images.
import t from 'tap';
import { compressModel } from '../../../converter/compress.js';
import { limitDataset, loadDataset } from '../../../converter/data/datasets.js';
import { importOnnxFile } from '../../../converter/onnx/index.js';
import { finetune } from '../../../converter/train/finetune.js';
import { initKernels } from '../../../runtime/kernels/backend.js';
import { needFashion, needFixture } from '../../support/require.js';

await initKernels();

t.test('finetune maxSeconds', async (t) => {
  const onnx = needFixture(t, 'lenet5_fashion.onnx');
  if (!onnx || !needFashion(t)) return;
  const dense = importOnnxFile(onnx);
  const student = compressModel(dense, { method: 'svd', ranks: { '/c2/Conv': 8, '/f1/Gemm': 8 } }).model;
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), 1000);
  const test = limitDataset(loadDataset('fashion-mnist', 'test'), 1000);

  const lines: string[] = [];
  const cut = finetune(student, dense, train, undefined, { epochs: 2, seed: 1, maxSeconds: 1e-6, log: (s) => lines.push(s) });
  t.equal(cut.plannedSteps, 32, '2 epochs of 16 steps asked for');
  t.equal(cut.steps, 4, 'a bound shorter than any step: stopped at the first re-estimate');
  t.equal(cut.history.length, 1, 'the second epoch never started');
  t.equal(cut.history[0]!.images, 256, 'the first epoch cut after 4 batches of 64');
  t.ok(lines.some((l) => /allow about 4 of 32 steps/.test(l)), 'the cut is logged');

  // As the fine-tuning test of finetune.test.ts (2 epochs, seed 1), with and without a bound.
  const free = finetune(student, dense, train, test, { epochs: 2, seed: 1 });
  const bounded = finetune(student, dense, train, test, { epochs: 2, seed: 1, maxSeconds: 1e6 });
  t.equal(bounded.steps, 32);
  t.equal(bounded.plannedSteps, 32);
  t.equal(free.steps, 32);
  t.same(bounded.history.map((h) => h.images), [1000, 1000]);
  t.ok(bounded.after!.accuracy >= bounded.before!.accuracy + 0.01, `trains: ${bounded.before!.accuracy} -> ${bounded.after!.accuracy}`);
  t.ok(Math.abs(bounded.after!.accuracy - free.after!.accuracy) <= 0.004,
    `same training as without a bound: ${bounded.after!.accuracy} vs ${free.after!.accuracy}`);
});
