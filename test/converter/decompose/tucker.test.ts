import t from 'tap';
import {
  mulberry32, normalSource, randomNormal, reconstructTtl, reconstructTucker2, relativeError, tucker, tucker2Conv,
  tuckerReconstruct, tuckerTensorLayer,
} from '../../../converter/decompose/index.js';

const normal = normalSource(mulberry32(11));

function randomTucker(dims: number[], ranks: number[]): Float64Array {
  const core = randomNormal(normal, ranks.reduce((a, b) => a * b, 1));
  return tuckerReconstruct(core, ranks, dims.map((d, k) => randomNormal(normal, d * ranks[k]!)), dims);
}

t.test('tucker2Conv: exact recovery at the true channel ranks', async (t) => {
  const shape: [number, number, number, number] = [8, 6, 3, 3];
  const w = randomTucker(shape, [3, 2, 3, 3]);
  const res = tucker2Conv(Float32Array.from(w), shape, [3, 2]);
  t.equal(res.uIn.length, 2 * 6);
  t.equal(res.core.length, 3 * 2 * 3 * 3);
  t.equal(res.uOut.length, 8 * 3);
  t.ok(res.relError < 1e-4);
  t.ok(relativeError(w, reconstructTucker2(res, shape)) < 1e-4);
});

t.test('tucker2Conv layout matches the ir.ts formula', async (t) => {
  const shape: [number, number, number, number] = [3, 4, 2, 2];
  const w = randomNormal(normal, 48);
  const { uIn, core, uOut, ranks } = tucker2Conv(w, shape, [2, 3]);
  const [r2, r1] = ranks;
  let worst = 0;
  const recon = reconstructTucker2({ uIn, core, uOut }, shape);
  for (let o = 0; o < 3; o++)
    for (let i = 0; i < 4; i++)
      for (let y = 0; y < 2; y++)
        for (let x = 0; x < 2; x++) {
          let s = 0;
          for (let b = 0; b < r2; b++)
            for (let a = 0; a < r1; a++) s += uOut[o * r2 + b]! * core[((b * r1 + a) * 2 + y) * 2 + x]! * uIn[a * 4 + i]!;
          worst = Math.max(worst, Math.abs(s - recon[((o * 4 + i) * 2 + y) * 2 + x]!));
        }
  t.ok(worst < 1e-5);
});

t.test('error bounds: HOOI ≤ HOSVD ≤ sqrt(Σ discarded mode σ²)', async (t) => {
  const shape = [7, 6, 5];
  const x = randomNormal(normal, 7 * 6 * 5);
  for (const ranks of [[2, 2, 2], [4, 3, 2], [1, 5, 3]]) {
    const res = tucker(x, shape, ranks);
    const plain = tucker(x, shape, ranks, { iters: 0 });
    t.ok(res.relError <= plain.relError + 1e-9, `HOOI ${res.relError} ≤ HOSVD ${plain.relError}`);
    t.ok(plain.relError <= plain.hosvdBound + 1e-9, `HOSVD ${plain.relError} ≤ bound ${plain.hosvdBound}`);
    t.equal(plain.relError, res.hosvdRelError);
    const measured = relativeError(x, tuckerReconstruct(res.core, res.coreShape, res.factors, shape));
    t.ok(Math.abs(measured - res.relError) < 1e-9);
  }
});

t.test('Tucker tensor layer: exact recovery and layout', async (t) => {
  const m = [2, 3];
  const n = [4, 2, 2];
  const ranks = [2, 2, 3, 2, 1];
  const w = randomTucker([...m, ...n], ranks);
  const res = tuckerTensorLayer(Float32Array.from(w), m, n, ranks);
  t.same(res.ranks, ranks);
  t.equal(res.core.length, 2 * 2 * 3 * 2 * 1);
  t.same(res.factors.map((f) => f.length), [4, 6, 12, 4, 2]);
  t.ok(res.relError < 1e-4);
  t.ok(relativeError(w, reconstructTtl(res, m, n)) < 1e-4);
});

t.test('degenerate inputs: zero tensor and ranks beyond a mode', async (t) => {
  const shape: [number, number, number, number] = [4, 3, 2, 2];
  const zero = tucker2Conv(new Float32Array(48), shape, [2, 2]);
  t.equal(zero.relError, 0);
  t.ok([...zero.uIn, ...zero.core, ...zero.uOut].every(Number.isFinite));
  const w = randomNormal(normal, 48);
  const big = tucker2Conv(w, shape, [10, 10]);
  t.same(big.ranks, [4, 3], 'ranks clamped to the channel counts');
  t.ok(big.relError < 1e-6, 'full ranks are lossless');
  const ttl = tuckerTensorLayer(w, [4, 3], [4], [9, 9, 9]);
  t.same(ttl.ranks, [4, 3, 4]);
  t.ok(ttl.relError < 1e-6);
});
