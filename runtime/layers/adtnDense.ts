// adtn_dense: a deep automatically differentiable tensor network (ADTN, Qing, Li, Zhou, Ran et al.)
// stands for the weight W [out, in]. The out*in entries, padded to 2^Q, are a tensor of Q indices of
// dimension 2: the state of a circuit. A simple starting tensor, the product of Q vectors start [Q, 2],
// goes through `depth` layers of local gates, each a [2^k, 2^k] matrix (k = arity) acting on k
// neighbouring indices; `pairing` says which: 'brickwall' shifts the groups by one index from layer
// to layer (layer m starts at index m mod k), 'fixed' keeps the same groups in every layer. W is the
// first out*in entries of the final state, row-major. Parameters: 2Q + 4^k * (gates), O(depth Q).
//
// The runtime goes through the exact MPS of the circuit (runtime/layers/adtnMps.ts: bonds at most
// 2^min(k, Q - k), 16 for FC-2's depth 4), in one of three ways chosen at prepare by adtnRuntimePlan,
// a count of multiply-adds weighted by a measured constant (bench/adtn.ts, README bench:adtn):
//  - 'contract': the input is contracted with the MPS on every call (the firmware's class path),
//    W never formed; taken when that costs less per input row than the GEMM with W would
//    (contracting costs classes * 2^b * r + 2 * blocks * r multiply-adds a row, in scalar f64, against
//    out * in for the GEMM kernel, ADTN_CONTRACT_MAC_COST times faster per multiply-add). It pays
//    when `in` has a large power-of-two factor (few classes), e.g. 1024 x 1024.
//  - 'expand': otherwise W is expanded once from the MPS straight into the f32 weight, W[n] =
//    L[n >> b] . R[n & (2^b - 1)] (left and right tables of r-vectors at the cheapest cut), then each
//    batch is one GEMM: out * in * r multiply-adds once, no 2^Q temporary (FC-2: one GEMM per batch
//    is cheaper than contracting, 0.80 M against 0.15 M scalar multiply-adds a row).
//  - 'rebuild': the whole state gate by gate (adtnState, two f64 arrays of 2^Q), kept for the
//    networks whose MPS is not small (deep circuits, wide gates): taken when building the MPS and
//    expanding it costs more multiply-adds than the rebuild, or its temporaries more memory.
// Every path gives W's entries to f32 rounding of the same f64 sums (test/runtime/layers/adtnMps.test.ts).
// It is not a factor kind (runtime/ir.ts NETWORK_OPS): no row-tile rebuild.
//
// The firmware (core/ops/adtn.c) cannot hold W (FC-2's hidden layer is 3 MiB as f32): at load it
// turns the circuit, exactly, into an MPS (a tensor train over the Q indices, bonds from adtnBonds),
// then forms W's entries from it during each inference, never all of W at once.
import type { AttrCheck } from '../format/attrSpec.js';
import { attrInts, type GraphNode } from '../ir.js';
import { expectShape, LayerError, type LayerKind } from './kind.js';
import { denseShape } from './shapeRules.js';
import { ADTN_PAIRINGS, type AdtnLayout, type AdtnPairing } from './adtnLayout.js';
import { adtnMps, contractionScratch, contractPlan, contractRows, expandMps, expandPlan, mpsShape, prepareContraction } from './adtnMps.js';

export { ADTN_PAIRINGS, type AdtnLayout, type AdtnPairing } from './adtnLayout.js';

/** Smallest Q with 2^Q >= n (at least `arity`). */
export function adtnQubits(n: number, arity = 2): number {
  let q = 0;
  while (2 ** q < n) q++;
  return Math.max(q, arity);
}

/** Where the gates go: layer m of 'brickwall' starts at index m mod arity, 'fixed' always at 0. */
export function adtnLayout(q: number, depth: number, arity: number, pairing: AdtnPairing): AdtnLayout {
  const layers: number[][] = [];
  for (let m = 0; m < depth; m++) {
    const off = pairing === 'brickwall' ? m % arity : 0;
    const l: number[] = [];
    for (let p = off; p + arity <= q; p += arity) l.push(p);
    layers.push(l);
  }
  return { q, depth, arity, pairing, layers, gates: layers.reduce((a, l) => a + l.length, 0) };
}

