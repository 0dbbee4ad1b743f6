// WebAssembly SIMD kernels (runtime/kernels/wasm/*.c, built by scripts/build-wasm.sh).
// Same signatures as the reference kernels they replace. Each call copies its operands into one
// linear memory, runs, and copies the result out.
//
//   linear memory (exported by the module, grown here as needed)
//   0 .. __heap_base        C stack, packing buffers for the GEMM (static)
//   __heap_base .. top      operand arena: a bump allocator reset at the start of every call
//
// An op too big for the 4 GiB of a wasm32 memory runs on the reference kernel instead.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ref from './reference.js';
import { convOutSize, poolOutSize, type Conv2dParams, type PoolParams } from './reference.js';

type Ptr = number;
interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  gemm_nt(a: Ptr, b: Ptr, M: number, N: number, K: number, bias: Ptr, out: Ptr): void;
  gemm_nn(a: Ptr, b: Ptr, M: number, N: number, K: number, out: Ptr): void;
  gemm_tn(a: Ptr, b: Ptr, M: number, N: number, K: number, out: Ptr): void;
  conv2d(x: Ptr, w: Ptr, bias: Ptr, out: Ptr, cols: Ptr, N: number, C: number, H: number, W: number, O: number,
    KH: number, KW: number, G: number, sh: number, sw: number, pt: number, pl: number, dh: number, dw: number,
    OH: number, OW: number): void;
  conv1x1(x: Ptr, w: Ptr, bias: Ptr, out: Ptr, N: number, C: number, HW: number, O: number): void;
  max_pool(x: Ptr, out: Ptr, NC: number, H: number, W: number, OH: number, OW: number, KH: number, KW: number,
    sh: number, sw: number, pt: number, pl: number, dh: number, dw: number): void;
  avg_pool(x: Ptr, out: Ptr, NC: number, H: number, W: number, OH: number, OW: number, KH: number, KW: number,
    sh: number, sw: number, pt: number, pl: number, pb: number, pr: number, countIncludePad: number): void;
  global_avg_pool(x: Ptr, out: Ptr, NC: number, S: number): void;
  relu(x: Ptr, out: Ptr, n: number): void;
}

const PAGE = 65536;
/** Ops needing more arena than this run on the reference kernel (wasm32 addresses stop at 4 GiB). */
export const ARENA_LIMIT_BYTES = 3.5 * 2 ** 30;

/** Candidate locations of the module: beside this file, and from dist/ back to the sources. */
function modulePaths(): string[] {
  return [
    fileURLToPath(new URL('./wasm/kernels.wasm', import.meta.url)),
    fileURLToPath(new URL('../../../runtime/kernels/wasm/kernels.wasm', import.meta.url)),
  ];
}

class TooBig extends Error {}

/**
 * Bump allocator over the module's memory; offsets are bytes, aligned to 16.
 *
 *   __heap_base .. pinTop     retained arrays (weights), kept for the life of the instance
 *   pinTop .. top             operands of the current call, dropped by reset()
 */
class Arena {
  private pinTop: number;
  private top: number;
  private readonly pinned = new WeakMap<Float32Array, Ptr>();
  constructor(private readonly mem: WebAssembly.Memory, private readonly base: number, private readonly limit: number) {
    this.pinTop = base;
    this.top = base;
  }
  reset(): void {
    this.top = this.pinTop;
  }
  private reserve(end: number): void {
    if (end - this.base > this.limit) throw new TooBig();
    const have = this.mem.buffer.byteLength;
    if (end > have) {
      try {
        this.mem.grow(Math.ceil((end - have) / PAGE));
      } catch {
        throw new TooBig(); // the engine refused to grow the memory
      }
    }
  }
  alloc(floats: number): Ptr {
    const p = this.top;
    const end = p + ((floats * 4 + 15) & ~15);
    this.reserve(end);
    this.top = end;
    return p;
  }
  /** A view of the current buffer (growing memory detaches older views). */
  view(p: Ptr, floats: number): Float32Array {
    return new Float32Array(this.mem.buffer, p, floats);
  }
  /** Where `src[offset ..]` is in wasm memory: its retained copy, else a fresh copy for this call. */
  put(src: Float32Array, offset = 0, floats = src.length - offset): Ptr {
    const kept = this.pinned.get(src);
    if (kept !== undefined) return kept + offset * 4;
    const p = this.alloc(floats);
    this.view(p, floats).set(src.subarray(offset, offset + floats));
    return p;
  }
  /** Keeps a copy of `src` for later calls; false when it does not fit under the limit. Between calls only. */
  pin(src: Float32Array): boolean {
    if (this.pinned.has(src)) return true;
    const p = this.pinTop;
    const end = p + ((src.length * 4 + 15) & ~15);
    // Half the limit at most for weights, so that operands still fit.
    if (end - this.base > this.limit / 2) return false;
    try {
      this.reserve(end);
    } catch (e) {
      if (e instanceof TooBig) return false;
      throw e;
    }
    this.view(p, src.length).set(src);
    this.pinned.set(src, p);
    this.pinTop = end;
    this.top = end;
    return true;
  }
  pinnedBytes(): number {
    return this.pinTop - this.base;
  }
}

