// The compute kernels every backend provides, with the reference kernels' signatures. The backend
// interface (backend.ts) and the WebAssembly module's exports (wasmKernels.ts) both extend it.
import type * as ref from './reference.js';

export interface KernelOps {
  gemmNT: typeof ref.gemmNT;
  gemmNN: typeof ref.gemmNN;
  gemmTN: typeof ref.gemmTN;
  conv2d: typeof ref.conv2d;
  conv1x1: typeof ref.conv1x1;
  maxPool: typeof ref.maxPool;
  avgPool: typeof ref.avgPool;
  globalAvgPool: typeof ref.globalAvgPool;
  /** Same ops writing a given output (and, for conv2d, im2col scratch of conv2dGeometry().cols floats). */
  conv2dInto: typeof ref.conv2dInto;
  conv1x1Into: typeof ref.conv1x1Into;
  maxPoolInto: typeof ref.maxPoolInto;
  avgPoolInto: typeof ref.avgPoolInto;
  globalAvgPoolInto: typeof ref.globalAvgPoolInto;
  /** out[i] = a[i] + b[i] for same-length a, b and out (out may be a or b). */
  add(a: Float32Array, b: Float32Array, out: Float32Array): void;
  /** y = max(x, 0) elementwise (NaN gives 0); writes `out` when given (it may be `x`), else a new array. */
  relu(x: Float32Array, out?: Float32Array): Float32Array;
}
