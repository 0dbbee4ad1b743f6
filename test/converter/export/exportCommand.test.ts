// `factorlite export`: .flm in, ONNX out (atomically), a one-line JSON summary with --json.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { exportCommand } from '../../../cli/commands/export.js';
import { writeFlmFile } from '../../../converter/writer.js';
import { numel } from '../../../runtime/ir.js';
import { Session } from '../../../runtime/session.js';
import { chainModel, maxRelDiff, ortRun, randArray, stored, TOL } from './harness.js';

const model = chainModel([1, 10, 10], [
  { op: 'tucker2_conv2d', weights: { u_in: stored('ui', [1, 1]), core: stored('c', [3, 1, 3, 3], 'i8', 0), u_out: stored('uo', [4, 3], 'f16'), bias: stored('b1', [4]) }, attrs: { pads: [1, 1, 1, 1] } },
  { op: 'relu' },
  { op: 'avg_pool', attrs: { kernel: [2, 2], strides: [2, 2] } },
  { op: 'flatten' },
  { op: 'tr_dense', weights: { 'core.0': stored('g0', [2, 2, 10, 3]), 'core.1': stored('g1', [3, 3, 10, 2]), bias: stored('b2', [6]) }, attrs: { out_modes: [2, 3], in_modes: [10, 10] } },
]);

async function captureStdout(f: () => Promise<void>): Promise<string> {
  const write = process.stdout.write;
  let text = '';
  process.stdout.write = ((s: string | Uint8Array) => {
    text += String(s);
    return true;
  }) as typeof process.stdout.write;
  try {
    await f();
  } finally {
    process.stdout.write = write;
  }
  return text;
}

t.test('export writes an ONNX file that onnxruntime runs like the runtime', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flm-export-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const flm = join(dir, 'm.flm');
  const out = join(dir, 'm.onnx');
  await writeFlmFile(model, flm);
  const stdout = await captureStdout(() => exportCommand(flm, { output: out, opset: '17', json: true }));
  const lines = stdout.trim().split('\n');
  t.equal(lines.length, 1, 'one JSON line');
  const summary = JSON.parse(lines[0]!);
  t.equal(summary.opset, 17);
  t.equal(summary.output, out);
  t.equal(summary.factorisedLayers, 2);
  t.ok(summary.largestInitializer < 6 * 100);
  t.same(readdirSync(dir).sort(), ['m.flm', 'm.onnx'], 'no temporary file left');

  const session = await ort.InferenceSession.create(readFileSync(out));
  const ours = Session.create(model);
  for (const batch of [1, 5]) {
    const shape = [batch, 1, 10, 10];
    const x = { shape, data: randArray(numel(shape)) };
    const got = await ortRun(session, 'x', x);
    const want = ours.runBatch(x);
    t.same(got.shape, want.shape);
    t.ok(maxRelDiff(got.data, want.data) <= TOL);
  }
  const text = await captureStdout(() => exportCommand(flm, { output: out }));
  t.match(text, /^wrote .*m\.onnx: ONNX opset 13, /);
});

t.test('export refuses bad arguments with one-line errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flm-export-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const flm = join(dir, 'm.flm');
  await writeFlmFile(model, flm);
  await t.rejects(exportCommand(flm, { output: join(dir, 'a.onnx'), opset: '9' }), { code: 'BAD_ARGUMENT' });
  await t.rejects(exportCommand(flm, { output: join(dir, 'a.onnx'), opset: 'x' }), { code: 'BAD_ARGUMENT' });
  writeFileSync(join(dir, 'not.flm'), 'hello');
  await t.rejects(exportCommand(join(dir, 'not.flm'), { output: join(dir, 'a.onnx') }), { code: 'NOT_A_MODEL' });
  await t.rejects(exportCommand(join(dir, 'missing.flm'), { output: join(dir, 'a.onnx') }), { code: 'BAD_INPUT' });
  await t.rejects(exportCommand(flm, { output: join(dir, 'no/such/dir/a.onnx') }), { code: 'BAD_OUTPUT' }); // every command's output check (cli/outputs.ts)
  t.same(readdirSync(dir).sort(), ['m.flm', 'not.flm'], 'nothing written on failure');
});
