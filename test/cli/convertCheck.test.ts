// convert's measured check as a user meets it: the agreement in --json, the one-line warning on
// stderr when agreement drops below 90%, --min-agreement (met: exit 0; unmet: one line with the
// numbers, exit non-zero, no file written), and the note about synthetic calibration. The model is
// built here: Flatten -> Gemm 784->32 of exact rank 4 -> Relu -> Gemm 32->10, on Fashion-MNIST images.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildModel, Rng } from '../converter/onnx/fixtures/build.js';
import { cliAsync, jsonOf } from '../support/cli.js';
import { needFashion } from '../support/require.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-convert-check-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

const rng = new Rng(5);
const a = rng.array(32 * 4, 1);
const b = rng.array(4 * 784, 1);
const w1 = new Float32Array(32 * 784);
for (let i = 0; i < 32; i++) for (let j = 0; j < 784; j++) {
  let s = 0;
  for (let k = 0; k < 4; k++) s += a[i * 4 + k]! * b[k * 784 + j]!;
  w1[i * 784 + j] = s / 40;
}
writeFileSync(at('m.onnx'), buildModel({
  opset: 13,
  inputs: [{ name: 'x', shape: ['n', 1, 28, 28] }],
  outputs: ['y'],
  nodes: [
    { op: 'Flatten', name: '/flat/Flatten', inputs: ['x'], outputs: ['f'], attrs: { axis: 1 } },
    { op: 'Gemm', name: '/fc1/Gemm', inputs: ['f', 'fc1.weight', 'fc1.bias'], outputs: ['h'], attrs: { transB: 1 } },
    { op: 'Relu', name: '/act/Relu', inputs: ['h'], outputs: ['r'] },
    { op: 'Gemm', name: '/fc2/Gemm', inputs: ['r', 'fc2.weight', 'fc2.bias'], outputs: ['y'], attrs: { transB: 1 } },
  ],
  inits: [
    { name: 'fc1.weight', dims: [32, 784], data: w1 },
    { name: 'fc1.bias', dims: [32], data: rng.array(32, 0.05) },
    { name: 'fc2.weight', dims: [10, 32], data: rng.array(320, 0.5) },
    { name: 'fc2.bias', dims: [10], data: rng.array(10, 0.05) },
  ],
}));

const convert = (out: string, ...opts: string[]) => cliAsync(['convert', at('m.onnx'), '-o', at(out), ...opts]);

t.test('convert checks every result against its source', async (t) => {
  if (!needFashion(t)) return;
  const [low, high, met, unmet, synthetic, badArg] = await Promise.all([
    convert('low.flm', '--ratio', '3', '--calib', 'fashion-mnist', '--json'),
    convert('high.flm', '--ratio', '20', '--method', 'svd', '--calib', 'fashion-mnist', '--json'),
    convert('met.flm', '--ratio', '3', '--calib', 'fashion-mnist', '--min-agreement', '90%', '--json'),
    convert('unmet.flm', '--ratio', '20', '--method', 'svd', '--calib', 'fashion-mnist', '--min-agreement', '0.99'),
    convert('syn.flm', '--ratio', '3', '--method', 'svd', '--json'),
    convert('bad.flm', '--ratio', '3', '--min-agreement', 'most'),
  ]);

  t.test('a good result: agreement in --json, no warning', async (t) => {
    const j = jsonOf(low, 'convert --ratio 3');
    t.equal(j.check.data, 'calibration');
    t.equal(j.check.samples, 256, '256 held-out training images');
    t.ok(j.check.agreement >= 0.9, `agreement ${j.check.agreement}`);
    t.equal(j.warning, null);
    t.notMatch(low.stderr, /warning:/);
    t.equal(j.calibration, 'fashion-mnist');
    t.ok(j.allocator && Array.isArray(j.allocator.guards), 'the allocator choices are in --json');
    t.ok(j.allocator.search && j.allocator.search.trials.length >= 1, 'auto reports its measured search');
  });

  t.test('a poor result: one warning line on stderr suggesting --finetune', async (t) => {
    const j = jsonOf(high, 'convert --ratio 20');
    t.ok(j.check.agreement < 0.9, `agreement ${j.check.agreement} < 0.9 at 20x`);
    const warnings = high.stderr.split('\n').filter((l) => l.startsWith('warning:'));
    t.equal(warnings.length, 1, 'exactly one warning line');
    t.match(warnings[0]!, `${(100 * j.check.agreement).toFixed(1)}%`, 'the warning names the measured agreement');
    t.match(warnings[0]!, '--finetune fashion-mnist', 'and suggests fine-tuning on the calibration data');
    t.equal(j.warning, warnings[0]!.slice('warning: '.length), 'the same text in --json');
  });

  t.test('--min-agreement met: exit 0 and the file is written', async (t) => {
    const j = jsonOf(met, 'convert --min-agreement 90%');
    t.ok(j.check.agreement >= 0.9);
    t.ok(existsSync(at('met.flm')));
  });

  t.test('--min-agreement unmet: one line with the numbers, non-zero exit, no file', async (t) => {
    t.not(unmet.status, 0);
    const lines = unmet.stderr.trim().split('\n').filter((l) => !l.startsWith('warning:') && !l.startsWith('calibration:'));
    t.equal(lines.at(-1)!.includes('AGREEMENT_UNMET'), true, lines.at(-1));
    t.match(lines.at(-1)!, /agreement with the source [0-9.]+% on 256 held-out calibration samples is below --min-agreement 99\.0%/);
    t.equal(unmet.stdout, '');
    t.notOk(existsSync(at('unmet.flm')), 'nothing written');
  });

  t.test('no --calib: synthetic inputs are named, with what that risks', async (t) => {
    const j = jsonOf(synthetic, 'convert without --calib');
    t.equal(j.calibration, 'synthetic');
    t.equal(j.check.data, 'synthetic');
    t.match(synthetic.stderr, /synthetic uniform .* misjudge/);
    t.match(synthetic.stderr, '--calib fashion-mnist', 'the input matches a known set: it says which');
  });

  t.test('a bad --min-agreement is a one-line argument error', async (t) => {
    t.not(badArg.status, 0);
    t.match(badArg.stderr, /--min-agreement most/);
    t.equal(badArg.stderr.trim().split('\n').length, 1);
  });
});
