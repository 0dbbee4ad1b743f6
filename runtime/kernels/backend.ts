// Kernel backends: interchangeable implementations of the same ops, tested by one conformance
// suite (test/runtime/kernels/conformance.test.ts) against the reference, which defines them.
// selectBackend tries backends in priority order and reports why each one it skipped failed.
import type { ArenaMemory } from './arena.js';
import type { KernelOps } from './kernelOps.js';
import * as ref from './reference.js';
import { hasWasmThreads } from './threads.js';
import { addReference, hasWasmRelaxedSimd, loadWasmKernelsSync, reluReference, type WasmKernels, type WasmOptions, type WasmThreads } from './wasmKernels.js';

export { hasWasmThreads } from './threads.js';
export type { WasmThreads } from './wasmKernels.js';
export { hasWasmRelaxedSimd };

export type { ArenaMemory } from './arena.js';

export interface KernelBackend extends KernelOps {
  readonly name: string;
  /**
   * Memory for a session's activation arena. The wasm backend places it in its linear memory so
   * that kernels read and write it in place; the reference backend uses a plain ArrayBuffer.
   */
  allocArena(bytes: number): ArenaMemory;
  /**
   * Declares `data` constant (a weight, called once at prepare time): a backend may keep its own
   * copy so later calls skip copying it. `data` must not change afterwards. No-op for the reference.
   */
  retain(data: Float32Array): void;
  /** Undoes one retain(data) (retains are counted); the backend's copy is freed with the last one. */
  unretain(data: Float32Array): void;
  /** Prepares a retained conv weight once (wasm-simd: the Winograd transform); call it at prepare time, after retain. */
  prepareConv?(w: Float32Array, wShape: readonly number[], p: ref.Conv2dParams): void;
  /** Which of its kernels conv2d runs for these shapes (for profiles; the reference has one). */
  convPath?(xShape: readonly number[], wShape: readonly number[], p: ref.Conv2dParams): string;
  /** For wasm-simd: whether the 'depthwise wide' path runs copy-free (no padded copy) for these shapes. */
  convCopyFree?(xShape: readonly number[], wShape: readonly number[], p: ref.Conv2dParams): boolean;
  /**
   * For wasm-simd: CP's two depthwise stages in one pass (the k_h x 1 conv of `x` with `vertical`,
   * then the 1 x k_w conv of that with `horizontal`, no bias) into `out`; false, computing nothing,
   * where it does not take the shapes (the caller then runs the two conv2dInto calls).
   */
  cpSeparableInto?(x: Float32Array, xShape: readonly number[], kH: Float32Array, kW: Float32Array, kh: number, kw: number,
    vertical: ref.Conv2dParams, horizontal: ref.Conv2dParams, out: Float32Array): boolean;
  /** For wasm-simd: which build of the kernels runs ('relaxed': with fused multiply-add). */
  readonly simd?: 'simd128' | 'relaxed';
  /** What the backend holds now for sessions (retained weights and arenas), for leak checks. */
  held?(): { retainedArrays: number; retainedBytes: number; liveBytes: number; memoryBytes: number };
  /** Present on a threaded backend (wasmBackend({ threads }) with threads > 1): the cap, what calls used, close. */
  threads?: WasmThreads;
}

function heapArena(bytes: number): ArenaMemory {
  const buf = new ArrayBuffer(bytes);
  return { buffer: () => buf, byteOffset: 0, bytes, collected: true, release: () => {} };
}

export const referenceBackend: KernelBackend = {
  name: 'reference',
  gemmNT: ref.gemmNT,
  gemmNN: ref.gemmNN,
  gemmTN: ref.gemmTN,
  conv2d: ref.conv2d,
  conv1x1: ref.conv1x1,
  maxPool: ref.maxPool,
  avgPool: ref.avgPool,
  globalAvgPool: ref.globalAvgPool,
  conv2dInto: ref.conv2dInto,
  conv1x1Into: ref.conv1x1Into,
  maxPoolInto: ref.maxPoolInto,
  avgPoolInto: ref.avgPoolInto,
  globalAvgPoolInto: ref.globalAvgPoolInto,
  relu: reluReference,
  add: addReference,
  retain: () => {},
  unretain: () => {},
  allocArena: heapArena,
};

/**
 * A minimal module whose one function uses v128 (i32.const 0; i8x16.splat; i8x16.popcnt), the
 * usual probe for WebAssembly SIMD support.
 */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

/** True when this JavaScript engine has WebAssembly with the fixed-width SIMD proposal. */
export function hasWasmSimd(): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
}

export async function wasmBackend(options: WasmOptions = {}): Promise<KernelBackend> {
  return wasmBackendSync(options);
}

/**
 * wasmBackend without a promise. With `threads` > 1 it starts that many - 1 worker threads
 * (the backend's `threads.close()` ends them; they never keep a process alive).
 */
