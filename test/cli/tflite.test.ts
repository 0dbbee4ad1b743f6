// The command line with TFLite files: export -o x.tflite (f32 and --int8), convert / eval / run / hil
// on a .tflite, the round trip .flm -> .tflite -> convert back, and one-line errors.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writeFlmFile } from '../../converter/writer.js';
import { readFlm } from '../../runtime/format/reader.js';
import { Session } from '../../runtime/session.js';
import { cli, cliJson } from '../support/cli.js';
import { needFashion } from '../support/require.js';
import { randArray } from '../converter/export/harness.js';
import { factorChain } from '../converter/tflite/models.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-tflite-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('export -o x.tflite, convert it back: the same outputs within 1e-5', async (t) => {
  const flm = join(dir, 'm.flm');
  await writeFlmFile(factorChain(), flm);
  const out = join(dir, 'm.tflite');
  const r = cliJson(['export', flm, '-o', out, '--json']);
  t.equal(r.format, 'tflite');
  t.equal(r.dtype, 'f32');
  t.ok(r.operators > 5 && r.bytes === readFileSync(out).length, 'summary names operators and bytes');
  const back = join(dir, 'back.flm');
  const c = cliJson(['convert', out, '-o', back, '--method', 'none', '--json']);
  t.equal(c.method, 'none');
  const x = randArray(2 * 3 * 12 * 12);
  const want = Session.create(readFlm(readFileSync(flm))).runBatch({ shape: [2, 3, 12, 12], data: x });
  const nhwc = new Float32Array(x.length);
  for (let i = 0; i < 2; i++) for (let ch = 0; ch < 3; ch++) for (let p = 0; p < 144; p++) nhwc[(i * 144 + p) * 3 + ch] = x[(i * 3 + ch) * 144 + p]!;
  const got = Session.create(readFlm(readFileSync(back))).runBatch({ shape: [2, 12, 12, 3], data: nhwc });
  let d = 0;
  for (let i = 0; i < want.data.length; i++) d = Math.max(d, Math.abs(want.data[i]! - got.data[i]!));
  t.ok(d <= 1e-5, `max difference after .flm -> .tflite -> .flm: ${d} <= 1e-5`);
  // run takes the .tflite directly (NHWC input, as the file says).
  const npyIn = join(dir, 'x.npy');
  const header = `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 12, 12, 3), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  const h = `${header}${' '.repeat(pad)}\n`;
  const pre = Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0, h.length & 0xff, h.length >> 8]);
  writeFileSync(npyIn, Buffer.concat([pre, Buffer.from(h), Buffer.from(nhwc.buffer)]));
  const run = cli(['run', out, '--input', npyIn, '--output', join(dir, 'y.npy')]);
  t.equal(run.status, 0, `run on a .tflite: ${run.stderr.trim()}`);
  t.ok(existsSync(join(dir, 'y.npy')), 'run wrote its output');
});

t.test('errors are one line with a non-zero exit, and nothing is written', async (t) => {
  const bad = join(dir, 'bad.tflite');
  const bytes = new Uint8Array(64);
  bytes.set([0x54, 0x46, 0x4c, 0x33], 4);
  bytes[0] = 200;
  writeFileSync(bad, bytes);
  const r = cli(['convert', bad, '-o', join(dir, 'never.flm'), '--method', 'none']);
  t.not(r.status, 0);
  t.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr.trim()}`);
  t.notOk(existsSync(join(dir, 'never.flm')), 'no output file');
  const flm = join(dir, 'e.flm');
  await writeFlmFile(factorChain(), flm);
  const noCalib = cli(['export', flm, '-o', join(dir, 'never.tflite'), '--int8']);
  t.not(noCalib.status, 0);
  t.match(noCalib.stderr, /--calib/);
  t.notOk(existsSync(join(dir, 'never.tflite')), 'no output file');
  const a16 = cli(['export', flm, '-o', join(dir, 'never.tflite'), '--int16-activations']);
  t.not(a16.status, 0);
  t.equal(a16.stderr.trim().split('\n').length, 1, `one line: ${a16.stderr.trim()}`);
  t.match(a16.stderr, /--int16-activations applies to --int8/);
  t.notOk(existsSync(join(dir, 'never.tflite')), 'no output file');
  const range = cli(['export', flm, '-o', join(dir, 'never.tflite'), '--int8', '--calib', 'fashion-mnist', '--int8-outputs', 'wide']);
  t.not(range.status, 0);
  t.equal(range.stderr.trim().split('\n').length, 1, `one line: ${range.stderr.trim()}`);
  t.match(range.stderr, /--int8-outputs must be top1 or full/);
  t.notOk(existsSync(join(dir, 'never.tflite')), 'no output file');
  const onnx = cli(['export', flm, '-o', join(dir, 'never.onnx'), '--int8-outputs', 'full']);
  t.not(onnx.status, 0);
  t.match(onnx.stderr, /apply to \.tflite output only/);
  t.notOk(existsSync(join(dir, 'never.onnx')), 'no output file');
});

