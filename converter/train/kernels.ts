// The training engine's products on the WebAssembly SIMD kernels (runtime/kernels/wasm: the packed
// GEMM driver gemm_acc, the runtime's conv2d, and convgrad.c's conv2d_grad), with the JS loops of
// gemm.ts and ops/conv.ts as the fallback when the module cannot load.
//
// The trainer owns its own instance of kernels.wasm (not the runtime's: a training step stages
// whole-batch activations, and sessions must not see its memory grow). Training is synchronous, so
// the module is compiled synchronously the first time a product asks for it. Each call stages its
// operands in the instance's memory above __heap_base (one copy in per operand, whole batch at a
// time for a convolution, and one copy out of what it wrote), runs, and drops the staging.
// trainKernelStats() reports how much of the time went to those copies.
//
// Which engine runs: setTrainKernels('js' | 'wasm' | 'auto'); 'auto' (the default) is wasm when
// it loads and FACTORLITE_KERNELS (the runtime's backend list) does not exclude 'wasm-simd'.
import type { Conv2dParams } from '../../runtime/kernels/reference.js';
import { convOutSize } from '../../runtime/kernels/reference.js';
import { hasWasmSimd } from '../../runtime/kernels/backend.js';
import { readKernelModule } from '../../runtime/kernels/wasmKernels.js';

export type TrainKernelsChoice = 'js' | 'wasm' | 'auto';
export type GemmKind = 'nn' | 'nt' | 'tn';

type Ptr = number;
interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  gemm_acc_strided(M: number, N: number, K: number, A: Ptr, rsa: number, csa: number, B: Ptr, rsb: number, csb: number, C: Ptr, ldc: number): void;
  conv2d(x: Ptr, w: Ptr, bias: Ptr, out: Ptr, cols: Ptr, N: number, C: number, H: number, W: number, O: number,
    KH: number, KW: number, G: number, sh: number, sw: number, pt: number, pl: number, dh: number, dw: number,
    OH: number, OW: number): void;
  conv2d_grad(x: Ptr, w: Ptr, gy: Ptr, gx: Ptr, gw: Ptr, gb: Ptr, cols: Ptr, N: number, C: number, H: number, W: number, O: number,
    KH: number, KW: number, G: number, sh: number, sw: number, pt: number, pl: number, dh: number, dw: number,
    OH: number, OW: number): void;
  relu(x: Ptr, out: Ptr, n: number): void;
  relu_grad(x: Ptr, g: Ptr, gx: Ptr, n: number): void;
  max_pool(x: Ptr, out: Ptr, NC: number, H: number, W: number, OH: number, OW: number, KH: number, KW: number,
    sh: number, sw: number, pt: number, pl: number, dh: number, dw: number): void;
  max_pool_grad(x: Ptr, g: Ptr, gx: Ptr, NC: number, H: number, W: number, OH: number, OW: number, KH: number, KW: number,
    sh: number, sw: number, pt: number, pl: number, dh: number, dw: number): void;
}

/** Max pooling window of one call (pads: top, left). */
export interface PoolCall {
  NC: number; H: number; W: number; OH: number; OW: number; KH: number; KW: number;
  sh: number; sw: number; pt: number; pl: number; dh: number; dw: number;
}

/** Shapes of one convolution call, as the kernels take them. */
export interface ConvCall {
  N: number; C: number; H: number; W: number; O: number; KH: number; KW: number; G: number;
  sh: number; sw: number; pt: number; pl: number; dh: number; dw: number; OH: number; OW: number;
}

