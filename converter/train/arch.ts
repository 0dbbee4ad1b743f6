// Architectures for 28x28x1 inputs (mlp, lenet5, vgg) built from trainable layers, with the hidden
// layers in the chosen factor kind at ranks sized by a compression ratio. A Net trains through
// forward() and exports through toModel(): the runtime graph, with each layer's params stored
// under `<layer>.<role>`, runs in a Session with no further step.
import type { GraphNode, Model, OpName, StoredTensor } from '../../runtime/ir.js';
import { factorModes } from '../decompose/rank.js';
import { paramsCp, paramsSvd, paramsTr, paramsTt, paramsTtl, paramsTucker2 } from '../decompose/params.js';
import { conv2d as conv2dLayer } from './layers/conv2d.js';
import { CP_KIND, cpConv2d } from '../methods/cp.js';
import { SVD_CONV2D_KIND, SVD_DENSE_KIND, svdConv2d, svdDense } from '../methods/svd.js';
import { TR_KIND, TT_KIND } from '../methods/tensorChain.js';
import { trDense } from '../methods/tr.js';
import { ttDense } from '../methods/tt.js';
import { TTL_KIND, ttlDense } from '../methods/ttl.js';
import { TUCKER2_KIND, tucker2Conv2d } from '../methods/tucker2.js';
import { feasibleRanks, paramsOf, rankCaps, reshapedLayer } from '../methods/reshapedNet.js';
import { chooseReshape, type ReshapedLayout } from '../decompose/reshaped.js';
import type { ReshapedMethod } from '../../runtime/layers/reshapedNet.js';
import { dense } from './layers/dense.js';
import type { InitOptions, TrainLayer } from './layers/layer.js';
import { relu } from './ops/activation.js';
import type { Conv2dParams } from './ops/conv.js';
import { maxPool } from './ops/pool.js';
import { flatten } from './ops/shape.js';
import type { Var } from './tensor.js';

export { svdConv2d } from '../methods/svd.js';
import { adtnLayout, adtnParams, adtnQubits } from '../../runtime/layers/adtnDense.js';
import { adtnConv2d, adtnDense, ADTN_CONV2D_KIND, ADTN_DENSE_KIND } from './layers/adtn.js';

export type ArchName = 'mlp' | 'lenet5' | 'vgg';
export const ARCH_NAMES: readonly ArchName[] = ['mlp', 'lenet5', 'vgg'];
/**
 * The --layer choice; which kind each gives a dense and a conv layer is methods/index.ts FAMILIES;
 * rcp/rtk/rtt/rtr give their own dense and conv kinds (rcp_dense, rcp_conv2d, ...).
 */
export type LayerChoice = 'dense' | 'svd' | 'tucker' | 'cp' | 'tt' | 'tr' | ReshapedMethod | 'adtn';
export const LAYER_CHOICES: readonly LayerChoice[] = ['dense', 'svd', 'tucker', 'cp', 'tt', 'tr', 'rcp', 'rtk', 'rtt', 'rtr', 'adtn'];
export const RESHAPED_CHOICES: readonly LayerChoice[] = ['rcp', 'rtk', 'rtt', 'rtr'];
const RESHAPED = RESHAPED_CHOICES;
/** Deepest ADTN that train builds (a step's time grows with the depth; FC-2 at depth 4: 648 params). */
export const ADTN_MAX_DEPTH = 12;
/** Ratio used for factor kinds when none is given. */
export const DEFAULT_RATIO = 10;

export interface NetConfig {
  arch: ArchName;
  layer: LayerChoice;
  /** Each hidden layer, bias included, is about this many times smaller than dense (factor kinds). */
  ratio?: number;
  /** Seed of every layer's initialisation (default 0). */
  seed?: number;
  /**
   * The hidden layers learn a bias (default true). Off, they have none: past about 1000x a hidden
   * layer's bias (1,024 entries on FC-2) is most of what is left of it (bench/fc2Bias.ts measures
   * what dropping it costs). The ratio is still taken against the dense layer with its bias.
   */
  hiddenBias?: boolean;
  /**
   * The reshape of the hidden dense layers for the reshaped (rcp/rtk/rtt/rtr) and TT/TR kinds:
   * out = T_1..T_M (product: out features), in = S_1..S_M (product: in features), mode m of the
   * output paired with mode m of the input. Default (null): chooseReshape's balanced split for the
   * reshaped kinds, four ascending modes per side for tt/tr. 784 = 4·7·4·7 reads an image's row as
   * (4, 7) and its column as (4, 7), coarse to fine.
   */
  modes?: DenseModes | null;
  /**
   * The ranks of the hidden dense layers for the reshaped kinds (rcp: [R]; rtt: [R_1..R_M]; rtk and
   * rtr: [R_0, R_1..R_M]), instead of the largest uniform rank; the layer, bias included, must
   * still fit dense / ratio. Default (null): the uniform ladder.
   */
  ranks?: number[] | null;
}

