// Post-training compression of a dense Model: pick a method and ranks per layer, decompose,
// and replace each chosen layer by its factor-only kind.
import type { GraphNode, Model, OpName, StoredTensor, Tensor } from '../runtime/ir.js';
import { numel } from '../runtime/ir.js';
import { layerRanks } from '../runtime/describe.js';
import { tensorToFloat32 } from '../runtime/format/dtype.js';
import { type LayerModes, type Target } from './rank/target.js';
import { applyModes, entryModes } from './methods/layerModes.js';
import { dataAwareCandidates, randomInputs } from './rank/sensitivity.js';
import { paretoFront, type Candidate, type LayerShape, type RankSpec } from './rank/candidates.js';
import { allocateGuarded, computeCost, pickByEnergy, RankError, type Guard } from './rank/select.js';
import { measuredSearch, specKey, type Family, type Fit, type PlanTrial, type SpeedSearch } from './rank/measured.js';
import { formCost, priceCompute, targetSamples } from './rank/compute.js';
import { kernelTimer, type FormTimer } from './rank/kernelTime.js';
import { hasWasmSimd, wasmBackendSync } from '../runtime/kernels/backend.js';
import { roundSpecRanks } from './rank/round.js';
import { checkAgreement, type AgreementCheck } from './check.js';
import { correctChannels, correctableLayers, type CorrectReport } from './correct.js';
import { CompressError } from './compressError.js';
import { filterByArena } from './rank/arenaFit.js';
import { DEPTHWISE_METHOD, FACTOR_METHODS, FAMILIES as METHOD_FAMILIES, findMethod, isPointwise, methodFits, methodOf, specRanks, type FactorMethod, type MethodName } from './methods/index.js';
import { isDepthwise } from './methods/dwlr.js';

export { CompressError } from './compressError.js';
export { roundSpecRanks, type RoundedRanks } from './rank/round.js';
export { specParams, specRanks } from './methods/index.js';

/** What --ratio's rank search prefers among the allocations that reach the ratio (see CompressOptions.prefer). */
export const PREFER = ['accuracy', 'speed'] as const;
export type Prefer = (typeof PREFER)[number];

export const METHODS = ['auto', 'none', 'tucker', 'cp', 'tt', 'tr', 'svd', 'rcp', 'rtk', 'rtt', 'rtr', 'adtn'] as const;
export type Method = (typeof METHODS)[number];

export interface CompressOptions {
  method: Method;
  /**
   * With `auto`: the runtime kinds a form may take (e.g. the int8-full path's, INT8_STAGES); a
   * method that writes any other kind is left out of the search. All kinds when absent.
   */
  kinds?: ReadonlySet<OpName>;
  ratio?: number;
  energy?: number;
  /** Layer name -> a rank (number), explicit ranks (array), or { method, ranks }. */
  ranks?: Record<string, unknown>;
  /** Calibration inputs [N, ...] for the sensitivity measurement; synthetic when absent. */
  calibration?: Tensor;
  seed?: number;
  /**
   * Round every chosen rank to a multiple of this (4 or 8 suit the 4-wide SIMD kernels) before
   * decomposing. With --ratio, ranks that would push the model over its parameter budget are
   * rounded down instead (never below 1); otherwise they are rounded up. Ranks are capped by what
   * the layer's shape allows.
   */
  roundRanks?: number;
  /**
   * Held-out samples for the measured check after compression (never used by the search);
   * synthetic inputs of the model's input shape when absent.
   */
  holdout?: Tensor;
  /**
   * Top-1 agreement (0..1) with the source that the result must reach on the held-out samples;
   * below it compressModel throws AGREEMENT_UNMET with the measured numbers (and, with --ratio, the
   * largest lower ratio that meets it, when one of a few tried does).
   */
  minAgreement?: number;
  /** Skip the measured check (callers that check by themselves). */
  check?: boolean;
  /**
   * Per-channel output correction of the factorised layers on the calibration inputs (correct.ts):
   * each output channel's mean and spread matched to the source's. Default (undefined): tried when
   * `calibration` is given, and kept only when it brings the result closer to the source on those
   * calibration samples (top-1 agreement, then output error). true: always kept (needs
   * calibration); false: never tried.
   */
  correct?: boolean;
  /**
   * Guard rail of the allocator: no layer below the smallest form whose predicted output error is
   * at most this, unless the budget cannot be met otherwise. Default 0.5.
   */
  guardLimit?: number;
  /** Time bound of auto's measured search in seconds: families not tried by then are skipped. */
  searchSeconds?: number;
  /**
   * The device's arena in bytes (convert --arena, an mcu target's budget): each layer may take only
   * forms whose firmware scratch fits beside the activations live there (rank/arenaFit.ts).
   */
  arenaBytes?: number;
  log?: (msg: string) => void;
  /** What must reach the user even when `log` is silent (a layer's fit dropped for its random start); default log. */
  warn?: (msg: string) => void;
  /**
   * 'none': the factorised hidden layers (every factorisable layer but the last in graph order, the
   * classifier) lose their bias, and their whole budget goes to the weight; layers left dense keep
   * theirs. Default 'full'. Fine-tuning then recovers what the bias carried.
   */
  hiddenBias?: 'full' | 'none';
  /**
   * convert --modes: layer name (or one '/' part of it, or '*' for every layer the modes fit) ->
   * the reshape its tensorial form uses (methods/layerModes.ts); a --ranks entry may give "modes" too.
   */
  modes?: Record<string, LayerModes>;
  /**
   * With --ratio: 'accuracy' (default) keeps the allocation of least predicted (auto: measured)
   * error; 'speed' also allocates with the compute each form costs (its multiply-adds priced by the
   * runtime's cost model at batch 1, rank/compute.ts) weighed against its error, and keeps the
   * fastest plan whose error stays comparable: auto, measured on the calibration samples, top-1
   * agreement at most SPEED_TOLERANCE.agreement lower and output error at most
   * (1 + SPEED_TOLERANCE.error) times the most accurate plan's; other methods, predicted error.
   */
  prefer?: Prefer;
  /**
   * How --prefer speed prices each form's compute: 'kernels' (default) times the form on the
   * runtime's WebAssembly kernels at batch 1 (rank/kernelTime.ts); 'model' takes the runtime's
   * cost model (rank/compute.ts), as does 'kernels' where WebAssembly SIMD is missing.
   */
  priceBy?: 'kernels' | 'model';
  onLayer?: (done: number, total: number, name: string) => void;
}

