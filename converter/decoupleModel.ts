// `convert --method decouple`: every dense → activation → dense pair of a model that a flexact layer
// can stand for is fitted on samples of its real input (the source model run on the calibration
// data) and replaced by one flexact node. The pairs are fitted to the source's function, each at the
// source's own activations, so one pair's fit does not depend on another's.
//
//   dense(W1, b1) ─▶ relu|tanh|sigmoid ─▶ dense(W2, b2)     becomes     flexact(v, coeffs, w, bias, range)
//
// Beside each fit the report gives what truncated SVD would do with the same parameters (both
// weights at the largest rank the flexact layer's parameter count buys), on the same held-out inputs.
import type { GraphNode, Model, StoredTensor, Tensor } from '../runtime/ir.js';
import { numel } from '../runtime/ir.js';
import { tensorToFloat32 } from '../runtime/format/dtype.js';
import { Session } from '../runtime/session.js';
import { checkAgreement, type AgreementCheck } from './check.js';
import { CompressError } from './compressError.js';
import { sourceParams } from './compress.js';
import { evaluateDecoupled } from './decompose/decouple/als.js';
import { flexactTensors } from './decompose/decouple/layer.js';
import { decoupleDenseAct } from './decompose/decouple/pair.js';
import type { DenseActPair, PairActivation } from './decompose/decouple/samples.js';
import { truncatedSvd } from './decompose/svd.js';
import { DEFAULT_BASIS, flexactParams, parseBasis } from './methods/decouple.js';

/** Activations between the two dense layers that the pair's analytic Jacobian knows. */
const PAIR_ACTIVATIONS: ReadonlySet<string> = new Set<PairActivation>(['relu', 'tanh', 'sigmoid']);

/** A replaceable pair as found in a graph. */
export interface DecouplePairNodes {
  first: GraphNode;
  activation: GraphNode;
  second: GraphNode;
  /** m, h, n */
  inputs: number;
  hidden: number;
  outputs: number;
  /** Parameters of the two dense layers, biases included. */
  params: number;
}

export interface DecoupleModelOptions {
  /** r, the branches of every flexact layer. */
  neurons: number;
  /** `poly:D` or `bspline:K`; default poly:3. */
  basis?: string;
  /** Model inputs [N, ...] whose activations are the fit's samples. */
  samples: Tensor;
  /** Model inputs never used by the fit: the held-out errors and the agreement check. */
  holdout: Tensor;
  /** Where the inputs came from (the check's label). */
  data: AgreementCheck['data'];
  /** Principal directions of a wide input (pair.ts); default 64 (at least r). */
  components?: number;
  /** Fits per pair (the first from the Jacobian's leading directions). Default 1. */
  restarts?: number;
  /** Warm restarts (als.ts DecoupleOptions.warm): the later fits start near the best so far. Default: random restarts. */
  warm?: number;
  /** ALS sweeps per fit. Default 100. */
  sweeps?: number;
  seed?: number;
  log?: (msg: string) => void;
  onPair?: (done: number, total: number, label: string) => void;
}

export interface DecouplePairReport {
  /** The flexact node's name. */
  name: string;
  nodes: [string, string, string];
  activation: string;
  inputs: number;
  hidden: number;
  outputs: number;
  neurons: number;
  basis: 'poly' | 'bspline';
  /** Basis functions per branch: the polynomial degree, or the number of B-splines. */
  degree: number;
  samples: number;
  /** Principal directions fitted in (equal to inputs when there was no projection), and their variance share. */
  components: number;
  energy: number;
  /** ‖J − Ĵ‖/‖J‖ and ‖F − F̂‖/‖F − mean F‖ on the fit's samples (of J P under a projection). */
  jacobianError: number;
  valueError: number;
  /** ‖F − F̂‖/‖F − mean F‖ on the held-out inputs. */
  heldOutValueError: number;
  paramsBefore: number;
  paramsAfter: number;
  /** Truncated SVD of both weights at the largest rank within paramsAfter (svdAtBudget); null when none fits. */
  svd: { rank: number; params: number; heldOutValueError: number } | null;
  sweeps: number;
  seconds: number;
}

export interface DecoupleReport {
  method: 'decouple';
  basis: string;
  neurons: number;
  pairs: DecouplePairReport[];
  /** Pairs left as they were, and why. */
  skipped: Array<{ nodes: [string, string, string]; reason: string }>;
  sourceParams: number;
  params: number;
  ratio: number;
  check: AgreementCheck | null;
  seconds: number;
}

function consumers(model: Model, value: string): GraphNode[] {
  return model.graph.nodes.filter((n) => n.inputs.includes(value));
}

function denseWeight(model: Model, node: GraphNode): StoredTensor | undefined {
  if (node.op !== 'dense') return undefined;
  const w = model.tensors.get(node.weights['weight'] ?? '');
  return w && w.shape.length === 2 ? w : undefined;
}