/** Parameters of the network (bias not included): 2Q for the start, 4^arity per gate. */
export function adtnParams(l: AdtnLayout): number {
  return 2 * l.q + 4 ** l.arity * l.gates;
}

/** Multiply-adds of one rebuild: the product state, then every gate over the whole state. */
export function adtnRebuildFlops(l: AdtnLayout): number {
  return 2 * (2 * 2 ** l.q + l.gates * 2 ** l.q * 2 ** l.arity);
}

/**
 * One gate on the state, in place through `tmp`: new[a, g, b] = sum_h G[g, h] s[a, h, b] with
 * a < 2^p, g, h < 2^arity, b < 2^(q - p - arity).
 */
function applyGate(s: Float64Array, tmp: Float64Array, g: Float32Array, gOff: number, D: number, A: number, B: number): void {
  for (let a = 0; a < A; a++) {
    const base = a * D * B;
    for (let i = 0; i < D; i++) {
      const o = base + i * B;
      for (let b = 0; b < B; b++) tmp[o + b] = 0;
      for (let h = 0; h < D; h++) {
        const w = g[gOff + i * D + h]!;
        if (w === 0) continue;
        const src = base + h * B;
        for (let b = 0; b < B; b++) tmp[o + b] = tmp[o + b]! + w * s[src + b]!;
      }
    }
  }
  s.set(tmp.subarray(0, A * D * B));
}

/** The full state (2^q entries, f64) from the start vectors [q, 2] and the gates [G, D, D]. */
export function adtnState(l: AdtnLayout, start: Float32Array, gates: Float32Array): Float64Array {
  const N = 2 ** l.q;
  const s = new Float64Array(N);
  s[0] = 1;
  let len = 1;
  for (let k = 0; k < l.q; k++) {
    const a = start[2 * k]!, b = start[2 * k + 1]!;
    for (let i = len - 1; i >= 0; i--) {
      const v = s[i]!;
      s[2 * i] = v * a;
      s[2 * i + 1] = v * b;
    }
    len *= 2;
  }
  const tmp = new Float64Array(N);
  const D = 2 ** l.arity;
  let gi = 0;
  for (const layer of l.layers) {
    for (const p of layer) {
      applyGate(s, tmp, gates, gi * D * D, D, 2 ** p, 2 ** (l.q - p - l.arity));
      gi++;
    }
  }
  return s;
}

/** W [rows, cols] as f32: the first rows*cols entries of the state. */
export function adtnWeight(l: AdtnLayout, start: Float32Array, gates: Float32Array, rows: number, cols: number): Float32Array {
  const s = adtnState(l, start, gates);
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < w.length; i++) w[i] = s[i]!;
  return w;
}

/**
 * The matrix an adtn node's circuit stands for: adtn_dense's W [out, in] (attribute features), or
 * adtn_conv2d's kernel [T, S, kh, kw] (attribute weight_shape) as [T, S kh kw], the same entries row-major.
 */
export function adtnNodeDims(node: GraphNode): { out: number; inF: number } {
  if (node.op === 'adtn_conv2d') {
    const [T, S, kh, kw] = attrInts(node, 'weight_shape') as [number, number, number, number];
    return { out: T, inF: S * kh * kw };
  }
  const [out, inF] = attrInts(node, 'features') as [number, number];
  return { out, inF };
}

/** The layout a stored node describes (attributes and factor shapes checked); adtn_dense or adtn_conv2d. */
export function nodeLayout(node: GraphNode, shape: (role: string) => readonly number[] | undefined, fail: (m: string) => never): { l: AdtnLayout; out: number; inF: number } {
  const { out, inF } = adtnNodeDims(node);
  const depth = node.attrs['depth'] as number;
  const arity = node.attrs['arity'] as number;
  const pairing = node.attrs['pairing'] as AdtnPairing;
  const l = adtnLayout(adtnQubits(out * inF, arity), depth, arity, pairing);
  const st = shape('start');
  const gs = shape('gates');
  const D = 2 ** arity;
  if (!st || st.length !== 2 || st[0] !== l.q || st[1] !== 2) fail(`start has shape [${st ?? ''}], expected [${l.q}, 2] for ${out}x${inF} weights`);
  if (!gs || gs.length !== 3 || gs[0] !== l.gates || gs[1] !== D || gs[2] !== D) fail(`gates has shape [${gs ?? ''}], expected [${l.gates}, ${D}, ${D}] (depth ${depth}, arity ${arity}, ${pairing})`);
  return { l, out, inF };
}

