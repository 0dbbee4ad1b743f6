// convert's per-channel output correction from the command line: tried by default with --calib and
// reported in --json and the text report, --correct keeps it, --no-correct skips it, --correct
// without calibration data is refused in one line. The model is a small conv classifier built here;
// the written file is compared with its source by the runtime here, independently of convert.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writeNpy } from '../../cli/npy.js';
import { importOnnxFile } from '../../converter/onnx/index.js';
import type { Model, Tensor } from '../../runtime/ir.js';
import { readFlm } from '../../runtime/format/reader.js';
import { initKernels } from '../../runtime/kernels/backend.js';
import { Session } from '../../runtime/session.js';
import { buildModel, Rng } from '../converter/onnx/fixtures/build.js';
import { cliAsync, jsonOf } from '../support/cli.js';

await initKernels();
const dir = mkdtempSync(join(tmpdir(), 'factorlite-convert-correct-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

const rng = new Rng(5);
writeFileSync(at('m.onnx'), buildModel({
  opset: 13,
  inputs: [{ name: 'x', shape: ['n', 3, 8, 8] }],
  outputs: ['y'],
  nodes: [
    { op: 'Conv', name: '/c1/Conv', inputs: ['x', 'c1.weight', 'c1.bias'], outputs: ['h'], attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } },
    { op: 'Relu', name: '/r1/Relu', inputs: ['h'], outputs: ['r'] },
    { op: 'Conv', name: '/c2/Conv', inputs: ['r', 'c2.weight', 'c2.bias'], outputs: ['h2'], attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } },
    { op: 'Relu', name: '/r2/Relu', inputs: ['h2'], outputs: ['r2'] },
    { op: 'GlobalAveragePool', name: '/pool', inputs: ['r2'], outputs: ['p'] },
    { op: 'Flatten', name: '/flat', inputs: ['p'], outputs: ['f'], attrs: { axis: 1 } },
    { op: 'Gemm', name: '/fc/Gemm', inputs: ['f', 'fc.weight', 'fc.bias'], outputs: ['y'], attrs: { transB: 1 } },
  ],
  inits: [
    { name: 'c1.weight', dims: [16, 3, 3, 3], data: rng.array(16 * 27, 0.4) },
    { name: 'c1.bias', dims: [16], data: rng.array(16, 0.2) },
    { name: 'c2.weight', dims: [16, 16, 3, 3], data: rng.array(16 * 144, 0.15) },
    { name: 'c2.bias', dims: [16], data: rng.array(16, 0.1) },
    { name: 'fc.weight', dims: [6, 16], data: rng.array(96, 1) },
    { name: 'fc.bias', dims: [6], data: rng.array(6, 0.1) },
  ],
}));
const x: Tensor = rng.tensor([512, 3, 8, 8]);
writeFileSync(at('x.npy'), writeNpy(x.shape, x.data));
writeFileSync(at('ranks.json'), JSON.stringify({ '/c1/Conv': 2, '/c2/Conv': 3, '/fc/Gemm': 2 }));
const base = ['--method', 'svd', '--ranks', at('ranks.json'), '--json'];

/** Relative output error of a written file against its source on `x` (the runtime, here). */
function outputError(p: Model, q: Model, input: Tensor): number {
  const ya = Session.create(p).runBatch(input).data;
  const yb = Session.create(q).runBatch(input).data;
  let d = 0;
  let n = 0;
  for (let i = 0; i < ya.length; i++) {
    d += (ya[i]! - yb[i]!) ** 2;
    n += ya[i]! ** 2;
  }
  return Math.sqrt(d / n);
}

t.test('--correct, --no-correct, default, and --correct without data', async (t) => {
  const [forced, off, dflt, text, refused] = await Promise.all([
    cliAsync(['convert', at('m.onnx'), '-o', at('forced.flm'), '--calib', at('x.npy'), '--correct', ...base]),
    cliAsync(['convert', at('m.onnx'), '-o', at('off.flm'), '--calib', at('x.npy'), '--no-correct', ...base]),
    cliAsync(['convert', at('m.onnx'), '-o', at('default.flm'), '--calib', at('x.npy'), ...base]),
    cliAsync(['convert', at('m.onnx'), '-o', at('text.flm'), '--calib', at('x.npy'), '--method', 'svd', '--ranks', at('ranks.json')]),
    cliAsync(['convert', at('m.onnx'), '-o', at('refused.flm'), '--correct', ...base]),
  ]);
  const f = jsonOf(forced, 'convert --correct');
  t.equal(f.correction.kept, true);
  t.same(f.correction.layers.map((l: { name: string }) => l.name), ['/c1/Conv', '/c2/Conv', '/fc/Gemm']);
  t.equal(f.correction.samples, 256, 'the search half of --calib');
  const o = jsonOf(off, 'convert --no-correct');
  t.equal(o.correction, null);
  const d = jsonOf(dflt, 'convert (default)');
  t.ok(d.correction && d.correction.before && d.correction.after, 'tried and compared by default');
  const src = importOnnxFile(at('m.onnx'));
  const held: Tensor = { shape: [256, 3, 8, 8], data: x.data.subarray(256 * 192) };
  const eForced = outputError(src, readFlm(readFileSync(at('forced.flm'))), held);
  const eOff = outputError(src, readFlm(readFileSync(at('off.flm'))), held);
  t.ok(eForced < eOff, `the corrected file is closer to the source on held-out inputs (output error ${eForced.toFixed(4)} vs ${eOff.toFixed(4)} without)`);
  t.same(readFlm(readFileSync(at('forced.flm'))).metadata['convert.correction'], { mode: 'moments', samples: 256, layers: ['/c1/Conv', '/c2/Conv', '/fc/Gemm'] });
  t.equal(readFlm(readFileSync(at('off.flm'))).metadata['convert.correction'], undefined);
  // The default keeps exactly the file --correct or --no-correct gives, as its comparison says.
  const dFile = readFileSync(at('default.flm'));
  t.equal(readFlm(dFile).metadata['convert.correction'] !== undefined, d.correction.kept);
  t.equal(text.status, 0);
  t.match(text.stdout, /output correction of 3 factorised layers on 256 calibration samples \((top-1 agreement|output error)[^)]*\): (kept|not kept)/);
  t.not(refused.status, 0);
  t.equal(refused.stderr.trim().split('\n').length, 1, 'one line');
  t.match(refused.stderr, /--correct needs calibration data/);
});