function biasCount(model: Model, node: GraphNode): number {
  const b = model.tensors.get(node.weights['bias'] ?? '');
  return b ? numel(b.shape) : 0;
}

/**
 * Every dense → relu|tanh|sigmoid → dense chain whose middle values nothing else reads, in graph
 * order (pairs may overlap: a dense layer can end one and start the next).
 */
export function findDecouplePairs(model: Model): DecouplePairNodes[] {
  const outs = new Set(model.graph.outputs);
  const found: DecouplePairNodes[] = [];
  for (const first of model.graph.nodes) {
    const w1 = denseWeight(model, first);
    if (!w1 || first.outputs.length !== 1 || outs.has(first.outputs[0]!)) continue;
    const [act, ...more] = consumers(model, first.outputs[0]!);
    if (!act || more.length > 0 || !PAIR_ACTIVATIONS.has(act.op) || act.inputs.length !== 1 || act.outputs.length !== 1) continue;
    if (outs.has(act.outputs[0]!)) continue;
    const [second, ...others] = consumers(model, act.outputs[0]!);
    if (!second || others.length > 0 || second.inputs[0] !== act.outputs[0] || second.inputs.length !== 1) continue;
    const w2 = denseWeight(model, second);
    if (!w2 || w2.shape[1] !== w1.shape[0]) continue;
    const [hidden, inputs] = w1.shape as [number, number];
    const outputs = w2.shape[0]!;
    found.push({ first, activation: act, second, inputs, hidden, outputs, params: hidden * inputs + outputs * hidden + biasCount(model, first) + biasCount(model, second) });
  }
  return found;
}

/** The pair's weights in f32 (f16 / int8 of a re-compressed .flm dequantised), biases zero when absent. */
function pairWeights(model: Model, p: DecouplePairNodes): DenseActPair {
  const t = (node: GraphNode, role: string, size: number): Float32Array => {
    const s = model.tensors.get(node.weights[role] ?? '');
    return s ? tensorToFloat32(s) : new Float32Array(size);
  };
  return {
    inputs: p.inputs, hidden: p.hidden, outputs: p.outputs,
    w1: t(p.first, 'weight', 0), b1: t(p.first, 'bias', p.hidden),
    w2: t(p.second, 'weight', 0), b2: t(p.second, 'bias', p.outputs),
    activation: p.activation.op as PairActivation,
  };
}

/** f(u) of the pair at the rows of u, in f64. */
function pairValues(pair: DenseActPair, u: Float32Array, rows: number, w1: ArrayLike<number> = pair.w1): Float64Array {
  const { inputs: m, hidden: h, outputs: n } = pair;
  const out = new Float64Array(rows * n);
  const a = new Float64Array(h);
  for (let k = 0; k < rows; k++) {
    for (let q = 0; q < h; q++) {
      let s = pair.b1[q]!;
      for (let j = 0; j < m; j++) s += w1[q * m + j]! * u[k * m + j]!;
      a[q] = pair.activation === 'relu' ? Math.max(0, s) : pair.activation === 'tanh' ? Math.tanh(s) : 1 / (1 + Math.exp(-s));
    }
    for (let i = 0; i < n; i++) {
      let s = pair.b2[i]!;
      for (let q = 0; q < h; q++) s += pair.w2[i * h + q]! * a[q]!;
      out[k * n + i] = s;
    }
  }
  return out;
}

/** ‖F − F̂‖ / ‖F − mean F‖ over rows of n outputs. */
function centredError(f: Float64Array, fHat: Float64Array, n: number): number {
  const rows = f.length / n;
  const mean = new Float64Array(n);
  for (let k = 0; k < rows; k++) for (let i = 0; i < n; i++) mean[i]! += f[k * n + i]! / rows;
  let d = 0;
  let s = 0;
  for (let k = 0; k < rows; k++)
    for (let i = 0; i < n; i++) {
      d += (f[k * n + i]! - fHat[k * n + i]!) ** 2;
      s += (f[k * n + i]! - mean[i]!) ** 2;
    }
  return s > 0 ? Math.sqrt(d / s) : Math.sqrt(d);
}

/**
 * What truncated SVD does with a parameter budget: both weights of the pair at one rank k (W2 kept
 * dense where that is smaller than its factors), the largest k whose parameters, biases included,
 * stay within the budget. Null when not even rank 1 fits.
 */
