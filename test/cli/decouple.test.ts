// factorlite convert --method decouple, as a user runs it: on a PyTorch-style ONNX pair model with
// x.npy data (labels are onnxruntime's own top-1 on the dense original, so eval's accuracy is the
// agreement with it), its fit table on stderr and one JSON object on stdout, fine-tuning, and the
// one-line typed refusals that leave no output behind.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writeNpy } from '../../cli/npy.js';
import { runOrt } from '../converter/onnx/fixtures/build.js';
import { normalInputs, pairModel } from '../converter/decouple/pairModel.js';
import { cli, cliJson } from '../support/cli.js';
import { needBoard } from '../firmware-bridge/host/device.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-decouple-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

const pm = pairModel({ branches: 3 });
writeFileSync(at('pair.onnx'), pm.onnx);
const train = normalInputs(800, pm.inputs, 21);
const test = normalInputs(400, pm.inputs, 22);
writeFileSync(at('x.npy'), writeNpy(train.shape, train.data));
writeFileSync(at('x_test.npy'), writeNpy(test.shape, test.data));

function argmaxRows(y: Float32Array, cols: number): Float32Array {
  const rows = y.length / cols;
  const out = new Float32Array(rows);
  for (let k = 0; k < rows; k++) {
    let b = 0;
    for (let i = 1; i < cols; i++) if (y[k * cols + i]! > y[k * cols + b]!) b = i;
    out[k] = b;
  }
  return out;
}

t.before(async () => {
  for (const [x, name] of [[train, 'y.npy'], [test, 'y_test.npy']] as const) {
    const y = (await runOrt(pm.onnx, { input: x }))['logits']!.data;
    const labels = argmaxRows(y, pm.outputs);
    writeFileSync(at(name), writeNpy([labels.length], labels));
  }
});

t.test('convert --method decouple --json: the fit, SVD at the same size, then eval agrees with the dense original', async (t) => {
  const out = at('pair.flm');
  const r = cli(['convert', at('pair.onnx'), '--method', 'decouple', '--neurons', '3', '--basis', 'poly:7', '--calib', at('x.npy'), '--samples', '600', '-o', out, '--json']);
  t.equal(r.status, 0, r.stderr.split('\n').filter((l) => l.startsWith('factorlite:')).join(' ') || 'exit 0');
  const lines = r.stdout.split('\n').filter(Boolean);
  t.equal(lines.length, 1, 'one JSON line on stdout');
  const j = JSON.parse(lines[0]!);
  t.equal(j.method, 'decouple');
  t.equal(j.neurons, 3);
  t.equal(j.pairs.length, 1);
  const p = j.pairs[0];
  t.same(p.nodes, ['/fc1/Gemm', '/act/Act', '/fc2/Gemm']);
  t.equal(p.samples, 600);
  t.equal(p.paramsAfter, 3 * (12 + 5 + 7) + 5 + 6);
  t.equal(j.params, p.paramsAfter);
  t.ok(p.jacobianError < 0.1 && p.valueError < 0.05, `J ${p.jacobianError}, F ${p.valueError}`);
  t.same([p.svd.rank, p.svd.params], [1, 58], 'truncated SVD at rank 1 within the same 83 parameters');
  t.ok(p.svd.heldOutValueError > 5 * p.heldOutValueError, `SVD held-out F error ${p.svd.heldOutValueError} vs ${p.heldOutValueError}`);
  t.ok(j.check.agreement >= 0.95, `check ${j.check.agreement}`);
  // The table on stderr, even with --json.
  t.match(r.stderr, /J error\s+F error\s+F held out/);
  t.match(r.stderr, /\/fc1\/Gemm → tanh → \/fc2\/Gemm/);

  const e = cliJson(['eval', out, '--data', at('x_test.npy'), '--labels', at('y_test.npy'), '--json']);
  t.equal(e.samples, 400);
  t.ok(e.accuracy >= 0.95, `top-1 agreement with onnxruntime on the dense original: ${e.accuracy}`);

  const h = cli(['convert', at('pair.onnx'), '--method', 'decouple', '--neurons', '3', '--basis', 'poly:7', '--calib', at('x.npy'), '-o', at('pair2.flm')]);
  t.equal(h.status, 0, 'exit 0');
  t.match(h.stdout, /top-1 agreement with the source/);
  t.match(h.stdout, /params vs 221/);
});