/** The kernels --prefer speed times forms on: one wasm-simd backend per process, made on first use. */
let formTimer: FormTimer | null | undefined;
function speedTimer(priceBy: 'kernels' | 'model' | undefined): FormTimer | undefined {
  if (priceBy === 'model') return undefined;
  if (formTimer === undefined) {
    try {
      formTimer = hasWasmSimd() ? kernelTimer(wasmBackendSync()) : null;
    } catch {
      formTimer = null;
    }
  }
  return formTimer ?? undefined;
}

/** --prefer speed: the compute weights tried (err² per whole model's compute), and what is comparable. */
export const SPEED_WEIGHTS = [0.003, 0.01, 0.03, 0.1, 0.3];
export const SPEED_TOLERANCE = { agreement: 0.01, error: 0.1 };

/** Compute of the layers the converter may factorise (every conv and dense layer), per sample at batch 1. */
export interface ComputeReport {
  prefer: Prefer;
  /** Multiply-adds of those layers as written, and as in the source. */
  macs: number;
  sourceMacs: number;
  /** Their time predicted by the runtime's cost model (µs, default machine constants). */
  us: number;
  sourceUs: number;
  /** True when `us` and `sourceUs` were timed on the kernels (--prefer speed, rank/kernelTime.ts), not predicted. */
  measured?: boolean;
}

export interface LayerReport {
  name: string;
  sourceOp: OpName;
  op: OpName;
  method: RankSpec['method'];
  ranks: number[];
  paramsBefore: number;
  paramsAfter: number;
  /** Relative Frobenius error of the rebuilt weight, measured after decomposition. */
  relError: number;
  /** 'random': the fit captured nothing and the layer starts from its random initialisation (to be fine-tuned); fitError is the fit's own error. */
  init?: 'random';
  fitError?: number;
  estimatedError: number;
  sensitivity: number;
  /** With roundRanks: the ranks the selection chose, before rounding. */
  ranksBeforeRounding?: number[];
  /** Multiply-adds per sample of the layer as written (rank/compute.ts). */
  macs?: number;
}

export interface CompressReport {
  method: Method;
  layers: LayerReport[];
  sourceParams: number;
  params: number;
  ratio: number;
  targetRatio?: number;
  /** The multiple ranks were rounded to (roundRanks), when asked. */
  roundRanks?: number;
  seconds: number;
  /** Where the calibration samples of the search came from. */
  calibration?: 'given' | 'synthetic';
  /** The measured check on held-out samples (absent with --method none or check: false). */
  check?: AgreementCheck;
  /** Why the measured check could not run on this model (several inputs or outputs, free dims). */
  checkSkipped?: string;
  /** The measured search of `auto --ratio`: the plans it tried and what each measured. */
  search?: SearchReport;
  /** The allocator's guard rails per layer (--ratio). */
  guards?: Guard[];
  /** The per-channel output correction, when it ran. */
  correction?: CorrectReport;
  /** Multiply-adds and predicted time of the factorisable layers, before and after. */
  compute?: ComputeReport;
}

export interface SearchReport {
  /** The family of methods whose plan was kept ('all' mixes every method per layer). */
  chosen: string;
  trials: PlanTrial[];
  fits: number;
  runs: number;
  seconds: number;
}

function tensorOf(model: Model, name: string | undefined): StoredTensor | undefined {
  return name === undefined ? undefined : model.tensors.get(name);
}

/** Layers that a factor kind can stand for: dense with a 2-D weight, ungrouped 2-D conv, depthwise 2-D conv (dwlr). */
function findTargets(model: Model): Target[] {
  const out: Target[] = [];
  for (const node of model.graph.nodes) {
    const w = tensorOf(model, node.weights['weight']);
    if (!w) continue;
    const b = tensorOf(model, node.weights['bias']);
    const bias = b ? numel(b.shape) : 0;
    const weight = tensorToFloat32(w);
    if (node.op === 'dense' && w.shape.length === 2) {
      const [o, i] = w.shape as [number, number];
      out.push({ node, shape: { kind: 'dense', out: o, in: i }, weight, bias, denseParams: o * i + bias });
    } else if (node.op === 'conv2d' && w.shape.length === 4 && (node.attrs['group'] ?? 1) === 1) {
      const [O, I, kh, kw] = w.shape as [number, number, number, number];
      out.push({ node, shape: { kind: 'conv', O, I, kh, kw }, weight, bias, denseParams: O * I * kh * kw + bias });
    } else if (node.op === 'conv2d' && w.shape.length === 4 && w.shape[1] === 1 && node.attrs['group'] === w.shape[0] && w.shape[0]! > 1) {
      // Depthwise (one input channel per group, as many groups as channels): the [C, kh*kw] kernel matrix.
      const [O, , kh, kw] = w.shape as [number, number, number, number];
      out.push({ node, shape: { kind: 'conv', O, I: 1, kh, kw, depthwise: true }, weight, bias, denseParams: O * kh * kw + bias });
    }
  }
  return out;
}

