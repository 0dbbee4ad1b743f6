// WebAssembly SIMD kernels (runtime/kernels/wasm/*.c, built by scripts/build-wasm.sh), in two
// builds of the same sources: kernels.wasm (SIMD128: multiply, then add) and kernels-relaxed.wasm
// (relaxed SIMD: f32x4.relaxed_madd, a fused multiply-add on CPUs with FMA), loaded by default
// where the engine validates relaxed SIMD (Node 22+, or Node 20 with --experimental-wasm-relaxed-simd).
// Same signatures as the reference kernels they replace. An operand that already lives in the
// module's linear memory (a session arena from allocArena, or a retained weight) is used where it
// is; any other operand is copied in for the call, and an output outside it is copied out.
//
//   linear memory (exported by the module, grown here as needed)
//   0 .. __heap_base        C stack, packing buffers for the GEMM (static)
//   __heap_base .. top      blocks: retained weights (counted; freed when the last retain is
//                           undone) and session arenas (given back by release), first fit
//   top ..                  staging for the operands of the current call, dropped after it
//
// An op too big for the 4 GiB of a wasm32 memory runs on the reference kernel instead.
//
// With `threads` > 1 the module is kernels-mt.wasm (kernels-mt-relaxed.wasm where relaxed SIMD is
// taken) on a shared memory, and GEMM and convolution calls go through
// runtime/kernels/wasmThreaded.ts, which splits the big ones over a pool of
// worker threads (runtime/kernels/threads.ts). Each thread's C stack and TLS block (its packing
// buffers) are blocks of the heap below, taken once when the kernels load.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ArenaMemory } from './arena.js';
import type { KernelOps } from './kernelOps.js';
import * as ref from './reference.js';
import { hasWasmThreads, ThreadPool } from './threads.js';
import { POOL_EXPORTS, splitKernels, type SplitKernels, type ThreadedModuleExports } from './wasmThreaded.js';
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
  cp_separable?(x: Ptr, wv: Ptr, wh: Ptr, out: Ptr, N: number, R: number, H: number, W: number, KH: number, sh: number,
    pt: number, dh: number, OH: number, KW: number, sw: number, pl: number, dw: number, OW: number): number;
  conv2d_path(C: number, H: number, W: number, O: number, KH: number, KW: number, G: number, sh: number, sw: number,
    pt: number, pl: number, dh: number, dw: number, OH: number, OW: number): number;
  conv2d_depthwise_copy_free(C: number, H: number, W: number, O: number, KH: number, KW: number, G: number, sh: number,
    sw: number, pt: number, pl: number, dh: number, dw: number, OH: number, OW: number): number;
  winograd_weights(w: Ptr, O: number, C: number, U: Ptr): void;
  winograd_register(w: Ptr, U: Ptr, O: number, C: number): number;
  winograd_unregister(w: Ptr): void;
  winograd_weights_floats(O: number, C: number): number;
  winograd_weights_pay(C: number, O: number, KH: number, KW: number, G: number, sh: number, sw: number, dh: number, dw: number): number;
  max_pool(x: Ptr, out: Ptr, NC: number, H: number, W: number, OH: number, OW: number, KH: number, KW: number,
    sh: number, sw: number, pt: number, pl: number, dh: number, dw: number): void;
  avg_pool(x: Ptr, out: Ptr, NC: number, H: number, W: number, OH: number, OW: number, KH: number, KW: number,
    sh: number, sw: number, pt: number, pl: number, pb: number, pr: number, countIncludePad: number): void;
  global_avg_pool(x: Ptr, out: Ptr, NC: number, S: number): void;
  relu(x: Ptr, out: Ptr, n: number): void;
  add(a: Ptr, b: Ptr, out: Ptr, n: number): void;
}

const PAGE = 65536;
/** Ops needing more arena than this run on the reference kernel (wasm32 addresses stop at 4 GiB). */
export const ARENA_LIMIT_BYTES = 3.5 * 2 ** 30;

/** Which build of the kernels: SIMD128 only, or with relaxed SIMD's fused multiply-add. */
export type WasmSimd = 'simd128' | 'relaxed';

/** The three builds scripts/build-wasm.sh makes of the same sources. */
export type KernelModuleFile = 'kernels.wasm' | 'kernels-relaxed.wasm' | 'kernels-mt.wasm' | 'kernels-mt-relaxed.wasm';

const MODULE_FILES: Record<WasmSimd, KernelModuleFile> = { simd128: 'kernels.wasm', relaxed: 'kernels-relaxed.wasm' };

/** Candidate locations of the module: beside this file, and from dist/ back to the sources. */
function modulePaths(file: KernelModuleFile): string[] {
  return [
    fileURLToPath(new URL(`./wasm/${file}`, import.meta.url)),
    fileURLToPath(new URL(`../../../runtime/kernels/wasm/${file}`, import.meta.url)),
  ];
}