export interface DenseModes {
  out: number[];
  in: number[];
}

/** Kinds whose hidden dense layers take NetConfig.modes. */
export const MODED_CHOICES: readonly LayerChoice[] = ['rcp', 'rtk', 'rtt', 'rtr', 'tt', 'tr'];

/** Why `modes` cannot reshape a dense layer inF -> outF, or null when it can. */
export function modesProblem(modes: DenseModes, inF: number, outF: number): string | null {
  const ok = (xs: number[]) => xs.length > 0 && xs.every((x) => Number.isInteger(x) && x >= 1);
  if (!ok(modes.out) || !ok(modes.in)) return 'every mode must be a positive integer';
  if (modes.out.length !== modes.in.length) return `${modes.out.length} output modes but ${modes.in.length} input modes (one of each per pair)`;
  const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);
  if (prod(modes.out) !== outF || prod(modes.in) !== inF) {
    return `modes ${modes.out.join('x')} / ${modes.in.join('x')} multiply to ${prod(modes.out)} x ${prod(modes.in)}, the layer is ${outF} x ${inF}`;
  }
  return null;
}

export interface LayerInfo {
  name: string;
  op: OpName;
  /** A factorisable layer (the first conv on 1 channel and the final classifier are not). */
  hidden: boolean;
  params: number;
  /** Parameters of the same layer kept dense (weight + bias). */
  denseParams: number;
  ranks: number[];
  /** tt/tr/ttl mode sizes; the reshaped kinds' t_modes / s_modes. */
  outModes?: number[];
  inModes?: number[];
}

type Step =
  | { type: 'layer'; info: LayerInfo; layer: TrainLayer }
  | { type: 'relu'; name: string }
  | { type: 'max_pool'; name: string }
  | { type: 'flatten'; name: string };

/** Largest r in [1, cap] with cost(r) <= budget (1 when even r = 1 is over). */
function largestRank(cost: (r: number) => number, budget: number, cap: number): number {
  let r = 1;
  while (r < cap && cost(r + 1) <= budget) r++;
  return r;
}

interface Planned {
  make: (opts: InitOptions) => TrainLayer;
  op: OpName;
  ranks: number[];
  params: number;
  outModes?: number[];
  inModes?: number[];
}

/**
 * A hidden dense layer inF -> outF of kind `choice` whose params, bias included, are <= dense (with
 * its bias) / ratio. Without a bias (`bias` false) the whole budget goes to the weight.
 */
export function planDense(
  choice: LayerChoice, inF: number, outF: number, ratio: number, bias = true, modes: DenseModes | null = null, ranks: number[] | null = null,
): Planned {
  const b = bias ? outF : 0;
  const budget = (inF * outF + outF) / ratio - b;
  if (modes) {
    if (!MODED_CHOICES.includes(choice)) throw new Error(`train: modes apply to ${MODED_CHOICES.join(', ')} layers, not ${choice}`);
    const why = modesProblem(modes, inF, outF);
    if (why) throw new Error(`train: ${why}`);
  }
  if (ranks && !RESHAPED.includes(choice)) throw new Error(`train: ranks apply to ${RESHAPED.join(', ')} layers, not ${choice}`);
  const p = planDenseWeight(choice, inF, outF, budget, b, modes, ranks);
  return { ...p, make: (o) => p.make({ ...o, bias }) };
}

/**
 * A reshaped tensorial layer (rcp/rtk/rtt/rtr) in the converter's layout (chooseReshape), every rank
 * min(r, its cap) for the largest r within `budget`, as the converter's ladder does.
 */
