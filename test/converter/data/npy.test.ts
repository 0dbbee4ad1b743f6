// .npy reading for --data: every numeric dtype numpy writes (checked against numpy's own values),
// hostile headers, and fitData's rules (input shape, class ids vs targets, label range, empty sets).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DataError } from '../../../converter/data/errors.js';
import { parseNpy } from '../../../converter/data/npy.js';
import { fitData, limitDataset, type DataSource } from '../../../converter/data/datasets.js';
import { python } from '../../support/cli.js';
import { needNumpy } from '../../support/require.js';

function codeOf(f: () => unknown): string {
  try {
    f();
    return 'no error';
  } catch (e) {
    return e instanceof DataError ? e.code : `other: ${(e as Error).message}`;
  }
}

t.test('every numeric dtype, both byte orders, versions 1 and 2, against numpy', async (t) => {
  if (!needNumpy(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'factorlite-npy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dtypes = ['<f4', '>f4', '<f2', '<f8', '>f8', '|u1', '|i1', '<i2', '>u2', '<i4', '<u4', '<i8', '>i8', '<u8', '|b1'];
  const listing = python(`
import numpy as np, sys, json
d = sys.argv[1]
vals = np.array([[0, 1, 2], [3, 100, 7]])
out = {}
for k, dt in enumerate(${JSON.stringify(dtypes)}):
    a = (vals % 2 == 1) if dt == '|b1' else (vals * (-1 if dt[1] in 'if' else 1)).astype(dt)
    if dt[1] == 'f': a = (a / 4).astype(dt)
    name = f'{d}/a{k}.npy'
    if k == 3:
        np.lib.format.write_array(open(name, 'wb'), a, version=(2, 0))
    else:
        np.save(name, a)
    out[dt] = [name, a.dtype.str, a.astype(np.float64).ravel().tolist()]
print(json.dumps(out))
`, [dir]);
  const expected = JSON.parse(listing) as Record<string, [string, string, number[]]>;
  for (const [dt, [file, descr, values]] of Object.entries(expected)) {
    const a = parseNpy(readFileSync(file), file);
    t.same(a.shape, [2, 3], `${dt} shape`);
    t.equal(a.dtype, descr, `${dt} descr`);
    t.same(Array.from(a.data), values.map((v) => Math.fround(v)), `${dt} values`);
    t.equal(a.kind, dt[1] === 'f' ? 'float' : dt[1] === 'b' ? 'bool' : dt[1] === 'i' ? 'int' : 'uint', `${dt} kind`);
  }
  const fortran = join(dir, 'f.npy');
  python(`import numpy as np, sys; np.save(sys.argv[1], np.asfortranarray(np.ones((3, 4), np.float32)))`, [fortran]);
  t.equal(codeOf(() => parseNpy(readFileSync(fortran), fortran)), 'DATA_BAD_FILE', 'Fortran order refused');
  const complex = join(dir, 'c.npy');
  python(`import numpy as np, sys; np.save(sys.argv[1], np.ones(3, np.complex64))`, [complex]);
  t.match(codeOf(() => parseNpy(readFileSync(complex), complex)), 'DATA_BAD_DTYPE');
  const rec = join(dir, 'r.npy');
  python(`import numpy as np, sys; np.save(sys.argv[1], np.zeros(3, dtype=[('a', '<f4'), ('b', '<i4')]))`, [rec]);
  t.match(codeOf(() => parseNpy(readFileSync(rec), rec)), 'DATA_BAD_DTYPE');
});

t.test('hostile bytes give DATA_BAD_FILE', async (t) => {
  const header = (h: string) => {
    const body = new TextEncoder().encode(h);
    const out = new Uint8Array(10 + body.length + 8);
    out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
    new DataView(out.buffer).setUint16(8, body.length, true);
    out.set(body, 10);
    return out;
  };
  t.equal(codeOf(() => parseNpy(new Uint8Array([1, 2, 3]), 'x')), 'DATA_BAD_FILE');
  t.equal(codeOf(() => parseNpy(header("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }").subarray(0, 20), 'x')), 'DATA_BAD_FILE', 'truncated header');
  t.equal(codeOf(() => parseNpy(header("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"), 'x')), 'DATA_BAD_FILE', 'body of the wrong length');
  t.equal(codeOf(() => parseNpy(header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"), 'x')), 'no error', '2 floats in 8 bytes');
  t.equal(codeOf(() => parseNpy(header("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }"), 'x')), 'DATA_BAD_FILE', 'negative dimension');
  t.equal(codeOf(() => parseNpy(header("{'fortran_order': False}"), 'x')), 'DATA_BAD_FILE', 'no descr');
});

const source = (count: number, shape: number[], extra: Partial<DataSource> = {}): DataSource =>
  ({ name: 'x.npy', file: 'x.npy', count, shape, images: new Float32Array(count * shape.reduce((a, b) => a * b, 1)), ...extra });
const answers = (data: number[], shape: number[], kind: 'float' | 'int', targets = false) =>
  ({ file: 'y.npy', data: Float32Array.from(data), shape, kind, targets });

t.test('fitData: input shapes, labels as class ids or targets, ranges, empty sets', async (t) => {
  t.equal(codeOf(() => fitData(source(4, [3, 32, 32]), [3, 32, 32], [10])), 'no error', 'unlabelled inputs of the right shape');
  t.equal(codeOf(() => fitData(source(4, [32, 32, 3]), [3, 32, 32], [10])), 'DATA_BAD_SHAPE', 'NHWC for an NCHW model');
  t.match((() => { try { fitData(source(4, [32, 32, 3]), [3, 32, 32], [10]); } catch (e) { return (e as Error).message; } return ''; })(),
    /x\.npy: inputs of shape \[4, 32, 32, 3\], the model takes \[N, 3, 32, 32\]/, 'the message names the file and both shapes');
  t.equal(codeOf(() => fitData(source(0, [640]), [640], [640])), 'DATA_EMPTY');
  t.equal(codeOf(() => fitData(source(2, [640]), [-1], [640])), 'no error', 'a free dimension takes any size');
  t.equal(codeOf(() => fitData(source(2, [4, 160]), [-1], [640])), 'DATA_BAD_SHAPE', 'but not another rank');
  // The built-in image sets ([1, 28, 28]) are read flattened by a model that takes [784].
  const idx = { ...source(2, [1, 28, 28]), file: undefined, labels: Uint8Array.of(1, 2) };
  t.same(fitData(idx, [784], [10]).data.shape, [784]);
  t.equal(codeOf(() => fitData({ ...idx, labels: Uint8Array.of(1, 12) }, [784], [10])), 'DATA_BAD_LABELS', 'IDX labels checked too');

  const cls = fitData(source(3, [4], { answers: answers([0, 9, 3], [3], 'int') }), [4], [10]);
  t.equal(cls.mode, 'classes');
  t.same(Array.from(cls.labels!), [0, 9, 3]);
  t.equal(fitData(source(3, [4], { answers: answers([0, 9, 3], [3, 1], 'float') }), [4], [10]).mode, 'classes', 'whole floats [N, 1] are class ids');
  t.equal(codeOf(() => fitData(source(3, [4], { answers: answers([0, 200, 3], [3], 'int') }), [4], [10])), 'DATA_BAD_LABELS', 'label 200 of 10 classes');
  t.equal(codeOf(() => fitData(source(3, [4], { answers: answers([0, -1, 3], [3], 'int') }), [4], [10])), 'DATA_BAD_LABELS', 'negative label');
  t.equal(codeOf(() => fitData(source(3, [4], { answers: answers([0, 1.5, 3], [3], 'float') }), [4], [10])), 'DATA_BAD_LABELS', 'fractional label');

  const reg = fitData(source(3, [4], { answers: answers([0.5, 1, 2], [3], 'float') }), [4], [1]);
  t.equal(reg.mode, 'values', 'one output: the labels file holds targets');
  t.same(Array.from(reg.targets!), [0.5, 1, 2]);
  const two = fitData(source(2, [4], { answers: answers([1, 2, 3, 4], [2, 2], 'float') }), [4], [2]);
  t.equal(two.mode, 'values', 'float labels shaped like the output are targets');
  t.equal(codeOf(() => fitData(source(2, [4], { answers: answers([1, 2, 3, 4, 5, 6], [2, 3], 'float', true) }), [4], [2])), 'DATA_BAD_SHAPE', 'targets of the wrong shape');
  t.equal(fitData(source(2, [4], { answers: answers([1, 0], [2], 'int', true) }), [4], [1]).mode, 'values', '--targets never read as class ids');

  const ae = fitData(source(2, [8]), [8], [8]);
  t.equal(ae.mode, 'values');
  t.equal(ae.targetSource, 'inputs', 'an autoencoder without targets is scored against its inputs');
  t.equal(fitData(source(2, [8]), [8], [3]).targets, undefined, 'no targets for a regressor without a file');

  const lim = limitDataset(source(3, [4], { answers: answers([0, 9, 3], [3], 'int') }), 2);
  t.same(lim.answers!.shape, [2]);
  t.same(Array.from(lim.answers!.data), [0, 9]);
});
