// The ways convert could hand back a useless model without a word, each now said in one warning line:
// - a check that cannot tell: without --calib the held-out samples are synthetic uniform [0, 1)
//   images, on which many classifiers give one answer; a result that is useless on real images then
//   still "agrees" with its source. The model here has a brightness unit that gives class 7 to any
//   image brighter than 0.45 on average (all synthetic ones, few real ones) beside a rank-4 layer
//   that does the real work; at 10x the rank-4 part is gone. Its real-image agreement is counted in
//   the test from the runtime's outputs on Fashion-MNIST, independently of converter/check.ts;
// - convert --target wrote its model with no check at all: it now checks the written (compressed,
//   quantised) model and warns as convert does;
// - checkProblem's rules: non-finite outputs, outputs that are not class scores, [N, C, 1, 1] heads.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { checkProblem, classesOf, type AgreementCheck } from '../../converter/check.js';
import { limitDataset, loadDataset } from '../../converter/data/datasets.js';
import { importOnnxFile } from '../../converter/onnx/index.js';
import { checkWarning } from '../../cli/commands/checkWarning.js';
import type { Model, Tensor } from '../../runtime/ir.js';
import { readFlm } from '../../runtime/format/reader.js';
import { initKernels } from '../../runtime/kernels/backend.js';
import { Session } from '../../runtime/session.js';
import { buildModel, Rng } from '../converter/onnx/fixtures/build.js';
import { cliAsync, jsonOf } from '../support/cli.js';
import { needFashion } from '../support/require.js';

await initKernels();
const dir = mkdtempSync(join(tmpdir(), 'factorlite-convert-warn-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

const rng = new Rng(9);
const H = 33;
const a = rng.array(32 * 4, 1);
const b = rng.array(4 * 784, 1);
const w1 = new Float32Array(H * 784);
const b1 = new Float32Array(H);
for (let i = 0; i < 32; i++) for (let j = 0; j < 784; j++) {
  let s = 0;
  for (let k = 0; k < 4; k++) s += a[i * 4 + k]! * b[k * 784 + j]!;
  w1[i * 784 + j] = s / 40;
}
// Unit 32: 1000 * (mean pixel - 0.45), through the Relu to class 7 only.
for (let j = 0; j < 784; j++) w1[32 * 784 + j] = 1000 / 784;
b1[32] = -450;
const w2 = rng.array(10 * H, 0.5);
for (let c = 0; c < 10; c++) w2[c * H + 32] = c === 7 ? 1 : 0;
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
    { name: 'fc1.weight', dims: [H, 784], data: w1 },
    { name: 'fc1.bias', dims: [H], data: b1 },
    { name: 'fc2.weight', dims: [10, H], data: w2 },
    { name: 'fc2.bias', dims: [10], data: rng.array(10, 0.05) },
  ],
}));

/** Top-1 agreement of two models on `x`, arg-max by hand. */
function agreement(p: Model, q: Model, x: Tensor): number {
  const ya = Session.create(p).runBatch(x).data;
  const yb = Session.create(q).runBatch(x).data;
  const n = x.shape[0]!;
  const top = (y: Float32Array, i: number) => {
    let best = 0;
    for (let c = 1; c < 10; c++) if (y[i * 10 + c]! > y[i * 10 + best]!) best = c;
    return best;
  };
  let same = 0;
  for (let i = 0; i < n; i++) if (top(ya, i) === top(yb, i)) same++;
  return same / n;
}

const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('warning: '));

