// Cost model: for one factor node, its factor shapes, a batch size and the per-sample input shape,
// estimate the time of
//   (a) contracting the input through the factors, as the layer kind runs it, and (TT / TR / TTL)
//       in every left-deep contraction order of the tensor network, FLOPs and bytes for each;
//   (b) rebuilding the weight one row tile at a time into a bounded scratch buffer
//       (runtime/exec/rebuilder.ts), then multiplying by each tile (runtime/exec/strategy.ts).
// A kind's own contraction is its `factor.contract` (runtime/layers/<kind>.ts); this file prices
// steps, searches contraction orders and counts the rebuild. It estimates only: nothing here runs.
// Each step is  calls x callUs + flops / rate + bytes / bandwidth,  with machine constants that
// runtime/cost/autotune.ts measures (GEMM GFLOP/s when the GEMM has >= 4 rows and when it is a
// matrix-vector product, plain TypeScript loop GFLOP/s, copy bandwidth, per-call overhead).
import { permutations } from '../exec/permutations.js';
import { prepareRebuild } from '../exec/rebuild.js';
import { rebuildScratch } from '../exec/strategy.js';
import { DEFAULT_TILE_BYTES, tileRowsFor } from '../exec/tiled.js';
import { numel, type GraphNode, type OpName } from '../ir.js';
import { convGeometry } from '../layers/convAttrs.js';
import type { FactorPart } from '../layers/kind.js';
import { LAYER_KINDS } from '../layers/registry.js';
import { CostError, rateOf, type Net, type Raw, type ShapeLookup, type Step } from './steps.js';

export { CostError } from './steps.js';
export type { Rate, ShapeLookup, Step } from './steps.js';

export interface Machine {
  /** Kernel backend these constants were measured on. */
  backend: string;
  /** GEMM GFLOP/s when the product has >= 4 rows (the register-blocked path). */
  gemmGflopsLarge: number;
  /** GEMM GFLOP/s for 1..3 rows (a matrix-vector product: bandwidth-bound). */
  gemmGflopsSmall: number;
  /** GFLOP/s of plain TypeScript loops (the rebuild, mode products, traces). */
  scalarGflops: number;
  /** GB/s of copying f32 arrays (operands into and out of the kernels' memory, staging). */
  bandwidthGBs: number;
  /** GB/s of the im2col gather a convolution does before its GEMM (bytes of the column matrix). */
  gatherGBs: number;
  /** Fixed cost of one kernel call, microseconds. */
  callUs: number;
}

/**
 * Constants of the wasm-simd backend as `measureMachine` (runtime/cost/autotune.ts) measured them,
 * rounded, on the project's 2-core AMD EPYC development machine (Node 20); used when no autotune
 * has run. Autotune measures its own.
 */
export const DEFAULT_MACHINE: Machine = {
  backend: 'wasm-simd', gemmGflopsLarge: 50, gemmGflopsSmall: 30, scalarGflops: 1, bandwidthGBs: 100, gatherGBs: 5, callUs: 1,
};

export interface PathEstimate {
  us: number;
  flops: number;
  bytes: number;
  steps: Step[];
}

export interface OrderEstimate {
  /** Tensors absorbed by the input, in order (x is first and implicit). */
  order: string[];
  flops: number;
  bytes: number;
  us: number;
}

export interface CostEstimate {
  node: string;
  op: OpName;
  batch: number;
  use: 'contract' | 'rebuild';
  /** Rows per rebuild tile. */
  tileRows: number;
  /** Scratch bytes of the rebuild path (tile + rebuild work buffers + staging). */
  scratchBytes: number;
  /** The contraction as the layer kind runs it. */
  contract: PathEstimate;
  rebuild: PathEstimate;
  /** TT / TR / TTL: every left-deep order, cheapest first (at most `maxOrders`). */
  orders?: OrderEstimate[];
  /** How many orders were searched. */
  ordersSearched?: number;
  /** The order the layer kind uses, with its modelled cost under the same network model. */
  layerOrder?: OrderEstimate;
}

export interface EstimateOptions {
  machine?: Machine;
  /** Bound on the rebuild tile in bytes (default 64 KiB). */
  tileBytes?: number;
  /** Force a tile size (rows). */
  tileRows?: number;
  /** Orders listed in the result (default 8); all are searched. */
  maxOrders?: number;
}

function stepUs(m: Machine, s: Omit<Step, 'us'>): number {
  const g = s.rate === 'gemm' ? m.gemmGflopsLarge : s.rate === 'gemv' ? m.gemmGflopsSmall : m.scalarGflops;
  return s.calls * m.callUs + s.flops / (g * (s.eff ?? 1) * 1e3) + s.bytes / (m.bandwidthGBs * 1e3) + (s.gather ?? 0) / (m.gatherGBs * 1e3);
}