export interface WasmKernels {
  gemmNT: typeof ref.gemmNT;
  gemmNN: typeof ref.gemmNN;
  gemmTN: typeof ref.gemmTN;
  conv2d: typeof ref.conv2d;
  conv1x1: typeof ref.conv1x1;
  maxPool: typeof ref.maxPool;
  avgPool: typeof ref.avgPool;
  globalAvgPool: typeof ref.globalAvgPool;
  relu(x: Float32Array, out?: Float32Array): Float32Array;
  /**
   * Keeps a copy of `data` (a weight) in wasm memory so that later calls skip copying it in.
   * The caller promises not to change `data` afterwards. The copy lives as long as this instance.
   * Returns false (and keeps nothing) when it would not fit.
   */
  retain(data: Float32Array): boolean;
  /** Current size of the linear memory in bytes (it only grows). */
  memoryBytes(): number;
  /** Bytes held by retained arrays. */
  retainedBytes(): number;
}

/** Reads the module bytes; throws naming every place it looked. */
export function readKernelModule(): Uint8Array {
  const paths = modulePaths();
  for (const p of paths) if (existsSync(p)) return readFileSync(p);
  throw new Error(`kernels.wasm not found (looked in ${paths.join(', ')}); run scripts/build-wasm.sh`);
}

export interface WasmOptions {
  /** Module bytes (default: kernels.wasm read from disk). */
  bytes?: Uint8Array;
  /** Arena size above which an op runs on the reference kernel instead (default ARENA_LIMIT_BYTES). */
  arenaLimitBytes?: number;
}