function planReshaped(method: ReshapedMethod, layout: ReshapedLayout, conv: Partial<Conv2dParams> | undefined, budget: number, b: number): Planned {
  const caps = rankCaps(method, layout);
  const ranksOf = (q: number) => feasibleRanks(method, layout, caps.map((c) => Math.min(q, c)));
  const r = largestRank((q) => paramsOf(method, layout, ranksOf(q)), budget, Math.max(...caps));
  const ranks = ranksOf(r);
  return {
    make: (o) => reshapedLayer(method, layout, ranks, conv, o), op: `${method}_${conv ? 'conv2d' : 'dense'}` as OpName,
    ranks, outModes: layout.tModes, inModes: layout.sModes, params: paramsOf(method, layout, ranks) + b,
  };
}

/** A reshaped tensorial dense layer at the given ranks: each within its cap, the whole within `budget`. */
function planReshapedRanks(method: ReshapedMethod, layout: ReshapedLayout, ranks: number[], budget: number, b: number): Planned {
  const caps = rankCaps(method, layout);
  const shape = `${layout.tModes.join('x')}/${layout.sModes.join('x')}`;
  if (ranks.length !== caps.length) throw new Error(`train: ${method} on modes ${shape} takes ${caps.length} ranks, got ${ranks.length}`);
  if (ranks.some((r) => !Number.isInteger(r) || r < 1)) throw new Error('train: every rank must be a positive integer');
  const feasible = feasibleRanks(method, layout, ranks);
  if (feasible.some((r, i) => r !== ranks[i])) {
    throw new Error(`train: ranks [${ranks.join(', ')}] exceed what ${method} on modes ${shape} can hold (at most [${feasible.join(', ')}])`);
  }
  const params = paramsOf(method, layout, ranks);
  if (params > budget) throw new Error(`train: ranks [${ranks.join(', ')}] cost ${params} weights, over the ratio's budget of ${Math.floor(budget)}`);
  return {
    make: (o) => reshapedLayer(method, layout, ranks, undefined, o), op: `${method}_dense` as OpName,
    ranks: [...ranks], outModes: layout.tModes, inModes: layout.sModes, params: params + b,
  };
}

/** The weight of a dense layer within `budget`; `b` bias entries are added to the count. */
function planDenseWeight(
  choice: LayerChoice, inF: number, outF: number, budget: number, b: number, modes: DenseModes | null = null, ranks: number[] | null = null,
): Planned {
  if (RESHAPED.includes(choice)) {
    const layout = modes ? { tModes: [...modes.out], sModes: [...modes.in], kh: 1, kw: 1 } : chooseReshape(outF, inF);
    return ranks ? planReshapedRanks(choice as ReshapedMethod, layout, ranks, budget, b) : planReshaped(choice as ReshapedMethod, layout, undefined, budget, b);
  }
  switch (choice) {
    case 'dense':
      return { make: (o) => dense(inF, outF, o), op: 'dense', ranks: [], params: inF * outF + b };
    case 'svd':
    case 'cp': {
      const r = largestRank((k) => paramsSvd(outF, inF, k), budget, Math.min(inF, outF));
      return { make: (o) => svdDense(inF, outF, r, o), op: SVD_DENSE_KIND, ranks: [r], params: paramsSvd(outF, inF, r) + b };
    }
    case 'tucker': {
      const outModes = factorModes(outF, 2);
      const inModes = factorModes(inF, 2);
      const dims = [...outModes, ...inModes];
      const ranksOf = (k: number) => dims.map((d) => Math.min(d, k));
      const r = largestRank((k) => paramsTtl(outModes, inModes, ranksOf(k)), budget, Math.max(...dims));
      const ranks = ranksOf(r);
      return {
        make: (o) => ttlDense(outModes, inModes, ranks, o), op: TTL_KIND, ranks, outModes, inModes,
        params: paramsTtl(outModes, inModes, ranks) + b,
      };
    }
    case 'tt':
    case 'tr': {
      const d = modes ? modes.out.length : 4;
      const outModes = modes ? [...modes.out] : factorModes(outF, d);
      const inModes = modes ? [...modes.in] : factorModes(inF, d);
      const ring = choice === 'tr';
      const cost = (k: number) => ring ? paramsTr(outModes, inModes, Array(d).fill(k)) : paramsTt(outModes, inModes, [1, ...Array(d - 1).fill(k), 1]);
      const r = largestRank(cost, budget, 4096);
      const ranks: number[] = Array(ring ? d : d - 1).fill(r);
      return {
        make: (o) => (ring ? trDense : ttDense)(outModes, inModes, ranks, o),
        op: ring ? TR_KIND : TT_KIND, ranks, outModes, inModes, params: cost(r) + b,
      };
    }
    case 'adtn': {
      // The deepest brick-wall network of arity-2 gates within the budget (at least depth 1), at
      // most ADTN_MAX_DEPTH: every step rebuilds the whole 2^Q state through each layer.
      const q = adtnQubits(inF * outF);
      const cost = (d: number) => adtnParams(adtnLayout(q, d, 2, 'brickwall'));
      const depth = largestRank(cost, budget, ADTN_MAX_DEPTH);
      return { make: (o) => adtnDense(inF, outF, { depth }, o), op: ADTN_DENSE_KIND, ranks: [depth], params: cost(depth) + b };
    }
    default:
      throw new Error(`train: unknown layer kind ${String(choice)}`);
  }
}

