// The int8-weight GEMM of runtime/kernels/wasm/int8.c: out[M, N] = a[M, K] (q[N, K] * scale)^T + bias,
// f32 activations against a symmetric int8 weight with one scale per row (per channel) or one for
// all (per tensor), dequantised inside the kernel. Layers whose weight is stored as i8 can run
// this instead of widening the weight to f32 at load (a quarter of the bytes to read per call).
//
//   int8Exports(instance)   the raw export, for a caller that places operands itself
//   int8Gemm(instance)      a wrapper that copies operands into the instance's memory above
//                           __heap_base (it owns that memory: give it an instance of its own)
//   loadInt8Gemm()          compiles kernels.wasm into a new instance and wraps it
//   gemmNTInt8Reference     the definition: dequantise, then the reference gemmNT
import { tensorToFloat32 } from '../format/dtype.js';
import type { StoredTensor } from '../ir.js';
import { gemmNT } from './reference.js';
import { readKernelModule } from './wasmKernels.js';

export interface Int8Weight {
  /** [rows, cols] row-major: rows are outputs (N), cols the inner size (K). */
  q: Int8Array;
  /** One per row (perRow) or one for the whole weight. */
  scale: Float32Array;
  perRow: boolean;
  rows: number;
  cols: number;
}

type Ptr = number;
export interface Int8Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  gemm_nt_i8(a: Ptr, q: Ptr, scale: Ptr, perRow: number, M: number, N: number, K: number, bias: Ptr, out: Ptr): void;
}

export class Int8Error extends Error {
  readonly code = 'INT8_KERNEL';
}

function checkWeight(w: Int8Weight): void {
  if (!(Number.isInteger(w.rows) && Number.isInteger(w.cols) && w.rows >= 0 && w.cols >= 0)) throw new Int8Error(`int8 weight: bad shape ${w.rows} x ${w.cols}`);
  if (w.q.length !== w.rows * w.cols) throw new Int8Error(`int8 weight: ${w.q.length} values for ${w.rows} x ${w.cols}`);
  if (w.scale.length !== (w.perRow ? w.rows : 1)) throw new Int8Error(`int8 weight: ${w.scale.length} scales, expected ${w.perRow ? w.rows : 1}`);
}

/** A stored i8 tensor [N, K] (per-tensor scale, or per-channel along axis 0) as an Int8Weight. */
export function int8WeightOf(t: StoredTensor): Int8Weight {
  if (t.dtype !== 'i8' || !t.quant) throw new Int8Error(`tensor ${t.name}: not an int8 tensor with a scale`);
  if (t.shape.length < 1) throw new Int8Error(`tensor ${t.name}: a scalar is not a weight`);
  const rows = t.shape[0]!;
  const cols = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const perRow = t.quant.axis !== undefined;
  if (perRow && t.quant.axis !== 0) throw new Int8Error(`tensor ${t.name}: per-channel scale along axis ${t.quant.axis}; the int8 GEMM takes axis 0`);
  const w = { q: t.data as Int8Array, scale: t.quant.scale, perRow, rows, cols };
  checkWeight(w);
  return w;
}

/** The definition: out = a (dequantised w)^T + bias, by the reference kernels. */
export function gemmNTInt8Reference(a: Float32Array, w: Int8Weight, M: number, bias: Float32Array | undefined, out: Float32Array): void {
  checkWeight(w);
  const deq = tensorToFloat32({
    name: 'w', dtype: 'i8', shape: [w.rows, w.cols], data: w.q, quant: w.perRow ? { scale: w.scale, axis: 0 } : { scale: w.scale },
  });
  gemmNT(a, deq, M, w.rows, w.cols, bias, out);
}

/** The kernel's export; throws when the module predates it. */
export function int8Exports(instance: WebAssembly.Instance): Int8Exports {
  const x = instance.exports as unknown as Partial<Int8Exports>;
  if (typeof x.gemm_nt_i8 !== 'function' || !(x.memory instanceof WebAssembly.Memory) || !x.__heap_base) {
    throw new Int8Error('this kernels.wasm has no gemm_nt_i8 export; run scripts/build-wasm.sh');
  }
  return x as Int8Exports;
}

