// A short measured autotune: for each factor node of a model and each batch size, time the two
// products with the real kernels (the layer kind's contraction, and the rebuild product bound
// exactly as the session binds it, runtime/exec/), next to the cost model's prediction. The result is the per-node
// strategy list a memory plan can store (docs/FORMAT.md section 7): which product to use and
// the tile rows.
import { tensorToFloat32 } from '../format/dtype.js';
import { FACTOR_OPS, numel, type GraphNode, type Model, type Tensor } from '../ir.js';
import type { KernelBackend } from '../kernels/backend.js';
import { LAYER_KINDS, LayerError, type Weight } from '../layers/index.js';
import { inferShapes } from '../plan/shapes.js';
import { estimate, shapesOf, type CostEstimate, type Machine } from './model.js';
import { prepareRebuild } from '../exec/rebuild.js';
import { prepareTiled, type FactorContext } from '../exec/tiled.js';

export interface StrategyEntry {
  /** Node name. */
  node: string;
  op: string;
  batch: number;
  /** The product to run: the cost model's choice. */
  use: 'contract' | 'rebuild';
  /** Rows per rebuild tile. */
  rows: number;
  predicted_us: { contract: number; rebuild: number; best_order?: number; layer_order?: number };
  measured_us: { contract: number; rebuild: number };
  /** The faster product by measurement, and whether the model's `use` is it. */
  measured_best: 'contract' | 'rebuild';
  agree: boolean;
  /** Largest |difference| between the two products' outputs, relative to the largest |output|. */
  max_rel_diff: number;
  scratch_bytes: number;
  /** TT / TR / TTL: the cheapest modelled contraction order. */
  best_order?: string[];
}

export interface AutotuneOptions {
  batches: number[];
  backend: KernelBackend;
  machine: Machine;
  /** Minimum measured time per product and batch, ms (default 40). */
  minMs?: number;
  /** Minimum timed calls per product and batch (default 5). */
  minCalls?: number;
  tileBytes?: number;
  log?: (line: string) => void;
}

export interface AutotuneResult {
  machine: Machine;
  entries: StrategyEntry[];
  estimates: CostEstimate[];
}

let seed = 20240601;
function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
}
function randomTensor(shape: number[]): Tensor {
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = rand();
  return { shape, data };
}

/** Median time of one call, in microseconds, after two warm-up calls. */
export function timeCall(fn: () => void, minMs = 40, minCalls = 5): number {
  fn();
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minCalls || performance.now() - start < minMs) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
    if (times.length >= 10000) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]! * 1000;
}

/**
 * Measures the machine constants of the cost model on `backend`: the best of `rounds` rounds of
 * measurements (a shared machine's load only ever makes a measurement slower). About a second a round.
 */
export function measureMachine(backend: KernelBackend, minMs = 60, rounds = 3): Machine {
  let best: Machine | undefined;
  for (let i = 0; i < Math.max(1, rounds); i++) {
    const m = measureOnce(backend, minMs);
    best = best ? {
      backend: m.backend,
      gemmGflopsLarge: Math.max(best.gemmGflopsLarge, m.gemmGflopsLarge),
      gemmGflopsSmall: Math.max(best.gemmGflopsSmall, m.gemmGflopsSmall),
      scalarGflops: Math.max(best.scalarGflops, m.scalarGflops),
      bandwidthGBs: Math.max(best.bandwidthGBs, m.bandwidthGBs),
      gatherGBs: Math.max(best.gatherGBs, m.gatherGBs),
      callUs: Math.min(best.callUs, m.callUs),
    } : m;
  }
  return best!;
}