/**
 * The bond dimensions of the exact MPS the firmware builds at load (core/ops/adtn.c), at the Q + 1
 * cuts (cut 0 and cut Q are 1), and the largest size each site's core reaches while the gates are
 * applied. A gate on sites (p, p + 1) makes the bond between them min(2 r[p], 2 r[p + 2], 4 r[p + 1]):
 * the two-site tensor has at most 2 r[p] rows and 2 r[p + 2] columns, and a two-index gate has
 * operator-Schmidt rank at most 4. A gate on one index changes no bond.
 */
export function adtnBonds(l: AdtnLayout): { bonds: number[]; coreMax: number[] } {
  const r = new Array<number>(l.q + 1).fill(1);
  const coreMax = new Array<number>(l.q).fill(2);
  if (l.arity === 2) {
    for (const layer of l.layers) {
      for (const p of layer) {
        r[p + 1] = Math.min(2 * r[p]!, 2 * r[p + 2]!, 4 * r[p + 1]!);
        coreMax[p] = Math.max(coreMax[p]!, r[p]! * 2 * r[p + 1]!);
        coreMax[p + 1] = Math.max(coreMax[p + 1]!, r[p + 1]! * 2 * r[p + 2]!);
      }
    }
  }
  return { bonds: r, coreMax };
}

/** The firmware's R table budget (core/ops/adtn.c FL_ADTN_TABLE_BYTES) and its largest b. */
const MCU_TABLE_BYTES = 16384;
const MCU_MAX_B = 12;

function stackCost(r: number[], q: number, b: number, total: number): number {
  const P = q - b;
  const blocks = Math.ceil(total / 2 ** b);
  let c = 0;
  for (let lev = 0; lev < P; lev++) c += r[lev]! * r[lev + 1]! * Math.ceil(blocks / 2 ** (P - 1 - lev));
  return c;
}

/**
 * The firmware's choice for one node (core/ops/adtn.c, the same integer costs): b, the low indices
 * summed into the R table, and whether the input is summed by class first (z), with its scratch
 * in floats: the stack of left vectors (one per cut), then for z the 2 * (in / g) * r class sums.
 */
export function adtnMcuPlan(l: AdtnLayout, out: number, inF: number): { b: number; z: boolean; classes: number; work: number; scratchFloats: number } {
  const { bonds: r } = adtnBonds(l);
  const q = l.q, total = out * inF;
  let bt = Math.min(q - 1, MCU_MAX_B);
  for (; bt > 0; bt--) if (r[q - bt]! * 2 ** bt * 4 <= MCU_TABLE_BYTES) break;
  let bz = bt;
  while (bz > 0 && 2 ** bz > inF) bz--;
  let g = 1;
  while (g < 2 ** bz && inF % (2 * g) === 0) g *= 2;
  const classes = inF / g;
  const costW = total * (r[q - bt]! + 1) + stackCost(r, q, bt, total);
  const costZ = classes * 2 ** bz * r[q - bz]! + Math.ceil(total / 2 ** bz) * 2 * r[q - bz]! + stackCost(r, q, bz, total);
  const z = costZ < costW;
  const b = z ? bz : bt;
  const stack = r.reduce((a, v) => a + v, 0);
  return { b, z, classes, work: z ? costZ : costW, scratchFloats: stack + (z ? 2 * classes * r[q - b]! : 0) };
}

export type AdtnRuntimeMode = 'rebuild' | 'expand' | 'contract';