/** What a --method name uses for a layer shape: a family's pick, or a method named itself (rcp, rtk, rtt, rtr). */
function familyMethod(method: Method, kind: LayerShape['kind']): MethodName {
  const family = (METHOD_FAMILIES as Record<string, Record<string, MethodName>>)[method];
  return family ? family[kind]! : (method as MethodName);
}

/** The methods auto searches: every one, or those whose runtime kinds are all in `kinds`. */
export function autoMethods(kinds?: ReadonlySet<OpName>): readonly FactorMethod[] {
  return kinds ? FACTOR_METHODS.filter((m) => m.kinds.every((k) => kinds.has(k.op))) : FACTOR_METHODS;
}

/** Candidate forms of one layer under a method (with `auto`, every method that applies to it). */
function candidatesFor(t: Target, method: Method, front = true, kinds?: ReadonlySet<OpName>): Candidate[] {
  const s = t.shape;
  const methods = method === 'auto'
    ? autoMethods(kinds).filter((m) => methodFits(m, s) && m.applies(s))
    : method === 'adtn' && s.kind === 'conv' && !isDepthwise(s) && !isPointwise(s)
      ? [methodOf('adtn'), methodOf('tucker2')] // a conv under adtn: the circuit or Tucker-2, per conv (methods/adtn.ts)
      : [methodOf(isDepthwise(s) ? DEPTHWISE_METHOD : isPointwise(s) ? 'svd' : familyMethod(method, s.kind))];
  const c = methods.flatMap((m) => m.candidates(t));
  c.push({ spec: { method: 'dense' }, params: t.denseParams, err: 0 });
  return front ? paretoFront(c) : c;
}

/** Reads a --ranks entry into a rank spec for this layer. */
function specFromFile(t: Target, entry: unknown, method: Method): RankSpec {
  const bad = (why: string) => new CompressError('BAD_RANKS', `ranks for layer ${t.node.name}: ${why}`);
  let m: string = method === 'auto' || method === 'none' ? (t.shape.kind === 'dense' ? 'svd' : 'tucker') : method;
  let ranks: unknown = entry;
  if (entry && typeof entry === 'object' && !Array.isArray(entry)) {
    const e = entry as { method?: unknown; ranks?: unknown };
    if (typeof e.method === 'string') m = e.method;
    ranks = e.ranks;
  }
  if (m === 'dense') {
    if ((entry as { modes?: unknown } | null)?.modes !== undefined) throw bad('modes given for a layer kept dense');
    return { method: 'dense' };
  }
  const list = typeof ranks === 'number' ? [ranks] : ranks;
  if (!Array.isArray(list) || list.length === 0 || list.some((r) => !Number.isInteger(r) || r < 1)) {
    throw bad('expected a positive integer or a list of them');
  }
  // A family name (tucker, cp, ...) picks the method for this layer's shape; a method name is itself.
  const family = (METHOD_FAMILIES as Record<string, Record<string, MethodName>>)[m];
  const fm = isDepthwise(t.shape) && family ? methodOf(DEPTHWISE_METHOD) : family ? methodOf(family[t.shape.kind]!) : findMethod(m);
  if (!fm) throw bad(`unknown method ${m}`);
  if (!methodFits(fm, t.shape)) throw bad(`method ${m} does not apply to a ${isDepthwise(t.shape) ? 'depthwise conv' : t.shape.kind} layer`);
  const modes = entryModes(t, entry, fm.name);
  if (modes) t.modes = modes;
  const spec = fm.fromRanks(t, list as number[]);
  if (typeof spec === 'string') throw bad(spec);
  return spec;
}

/** The method a layer gets before any search: from its --ranks entry or --method; null when dense or auto's to choose. */
function methodFor(t: Target, opts: Pick<CompressOptions, 'method' | 'ranks'>): string | null {
  let m: string = opts.method;
  if (opts.ranks) {
    const e = opts.ranks[t.node.name];
    if (e === undefined) return null;
    if (e && typeof e === 'object' && !Array.isArray(e) && typeof (e as { method?: unknown }).method === 'string') m = (e as { method: string }).method;
  }
  if (m === 'auto' || m === 'none' || m === 'dense') return null;
  if (isPointwise(t.shape)) return 'svd';
  const family = (METHOD_FAMILIES as Record<string, Record<string, MethodName>>)[m];
  return family ? family[t.shape.kind]! : m;
}

/** The bias a factorised layer keeps: none when --hidden-bias none priced it out (bias 0). */
function biasOf(t: Target): string | undefined {
  return t.bias > 0 ? t.node.weights['bias'] : undefined;
}