function measureOnce(backend: KernelBackend, minMs: number): Machine {
  const r = (n: number) => randomTensor([n]).data;
  // Per-call overhead: a 4x4x4 product.
  const a4 = r(16), b4 = r(16), o4 = new Float32Array(16);
  const callUs = timeCall(() => backend.gemmNT(a4, b4, 4, 4, 4, undefined, o4), minMs, 50);
  // Large GEMM: 192^3 with the weight retained, as a layer's would be.
  const n = 192;
  const A = r(n * n), Bm = r(n * n), O = new Float32Array(n * n);
  backend.retain(Bm);
  const tLarge = timeCall(() => backend.gemmNT(A, Bm, n, n, n, undefined, O), minMs);
  const gemmGflopsLarge = (2 * n * n * n) / (Math.max(tLarge - callUs, 1e-3) * 1e3);
  // Matrix-vector: one row against a retained 512 x 512 weight.
  const k = 512;
  const x = r(k), W = r(k * k), y = new Float32Array(k);
  backend.retain(W);
  const tSmall = timeCall(() => backend.gemmNT(x, W, 1, k, k, undefined, y), minMs);
  const gemmGflopsSmall = (2 * k * k) / (Math.max(tSmall - callUs, 1e-3) * 1e3);
  // Copy bandwidth: 4 MiB of f32, read and written.
  const src = r(1 << 20), dst = new Float32Array(1 << 20);
  const tCopy = timeCall(() => dst.set(src), minMs);
  const bandwidthGBs = (2 * 4 * (1 << 20)) / (tCopy * 1e3);
  // im2col gather: a conv whose GEMM is small next to its column matrix, less the GEMM's modelled time.
  const [N, C, H, Wd, O2, kk] = [8, 20, 12, 12, 4, 5];
  const xs = r(N * C * H * Wd), wc = r(O2 * C * kk * kk);
  backend.retain(wc);
  const P = (H - kk + 1) * (Wd - kk + 1);
  const conv = { strides: [1, 1] as [number, number], pads: [0, 0, 0, 0] as [number, number, number, number], dilations: [1, 1] as [number, number], group: 1 };
  const tConv = timeCall(() => backend.conv2d(xs, [N, C, H, Wd], wc, [O2, C, kk, kk], undefined, conv), minMs);
  const colBytes = 4 * N * C * kk * kk * P;
  const gemmUs = (2 * N * O2 * C * kk * kk * P) / (gemmGflopsLarge * 1e3) + (4 * (N * C * H * Wd + N * O2 * P)) / (20 * 1e3);
  const gatherGBs = colBytes / (Math.max(tConv - callUs - gemmUs, tConv / 10) * 1e3);
  // Plain TypeScript loops: the SVD rebuild of a 256 x 256 weight at rank 32.
  const rows = 256, rank = 32;
  const u = { shape: [rows, rank], data: r(rows * rank) };
  const v = { shape: [rank, rows], data: r(rank * rows) };
  const node: GraphNode = { name: 'probe', op: 'svd_dense', inputs: [], outputs: [], attrs: {}, weights: { u: 'u', v: 'v' } };
  const rb = prepareRebuild(node, (role) => (role === 'u' ? u : role === 'v' ? v : undefined));
  const tile = new Float32Array(rows * rows);
  const tRb = timeCall(() => rb.rowsInto(0, rows, tile), minMs);
  const scalarGflops = rb.flops(0, rows) / (tRb * 1e3);
  for (const w of [Bm, W, wc]) backend.unretain(w);
  return { backend: backend.name, gemmGflopsLarge, gemmGflopsSmall, scalarGflops, bandwidthGBs, gatherGBs, callUs };
}

/** A layer context over a model's stored tensors (f16 / int8 widened once), on `backend`. */
export function contextFor(model: Model, node: GraphNode, backend: KernelBackend, cache = new Map<string, Weight>()): FactorContext & { retain(data: Float32Array): void } {
  const ctx: FactorContext & { retain(data: Float32Array): void } = {
    kernels: backend,
    retain: (data) => backend.retain(data),
    optionalWeight(role) {
      const name = node.weights[role];
      if (name === undefined) return undefined;
      const hit = cache.get(name);
      if (hit) return hit;
      const t = model.tensors.get(name);
      if (!t) throw new LayerError(node, `weight ${role} names missing tensor ${name}`);
      const w = { data: tensorToFloat32(t), shape: [...t.shape] };
      backend.retain(w.data);
      cache.set(name, w);
      return w;
    },
    weight(role) {
      const w = ctx.optionalWeight(role);
      if (!w) throw new LayerError(node, `missing weight ${role}`);
      return w;
    },
  };
  return ctx;
}

/**
 * The layer kind's own product (the contraction) as a call that returns the output. Works with a
 * kind whose prepare() returns the run function, and with one whose prepare() returns a layer to
 * bind to an output and scratch buffer (the planned-arena contract).
 */
export function contractRunner(node: GraphNode, ctx: FactorContext & { retain(data: Float32Array): void }, x: Tensor, outShape: number[], index = 0): () => Tensor {
  const kind = LAYER_KINDS.get(node.op)!;
  const prepared: unknown = kind.prepare(node, ctx as never);
  if (typeof prepared === 'function') return () => (prepared as (inputs: Tensor[]) => Tensor)([x]);
  const layer = prepared as { bind(inputs: Tensor[], output: Tensor, scratch: Float32Array, strategy?: unknown): () => void };
  const sized = kind as unknown as { scratchFloats?: (...args: unknown[]) => number };
  const weightShape = (role: string) => {
    const w = ctx.optionalWeight(role);
    return w ? [...w.shape] : undefined;
  };
  const strategy = { node: index, use: 'contract', rows: 0 };
  const floats = sized.scratchFloats?.(node, [x.shape], outShape, weightShape, strategy) ?? 0;
  const y = { shape: outShape, data: new Float32Array(numel(outShape)) };
  const bound = layer.bind([x], y, new Float32Array(floats), strategy);
  return () => {
    bound();
    return y;
  };
}

