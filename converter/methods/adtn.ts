// adtn, deep automatically differentiable tensor networks (Qing, Li, Zhou, Ran et al.): a dense
// layer's weight as the state of a circuit of local gates on Q indices of dimension 2
// (runtime/layers/adtnDense.ts). Dense layers only; under --method adtn a convolution gets Tucker-2
// (methods/index.ts FAMILIES). The "rank" is the depth M; arity 2 and the brick-wall pairing are the
// converter's choice (train --layer adtn takes the others). The fit is gradient descent on
// ||W - W(theta)|| (decompose/adtn.ts); its error is what convert reports. When the fit captures
// nothing (error above ADTN_FALLBACK_ERROR), the layer starts from the random initialisation at the
// target variance instead, and the report says so (init 'random', fitError): a fine-tuning start.
import { ADTN_FALLBACK_ERROR, fitAdtn } from '../decompose/adtn.js';
import { linear, type Emitter } from '../export/context.js';
import { dims, rel, Spectrum, type Candidate } from '../rank/candidates.js';
import { fullSvd, type Target } from '../rank/target.js';
import { ADTN_PAIRINGS, adtnLayout, adtnParams, adtnQubits, adtnWeight, type AdtnLayout, type AdtnPairing } from '../../runtime/layers/adtnDense.js';
import { adtnDense, ADTN_DENSE_KIND } from '../train/layers/adtn.js';
import type { ConverterKind, FactorMethod, TfliteEmitter } from './method.js';
import type { GraphNode } from '../../runtime/ir.js';

/** Arity and pairing the converter writes. */
export const ADTN_ARITY = 2;
export const ADTN_PAIRING: AdtnPairing = 'brickwall';
/** Adam steps of the fit to the pretrained weight (a quick fit of the measured search: 30); each step rebuilds the whole 2^Q state, forward and back. */
export const ADTN_FIT_STEPS = 100;
/** Depths offered to the rank allocation. */
const DEPTHS = [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64];

type AdtnSpec = { method: 'adtn'; depth: number };

function layoutOf(t: Target, depth: number): AdtnLayout {
  const { rows, cols } = dims(t.shape);
  return adtnLayout(adtnQubits(rows * cols, ADTN_ARITY), depth, ADTN_ARITY, ADTN_PAIRING);
}

/**
 * The ladder of depths. No closed form prices an ADTN's error short of fitting it, so each depth is
 * priced as a truncated SVD with as many parameters (an estimate, from the weight's spectrum, used
 * only to spread a --ratio budget; the fitted error is what is reported).
 */
function candidates(t: Target): Candidate[] {
  const { rows, cols } = dims(t.shape);
  const sp = new Spectrum(fullSvd(t).singularValues);
  return DEPTHS.map((depth) => {
    const p = adtnParams(layoutOf(t, depth));
    const r = Math.max(0, Math.floor(p / (rows + cols)));
    return { spec: { method: 'adtn', depth } as AdtnSpec, params: p + t.bias, err: rel(sp.discarded(r), sp.total) };
  }).filter((c) => c.params < t.denseParams) as unknown as Candidate[];
}

/** The layout of a stored node (attributes features, depth, arity, pairing). */
function nodeLayout(node: GraphNode): { l: AdtnLayout; out: number; inF: number } {
  const [out, inF] = node.attrs['features'] as number[];
  const arity = node.attrs['arity'] as number;
  return { l: adtnLayout(adtnQubits(out! * inF!, arity), node.attrs['depth'] as number, arity, node.attrs['pairing'] as AdtnPairing), out: out!, inF: inF! };
}

