// A user's own tensors through the commands: --data x.npy [--labels y.npy | --targets t.npy] and a
// folder of x.npy + y.npy, for the input shapes users bring (MFCCs [N,1,49,10], uint8 images
// [N,3,32,32], sensor windows [N,3,128], an autoencoder [N,640]). Every expected accuracy and error
// is computed here with onnxruntime-node from the same files; bad files are refused with a typed
// code before any work.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import t, { type Test } from 'tap';
import { parseNpy } from '../../converter/data/npy.js';
import { cli, cliJson, python } from '../support/cli.js';
import { REPO_ROOT, missing, needNumpy } from '../support/require.js';
import { needBoard } from '../firmware-bridge/host/device.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-userdata-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function haveTorch(t: Test): boolean {
  if (!needNumpy(t)) return false;
  try {
    python('import torch');
    return true;
  } catch {
    return missing(t, '/usr/bin/python3 cannot import torch (Debian python3-torch)');
  }
}

let built: boolean | undefined;
function build(t: Test): boolean {
  if (built === undefined) {
    if (!haveTorch(t)) return false;
    python(readFileSync(resolve(REPO_ROOT, 'test/cli/fixtures/userData.py'), 'utf8'), [dir]);
    built = true;
  }
  return built;
}

const npy = (name: string) => parseNpy(readFileSync(join(dir, name)), name);

/** The ONNX model's outputs on the inputs as the commands read them (uint8 scaled to [0, 1]). */
async function ortOutputs(model: string, x: string): Promise<{ y: Float32Array; per: number }> {
  const a = npy(x);
  const data = a.dtype === '|u1' ? a.data.map((v) => v / 255) : a.data;
  const s = await ort.InferenceSession.create(join(dir, model));
  const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', data, a.shape) });
  const y = out[s.outputNames[0]!]!.data as Float32Array;
  return { y, per: y.length / a.shape[0]! };
}

const argmax = (v: Float32Array, from: number, n: number) => {
  let b = 0;
  for (let i = 1; i < n; i++) if (v[from + i]! > v[from + b]!) b = i;
  return b;
};

for (const name of ['kws', 'ic', 'sensor']) {
  t.test(`eval ${name}: top-1 on x.npy + y.npy equals onnxruntime's`, async (t) => {
    if (!build(t)) return;
    const r = cliJson(['eval', join(dir, `${name}.onnx`), '--data', join(dir, `${name}_x.npy`), '--labels', join(dir, `${name}_y.npy`), '--json']);
    const { y, per } = await ortOutputs(`${name}.onnx`, `${name}_x.npy`);
    const labels = npy(`${name}_y.npy`).data;
    let correct = 0;
    for (let i = 0; i < labels.length; i++) if (argmax(y, i * per, per) === labels[i]) correct++;
    t.equal(r.metric, 'top1');
    t.equal(r.samples, labels.length);
    t.equal(r.correct, correct, `${correct} of ${labels.length} as onnxruntime`);
  });
}

t.test('eval on a folder holding x.npy and y.npy', async (t) => {
  if (!build(t)) return;
  const a = cliJson(['eval', join(dir, 'kws.onnx'), '--data', join(dir, 'kws_dir'), '--json']);
  const b = cliJson(['eval', join(dir, 'kws.onnx'), '--data', join(dir, 'kws_x.npy'), '--labels', join(dir, 'kws_y.npy'), '--json']);
  t.equal(a.correct, b.correct);
  t.equal(a.samples, 40);
});

