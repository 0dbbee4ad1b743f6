// An inference session. prepare validates every node and resolves its weights once. Each batch
// size gets one arena, laid out by a memory plan (docs/FORMAT.md section 7): the file's "node"
// plan when it checks, else one the session makes itself (planNotes says which). Every layer is
// bound once to its input, output and scratch views in that arena; after that warm-up a call
// copies the inputs in, runs the bound layers, and allocates nothing (runInto), or copies the
// outputs into arrays the caller owns (run, runBatch).
//
// With the wasm backend the arena lives in the module's linear memory, so kernels read and write
// it where it is. Growing that memory detaches views, so a session re-binds when it sees a new
// buffer (a step of warm-up, not per call).
import { tensorToFloat32 } from './format/dtype.js';
import { FlmError } from './format/errors.js';
import { numel, type Model, type Tensor } from './ir.js';
import { defaultBackend, hasWasmThreads, referenceBackend, wasmBackendSync, type ArenaMemory, type KernelBackend } from './kernels/backend.js';
import { LAYER_KINDS, LayerError, type BoundRun, type PreparedLayer, type Weight } from './layers/index.js';
import { checkPlan } from './plan/check.js';
import { planArena } from './plan/planner.js';
import { atBatch, nodeProfile, nodeScratchFloats } from './plan/profiles.js';
import { inferShapes, type InferredShapes } from './plan/shapes.js';
import type { ArenaPlan, PlanStrategy } from './format/planTypes.js';