/** Per-sample input shape of every node's first input (shape inference at batch 1). */
export function inputShapes(model: Model): Map<string, number[]> {
  const inferred = inferShapes(model, 1);
  const out = new Map<string, number[]>();
  model.graph.nodes.forEach((n, i) => {
    const s = inferred.nodes[i]?.inputs[0];
    if (s) out.set(n.name, s.slice(1));
  });
  return out;
}

function maxRel(a: Float32Array, b: Float32Array): number {
  let scale = 1e-12;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d / scale;
}

/** Times both products of every factor node at every batch size; one entry per (node, batch). */
export function autotune(model: Model, opts: AutotuneOptions): AutotuneResult {
  const { backend, machine } = opts;
  const samples = inputShapes(model);
  const cache = new Map<string, Weight>();
  const entries: StrategyEntry[] = [];
  const estimates: CostEstimate[] = [];
  const factorNodes = model.graph.nodes.filter((n) => FACTOR_OPS.has(n.op));
  for (const node of factorNodes) {
    const sample = samples.get(node.name);
    if (!sample) throw new Error(`autotune: no input shape for node ${node.name}`);
    const ctx = contextFor(model, node, backend, cache);
    const shapes = shapesOf(node, (name) => model.tensors.get(name)?.shape);
    for (const batch of opts.batches) {
      const est = estimate(node, shapes, batch, sample, { machine, ...(opts.tileBytes ? { tileBytes: opts.tileBytes } : {}) });
      estimates.push(est);
      const tiled = prepareTiled(node, ctx, est.tileRows);
      const x = randomTensor([batch, ...sample]);
      const yShape = tiled.outputShape(x.shape);
      const y = { shape: yShape, data: new Float32Array(numel(yShape)) };
      const scratch = new Float32Array(tiled.scratchFloats(x.shape));
      const contract = contractRunner(node, ctx, x, yShape, model.graph.nodes.indexOf(node));
      const yc = contract();
      const rebuild = tiled.bind(x, y, scratch);
      rebuild();
      const diff = maxRel(y.data, yc.data);
      const mc = timeCall(() => contract(), opts.minMs, opts.minCalls);
      const mr = timeCall(rebuild, opts.minMs, opts.minCalls);
      // A second pass of the first, so that neither side alone pays for a warming machine.
      const mc2 = timeCall(() => contract(), opts.minMs, opts.minCalls);
      const measured = { contract: Math.min(mc, mc2), rebuild: mr };
      const best = measured.rebuild < measured.contract ? 'rebuild' : 'contract';
      const e: StrategyEntry = {
        node: node.name, op: node.op, batch, use: est.use, rows: est.tileRows,
        predicted_us: {
          contract: est.contract.us, rebuild: est.rebuild.us,
          ...(est.orders?.[0] ? { best_order: est.orders[0].us } : {}),
          ...(est.layerOrder ? { layer_order: est.layerOrder.us } : {}),
        },
        measured_us: measured, measured_best: best, agree: best === est.use, max_rel_diff: diff,
        scratch_bytes: 4 * (tiled.scratchFloats(x.shape) + tiled.rebuilder.scratchFloats),
        ...(est.orders?.[0] ? { best_order: est.orders[0].order } : {}),
      };
      entries.push(e);
      opts.log?.(`${node.name} (${node.op}) batch ${batch}: predicted contract ${e.predicted_us.contract.toFixed(1)} us, rebuild ${e.predicted_us.rebuild.toFixed(1)} us -> ${e.use}; measured ${measured.contract.toFixed(1)} / ${measured.rebuild.toFixed(1)} us -> ${best}`);
    }
  }
  return { machine, entries, estimates };
}

/**
 * The plan's `strategy` list (docs/FORMAT.md section 7) for one batch size: node index, product,
 * and rows per tile ("rebuild") or 0 ("contract").
 */
export function toPlanStrategy(model: Model, entries: readonly StrategyEntry[], batch: number): Array<{ node: number; use: 'contract' | 'rebuild'; rows: number }> {
  const index = new Map(model.graph.nodes.map((n, i) => [n.name, i]));
  return entries
    .filter((e) => e.batch === batch)
    .map((e) => {
      const i = index.get(e.node);
      if (i === undefined) throw new Error(`autotune: node ${e.node} is not in the graph`);
      return { node: i, use: e.use, rows: e.use === 'rebuild' ? e.rows : 0 };
    });
}
