// What a tensor train (tt_dense) and a tensor ring (tr_dense) of a dense weight share: the cores
// core.k [r_k, m_k, n_k, r_{k+1}] over a mode split of out and in, the forward pass that contracts
// the input through them one by one, their ONNX chain, the user's ranks, and which ranks may move.
// methods/tt.ts and methods/tr.ts are the two methods. The TFLite chain (tensorNetTflite) is shared
// with ttl_dense too.
import { attrInts, numel } from '../../runtime/ir.js';
import { tensorRing } from '../decompose/tensorRing.js';
import { ttSvd } from '../decompose/ttSvd.js';
import { asRows, fail, type EmitContext, type Emitter, type ExportWeight } from '../export/context.js';
import { unsupported } from '../export/tfliteExporter.js';
import { tensorNetDense } from '../export/tfliteTensorNet.js';
import { denseModes } from '../rank/candidates.js';
import type { Target } from '../rank/target.js';
import { leadOf } from '../train/layers/layer.js';
import { contract } from '../train/ops/contract.js';
import { addBias } from '../train/ops/elementwise.js';
import { reshape } from '../train/ops/shape.js';
import { constant, type Var } from '../train/tensor.js';
import type { DecomposeContext, Decomposed, FromNodeContext, RankSlot, SpecOf, TfliteEmitter } from './method.js';

type ChainSpec = SpecOf<'tt'> | SpecOf<'tr'>;

/** The runtime kinds a tensor train and a tensor ring are stored as. */
export const TT_KIND = 'tt_dense';
export const TR_KIND = 'tr_dense';

/** Mode split of TT and TR: three modes each side. */
export const CHAIN_PARTS = 3;

// The input is contracted through the cores one by one; the dense weight is never formed.
// State before core k: z [B, n_k..n_{d-1}, r_0, m_0..m_{k-1}, r_k]; core k contracts n_k and r_k.
export function chainForward(x: Var, cores: Var[], outModes: number[], inModes: number[], ring: boolean, b: Var | undefined): Var {
  const inF = numel(inModes);
  const lead = leadOf(x, inF, ring ? TR_KIND : TT_KIND);
  const B = x.size / inF;
  const d = cores.length;
  let z = contract(reshape(x, [B, ...inModes]), [1], cores[0]!, [2]);
  for (let k = 1; k < d; k++) z = contract(z, [1, z.shape.length - 1], cores[k]!, [2, 0]);
  // z is [B, r_0, m_0..m_{d-1}, r_d]; a ring closes by the trace over r_0 = r_d.
  if (ring) {
    const r0 = cores[0]!.shape[0]!;
    const eye = new Float32Array(r0 * r0);
    for (let i = 0; i < r0; i++) eye[i * r0 + i] = 1;
    z = contract(z, [1, z.shape.length - 1], constant(eye, [r0, r0]), [0, 1]);
  }
  const y = reshape(z, [...lead, numel(outModes)]);
  return b ? addBias(y, b, -1) : y;
}

export function checkModes(outModes: number[], inModes: number[], ranks: number[], want: number): void {
  if (outModes.length < 1 || inModes.length !== outModes.length) throw new Error('train: out_modes and in_modes must have the same length >= 1');
  if (ranks.length !== want) throw new Error(`train: expected ${want} ranks, got ${ranks.length}`);
}

function chainModes(ctx: EmitContext): { outModes: number[]; inModes: number[]; cores: ExportWeight[]; ranks: number[] } {
  const outModes = attrInts(ctx.node, 'out_modes');
  const inModes = attrInts(ctx.node, 'in_modes');
  const d = outModes.length;
  if (d < 1 || inModes.length !== d) fail(ctx, 'out_modes and in_modes must have the same length ≥ 1');
  const cores: ExportWeight[] = [];
  const ranks: number[] = [];
  for (let k = 0; k < d; k++) {
    const c = ctx.weight(`core.${k}`);
    const [ra, m, n, rb] = c.shape;
    if (c.shape.length !== 4 || m !== outModes[k] || n !== inModes[k]) fail(ctx, `core.${k} has shape [${c.shape}], expected [?, ${outModes[k]}, ${inModes[k]}, ?]`);
    if (k === 0) ranks.push(ra!);
    else if (ra !== ranks[k]) fail(ctx, `core.${k} rank ${ra} does not match ${ranks[k]}`);
    ranks.push(rb!);
    cores.push(c);
  }
  if (ranks[d] !== ranks[0]) fail(ctx, `first and last ranks differ (${ranks[0]} vs ${ranks[d]})`);
  return { outModes, inModes, cores, ranks };
}