export interface Int8Gemm {
  /** out[M, N] = a[M, K] (w dequantised)^T + bias; N = w.rows, K = w.cols. */
  gemmNT(a: Float32Array, w: Int8Weight, M: number, bias: Float32Array | undefined, out: Float32Array): void;
  /** Keeps w (q and scales) in wasm memory for later calls; w must not change afterwards. */
  retain(w: Int8Weight): void;
  memoryBytes(): number;
}

const PAGE = 65536;

/** Wraps an instance whose memory above __heap_base this wrapper may use as it likes. */
export function int8Gemm(instance: WebAssembly.Instance): Int8Gemm {
  const x = int8Exports(instance);
  const base = ((x.__heap_base.value as number) + 15) & ~15;
  let pinTop = base;
  const pinned = new WeakMap<Int8Weight, { q: Ptr; s: Ptr }>();
  const grow = (end: number) => {
    const have = x.memory.buffer.byteLength;
    if (end > have) x.memory.grow(Math.ceil((end - have) / PAGE));
  };
  const place = (top: number, bytes: number): [Ptr, number] => {
    const p = top;
    const end = (p + bytes + 15) & ~15;
    grow(end);
    return [p, end];
  };
  const putWeight = (w: Int8Weight, top: number): [{ q: Ptr; s: Ptr }, number] => {
    let q: Ptr, s: Ptr;
    [q, top] = place(top, w.q.length);
    new Int8Array(x.memory.buffer, q, w.q.length).set(w.q);
    [s, top] = place(top, 4 * w.scale.length);
    new Float32Array(x.memory.buffer, s, w.scale.length).set(w.scale);
    return [{ q, s }, top];
  };
  return {
    retain(w) {
      checkWeight(w);
      if (pinned.has(w)) return;
      const [ptrs, top] = putWeight(w, pinTop);
      pinned.set(w, ptrs);
      pinTop = top;
    },
    gemmNT(a, w, M, bias, out) {
      checkWeight(w);
      const N = w.rows;
      const K = w.cols;
      if (a.length < M * K) throw new Int8Error(`int8 gemm: a holds ${a.length} values, needs ${M} x ${K}`);
      if (out.length < M * N) throw new Int8Error(`int8 gemm: out holds ${out.length} values, needs ${M} x ${N}`);
      if (bias && bias.length < N) throw new Int8Error(`int8 gemm: bias holds ${bias.length} values, needs ${N}`);
      let top = pinTop;
      let ptrs = pinned.get(w);
      if (!ptrs) [ptrs, top] = putWeight(w, top);
      let pa: Ptr, pb: Ptr = 0, po: Ptr;
      [pa, top] = place(top, 4 * M * K);
      if (bias) [pb, top] = place(top, 4 * N);
      [po, top] = place(top, 4 * M * N);
      new Float32Array(x.memory.buffer, pa, M * K).set(a.subarray(0, M * K));
      if (bias) new Float32Array(x.memory.buffer, pb, N).set(bias.subarray(0, N));
      x.gemm_nt_i8(pa, ptrs.q, ptrs.s, w.perRow ? 1 : 0, M, N, K, pb, po);
      out.set(new Float32Array(x.memory.buffer, po, M * N));
    },
    memoryBytes: () => x.memory.buffer.byteLength,
  };
}

/** A new instance of kernels.wasm (or `bytes`) with its int8 GEMM wrapped. */
export async function loadInt8Gemm(bytes?: Uint8Array): Promise<Int8Gemm> {
  const module = await WebAssembly.compile((bytes ?? readKernelModule()) as Uint8Array<ArrayBuffer>);
  return int8Gemm(await WebAssembly.instantiate(module, {}));
}
