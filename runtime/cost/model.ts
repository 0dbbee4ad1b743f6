// Cost model: for one factor node, its factor shapes, a batch size and the per-sample input shape,
// estimate the time of
//   (a) contracting the input through the factors, as the layer kind runs it, and (TT / TR / TTL)
//       in every left-deep contraction order of the tensor network, FLOPs and bytes for each;
//   (b) rebuilding the weight one row tile at a time into a bounded scratch buffer
//       (runtime/cost/rebuild.ts), then multiplying by each tile (runtime/cost/tiled.ts).
// Each step is  calls x callUs + flops / rate + bytes / bandwidth,  with machine constants that
// runtime/cost/autotune.ts measures (GEMM GFLOP/s when the GEMM has >= 4 rows and when it is a
// matrix-vector product, plain TypeScript loop GFLOP/s, copy bandwidth, per-call overhead).
import { attrInts, numel, type GraphNode, type OpName } from '../ir.js';
import { convOutSize } from '../kernels/reference.js';
import { convParams } from '../layers/convAttrs.js';
import { prepareRebuild } from './rebuild.js';
import { DEFAULT_TILE_BYTES, tileRowsFor } from './tiled.js';

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

export type Rate = 'gemm' | 'gemv' | 'scalar';

export interface Step {
  what: string;
  flops: number;
  bytes: number;
  /** Bytes of an im2col column matrix built (priced at gatherGBs; not counted in `bytes`). */
  gather?: number;
  calls: number;
  rate: Rate;
  /** Fraction of the rate reached (a blocked GEMM with fewer than 8 output columns pads its 8-wide tiles). */
  eff?: number;
  us: number;
}

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

export class CostError extends Error {
  readonly code = 'COST_INVALID';
  constructor(node: GraphNode, message: string) {
    super(`cost ${node.name} (${node.op}): ${message}`);
  }
}

export type ShapeLookup = (role: string) => readonly number[] | undefined;