/** ONNX: the weight rebuilt from the network, stored as a constant, then one Gemm. */
const adtnOnnx: Emitter = (ctx) => {
  const { l, out, inF } = nodeLayout(ctx.node);
  const start = ctx.weight('start');
  const gates = ctx.weight('gates');
  const w = adtnWeight(l, start.data, gates.data, out, inF);
  const rank = ctx.ranks[0]!;
  const tensor = { name: `${ctx.node.name}.weight`, dtype: 'f32' as const, shape: [out, inF], data: w };
  linear(ctx, ctx.inputs[0]!, rank, { tensor, data: w, shape: [out, inF] }, ctx.optionalWeight('bias'), ctx.node.name, ctx.output);
  return rank;
};

/** TFLite: FULLY_CONNECTED with the rebuilt weight. */
const adtnTflite: TfliteEmitter = (ex, node, input, out) => {
  const { l, out: rows, inF } = nodeLayout(node);
  const w = adtnWeight(l, ex.weight(node, 'start').data, ex.weight(node, 'gates').data, rows, inF);
  return ex.fullyConnected(input(0), w, rows, inF, ex.optionalWeight(node, 'bias')?.data, node.name, out.name, out.act, node);
};

const ADTN_DENSE: ConverterKind = {
  op: ADTN_DENSE_KIND,
  trainable: (c) => {
    const f = c.node.attrs['features'];
    const pairing = c.node.attrs['pairing'];
    c.need(Array.isArray(f) && f.length === 2, 'attribute features [out, in] expected');
    c.need(typeof pairing === 'string' && (ADTN_PAIRINGS as readonly string[]).includes(pairing), 'attribute pairing expected');
    const [out, inF] = f as number[];
    const st = c.shape('start');
    const gs = c.shape('gates');
    const { l } = nodeLayout(c.node);
    c.need(st[0] === l.q && st[1] === 2 && gs[0] === l.gates, `start [${l.q}, 2] and gates [${l.gates}, ..] expected`);
    return adtnDense(inF!, out!, { depth: l.depth, arity: l.arity, pairing: l.pairing }, c.init);
  },
  onnx: adtnOnnx,
  tflite: adtnTflite,
};

export const adtn: FactorMethod<'adtn'> = {
  name: 'adtn',
  layers: ['dense'],
  applies: () => false,
  candidates,
  fromRanks: (t, r) => (t.shape.kind !== 'dense' ? 'adtn takes dense layers only' : r.length !== 1 ? 'expected one rank: the depth' : { method: 'adtn', depth: r[0]! }),
  ranks: (spec) => [spec.depth],
  withRanks: (_spec, r) => ({ method: 'adtn', depth: r[0]! }),
  rankSlots: (t) => {
    // Deep enough to pass the dense layer's size is never useful.
    const one = adtnParams(layoutOf(t, 2)) / 2;
    return [{ idx: [0], cap: Math.max(1, Math.floor(t.denseParams / one)) }];
  },
  params: (t, spec) => adtnParams(layoutOf(t, spec.depth)) + t.bias,
  shapes: (t, spec) => {
    const l = layoutOf(t, spec.depth);
    const D = 2 ** l.arity;
    return { op: ADTN_DENSE_KIND, roles: { start: [l.q, 2], gates: [l.gates, D, D] } };
  },
  decompose: (t, spec, ctx) => {
    const { rows, cols } = dims(t.shape);
    const f = fitAdtn(t.weight, rows, cols, {
      depth: spec.depth, arity: ADTN_ARITY, pairing: ADTN_PAIRING, steps: ctx.quick ? 30 : ADTN_FIT_STEPS, seed: ctx.seed, fallbackAbove: ADTN_FALLBACK_ERROR,
    });
    const D = 2 ** f.layout.arity;
    ctx.add('start', [f.layout.q, 2], f.start);
    ctx.add('gates', [f.layout.gates, D, D], f.gates);
    Object.assign(ctx.attrs, { features: [rows, cols], depth: spec.depth, arity: f.layout.arity, pairing: f.layout.pairing });
    return { op: ADTN_DENSE_KIND, relError: f.relError, ...(f.init === 'random' ? { init: 'random' as const, fitError: f.fitRelError } : {}) };
  },
  kinds: [ADTN_DENSE],
};