/** A hidden conv layer of kind `choice`, params (bias included) <= dense / ratio. tt and tr use Tucker-2; adtn uses adtn_conv2d (Tucker-2 when depth 1 exceeds the budget). */
export function planConv(
  choice: LayerChoice, I: number, O: number, k: number, conv: Partial<Conv2dParams>, ratio: number, bias = true,
): Planned {
  const b = bias ? O : 0;
  const budget = (O * I * k * k + O) / ratio - b;
  const p = planConvWeight(choice, I, O, k, conv, budget, b);
  return { ...p, make: (o) => p.make({ ...o, bias }) };
}

function planConvWeight(
  choice: LayerChoice, I: number, O: number, k: number, conv: Partial<Conv2dParams>, budget: number, b: number,
): Planned {
  const kernel: [number, number] = [k, k];
  if (RESHAPED.includes(choice)) return planReshaped(choice as ReshapedMethod, chooseReshape(O, I, k, k), conv, budget, b);
  switch (choice) {
    case 'dense':
      return { make: (o) => conv2dLayer(I, O, kernel, conv, o), op: 'conv2d', ranks: [], params: O * I * k * k + b };
    case 'svd': {
      const r = largestRank((q) => paramsSvd(O, I * k * k, q), budget, Math.min(O, I * k * k));
      return { make: (o) => svdConv2d(I, O, kernel, r, conv, o), op: SVD_CONV2D_KIND, ranks: [r], params: paramsSvd(O, I * k * k, r) + b };
    }
    case 'cp': {
      const r = largestRank((q) => paramsCp(O, I, k, k, q), budget, 4096);
      return { make: (o) => cpConv2d(I, O, kernel, r, conv, o), op: CP_KIND, ranks: [r], params: paramsCp(O, I, k, k, r) + b };
    }
    case 'adtn': {
      // adtn_conv2d at the deepest circuit within the budget; Tucker-2 when not even depth 1 fits.
      const q = adtnQubits(O * I * k * k);
      const cost = (d: number) => adtnParams(adtnLayout(q, d, 2, 'brickwall'));
      if (cost(1) <= budget) {
        const depth = largestRank(cost, budget, ADTN_MAX_DEPTH);
        return { make: (o) => adtnConv2d(I, O, kernel, { depth }, conv, o), op: ADTN_CONV2D_KIND, ranks: [depth], params: cost(depth) + b };
      }
      return planConvWeight('tucker', I, O, k, conv, budget, b);
    }
    case 'tucker':
    case 'tt':
    case 'tr': {
      const ranksOf = (q: number): [number, number] => [Math.min(q, I), Math.min(q, O)];
      const cost = (q: number) => paramsTucker2(O, I, k, k, ranksOf(q)[1], ranksOf(q)[0]);
      const r = largestRank(cost, budget, Math.max(I, O));
      const ranks = ranksOf(r);
      return { make: (o) => tucker2Conv2d(I, O, kernel, ranks, conv, o), op: TUCKER2_KIND, ranks, params: cost(r) + b };
    }
    default:
      throw new Error(`train: unknown layer kind ${String(choice)}`);
  }
}