t.test('eval of an autoencoder: MSE and max abs error against its inputs, or against --targets', async (t) => {
  if (!build(t)) return;
  const { y } = await ortOutputs('ad.onnx', 'ad_x.npy');
  const x = npy('ad_x.npy').data;
  const tg = npy('ad_t.npy').data;
  const errs = (want: Float32Array) => {
    let sq = 0;
    let mx = 0;
    for (let i = 0; i < y.length; i++) {
      const d = y[i]! - want[i]!;
      sq += d * d;
      mx = Math.max(mx, Math.abs(d));
    }
    return { mse: sq / y.length, max: mx };
  };
  const rec = cliJson(['eval', join(dir, 'ad.onnx'), '--data', join(dir, 'ad_x.npy'), '--json']);
  t.equal(rec.metric, 'values');
  t.equal(rec.accuracy, null, 'no top-1 for value outputs');
  t.equal(rec.targets, 'inputs');
  const e1 = errs(x);
  t.ok(Math.abs(rec.mse - e1.mse) <= 1e-4 * e1.mse, `MSE ${rec.mse} vs onnxruntime ${e1.mse}`);
  t.ok(Math.abs(rec.maxAbsError - e1.max) <= 1e-4 * e1.max, `max ${rec.maxAbsError} vs ${e1.max}`);
  const e2 = errs(tg);
  for (const flag of ['--targets', '--labels']) {
    // A float labels file shaped like the output is read as targets too.
    const r = cliJson(['eval', join(dir, 'ad.onnx'), '--data', join(dir, 'ad_x.npy'), flag, join(dir, 'ad_t.npy'), '--json']);
    t.equal(r.targets, join(dir, 'ad_t.npy'), flag);
    t.ok(Math.abs(r.mse - e2.mse) <= 1e-4 * e2.mse, `${flag}: MSE ${r.mse} vs onnxruntime ${e2.mse}`);
  }
});