function rateOf(rows: number): Rate {
  return rows >= 4 ? 'gemm' : 'gemv';
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

function shapeOf(node: GraphNode, shapes: ShapeLookup, role: string, dims: number): number[] {
  const s = shapes(role);
  if (!s) throw new CostError(node, `missing weight ${role}`);
  if (s.length !== dims) throw new CostError(node, `${role} has shape [${s}], expected ${dims}-D`);
  return [...s];
}

type Raw = Omit<Step, 'us'>;

/** Share of the GEMM rate a product with `n` output columns reaches (8-wide register tiles). */
function colEff(rows: number, n: number): number {
  return rows >= 4 ? Math.min(1, n / 8) : 1;
}

/** A GEMM step of `rows` x `n` output with inner size k, `calls` times, moving `floats` f32. */
function gemm(what: string, calls: number, rows: number, n: number, k: number, floats: number): Raw {
  return { what, flops: 2 * calls * rows * n * k, bytes: 4 * floats, calls, rate: rateOf(rows), eff: colEff(rows, n) };
}

/** conv2d by im2col on the kernels: x [B, C, H, W] (per group Cg = C / G), weight [O, Cg, kh, kw]. */
function convStep(what: string, B: number, C: number, H: number, W: number, O: number, G: number, kh: number, kw: number, OH: number, OW: number): Raw {
  const Cg = C / G;
  const P = OH * OW;
  const K = Cg * kh * kw;
  const floats = B * C * H * W + B * O * P + (G === 1 ? 0 : O * K);
  return { what, flops: 2 * B * O * K * P, bytes: 4 * floats, gather: 4 * B * G * K * P, calls: 1, rate: rateOf(O / G) };
}

function conv1x1Step(what: string, B: number, C: number, HW: number, O: number): Raw {
  return { what, flops: 2 * B * O * C * HW, bytes: 4 * (B * C * HW + B * O * HW), calls: 1, rate: rateOf(O) };
}

// ---- contraction orders of a tensor network (TT / TR / TTL) --------------------------------

interface NetTensor {
  name: string;
  legs: string[];
}
interface Net {
  sizes: Map<string, number>;
  /** Legs that stay open in the output (batch, output modes). */
  open: Set<string>;
  x: NetTensor;
  others: NetTensor[];
  /** The order the layer kind uses. */
  layer: string[];
}

function* permutations<T>(items: T[]): Generator<T[]> {
  if (items.length <= 1) {
    yield items.slice();
    return;
  }
  for (let i = 0; i < items.length; i++) {
    const rest = [...items.slice(0, i), ...items.slice(i + 1)];
    for (const p of permutations(rest)) yield [items[i]!, ...p];
  }
}

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

function chainNet(B: number, outModes: number[], inModes: number[], ranks: number[]): Net {
  const d = outModes.length;
  const sizes = new Map<string, number>([['b', B]]);
  const bond = (k: number) => `r${k % d}`; // bond k joins core k-1 and core k; bond 0 closes the ring
  for (let k = 0; k < d; k++) {
    sizes.set(`m${k}`, outModes[k]!);
    sizes.set(`n${k}`, inModes[k]!);
    sizes.set(bond(k), ranks[k]!);
  }
  const others = outModes.map((_, k) => ({ name: `core.${k}`, legs: [bond(k), `m${k}`, `n${k}`, bond(k + 1)] }));
  // A tensor train (r_0 = 1) has no ring bond; keep the size-1 leg, it costs nothing.
  return {
    sizes, open: new Set(['b', ...outModes.map((_, k) => `m${k}`)]),
    x: { name: 'x', legs: ['b', ...inModes.map((_, k) => `n${k}`)] }, others, layer: others.map((t) => t.name),
  };
}

function ttlNet(B: number, outModes: number[], inModes: number[], ranks: number[]): Net {
  const p = outModes.length;
  const sizes = new Map<string, number>([['b', B]]);
  outModes.forEach((v, k) => sizes.set(`m${k}`, v));
  inModes.forEach((v, k) => sizes.set(`n${k}`, v));
  ranks.forEach((v, k) => sizes.set(`r${k}`, v));
  const others: NetTensor[] = [{ name: 'core', legs: ranks.map((_, k) => `r${k}`) }];
  outModes.forEach((_, k) => others.push({ name: `factor.${k}`, legs: [`m${k}`, `r${k}`] }));
  inModes.forEach((_, k) => others.push({ name: `factor.${p + k}`, legs: [`n${k}`, `r${p + k}`] }));
  const layer = [...inModes.map((_, k) => `factor.${p + k}`), 'core', ...outModes.map((_, k) => `factor.${k}`)];
  return { sizes, open: new Set(['b', ...outModes.map((_, k) => `m${k}`)]), x: { name: 'x', legs: ['b', ...inModes.map((_, k) => `n${k}`)] }, others, layer };
}

// ---- the layer kinds' own contraction -----------------------------------------------------

interface ContractInfo {
  steps: Raw[];
  net?: Net;
}

function convGeometry(node: GraphNode, H: number, W: number, kh: number, kw: number) {
  const p = convParams(node);
  const OH = convOutSize(H, kh, p.strides[0], p.pads[0], p.pads[2], p.dilations[0]);
  const OW = convOutSize(W, kw, p.strides[1], p.pads[1], p.pads[3], p.dilations[1]);
  return { p, OH, OW };
}

function contractSteps(node: GraphNode, shapes: ShapeLookup, B: number, sample: readonly number[]): ContractInfo {
  const hasBias = shapes('bias') !== undefined;
  switch (node.op) {
    case 'svd_dense': {
      const [out, r] = shapeOf(node, shapes, 'u', 2) as [number, number];
      const inF = shapeOf(node, shapes, 'v', 2)[1]!;
      return {
        steps: [
          gemm('x v^T', 1, B, r, inF, B * inF + B * r),
          gemm('t u^T', 1, B, out, r, B * r + B * out),
        ],
      };
    }
    case 'svd_conv2d': {
      const [r, I, kh, kw] = shapeOf(node, shapes, 'v', 4) as [number, number, number, number];
      const O = shapeOf(node, shapes, 'u', 2)[0]!;
      const [, H, W] = sample as [number, number, number];
      const { OH, OW } = convGeometry(node, H, W, kh, kw);
      return { steps: [convStep('conv v', B, I, H, W, r, 1, kh, kw, OH, OW), conv1x1Step('1x1 u', B, r, OH * OW, O)] };
    }
    case 'tucker2_conv2d': {
      const [r1, I] = shapeOf(node, shapes, 'u_in', 2) as [number, number];
      const [r2, , kh, kw] = shapeOf(node, shapes, 'core', 4) as [number, number, number, number];
      const O = shapeOf(node, shapes, 'u_out', 2)[0]!;
      const [, H, W] = sample as [number, number, number];
      const { OH, OW } = convGeometry(node, H, W, kh, kw);
      return {
        steps: [
          conv1x1Step('1x1 u_in', B, I, H * W, r1),
          convStep('core conv', B, r1, H, W, r2, 1, kh, kw, OH, OW),
          conv1x1Step('1x1 u_out', B, r2, OH * OW, O),
        ],
      };
    }
    case 'cp_conv2d': {
      const [R, I] = shapeOf(node, shapes, 'a_in', 2) as [number, number];
      const kh = shapeOf(node, shapes, 'k_h', 2)[1]!;
      const kw = shapeOf(node, shapes, 'k_w', 2)[1]!;
      const O = shapeOf(node, shapes, 'a_out', 2)[0]!;
      const [, H, W] = sample as [number, number, number];
      const { OH, OW } = convGeometry(node, H, W, kh, kw);
      return {
        steps: [
          conv1x1Step('1x1 a_in', B, I, H * W, R),
          convStep('depthwise k_h', B, R, H, W, R, R, kh, 1, OH, W),
          convStep('depthwise k_w', B, R, OH, W, R, R, 1, kw, OH, OW),
          conv1x1Step('1x1 a_out', B, R, OH * OW, O),
        ],
      };
    }
    case 'tt_dense':
    case 'tr_dense': {
      const ring = node.op === 'tr_dense';
      const outModes = attrInts(node, 'out_modes');
      const inModes = attrInts(node, 'in_modes');
      const d = outModes.length;
      const ranks: number[] = [];
      for (let k = 0; k < d; k++) {
        const c = shapeOf(node, shapes, `core.${k}`, 4);
        if (k === 0) ranks.push(c[0]!);
        ranks.push(c[3]!);
      }
      const R0 = ranks[0]!;
      const out = numel(outModes);
      const inF = numel(inModes);
      const steps: Raw[] = [];
      let P = B;
      let Q = inF / inModes[0]!;
      for (let k = 0; k < d; k++) {
        const first = ring && k === 0;
        const rows = first ? inModes[k]! : ranks[k]! * inModes[k]!;
        const cols = first ? R0 * outModes[k]! * ranks[k + 1]! : outModes[k]! * ranks[k + 1]!;
        // One gemmTN per p ([cols x Q] from the retained, rearranged core and a slice of the state).
        steps.push({ what: `core.${k}`, flops: 2 * P * rows * cols * Q, bytes: 4 * P * (rows * Q + cols * Q), calls: P, rate: rateOf(cols), eff: colEff(cols, Q) });
        P *= (first ? R0 : 1) * outModes[k]!;
        Q = k + 1 < d ? Q / inModes[k + 1]! : 1;
      }
      if (ring) steps.push({ what: 'trace', flops: B * R0 * out, bytes: 4 * B * R0 * out, calls: 0, rate: 'scalar' });
      if (hasBias) steps.push({ what: 'bias', flops: B * out, bytes: 4 * B * out, calls: 0, rate: 'scalar' });
      return { steps, net: chainNet(B, outModes, inModes, ranks) };
    }
    case 'ttl_dense': {
      const outModes = attrInts(node, 'out_modes');
      const inModes = attrInts(node, 'in_modes');
      const p = outModes.length;
      const q = inModes.length;
      const core = shapeOf(node, shapes, 'core', p + q);
      const rOut = core.slice(0, p);
      const sIn = core.slice(p);
      const steps: Raw[] = [];
      const cur = [...inModes];
      for (let k = 0; k < q; k++) {
        const pre = B * numel(cur.slice(0, k));
        const post = numel(cur.slice(k + 1));
        steps.push({ what: `factor.${p + k}`, flops: 2 * pre * sIn[k]! * cur[k]! * post, bytes: 4 * pre * post * (cur[k]! + sIn[k]!), calls: 0, rate: 'scalar' });
        cur[k] = sIn[k]!;
      }
      const R = numel(rOut);
      const S = numel(sIn);
      steps.push(gemm('core', 1, B, R, S, B * S + B * R));
      const oc = [...rOut];
      for (let k = 0; k < p; k++) {
        const pre = B * numel(oc.slice(0, k));
        const post = numel(oc.slice(k + 1));
        steps.push({ what: `factor.${k}`, flops: 2 * pre * outModes[k]! * oc[k]! * post, bytes: 4 * pre * post * (oc[k]! + outModes[k]!), calls: 0, rate: 'scalar' });
        oc[k] = outModes[k]!;
      }
      const out = numel(outModes);
      if (hasBias) steps.push({ what: 'bias', flops: B * out, bytes: 4 * B * out, calls: 0, rate: 'scalar' });
      return { steps, net: ttlNet(B, outModes, inModes, core) };
    }
    default:
      throw new CostError(node, 'not a factor kind');
  }
}

/** Zero-filled factors of the given shapes: a rebuilder only needs them to count its work. */
function shapeOnly(shapes: ShapeLookup) {
  return (role: string) => {
    const s = shapes(role);
    return s ? { shape: [...s], data: new Float32Array(numel(s)) } : undefined;
  };
}

function rebuildSteps(node: GraphNode, shapes: ShapeLookup, B: number, sample: readonly number[], tileBytes: number, forced?: number) {
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
  let scratch = 4 * (T * cols + rb.scratchFloats);
  if (node.op === 'svd_conv2d' || node.op === 'tucker2_conv2d' || node.op === 'cp_conv2d') {
    const [C, H, W] = sample as [number, number, number];
    const khw = cols / C;
    // Kernel size from the factor that carries it.
    let kh: number, kw: number;
    if (node.op === 'svd_conv2d') [, , kh, kw] = shapes('v') as [number, number, number, number];
    else if (node.op === 'tucker2_conv2d') [, , kh, kw] = shapes('core') as [number, number, number, number];
    else {
      kh = shapes('k_h')![1]!;
      kw = shapes('k_w')![1]!;
    }
    if (kh * kw !== khw) throw new CostError(node, `kernel ${kh}x${kw} does not match ${cols} columns over ${C} channels`);
    const { OH, OW } = convGeometry(node, H, W, kh, kw);
    const P = OH * OW;
    scratch += 4 * (B * T * P + cols * P); // the tile's output channels and its im2col columns
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
    const full = Math.floor(rows / T);
    const last = rows - full * T;
    for (const [n, count] of [[T, full], [last, last > 0 ? 1 : 0]] as const) {
      if (count === 0) continue;
      steps.push({
        what: `gemm tiles of ${n}`, flops: 2 * count * B * n * cols,
        bytes: 4 * count * (B * cols + n * cols + B * n * (B > 1 ? 2 : 1)), calls: count, rate: rateOf(B),
      });
    }
    if (B > 1) scratch += 4 * B * T;
  }
  return { steps, tileRows: T, tiles, scratch };
}

/** Input shape per sample (no batch) the node expects: [in] for dense kinds, [C, H, W] for conv. */
export function estimate(node: GraphNode, shapes: ShapeLookup, batch: number, sample: readonly number[], opts: EstimateOptions = {}): CostEstimate {
  if (!(Number.isInteger(batch) && batch >= 1)) throw new CostError(node, `batch ${batch} must be a positive integer`);
  const conv = node.op === 'svd_conv2d' || node.op === 'tucker2_conv2d' || node.op === 'cp_conv2d';
  if (conv && sample.length !== 3) throw new CostError(node, `a conv input is [C, H, W] per sample, got [${sample}]`);
  if (!conv && sample.length < 1) throw new CostError(node, 'a dense input needs at least one dimension');
  const m = opts.machine ?? DEFAULT_MACHINE;
  // Dense kinds flatten leading dims into rows.
  const B = conv ? batch : batch * numel(sample.slice(0, -1));
  const c = contractSteps(node, shapes, B, sample);
  const r = rebuildSteps(node, shapes, B, sample, opts.tileBytes ?? DEFAULT_TILE_BYTES, opts.tileRows);
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
 * Floats of caller scratch the tiled rebuild (runtime/cost/tiled.ts) needs for `rows` rows per
 * tile and an input of `inputShape` (batch first): what TiledLayer.scratchFloats returns.
 */
export function rebuildScratchFloats(node: GraphNode, shapes: ShapeLookup, inputShape: readonly number[], rows: number): number {
  const rb = prepareRebuild(node, shapeOnly(shapes));
  const T = Math.min(rb.rows, rows);
  if (!(Number.isInteger(T) && T >= 1)) throw new CostError(node, `tile rows ${rows} must be a positive integer`);
  if (node.op === 'svd_conv2d' || node.op === 'tucker2_conv2d' || node.op === 'cp_conv2d') {
    const [N, C, H, W] = inputShape as [number, number, number, number];
    const khw = rb.cols / C;
    let kh: number, kw: number;
    if (node.op === 'svd_conv2d') [, , kh, kw] = shapes('v') as [number, number, number, number];
    else if (node.op === 'tucker2_conv2d') [, , kh, kw] = shapes('core') as [number, number, number, number];
    else [kh, kw] = [shapes('k_h')![1]!, shapes('k_w')![1]!];
    if (kh * kw !== khw) throw new CostError(node, `kernel ${kh}x${kw} does not match ${rb.cols} columns over ${C} channels`);
    const { OH, OW } = convGeometry(node, H, W, kh, kw);
    return T * rb.cols + N * T * OH * OW + rb.cols * OH * OW;
  }
  const B = numel(inputShape) / rb.cols;
  return T * rb.cols + (B > 1 ? B * T : 0);
}