/**
 * Time of one multiply-add of contractRows (scalar f64 JavaScript) over one of the GEMM kernel's at
 * batch 1, measured by bench/adtn.ts (README bench:adtn): the contraction is taken when its count
 * times this is below the GEMM's out * in.
 */
export const ADTN_CONTRACT_MAC_COST = 8;

export interface AdtnRuntimePlan {
  mode: AdtnRuntimeMode;
  /** Why, in words (with the counts). */
  why: string;
  /** Multiply-adds at load: the gate-by-gate rebuild, and the MPS build plus its expansion. */
  rebuildWork: number;
  mpsWork: number;
  expandWork: number;
  /** Per input row: the GEMM's multiply-adds, and the contraction's (Infinity when 2^b <= in has no b). */
  gemmPerRow: number;
  contractPerRow: number;
  /** The MPS's bonds at the Q + 1 cuts. */
  bonds: number[];
}

let forcedMode: AdtnRuntimeMode | undefined;

/** Forces every adtn_dense prepared from now on onto one path ('auto': the plan's choice); returns the previous setting. For benches and tests. */
export function setAdtnRuntimeMode(mode: AdtnRuntimeMode | 'auto'): AdtnRuntimeMode | 'auto' {
  const prev = forcedMode ?? 'auto';
  forcedMode = mode === 'auto' ? undefined : mode;
  return prev;
}

/** The path the runtime takes for a layout (see the header), by counts of multiply-adds. */
export function adtnRuntimePlan(l: AdtnLayout, out: number, inF: number): AdtnRuntimePlan {
  const total = out * inF;
  const sh = mpsShape(l);
  const rebuildWork = adtnRebuildFlops(l) / 2;
  const ex = expandPlan(sh.r, l.q, total);
  const cp = contractPlan(sh.r, l.q, out, inF);
  const gemmPerRow = total;
  // the MPS route's temporaries must stay below the rebuild's (2^Q f64 twice)
  const mpsFits = sh.peakFloats <= 2 * 2 ** l.q;
  const cut = l.q - cp.b;
  const contractTables = Math.ceil(total / 2 ** cp.b) * sh.r[cut]! + 2 ** cp.b * sh.r[cut]!;
  const base = { rebuildWork, mpsWork: sh.work, expandWork: ex.work, gemmPerRow, contractPerRow: cp.workPerRow, bonds: sh.r };
  const n = (v: number) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : `${Math.round(v / 1e3)} k`);
  let mode: AdtnRuntimeMode;
  let why: string;
  if (mpsFits && contractTables * 2 <= total && cp.workPerRow * ADTN_CONTRACT_MAC_COST < gemmPerRow) {
    mode = 'contract';
    why = `contracting costs ${n(cp.workPerRow)} multiply-adds a row (x ${ADTN_CONTRACT_MAC_COST}, measured) against the GEMM's ${n(gemmPerRow)}: W is never formed`;
  } else if (mpsFits && sh.work + ex.work < rebuildWork) {
    mode = 'expand';
    why = `the GEMM's ${n(gemmPerRow)} multiply-adds a row beat contracting's ${n(cp.workPerRow)} (x ${ADTN_CONTRACT_MAC_COST}); W expanded from the MPS in ${n(sh.work + ex.work)} against the rebuild's ${n(rebuildWork)}`;
  } else {
    mode = 'rebuild';
    why = mpsFits ? `the MPS (bonds up to ${Math.max(...sh.r)}) costs ${n(sh.work + ex.work)} to expand against the rebuild's ${n(rebuildWork)}` : `the MPS's temporaries (${n(sh.peakFloats)} floats) exceed the rebuild's two states of 2^${l.q}`;
  }
  if (forcedMode && forcedMode !== mode) {
    if (forcedMode !== 'rebuild' && !mpsFits) throw new Error(`adtn: ${forcedMode} forced, but the MPS's temporaries (${sh.peakFloats} floats) exceed the rebuild's two states`);
    why = `${forcedMode} forced (the plan: ${mode})`;
    mode = forcedMode;
  }
  return { mode, why, ...base };
}