export function wasmBackendSync(options: WasmOptions = {}): KernelBackend {
  if (typeof WebAssembly !== 'object') throw new Error('this JavaScript engine has no WebAssembly');
  if (!hasWasmSimd()) throw new Error('this JavaScript engine has WebAssembly but not WebAssembly SIMD (v128)');
  if ((options.threads ?? 1) > 1 && !hasWasmThreads()) throw new Error('this JavaScript engine has no WebAssembly threads (shared memory)');
  const k = loadWasmKernelsSync(options);
  return {
    name: 'wasm-simd',
    simd: k.simd,
    gemmNT: k.gemmNT,
    gemmNN: k.gemmNN,
    gemmTN: k.gemmTN,
    conv2d: k.conv2d,
    conv1x1: k.conv1x1,
    maxPool: k.maxPool,
    avgPool: k.avgPool,
    globalAvgPool: k.globalAvgPool,
    conv2dInto: k.conv2dInto,
    conv1x1Into: k.conv1x1Into,
    convPath: k.convPath,
    prepareConv: k.prepareConv,
    convCopyFree: k.convCopyFree,
    cpSeparableInto: k.cpSeparableInto,
    maxPoolInto: k.maxPoolInto,
    avgPoolInto: k.avgPoolInto,
    globalAvgPoolInto: k.globalAvgPoolInto,
    relu: k.relu,
    add: k.add,
    retain: (data) => {
      k.retain(data);
    },
    unretain: (data) => k.unretain(data),
    held: () => ({ retainedArrays: k.retainedCount(), retainedBytes: k.retainedBytes(), liveBytes: k.liveBytes(), memoryBytes: k.memoryBytes() }),
    allocArena: (bytes) => k.allocArena(bytes) ?? heapArena(bytes),
    ...(isThreaded(k) ? { threads: k } : {}),
  };
}

function isThreaded(k: WasmKernels & Partial<WasmThreads>): k is WasmKernels & WasmThreads {
  return typeof k.setThreadCap === 'function';
}

/** Backend names in the order selectBackend tries them when given no preference. */
export const DEFAULT_BACKENDS: readonly string[] = ['wasm-simd', 'reference'];

const loaders: Record<string, () => Promise<KernelBackend>> = {
  'wasm-simd': () => wasmBackend(),
  reference: async () => referenceBackend,
};

export class BackendError extends Error {
  readonly code = 'NO_KERNEL_BACKEND';
  constructor(readonly tried: ReadonlyArray<{ name: string; error?: string }>) {
    super(`kernels: no backend could start; tried ${tried.map((t) => `${t.name} (${t.error ?? 'ok'})`).join('; ')}`);
    this.name = 'BackendError';
  }
}

export interface SelectOptions {
  /** Replaces a backend's loader by name (tests use it to simulate an engine without SIMD). */
  loaders?: Record<string, () => Promise<KernelBackend>>;
}

/**
 * Starts the first backend of `preference` that loads. The default order is FACTORLITE_KERNELS
 * (comma-separated names) when set, else DEFAULT_BACKENDS. `tried` lists every backend attempted,
 * with the reason each failed; the last entry is the one chosen. Throws BackendError when none loads.
 */
export async function selectBackend(
  preference?: string[],
  options: SelectOptions = {},
): Promise<{ backend: KernelBackend; tried: Array<{ name: string; error?: string }> }> {
  const env = process.env['FACTORLITE_KERNELS'];
  const order = preference ?? (env ? env.split(',').map((s) => s.trim()).filter(Boolean) : [...DEFAULT_BACKENDS]);
  const tried: Array<{ name: string; error?: string }> = [];
  for (const name of order) {
    const load = options.loaders?.[name] ?? loaders[name];
    if (!load) {
      tried.push({ name, error: `unknown backend; known: ${Object.keys(loaders).join(', ')}` });
      continue;
    }
    try {
      const backend = await load();
      tried.push({ name });
      return { backend, tried };
    } catch (e) {
      tried.push({ name, error: e instanceof Error ? e.message : String(e) });
    }
  }
  throw new BackendError(tried);
}

/** One line for logs: which backend runs and why the ones before it did not. */
export function describeSelection(tried: ReadonlyArray<{ name: string; error?: string }>): string {
  const chosen = tried[tried.length - 1];
  const skipped = tried.slice(0, -1).map((t) => `${t.name}: ${t.error ?? 'skipped'}`);
  return `kernels: ${chosen?.name ?? 'none'}${skipped.length ? ` (fell back: ${skipped.join('; ')})` : ''}`;
}

let current: KernelBackend = referenceBackend;

/** The backend new sessions use unless told otherwise: the reference until initKernels() runs. */
export function defaultBackend(): KernelBackend {
  return current;
}

/** Picks the fastest backend that loads and makes it the default; `log` gets one line saying which. */
export async function initKernels(log?: (line: string) => void): Promise<KernelBackend> {
  const { backend, tried } = await selectBackend();
  current = backend;
  log?.(describeSelection(tried));
  return backend;
}
