// Nothing lost: every command that writes refuses, before any work, an output path that resolves
// to one of its inputs (the same name, a symlink to it, a hard link to it, or an existing file in
// an input data folder), and an output in a missing or unwritable folder. Each refusal is one line
// with a code and a non-zero exit, and the input is byte-identical afterwards. `bench` writes no
// file of the user's (its ONNX export goes to a temporary folder it removes), so it has no case.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t, { type Test } from 'tap';
import { writeNpy } from '../../cli/npy.js';
import { buildModel, Rng } from '../converter/onnx/fixtures/build.js';
import { cli } from '../support/cli.js';
import { REPO_ROOT } from '../support/require.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-cli-outputs-'));
t.teardown(() => {
  chmodSync(at('locked'), 0o755);
  rmSync(dir, { recursive: true, force: true });
});
function at(name: string): string {
  return join(dir, name);
}
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

const rng = new Rng(11);
writeFileSync(at('tiny.onnx'), buildModel({
  opset: 13,
  inputs: [{ name: 'x', shape: ['n', 1, 28, 28] }],
  outputs: ['y'],
  nodes: [
    { op: 'Flatten', name: '/flat/Flatten', inputs: ['x'], outputs: ['f'], attrs: { axis: 1 } },
    { op: 'Gemm', name: '/fc/Gemm', inputs: ['f', 'fc.weight', 'fc.bias'], outputs: ['y'], attrs: { transB: 1 } },
  ],
  inits: [
    { name: 'fc.weight', dims: [10, 784], data: rng.array(7840, 0.05) },
    { name: 'fc.bias', dims: [10], data: rng.array(10, 0.1) },
  ],
}));
writeFileSync(at('x.npy'), writeNpy([1, 1, 28, 28], rng.array(784, 1)));
mkdirSync(at('data'));
writeFileSync(at('data/t10k-images-idx3-ubyte'), 'stands for a data file');
mkdirSync(at('locked'));
chmodSync(at('locked'), 0o555);

/** Runs the command; it must fail with `code` in one stderr line, and every file in `keep` must be unchanged. */
function refused(t: Test, args: string[], code: string, keep: string[]): void {
  const before = keep.map(sha);
  const r = cli(args);
  t.not(r.status, 0, `${args.join(' ')}: non-zero exit`);
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 1, `one line on stderr: ${r.stderr.trim()}`);
  t.match(lines[0], code, `the line names ${code}`);
  t.equal(r.stdout, '', 'nothing on stdout');
  t.same(keep.map(sha), before, 'inputs byte-identical');
  const temps = readdirSync(dir).filter((f) => f.endsWith('.tmp'));
  t.same(temps, [], 'no temporary file left behind');
}

t.test('setup: a .flm to work on, and outputs that are not inputs still work', async (t) => {
  const c = cli(['convert', at('tiny.onnx'), '--method', 'none', '-o', at('m.flm'), '--json']);
  t.equal(c.status, 0, c.stderr);
  const r = cli(['run', at('m.flm'), '--input', at('x.npy'), '--output', at('y.npy')]);
  t.equal(r.status, 0, r.stderr);
  t.ok(existsSync(at('y.npy')), 'run wrote its output');
  const e = cli(['export', at('m.flm'), '-o', at('m2.onnx'), '--json']);
  t.equal(e.status, 0, e.stderr);
  // Writing over an earlier output of one's own is fine (atomically).
  t.equal(cli(['export', at('m.flm'), '-o', at('m2.onnx'), '--json']).status, 0, 'an existing non-input output is replaced');
});

t.test('convert', async (t) => {
  refused(t, ['convert', at('tiny.onnx'), '--method', 'none', '-o', at('tiny.onnx')], 'OUTPUT_IS_INPUT', [at('tiny.onnx')]);
  symlinkSync(at('tiny.onnx'), at('link.flm'));
  refused(t, ['convert', at('tiny.onnx'), '--method', 'none', '-o', at('link.flm')], 'OUTPUT_IS_INPUT', [at('tiny.onnx')]);
  linkSync(at('tiny.onnx'), at('hard.flm'));
  refused(t, ['convert', at('tiny.onnx'), '--method', 'none', '-o', at('hard.flm')], 'OUTPUT_IS_INPUT', [at('tiny.onnx')]);
  // The same file by another spelling of its path.
  refused(t, ['convert', at('tiny.onnx'), '--method', 'none', '-o', `${dir}/./data/../tiny.onnx`], 'OUTPUT_IS_INPUT', [at('tiny.onnx')]);
  refused(t, ['convert', at('tiny.onnx'), '--method', 'none', '--calib', at('data'), '-o', at('data/t10k-images-idx3-ubyte')], 'OUTPUT_IS_INPUT', [at('data/t10k-images-idx3-ubyte')]);
  refused(t, ['convert', at('tiny.onnx'), '--method', 'none', '-o', at('nowhere/m.flm')], 'BAD_OUTPUT', [at('tiny.onnx')]);
  refused(t, ['convert', at('tiny.onnx'), '--method', 'none', '-o', at('data')], 'BAD_OUTPUT', [at('tiny.onnx')]);
  if (process.getuid?.() !== 0) refused(t, ['convert', at('tiny.onnx'), '--method', 'none', '-o', at('locked/m.flm')], 'BAD_OUTPUT', [at('tiny.onnx')]);
});