/** Per-layer initialisation seed derived from the run seed. */
function layerSeed(seed: number, index: number): number {
  return (Math.imul((seed >>> 0) + 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
}

export class Net {
  constructor(readonly config: Required<NetConfig>, private readonly steps: Step[]) {}

  /** Every trainable parameter as `<layer>.<role>`, the names the exported tensors carry. */
  get params(): Record<string, Var> {
    const out: Record<string, Var> = {};
    for (const s of this.steps) {
      if (s.type === 'layer') for (const [role, v] of Object.entries(s.layer.params)) out[`${s.info.name}.${role}`] = v;
    }
    return out;
  }

  get layers(): LayerInfo[] {
    return this.steps.flatMap((s) => (s.type === 'layer' ? [s.info] : []));
  }

  /** x [B, 1, 28, 28] -> logits [B, 10]. */
  forward(x: Var): Var {
    let z = x;
    for (const s of this.steps) {
      if (s.type === 'layer') z = s.layer.forward(z);
      else if (s.type === 'relu') z = relu(z);
      else if (s.type === 'max_pool') z = maxPool(z, { kernel: [2, 2] });
      else z = flatten(z, 1);
    }
    return z;
  }

  /** The runtime model of the current parameters (copies, so training on does not change it). */
  toModel(metadata: Record<string, unknown> = {}): Model {
    const tensors = new Map<string, StoredTensor>();
    const nodes: GraphNode[] = [];
    let value = 'input';
    this.steps.forEach((s, i) => {
      const name = s.type === 'layer' ? s.info.name : s.name;
      const out = i === this.steps.length - 1 ? 'logits' : `${name}.out`;
      const node: GraphNode = { name, op: 'identity', inputs: [value], outputs: [out], attrs: {}, weights: {} };
      if (s.type === 'layer') {
        node.op = s.layer.op;
        node.attrs = { ...s.layer.attrs };
        for (const [role, v] of Object.entries(s.layer.params)) {
          const tname = `${name}.${role}`;
          node.weights[role] = tname;
          tensors.set(tname, { name: tname, dtype: 'f32', shape: [...v.shape], data: Float32Array.from(v.data) });
        }
      } else if (s.type === 'relu') node.op = 'relu';
      else if (s.type === 'flatten') Object.assign(node, { op: 'flatten', attrs: { axis: 1 } });
      else Object.assign(node, { op: 'max_pool', attrs: { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil_mode: 0 } });
      nodes.push(node);
      value = out;
    });
    const c = this.config;
    return {
      graph: { inputs: [{ name: 'input', shape: [-1, 1, 28, 28] }], outputs: ['logits'], nodes },
      tensors,
      metadata: {
        'train.arch': c.arch, 'train.layer': c.layer, 'train.ratio': c.ratio, 'train.seed': c.seed, 'train.hidden_bias': c.hiddenBias, ...metadata,
      },
    };
  }

  /** Copies the tensors of a model written by toModel() (a checkpoint) into the parameters. */
  loadWeights(model: Model): void {
    for (const [name, v] of Object.entries(this.params)) {
      const t = model.tensors.get(name);
      if (!t) throw new Error(`train: checkpoint has no tensor ${name}`);
      if (t.dtype !== 'f32' || !(t.data instanceof Float32Array)) throw new Error(`train: checkpoint tensor ${name} is ${t.dtype}, expected f32`);
      if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
        throw new Error(`train: checkpoint tensor ${name} has shape [${t.shape}], the model needs [${v.shape}]`);
      }
      v.data.set(t.data);
    }
  }
}

type Spec =
  | { t: 'fc'; in: number; out: number; hidden: boolean }
  | { t: 'conv'; in: number; out: number; k: number; pad: number; hidden: boolean }
  | { t: 'relu' } | { t: 'pool' } | { t: 'flatten' };

// The first conv (one input channel, a few hundred weights) and the 10-way classifier stay dense.
const SPECS: Record<ArchName, Spec[]> = {
  mlp: [{ t: 'flatten' }, { t: 'fc', in: 784, out: 1024, hidden: true }, { t: 'relu' }, { t: 'fc', in: 1024, out: 10, hidden: false }],
  lenet5: [
    { t: 'conv', in: 1, out: 20, k: 5, pad: 0, hidden: false }, { t: 'relu' }, { t: 'pool' },
    { t: 'conv', in: 20, out: 50, k: 5, pad: 0, hidden: true }, { t: 'relu' }, { t: 'pool' },
    { t: 'flatten' }, { t: 'fc', in: 800, out: 500, hidden: true }, { t: 'relu' }, { t: 'fc', in: 500, out: 10, hidden: false },
  ],
  vgg: [
    { t: 'conv', in: 1, out: 32, k: 3, pad: 1, hidden: false }, { t: 'relu' },
    { t: 'conv', in: 32, out: 32, k: 3, pad: 1, hidden: true }, { t: 'relu' }, { t: 'pool' },
    { t: 'conv', in: 32, out: 64, k: 3, pad: 1, hidden: true }, { t: 'relu' },
    { t: 'conv', in: 64, out: 64, k: 3, pad: 1, hidden: true }, { t: 'relu' }, { t: 'pool' },
    { t: 'flatten' }, { t: 'fc', in: 3136, out: 256, hidden: true }, { t: 'relu' }, { t: 'fc', in: 256, out: 10, hidden: false },
  ],
};

export function buildNet(c: NetConfig): Net {
  if (!ARCH_NAMES.includes(c.arch)) throw new Error(`train: unknown architecture ${String(c.arch)} (allowed: ${ARCH_NAMES.join(', ')})`);
  if (!LAYER_CHOICES.includes(c.layer)) throw new Error(`train: unknown layer kind ${String(c.layer)} (allowed: ${LAYER_CHOICES.join(', ')})`);
  const ratio = c.layer === 'dense' ? 1 : c.ratio ?? DEFAULT_RATIO;
  if (!(ratio >= 1) || !Number.isFinite(ratio)) throw new Error(`train: ratio ${ratio} must be a number >= 1`);
  const seed = c.seed ?? 0;
  const hiddenBias = c.hiddenBias ?? true;
  const modes = c.modes ?? null;
  const ranks = c.ranks ?? null;
  const steps: Step[] = [];
  const count: Record<string, number> = {};
  const next = (prefix: string) => `${prefix}${(count[prefix] = (count[prefix] ?? 0) + 1)}`;
  SPECS[c.arch].forEach((s, i) => {
    if (s.t === 'relu') steps.push({ type: 'relu', name: next('relu') });
    else if (s.t === 'pool') steps.push({ type: 'max_pool', name: next('pool') });
    else if (s.t === 'flatten') steps.push({ type: 'flatten', name: next('flatten') });
    else {
      const choice = s.hidden ? c.layer : 'dense';
      const conv = s.t === 'conv' ? { pads: [s.pad, s.pad, s.pad, s.pad] as [number, number, number, number] } : {};
      const bias = hiddenBias || !s.hidden;
      const plan = s.t === 'fc' ? planDense(choice, s.in, s.out, ratio, bias, s.hidden ? modes : null, s.hidden ? ranks : null) : planConv(choice, s.in, s.out, s.k, conv, ratio, bias);
      const denseParams = s.t === 'fc' ? s.in * s.out + s.out : s.out * s.in * s.k * s.k + s.out;
      // The classifier feeds a softmax, not a ReLU: LeCun variance (gain 1) there, He elsewhere.
      const layer = plan.make({ seed: layerSeed(seed, i), gain: s.hidden || s.t === 'conv' ? 2 : 1 });
      const params = Object.values(layer.params).reduce((a, v) => a + v.size, 0);
      if (params !== plan.params) throw new Error(`train: planned ${plan.params} params for ${plan.op}, built ${params}`);
      const info: LayerInfo = {
        name: next(s.t), op: plan.op, hidden: s.hidden, params, denseParams, ranks: plan.ranks,
        ...(plan.outModes ? { outModes: plan.outModes, inModes: plan.inModes } : {}),
      };
      steps.push({ type: 'layer', info, layer });
    }
  });
  if ((modes || ranks) && !SPECS[c.arch].some((s) => s.t === 'fc' && s.hidden)) throw new Error(`train: ${c.arch} has no hidden dense layer for the modes or ranks`);
  return new Net({ arch: c.arch, layer: c.layer, ratio, seed, hiddenBias, modes, ranks }, steps);
}

/** Parameter totals of a net: all layers, and the hidden ones against their dense versions. */
export function paramSummary(net: Net): { params: number; denseParams: number; hiddenParams: number; hiddenDenseParams: number } {
  let params = 0, denseParams = 0, hiddenParams = 0, hiddenDenseParams = 0;
  for (const l of net.layers) {
    params += l.params;
    denseParams += l.denseParams;
    if (l.hidden) {
      hiddenParams += l.params;
      hiddenDenseParams += l.denseParams;
    }
  }
  return { params, denseParams, hiddenParams, hiddenDenseParams };
}
