// The reshaped tensorial methods from the command line on the real LeNet-5 fixture:
// convert --method rtt --ratio 10 --finetune x.npy -> inspect -> eval -> hil --emulate host
// (the firmware's host port against the Node runtime on Fashion-MNIST test images).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { writeNpy } from '../../cli/npy.js';
import { limitDataset, loadDataset } from '../../converter/data/datasets.js';
import { cliAsync, jsonOf } from '../support/cli.js';
import { npyInt32 } from '../support/npy.js';
import { FIXTURES, needFashion, needPath } from '../support/require.js';

const SRC = resolve(FIXTURES, 'lenet5_fashion.onnx');

if (needPath(t, SRC, 'fixture lenet5_fashion.onnx') && needFashion(t)) {
  const dir = mkdtempSync(join(tmpdir(), 'factorlite-tensorial-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const at = (n: string) => join(dir, n);
  // 600 training images: a small fine-tuning budget that keeps the test quick
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), 600);
  writeFileSync(at('x.npy'), writeNpy([600, 1, 28, 28], Float32Array.from(train.images)));
  writeFileSync(at('y.npy'), npyInt32(train.labels!));

  for (const method of ['rtt'] as const) {
    t.test(`convert --method ${method} --ratio 10 --finetune -> eval -> hil --emulate host`, async (t) => {
      const flm = at(`${method}.flm`);
      const j = jsonOf(await cliAsync(['convert', SRC, '-o', flm, '--method', method, '--ratio', '10', '--finetune', at('x.npy'), '--labels', at('y.npy'), '--json'], { timeout: 900_000 }), `convert --method ${method}`);
      t.ok(j.ratio >= 9.5, `ratio ${j.ratio} reaches about 10`);
      t.ok(j.finetune, 'fine-tuned');
      const ins = jsonOf(await cliAsync(['inspect', flm, '--json']), 'inspect');
      const ops = (ins.layers as Array<{ op: string; factorised: boolean }>).filter((l) => l.factorised).map((l) => l.op);
      t.ok(ops.length > 0 && ops.every((op) => op === `${method}_conv2d` || op === `${method}_dense`), `factorised kinds [${ops}] are ${method}'s own`);
      const e = jsonOf(await cliAsync(['eval', flm, '--data', 'fashion-mnist', '--limit', '300', '--json']), 'eval');
      t.equal(e.samples, 300);
      t.ok(e.accuracy > 0.6, `accuracy ${e.accuracy} > 0.6 after a 600-image fine-tune`);
      const h = jsonOf(await cliAsync(['hil', '--model', flm, '--emulate', 'host', '--data', 'fashion-mnist', '--limit', '60', '--no-progress', '--json'], { timeout: 600_000 }), 'hil');
      t.equal(h.results.answered, 60);
      t.ok(h.results.agreement >= 0.99, `device and workstation agree on ${h.results.agreement} of the samples`);
    });
  }
}