/** Replaces one node by its factor form; returns the new node, its tensors and the measured error. */
function decomposeLayer(t: Target, spec: RankSpec, biasName: string | undefined, seed: number, quick = false) {
  const n = t.node;
  const tensors: StoredTensor[] = [];
  const weights: Record<string, string> = {};
  const attrs = { ...n.attrs };
  const fm = spec.method === 'dense' ? undefined : methodOf(spec.method);
  if (spec.method === 'dense' || !fm || !methodFits(fm, t.shape)) {
    throw new CompressError('BAD_OPTIONS', `layer ${n.name}: ${spec.method} does not apply to a ${t.shape.kind} layer`);
  }
  const add = (role: string, shape: number[], data: Float32Array) => {
    const name = `${n.name}.${role}`;
    tensors.push({ name, dtype: 'f32', shape, data });
    weights[role] = name;
  };
  const d = fm.decompose(t, spec, { seed, quick, add, attrs });
  if (biasName) weights['bias'] = biasName;
  const node: GraphNode = { ...n, op: d.op, attrs, weights };
  return { node, tensors, relError: d.relError, ...(d.init ? { init: d.init, fitError: d.fitError! } : {}) };
}

export function sourceParams(model: Model): number {
  const used = new Set<string>();
  for (const n of model.graph.nodes) {
    for (const w of Object.values(n.weights)) used.add(w);
    for (const i of n.inputs) if (model.tensors.has(i)) used.add(i);
  }
  let p = 0;
  for (const name of used) p += numel(model.tensors.get(name)!.shape);
  return p;
}

/** What the rank search chose for each layer, before any rounding and decomposition. */
export interface CompressionPlan {
  method: Method;
  targets: Target[];
  specs: Array<{ spec: RankSpec; est: number }>;
  sensitivity: number[];
  /** Parameters the chosen layers may use (--ratio only). */
  budget?: number;
  sourceParams: number;
  ratio?: number;
  seconds: number;
  calibration?: 'given' | 'synthetic';
  guards?: Guard[];
  search?: SearchReport;
  /** sqrt of the summed predicted relative output change of the chosen forms (--ratio). */
  predictedOutputError?: number;
  /** Layers the search already decomposed, by specKey (reused when the plan is applied). */
  fitted?: Map<string, Fit>;
  prefer?: Prefer;
  /** --prefer speed's forms were timed on the kernels (rank/kernelTime.ts), not priced by the cost model. */
  timer?: FormTimer;
}

/**
 * Single-method families the measured search also tries (each as the CLI's --method would). Not adtn:
 * it never stands in a rank search (its error is known only after a costly fit), so its family would
 * only repeat the tucker2 convolutions with every dense layer left dense.
 */
const FAMILIES: Family[] = [
  { name: 'all', keep: () => true },
  ...(Object.entries(METHOD_FAMILIES) as Array<[string, Record<'dense' | 'conv', MethodName>]>).filter(([name]) => name !== 'adtn').map(([name, pick]): Family => ({
    name, keep: (t, s) => s.method === (isDepthwise(t.shape) ? DEPTHWISE_METHOD : isPointwise(t.shape) ? 'svd' : pick[t.shape.kind]),
  })),
];

/** Default guard limit: a layer alone should not move the outputs by more than half their norm. */
export const GUARD_LIMIT = 0.5;

/** Whether compressModel tries the per-channel output correction (see CompressOptions.correct). */
export function correctsByDefault(opts: Pick<CompressOptions, 'calibration' | 'correct' | 'hiddenBias'>): boolean {
  // The correction writes a bias on every corrected layer: not with --hidden-bias none.
  return opts.correct !== false && opts.calibration !== undefined && opts.hiddenBias !== 'none';
}

/**
 * The per-channel output correction of a compressed model (correct.ts) under the rule of
 * CompressOptions.correct: by default kept only when it brings the result closer to the source on
 * the calibration samples. Returns the model to use and the correction's report (null: not tried).
 */
export function correctOutputs(source: Model, compressed: Model, opts: Pick<CompressOptions, 'calibration' | 'correct' | 'hiddenBias' | 'log'>): { model: Model; correction: CorrectReport | null } {
  const n = correctableLayers(source, compressed).length;
  if (!correctsByDefault(opts) || n === 0) return { model: compressed, correction: null };
  const log = opts.log ?? (() => {});
  const x = opts.calibration!;
  log(`output correction of ${n} factorised layers on ${x.shape[0]} calibration samples`);
  const c = correctChannels(source, compressed, x, { log });
  let kept = true;
  if (opts.correct === undefined) {
    try {
      const before = checkAgreement(source, compressed, x, 'calibration');
      const after = checkAgreement(source, c.model, x, 'calibration');
      c.report.before = { agreement: before.agreement, outputError: before.outputError };
      c.report.after = { agreement: after.agreement, outputError: after.outputError };
      kept = before.agreement !== null && after.agreement !== null && after.agreement !== before.agreement
        ? after.agreement > before.agreement
        : after.outputError < before.outputError;
    } catch (e) {
      // A model the check cannot compare: keep the plain factorisation.
      log(`output correction not compared (${(e as Error).message})`);
      kept = false;
    }
  }
  c.report.kept = kept;
  if (!kept) {
    log('output correction: not kept (no closer to the source on the calibration samples)');
    return { model: compressed, correction: c.report };
  }
  c.model.metadata['convert.correction'] = { mode: c.report.mode, samples: c.report.samples, layers: c.report.layers.map((l) => l.name) };
  return { model: c.model, correction: c.report };
}