t.test('export --int8 --calib fashion-mnist, then eval the .tflite', async (t) => {
  if (!needFashion(t)) return;
  const flm = join(dir, 'fc.flm');
  const { chainModel, stored } = await import('../converter/export/harness.js');
  await writeFlmFile(chainModel([1, 28, 28], [
    { op: 'flatten', attrs: { axis: 1 } },
    { op: 'svd_dense', weights: { u: stored('u', [32, 8]), v: stored('v', [8, 784]), bias: stored('b', [32]) } },
    { op: 'relu' },
    { op: 'dense', weights: { weight: stored('w', [10, 32]), bias: stored('b2', [10]) } },
  ]), flm);
  const out = join(dir, 'fc.int8.tflite');
  const r = cliJson(['export', flm, '-o', out, '--int8', '--calib', 'fashion-mnist', '--json']);
  t.equal(r.dtype, 'int8');
  const f32 = cliJson(['export', flm, '-o', join(dir, 'fc.tflite'), '--json']);
  t.ok(r.bytes < f32.bytes / 2.5, `int8 file ${r.bytes} B is well under the f32 one ${f32.bytes} B`);
  const e = cliJson(['eval', out, '--data', 'fashion-mnist', '--limit', '200', '--json']);
  t.equal(e.source, 'tflite');
  t.equal(e.samples, 200);
  const out16 = join(dir, 'fc.16x8.tflite');
  const r16 = cliJson(['export', flm, '-o', out16, '--int8', '--int16-activations', '--calib', 'fashion-mnist', '--json']);
  t.equal(r16.dtype, 'int16x8');
  t.ok(r16.bytes < f32.bytes / 2.5, `16x8 file ${r16.bytes} B keeps int8 weights (f32: ${f32.bytes} B)`);
  const e16 = cliJson(['eval', out16, '--data', 'fashion-mnist', '--limit', '200', '--json']);
  t.equal(e16.samples, 200);

  // hil takes the .tflite: encoded as a .flm in memory (NCHW input, no transpose for the firmware).
  const tfl = join(dir, 'fc.tflite');
  const h = cli(['hil', '--model', tfl, '--emulate', 'host', '--data', 'fashion-mnist', '--limit', '40', '--no-progress', '--json']);
  t.equal(h.status, 0, `hil on a .tflite: ${h.stderr.trim().split('\n').at(-1)}`);
  t.match(h.stderr, /encoded in memory as a \.flm/, 'says the .tflite was converted in memory');
  const rep = JSON.parse(h.stdout);
  t.equal(rep.fits, true);
  t.same(rep.upload.inShape, [1, 1, 28, 28], 'the device takes NCHW input');
  t.equal(rep.results.answered, 40);
  t.equal(rep.results.agreement, 1, 'device and workstation agree on every sample');
  const ev = cliJson(['eval', flm, '--data', 'fashion-mnist', '--limit', '40', '--json']);
  t.equal(rep.results.deviceAccuracy, ev.accuracy, `device accuracy ${rep.results.deviceAccuracy} = eval of the .flm the .tflite came from`);
});
