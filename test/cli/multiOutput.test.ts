// A model with one input and two outputs (a shared trunk and two heads, as multi-task nets are
// exported) through the command line: convert keeps both outputs, convert --ratio --calib searches
// on both, run writes each output to its own .npy, each checked against onnxruntime-node (the
// source, and the compressed model exported back to ONNX). eval scores one output and refuses this
// model in one line.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { readNpy, writeNpy } from '../../cli/npy.js';
import { maxRelDiff as relDiff } from '../converter/export/harness.js';
import { buildModel, Rng } from '../converter/onnx/fixtures/build.js';
import { cli, jsonOf } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-multi-output-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

const rng = new Rng(5);
/** A [rows, cols] weight of rank r plus 1e-3 noise: what an SVD of rank r recovers almost exactly. */
function lowRank(rows: number, cols: number, r: number): Float32Array {
  const a = rng.array(rows * r, 0.5);
  const b = rng.array(r * cols, 0.5);
  const w = rng.array(rows * cols, 1e-3);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) for (let p = 0; p < r; p++) w[i * cols + j]! += a[i * r + p]! * b[p * cols + j]!;
  return w;
}
writeFileSync(at('two.onnx'), buildModel({
  opset: 13,
  inputs: [{ name: 'x', shape: ['n', 1, 8, 8] }],
  outputs: ['cls', 'box'],
  nodes: [
    { op: 'Flatten', name: '/flat/Flatten', inputs: ['x'], outputs: ['f'], attrs: { axis: 1 } },
    { op: 'Gemm', name: '/trunk/Gemm', inputs: ['f', 'trunk.weight', 'trunk.bias'], outputs: ['h0'], attrs: { transB: 1 } },
    { op: 'Relu', name: '/trunk/Relu', inputs: ['h0'], outputs: ['h'] },
    { op: 'Gemm', name: '/cls/Gemm', inputs: ['h', 'cls.weight', 'cls.bias'], outputs: ['cls'], attrs: { transB: 1 } },
    { op: 'Gemm', name: '/box/Gemm', inputs: ['h', 'box.weight', 'box.bias'], outputs: ['box'], attrs: { transB: 1 } },
  ],
  inits: [
    { name: 'trunk.weight', dims: [48, 64], data: lowRank(48, 64, 6) },
    { name: 'trunk.bias', dims: [48], data: rng.array(48, 0.1) },
    { name: 'cls.weight', dims: [10, 48], data: lowRank(10, 48, 3) },
    { name: 'cls.bias', dims: [10], data: rng.array(10, 0.1) },
    { name: 'box.weight', dims: [4, 48], data: lowRank(4, 48, 2) },
    { name: 'box.bias', dims: [4], data: rng.array(4, 0.1) },
  ],
}));
const N = 64;
const x = rng.array(N * 64, 1);
writeFileSync(at('x.npy'), writeNpy([N, 1, 8, 8], x));

async function ortOutputs(file: string): Promise<Float32Array[]> {
  const s = await ort.InferenceSession.create(file);
  const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', x, [N, 1, 8, 8]) });
  return s.outputNames.map((o) => out[o]!.data as Float32Array);
}

/** run --output y.npy of a two-output model: y.0.npy and y.1.npy. */
function runBoth(flm: string, stem: string): Float32Array[] {
  const r = cli(['run', flm, '--input', at('x.npy'), '--output', at(`${stem}.npy`)]);
  if (r.status !== 0) throw new Error(r.stderr);
  return [0, 1].map((k) => readNpy(readFileSync(at(`${stem}.${k}.npy`)), `${stem}.${k}.npy`).data as Float32Array);
}

t.test('convert --method none and run: both outputs as onnxruntime gives them', async (t) => {
  const want = await ortOutputs(at('two.onnx'));
  const c = cli(['convert', at('two.onnx'), '--method', 'none', '-o', at('dense.flm'), '--json']);
  t.equal(c.status, 0, c.stderr);
  const got = runBoth(at('dense.flm'), 'dense');
  t.equal(got[0]!.length, N * 10, 'output 0 (cls) is [64, 10]');
  t.equal(got[1]!.length, N * 4, 'output 1 (box) is [64, 4]');
  for (const k of [0, 1]) t.ok(relDiff(got[k]!, want[k]!) <= 1e-5, `output ${k}: ${relDiff(got[k]!, want[k]!).toExponential(1)} relative to onnxruntime`);
  const j = jsonOf<{ outputs: Array<{ name: string; shape: number[]; data: number[] }> }>(cli(['run', at('dense.flm'), '--input', at('x.npy'), '--json']), 'run --json');
  t.same(j.outputs.map((o) => [o.name, o.shape]), [['cls', [N, 10]], ['box', [N, 4]]], '--json lists every output with its shape');
  t.ok(relDiff(Float32Array.from(j.outputs[1]!.data), want[1]!) <= 1e-5, '--json data of the second output');
});

t.test('convert --ratio --calib on both outputs; the export back agrees with run', async (t) => {
  const src = await ortOutputs(at('two.onnx'));
  const c = jsonOf<{ ratio: number; check: { agreement: number | null; outputError: number } }>(
    cli(['convert', at('two.onnx'), '--method', 'svd', '--ratio', '3', '--calib', at('x.npy'), '-o', at('r3.flm'), '--json']), 'convert --ratio 3');
  t.ok(c.ratio >= 2.9, `ratio ${c.ratio.toFixed(2)}`);
  t.equal(c.check.agreement, null, 'no top-1 agreement over two outputs');
  t.ok(Number.isFinite(c.check.outputError) && c.check.outputError < 0.02, `output error ${c.check.outputError} measured on both outputs`);
  const got = runBoth(at('r3.flm'), 'r3');
  // Every weight is of low rank: the factorised model gives both heads almost as the source does.
  for (const k of [0, 1]) t.ok(relDiff(got[k]!, src[k]!) < 0.02, `output ${k} near the source: ${relDiff(got[k]!, src[k]!).toExponential(1)} relative`);
  const e = cli(['export', at('r3.flm'), '-o', at('r3.onnx'), '--json']);
  t.equal(e.status, 0, e.stderr);
  const back = await ortOutputs(at('r3.onnx'));
  for (const k of [0, 1]) t.ok(relDiff(got[k]!, back[k]!) <= 1e-5, `output ${k}: run vs onnxruntime on the export ${relDiff(got[k]!, back[k]!).toExponential(1)}`);
});

t.test('eval scores one output: refused in one line', async (t) => {
  writeFileSync(at('y.npy'), writeNpy([N], new Float32Array(N)));
  const r = cli(['eval', at('dense.flm'), '--data', at('x.npy'), '--labels', at('y.npy')]);
  t.equal(r.status, 1);
  t.match(r.stderr, /^factorlite: .*one input and one output; this one has 1 and 2 \[DATA_BAD_SHAPE\]\n$/, r.stderr.trim());
});