function corrected(source: Model, res: { model: Model; report: CompressReport }, opts: CompressOptions): { model: Model; report: CompressReport } {
  const { model, correction } = correctOutputs(source, res.model, opts);
  if (!correction) return res;
  return { model, report: { ...res.report, correction, seconds: res.report.seconds + correction.seconds } };
}

export function compressModel(model: Model, opts: CompressOptions): { model: Model; report: CompressReport } {
  if (opts.correct && !opts.calibration) throw new CompressError('BAD_OPTIONS', 'the output correction (--correct) needs calibration data (--calib)');
  const plan = planCompression(model, opts);
  const res = corrected(model, applyCompressionPlan(model, plan, opts), opts);
  if (opts.check === false || plan.method === 'none') return res;
  let hold: Tensor;
  let check: AgreementCheck;
  try {
    hold = opts.holdout ?? randomInputs(model, (opts.seed ?? 1) + 1000);
    check = checkAgreement(model, res.model, hold, opts.holdout ? 'calibration' : 'synthetic', plan.predictedOutputError);
  } catch (e) {
    // A model the check cannot feed (several inputs, free dims, several outputs): say so, keep the result.
    (opts.log ?? (() => {}))(`check skipped: ${(e as Error).message}`);
    res.report.checkSkipped = (e as Error).message;
    if (opts.minAgreement !== undefined) throw new CompressError('AGREEMENT_UNMET', `--min-agreement cannot be checked on this model: ${(e as Error).message}`);
    return res;
  }
  res.report.check = check;
  const min = opts.minAgreement;
  if (min !== undefined && check.agreement !== null && check.agreement < min) {
    const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
    let meets = '';
    if (opts.ratio !== undefined) {
      // Back off the ratio a few steps to tell the user what would meet the target.
      for (let k = 1, r = opts.ratio / 1.5; k <= 3 && r >= 1; k++, r /= 1.5) {
        try {
          const p = planCompression(model, { ...opts, ratio: r });
          const m = corrected(model, applyCompressionPlan(model, p, opts), opts).model;
          const c = checkAgreement(model, m, hold, check.data);
          if (c.agreement !== null && c.agreement >= min) {
            meets = `; --ratio ${r.toFixed(1)} meets it (${pct(c.agreement)})`;
            break;
          }
        } catch (e) {
          if (!(e instanceof CompressError)) throw e;
          break;
        }
      }
      if (!meets) meets = `; no ratio down to ${(opts.ratio / 3.375).toFixed(1)} meets it`;
    }
    throw new CompressError('AGREEMENT_UNMET',
      `top-1 agreement with the source ${pct(check.agreement)} on ${check.samples} held-out ${check.data} samples is below --min-agreement ${pct(min)} ` +
      `at ${res.report.ratio.toFixed(2)}x (predicted ${check.predictedAgreement === null ? '-' : pct(check.predictedAgreement)})${meets}; ` +
      `fine-tuning (--finetune DATA) wins back agreement`);
  }
  return res;
}

/**
 * Why --ratio cannot be reached, plainly: the parameters no method factorises (grouped convs
 * that are not depthwise, norms, biases of layers kept as they are) and who holds them, what that leaves
 * the factorised layers against their smallest forms, and the largest ratio within reach.
 */
function unreachable(model: Model, targets: Target[], cands: Candidate[][], opts: CompressOptions, total: number, fixed: number, detail: string): string {
  const factorised = new Set(targets.map((t) => t.node.name));
  const holders: Array<{ name: string; op: string; params: number }> = [];
  for (const n of model.graph.nodes) {
    if (factorised.has(n.name)) continue;
    const p = Object.values(n.weights).reduce((s, w) => s + (model.tensors.has(w) ? numel(model.tensors.get(w)!.shape) : 0), 0);
    if (p > 0) holders.push({ name: n.name, op: n.op === 'conv2d' && (n.attrs['group'] ?? 1) !== 1 ? 'grouped conv2d' : n.op, params: p });
  }
  holders.sort((a, b) => b.params - a.params);
  const floor = cands.reduce((s, c) => s + Math.min(...c.map((x) => x.params)), 0);
  const budget = total / opts.ratio! - fixed;
  // Not the floor (the smallest forms fit the budget): the allocator's own reason.
  if (floor <= budget) return `--ratio ${opts.ratio} is out of reach with --method ${opts.method}: ${detail}`;
  const reach = total / (fixed + floor);
  const fmt = (n: number) => Math.floor(n).toLocaleString('en');
  const shown = holders.slice(0, 6).map((h) => `${h.name} (${h.op}, ${fmt(h.params)})`).join(', ');
  const more = holders.length > 6 ? ` and ${holders.length - 6} more` : '';
  return `--ratio ${opts.ratio} is out of reach with --method ${opts.method}: of the model's ${fmt(total)} parameters, ` +
    `${fmt(fixed)} sit in layers no method factorises${holders.length ? `: ${shown}${more}` : ''}; ` +
    `that leaves ${fmt(budget)} for the ${targets.length} factorised layers, whose smallest forms take ${fmt(floor)}, ` +
    `so the largest ratio within reach is about ${reach.toFixed(2)}x`;
}