function path(m: Machine, steps: Array<Omit<Step, 'us'>>): PathEstimate {
  const full = steps.map((s) => ({ ...s, us: stepUs(m, s) }));
  return {
    us: full.reduce((a, s) => a + s.us, 0),
    flops: full.reduce((a, s) => a + s.flops, 0),
    bytes: full.reduce((a, s) => a + s.bytes + (s.gather ?? 0), 0),
    steps: full,
  };
}

/** Prices steps on a machine (the converter's compute-aware rank search prices dense layers so). */
export function priceSteps(steps: Array<Omit<Step, 'us'>>, m: Machine = DEFAULT_MACHINE): PathEstimate {
  return path(m, steps);
}

// ---- contraction orders of a tensor network (TT / TR / TTL) --------------------------------


function orderCost(net: Net, order: string[], m: Machine): OrderEstimate {
  const byName = new Map(net.others.map((t) => [t.name, t]));
  const owners = new Map<string, number>();
  for (const t of [net.x, ...net.others]) for (const l of t.legs) owners.set(l, (owners.get(l) ?? 0) + 1);
  const seen = new Map<string, number>();
  let cur = new Set(net.x.legs);
  for (const l of net.x.legs) seen.set(l, (seen.get(l) ?? 0) + 1);
  const size = (legs: Iterable<string>) => {
    let s = 1;
    for (const l of legs) s *= net.sizes.get(l)!;
    return s;
  };
  let flops = 0;
  let bytes = 0;
  let us = 0;
  for (const name of order) {
    const t = byName.get(name)!;
    const union = new Set([...cur, ...t.legs]);
    for (const l of t.legs) seen.set(l, (seen.get(l) ?? 0) + 1);
    const result = new Set([...union].filter((l) => net.open.has(l) || seen.get(l)! < owners.get(l)!));
    const f = 2 * size(union);
    const b = 4 * (size(cur) + size(t.legs) + size(result));
    flops += f;
    bytes += b;
    us += stepUs(m, { what: name, flops: f, bytes: b, calls: 1, rate: 'gemm' });
    cur = result;
  }
  return { order, flops, bytes, us };
}

function searchOrders(net: Net, m: Machine, maxOrders: number): { orders: OrderEstimate[]; searched: number; layer: OrderEstimate } {
  const all: OrderEstimate[] = [];
  for (const p of permutations(net.others.map((t) => t.name))) all.push(orderCost(net, p, m));
  all.sort((a, b) => a.us - b.us || a.flops - b.flops);
  return { orders: all.slice(0, maxOrders), searched: all.length, layer: orderCost(net, net.layer, m) };
}

/** Zero-filled factors of the given shapes: a rebuilder only needs them to count its work. */
function shapeOnly(shapes: ShapeLookup) {
  return (role: string) => {
    const s = shapes(role);
    return s ? { shape: [...s], data: new Float32Array(numel(s)) } : undefined;
  };
}

/** The factor part of a node's kind; CostError for a kind that has none. */
function factorOf(node: GraphNode): FactorPart {
  const f = LAYER_KINDS.get(node.op)?.factor;
  if (!f) throw new CostError(node, 'not a factor kind');
  return f;
}

/** Kernel size of a conv factor kind from the factor that carries it; it must tile the columns. */
function kernelOf(node: GraphNode, factor: FactorPart, shapes: ShapeLookup, cols: number, C: number): [number, number] {
  const k = factor.kernel!(shapes);
  if (!k || k[0] * k[1] !== cols / C) throw new CostError(node, `kernel ${k ? `${k[0]}x${k[1]}` : '?'} does not match ${cols} columns over ${C} channels`);
  return k;
}

function rebuildSteps(node: GraphNode, factor: FactorPart, shapes: ShapeLookup, B: number, sample: readonly number[], tileBytes: number, forced?: number) {
  const rb = prepareRebuild(node, shapeOnly(shapes));
  const rows = rb.rows;
  const cols = rb.cols;
  const T = forced ?? tileRowsFor(rows, cols, tileBytes);
  const tiles = Math.ceil(rows / T);
  // The rebuild's own calls, priced by their GEMM rows (m 0: TypeScript loops); the tiles are written once.
  const steps: Raw[] = rb.work(0, rows).filter((w) => w.flops > 0 || w.calls > 0).map((w) => ({
    what: `rebuild: ${w.what}`, flops: w.flops, bytes: 0, calls: w.calls, rate: w.m === 0 ? 'scalar' : rateOf(w.m),
  }));
  steps.push({ what: 'rebuild: tile writes', flops: 0, bytes: 4 * rows * cols, calls: 0, rate: 'scalar' });
  let scratch: number;
  if (factor.kernel) {
    const [C, H, W] = sample as [number, number, number];
    const [kh, kw] = kernelOf(node, factor, shapes, cols, C);
    const { OH, OW } = convGeometry(node, H, W, kh, kw);
    const P = OH * OW;
    scratch = 4 * (rebuildScratch(T, cols, { N: B, P }) + rb.scratchFloats);
    // Each tile is a conv2d call: input and im2col again, the tile in, its channels out, then placed.
    const full = Math.floor(rows / T);
    const last = rows - full * T;
    for (const [n, count] of [[T, full], [last, last > 0 ? 1 : 0]] as const) {
      if (count === 0) continue;
      steps.push({
        what: `conv tiles of ${n}`, flops: 2 * count * B * n * cols * P,
        bytes: 4 * count * (B * C * H * W + n * cols + 2 * B * n * P), gather: 4 * count * B * cols * P, calls: count, rate: rateOf(n),
      });
    }
  } else {
    scratch = 4 * (rebuildScratch(T, cols, { B }) + rb.scratchFloats);
    const full = Math.floor(rows / T);
    const last = rows - full * T;
    for (const [n, count] of [[T, full], [last, last > 0 ? 1 : 0]] as const) {
      if (count === 0) continue;
      steps.push({
        what: `gemm tiles of ${n}`, flops: 2 * count * B * n * cols,
        bytes: 4 * count * (B * cols + n * cols + B * n * (B > 1 ? 2 : 1)), calls: count, rate: rateOf(B),
      });
    }
  }
  return { steps, tileRows: T, tiles, scratch };
}

