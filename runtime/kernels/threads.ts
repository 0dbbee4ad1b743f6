// A pool of worker_threads running the threaded kernels module (kernels-mt.wasm) on the one shared
// memory of the main thread's instance: operands and the session arena live there, so a split op
// copies nothing. Each instance gets its own C stack and TLS block (the SCRATCH packing buffers of
// kernels.h), carved once from the kernels' heap.
//
// The hot path posts no message: the main thread writes each worker's call into its slot of a
// shared Int32Array, bumps a generation counter and notifies; workers run their slice and count
// themselves done; the main thread runs its own slice meanwhile, then waits for the count.
//
//   control (Int32Array on a SharedArrayBuffer)
//   [GEN]    generation, bumped once per dispatch     [DONE]  workers finished this generation
//   [READY]  workers instantiated                     [STOP]  1: leave the loop
//   [ERROR]  1: a worker's call threw (the dispatch throws)
//   [SPINUS] how long to poll before sleeping, µs (worker 0 sets it from the load average)
//   [SLOT0 + w*SLOT ..]  worker w: export index (-1: idle), then up to ARGS i32 arguments
import { Worker } from 'node:worker_threads';

const GEN = 0, DONE = 1, READY = 2, STOP = 3, ERROR = 4, SPINUS = 5;
const SLOT0 = 8;
/** Enough for conv2d's 21 parameters. */
const ARGS = 22;
const SLOT = 1 + ARGS;
/**
 * How long a worker keeps polling for the next call after its last one before it sleeps in
 * Atomics.wait, and the caller for the workers to finish (µs). Waking a sleeping thread costs a
 * futex wake-up, on a VM with an idle vCPU tens to hundreds of microseconds (bench/threadWake.ts),
 * more than a batch-1 layer's slice takes; the next split layer of a running model usually comes
 * within this window, so a running model keeps its workers awake and an idle pool sleeps.
 * Polling pays only while the machine has a core for each polling thread: on an oversubscribed
 * machine a polling worker is a CPU hog that the scheduler runs late (its wake-up from a sleep is
 * then faster), so while the 1-minute load average is a whole thread above the cores, nobody polls (SPINUS 0).
 */
const SPIN_US = 300;
/** Polls between two clock readings. */
const POLLS = 64;
/** How often worker 0 rereads the load average (ms). */
const LOAD_EVERY_MS = 200;