t.test('convert warns when its check cannot tell a useless result from a good one', async (t) => {
  if (!needFashion(t)) return;
  const [syn, real, target] = await Promise.all([
    cliAsync(['convert', at('m.onnx'), '-o', at('syn.flm'), '--ratio', '10', '--method', 'svd', '--json']),
    cliAsync(['convert', at('m.onnx'), '-o', at('real.flm'), '--ratio', '10', '--method', 'svd', '--calib', 'fashion-mnist', '--json']),
    cliAsync(['convert', at('m.onnx'), '-o', at('target.flm'), '--target', 'pi4', '--ratio', '10', '--method', 'svd', '--calib', 'fashion-mnist', '--json']),
  ]);
  const source = importOnnxFile(at('m.onnx'));
  const test = limitDataset(loadDataset('fashion-mnist', 'test'), 500);
  const images: Tensor = { shape: [test.count, 1, 28, 28], data: test.images };

  t.test('synthetic check: high agreement, and a warning that it says little', async (t) => {
    const j = jsonOf(syn, 'convert --ratio 10 without --calib');
    t.equal(j.check.data, 'synthetic');
    t.ok(j.check.agreement >= 0.9, `the synthetic check passes: agreement ${j.check.agreement}`);
    t.equal(j.check.majorityClass, 7, 'the source gives the brightness class to synthetic images');
    t.ok(j.check.majorityShare >= 0.9, `majority share ${j.check.majorityShare}`);
    const onReal = agreement(source, readFlm(readFileSync(at('syn.flm'))), images);
    t.ok(onReal < 0.9, `while on 500 real test images the result agrees ${(100 * onReal).toFixed(1)}% (counted here)`);
    const w = warnings(syn.stderr);
    t.equal(w.length, 1, 'one warning line');
    t.match(w[0]!, /^warning: the check says little: the source gives class 7 to [0-9.]+% of the [0-9]+ held-out synthetic samples/);
    t.match(w[0]!, '--calib fashion-mnist', 'it names the data to check on');
    t.equal(j.warning, w[0]!.slice('warning: '.length), 'the same text in --json');
  });

  t.test('the same compression checked on real images warns of the low agreement', async (t) => {
    const j = jsonOf(real, 'convert --ratio 10 --calib fashion-mnist');
    t.ok(j.check.agreement < 0.9, `agreement ${j.check.agreement}`);
    t.ok(j.check.majorityShare < 0.9, `real images spread over classes (majority share ${j.check.majorityShare})`);
    t.match(warnings(real.stderr)[0] ?? '', /^warning: top-1 agreement with the source is [0-9.]+% on 256 held-out fashion-mnist samples/);
  });

  t.test('convert --target checks the model it writes', async (t) => {
    const j = jsonOf(target, 'convert --target pi4 --ratio 10');
    t.ok(j.fits);
    t.equal(j.check.data, 'calibration');
    t.equal(j.check.samples, 256);
    // The held-out samples are training images 256..511, as convert's: recount on them.
    const train = limitDataset(loadDataset('fashion-mnist', 'train'), 512);
    const hold: Tensor = { shape: [256, 1, 28, 28], data: train.images.subarray(256 * 784, 512 * 784) };
    const written = readFlm(readFileSync(at('target.flm')));
    t.equal(j.check.agreement, agreement(source, written, hold), `agreement ${j.check.agreement} = the count on the written file`);
    t.equal(written.metadata['convert.agreement'], j.check.agreement, 'kept in the file');
    const w = warnings(target.stderr);
    t.equal(w.length, 1, 'one warning line');
    t.match(w[0]!, /top-1 agreement with the source is [0-9.]+% on 256 held-out fashion-mnist samples/);
    t.match(w[0]!, `factorlite finetune ${at('target.flm')} --teacher ${at('m.onnx')} --data fashion-mnist`, 'with the fine-tuning command');
  });
});

t.test('checkProblem and checkWarning', async (t) => {
  const base: AgreementCheck = {
    data: 'calibration', samples: 100, agreement: 0.95, outputError: 0.1, predictedAgreement: null, predictedOutputError: null,
    majorityClass: 2, majorityShare: 0.3,
  };
  const ctx = { calibSource: 'mine.npy', suggest: 'mine.npy' };
  t.equal(checkProblem(base), null, 'a good check: nothing to say');
  t.equal(checkWarning(base, ctx), null);
  t.same(checkProblem({ ...base, agreement: 0.5 }), { kind: 'low-agreement', agreement: 0.5 });
  t.same(checkProblem({ ...base, outputError: NaN }), { kind: 'not-finite' });
  t.match(checkWarning({ ...base, outputError: NaN }, ctx)!, /outputs are not finite/);
  t.same(checkProblem({ ...base, majorityShare: 0.97 }), { kind: 'weak-check', agreement: 0.95, majorityClass: 2, majorityShare: 0.97 });
  t.match(checkWarning({ ...base, majorityShare: 0.97 }, ctx)!, /calibrate on samples of every class/, 'real data of one class: says so');
  // Outputs that are not class scores: the output error decides.
  const reg = { ...base, agreement: null, majorityClass: null, majorityShare: null };
  t.equal(checkProblem({ ...reg, outputError: 0.08 }), null);
  t.same(checkProblem({ ...reg, outputError: 0.6 }), { kind: 'output-error', outputError: 0.6 });
  t.match(checkWarning({ ...reg, outputError: 0.6 }, ctx)!, /^the outputs moved by 0\.600 of their norm \(above 0\.1\) on 100 held-out mine\.npy samples; fine-tune/);
  t.match(checkWarning(null, { ...ctx, skipped: 'calibration needs a model with one input' })!, /^no measured check of the result: calibration needs a model with one input/);
  t.equal(checkWarning(null, ctx), null);
  // A convolutional head without a flatten, [N, C, 1, 1], is a classifier; [N, C, 4, 4] is not.
  t.equal(classesOf({ shape: [3, 10, 1, 1], data: new Float32Array(30) }, 3), 10);
  t.equal(classesOf({ shape: [3, 10], data: new Float32Array(30) }, 3), 10);
  t.equal(classesOf({ shape: [3, 10, 4, 4], data: new Float32Array(480) }, 3), 0);
  t.equal(classesOf({ shape: [3, 1], data: new Float32Array(3) }, 3), 0);
});