/**
 * A core G[r_a, m, n, r_b] as the left operand of a MatMul that contracts (r_a, n):
 * [(m r_b), (r_a n)]. For the first core of a ring, r_a joins the output side instead:
 * [(r_a m r_b), n], so r_0 rides along as a batch-like axis until the trace.
 */
function coreOperand(ctx: EmitContext, core: ExportWeight, ringFirst: boolean): string {
  const [ra, m, n, rb] = core.shape as [number, number, number, number];
  const rows = ringFirst ? ra * m * rb : m * rb;
  const cols = ringFirst ? n : ra * n;
  const g = new Float32Array(rows * cols);
  for (let a = 0; a < ra; a++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        for (let b = 0; b < rb; b++) {
          const v = core.data[((a * m + i) * n + j) * rb + b]!;
          if (ringFirst) g[((a * m + i) * rb + b) * cols + j] = v;
          else g[(i * rb + b) * cols + a * n + j] = v;
        }
      }
    }
  }
  return ctx.b.float(`${core.tensor.name}:lhs`, [rows, cols], g, `${core.tensor.name}\u0000lhs${ringFirst ? 'ring' : ''}`);
}

/**
 * TT / TR matrix layers, contracted core by core (as the runtime's TT kind does):
 * state Z [P, (r_k n_k), Q_k] with P = N (r_0) m_0..m_{k-1}, Q_k = n_{k+1}..n_{d-1};
 * MatMul(G_k as [(m_k r_{k+1}), (r_k n_k)], Z) -> [P, (m_k r_{k+1}), Q_k], which is already
 * [P m_k, (r_{k+1} n_{k+1}), Q_{k+1}] in memory: a Reshape, no Transpose, between steps.
 * A ring ends at [N, r_0, out, r_d]; the trace over r_0 = r_d is a Transpose to
 * [N, out, (r_0 r_d)] and a MatMul with vec(I) [(R R), 1], exact (products by 0 and 1).
 */
export function chainOnnx(ring: boolean): Emitter {
  return (ctx) => {
    const { outModes, inModes, cores, ranks } = chainModes(ctx);
    const d = cores.length;
    const R = ranks[0]!;
    if (!ring && R !== 1) fail(ctx, 'a tensor train has boundary ranks 1');
    const out = numel(outModes);
    const inF = numel(inModes);
    const bias = ctx.optionalWeight('bias');
    if (bias && (bias.shape.length !== 1 || bias.shape[0] !== out)) fail(ctx, `bias has shape [${bias.shape}], expected [${out}]`);
    const rank = ctx.ranks[0]!;
    const name = ctx.node.name;
    const { rows, finish } = asRows(ctx, ctx.inputs[0]!, rank, inF);
    let z = ctx.b.node('Reshape', [rows, ctx.b.int64('shape', [-1, inModes[0]!, inF / inModes[0]!])], `${name}/z0`);
    for (let k = 0; k < d; k++) {
      const g = coreOperand(ctx, cores[k]!, ring && k === 0);
      z = ctx.b.node('MatMul', [g, z], `${name}/core${k}`);
      if (k + 1 < d) {
        const q = numel(inModes.slice(k + 2));
        z = ctx.b.node('Reshape', [z, ctx.b.int64('shape', [-1, ranks[k + 1]! * inModes[k + 1]!, q])], `${name}/z${k + 1}`);
      }
    }
    if (ring) {
      z = ctx.b.node('Reshape', [z, ctx.b.int64('shape', [-1, R, out, R])], `${name}/ring`);
      z = ctx.b.node('Transpose', [z], `${name}/ringT`, { perm: [0, 2, 1, 3] });
      z = ctx.b.node('Reshape', [z, ctx.b.int64('shape', [-1, out, R * R])], `${name}/pairs`);
      const eye = new Float32Array(R * R);
      for (let a = 0; a < R; a++) eye[a * R + a] = 1;
      z = ctx.b.node('MatMul', [z, ctx.b.float(`${name}/trace_mask`, [R * R, 1], eye)], `${name}/trace`);
    }
    finish(z, out, bias);
    return rank;
  };
}


