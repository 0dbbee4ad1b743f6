// .npy reading and writing (cli/npy.ts), checked against numpy itself where python3 is there.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CliError } from '../../cli/errors.js';
import { readNpy, writeNpy } from '../../cli/npy.js';
import { python } from '../support/cli.js';
import { needNumpy } from '../support/require.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-npy-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function codeOf(f: () => unknown): string {
  try {
    f();
    return 'no error';
  } catch (e) {
    return e instanceof CliError ? `${e.code}: ${e.message}` : `other: ${(e as Error).message}`;
  }
}

/** A hand-written v1.0 .npy: magic, version, u16 header length, header, data. */
function npyBytes(header: string, body: Uint8Array, major = 1): Uint8Array {
  const pre = major === 1 ? 10 : 12;
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  const h = header.padEnd(total - pre - 1, ' ') + '\n';
  const out = new Uint8Array(total + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, h.length, true);
  else dv.setUint32(8, h.length, true);
  out.set(new TextEncoder().encode(h), pre);
  out.set(body, total);
  return out;
}

t.test('writeNpy -> readNpy round trip keeps shape and values bit for bit', async (t) => {
  const shapes = [[5], [1], [0], [2, 3], [3, 1, 4, 2], [1, 1, 28, 28]];
  for (const shape of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 1.7) * 10 ** ((i % 7) - 3)));
    if (n > 2) {
      data[1] = -0;
      data[2] = Math.fround(3.4e38);
    }
    const bytes = writeNpy(shape, data);
    t.equal(bytes.length % 64, (n * 4) % 64, `${shape}: header padded to a multiple of 64`);
    const back = readNpy(bytes, 'rt.npy');
    t.same(back.shape, shape, `shape ${shape}`);
    t.same(new Uint8Array(back.data.buffer), new Uint8Array(data.buffer), `values of [${shape}] bit for bit`);
  }
  // Inside a larger buffer (Node's pooled Buffers start at a byteOffset).
  const inner = writeNpy([4], Float32Array.of(1, 2, 3, 4));
  const outer = new Uint8Array(inner.length + 3);
  outer.set(inner, 3);
  t.same([...readNpy(outer.subarray(3), 'offset.npy').data], [1, 2, 3, 4]);
});