/** Input shape per sample (no batch) the node expects: [in] for dense kinds, [C, H, W] for conv. */
export function estimate(node: GraphNode, shapes: ShapeLookup, batch: number, sample: readonly number[], opts: EstimateOptions = {}): CostEstimate {
  if (!(Number.isInteger(batch) && batch >= 1)) throw new CostError(node, `batch ${batch} must be a positive integer`);
  const factor = factorOf(node);
  const conv = factor.kernel !== undefined;
  if (conv && sample.length !== 3) throw new CostError(node, `a conv input is [C, H, W] per sample, got [${sample}]`);
  if (!conv && sample.length < 1) throw new CostError(node, 'a dense input needs at least one dimension');
  const m = opts.machine ?? DEFAULT_MACHINE;
  // Dense kinds flatten leading dims into rows.
  const B = conv ? batch : batch * numel(sample.slice(0, -1));
  const c = factor.contract(node, shapes, B, sample);
  const r = rebuildSteps(node, factor, shapes, B, sample, opts.tileBytes ?? DEFAULT_TILE_BYTES, opts.tileRows);
  const contract = path(m, c.steps);
  const rebuild = path(m, r.steps);
  const est: CostEstimate = {
    node: node.name, op: node.op, batch,
    use: rebuild.us < contract.us ? 'rebuild' : 'contract',
    tileRows: r.tileRows, scratchBytes: r.scratch, contract, rebuild,
  };
  if (c.net) {
    const s = searchOrders(c.net, m, opts.maxOrders ?? 8);
    est.orders = s.orders;
    est.ordersSearched = s.searched;
    est.layerOrder = s.layer;
  }
  return est;
}

/** Shapes of a node's weights from a map of stored tensor shapes. */
export function shapesOf(node: GraphNode, tensorShape: (name: string) => readonly number[] | undefined): ShapeLookup {
  return (role) => {
    const name = node.weights[role];
    return name === undefined ? undefined : tensorShape(name);
  };
}

/**
 * The cost model's choice for a plan's `strategy` entry (docs/FORMAT.md section 7) without
 * measuring: "rebuild" with its tile rows, or "contract" with rows 0.
 */
export function strategyFor(node: GraphNode, shapes: ShapeLookup, batch: number, sample: readonly number[], opts: EstimateOptions = {}): { use: 'contract' | 'rebuild'; rows: number } {
  const e = estimate(node, shapes, batch, sample, opts);
  return e.use === 'rebuild' ? { use: 'rebuild', rows: e.tileRows } : { use: 'contract', rows: 0 };
}

/**
 * Floats of caller scratch the rebuild product (runtime/exec/strategy.ts) needs for `rows` rows per
 * tile and an input of `inputShape` (batch first): rebuildScratch, as the session and TiledLayer size it.
 */
export function rebuildScratchFloats(node: GraphNode, shapes: ShapeLookup, inputShape: readonly number[], rows: number): number {
  const factor = factorOf(node);
  const rb = prepareRebuild(node, shapeOnly(shapes));
  const T = Math.min(rb.rows, rows);
  if (!(Number.isInteger(T) && T >= 1)) throw new CostError(node, `tile rows ${rows} must be a positive integer`);
  if (factor.kernel) {
    const [N, C, H, W] = inputShape as [number, number, number, number];
    const [kh, kw] = kernelOf(node, factor, shapes, rb.cols, C);
    const { OH, OW } = convGeometry(node, H, W, kh, kw);
    return rebuildScratch(T, rb.cols, { N, P: OH * OW });
  }
  return rebuildScratch(T, rb.cols, { B: numel(inputShape) / rb.cols });
}