/**
 * W [rows, cols] as f32, formed once: expanded from the exact MPS (expandMps) unless the plan finds
 * the MPS not small (then the gate-by-gate rebuild, adtnWeight). For the layers that need W whole:
 * adtn_conv2d at load, the ONNX and TFLite exports, explain. Both give the same f64 sums to f32
 * rounding (test/runtime/layers/adtnMps.test.ts).
 */
export function adtnMatrix(l: AdtnLayout, start: Float32Array, gates: Float32Array, rows: number, cols: number, plan = adtnRuntimePlan(l, rows, cols)): Float32Array {
  return plan.mode === 'rebuild' ? adtnWeight(l, start, gates, rows, cols) : expandMps(adtnMps(l, start, gates), rows * cols);
}

const checkAttrs: AttrCheck = (a, fail) => {
  const [out, inF] = a['features'] as number[];
  if (out! * inF! > 2 ** 26) fail('FLM_ATTR_RANGE', `adtn features ${out}x${inF}: more than 2^26 weights`);
};

/** ADTN dense layer: y = x W^T + b, W expanded at prepare or contracted per call (adtnRuntimePlan). */
export const adtnDense: LayerKind = {
  ops: ['adtn_dense'],
  attrs: {
    features: { type: 'ints', len: 2, min: 1, max: 2 ** 24, required: true },
    depth: { type: 'int', min: 1, max: 4096, required: true },
    arity: { type: 'int', min: 1, max: 4, required: true },
    pairing: { type: 'string', oneOf: ADTN_PAIRINGS, required: true },
  },
  checkAttrs,
  // The firmware (core/ops/adtn.c, arity 1 and 2): a stack of left vectors, and the class sums.
  mcu: {
    // arity 3 and 4 the device refuses (UNSUPPORTED): no mcu plan, and inspect names the node.
    unsupported: (node) => (typeof node.attrs['arity'] === 'number' && node.attrs['arity'] > 2 ? `arity ${node.attrs['arity']}; the device runs arity 1 and 2` : undefined),
    scratchFloats(node, _ins, _out, w) {
      const { l, out, inF } = nodeLayout(node, (r) => w(r), (m) => {
        throw new LayerError(node, m);
      });
      return adtnMcuPlan(l, out, inF).scratchFloats;
    },
  },
  outputShape: (node, ins) => {
    const [out, inF] = attrInts(node, 'features') as [number, number];
    return denseShape(node, ins[0]!, inF, out);
  },
  prepare(node, ctx) {
    const start = ctx.weight('start');
    const gates = ctx.weight('gates');
    const { l, out, inF } = nodeLayout(node, (r) => (r === 'start' ? start.shape : r === 'gates' ? gates.shape : undefined), (m) => {
      throw new LayerError(node, m);
    });
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [out]);
    const plan = adtnRuntimePlan(l, out, inF);
    const check = (x: { shape: number[]; data: Float32Array } | undefined, y: Float32Array) => {
      if (!x || x.shape[x.shape.length - 1] !== inF) throw new LayerError(node, `input [${x?.shape ?? ''}] does not end in ${inF}`);
      const rows = x.data.length / inF;
      if (y.length !== rows * out) throw new LayerError(node, `output has ${y.length} floats, expected ${rows * out}`);
      return rows;
    };
    const bias = b?.data;
    if (plan.mode === 'contract') {
      const ct = prepareContraction(adtnMps(l, start.data, gates.data), out, inF);
      return {
        bind(inputs, output) {
          const x = inputs[0];
          const rows = check(x, output.data);
          const hz = contractionScratch(ct, out);
          const xd = x!.data, y = output.data;
          return () => contractRows(ct, xd, rows, out, inF, bias, y, hz);
        },
      };
    }
    const w = plan.mode === 'expand' ? expandMps(adtnMps(l, start.data, gates.data), out * inF) : adtnWeight(l, start.data, gates.data, out, inF);
    ctx.retain(w);
    return {
      bind(inputs, output) {
        const x = inputs[0];
        const rows = check(x, output.data);
        const xd = x!.data;
        const y = output.data;
        return () => ctx.kernels.gemmNT(xd, w, rows, out, inF, bias, y);
      },
    };
  },
};