/** The rank search of compressModel: which form and ranks each layer takes. */
export function planCompression(model: Model, opts: CompressOptions): CompressionPlan {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const seed = opts.seed ?? 1;
  const total = sourceParams(model);
  const modes = [opts.ratio !== undefined, opts.energy !== undefined, opts.ranks !== undefined].filter(Boolean).length;
  if (opts.method === 'none' && modes !== 0) throw new CompressError('BAD_OPTIONS', '--method none keeps every layer dense; drop --ratio, --energy and --ranks');
  if (opts.method !== 'none' && modes !== 1) throw new CompressError('BAD_OPTIONS', 'give exactly one of --ratio, --energy, --ranks');
  if (opts.ratio !== undefined && !(opts.ratio >= 1)) throw new CompressError('BAD_OPTIONS', `--ratio ${opts.ratio}: must be a number ≥ 1`);
  if (opts.energy !== undefined && !(opts.energy > 0 && opts.energy <= 1)) throw new CompressError('BAD_OPTIONS', `--energy ${opts.energy}: must be in (0, 1]`);
  if (opts.prefer !== undefined && !(PREFER as readonly string[]).includes(opts.prefer)) throw new CompressError('BAD_OPTIONS', `--prefer ${String(opts.prefer)}: expected ${PREFER.join(' or ')}`);
  if (opts.prefer === 'speed' && opts.ratio === undefined) throw new CompressError('BAD_OPTIONS', '--prefer speed goes with --ratio (with --energy or --ranks the forms are given)');
  if (opts.hiddenBias === 'none' && opts.correct === true) throw new CompressError('BAD_OPTIONS', '--correct writes a bias on each corrected layer: it does not go with --hidden-bias none');

  const targets = opts.method === 'none' ? [] : findTargets(model);
  // --hidden-bias none: every factorisable layer but the last (the classifier) is priced and
  // written without its bias (a layer the plan leaves dense keeps it).
  if (opts.hiddenBias === 'none') for (const t of targets.slice(0, -1)) t.bias = 0;
  if (opts.modes && Object.keys(opts.modes).length) {
    if (opts.method === 'none') throw new CompressError('BAD_OPTIONS', '--modes needs a factorising --method (not none)');
    applyModes(targets, opts.modes, (t) => methodFor(t, opts));
  }
  let specs: Array<{ spec: RankSpec; est: number }>;
  let sens: number[] = targets.map(() => 0);
  let budget: number | undefined;
  let guards: Guard[] | undefined;
  let search: SearchReport | undefined;
  let timer: FormTimer | undefined;
  let fitted: Map<string, Fit> | undefined;
  let predictedOutputError: number | undefined;
  if (opts.ranks) {
    const known = new Set(targets.map((t) => t.node.name));
    for (const k of Object.keys(opts.ranks)) {
      if (!known.has(k)) throw new CompressError('BAD_RANKS', `ranks file names layer ${k}, which is not a factorisable layer (have: ${[...known].join(', ')})`);
    }
    specs = targets.map((t) => {
      const e = opts.ranks![t.node.name];
      return { spec: e === undefined ? { method: 'dense' } : specFromFile(t, e, opts.method), est: NaN };
    });
  } else {
    log(`rank search over ${targets.length} layers (${opts.method})`);
    let cands = targets.map((t, i) => {
      opts.onLayer?.(i, targets.length * 2, `spectra ${t.node.name}`);
      // The measured search of auto needs every form: a method's estimates may be corrected upwards.
      return candidatesFor(t, opts.method, !(opts.method === 'auto' && opts.ratio !== undefined), opts.kinds);
    });
    if (opts.arenaBytes !== undefined) {
      const f = filterByArena(model, targets, cands, opts.arenaBytes);
      cands = f.candidates;
      for (const l of f.layers) if (l.dropped) log(`arena ${opts.arenaBytes} B: ${l.name} keeps the forms whose firmware scratch fits its ${l.free} B (${l.dropped} dropped)`);
    }
    if (opts.energy !== undefined) {
      specs = cands.map((c) => {
        const k = pickByEnergy(c, opts.energy!);
        return { spec: c[k]!.spec, est: c[k]!.err };
      });
    } else {
      const x = opts.calibration ?? randomInputs(model, seed);
      if (!opts.calibration) log('calibration: synthetic uniform [0, 1) inputs (no --calib); layers after normalisation may be misjudged');
      const speedy = opts.prefer === 'speed';
      // --prefer speed: every form priced in compute (the dense forms' total sets the unit).
      timer = speedy ? speedTimer(opts.priceBy) : undefined;
      if (speedy) cands = priceCompute(model, targets, cands, undefined, timer);
      const scale = speedy ? 1 / Math.max(1e-9, cands.reduce((s, c) => s + (c.find((k) => k.spec.method === 'dense')?.us ?? 0), 0)) : 0;
      const aware = dataAwareCandidates(model, targets, cands, x);
      sens = aware.sensitivity;
      cands = aware.candidates;

      const fixed = total - targets.reduce((s, t) => s + t.denseParams, 0);
      budget = total / opts.ratio! - fixed;
      const limit = opts.guardLimit ?? GUARD_LIMIT;
      try {
        if (opts.method === 'auto') {
          // Estimate, fit only the chosen forms, measure, correct, reallocate (rank/measured.ts).
          const cache = new Map<string, Fit>();
          const fit = (i: number, spec: RankSpec): Fit => {
            const k = specKey(i, spec);
            let f = cache.get(k);
            if (!f) {
              const tg = targets[i]!;
              opts.onLayer?.(targets.length, targets.length * 2, `trial ${tg.node.name} ${spec.method}`);
              f = decomposeLayer(tg, spec, biasOf(tg), seed + i, true);
              cache.set(k, f);
            }
            return f;
          };
          const speed: SpeedSearch | undefined = speedy
            ? { scale, weights: SPEED_WEIGHTS, agreementTolerance: SPEED_TOLERANCE.agreement, errorTolerance: SPEED_TOLERANCE.error }
            : undefined;
          const res = measuredSearch({
            model, targets, priced: aware.priced, budget, x, base: aware.base, fit, families: FAMILIES, guardLimit: limit, log,
            ...(opts.searchSeconds !== undefined ? { maxSeconds: opts.searchSeconds } : {}),
            ...(speed ? { speed } : {}),
          });
          specs = res.specs;
          guards = res.guards;
          fitted = cache;
          search = { chosen: res.family, trials: res.trials, fits: res.fits, runs: res.runs, seconds: res.seconds };
          log(`measured search: kept the ${res.family} plan; ${res.fits} trial fits, ${res.runs} network runs in ${res.seconds.toFixed(1)} s`);
        } else {
          // Candidates carry the predicted logit change itself, so every layer weighs the same.
          const g = allocateGuarded(targets.map((t, i) => ({ name: t.node.name, candidates: cands[i]!, sensitivity: 1 })), budget, limit);
          guards = g.guards;
          specs = g.pick.map((k, i) => ({ spec: cands[i]![k]!.spec, est: cands[i]![k]!.err }));
          if (speedy) {
            // Without a measured search: the fastest allocation whose predicted error is comparable.
            const predicted = (sp: Array<{ est: number }>) => Math.sqrt(sp.reduce((s, p) => s + p.est * p.est, 0));
            const usOf = (picks: Candidate[]) => picks.reduce((s, c) => s + (c.us ?? 0), 0);
            const ref = predicted(specs);
            let bestUs = usOf(g.pick.map((k, i) => cands[i]![k]!));
            for (const w of SPEED_WEIGHTS) {
              const fronts = aware.priced.map((p) => paretoFront(p, w, (c) => computeCost(c, scale)));
              const gw = allocateGuarded(targets.map((t, i) => ({ name: t.node.name, candidates: fronts[i]!, sensitivity: 1 })), budget, limit, { weight: w, scale });
              const picks = gw.pick.map((k, i) => fronts[i]![k]!);
              const sp = picks.map((c) => ({ spec: c.spec, est: c.err }));
              if (predicted(sp) > ref * (1 + SPEED_TOLERANCE.error) + 1e-12) break;
              log(`  compute weight ${w}: predicted output error ${predicted(sp).toFixed(4)}, ${usOf(picks).toFixed(0)} µs predicted`);
              if (usOf(picks) < bestUs - 1e-9) {
                bestUs = usOf(picks);
                specs = sp;
                guards = gw.guards;
              }
            }
          }
        }
      } catch (e) {
        if (e instanceof RankError) throw new CompressError('RANK_UNREACHABLE', unreachable(model, targets, cands, opts, total, fixed, e.message));
        throw e;
      }
      for (const g of guards ?? []) if (g.relaxed) log(`guard relaxed: ${g.reason}`);
      predictedOutputError = Math.sqrt(specs.reduce((s, p) => s + p.est * p.est, 0));
    }
  }

  return {
    method: opts.method, targets, specs, sensitivity: sens, ...(budget !== undefined ? { budget } : {}),
    sourceParams: total, ...(opts.ratio !== undefined ? { ratio: opts.ratio } : {}), seconds: (performance.now() - t0) / 1000,
    ...(opts.ratio !== undefined && opts.method !== 'none' ? { calibration: opts.calibration ? 'given' as const : 'synthetic' as const } : {}),
    ...(guards ? { guards } : {}), ...(search ? { search } : {}), ...(fitted ? { fitted } : {}),
    ...(predictedOutputError !== undefined ? { predictedOutputError } : {}),
    ...(opts.prefer !== undefined ? { prefer: opts.prefer } : {}),
    ...(timer ? { timer } : {}),
  };
}