t.test('convert --method decouple --finetune: trained end to end after the fit', async (t) => {
  const out = at('tuned.flm');
  const j = cliJson(['convert', at('pair.onnx'), '--method', 'decouple', '--neurons', '2', '--basis', 'poly:5',
    '--finetune', at('x.npy'), '--labels', at('y.npy'), '--epochs', '2', '-o', out, '--json']);
  t.ok(j.finetune, 'a fine-tuning summary');
  t.equal(j.finetune.epochs, 2);
  t.ok(j.checkBeforeFinetune, 'the check before fine-tuning is kept');
  t.ok(j.check.agreement >= j.checkBeforeFinetune.agreement - 0.02,
    `agreement after fine-tuning ${j.check.agreement} vs before ${j.checkBeforeFinetune.agreement}`);
  const e = cliJson(['eval', out, '--data', at('x_test.npy'), '--labels', at('y_test.npy'), '--json']);
  t.ok(e.accuracy > 0.5, `eval of the fine-tuned model: ${e.accuracy}`);
});

t.test('refusals: one line with its code, non-zero exit, nothing written', async (t) => {
  const base = ['convert', at('pair.onnx'), '--method', 'decouple', '--calib', at('x.npy'), '-o', at('never.flm')];
  const cases: Array<[string[], string, RegExp]> = [
    [[...base, '--neurons', '12'], 'BAD_NEURONS', /not fewer than its 12 hidden/],
    [[...base, '--neurons', '3', '--basis', 'bspline:3'], 'BAD_BASIS', /bspline:K with K from 4/],
    [[...base, '--neurons', '3', '--basis', 'poly:40'], 'BAD_BASIS', /degree 40/],
    [[...base, '--neurons', 'x'], 'BAD_ARGUMENT', /--neurons x/],
    [[...base], 'BAD_ARGUMENT', /needs --neurons/],
    [[...base, '--neurons', '3', '--ratio', '4'], 'BAD_ARGUMENT', /--ratio does not apply/],
    [['convert', at('pair.onnx'), '--method', 'svd', '--ratio', '2', '--neurons', '3', '-o', at('never.flm')], 'BAD_ARGUMENT', /--neurons goes with --method decouple/],
  ];
  for (const [args, code, re] of cases) {
    const r = cli(args);
    const what = args.slice(3).join(' ').replaceAll(`${dir}/`, '');
    t.not(r.status, 0, `${what}: non-zero exit`);
    const err = r.stderr.trim().split('\n').filter((l) => l.startsWith('factorlite:'));
    t.equal(err.length, 1, `${what}: one error line`);
    t.match(err[0] ?? '', re, what);
    t.match(err[0] ?? '', `[${code}]`, `${what}: ${code}`);
    t.equal(r.stdout, '', `${what}: nothing on stdout`);
  }
  t.notOk(existsSync(at('never.flm')), 'no output written');
});

t.test('a model without a replaceable pair: NO_PAIR', async (t) => {
  // The pair model converted to a single flexact node has no dense → act → dense left.
  const once = at('once.flm');
  cliJson(['convert', at('pair.onnx'), '--method', 'decouple', '--neurons', '2', '--calib', at('x.npy'), '--samples', '100', '-o', once, '--json']);
  const r = cli(['convert', once, '--method', 'decouple', '--neurons', '2', '--calib', at('x.npy'), '-o', at('never2.flm')]);
  t.equal(r.status, 1);
  t.match(r.stderr, /no dense → relu\|tanh\|sigmoid → dense pair.*\[NO_PAIR\]/);
  t.notOk(existsSync(at('never2.flm')));
});

t.test('hil --emulate host runs the decoupled model: the firmware agrees with the workstation', async (t) => {
  if (!needBoard(t, 'host')) return;
  const out = at('hil.flm');
  cliJson(['convert', at('pair.onnx'), '--method', 'decouple', '--neurons', '3', '--basis', 'poly:7', '--calib', at('x.npy'), '-o', out, '--json']);
  const r = cliJson(['hil', '--model', out, '--emulate', 'host', '--data', at('x_test.npy'), '--labels', at('y_test.npy'), '--limit', '100', '--json']).results;
  t.equal(r.answered, 100);
  t.ok(r.agreement >= 0.99, `device vs workstation top-1 agreement ${r.agreement}`);
  t.ok(r.deviceAccuracy >= 0.95, `device top-1 against onnxruntime's labels on the dense original: ${r.deviceAccuracy}`);
});