t.test('bad data is refused with a typed code, one line, before any work', async (t) => {
  if (!build(t)) return;
  const m = (n: string) => join(dir, `${n}.onnx`);
  const f = (n: string) => join(dir, n);
  const cases: Array<[string[], string, RegExp]> = [
    [['eval', m('ic'), '--data', f('nhwc.npy')], 'DATA_BAD_SHAPE', /nhwc\.npy: inputs of shape \[40, 32, 32, 3\], the model takes \[N, 3, 32, 32\]/],
    [['eval', m('kws'), '--data', f('kws_x.npy'), '--labels', f('labels200.npy')], 'DATA_BAD_LABELS', /label 200 of sample 0 is outside the model's 12 classes/],
    [['eval', m('kws'), '--data', f('kws_x.npy'), '--labels', f('labels_short.npy')], 'DATA_BAD_SHAPE', /labels_short\.npy: shape \[39\]/],
    [['eval', m('kws'), '--data', f('kws_x.npy'), '--labels', f('labels_frac.npy')], 'DATA_BAD_LABELS', /not a whole number/],
    [['eval', m('kws'), '--data', f('empty.npy')], 'DATA_EMPTY', /empty\.npy/],
    [['eval', m('ad'), '--data', f('complex.npy')], 'DATA_BAD_DTYPE', /complex\.npy: dtype <c8/],
    [['eval', m('ad'), '--data', f('strings.npy')], 'DATA_BAD_DTYPE', /strings\.npy: dtype <U1/],
    [['eval', m('kws'), '--data', f('kws_x.npy')], 'DATA_NO_LABELS', /no labels or targets/],
    [['eval', m('kws'), '--data', f('missing.npy')], 'DATA_NOT_FOUND', /missing\.npy does not exist/],
    [['eval', m('ad'), '--data', f('ad_x.npy'), '--targets', f('kws_y.npy')], 'DATA_BAD_SHAPE', /kws_y\.npy: targets of shape \[40\]/],
    [['hil', '--model', m('ad'), '--emulate', 'host', '--data', f('ad_x.npy')], 'NOT_A_MODEL', /not a \.flm/],
    [['convert', m('ic'), '--method', 'none', '-o', f('never.flm'), '--calib', f('nhwc.npy')], 'DATA_BAD_SHAPE', /nhwc\.npy/],
    [['convert', m('kws'), '--method', 'none', '-o', f('never.flm'), '--finetune', f('kws_x.npy'), '--labels', f('labels200.npy')], 'DATA_BAD_LABELS', /label 200/],
    [['train', '--arch', 'mlp', '--layer', 'dense', '--data', f('kws_x.npy'), '--labels', f('kws_y.npy'), '-o', f('never.flm')], 'DATA_BAD_SHAPE', /the model takes \[N, 1, 28, 28\]/],
    [['finetune', f('kws.onnx'), '--teacher', m('kws'), '--data', f('ad_x.npy'), '-o', f('never.flm')], 'DATA_BAD_SHAPE', /ad_x\.npy: inputs of shape \[40, 640\]/],
  ];
  for (const [args, code, re] of cases) {
    const r = cli(args);
    const what = `${args[0]} ${args.slice(1).map((a) => a.replace(`${dir}/`, '')).join(' ')}`;
    t.not(r.status, 0, `${what}: non-zero exit`);
    const err = r.stderr.trim().split('\n').filter((l) => l.startsWith('factorlite:'));
    t.equal(err.length, 1, `${what}: one error line`);
    t.match(err[0] ?? '', re, what);
    t.match(err[0] ?? '', `[${code}]`, `${what}: ${code}`);
    t.equal(r.stdout, '', `${what}: nothing on stdout`);
  }
  t.equal(cli(['eval', m('kws'), '--data', 'mnist', '--labels', f('kws_y.npy')]).status, 1, '--labels with a built-in set');
});

t.test('hil --emulate host: an autoencoder on x.npy reports errors and the share within tolerance', async (t) => {
  if (!build(t) || !needBoard(t, 'host')) return;
  const flm = join(dir, 'ad.flm');
  cliJson(['convert', join(dir, 'ad.onnx'), '--method', 'none', '-o', flm, '--json']);
  const r = cliJson(['hil', '--model', flm, '--emulate', 'host', '--data', join(dir, 'ad_x.npy'), '--targets', join(dir, 'ad_t.npy'), '--limit', '8', '--json']);
  const s = r.results;
  t.equal(s.mode, 'values');
  t.equal(s.answered, 8);
  t.equal(s.deviceAccuracy, null);
  t.equal(s.values.withinTolerance, 1, 'every sample within tolerance of the workstation');
  t.equal(s.agreement, 1);
  t.ok(s.values.maxAbsError <= 1e-5, `device vs workstation max abs error ${s.values.maxAbsError}`);
  // The workstation's error against the targets, computed independently with onnxruntime.
  const { y } = await ortOutputs('ad.onnx', 'ad_x.npy');
  const tg = npy('ad_t.npy').data;
  let sq = 0;
  for (let i = 0; i < 8 * 640; i++) sq += (y[i]! - tg[i]!) ** 2;
  const want = sq / (8 * 640);
  t.ok(Math.abs(s.values.targets.desktopMse - want) <= 1e-4 * want, `workstation MSE ${s.values.targets.desktopMse} vs onnxruntime ${want}`);
  t.ok(Math.abs(s.values.targets.deviceMse - want) <= 1e-4 * want, `device MSE ${s.values.targets.deviceMse}`);

  const sensor = join(dir, 'sensor.flm');
  cliJson(['convert', join(dir, 'sensor.onnx'), '--method', 'none', '-o', sensor, '--json']);
  const c = cliJson(['hil', '--model', sensor, '--emulate', 'host', '--data', join(dir, 'sensor_x.npy'), '--labels', join(dir, 'sensor_y.npy'), '--limit', '8', '--json']).results;
  t.equal(c.mode, 'classes', 'a classifier with labels is scored by top-1');
  t.equal(c.agreement, 1);
  const yl = await ortOutputs('sensor.onnx', 'sensor_x.npy');
  const lab = npy('sensor_y.npy').data;
  let ok = 0;
  for (let i = 0; i < 8; i++) if (argmax(yl.y, i * 6, 6) === lab[i]) ok++;
  t.equal(c.desktopAccuracy, ok / 8, 'workstation top-1 as onnxruntime');
});
