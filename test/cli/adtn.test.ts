// ADTN from the command line: train --layer adtn on FC-2 (the hidden layer, no bias, >= 1000x
// smaller than dense) and convert --method adtn on LeNet-5's classifier; the written .flm through
// inspect (an mcu plan: the firmware runs adtn_dense from an MPS built at load) and eval.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { cli, cliAsync, jsonOf } from '../support/cli.js';
import { FIXTURES, needFashion, needPath } from '../support/require.js';

const LENET = resolve(FIXTURES, 'lenet5_fashion.onnx');

if (needFashion(t)) {
  const dir = mkdtempSync(join(tmpdir(), 'factorlite-adtn-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const at = (n: string) => join(dir, n);

  t.test('train --arch mlp --layer adtn --ratio 1000 --hidden-bias none', async (t) => {
    const out = at('mlp.flm');
    const j = jsonOf(await cliAsync(['train', '--arch', 'mlp', '--layer', 'adtn', '--ratio', '1000', '--hidden-bias', 'none', '--data', 'fashion-mnist',
      '--epochs', '1', '--limit', '256', '--batch', '128', '--eval-limit', '200', '-o', out, '--json'], { timeout: 600_000 }), 'train');
    const fc1 = j.layers.find((l: { name: string }) => l.name === 'fc1');
    // Q = 20 indices; depth 4 brick-wall: 2*20 + 16*(10 + 9 + 10 + 9) = 648 <= 803,840 / 1000.
    t.same([fc1.op, fc1.ranks, fc1.params], ['adtn_dense', [4], 648]);
    t.ok(j.hiddenCompression >= 1000, `hidden layer ${j.hiddenCompression}x`);
    const ins = jsonOf(cli(['inspect', out, '--json']), 'inspect');
    t.equal(ins.firmware.mcuPlan, true, 'an mcu plan (core/ops/adtn.c)');
    t.same(ins.firmware.missingOps ?? [], [], 'the firmware lacks no op');
    t.ok(ins.layers.find((l: { op: string }) => l.op === 'adtn_dense').factorised, 'a compressed layer');
    const human = cli(['inspect', out]);
    t.notMatch(human.stdout, /the firmware lacks/);
    const e = jsonOf(cli(['eval', out, '--data', 'fashion-mnist', '--limit', '200', '--json']), 'eval');
    t.equal(e.accuracy, j.accuracy, 'eval of the written file = the accuracy train reported');
  });

  if (needPath(t, LENET, 'fixture lenet5_fashion.onnx')) {
    t.test('convert --method adtn: the classifier as a depth-3 network, the rest as given', async (t) => {
      writeFileSync(at('ranks.json'), JSON.stringify({ '/f2/Gemm': [3] }));
      const out = at('lenet.flm');
      const j = jsonOf(cli(['convert', LENET, '-o', out, '--method', 'adtn', '--ranks', at('ranks.json'), '--calib', 'fashion-mnist', '--json']), 'convert');
      const f2 = j.layers.find((l: { name: string }) => l.name === '/f2/Gemm');
      // 10 x 500 = 5,000 weights -> Q = 13; depth 3: 2*13 + 16*(6 + 6 + 6) = 314, + 10 bias.
      t.same([f2.op, f2.ranks, f2.paramsAfter], ['adtn_dense', [3], 324]);
      t.ok(f2.relError > 0 && f2.relError < 1.0001, `fit error ${f2.relError}`);
      const ins = jsonOf(cli(['inspect', out, '--json']), 'inspect');
      t.same(ins.firmware.missingOps ?? [], []);
      const e = jsonOf(cli(['eval', out, '--data', 'fashion-mnist', '--limit', '100', '--json']), 'eval');
      t.equal(e.samples, 100);
      // A conv layer given a depth under --method adtn becomes adtn_conv2d; two ranks are refused.
      writeFileSync(at('conv.json'), JSON.stringify({ '/c2/Conv': [3] }));
      const c = jsonOf(cli(['convert', LENET, '-o', at('conv.flm'), '--method', 'adtn', '--ranks', at('conv.json'), '--json']), 'convert conv');
      const c2 = c.layers.find((l: { name: string }) => l.name === '/c2/Conv');
      t.same([c2.op, c2.ranks], ['adtn_conv2d', [3]]);
      t.same(jsonOf(cli(['inspect', at('conv.flm'), '--json']), 'inspect conv').firmware.missingOps ?? [], []);
      writeFileSync(at('conv2.json'), JSON.stringify({ '/c2/Conv': [4, 6] }));
      const bad = cli(['convert', LENET, '-o', at('conv2.flm'), '--method', 'adtn', '--ranks', at('conv2.json')]);
      t.not(bad.status, 0);
      t.match(bad.stderr, /expected one rank: the depth \[BAD_RANKS\]/);
      t.notOk(existsSync(at('conv2.flm')), 'nothing written');
    });
  }
}