/**
 * A minimal module whose one function computes f32x4.relaxed_madd of three i8x16.splat(0): it
 * validates only where the engine has relaxed SIMD with the standard opcodes.
 */
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0,
  10, 19, 1, 17, 0, 65, 0, 253, 15, 65, 0, 253, 15, 65, 0, 253, 15, 253, 133, 2, 11,
]);

/** True when this engine has WebAssembly relaxed SIMD (Node 22+; Node 20 with --experimental-wasm-relaxed-simd). */
export function hasWasmRelaxedSimd(): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(RELAXED_PROBE);
}

class TooBig extends Error {}

const align16 = (n: number): number => (n + 15) & ~15;

/**
 * The module's memory above __heap_base: long-lived blocks (first fit, sorted by address), and a
 * bump allocator above the last block for the operands of one call.
 */
class Heap {
  /** [start, end) of each live block, sorted by start. */
  private readonly blocks: Array<[number, number]> = [];
  private stage: number;
  /** Retained copies: where, how big, and how many retains are not yet undone. */
  private readonly pinned = new Map<Float32Array, { p: Ptr; bytes: number; count: number }>();
  private pinnedTotal = 0;
  constructor(private readonly mem: WebAssembly.Memory, private readonly base: number, private readonly limit: number) {
    this.stage = base;
  }
  buffer(): ArrayBuffer {
    return this.mem.buffer;
  }
  private top(): number {
    const last = this.blocks[this.blocks.length - 1];
    return last ? last[1] : this.base;
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
  /** A block of `bytes` (16-aligned) kept until free(); undefined when it does not fit. */
  malloc(bytes: number): Ptr | undefined {
    const size = align16(Math.max(bytes, 16));
    let at = this.base;
    let index = 0;
    for (; index < this.blocks.length; index++) {
      const [s, e] = this.blocks[index]!;
      if (s - at >= size) break;
      at = e;
    }
    try {
      this.reserve(at + size);
    } catch (e) {
      if (e instanceof TooBig) return undefined;
      throw e;
    }
    this.blocks.splice(index, 0, [at, at + size]);
    return at;
  }
  liveBytes(): number {
    let n = 0;
    for (const [s, e] of this.blocks) n += e - s;
    return n;
  }
  free(p: Ptr): void {
    const i = this.blocks.findIndex((b) => b[0] === p);
    if (i >= 0) this.blocks.splice(i, 1);
  }
  /** Drops the staging of the previous call. */
  reset(): void {
    this.stage = this.top();
  }
  alloc(floats: number): Ptr {
    const p = this.stage;
    const end = p + align16(floats * 4);
    this.reserve(end);
    this.stage = end;
    return p;
  }
  /** A view of the current buffer (growing memory detaches older views). */
  view(p: Ptr, floats: number): Float32Array {
    return new Float32Array(this.mem.buffer, p, floats);
  }
  private whole = new Float32Array(0);
  /** One view of the whole memory, made again only when the memory grows (so staging allocates nothing). */
  private all(): Float32Array {
    if (this.whole.buffer !== this.mem.buffer) this.whole = new Float32Array(this.mem.buffer);
    return this.whole;
  }
  /** Where `src[offset ..]` is in wasm memory: in place, its retained copy, else a staged copy. */
  put(src: Float32Array, offset: number, floats: number): Ptr {
    if (src.buffer === this.mem.buffer) return src.byteOffset + offset * 4;
    const kept = this.pinned.get(src);
    if (kept !== undefined) return kept.p + offset * 4;
    const p = this.alloc(floats);
    const m = this.all();
    if (offset === 0 && floats === src.length) m.set(src, p >> 2);
    else for (let i = 0, d = p >> 2; i < floats; i++) m[d + i] = src[offset + i]!;
    return p;
  }
  /** Where to write `floats` results for `out[offset ..]`: in place when `out` lives here, else staging (see copyOut). */
  outPtr(out: Float32Array, offset: number, floats: number): Ptr {
    if (out.buffer === this.mem.buffer) return out.byteOffset + offset * 4;
    return this.alloc(floats);
  }
  /** Copies staged results to `out` (nothing to do when they were written in place). */
  copyOut(p: Ptr, out: Float32Array, offset: number, floats: number): void {
    if (out.buffer === this.mem.buffer) return;
    const m = this.all();
    for (let i = 0, s = p >> 2; i < floats; i++) out[offset + i] = m[s + i]!;
  }
  /** Keeps a copy of `src` for later calls; false when it does not fit under the limit. Between calls only. */
  pin(src: Float32Array): boolean {
    if (src.buffer === this.mem.buffer) return true;
    const kept = this.pinned.get(src);
    if (kept) {
      kept.count++;
      return true;
    }
    const bytes = align16(src.length * 4);
    // Half the limit at most for weights, so that operands still fit.
    if (this.pinnedTotal + bytes > this.limit / 2) return false;
    const p = this.malloc(bytes);
    if (p === undefined) return false;
    this.view(p, src.length).set(src);
    this.pinned.set(src, { p, bytes, count: 1 });
    this.pinnedTotal += bytes;
    return true;
  }
  /** Undoes one pin(src); the copy's block is freed when none is left (then `freed` runs first). Unknown arrays are ignored. */
  unpin(src: Float32Array, freed?: (p: Ptr) => void): void {
    const kept = this.pinned.get(src);
    if (!kept || --kept.count > 0) return;
    freed?.(kept.p);
    this.pinned.delete(src);
    this.free(kept.p);
    this.pinnedTotal -= kept.bytes;
  }
  /** Where the retained copy of `src` is, if it has one. */
  pinnedAt(src: Float32Array): Ptr | undefined {
    return this.pinned.get(src)?.p;
  }
  pinnedCount(): number {
    return this.pinned.size;
  }
  pinnedBytes(): number {
    return this.pinnedTotal;
  }
}

/** The kernels conv2d chooses among (conv.c's conv_path, by index). */
export const CONV_PATHS = ['im2col+gemm', '1x1 gemm', 'depthwise', 'direct', '1x1 direct', 'depthwise wide', 'winograd', 'depthwise packed', '1x1 strided', 'depthwise valid', 'depthwise rows', 'depthwise hrows', 'depthwise s2k3'] as const;
export type ConvPath = (typeof CONV_PATHS)[number];

export interface WasmKernels extends KernelOps {
  /** The build running: 'relaxed' (fused multiply-add) or 'simd128' ('simd128' also for caller-given bytes). */
  readonly simd: WasmSimd;
  /** Which kernel conv2d runs for these shapes (the rule in conv.c). */
  convPath(xShape: readonly number[], wShape: readonly number[], p: Conv2dParams): ConvPath;
  /**
   * Whether the 'depthwise wide' path runs copy-free for these shapes (output rows as wide as the
   * input's: taps read the input plane itself under a mask, no padded copy, no copy-out); else it
   * computes on a zero-padded copy. Copy-free also needs the taps' reads (a row and a bit outside
   * the tensor at most, masked) to stay inside linear memory, which conv.c checks per call.
   */
  convCopyFree(xShape: readonly number[], wShape: readonly number[], p: Conv2dParams): boolean;
  /**
   * CP's two depthwise stages in one pass (dwrows.c, cp_separable): the k_h x 1 conv of `xs` with
   * `vertical`, then the 1 x k_w conv of that with `horizontal` (stride 1), no bias, into `out`;
   * false, computing nothing, for shapes it does not take. Single-threaded: on the threaded build it
   * declines batches above 1, whose two conv2d calls split over the threads.
   */
  cpSeparableInto(xs: Float32Array, xShape: readonly number[], kH: Float32Array, kW: Float32Array, kh: number, kw: number,
    vertical: Conv2dParams, horizontal: Conv2dParams, out: Float32Array): boolean;
  /**
   * Keeps a copy of `data` (a weight) in wasm memory so that later calls skip copying it in.
   * The caller promises not to change `data` afterwards. Retains are counted: the copy lives until
   * as many unretain(data) calls. Returns false (and keeps nothing) when it would not fit.
   */
  retain(data: Float32Array): boolean;
  /** Undoes one retain(data); frees the copy when no retain is left. */
  unretain(data: Float32Array): void;
  /**
   * Makes what conv2d needs of a retained weight once (the Winograd transform of a 3x3 weight that
   * takes it): call after retain(w), before arenas are bound (it may grow the memory).
   */
  prepareConv(w: Float32Array, wShape: readonly number[], p: Conv2dParams): void;
  /** A block of linear memory for a session arena; undefined when it does not fit. */
  allocArena(bytes: number): ArenaMemory | undefined;
  /** Current size of the linear memory in bytes (it only grows). */
  memoryBytes(): number;
  /** Bytes held by retained arrays. */
  retainedBytes(): number;
  /** Number of arrays retained now. */
  retainedCount(): number;
  /** Bytes in live blocks (retained arrays and arenas). */
  liveBytes(): number;
}

/** Reads the module bytes (the SIMD128 build unless told); throws naming every place it looked. */
export function readKernelModule(file: KernelModuleFile = 'kernels.wasm'): Uint8Array {
  const paths = modulePaths(file);
  for (const p of paths) if (existsSync(p)) return readFileSync(p);
  throw new Error(`${file} not found (looked in ${paths.join(', ')}); run scripts/build-wasm.sh`);
}

export interface WasmOptions {
  /** Module bytes (default: the build `simd` names, read from disk). */
  bytes?: Uint8Array;
  /**
   * Which build to load when `bytes` is not given: 'auto' (the default) takes the relaxed build
   * where hasWasmRelaxedSimd(), else the SIMD128 one; 'relaxed' fails where the engine lacks it.
   */
  simd?: WasmSimd | 'auto';
  /** Arena size above which an op runs on the reference kernel instead (default ARENA_LIMIT_BYTES). */
  arenaLimitBytes?: number;
  /**
   * Threads the kernels may use, the calling one included (default 1). Above 1 the threaded module
   * (kernels-mt.wasm or kernels-mt-relaxed.wasm; `bytes` must then be such a module) runs with that many - 1 worker threads;
   * loading throws when the engine has no WebAssembly threads.
   */
  threads?: number;
  /** Multiply-adds per thread below which a call is not split (default: runtime/cost/threads.ts); 0 splits whatever can split (tests). */
  minMacsPerThread?: number;
}

/** The threaded kernels' extras. */
export interface WasmThreads {
  /** Threads the kernels may use now (the cap), and the most the pool allows. */
  threadCap(): number;
  maxThreads(): number;
  /** Caps the threads per call (1..maxThreads()). */
  setThreadCap(threads: number): void;
  /** The most threads any call took since resetThreadsUsed(). */
  threadsUsed(): number;
  resetThreadsUsed(): void;
  /** Ends the worker threads (idempotent); calls after it run single-threaded. */
  close(): Promise<void>;
  /** Thread ids of the workers: none before the first split call (they start then), -1 once exited. */
  workerThreadIds(): number[];
}

/** C stack of each worker instance (the linker's default for the main one). */
const WORKER_STACK_BYTES = 64 * 1024;

export async function loadWasmKernels(options: WasmOptions = {}): Promise<WasmKernels & Partial<WasmThreads>> {
  return loadWasmKernelsSync(options);
}

/**
 * loadWasmKernels without a promise (sessions that ask for threads set up their kernels in create()).
 * One thread: the relaxed-SIMD build where the engine validates it (simd 'auto'), else SIMD128.
 * More than one: kernels-mt-relaxed.wasm (threads and relaxed SIMD) on the same rule, where that file
 * is present (simd 'auto' falls back to kernels-mt.wasm without it), else kernels-mt.wasm (SIMD128).
 */
export function loadWasmKernelsSync(options: WasmOptions = {}): WasmKernels & Partial<WasmThreads> {
  const threads = Math.max(1, Math.floor(options.threads ?? 1));
  if (threads > 1 && !hasWasmThreads()) throw new Error('this JavaScript engine has no WebAssembly threads (shared memory)');
  const want = options.simd ?? 'auto';
  if (want === 'relaxed' && !hasWasmRelaxedSimd()) {
    throw new Error('this JavaScript engine has no WebAssembly relaxed SIMD (Node 20: run node with --experimental-wasm-relaxed-simd)');
  }
  let simd: WasmSimd = options.bytes === undefined && (want === 'relaxed' || (want === 'auto' && hasWasmRelaxedSimd())) ? 'relaxed' : 'simd128';
  let bytes = options.bytes;
  if (bytes === undefined && threads > 1 && simd === 'relaxed') {
    try {
      bytes = readKernelModule('kernels-mt-relaxed.wasm');
    } catch (e) {
      if (want === 'relaxed') throw e;
      simd = 'simd128';  // a package or bundle without the relaxed threaded module
    }
  }
  bytes ??= readKernelModule(threads > 1 ? 'kernels-mt.wasm' : MODULE_FILES[simd]);
  const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  let x: Exports;
  let memory: WebAssembly.Memory;
  if (threads > 1) {
    // The module imports a shared memory of at least its static data: try growing initial sizes.
    let instance: WebAssembly.Instance | undefined;
    memory = undefined as unknown as WebAssembly.Memory;
    for (let pages = 32; !instance; pages *= 2) {
      memory = new WebAssembly.Memory({ initial: pages, maximum: 65536, shared: true });
      try {
        instance = new WebAssembly.Instance(module, { env: { memory } });
      } catch (e) {
        if (!(e instanceof WebAssembly.LinkError) || pages >= 4096) throw e;
      }
    }
    x = { ...(instance.exports as unknown as Exports), memory };
  } else {
    x = new WebAssembly.Instance(module, {}).exports as unknown as Exports;
    memory = x.memory;
  }
  const heap = new Heap(memory, align16(x.__heap_base.value as number), options.arenaLimitBytes ?? ARENA_LIMIT_BYTES);
  let split: SplitKernels | undefined;
  let pool: ThreadPool | undefined;
  if (threads > 1) {
    const mt = x as unknown as Exports & ThreadedModuleExports & {
      __stack_pointer: WebAssembly.Global; __wasm_init_tls(p: number): void; __tls_size: WebAssembly.Global; __tls_align: WebAssembly.Global;
    };
    const tlsBytes = Math.max(16, mt.__tls_size.value as number);
    const tlsBlock = (): number => {
      const p = heap.malloc(tlsBytes + 64);
      if (p === undefined) throw new Error('kernels: no room for a thread\'s TLS block');
      return (p + 63) & ~63; // __tls_align is at most 16; 64 keeps each block on its own cache line
    };
    mt.__wasm_init_tls(tlsBlock());
    const blocks = Array.from({ length: threads - 1 }, () => {
      const stack = heap.malloc(WORKER_STACK_BYTES);
      if (stack === undefined) throw new Error('kernels: no room for a worker thread\'s stack');
      return { stack: stack + WORKER_STACK_BYTES, tls: tlsBlock() };
    });
    // The workers start at the first call the cost model splits (a session that splits nothing
    // never starts them); should they fail to start then, their slices run on this thread.
    pool = new ThreadPool({ module, memory, names: POOL_EXPORTS, blocks, lazy: true, local: POOL_EXPORTS.map((n) => mt[n]) });
    // Each worker's im2col scratch: one block, kept, replaced by a bigger one when a layer needs it.
    const cols: Array<{ p: number; floats: number }> = blocks.map(() => ({ p: 0, floats: 0 }));
    const colsFor = (w: number, floats: number, grow: boolean): number => {
      const c = cols[w]!;
      if (c.floats >= floats) return c.p;
      if (!grow) return 0;
      if (c.p) heap.free(c.p);
      const p = heap.malloc(floats * 4);
      if (p === undefined) throw new TooBig();
      c.p = p;
      c.floats = floats;
      return p;
    };
    split = splitKernels(mt, pool, colsFor, options.minMacsPerThread);
  }
  // Calls that may split go through `run`; the rest call the instance directly.
  const run: Pick<Exports, 'gemm_nt' | 'gemm_nn' | 'gemm_tn' | 'conv2d' | 'conv1x1'> = split ?? x;

  // Every kernel: reset staging, stage what is not in place, call, copy out what was staged.
  // An op whose staging does not fit in wasm memory (TooBig) runs on the reference kernel.

  function gemmNT(a: Float32Array, b: Float32Array, M: number, N: number, K: number, bias: Float32Array | undefined, out: Float32Array): void {
    heap.reset();
    try {
      const pa = heap.put(a, 0, M * K);
      const pb = heap.put(b, 0, N * K);
      const pbias = bias ? heap.put(bias, 0, N) : 0;
      const po = heap.outPtr(out, 0, M * N);
      run.gemm_nt(pa, pb, M, N, K, pbias, po);
      heap.copyOut(po, out, 0, M * N);
    } catch (e) {
      if (!(e instanceof TooBig)) throw e;
      ref.gemmNT(a, b, M, N, K, bias, out);
    } finally {
      heap.reset();
    }
  }

  /** gemm_nn and gemm_tn: a holds M·K values either way; only the kernel and its fallback differ. */
  function gemmWithOffsets(
    kernel: (pa: number, pb: number, M: number, N: number, K: number, po: number) => void,
    fallback: typeof ref.gemmNN,
    a: Float32Array, b: Float32Array, M: number, N: number, K: number, out: Float32Array, aOffset: number, bOffset: number, outOffset: number,
  ): void {
    heap.reset();
    try {
      const pa = heap.put(a, aOffset, M * K);
      const pb = heap.put(b, bOffset, K * N);
      const po = heap.outPtr(out, outOffset, M * N);
      kernel(pa, pb, M, N, K, po);
      heap.copyOut(po, out, outOffset, M * N);
    } catch (e) {
      if (!(e instanceof TooBig)) throw e;
      fallback(a, b, M, N, K, out, aOffset, bOffset, outOffset);
    } finally {
      heap.reset();
    }
  }

  function gemmNN(a: Float32Array, b: Float32Array, M: number, N: number, K: number, out: Float32Array, aOffset = 0, bOffset = 0, outOffset = 0): void {
    gemmWithOffsets(run.gemm_nn, ref.gemmNN, a, b, M, N, K, out, aOffset, bOffset, outOffset);
  }

  function gemmTN(a: Float32Array, b: Float32Array, M: number, N: number, K: number, out: Float32Array, aOffset = 0, bOffset = 0, outOffset = 0): void {
    gemmWithOffsets(run.gemm_tn, ref.gemmTN, a, b, M, N, K, out, aOffset, bOffset, outOffset);
  }

  // Winograd weights (winograd.c) of retained 3x3 weights: transformed once by prepareConv (a
  // layer's prepare, before any arena is bound: the block may grow the memory), registered with the
  // module under the retained copy's address, and freed with that copy (unretain). A weight not
  // prepared is transformed per call in the scratch (or, when that is too small, takes the direct path).
  const winoBlocks = new Map<Ptr, Ptr>();
  function prepareConv(w: Float32Array, wShape: readonly number[], p: Conv2dParams): void {
    const O = wShape[0]!, C = wShape[1]!;
    if (typeof x.winograd_weights_pay !== 'function') return;  // caller-given bytes of a module without it
    if (!x.winograd_weights_pay(C, O, wShape[2]!, wShape[3]!, p.group, p.strides[0], p.strides[1], p.dilations[0], p.dilations[1])) return;
    const pw = heap.pinnedAt(w);
    if (pw === undefined || winoBlocks.has(pw)) return;
    const pu = heap.malloc(x.winograd_weights_floats(O, C) * 4);
    if (pu === undefined) return;
    x.winograd_weights(pw, O, C, pu);
    if (x.winograd_register(pw, pu, O, C)) winoBlocks.set(pw, pu);
    else heap.free(pu);
  }
  function unretain(data: Float32Array): void {
    heap.unpin(data, (p) => {
      const pu = winoBlocks.get(p);
      if (pu === undefined) return;
      x.winograd_unregister(p);
      heap.free(pu);
      winoBlocks.delete(p);
    });
  }

  function conv2dInto(
    xs: Float32Array, xShape: readonly number[], w: Float32Array, wShape: readonly number[],
    bias: Float32Array | undefined, p: Conv2dParams, out: Float32Array, cols: Float32Array,
  ): void {
    const N = xShape[0]!, C = xShape[1]!, H = xShape[2]!, W = xShape[3]!;
    const O = wShape[0]!, Cg = wShape[1]!, KH = wShape[2]!, KW = wShape[3]!;
    const sh = p.strides[0], sw = p.strides[1];
    const pt = p.pads[0], pl = p.pads[1];
    const dh = p.dilations[0], dw = p.dilations[1];
    const OH = convOutSize(H, KH, sh, pt, p.pads[2], dh);
    const OW = convOutSize(W, KW, sw, pl, p.pads[3], dw);
    const nOut = N * O * OH * OW;
    // Workers' im2col blocks before staging starts (a new block goes where staging would be).
    if (split) {
      try {
        split.reserveConv(N, C, O, p.group, KH, KW, OH, OW);
      } catch (e) {
        if (!(e instanceof TooBig)) throw e;
      }
    }
    heap.reset();
    try {
      const px = heap.put(xs, 0, N * C * H * W);
      const pw = heap.put(w, 0, O * Cg * KH * KW);
      const pbias = bias ? heap.put(bias, 0, O) : 0;
      const po = heap.outPtr(out, 0, nOut);
      const nCols = Cg * KH * KW * OH * OW;
      const pcols = cols.buffer === heap.buffer() && cols.length >= nCols ? cols.byteOffset : heap.alloc(nCols);
      run.conv2d(px, pw, pbias, po, pcols, N, C, H, W, O, KH, KW, p.group, sh, sw, pt, pl, dh, dw, OH, OW);
      heap.copyOut(po, out, 0, nOut);
    } catch (e) {
      if (!(e instanceof TooBig)) throw e;
      ref.conv2dInto(xs, xShape, w, wShape, bias, p, out, cols.length >= ref.conv2dGeometry(xShape, wShape, p).cols ? cols : new Float32Array(ref.conv2dGeometry(xShape, wShape, p).cols));
    } finally {
      heap.reset();
    }
  }

  function convPath(xShape: readonly number[], wShape: readonly number[], p: Conv2dParams): ConvPath {
    const H = xShape[2]!, W = xShape[3]!, KH = wShape[2]!, KW = wShape[3]!;
    const OH = convOutSize(H, KH, p.strides[0], p.pads[0], p.pads[2], p.dilations[0]);
    const OW = convOutSize(W, KW, p.strides[1], p.pads[1], p.pads[3], p.dilations[1]);
    const i = x.conv2d_path(xShape[1]!, H, W, wShape[0]!, KH, KW, p.group, p.strides[0], p.strides[1], p.pads[0], p.pads[1],
      p.dilations[0], p.dilations[1], OH, OW);
    return CONV_PATHS[i] ?? 'im2col+gemm';
  }

  function convCopyFree(xShape: readonly number[], wShape: readonly number[], p: Conv2dParams): boolean {
    const H = xShape[2]!, W = xShape[3]!, KH = wShape[2]!, KW = wShape[3]!;
    const OH = convOutSize(H, KH, p.strides[0], p.pads[0], p.pads[2], p.dilations[0]);
    const OW = convOutSize(W, KW, p.strides[1], p.pads[1], p.pads[3], p.dilations[1]);
    return x.conv2d_depthwise_copy_free(xShape[1]!, H, W, wShape[0]!, KH, KW, p.group, p.strides[0], p.strides[1], p.pads[0],
      p.pads[1], p.dilations[0], p.dilations[1], OH, OW) === 1;
  }

  function cpSeparableInto(xs: Float32Array, xShape: readonly number[], kH: Float32Array, kW: Float32Array, kh: number, kw: number,
    vertical: Conv2dParams, horizontal: Conv2dParams, out: Float32Array): boolean {
    if (!x.cp_separable || horizontal.strides[1] !== 1) return false;
    const N = xShape[0]!, R = xShape[1]!, H = xShape[2]!, W = xShape[3]!;
    // Threaded, a batch keeps the two conv2d calls, which split over the threads (this pass does not).
    if (split && N > 1) return false;
    const OH = convOutSize(H, kh, vertical.strides[0], vertical.pads[0], vertical.pads[2], vertical.dilations[0]);
    const OW = convOutSize(W, kw, 1, horizontal.pads[1], horizontal.pads[3], horizontal.dilations[1]);
    const nOut = N * R * OH * OW;
    if (out.length < nOut || OH < 1 || OW < 1) return false;
    heap.reset();
    try {
      const px = heap.put(xs, 0, N * R * H * W);
      const pv = heap.put(kH, 0, R * kh);
      const ph = heap.put(kW, 0, R * kw);
      const po = heap.outPtr(out, 0, nOut);
      if (x.cp_separable(px, pv, ph, po, N, R, H, W, kh, vertical.strides[0], vertical.pads[0], vertical.dilations[0], OH,
        kw, 1, horizontal.pads[1], horizontal.dilations[1], OW) !== 1) return false;
      heap.copyOut(po, out, 0, nOut);
      return true;
    } catch (e) {
      if (!(e instanceof TooBig)) throw e;
      return false;
    } finally {
      heap.reset();
    }
  }

  function conv1x1Into(xs: Float32Array, xShape: readonly number[], w: Float32Array, O: number, bias: Float32Array | undefined, out: Float32Array): void {
    const N = xShape[0]!, C = xShape[1]!;
    const HW = xShape[2]! * xShape[3]!;
    heap.reset();
    try {
      const px = heap.put(xs, 0, N * C * HW);
      const pw = heap.put(w, 0, O * C);
      const pbias = bias ? heap.put(bias, 0, O) : 0;
      const po = heap.outPtr(out, 0, N * O * HW);
      run.conv1x1(px, pw, pbias, po, N, C, HW, O);
      heap.copyOut(po, out, 0, N * O * HW);
    } catch (e) {
      if (!(e instanceof TooBig)) throw e;
      ref.conv1x1Into(xs, xShape, w, O, bias, out);
    } finally {
      heap.reset();
    }
  }

  function maxPoolInto(xs: Float32Array, xShape: readonly number[], p: PoolParams, out: Float32Array): void {
    const N = xShape[0]!, C = xShape[1]!, H = xShape[2]!, W = xShape[3]!;
    const KH = p.kernel[0], KW = p.kernel[1];
    const sh = p.strides[0], sw = p.strides[1];
    const pt = p.pads[0], pl = p.pads[1];
    const dh = p.dilations[0], dw = p.dilations[1];
    const OH = poolOutSize(H, KH, sh, pt, p.pads[2], dh, p.ceilMode);
    const OW = poolOutSize(W, KW, sw, pl, p.pads[3], dw, p.ceilMode);
    heap.reset();
    try {
      const px = heap.put(xs, 0, N * C * H * W);
      const po = heap.outPtr(out, 0, N * C * OH * OW);
      x.max_pool(px, po, N * C, H, W, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw);
      heap.copyOut(po, out, 0, N * C * OH * OW);
    } catch (e) {
      if (!(e instanceof TooBig)) throw e;
      ref.maxPoolInto(xs, xShape, p, out);
    } finally {
      heap.reset();
    }
  }

  function avgPoolInto(xs: Float32Array, xShape: readonly number[], p: PoolParams, countIncludePad: boolean, out: Float32Array): void {
    const N = xShape[0]!, C = xShape[1]!, H = xShape[2]!, W = xShape[3]!;
    const KH = p.kernel[0], KW = p.kernel[1];
    const sh = p.strides[0], sw = p.strides[1];
    const pt = p.pads[0], pl = p.pads[1], pb = p.pads[2], pr = p.pads[3];
    const OH = poolOutSize(H, KH, sh, pt, pb, 1, p.ceilMode);
    const OW = poolOutSize(W, KW, sw, pl, pr, 1, p.ceilMode);
    heap.reset();
    try {
      const px = heap.put(xs, 0, N * C * H * W);
      const po = heap.outPtr(out, 0, N * C * OH * OW);
      x.avg_pool(px, po, N * C, H, W, OH, OW, KH, KW, sh, sw, pt, pl, pb, pr, countIncludePad ? 1 : 0);
      heap.copyOut(po, out, 0, N * C * OH * OW);
    } catch (e) {
      if (!(e instanceof TooBig)) throw e;
      ref.avgPoolInto(xs, xShape, p, countIncludePad, out);
    } finally {
      heap.reset();
    }
  }

  function globalAvgPoolInto(xs: Float32Array, xShape: readonly number[], out: Float32Array): void {
    const NC = xShape[0]! * xShape[1]!;
    let S = 1;
    for (let d = 2; d < xShape.length; d++) S *= xShape[d]!;
    heap.reset();
    try {
      const px = heap.put(xs, 0, NC * S);
      const po = heap.outPtr(out, 0, NC);
      x.global_avg_pool(px, po, NC, S);
      heap.copyOut(po, out, 0, NC);
    } catch (e) {
      if (!(e instanceof TooBig)) throw e;
      ref.globalAvgPoolInto(xs, xShape, out);
    } finally {
      heap.reset();
    }
  }

  function relu(xs: Float32Array, out: Float32Array = new Float32Array(xs.length)): Float32Array {
    heap.reset();
    try {
      const px = heap.put(xs, 0, xs.length);
      // In place only when the caller asked for it (out is xs): xs may be a retained array.
      const po = heap.outPtr(out, 0, xs.length);
      x.relu(px, po, xs.length);
      heap.copyOut(po, out, 0, xs.length);
    } catch (e) {
      if (!(e instanceof TooBig)) throw e;
      reluReference(xs, out);
    } finally {
      heap.reset();
    }
    return out;
  }

  function add(a: Float32Array, b: Float32Array, out: Float32Array): void {
    const n = out.length;
    heap.reset();
    try {
      const pa = heap.put(a, 0, n);
      const pb = heap.put(b, 0, n);
      const po = heap.outPtr(out, 0, n);
      x.add(pa, pb, po, n);
      heap.copyOut(po, out, 0, n);
    } catch (e) {
      if (!(e instanceof TooBig)) throw e;
      addReference(a, b, out);
    } finally {
      heap.reset();
    }
  }

  return {
    simd,
    add,
    gemmNT,
    gemmNN,
    gemmTN,
    conv2dInto,
    conv1x1Into,
    convPath,
    convCopyFree,
    cpSeparableInto,
    maxPoolInto,
    avgPoolInto,
    globalAvgPoolInto,
    conv2d(xs, xShape, w, wShape, bias, p) {
      const g = ref.conv2dGeometry(xShape, wShape, p);
      const out = new Float32Array(g.shape.reduce((u, v) => u * v, 1));
      conv2dInto(xs, xShape, w, wShape, bias, p, out, new Float32Array(0));
      return { data: out, shape: g.shape };
    },
    conv1x1(xs, xShape, w, O, bias) {
      const shape = [xShape[0]!, O, xShape[2]!, xShape[3]!];
      const out = new Float32Array(shape.reduce((u, v) => u * v, 1));
      conv1x1Into(xs, xShape, w, O, bias, out);
      return { data: out, shape };
    },
    maxPool(xs, xShape, p) {
      const shape = ref.poolShape(xShape, p);
      const out = new Float32Array(shape.reduce((u, v) => u * v, 1));
      maxPoolInto(xs, xShape, p, out);
      return { data: out, shape };
    },
    avgPool(xs, xShape, p, countIncludePad) {
      const shape = ref.poolShape(xShape, p, false);
      const out = new Float32Array(shape.reduce((u, v) => u * v, 1));
      avgPoolInto(xs, xShape, p, countIncludePad, out);
      return { data: out, shape };
    },
    globalAvgPool(xs, xShape) {
      const out = new Float32Array(xShape[0]! * xShape[1]!);
      globalAvgPoolInto(xs, xShape, out);
      return { data: out, shape: [xShape[0]!, xShape[1]!, ...xShape.slice(2).map(() => 1)] };
    },
    relu,
    retain: (data) => heap.pin(data),
    unretain,
    prepareConv,
    allocArena(bytes) {
      const p = heap.malloc(bytes);
      if (p === undefined) return undefined;
      let live = true;
      return {
        buffer: () => heap.buffer(),
        byteOffset: p,
        bytes,
        release() {
          if (live) heap.free(p);
          live = false;
        },
      };
    },
    memoryBytes: () => memory.buffer.byteLength,
    retainedBytes: () => heap.pinnedBytes(),
    retainedCount: () => heap.pinnedCount(),
    liveBytes: () => heap.liveBytes(),
    ...(split && pool ? threadExtras(split, pool) : {}),
  };
}

function threadExtras(split: SplitKernels, pool: ThreadPool): WasmThreads {
  let closed = false;
  return {
    threadCap: () => split.cap(),
    maxThreads: () => (closed ? 1 : pool.size + 1),
    setThreadCap: (n) => split.setCap(closed ? 1 : n),
    threadsUsed: () => split.used(),
    resetThreadsUsed: () => split.resetUsed(),
    close: () => {
      closed = true;
      split.setCap(1);
      return pool.close();
    },
    workerThreadIds: () => pool.threadIds,
  };
}

/** The reference elementwise sum (runtime/layers/elementwise.ts): out[i] = a[i] + b[i]. */
export function addReference(a: Float32Array, b: Float32Array, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i]! + b[i]!;
}

/** The reference ReLU (runtime/layers/activations.ts): v > 0 ? v : 0. */
export function reluReference(x: Float32Array, out: Float32Array = new Float32Array(x.length)): Float32Array {
  for (let i = 0; i < x.length; i++) out[i] = x[i]! > 0 ? x[i]! : 0;
  return out;
}