export interface TrainWasm {
  /** C[cOff ..] += op(A) op(B) with op per `kind` (nn: A [M,K] B [K,N]; nt: B [N,K]; tn: A [K,M]). */
  gemmAcc(kind: GemmKind, A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number, M: number, N: number, K: number): boolean;
  /** out [N, O, OH, OW] = conv(x, w) + bias (bias may be null), the whole batch in one call. */
  conv2d(x: Float32Array, w: Float32Array, bias: Float32Array | null, out: Float32Array, c: ConvCall): boolean;
  /** gx += dL/dx, gw += dL/dw, gb += dL/db (each may be null) given gy = dL/dy, the whole batch in one call. */
  conv2dGrad(x: Float32Array, w: Float32Array, gy: Float32Array, gx: Float32Array | null, gw: Float32Array | null, gb: Float32Array | null, c: ConvCall): boolean;
  /** out = max(x, 0) (relu of the JS op). */
  relu(x: Float32Array, out: Float32Array): boolean;
  /** gx += x > 0 ? g : 0. */
  reluGrad(x: Float32Array, g: Float32Array, gx: Float32Array): boolean;
  /** Max pool of x [NC, H, W] into out [NC, OH, OW]. */
  maxPool(x: Float32Array, out: Float32Array, c: PoolCall): boolean;
  /** Max pool backward: each window's g to its (first) maximum's cell of gx. */
  maxPoolGrad(x: Float32Array, g: Float32Array, gx: Float32Array, c: PoolCall): boolean;
}

export interface TrainKernelStats {
  /** Calls that ran on wasm since the last reset. */
  calls: number;
  /** Milliseconds of those calls spent copying operands in and results out. */
  copyMs: number;
  /** Milliseconds in the calls altogether (copies and kernels). */
  wasmMs: number;
}

const PAGE = 65536;
/** Staging beyond this runs on the JS loops instead (wasm32 addresses stop at 4 GiB). */
const STAGE_LIMIT_BYTES = 3 * 2 ** 30;
const align16 = (n: number): number => (n + 15) & ~15;

const stats: TrainKernelStats = { calls: 0, copyMs: 0, wasmMs: 0 };

/** Stats since the last reset; `reset` zeroes them after reading. */
export function trainKernelStats(reset = false): TrainKernelStats {
  const s = { ...stats };
  if (reset) {
    stats.calls = 0;
    stats.copyMs = 0;
    stats.wasmMs = 0;
  }
  return s;
}