export async function loadWasmKernels(options: WasmOptions = {}): Promise<WasmKernels> {
  const bytes = options.bytes ?? readKernelModule();
  const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  const instance = await WebAssembly.instantiate(module, {});
  const x = instance.exports as unknown as Exports;
  const arena = new Arena(x.memory, ((x.__heap_base.value as number) + 15) & ~15, options.arenaLimitBytes ?? ARENA_LIMIT_BYTES);

  // Runs `body` with a fresh arena; an op that does not fit in wasm memory runs `fallback`.
  function run<T>(body: () => T, fallback: () => T): T {
    arena.reset();
    try {
      return body();
    } catch (e) {
      if (e instanceof TooBig) return fallback();
      throw e;
    } finally {
      arena.reset();
    }
  }

  return {
    gemmNT(a, b, M, N, K, bias, out) {
      run(() => {
        const pa = arena.put(a, 0, M * K);
        const pb = arena.put(b, 0, N * K);
        const pbias = bias ? arena.put(bias, 0, N) : 0;
        const po = arena.alloc(M * N);
        x.gemm_nt(pa, pb, M, N, K, pbias, po);
        out.set(arena.view(po, M * N));
      }, () => ref.gemmNT(a, b, M, N, K, bias, out));
    },
    gemmNN(a, b, M, N, K, out, aOffset = 0, bOffset = 0, outOffset = 0) {
      run(() => {
        const pa = arena.put(a, aOffset, M * K);
        const pb = arena.put(b, bOffset, K * N);
        const po = arena.alloc(M * N);
        x.gemm_nn(pa, pb, M, N, K, po);
        out.set(arena.view(po, M * N), outOffset);
      }, () => ref.gemmNN(a, b, M, N, K, out, aOffset, bOffset, outOffset));
    },
    gemmTN(a, b, M, N, K, out, aOffset = 0, bOffset = 0, outOffset = 0) {
      run(() => {
        const pa = arena.put(a, aOffset, K * M);
        const pb = arena.put(b, bOffset, K * N);
        const po = arena.alloc(M * N);
        x.gemm_tn(pa, pb, M, N, K, po);
        out.set(arena.view(po, M * N), outOffset);
      }, () => ref.gemmTN(a, b, M, N, K, out, aOffset, bOffset, outOffset));
    },
    conv2d(xs, xShape, w, wShape, bias, p: Conv2dParams) {
      const [N, C, H, W] = xShape as [number, number, number, number];
      const [O, Cg, KH, KW] = wShape as [number, number, number, number];
      const [sh, sw] = p.strides;
      const [pt, pl, pb, pr] = p.pads;
      const [dh, dw] = p.dilations;
      const OH = convOutSize(H, KH, sh, pt, pb, dh);
      const OW = convOutSize(W, KW, sw, pl, pr, dw);
      return run(() => {
        const px = arena.put(xs, 0, N * C * H * W);
        const pw = arena.put(w, 0, O * Cg * KH * KW);
        const pbias = bias ? arena.put(bias, 0, O) : 0;
        const po = arena.alloc(N * O * OH * OW);
        const pcols = arena.alloc(Cg * KH * KW * OH * OW);
        x.conv2d(px, pw, pbias, po, pcols, N, C, H, W, O, KH, KW, p.group, sh, sw, pt, pl, dh, dw, OH, OW);
        return { data: arena.view(po, N * O * OH * OW).slice(), shape: [N, O, OH, OW] };
      }, () => ref.conv2d(xs, xShape, w, wShape, bias, p));
    },
    conv1x1(xs, xShape, w, O, bias) {
      const [N, C, H, W] = xShape as [number, number, number, number];
      const HW = H * W;
      return run(() => {
        const px = arena.put(xs, 0, N * C * HW);
        const pw = arena.put(w, 0, O * C);
        const pbias = bias ? arena.put(bias, 0, O) : 0;
        const po = arena.alloc(N * O * HW);
        x.conv1x1(px, pw, pbias, po, N, C, HW, O);
        return { data: arena.view(po, N * O * HW).slice(), shape: [N, O, H, W] };
      }, () => ref.conv1x1(xs, xShape, w, O, bias));
    },
    maxPool(xs, xShape, p: PoolParams) {
      const [N, C, H, W] = xShape as [number, number, number, number];
      const [KH, KW] = p.kernel;
      const [sh, sw] = p.strides;
      const [pt, pl, pb, pr] = p.pads;
      const [dh, dw] = p.dilations;
      const OH = poolOutSize(H, KH, sh, pt, pb, dh, p.ceilMode);
      const OW = poolOutSize(W, KW, sw, pl, pr, dw, p.ceilMode);
      return run(() => {
        const px = arena.put(xs, 0, N * C * H * W);
        const po = arena.alloc(N * C * OH * OW);
        x.max_pool(px, po, N * C, H, W, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw);
        return { data: arena.view(po, N * C * OH * OW).slice(), shape: [N, C, OH, OW] };
      }, () => ref.maxPool(xs, xShape, p));
    },
    avgPool(xs, xShape, p: PoolParams, countIncludePad) {
      const [N, C, H, W] = xShape as [number, number, number, number];
      const [KH, KW] = p.kernel;
      const [sh, sw] = p.strides;
      const [pt, pl, pb, pr] = p.pads;
      const OH = poolOutSize(H, KH, sh, pt, pb, 1, p.ceilMode);
      const OW = poolOutSize(W, KW, sw, pl, pr, 1, p.ceilMode);
      return run(() => {
        const px = arena.put(xs, 0, N * C * H * W);
        const po = arena.alloc(N * C * OH * OW);
        x.avg_pool(px, po, N * C, H, W, OH, OW, KH, KW, sh, sw, pt, pl, pb, pr, countIncludePad ? 1 : 0);
        return { data: arena.view(po, N * C * OH * OW).slice(), shape: [N, C, OH, OW] };
      }, () => ref.avgPool(xs, xShape, p, countIncludePad));
    },
    globalAvgPool(xs, xShape) {
      const [N, C] = xShape as [number, number];
      const S = xShape.slice(2).reduce((u, v) => u * v, 1);
      return run(() => {
        const px = arena.put(xs, 0, N * C * S);
        const po = arena.alloc(N * C);
        x.global_avg_pool(px, po, N * C, S);
        return { data: arena.view(po, N * C).slice(), shape: [N, C, ...xShape.slice(2).map(() => 1)] };
      }, () => ref.globalAvgPool(xs, xShape));
    },
    relu(xs, out: Float32Array = new Float32Array(xs.length)) {
      return run(() => {
        const px = arena.put(xs);
        const po = arena.alloc(xs.length); // not in place: xs may be a retained array
        x.relu(px, po, xs.length);
        out.set(arena.view(po, xs.length));
        return out;
      }, () => reluReference(xs, out));
    },
    retain: (data) => arena.pin(data),
    memoryBytes: () => x.memory.buffer.byteLength,
    retainedBytes: () => arena.pinnedBytes(),
  };
}

/** The reference ReLU (runtime/layers/activations.ts): v > 0 ? v : 0. */
export function reluReference(x: Float32Array, out: Float32Array = new Float32Array(x.length)): Float32Array {
  for (let i = 0; i < x.length; i++) out[i] = x[i]! > 0 ? x[i]! : 0;
  return out;
}