t.test('convert --target, and convert of a .flm', async (t) => {
  // --target writes through its own path (convertTarget.ts); it replaced the source before.
  refused(t, ['convert', at('tiny.onnx'), '--target', 'cortex-m4', '-o', at('tiny.onnx')], 'OUTPUT_IS_INPUT', [at('tiny.onnx')]);
  refused(t, ['convert', at('m.flm'), '--method', 'svd', '--ratio', '2', '-o', at('m.flm')], 'OUTPUT_IS_INPUT', [at('m.flm')]);
  refused(t, ['convert', at('m.flm'), '--method', 'none', '-o', `${dir}/data/../m.flm`], 'OUTPUT_IS_INPUT', [at('m.flm')]);
});

t.test('bundle -o DIR --force', async (t) => {
  // --force replaces the folder: one holding the model (or the model file itself) is refused.
  mkdirSync(at('bd'));
  writeFileSync(at('bd/in.flm'), readFileSync(at('m.flm')));
  refused(t, ['bundle', at('bd/in.flm'), '--target', 'pi4', '-o', at('bd'), '--force'], 'OUTPUT_IS_INPUT', [at('bd/in.flm')]);
  refused(t, ['bundle', at('bd/in.flm'), '--target', 'pi4', '-o', `${at('bd')}/`, '--force'], 'OUTPUT_IS_INPUT', [at('bd/in.flm')]);
  refused(t, ['bundle', at('m.flm'), '--target', 'pi4', '-o', at('m.flm'), '--force'], 'BAD_OUTPUT', [at('m.flm')]);
});

t.test('run', async (t) => {
  refused(t, ['run', at('m.flm'), '--input', at('x.npy'), '--output', at('m.flm')], 'OUTPUT_IS_INPUT', [at('m.flm'), at('x.npy')]);
  refused(t, ['run', at('m.flm'), '--input', at('x.npy'), '--output', at('x.npy')], 'OUTPUT_IS_INPUT', [at('m.flm'), at('x.npy')]);
  refused(t, ['run', at('m.flm'), '--input', at('x.npy'), '--output', at('nowhere/y.npy')], 'BAD_OUTPUT', [at('m.flm')]);
});

t.test('export', async (t) => {
  refused(t, ['export', at('m.flm'), '-o', at('m.flm')], 'OUTPUT_IS_INPUT', [at('m.flm')]);
});

t.test('finetune', async (t) => {
  refused(t, ['finetune', at('m.flm'), '--teacher', at('tiny.onnx'), '--data', at('data'), '-o', at('m.flm')], 'OUTPUT_IS_INPUT', [at('m.flm')]);
  symlinkSync(at('tiny.onnx'), at('teacher-link.flm'));
  refused(t, ['finetune', at('m.flm'), '--teacher', at('tiny.onnx'), '--data', at('data'), '-o', at('teacher-link.flm')], 'OUTPUT_IS_INPUT', [at('tiny.onnx')]);
});

t.test('train', async (t) => {
  writeFileSync(at('data/old.flm'), 'a file of the data folder');
  refused(t, ['train', '--arch', 'mlp', '--layer', 'tt', '--data', at('data'), '-o', at('data/old.flm')], 'OUTPUT_IS_INPUT', [at('data/old.flm')]);
  refused(t, ['train', '--arch', 'mlp', '--layer', 'tt', '--data', at('data'), '-o', at('nowhere/m.flm')], 'BAD_OUTPUT', []);
});

t.test('explain', async (t) => {
  refused(t, ['explain', at('m.flm'), '--data', at('data'), '-o', at('m.flm')], 'OUTPUT_IS_INPUT', [at('m.flm')]);
});

t.test('hil --out', async (t) => {
  // The report is <stem>.json and <stem>.png; a model file named r.json would be replaced by the report.
  writeFileSync(at('r.json'), readFileSync(at('m.flm')));
  refused(t, ['hil', '--model', at('r.json'), '--emulate', 'host', '--data', at('data'), '--out', at('r')], 'OUTPUT_IS_INPUT', [at('r.json')]);
});

t.test('demo --out-dir', async (t) => {
  const model = resolve(REPO_ROOT, 'models/demo_mnist.onnx');
  mkdirSync(at('demo'));
  symlinkSync(model, at('demo/demo_r2_f32.flm'));
  refused(t, ['demo', '--out-dir', at('demo')], 'OUTPUT_IS_INPUT', [model]);
  writeFileSync(at('plainfile'), 'x');
  refused(t, ['demo', '--out-dir', at('plainfile')], 'BAD_OUTPUT', [at('plainfile')]);
});