/** Instantiates kernels.wasm (synchronously) for the trainer; `bytes` replaces the committed module (tests). */
export function loadTrainWasm(bytes?: Uint8Array): TrainWasm {
  if (!hasWasmSimd()) throw new Error('this JavaScript engine has no WebAssembly SIMD');
  const module = new WebAssembly.Module((bytes ?? readKernelModule()) as Uint8Array<ArrayBuffer>);
  const x = new WebAssembly.Instance(module, {}).exports as unknown as Exports;
  for (const f of ['gemm_acc_strided', 'conv2d', 'conv2d_grad', 'relu', 'relu_grad', 'max_pool', 'max_pool_grad'] as const) {
    if (typeof x[f] !== 'function') throw new Error(`kernels.wasm has no ${f} export (rebuild it with scripts/build-wasm.sh)`);
  }
  const mem = x.memory;
  const base = align16(x.__heap_base.value as number);
  let top = base;
  let view = new Float32Array(mem.buffer);

  /** Room for `floats` in staging; undefined when it would pass the limit or memory cannot grow. */
  function alloc(floats: number): Ptr | undefined {
    const p = top;
    const end = p + align16(floats * 4);
    if (end - base > STAGE_LIMIT_BYTES) return undefined;
    if (end > mem.buffer.byteLength) {
      try {
        mem.grow(Math.ceil((end - mem.buffer.byteLength) / PAGE));
      } catch {
        return undefined;
      }
    }
    if (view.buffer !== mem.buffer) view = new Float32Array(mem.buffer);
    top = end;
    return p;
  }
  const put = (p: Ptr, src: Float32Array, off: number, floats: number): void => {
    view.set(off === 0 && floats === src.length ? src : src.subarray(off, off + floats), p >> 2);
  };
  const get = (p: Ptr, dst: Float32Array, off: number, floats: number): void => {
    dst.set(view.subarray(p >> 2, (p >> 2) + floats), off);
  };

  /** Reserves every block first (growing memory detaches views), then copies: [ptr] per size, or undefined. */
  function reserve(sizes: number[]): Ptr[] | undefined {
    top = base;
    const ps: Ptr[] = [];
    for (const s of sizes) {
      const p = alloc(s);
      if (p === undefined) return undefined;
      ps.push(p);
    }
    return ps;
  }

  /**
   * Stages `ins` (copied in, except the one at index `fresh`: an output the kernel overwrites),
   * runs `kernel` with their pointers, copies `outs` (indices into `ins`) back. For the
   * memory-bound ops, where one call is one pass over the data.
   */
  function run(ins: Float32Array[], outs: number[], kernel: (ps: Ptr[]) => void, fresh = -1): boolean {
    const t0 = performance.now();
    const ps = reserve(ins.map((a) => a.length));
    if (!ps) return false;
    ins.forEach((a, i) => {
      if (i !== fresh) put(ps[i]!, a, 0, a.length);
    });
    const t1 = performance.now();
    kernel(ps);
    const t2 = performance.now();
    for (const i of outs) get(ps[i]!, ins[i]!, 0, ins[i]!.length);
    const t3 = performance.now();
    stats.calls++;
    stats.copyMs += t1 - t0 + (t3 - t2);
    stats.wasmMs += t3 - t0;
    return true;
  }

  return {
    relu: (xs, out) => run([xs, out], [1], ([px, po]) => x.relu(px!, po!, xs.length), 1),
    reluGrad: (xs, g, gx) => run([xs, g, gx], [2], ([px, pg, pgx]) => x.relu_grad(px!, pg!, pgx!, xs.length)),
    maxPool: (xs, out, c) => run([xs, out], [1], ([px, po]) => x.max_pool(px!, po!, c.NC, c.H, c.W, c.OH, c.OW, c.KH, c.KW, c.sh, c.sw, c.pt, c.pl, c.dh, c.dw), 1),
    maxPoolGrad: (xs, g, gx, c) =>
      run([xs, g, gx], [2], ([px, pg, pgx]) => x.max_pool_grad(px!, pg!, pgx!, c.NC, c.H, c.W, c.OH, c.OW, c.KH, c.KW, c.sh, c.sw, c.pt, c.pl, c.dh, c.dw)),
    gemmAcc(kind, A, aOff, B, bOff, C, cOff, M, N, K) {
      const t0 = performance.now();
      const ps = reserve([M * K, K * N, M * N]);
      if (!ps) return false;
      const [pa, pb, pc] = ps as [Ptr, Ptr, Ptr];
      put(pa, A, aOff, M * K);
      put(pb, B, bOff, K * N);
      put(pc, C, cOff, M * N);
      const t1 = performance.now();
      if (kind === 'nn') x.gemm_acc_strided(M, N, K, pa, K, 1, pb, N, 1, pc, N);
      else if (kind === 'nt') x.gemm_acc_strided(M, N, K, pa, K, 1, pb, 1, K, pc, N);
      else x.gemm_acc_strided(M, N, K, pa, 1, M, pb, N, 1, pc, N);
      const t2 = performance.now();
      get(pc, C, cOff, M * N);
      const t3 = performance.now();
      stats.calls++;
      stats.copyMs += t1 - t0 + (t3 - t2);
      stats.wasmMs += t3 - t0;
      return true;
    },
    conv2d(xs, w, bias, out, c) {
      const t0 = performance.now();
      const cols = (c.C / c.G) * c.KH * c.KW * c.OH * c.OW;
      const ps = reserve([xs.length, w.length, out.length, cols, bias ? bias.length : 0]);
      if (!ps) return false;
      const [px, pw, po, pcols, pb] = ps as [Ptr, Ptr, Ptr, Ptr, Ptr];
      put(px, xs, 0, xs.length);
      put(pw, w, 0, w.length);
      if (bias) put(pb, bias, 0, bias.length);
      const t1 = performance.now();
      x.conv2d(px, pw, bias ? pb : 0, po, pcols, c.N, c.C, c.H, c.W, c.O, c.KH, c.KW, c.G, c.sh, c.sw, c.pt, c.pl, c.dh, c.dw, c.OH, c.OW);
      const t2 = performance.now();
      get(po, out, 0, out.length);
      const t3 = performance.now();
      stats.calls++;
      stats.copyMs += t1 - t0 + (t3 - t2);
      stats.wasmMs += t3 - t0;
      return true;
    },
    conv2dGrad(xs, w, gy, gx, gw, gb, c) {
      if (!gx && !gw && !gb) return true;
      const t0 = performance.now();
      const plain = c.KH === 1 && c.KW === 1 && c.sh === 1 && c.sw === 1 && c.pt === 0 && c.pl === 0 && c.OH === c.H && c.OW === c.W;
      const depthwise = c.C === c.G && c.G > 1;
      const cols = plain || depthwise ? 0 : (c.C / c.G) * c.KH * c.KW * c.OH * c.OW;
      const ps = reserve([xs.length, w.length, gy.length, gx ? gx.length : 0, gw ? gw.length : 0, cols, gb ? gb.length : 0]);
      if (!ps) return false;
      const [px, pw, pgy, pgx, pgw, pcols, pgb] = ps as [Ptr, Ptr, Ptr, Ptr, Ptr, Ptr, Ptr];
      put(px, xs, 0, xs.length);
      put(pw, w, 0, w.length);
      put(pgy, gy, 0, gy.length);
      if (gx) put(pgx, gx, 0, gx.length);
      if (gw) put(pgw, gw, 0, gw.length);
      if (gb) put(pgb, gb, 0, gb.length);
      const t1 = performance.now();
      x.conv2d_grad(px, pw, pgy, gx ? pgx : 0, gw ? pgw : 0, gb ? pgb : 0, pcols, c.N, c.C, c.H, c.W, c.O, c.KH, c.KW, c.G, c.sh, c.sw, c.pt, c.pl, c.dh, c.dw, c.OH, c.OW);
      const t2 = performance.now();
      if (gx) get(pgx, gx, 0, gx.length);
      if (gw) get(pgw, gw, 0, gw.length);
      if (gb) get(pgb, gb, 0, gb.length);
      const t3 = performance.now();
      stats.calls++;
      stats.copyMs += t1 - t0 + (t3 - t2);
      stats.wasmMs += t3 - t0;
      return true;
    },
  };
}