export function svdAtBudget(p: Pick<DecouplePairNodes, 'inputs' | 'hidden' | 'outputs'>, biases: number, budget: number): { rank: number; params: number; secondDense: boolean } | null {
  const { inputs: m, hidden: h, outputs: n } = p;
  const cost = (k: number) => {
    const factored = Math.min(k, n, h) * (n + h);
    const secondDense = n * h <= factored;
    return { params: k * (h + m) + biases + (secondDense ? n * h : factored), secondDense };
  };
  let best: { rank: number; params: number; secondDense: boolean } | null = null;
  for (let k = 1; k <= Math.min(h, m); k++) {
    const c = cost(k);
    if (c.params > budget) break;
    best = { rank: k, ...c };
  }
  return best;
}

/** W [rows, cols] rebuilt from its k leading singular triplets. */
function rebuilt(w: ArrayLike<number>, rows: number, cols: number, k: number): Float32Array {
  const s = truncatedSvd(Float32Array.from(w), rows, cols, k);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let q = 0; q < s.rank; q++) {
      const a = s.u[i * s.rank + q]!;
      for (let j = 0; j < cols; j++) out[i * cols + j]! += a * s.v[q * cols + j]!;
    }
  return out;
}

/** The rows of every named value when the source model runs on x (the pair inputs are all one needs). */
function activations(model: Model, x: Tensor, names: string[]): Map<string, { rows: number; data: Float32Array }> {
  const session = Session.create(model, { retainWeights: false });
  const values = session.run({ [session.inputNames[0]!]: x }, true);
  const out = new Map<string, { rows: number; data: Float32Array }>();
  for (const name of names) {
    const v = values[name] ?? (name === session.inputNames[0] ? x : undefined);
    if (!v) throw new CompressError('NO_PAIR', `decouple: the pair input ${name} was not computed by the source model`);
    const width = v.shape[v.shape.length - 1]!;
    out.set(name, { rows: v.data.length / width, data: v.data });
  }
  return out;
}

/** Chooses pairs that do not share a node, the largest first. */
function disjointPairs(pairs: DecouplePairNodes[]): DecouplePairNodes[] {
  const used = new Set<string>();
  const keep: DecouplePairNodes[] = [];
  for (const p of [...pairs].sort((a, b) => b.params - a.params)) {
    const names = [p.first.name, p.activation.name, p.second.name];
    if (names.some((n) => used.has(n))) continue;
    names.forEach((n) => used.add(n));
    keep.push(p);
  }
  return keep;
}

