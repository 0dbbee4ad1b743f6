// The int8-weight GEMM (runtime/kernels/wasm/int8.c) against its definition: dequantise the
// weight, then the reference gemmNT. Tolerance: |got - want| <= 1e-5 x (1 + sum_k |a_mk| |w_nk|),
// the f32 rounding of a length-K dot product (the kernel sums in a different order).
import t, { type Test } from 'tap';
import { quantizeTensor } from '../../../runtime/format/dtype.js';
import { gemmNTInt8Reference, int8Exports, int8WeightOf, loadInt8Gemm, type Int8Weight } from '../../../runtime/kernels/int8.js';
import { hasWasmSimd } from '../../../runtime/kernels/backend.js';
import { readKernelModule } from '../../../runtime/kernels/wasmKernels.js';
import { missing } from '../../support/require.js';

let seed = 31337;
function rnd(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    a[i] = (seed / 2147483648 - 0.5) * scale;
  }
  return a;
}

function weight(N: number, K: number, perRow: boolean): Int8Weight {
  const data = rnd(N * K, 2);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) data[n * K + k]! *= 1 + (n % 5) * 3;
  const st = quantizeTensor({ name: 'w', dtype: 'f32', shape: [N, K], data }, 'i8', perRow ? { perChannelAxis: 0 } : {});
  return int8WeightOf(st);
}

const TOL = 1e-5;
function check(t: Test, label: string, a: Float32Array, w: Int8Weight, M: number, bias: Float32Array | undefined, got: Float32Array): void {
  const want = new Float32Array(M * w.rows);
  gemmNTInt8Reference(a, w, M, bias, want);
  let worst = 0;
  let bad = -1;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < w.rows; n++) {
      let mag = 0;
      const s = w.perRow ? w.scale[n]! : w.scale[0]!;
      for (let k = 0; k < w.cols; k++) mag += Math.abs(a[m * w.cols + k]! * w.q[n * w.cols + k]! * s);
      const e = Math.abs(got[m * w.rows + n]! - want[m * w.rows + n]!) / (1 + mag);
      if (e > worst) worst = e;
      if (e > TOL && bad < 0) bad = m * w.rows + n;
    }
  }
  t.ok(bad < 0, `${label}: worst scaled error ${worst.toExponential(2)} <= ${TOL}${bad >= 0 ? ` (first bad at ${bad})` : ''}`);
}

// Shapes: the M < 4 register path and the panel path, K and N off the 16 / 4 multiples, K past
// one 16384-float panel, N x K past one panel, tiny and empty cases.
const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1], [1, 4, 16], [1, 7, 13], [1, 1024, 784], [2, 33, 65], [3, 9, 31], [1, 5, 20000],
  [4, 8, 16], [5, 13, 17], [32, 500, 800], [7, 3, 20000], [64, 70, 300], [0, 4, 4], [2, 3, 0],
];

t.test('gemm_nt_i8 matches dequantise + reference gemmNT', async (t) => {
  if (!hasWasmSimd()) return missing(t, 'WebAssembly SIMD');
  const k = await loadInt8Gemm();
  for (const [M, N, K] of SHAPES) {
    for (const perRow of [true, false]) {
      for (const withBias of [true, false]) {
        const w = weight(N, K, perRow);
        const a = rnd(M * K);
        const bias = withBias ? rnd(N) : undefined;
        const got = new Float32Array(M * N).fill(NaN);
        k.gemmNT(a, w, M, bias, got);
        check(t, `${M}x${N}x${K} ${perRow ? 'per channel' : 'per tensor'}${withBias ? ' + bias' : ''}`, a, w, M, bias, got);
      }
    }
  }
});

t.test('retained weights give the same result and are not copied again', async (t) => {
  if (!hasWasmSimd()) return missing(t, 'WebAssembly SIMD');
  const k = await loadInt8Gemm();
  const w = weight(96, 200, true);
  k.retain(w);
  const before = k.memoryBytes();
  for (const M of [1, 3, 8]) {
    const a = rnd(M * 200);
    const got = new Float32Array(M * 96);
    k.gemmNT(a, w, M, undefined, got);
    check(t, `retained, M=${M}`, a, w, M, undefined, got);
  }
  t.equal(k.memoryBytes(), before, 'no growth: operands fit above the retained weight');
});

t.test('bad operands are refused with a clear error', async (t) => {
  if (!hasWasmSimd()) return missing(t, 'WebAssembly SIMD');
  const k = await loadInt8Gemm();
  const w = weight(4, 8, true);
  t.throws(() => k.gemmNT(new Float32Array(7), w, 1, undefined, new Float32Array(4)), /needs 1 x 8/);
  t.throws(() => k.gemmNT(new Float32Array(8), w, 1, undefined, new Float32Array(3)), /out holds/);
  t.throws(() => k.gemmNT(new Float32Array(8), { ...w, scale: new Float32Array(3) }, 1, undefined, new Float32Array(4)), /scales/);
  t.throws(() => int8WeightOf({ name: 'x', dtype: 'f32', shape: [2, 2], data: new Float32Array(4) }), /not an int8/);
  const module = await WebAssembly.compile(readKernelModule() as Uint8Array<ArrayBuffer>);
  t.ok(int8Exports(await WebAssembly.instantiate(module, {})).gemm_nt_i8, 'the committed kernels.wasm exports gemm_nt_i8');
  const old = await WebAssembly.instantiate(await WebAssembly.compile(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])), {});
  t.throws(() => int8Exports(old), /no gemm_nt_i8/);
});