t.test('hand-built headers: f8 and u1 read as float32, versions 1 and 2', async (t) => {
  const f8 = new Float64Array([1.5, -2.25, 1e-3, 7]);
  const r8 = readNpy(npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", new Uint8Array(f8.buffer)), 'f8');
  t.same(r8.shape, [2, 2]);
  t.same([...r8.data], [...f8].map(Math.fround));
  const u1 = readNpy(npyBytes("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", Uint8Array.of(0, 128, 255)), 'u1');
  t.same([...u1.data], [0, 128, 255]);
  const v2 = readNpy(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(Float32Array.of(3, 4).buffer), 2), 'v2');
  t.same([...v2.data], [3, 4]);
  const scalar = readNpy(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", new Uint8Array(Float32Array.of(9).buffer)), 's');
  t.same(scalar.shape, []);
  t.same([...scalar.data], [9]);
});

t.test('errors: not a .npy, Fortran order, unsupported dtypes, wrong sizes', async (t) => {
  const body = new Uint8Array(Float32Array.of(1, 2, 3, 4).buffer);
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['text', new TextEncoder().encode('just some text that is not numpy'), /not a \.npy/],
    ['empty', new Uint8Array(0), /not a \.npy/],
    ['an ONNX-like blob', Uint8Array.of(0x08, 0x07, 0x12, 0x04, 0x74, 0x65, 0x73, 0x74, 0, 0, 0, 0), /not a \.npy/],
    ['Fortran order', npyBytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", body), /Fortran/],
    ['big-endian f4', npyBytes("{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", body), />f4/],
    ['int32', npyBytes("{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", body), /<i4/],
    ['too few data bytes', npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", body), /needs 20/],
    ['too many data bytes', npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", body), /needs 12/],
    ['no shape', npyBytes("{'descr': '<f4', 'fortran_order': False, }", body), /shape/],
    ['header longer than the file', (() => { const b = npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", body); new DataView(b.buffer).setUint16(8, 60000, true); return b; })(), /truncated/],
  ];
  for (const [what, bytes, msg] of cases) {
    const c = codeOf(() => readNpy(bytes, `${what}.npy`));
    t.match(c, /^BAD_INPUT: /, `${what}: a CliError BAD_INPUT (${c})`);
    t.match(c, msg, `${what}: message`);
    t.match(c, `${what}.npy`, `${what}: names the file`);
  }
});

t.test('files written by numpy read back with the same values; ours load in numpy', async (t) => {
  if (!needNumpy(t)) return;
  const specs: Array<[string, string]> = [['f4_1d', 'float32'], ['f8_1d', 'float64'], ['f4_4d', 'float32'], ['f8_4d', 'float64']];
  // Each array is also written as float32 raw bytes, the independent reference for the values.
  python(
    'import sys, numpy as np\n' +
    'd = sys.argv[1]\n' +
    'rng = np.random.default_rng(11)\n' +
    'for name, dt in [("f4_1d", np.float32), ("f8_1d", np.float64), ("f4_4d", np.float32), ("f8_4d", np.float64)]:\n' +
    '    shape = (13,) if name.endswith("1d") else (2, 3, 4, 5)\n' +
    '    x = (rng.standard_normal(shape) * 100).astype(dt)\n' +
    '    np.save(f"{d}/{name}.npy", x)\n' +
    '    x.astype(np.float32).tofile(f"{d}/{name}.f32")\n' +
    'np.save(f"{d}/fortran.npy", np.asfortranarray(np.ones((3, 4), dtype=np.float32)))\n',
    [dir],
  );
  for (const [name] of specs) {
    const got = readNpy(readFileSync(join(dir, `${name}.npy`)), name);
    const ref = new Float32Array(new Uint8Array(readFileSync(join(dir, `${name}.f32`))).buffer);
    t.same(got.shape, name.endsWith('1d') ? [13] : [2, 3, 4, 5], `${name}: shape`);
    t.same(new Uint8Array(got.data.buffer), new Uint8Array(ref.buffer), `${name}: values`);
  }
  t.match(codeOf(() => readNpy(readFileSync(join(dir, 'fortran.npy')), 'fortran.npy')), /^BAD_INPUT: .*Fortran/, 'numpy Fortran-order file');

  const mine = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i / 7 - 1);
  writeFileSync(join(dir, 'ours.npy'), writeNpy([2, 3, 4], mine));
  const seen = JSON.parse(python(
    'import sys, json, numpy as np\n' +
    'x = np.load(sys.argv[1])\n' +
    'print(json.dumps({"shape": list(x.shape), "dtype": str(x.dtype), "c": bool(x.flags.c_contiguous), "v": [float(v) for v in x.ravel()]}))',
    [join(dir, 'ours.npy')],
  )) as { shape: number[]; dtype: string; c: boolean; v: number[] };
  t.same(seen.shape, [2, 3, 4]);
  t.equal(seen.dtype, 'float32');
  t.ok(seen.c);
  t.same(seen.v, [...mine]);
  writeFileSync(join(dir, 'ours1d.npy'), writeNpy([3], Float32Array.of(1, 2, 3)));
  t.equal(python('import sys, numpy as np; print(np.load(sys.argv[1]).shape)', [join(dir, 'ours1d.npy')]).trim(), '(3,)');
});

t.test('a version-2 .npy cut inside its header-length field is BAD_INPUT', async (t) => {
  const short = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, 0x10, 0);
  t.match(codeOf(() => readNpy(short, 'short-v2.npy')), /^BAD_INPUT: .*short-v2\.npy/);
});