/**
 * Decomposes every layer as `plan` says (after rounding its ranks when opts.roundRanks is set).
 * A plan may be applied several times, e.g. with and without rounding.
 */
export function applyCompressionPlan(model: Model, plan: CompressionPlan, opts: Pick<CompressOptions, 'roundRanks' | 'seed' | 'log' | 'warn' | 'onLayer'> = {}): { model: Model; report: CompressReport } {
  const t0 = performance.now() - plan.seconds * 1000;
  const log = opts.log ?? (() => {});
  const seed = opts.seed ?? 1;
  const total = plan.sourceParams;
  const { targets, budget } = plan;
  const sens = plan.sensitivity;
  let specs = plan.specs;
  let chosen: number[][] | undefined;
  if (opts.roundRanks !== undefined && plan.method !== 'none') {
    chosen = specs.map((s) => specRanks(s.spec));
    const r = roundSpecRanks(targets, specs.map((s) => s.spec), opts.roundRanks, budget);
    specs = specs.map((s, i) => ({ spec: r.specs[i]!, est: s.est }));
    log(`ranks rounded to multiples of ${opts.roundRanks}${budget !== undefined ? ` within a budget of ${Math.floor(budget)} layer params (${r.params} used)` : ''}`);
  }

  const nodes = new Map<string, GraphNode>();
  const tensors = new Map(model.tensors);
  const layers: LayerReport[] = [];
  targets.forEach((t, i) => {
    const { spec, est } = specs[i]!;
    opts.onLayer?.(targets.length + i, targets.length * 2, `decompose ${t.node.name}`);
    if (spec.method === 'dense') {
      layers.push({
        name: t.node.name, sourceOp: t.node.op, op: t.node.op, method: 'dense', ranks: [], paramsBefore: t.denseParams,
        paramsAfter: t.denseParams, relError: 0, estimatedError: 0, sensitivity: sens[i]!,
        ...(chosen ? { ranksBeforeRounding: [] } : {}),
      });
      return;
    }
    // A trial fit of the search is reused, except the short CP and TR runs: those fit again in full.
    const trial = spec.method === 'cp' || spec.method === 'tr' ? undefined : plan.fitted?.get(specKey(i, spec));
    const r = trial ?? decomposeLayer(t, spec, biasOf(t), seed + i);
    tensors.delete(t.node.weights['weight']!);
    if (biasOf(t) === undefined && t.node.weights['bias'] !== undefined) tensors.delete(t.node.weights['bias']);
    for (const nt of r.tensors) tensors.set(nt.name, nt);
    nodes.set(t.node.name, r.node);
    const after = r.tensors.reduce((s, nt) => s + numel(nt.shape), 0) + t.bias;
    const ranks = layerRanks(r.node, { graph: model.graph, tensors, metadata: {} });
    layers.push({
      name: t.node.name, sourceOp: t.node.op, op: r.node.op, method: spec.method, ranks,
      paramsBefore: t.denseParams, paramsAfter: after, relError: r.relError, estimatedError: est, sensitivity: sens[i]!,
      ...(r.init ? { init: r.init, fitError: r.fitError } : {}),
      ...(chosen ? { ranksBeforeRounding: chosen[i]! } : {}),
    });
    log(`  ${t.node.name}: ${r.node.op} ranks [${ranks}] ${t.denseParams} -> ${after} params, rel. error ${r.relError.toFixed(4)}`);
    if (r.init === 'random') {
      (opts.warn ?? log)(`${t.node.name}: the ${r.node.op} fit captured nothing of the weight (rel. error ${r.fitError!.toFixed(4)}); the layer starts from its random initialisation at the target variance instead, to be fine-tuned`);
    }
  });
  const graph = { ...model.graph, nodes: model.graph.nodes.map((n) => nodes.get(n.name) ?? n) };
  const out: Model = { graph, tensors, metadata: { ...model.metadata } };
  const params = sourceParams(out);
  let compute: ComputeReport | undefined;
  if (targets.length) {
    try {
      const samples = targetSamples(model, targets);
      const tally = { macs: 0, us: 0, sourceMacs: 0, sourceUs: 0 };
      targets.forEach((t, i) => {
        const spec = specs[i]!.spec;
        const f = formCost(t, spec, layers[i]!.paramsAfter, samples[i]!, undefined, plan.timer);
        const d = formCost(t, { method: 'dense' }, t.denseParams, samples[i]!, undefined, plan.timer);
        layers[i]!.macs = f.macs;
        tally.macs += f.macs;
        tally.us += f.us;
        tally.sourceMacs += d.macs;
        tally.sourceUs += d.us;
      });
      compute = { prefer: plan.prefer ?? 'accuracy', ...tally, ...(plan.timer ? { measured: true } : {}) };
    } catch (e) {
      // A model whose shapes cannot be inferred at batch 1: no compute figures.
      log(`compute not priced: ${(e as Error).message}`);
    }
  }
  const report: CompressReport = {
    method: plan.method, layers, sourceParams: total, params, ratio: total / params,
    ...(plan.ratio !== undefined ? { targetRatio: plan.ratio } : {}),
    ...(chosen ? { roundRanks: opts.roundRanks! } : {}),
    seconds: (performance.now() - t0) / 1000,
    ...(plan.calibration ? { calibration: plan.calibration } : {}),
    ...(plan.search ? { search: plan.search } : {}),
    ...(plan.guards ? { guards: plan.guards } : {}),
    ...(compute ? { compute } : {}),
  };
  // Re-compressing a .flm keeps the first source's size and layer record; ratios stay against it.
  const prior = typeof model.metadata['convert.source_params'] === 'number' ? model.metadata['convert.source_params'] : undefined;
  if (plan.method !== 'none' || prior === undefined) {
    out.metadata['convert.method'] = plan.method;
    out.metadata['convert.layers'] = layers.map((l) => ({ name: l.name, op: l.op, ranks: l.ranks, rel_error: l.relError }));
  }
  if (chosen) out.metadata['convert.round_ranks'] = opts.roundRanks;
  if (targets.some((t) => t.bias === 0 && t.node.weights['bias'] !== undefined && nodes.has(t.node.name))) out.metadata['convert.hidden_bias'] = 'none';
  out.metadata['convert.source_params'] = prior ?? total;
  out.metadata['convert.ratio'] = (prior ?? total) / params;
  return { model: out, report };
}
