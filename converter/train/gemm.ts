// Accumulating matrix products for forward and backward passes: C += op(A) op(B), row-major, with
// offsets so that callers can work on slices of a batch without copying. gemmNNAcc / gemmNTAcc /
// gemmTNAcc run on the WebAssembly SIMD GEMM (./kernels.ts) when the trainer uses it and the
// product is big enough to pay for staging its operands, else on the JS loops below (the fallback,
// and the reference the wasm path is tested against). The JS loops keep the innermost loop
// unit-stride over a typed array so V8 can keep it tight.
import { trainWasm, type GemmKind } from './kernels.js';

/** Products of fewer multiply-adds than this stay on the JS loops (a wasm call stages A, B and C). */
export const WASM_MIN_MACS = 4096;

function viaWasm(kind: GemmKind, A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number, M: number, N: number, K: number): boolean {
  if (M * N * K < WASM_MIN_MACS) return false;
  const w = trainWasm();
  return w !== null && w.gemmAcc(kind, A, aOff, B, bOff, C, cOff, M, N, K);
}

/** C[m, n] += sum_k A[m, k] B[k, n]   (A: [M,K], B: [K,N]). */
export function gemmNNAcc(
  A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number,
  M: number, N: number, K: number,
): void {
  if (!viaWasm('nn', A, aOff, B, bOff, C, cOff, M, N, K)) gemmNNAccJs(A, aOff, B, bOff, C, cOff, M, N, K);
}

/** C[m, n] += sum_k A[m, k] B[n, k]   (A: [M,K], B: [N,K]). */
export function gemmNTAcc(
  A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number,
  M: number, N: number, K: number,
): void {
  if (!viaWasm('nt', A, aOff, B, bOff, C, cOff, M, N, K)) gemmNTAccJs(A, aOff, B, bOff, C, cOff, M, N, K);
}

/** C[m, n] += sum_k A[k, m] B[k, n]   (A: [K,M], B: [K,N]). */
export function gemmTNAcc(
  A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number,
  M: number, N: number, K: number,
): void {
  if (!viaWasm('tn', A, aOff, B, bOff, C, cOff, M, N, K)) gemmTNAccJs(A, aOff, B, bOff, C, cOff, M, N, K);
}

/** C[m, n] += sum_k A[m, k] B[k, n]   (A: [M,K], B: [K,N]). */
export function gemmNNAccJs(
  A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number,
  M: number, N: number, K: number,
): void {
  for (let m = 0; m < M; m++) {
    const ar = aOff + m * K;
    const cr = cOff + m * N;
    let k = 0;
    // Two rows of B per pass halve the loads and stores of the C row.
    for (; k + 1 < K; k += 2) {
      const a0 = A[ar + k]!;
      const a1 = A[ar + k + 1]!;
      if (a0 === 0 && a1 === 0) continue;
      const b0 = bOff + k * N;
      const b1 = b0 + N;
      for (let n = 0; n < N; n++) C[cr + n]! += a0 * B[b0 + n]! + a1 * B[b1 + n]!;
    }
    if (k < K) {
      const a0 = A[ar + k]!;
      if (a0 !== 0) {
        const b0 = bOff + k * N;
        for (let n = 0; n < N; n++) C[cr + n]! += a0 * B[b0 + n]!;
      }
    }
  }
}

/** C[m, n] += sum_k A[m, k] B[n, k]   (A: [M,K], B: [N,K]). */
export function gemmNTAccJs(
  A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number,
  M: number, N: number, K: number,
): void {
  for (let m = 0; m < M; m++) {
    const ar = aOff + m * K;
    const cr = cOff + m * N;
    let n = 0;
    // Four dot products at once reuse each A value four times.
    for (; n + 3 < N; n += 4) {
      const b0 = bOff + n * K;
      const b1 = b0 + K;
      const b2 = b1 + K;
      const b3 = b2 + K;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < K; k++) {
        const a = A[ar + k]!;
        s0 += a * B[b0 + k]!;
        s1 += a * B[b1 + k]!;
        s2 += a * B[b2 + k]!;
        s3 += a * B[b3 + k]!;
      }
      C[cr + n]! += s0;
      C[cr + n + 1]! += s1;
      C[cr + n + 2]! += s2;
      C[cr + n + 3]! += s3;
    }
    for (; n < N; n++) {
      const b0 = bOff + n * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += A[ar + k]! * B[b0 + k]!;
      C[cr + n]! += s;
    }
  }
}

/** C[m, n] += sum_k A[k, m] B[k, n]   (A: [K,M], B: [K,N]). */
export function gemmTNAccJs(
  A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number,
  M: number, N: number, K: number,
): void {
  for (let k = 0; k < K; k++) {
    const ar = aOff + k * M;
    const br = bOff + k * N;
    for (let m = 0; m < M; m++) {
      const a = A[ar + m]!;
      if (a === 0) continue;
      const cr = cOff + m * N;
      for (let n = 0; n < N; n++) C[cr + n]! += a * B[br + n]!;
    }
  }
}