/** Modes and ranks r_0..r_{d-1} of a stored tt_dense / tr_dense node, its core shapes checked. */
export function chainOfNode(c: FromNodeContext): { outModes: number[]; inModes: number[]; ranks: number[] } {
  const outModes = attrInts(c.node, 'out_modes');
  const inModes = attrInts(c.node, 'in_modes');
  const cores = outModes.map((_, k) => c.shape(`core.${k}`));
  c.need(cores.every((s, k) => s.length === 4 && s[1] === outModes[k] && s[2] === inModes[k] && s[3] === cores[(k + 1) % cores.length]![0]), 'core shapes do not chain');
  return { outModes, inModes, ranks: cores.map((s) => s[0]!) };
}

/** A TT (boundary ranks 1) or TR form from one rank for all or all d+1 ranks. */
export function chainFromRanks<S extends ChainSpec>(t: Target, rs: number[], method: S['method']): S | string {
  if (t.shape.kind !== 'dense') return `method ${method} does not apply to a conv layer`;
  const { outModes, inModes } = t.modes ? { outModes: [...t.modes.out], inModes: [...t.modes.in] } : denseModes(t.shape.out, t.shape.in, CHAIN_PARTS);
  const d = outModes.length;
  const full = rs.length === d + 1 ? rs : method === 'tt' ? [1, ...new Array<number>(d - 1).fill(rs[0]!), 1] : new Array<number>(d + 1).fill(rs[0]!);
  if (full.length !== d + 1) return `expected 1 or ${d + 1} ranks`;
  return { method, outModes, inModes, ranks: full } as S;
}

/**
 * Which ranks may move: r_k between modes k-1 and k, at most the size of either side of the
 * unfolding; a train's boundary ranks stay 1; a ring's closing rank r_0 = r_d moves with itself.
 */
export function chainRankSlots(spec: ChainSpec): RankSlot[] {
  const dims = spec.outModes.map((m, k) => m * spec.inModes[k]!);
  const d = dims.length;
  const slots: RankSlot[] = [];
  for (let k = 1; k < d; k++) slots.push({ idx: [k], cap: Math.min(numel(dims.slice(0, k)), numel(dims.slice(k))) });
  if (spec.method === 'tr') {
    // The closing rank r_0 = r_d shares the first unfolding with r_1: r_0 r_1 <= min(d_0, rest).
    const first = Math.min(dims[0]!, numel(dims.slice(1)));
    slots.unshift({ idx: [0, d], cap: Math.max(1, Math.floor(first / Math.max(1, spec.ranks[1]!))) });
    slots[1]!.cap = Math.min(slots[1]!.cap, Math.max(1, Math.floor(first / Math.max(1, spec.ranks[0]!))));
  }
  return slots;
}

/** TT-SVD, or TR-SVD with ALS sweeps, into core.k tensors and the out_modes / in_modes attributes. */
export function chainDecompose(t: Target, spec: ChainSpec, ctx: DecomposeContext): Decomposed {
  const r = spec.method === 'tt'
    ? ttSvd(t.weight, spec.outModes, spec.inModes, { ranks: spec.ranks })
    : tensorRing(t.weight, spec.outModes, spec.inModes, { ranks: spec.ranks, alsSweeps: ctx.quick ? 1 : 2 }); // each sweep costs seconds on big layers
  r.cores.forEach((c, k) => ctx.add(`core.${k}`, [r.ranks[k]!, spec.outModes[k]!, spec.inModes[k]!, r.ranks[k + 1]!], c));
  ctx.attrs['out_modes'] = spec.outModes;
  ctx.attrs['in_modes'] = spec.inModes;
  return { op: spec.method === 'tt' ? TT_KIND : TR_KIND, relError: r.relError };
}

/** TFLite of tt_dense, tr_dense and ttl_dense: RESHAPE + BATCH_MATMUL / FULLY_CONNECTED chains
 *  (export/tfliteTensorNet.ts) on the input in NCHW element order. */
export const tensorNetTflite: TfliteEmitter = (ex, node, input, out) => {
  const x = input(0);
  if (x.shape.length > 2 && x.shape.length !== 4) unsupported(node, `a tensor-network dense layer on a rank-${x.shape.length} input`);
  const src = ex.toNchwOrder(x, node.name);
  const t = tensorNetDense(ex, node, { t: src, batch: x.shape[0]!, features: numel(x.shape.slice(1)) }, out.act, out.name);
  return { t, shape: out.shape };
};