export class SessionError extends Error {
  constructor(readonly code: 'SESSION_BAD_MODEL' | 'SESSION_BAD_INPUT', message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface SessionOptions {
  /** Kernels to run on; default: defaultBackend() (the reference until initKernels() runs). */
  backend?: KernelBackend;
  /**
   * Let the backend keep its own copy of every weight, and put the arenas in the backend's memory
   * (default true). Turn it off for short-lived sessions, e.g. the converter's probes, so that
   * copies do not pile up in the backend: the arenas are then plain ArrayBuffers.
   */
  retainWeights?: boolean;
  /** Use the file's stored "node" plans when they check (default true). */
  useStoredPlans?: boolean;
  /**
   * Most threads a kernel call may use (runtime/cost/threads.ts picks per call, up to this).
   * Above 1 on the wasm backend, the session starts its own threaded kernels (kernels-mt.wasm and
   * threads - 1 workers) unless `backend` is threaded already; close() ends them. Default: 1, or
   * all of a threaded `backend`'s threads. Ignored (1) where WebAssembly threads are unavailable.
   */
  threads?: number;
  /**
   * How a node that the cost model splits gets its threads (default 'measure'): at warm-up each
   * such node is timed on one thread and split, alternately, and keeps the faster (a dispatch
   * costs a wake-up whose price depends on the machine and its load, which no fixed threshold
   * knows); 'model' takes the cost model's split as it is (tests of the split itself).
   */
  threadChoice?: 'measure' | 'model';
}

/** A node's warm-up timing on one thread and split (µs, fastest of a few alternating runs). */
export interface ThreadTiming {
  node: number;
  /** Threads the cost model gave its calls. */
  split: number;
  oneUs: number;
  splitUs: number;
}

/** Which plan an arena follows. */
export interface ArenaInfo {
  batch: number;
  /** "stored": the file's plan (checked at load); "planned": made by this session. */
  source: 'stored' | 'planned';
  arenaBytes: number;
  peakScratchBytes: number;
  plan: ArenaPlan;
  /**
   * Per node: the most threads its kernel calls take at this batch (1: single-threaded), chosen
   * at warm-up; each run caps every node at its entry.
   */
  threads: number[];
  /** The nodes the cost model split, timed both ways at warm-up (threadChoice 'measure'). */
  threadTimings: ThreadTiming[];
}

interface BoundArena {
  info: ArenaInfo;
  shapes: InferredShapes;
  mem: ArenaMemory;
  /** The buffer the views below were made on. */
  buffer: ArrayBuffer | undefined;
  /** Per value: its view in the arena (made by bind). */
  values: Map<string, Tensor>;
  runs: BoundRun[];
  inputs: Tensor[];
  outputs: Tensor[];
  /** Warmed up: info.threads holds each node's threads (else every call takes the cost model's). */
  warm: boolean;
}

const EMPTY = new Float32Array(0);
/** What a session holds in its backend: arenas, and the arrays it retained (one entry per retain). */
interface Held {
  kernels: KernelBackend;
  mems: ArenaMemory[];
  retained: Float32Array[];
  /** Threaded kernels the session started itself: their workers end with the session. */
  own?: KernelBackend;
}
function releaseHeld(h: Held): void {
  for (const m of h.mems) m.release();
  h.mems.length = 0;
  for (const d of h.retained) h.kernels.unretain(d);
  h.retained.length = 0;
}
// A session dropped without close() ends its own workers when it is collected.
const releaser = new FinalizationRegistry<Held>((h) => {
  releaseHeld(h);
  void h.own?.threads?.close();
});

export class Session {
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputShapes: number[][];
  readonly kernels: KernelBackend;
  /** One line per decision about plans: a stored plan rejected, an arena planned by the session. */
  readonly planNotes: string[] = [];
  private readonly model: Model;
  private readonly prepared: PreparedLayer[];
  /** Stored tensors used as constant operands (e.g. a bias added by an `add` node). */
  private readonly constants = new Map<string, Tensor>();
  private readonly storedPlans: ArenaPlan[] = [];
  private readonly arenas = new Map<number | string, BoundArena>();
  private readonly mems: ArenaMemory[] = [];
  private readonly held: Held;
  private readonly inHeap: boolean;
  /** The `threads` cap, set on a threaded backend before each run (backends are shared). */
  readonly threadCap: number;
  private readonly threadChoice: 'measure' | 'model';
  /** True when some graph input has a free dimension besides the leading one (arenas keyed by shape). */
  private readonly freeInner: boolean;

  private constructor(model: Model, opts: SessionOptions) {
    const { graph, tensors } = model;
    this.model = model;
    this.inputNames = graph.inputs.map((i) => i.name);
    this.inputShapes = graph.inputs.map((i) => [...i.shape]);
    this.outputNames = [...graph.outputs];
    this.freeInner = graph.inputs.some((i) => i.shape.some((d, k) => k > 0 && d < 0));
    let kernels = opts.backend ?? defaultBackend();
    let own: KernelBackend | undefined;
    const want = Math.max(1, Math.floor(opts.threads ?? 1));
    let threadNote: string | undefined;
    if (want > 1 && !kernels.threads && kernels.name === 'wasm-simd' && hasWasmThreads()) {
      try {
        kernels = own = wasmBackendSync({ threads: want });
      } catch (e) {
        // No threaded module (a bundle without kernels-mt.wasm), no room, workers that did not start: one thread.
        threadNote = `threads ${want}: the threaded kernels did not start (${e instanceof Error ? e.message : String(e)}); running on one thread`;
      }
    }
    this.kernels = kernels;
    const maxThreads = kernels.threads?.maxThreads() ?? 1;
    this.threadCap = Math.min(opts.threads === undefined ? maxThreads : want, maxThreads);
    this.threadChoice = opts.threadChoice ?? 'measure';
    if (threadNote) this.planNotes.push(threadNote);
    const retain = opts.retainWeights ?? true;
    this.inHeap = !retain;
    const held: Held = (this.held = { kernels, mems: this.mems, retained: [], ...(own ? { own } : {}) });
    const keep = (data: Float32Array) => {
      kernels.retain(data);
      held.retained.push(data);
    };
    const f32 = new Map<string, Weight>();
    const resolve = (name: string): Weight | undefined => {
      const hit = f32.get(name);
      if (hit) return hit;
      const t = tensors.get(name);
      if (!t) return undefined;
      // Factors and small dense tensors only: f16/int8 are widened once here, f32 stays a view.
      const w = { data: tensorToFloat32(t), shape: [...t.shape] };
      if (retain) keep(w.data);
      f32.set(name, w);
      return w;
    };
    // A model refused half-way through prepare gives back what it had retained so far.
    try {
      const known = new Set(this.inputNames);
      this.prepared = graph.nodes.map((node) => {
        const kind = LAYER_KINDS.get(node.op);
        if (!kind) throw new SessionError('SESSION_BAD_MODEL', `node ${node.name}: unknown op ${node.op}`);
        for (const inp of node.inputs) {
          if (!known.has(inp)) {
            const c = resolve(inp);
            if (!c) throw new SessionError('SESSION_BAD_MODEL', `node ${node.name}: input ${inp} is neither a value nor a stored tensor`);
            this.constants.set(inp, c);
          }
        }
        if (node.outputs.length !== 1) throw new SessionError('SESSION_BAD_MODEL', `node ${node.name}: ${node.outputs.length} outputs, every kind has one`);
        for (const o of node.outputs) known.add(o);
        const ctx = {
          kernels,
          retain: (data: Float32Array) => {
            if (retain) keep(data);
          },
          optionalWeight: (role: string) => {
            const name = node.weights[role];
            if (name === undefined) return undefined;
            const w = resolve(name);
            if (!w) throw new LayerError(node, `weight ${role} names missing tensor ${name}`);
            return w;
          },
          weight: (role: string) => {
            const w = ctx.optionalWeight(role);
            if (!w) throw new LayerError(node, `missing weight ${role}`);
            return w;
          },
        };
        return kind.prepare(node, ctx);
      });
      for (const o of this.outputNames) {
        if (!known.has(o)) throw new SessionError('SESSION_BAD_MODEL', `graph output ${o} is never produced`);
      }
      // Stored plans are checked at load against this runtime's kernels; a bad one is dropped.
      if (opts.useStoredPlans ?? true) {
        for (const plan of model.memoryPlan?.plans ?? []) {
          if (plan.profile !== 'node') continue;
          try {
            checkPlan(model, plan, atBatch(nodeProfile, plan.batch));
            this.storedPlans.push(plan);
          } catch (e) {
            if (!(e instanceof FlmError)) throw e;
            this.planNotes.push(`stored node plan at batch ${plan.batch} rejected (${e.message}); the session plans for itself`);
          }
        }
      }
    } catch (e) {
      releaseHeld(held);
      void own?.threads?.close();
      throw e;
    }
    releaser.register(this, held, this);
  }

  static create(model: Model, opts: SessionOptions = {}): Session {
    return new Session(model, opts);
  }

  /** The arenas made so far, one per batch size (or input shape). */
  arenaInfo(): ArenaInfo[] {
    return [...this.arenas.values()].map((a) => a.info);
  }

  /**
   * Gives back everything the session took from its backend: the arenas and the retained weights
   * (and arrays its layers derived from them). Idempotent. A later call still works: it makes a
   * new arena, and the kernels copy the weights in per call as they do for any unretained operand.
   */
  dispose(): void {
    releaseHeld(this.held);
    this.arenas.clear();
    if (!this.held.own) releaser.unregister(this);
  }

  /**
   * dispose(), and ends the worker threads the session started for `threads` (resolves when they
   * have exited). Idempotent; later calls run single-threaded.
   */
  async close(): Promise<void> {
    this.dispose();
    releaser.unregister(this);
    await this.held.own?.threads?.close();
  }

  /** The arena for these input shapes, made (planned, allocated, bound) on first use. */
  private arenaFor(shapes: readonly (readonly number[])[]): BoundArena {
    const batch = shapes[0]?.[0] ?? 1;
    const key: number | string = this.freeInner ? shapes.map((s) => s.join('x')).join(',') : batch;
    let a = this.arenas.get(key);
    if (!a) {
      a = this.makeArena(batch, shapes.map((s) => [...s]));
      this.arenas.set(key, a);
    }
    if (a.buffer !== a.mem.buffer()) this.bind(a);
    return a;
  }

  private makeArena(batch: number, inputShapes: number[][]): BoundArena {
    let shapes: InferredShapes;
    try {
      shapes = inferShapes(this.model, batch, inputShapes);
    } catch (e) {
      throw new SessionError('SESSION_BAD_MODEL', e instanceof Error ? e.message.replace(/^FLM_MEMORY_PLAN: /, '') : String(e), { cause: e });
    }
    let plan: ArenaPlan | undefined;
    let source: ArenaInfo['source'] = 'stored';
    // The smallest stored plan with batch >= this one whose buffers hold these shapes.
    const candidates = this.freeInner ? [] : this.storedPlans.filter((p) => p.batch >= batch).sort((x, y) => x.batch - y.batch);
    for (const p of candidates) {
      if (this.fits(p, shapes)) {
        plan = p;
        break;
      }
    }
    if (!plan) {
      source = 'planned';
      plan = planArena(this.model, atBatch(nodeProfile, batch), inputShapes);
      this.planNotes.push(`batch ${batch}: no stored node plan fits; planned an arena of ${plan.arena} bytes`);
    }
    const mem = this.inHeap ? referenceBackend.allocArena(plan.arena) : this.kernels.allocArena(plan.arena);
    // Only memory to be given back goes into `held`. The finalization registry keeps a held value
    // alive until its callback runs, and that waits for the event loop: during synchronous work
    // (a whole compression creating a session per trial) every heap arena recorded there would
    // outlive its session, about 50 MB each for a small CNN at batch 256.
    if (!mem.collected) this.mems.push(mem);
    const a: BoundArena = {
      info: { batch, source, arenaBytes: plan.arena, peakScratchBytes: plan.peak_scratch, plan, threads: this.model.graph.nodes.map(() => 1), threadTimings: [] },
      shapes, mem, buffer: undefined, values: new Map(), runs: [], inputs: [], outputs: [], warm: false,
    };
    this.bind(a);
    if (!this.inHeap && this.kernels !== referenceBackend) this.warmUp(a);
    return a;
  }

  /**
   * One run on whatever the arena holds, so that kernels stage (and grow the backend's memory)
   * now rather than in a caller's run: growth in the middle of a node would leave that node's
   * views detached. Repeats, re-binding, until a run leaves the memory as it found it.
   */
  private warmUp(a: BoundArena): void {
    const th = this.kernels.threads;
    th?.setThreadCap(this.threadCap);
    for (let tries = 0; tries < 8; tries++) {
      const before = a.mem.buffer();
      try {
        for (let k = 0; k < a.runs.length; k++) {
          if (a.mem.buffer() !== before) break;
          th?.resetThreadsUsed();
          a.runs[k]!();
          if (th) a.info.threads[k] = th.threadsUsed();
        }
      } catch (e) {
        if (a.mem.buffer() === before) throw e;
      }
      if (a.mem.buffer() === before) {
        if (th && this.threadChoice === 'measure') this.chooseThreads(a);
        a.warm = true;
        return;
      }
      this.bind(a);
    }
  }

  /** Alternating runs per split node at warm-up: one thread, then its split. */
  private static readonly THREAD_TRIALS = 5;

  /**
   * Times every node the cost model split, on one thread and split, alternately (fastest of
   * THREAD_TRIALS each, after one untimed run each), and keeps one thread where the split is not
   * at least 5% faster. Runs nodes again on what the arena holds (as warmUp does): a node that
   * splits (a convolution or product) never writes its own input, so its inputs stay as they were.
   */
  private chooseThreads(a: BoundArena): void {
    const th = this.kernels.threads!;
    const buffer = a.mem.buffer();
    for (let k = 0; k < a.runs.length; k++) {
      const split = a.info.threads[k]!;
      if (split <= 1) continue;
      let one = Infinity, many = Infinity;
      for (let r = 0; r <= Session.THREAD_TRIALS; r++) {
        for (const cap of [1, split]) {
          th.setThreadCap(cap);
          const t0 = performance.now();
          a.runs[k]!();
          const us = (performance.now() - t0) * 1000;
          if (r === 0) continue;
          if (cap === 1) one = Math.min(one, us);
          else many = Math.min(many, us);
        }
      }
      th.setThreadCap(this.threadCap);
      if (a.mem.buffer() !== buffer) return;  // memory grew (cannot in a warm arena): keep the cost model's split
      a.info.threadTimings.push({ node: k, split, oneUs: one, splitUs: many });
      if (!(many < 0.95 * one)) a.info.threads[k] = 1;
    }
  }

  /** Whether a plan made for a batch >= this one has room for these shapes (values and scratch). */
  private fits(plan: ArenaPlan, shapes: InferredShapes): boolean {
    for (const v of plan.values) if (numel(shapes.values.get(v.name) ?? [Infinity]) * 4 > v.bytes) return false;
    const scratch = new Map(plan.scratch.map((s) => [s.node, s.bytes]));
    return this.model.graph.nodes.every((node, k) => {
      const s = shapes.nodes[k]!;
      const st = plan.strategy?.find((e) => e.node === k);
      return nodeScratchFloats(node, s.inputs, s.output, this.model, st) * 4 <= (scratch.get(k) ?? 0);
    });
  }

  /** Makes every view on the arena's current buffer and binds every layer to them. */
  private bind(a: BoundArena): void {
    for (const s of a.info.plan.strategy ?? []) this.prepared[s.node]?.prepareStrategy?.(s);
    const buffer = a.mem.buffer();
    const base = a.mem.byteOffset;
    const { plan, shapes } = { plan: a.info.plan, shapes: a.shapes };
    a.values.clear();
    for (const v of plan.values) {
      const shape = shapes.values.get(v.name)!;
      a.values.set(v.name, { shape, data: new Float32Array(buffer, base + v.offset, numel(shape)) });
    }
    const scratch = new Map(plan.scratch.map((s) => [s.node, s]));
    const strategies = new Map<number, PlanStrategy>((plan.strategy ?? []).map((s) => [s.node, s]));
    a.runs = this.model.graph.nodes.map((node, k) => {
      const inputs = node.inputs.map((name) => a.values.get(name) ?? this.constants.get(name)!);
      const out = a.values.get(node.outputs[0]!)!;
      const s = scratch.get(k);
      const view = s ? new Float32Array(buffer, base + s.offset, Math.floor(s.bytes / 4)) : EMPTY;
      return this.prepared[k]!.bind(inputs, out, view, strategies.get(k));
    });
    a.inputs = this.inputNames.map((n) => a.values.get(n)!);
    a.outputs = this.outputNames.map((n) => a.values.get(n)!);
    a.buffer = buffer;
    // Binding must not grow the backend's memory; if it did, the views above are stale.
    if (a.mem.buffer() !== buffer) throw new SessionError('SESSION_BAD_MODEL', 'kernel memory grew while binding layers');
  }

  private checkFeed(name: string, i: number, t: Tensor | undefined): Tensor {
    if (!t) throw new SessionError('SESSION_BAD_INPUT', `missing input ${name}`);
    const want = this.inputShapes[i]!;
    const ok = t.shape.length === want.length && want.every((d, k) => d === -1 || d === t.shape[k]);
    if (!ok) {
      // Only the batch differs from a fixed one: the graph mixes its samples (else the importer
      // would have freed that axis), so say where the fixed batch comes from.
      const batchOnly = t.shape.length === want.length && want[0]! > 0 && want.every((d, k) => k === 0 || d === -1 || d === t.shape[k]);
      const why = batchOnly ? ` (the model fixes its batch at ${want[0]}: export it with a dynamic batch axis, e.g. torch.onnx.export(..., dynamic_axes={'${name}': {0: 'batch'}}))` : '';
      throw new SessionError('SESSION_BAD_INPUT', `input ${name} has shape [${t.shape}], expected [${want.map((d) => (d < 0 ? 'N' : d))}]${why}`);
    }
    if (t.data.length !== numel(t.shape)) throw new SessionError('SESSION_BAD_INPUT', `input ${name}: data length does not match shape`);
    if (t.shape.some((d) => d < 1)) throw new SessionError('SESSION_BAD_INPUT', `input ${name}: empty shape [${t.shape}]`);
    return t;
  }

  /** Runs every bound layer; `after` (calibration) sees each node's output right after it is written. */
  private exec(a: BoundArena, after?: (k: number) => void): void {
    const th = this.kernels.threads;
    th?.setThreadCap(this.threadCap);
    const runs = a.runs;
    const caps = a.warm ? a.info.threads : undefined;
    for (let k = 0; k < runs.length; k++) {
      // A kernel that staged an operand may have grown the backend's memory: views must follow.
      if (a.buffer !== a.mem.buffer()) this.bind(a);
      // Each node at the threads chosen at warm-up (never above the session's cap).
      if (th && caps) th.setThreadCap(caps[k]! < this.threadCap ? caps[k]! : this.threadCap);
      a.runs[k]!();
      if (after) after(k);
    }
  }

  /** Runs the graph; with `keepAll`, every intermediate value is copied out and returned too (calibration). */
  run(feeds: Record<string, Tensor>, keepAll = false): Record<string, Tensor> {
    const ins = this.inputNames.map((name, i) => this.checkFeed(name, i, feeds[name]));
    const a = this.arenaFor(ins.map((t) => t.shape));
    ins.forEach((t, i) => a.inputs[i]!.data.set(t.data));
    const result: Record<string, Tensor> = {};
    const copy = (t: Tensor): Tensor => ({ shape: [...t.shape], data: t.data.slice() });
    if (keepAll) {
      for (const name of this.inputNames) result[name] = copy(a.values.get(name)!);
      this.exec(a, (k) => {
        const name = this.model.graph.nodes[k]!.outputs[0]!;
        result[name] = copy(a.values.get(name)!);
      });
    } else {
      this.exec(a);
    }
    this.outputNames.forEach((name, i) => {
      if (!keepAll) result[name] = copy(a.outputs[i]!);
    });
    return result;
  }

  /**
   * Runs on `inputs` (one tensor per graph input, in inputNames order) and writes each graph output
   * into `outputs` (one array per output, at least as long as the output). After the first call
   * at a batch size it allocates nothing.
   */
  runInto(inputs: readonly Tensor[], outputs: readonly Float32Array[]): void {
    const names = this.inputNames;
    for (let i = 0; i < names.length; i++) this.checkFeed(names[i]!, i, inputs[i]);
    let a: BoundArena | undefined;
    if (!this.freeInner) {
      a = this.arenas.get(inputs[0]?.shape[0] ?? 1);
      if (a && a.buffer !== a.mem.buffer()) this.bind(a);
    }
    if (!a) a = this.arenaFor(inputs.map((t) => t.shape));
    for (let i = 0; i < names.length; i++) a.inputs[i]!.data.set(inputs[i]!.data);
    this.exec(a);
    for (let i = 0; i < a.outputs.length; i++) {
      const src = a.outputs[i]!.data;
      const dst = outputs[i];
      if (!dst || dst.length < src.length) throw new SessionError('SESSION_BAD_INPUT', `output ${this.outputNames[i]} needs ${src.length} floats`);
      dst.set(src);
    }
  }

  /** Output shapes for these input shapes (plans the arena for them if needed). */
  outputShapesFor(inputShapes: readonly (readonly number[])[]): number[][] {
    return this.arenaFor(inputShapes).outputs.map((t) => [...t.shape]);
  }

  /** Runs a single-input, single-output model on a batch. */
  runBatch(x: Tensor): Tensor {
    if (this.inputNames.length !== 1 || this.outputNames.length !== 1) {
      throw new SessionError('SESSION_BAD_INPUT', 'runBatch needs a model with one input and one output');
    }
    return this.run({ [this.inputNames[0]!]: x })[this.outputNames[0]!]!;
  }

  /**
   * Time per layer: runs the graph `repeats` times on these feeds, reading the clock between
   * layers, and gives each node's median milliseconds (sorted samples' middle) and its fastest run. Plain runs never
   * read the clock; this is the only place that does. `onNode(k)` runs right after node k's
   * clock reading (a profiler attributes what it recorded during the node to it).
   */
  layerTimes(feeds: Record<string, Tensor>, repeats = 20, onNode?: (k: number) => void): Array<{ node: number; name: string; op: string; ms: number; minMs: number }> {
    const ins = this.inputNames.map((name, i) => this.checkFeed(name, i, feeds[name]));
    const a = this.arenaFor(ins.map((t) => t.shape));
    const samples = this.model.graph.nodes.map(() => [] as number[]);
    for (let r = 0; r < Math.max(1, repeats); r++) {
      ins.forEach((t, i) => a.inputs[i]!.data.set(t.data));
      let t0 = performance.now();
      this.exec(a, (k) => {
        const t1 = performance.now();
        samples[k]!.push(t1 - t0);
        onNode?.(k);
        t0 = performance.now();
      });
    }
    return this.model.graph.nodes.map((node, k) => {
      const s = samples[k]!.sort((x, y) => x - y);
      return { node: k, name: node.name, op: node.op, ms: s[Math.floor(s.length / 2)]!, minMs: s[0]! };
    });
  }
}