/** Replaces the model's replaceable pairs by flexact layers fitted to them (see the file's head). */
export function decoupleModel(model: Model, opts: DecoupleModelOptions): { model: Model; report: DecoupleReport } {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const basisSpec = opts.basis ?? DEFAULT_BASIS;
  const { basis, degree } = parseBasis(basisSpec);
  const r = opts.neurons;
  if (!Number.isInteger(r) || r < 1) throw new CompressError('BAD_NEURONS', `--neurons ${r}: expected a positive integer`);
  const all = findDecouplePairs(model);
  if (all.length === 0) {
    throw new CompressError('NO_PAIR', 'decouple: the model has no dense → relu|tanh|sigmoid → dense pair whose middle values nothing else reads');
  }
  const skipped: DecoupleReport['skipped'] = [];
  const chosen = disjointPairs(all).filter((p) => {
    const after = flexactParams(p.inputs, p.outputs, r, degree);
    const why = r >= p.hidden ? `${r} neurons is not fewer than its ${p.hidden} hidden ones`
      : r > p.inputs ? `${r} neurons exceed its ${p.inputs} inputs`
        : after >= p.params ? `a flexact layer of ${r} neurons has ${after} parameters, not fewer than its ${p.params}` : '';
    if (why) skipped.push({ nodes: [p.first.name, p.activation.name, p.second.name], reason: why });
    return !why;
  });
  if (chosen.length === 0) {
    throw new CompressError('BAD_NEURONS', `--neurons ${r} is too large for every pair: ${skipped.map((s) => `${s.nodes[0]} → ${s.nodes[2]}: ${s.reason}`).join('; ')}`);
  }
  const inputs = [...new Set(chosen.map((p) => p.first.inputs[0]!))];
  const fitActs = activations(model, opts.samples, inputs);
  const holdActs = activations(model, opts.holdout, inputs);

  const tensors = new Map(model.tensors);
  const replaced = new Map<string, GraphNode>();
  const dropped = new Set<string>();
  const pairs: DecouplePairReport[] = [];
  chosen.forEach((p, idx) => {
    const t1 = performance.now();
    const label = `${p.first.name} → ${p.activation.op} → ${p.second.name}`;
    opts.onPair?.(idx, chosen.length, label);
    const pair = pairWeights(model, p);
    const u = fitActs.get(p.first.inputs[0]!)!;
    if (u.rows < 2 * r) {
      throw new CompressError('BAD_NEURONS', `--neurons ${r} needs at least ${2 * r} samples of ${p.first.name}'s input, the data gave ${u.rows} (give more with --samples)`);
    }
    const components = Math.min(p.inputs, Math.max(r, Math.floor(opts.components ?? 64)));
    const fit = decoupleDenseAct(pair, u.data, u.rows, r, {
      basis, degree, components, start: 'directions', restarts: opts.restarts ?? 1, iters: opts.sweeps ?? 100, seed: opts.seed ?? 1, warm: opts.warm,
    });
    const lay = flexactTensors(fit.fn);
    const hold = holdActs.get(p.first.inputs[0]!)!;
    const f = pairValues(pair, hold.data, hold.rows);
    const heldOutValueError = centredError(f, evaluateDecoupled(fit.fn, hold.data, hold.rows), p.outputs);
    const paramsAfter = flexactParams(p.inputs, p.outputs, r, degree);
    // Truncated SVD of the pair at the same size (both weights, one rank: svdAtBudget).
    const at = svdAtBudget(p, biasCount(model, p.first) + biasCount(model, p.second), paramsAfter);
    let svd: DecouplePairReport['svd'] = null;
    if (at) {
      const w1k = rebuilt(pair.w1, p.hidden, p.inputs, at.rank);
      const w2k = at.secondDense ? pair.w2 : rebuilt(pair.w2, p.outputs, p.hidden, at.rank);
      svd = { rank: at.rank, params: at.params, heldOutValueError: centredError(f, pairValues({ ...pair, w2: w2k }, hold.data, hold.rows, w1k), p.outputs) };
    }
    const name = `${p.first.name}_flexact`;
    const weights: Record<string, string> = {};
    for (const [role, t] of Object.entries({ v: lay.v, w: lay.w, coeffs: lay.coeffs, bias: lay.bias, range: lay.range })) {
      const tname = `${name}.${role}`;
      tensors.set(tname, { name: tname, dtype: 'f32', shape: [...t.shape], data: t.data });
      weights[role] = tname;
    }
    for (const n of [p.first, p.second]) for (const w of Object.values(n.weights)) tensors.delete(w);
    replaced.set(p.first.name, { name, op: 'flexact', inputs: [...p.first.inputs], outputs: [...p.second.outputs], attrs: { ...lay.attrs }, weights });
    dropped.add(p.activation.name);
    dropped.add(p.second.name);
    const seconds = (performance.now() - t1) / 1000;
    pairs.push({
      name, nodes: [p.first.name, p.activation.name, p.second.name], activation: p.activation.op,
      inputs: p.inputs, hidden: p.hidden, outputs: p.outputs, neurons: r, basis, degree, samples: u.rows,
      components: fit.projection?.p ?? p.inputs, energy: fit.projection?.energy ?? 1,
      jacobianError: fit.jacobianError, valueError: fit.valueError, heldOutValueError,
      paramsBefore: p.params, paramsAfter, svd, sweeps: fit.sweeps, seconds,
    });
    log(`  ${label}: ${r} branches of ${basis === 'poly' ? `degree ${degree}` : `${degree} cubic B-splines`}, J error ${fit.jacobianError.toFixed(4)}, F error ${fit.valueError.toFixed(4)} ` +
      `(held out ${heldOutValueError.toFixed(4)}${svd ? `; SVD rank ${svd.rank} at ${svd.params} params: ${svd.heldOutValueError.toFixed(4)}` : ''}) in ${seconds.toFixed(1)} s`);
  });
  // A weight shared with a node that stays (tied weights) is kept.
  const nodes = model.graph.nodes.filter((n) => !dropped.has(n.name)).map((n) => replaced.get(n.name) ?? n);
  for (const n of nodes) for (const w of Object.values(n.weights)) if (!tensors.has(w) && model.tensors.has(w)) tensors.set(w, model.tensors.get(w)!);
  const out: Model = { graph: { ...model.graph, nodes }, tensors, metadata: { ...model.metadata } };
  const total = typeof model.metadata['convert.source_params'] === 'number' ? model.metadata['convert.source_params'] : sourceParams(model);
  const params = sourceParams(out);
  out.metadata['convert.method'] = 'decouple';
  out.metadata['convert.layers'] = pairs.map((p) => ({
    name: p.name, op: 'flexact', replaces: p.nodes, ranks: [p.neurons], degree: p.degree,
    jacobian_error: p.jacobianError, value_error: p.valueError, rel_error: p.heldOutValueError,
  }));
  out.metadata['convert.source_params'] = total;
  out.metadata['convert.ratio'] = total / params;
  let check: AgreementCheck | null = null;
  try {
    check = checkAgreement(model, out, opts.holdout, opts.data);
  } catch (e) {
    log(`check skipped: ${(e as Error).message}`);
  }
  return {
    model: out,
    report: { method: 'decouple', basis: basisSpec, neurons: r, pairs, skipped, sourceParams: total, params, ratio: total / params, check, seconds: (performance.now() - t0) / 1000 },
  };
}