// Plain CommonJS evaluated by the worker (no loader, no file to find: the same text in tsx and dist/).
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, index, stack, tls, names } = workerData;
const x = new WebAssembly.Instance(module, { env: { memory } }).exports;
x.__stack_pointer.value = stack;
x.__wasm_init_tls(tls);
const fns = names.map((n) => x[n]);
const c = new Int32Array(control);
const b = ${SLOT0} + index * ${SLOT};
Atomics.add(c, ${READY}, 1);
Atomics.notify(c, ${READY});
let seen = 0;
const now = () => performance.now();
const os = require('node:os');
const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
let loadAt = -Infinity;
for (;;) {
  let g = Atomics.load(c, ${GEN});
  if (index === 0 && Date.now() - loadAt > ${LOAD_EVERY_MS}) {
    loadAt = Date.now();
    Atomics.store(c, ${SPINUS}, os.loadavg()[0] < cores + 1 ? ${SPIN_US} : 0);
  }
  const spin = Atomics.load(c, ${SPINUS});
  if (g === seen && spin > 0) {
    const end = now() + spin / 1000;
    for (let s = 1; g === seen; s++) {
      g = Atomics.load(c, ${GEN});
      if (s % ${POLLS} === 0 && now() > end) break;
    }
  }
  while (g === seen) {
    Atomics.wait(c, ${GEN}, seen);
    g = Atomics.load(c, ${GEN});
  }
  seen = g;
  if (Atomics.load(c, ${STOP}) === 1) break;
  const f = c[b];
  if (f >= 0) {
    try {
      fns[f](c[b + 1], c[b + 2], c[b + 3], c[b + 4], c[b + 5], c[b + 6], c[b + 7], c[b + 8], c[b + 9], c[b + 10], c[b + 11],
        c[b + 12], c[b + 13], c[b + 14], c[b + 15], c[b + 16], c[b + 17], c[b + 18], c[b + 19], c[b + 20], c[b + 21], c[b + 22]);
    } catch (e) {
      Atomics.store(c, ${ERROR}, 1);
    }
  }
  Atomics.add(c, ${DONE}, 1);
  Atomics.notify(c, ${DONE});
}
`;

export class ThreadPoolError extends Error {
  readonly code = 'KERNEL_THREADS';
  constructor(message: string, options?: { cause?: unknown }) {
    super(`kernels: ${message}`, options);
    this.name = 'ThreadPoolError';
  }
}

/** True when this engine can share a WebAssembly memory between threads (wasm threads, SharedArrayBuffer). */
export function hasWasmThreads(): boolean {
  try {
    if (typeof SharedArrayBuffer !== 'function' || typeof Atomics !== 'object') return false;
    const m = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return m.buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

export interface PoolSetup {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** Export names the pool may call, by index. */
  names: readonly string[];
  /** Per worker: the top of its C stack and its TLS block (byte offsets in `memory`). */
  blocks: ReadonlyArray<{ stack: number; tls: number }>;
  /**
   * Start the workers at the first dispatch, not here (default false). A worker is a Node
   * environment of its own, about 10 MB of RSS (bench/rssBreakdown.ts): a session whose cost
   * model splits no call never pays it. With `local` (the calling instance's exports, in `names`
   * order), a pool whose workers fail to start runs their slices on the calling thread instead.
   */
  lazy?: boolean;
  local?: ReadonlyArray<(...args: number[]) => unknown>;
}

/** Worker threads that call exports of a shared-memory module on request. */
export class ThreadPool {
  /** Worker count (the main thread is one more thread). */
  readonly size: number;
  private readonly ctl: Int32Array;
  private workers: Worker[] = [];
  private closed = false;
  private readonly setup: PoolSetup;
  /** Why the workers of a lazy pool with `local` did not start (its slices then run on the caller). */
  private failed: Error | undefined;

  constructor(setup: PoolSetup) {
    this.setup = setup;
    this.size = setup.blocks.length;
    this.ctl = new Int32Array(new SharedArrayBuffer(4 * (SLOT0 + this.size * SLOT)));
    for (let w = 0; w < this.size; w++) this.ctl[SLOT0 + w * SLOT] = -1;
    if (!setup.lazy) this.start();
  }

  /** Whether the worker threads are running (a lazy pool starts them at its first dispatch). */
  get started(): boolean {
    return this.workers.length > 0;
  }

  private start(): void {
    const setup = this.setup;
    const started: Worker[] = [];
    try {
      setup.blocks.forEach((blk, index) => started.push(this.startWorker(blk, index)));
    } catch (e) {
      for (const w of started) void w.terminate();
      throw new ThreadPoolError(`worker threads did not start (${e instanceof Error ? e.message : String(e)})`, { cause: e });
    }
    this.workers = started;
    // Workers start on their own threads; wait (bounded) until every one has its instance.
    const deadline = Date.now() + 30_000;
    for (let r = Atomics.load(this.ctl, READY); r < this.size; r = Atomics.load(this.ctl, READY)) {
      if (Atomics.load(this.ctl, ERROR) === 1 || Date.now() > deadline) {
        for (const w of this.workers) void w.terminate();
        this.workers = [];
        Atomics.store(this.ctl, ERROR, 0);
        throw new ThreadPoolError(`${this.size - r} of ${this.size} worker threads did not start`);
      }
      Atomics.wait(this.ctl, READY, r, 50);
    }
  }

  private startWorker(blk: { stack: number; tls: number }, index: number): Worker {
    const setup = this.setup;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // No loaders or flags of the parent (e.g. --import tsx): the worker's code is plain CommonJS.
      execArgv: [],
      workerData: { module: setup.module, memory: setup.memory, control: this.ctl.buffer, index, stack: blk.stack, tls: blk.tls, names: setup.names },
    });
    // A process that never closes its session still exits: the workers do not keep it alive.
    worker.unref();
    worker.on('error', () => Atomics.store(this.ctl, ERROR, 1));
    return worker;
  }

  /** Sets worker w's next call: export `fn` (index into names; -1 idles it) with i32 arguments. */
  set(w: number, fn: number, a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, a8 = 0, a9 = 0, a10 = 0,
    a11 = 0, a12 = 0, a13 = 0, a14 = 0, a15 = 0, a16 = 0, a17 = 0, a18 = 0, a19 = 0, a20 = 0, a21 = 0): void {
    const c = this.ctl, b = SLOT0 + w * SLOT;
    c[b] = fn;
    c[b + 1] = a0; c[b + 2] = a1; c[b + 3] = a2; c[b + 4] = a3; c[b + 5] = a4; c[b + 6] = a5; c[b + 7] = a6;
    c[b + 8] = a7; c[b + 9] = a8; c[b + 10] = a9; c[b + 11] = a10; c[b + 12] = a11; c[b + 13] = a12;
    c[b + 14] = a13; c[b + 15] = a14; c[b + 16] = a15; c[b + 17] = a16; c[b + 18] = a17; c[b + 19] = a18;
    c[b + 20] = a19; c[b + 21] = a20; c[b + 22] = a21;
  }

  /** Marks workers from..size-1 idle for the next dispatch. */
  idleFrom(from: number): void {
    for (let w = from; w < this.size; w++) this.ctl[SLOT0 + w * SLOT] = -1;
  }

  /** Wakes every worker on its slot; `own` runs the main thread's part meanwhile; returns when all are done. */
  dispatch(own: () => void): void {
    if (this.closed) throw new ThreadPoolError('the thread pool is closed');
    if (this.workers.length === 0 && !this.failed) {
      try {
        this.start();
      } catch (e) {
        if (!this.setup.local) throw e;
        this.failed = e as Error;
      }
    }
    if (this.failed) return this.runHere(own);
    const c = this.ctl;
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    let failure: unknown;
    try {
      own();
    } catch (e) {
      failure = e;
    }
    let d = Atomics.load(c, DONE);
    const spin = Atomics.load(c, SPINUS);
    if (d < this.size && spin > 0) {
      // Polls a few times longer than a worker does: the caller's own wake-up costs as much.
      const end = performance.now() + (8 * spin) / 1000;
      for (let s = 1; d < this.size; s++) {
        d = Atomics.load(c, DONE);
        if (s % POLLS === 0 && performance.now() > end) break;
      }
    }
    while (d < this.size) {
      // Bounded waits: a worker that died (terminated from outside) must not hang the caller.
      if (Atomics.wait(c, DONE, d, 10_000) === 'timed-out' && Atomics.load(c, DONE) === d) {
        throw new ThreadPoolError(`worker threads stopped answering (${d} of ${this.size} done)`);
      }
      d = Atomics.load(c, DONE);
    }
    if (failure !== undefined) throw failure;
    if (Atomics.exchange(c, ERROR, 0) === 1) throw new ThreadPoolError('a worker thread failed in a kernel');
  }

  /**
   * A dispatch without workers: every slot's call, then `own`, on the calling thread (slices never
   * overlap). Only where the workers could not start; it allocates its argument lists.
   */
  private runHere(own: () => void): void {
    const c = this.ctl;
    for (let w = 0; w < this.size; w++) {
      const b = SLOT0 + w * SLOT;
      const f = c[b]!;
      if (f < 0) continue;
      const args = Array.from(c.subarray(b + 1, b + 1 + ARGS));
      this.setup.local![f]!(...args);
    }
    own();
  }

  /** Ends the workers (idempotent); resolves when every thread has exited. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    if (this.workers.length === 0) return Promise.resolve();
    Atomics.store(this.ctl, STOP, 1);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    return Promise.all(this.workers.map((w) => w.terminate())).then(() => undefined);
  }

  /** Thread ids of the live workers (tests check that close() ends them). */
  get threadIds(): number[] {
    return this.workers.map((w) => w.threadId);
  }
}