let choice: TrainKernelsChoice = 'auto';
let loaded: TrainWasm | null | undefined;
let loadError: string | undefined;

function envAllowsWasm(): boolean {
  const env = process.env['FACTORLITE_KERNELS'];
  return !env || env.split(',').map((s) => s.trim()).includes('wasm-simd');
}

/**
 * Picks the engine of the trainer's products. 'wasm' throws when the module cannot load;
 * 'auto' takes wasm when it loads (and FACTORLITE_KERNELS allows it), else the JS loops.
 */
export function setTrainKernels(k: TrainKernelsChoice): void {
  if (k === 'wasm' && !wasmOrNull(true)) throw new Error(`train: the WebAssembly kernels did not load: ${loadError}`);
  choice = k;
}

function wasmOrNull(force = false): TrainWasm | null {
  if (loaded === undefined) {
    try {
      loaded = loadTrainWasm();
    } catch (e) {
      loaded = null;
      loadError = e instanceof Error ? e.message : String(e);
    }
  }
  if (!force && (choice === 'js' || (choice === 'auto' && !envAllowsWasm()))) return null;
  return loaded;
}

/** The wasm kernels when the trainer uses them now, else null (the JS loops run). */
export function trainWasm(): TrainWasm | null {
  return wasmOrNull();
}

/** Which engine runs the trainer's products now. */
export function trainKernels(): 'js' | 'wasm' {
  return trainWasm() ? 'wasm' : 'js';
}

/** Why the wasm kernels did not load (undefined when they did, or have not been tried). */
export function trainWasmLoadError(): string | undefined {
  return loadError;
}

/** ConvCall of x [N, C, H, W] and w [O, C/G, KH, KW]. */
export function convCall(xShape: readonly number[], wShape: readonly number[], p: Conv2dParams): ConvCall {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, , KH, KW] = wShape as [number, number, number, number];
  const OH = convOutSize(H, KH, p.strides[0], p.pads[0], p.pads[2], p.dilations[0]);
  const OW = convOutSize(W, KW, p.strides[1], p.pads[1], p.pads[3], p.dilations[1]);
  return {
    N, C, H, W, O, KH, KW, G: p.group, sh: p.strides[0], sw: p.strides[1], pt: p.pads[0], pl: p.pads[1],
    dh: p.dilations[0], dw: p.dilations[1], OH, OW,
  };
}
