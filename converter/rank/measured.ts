// The measured rank search behind `--method auto --ratio R`: estimate, allocate, then fit only the
// chosen forms, measure what each does to the network's outputs, correct the estimates of that
// layer's method by what was measured, and allocate again until the choice settles. It runs once
// over every method that fits each layer and once per single-method family, then keeps the plan
// whose full network agrees best with the source on the calibration samples.
import type { GraphNode, Model, StoredTensor, Tensor } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import { outputChange, topOneAgreement, classesOf, runAllOutputs } from '../check.js';
import { paretoFront, type Candidate, type RankSpec } from './candidates.js';
import { allocateGuarded, computeCost, RankError, type ComputeWeight, type Guard } from './select.js';
import type { Target } from './target.js';

export interface Fit {
  node: GraphNode;
  tensors: StoredTensor[];
  relError: number;
  init?: 'random';
  fitError?: number;
}

export interface Family {
  name: string;
  /** Whether a candidate belongs to the family (the dense form always does). */
  keep: (t: Target, spec: RankSpec) => boolean;
}

export interface PlanTrial {
  family: string;
  specs: RankSpec[];
  /** Predicted output error (sqrt of the summed predicted relative output energy change). */
  predictedOutputError: number;
  /** Measured on the calibration samples with every chosen layer in place. */
  agreement: number | null;
  outputError: number;
  rounds: number;
  /** Why the family could not take part, when it could not. */
  failed?: string;
  /** --prefer speed: the compute weight of this allocation (absent: 0, parameters and error only). */
  computeWeight?: number;
  /** Multiply-adds and predicted µs per sample of the chosen forms (when priced, rank/compute.ts). */
  macs?: number;
  us?: number;
}

/**
 * --prefer speed in the measured search: after the families, the all-methods allocation again with
 * each compute weight in turn (ascending; the ladder stops at the first plan out of tolerance),
 * then of every measured plan within tolerance of the most accurate one, the fastest is kept.
 */
export interface SpeedSearch {
  /** 1 / the dense layers' predicted µs (ComputeWeight.scale). */
  scale: number;
  weights: number[];
  /** Comparable: top-1 agreement on the calibration samples at most this much lower (fraction)... */
  agreementTolerance: number;
  /** ...and output error at most (1 + this) times the most accurate plan's. */
  errorTolerance: number;
}

export interface MeasuredSearch {
  specs: Array<{ spec: RankSpec; est: number }>;
  family: string;
  guards: Guard[];
  trials: PlanTrial[];
  /** Layers fitted and network runs made by the search. */
  fits: number;
  runs: number;
  seconds: number;
}

export interface MeasuredSearchInput {
  model: Model;
  targets: Target[];
  /** Every candidate of every layer, priced in predicted output error (unfiltered). */
  priced: Candidate[][];
  budget: number;
  x: Tensor;
  /** The source model's outputs on x. */
  base: Float32Array;
  /** Decomposes one layer (the caller caches). */
  fit: (layer: number, spec: RankSpec) => Fit;
  families: Family[];
  guardLimit: number;
  rounds?: number;
  /**
   * Time bound in CPU seconds of this process (not wall time, so that the plan kept does not depend
   * on what else the machine runs): once the search has used this much, the families not yet tried
   * are skipped (the first always runs, and so does --prefer speed's compute-weight ladder).
   */
  maxSeconds?: number;
  /**
   * A later family is skipped when its first allocation (on the estimates as corrected so far)
   * predicts an output error above this many times the measured output error of the best plan yet:
   * it could not win. Default 1.5; Infinity tries every family.
   */
  skipFactor?: number;
  /** --prefer speed (absent: the most accurate plan is kept, compute unpriced). */
  speed?: SpeedSearch;
  log?: (msg: string) => void;
}

export const specKey = (layer: number, spec: RankSpec) => `${layer}:${JSON.stringify(spec)}`;

/** A copy of `model` with the given layers replaced by their fitted factor forms. */
export function withFits(model: Model, targets: Target[], fits: Map<number, Fit>): Model {
  const tensors = new Map(model.tensors);
  const nodes = new Map<string, GraphNode>();
  for (const [i, f] of fits) {
    const t = targets[i]!;
    tensors.delete(t.node.weights['weight']!);
    for (const nt of f.tensors) tensors.set(nt.name, nt);
    nodes.set(t.node.name, f.node);
  }
  return { ...model, tensors, graph: { ...model.graph, nodes: model.graph.nodes.map((n) => nodes.get(n.name) ?? n) } };
}

export function measuredSearch(inp: MeasuredSearchInput): MeasuredSearch {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const cpuSeconds = () => {
    const u = process.cpuUsage(cpu0);
    return (u.user + u.system) / 1e6;
  };
  const { model, targets, priced, budget, x, base, guardLimit } = inp;
  const rounds = inp.rounds ?? 3;
  const log = inp.log ?? (() => {});
  const samples = x.shape[0]!;
  const classifier = model.graph.outputs.length === 1 && classesOf({ shape: [samples, base.length / samples], data: base }, samples) > 0;
  // Measured error per layer form, and per layer and method the measured/predicted factors by params.
  const measured = new Map<string, number>();
  const factors = new Map<string, Array<{ params: number; f: number }>>();
  let fits = 0;
  let runs = 0;
  const run = (m: Model) => {
    runs++;
    return runAllOutputs(Session.create(m, { retainWeights: false }), x).data;
  };
  const priceOf = (i: number, c: Candidate): number => {
    if (c.spec.method === 'dense') return 0;
    const m = measured.get(specKey(i, c.spec));
    if (m !== undefined) return m;
    const fs = factors.get(`${i}:${c.spec.method}`);
    if (!fs || fs.length === 0) return c.err;
    // The correction of the nearest measured form of the same method (by parameters).
    let best = fs[0]!;
    for (const e of fs) if (Math.abs(Math.log(e.params / c.params)) < Math.abs(Math.log(best.params / c.params))) best = e;
    return c.err * best.f;
  };
  const measure = (i: number, c: Candidate) => {
    const k = specKey(i, c.spec);
    if (c.spec.method === 'dense' || measured.has(k)) return;
    const f = inp.fit(i, c.spec);
    fits++;
    const err = outputChange(run(withFits(model, targets, new Map([[i, f]]))), base);
    measured.set(k, err);
    const list = factors.get(`${i}:${c.spec.method}`) ?? [];
    list.push({ params: c.params, f: Math.max(err, 1e-9) / Math.max(c.err, 1e-9) });
    factors.set(`${i}:${c.spec.method}`, list);
  };

  const skipFactor = inp.skipFactor ?? 1.5;
  const trials: PlanTrial[] = [];
  type Kept = { trial: PlanTrial; est: number[]; guards: Guard[] };
  let best: Kept | undefined;
  const measuredPlans: Kept[] = [];
  const speed = inp.speed;
  const within = (t: PlanTrial, ref: PlanTrial) => !!speed
    && (!classifier || t.agreement! >= ref.agreement! - speed.agreementTolerance - 1e-9)
    && t.outputError <= ref.outputError * (1 + speed.errorTolerance) + 1e-12;
  // Whole plans already measured (families often arrive at the same one), by their spec keys.
  const plans = new Map<string, Float32Array>();
  const runsList: Array<{ fam: Family; w: number }> = [
    ...inp.families.map((fam) => ({ fam, w: 0 })),
    ...(speed && inp.families.length ? speed.weights.map((w) => ({ fam: inp.families[0]!, w })) : []),
  ];
  let ladderDone = false;
  for (const { fam, w } of runsList) {
    const name = w > 0 ? `${fam.name}, compute weight ${w}` : fam.name;
    const compute: ComputeWeight | undefined = w > 0 && speed ? { weight: w, scale: speed.scale } : undefined;
    if (w > 0 && ladderDone) continue;
    // The bound skips families; the compute-weight ladder (--prefer speed) runs, ending itself.
    if (w === 0 && best && inp.maxSeconds !== undefined && cpuSeconds() > inp.maxSeconds) {
      trials.push({ family: name, specs: [], predictedOutputError: NaN, agreement: null, outputError: NaN, rounds: 0, failed: `skipped: the search passed its ${inp.maxSeconds} s CPU bound`, ...(w > 0 ? { computeWeight: w } : {}) });
      continue;
    }
    let pick: Candidate[] = [];
    let guards: Guard[] = [];
    let r = 0;
    let failed: string | undefined;
    let skipped: string | undefined;
    for (; r < rounds; r++) {
      const layers = targets.map((t, i) => ({
        name: t.node.name,
        sensitivity: 1,
        candidates: paretoFront(priced[i]!.filter((c) => c.spec.method === 'dense' || fam.keep(t, c.spec)).map((c) => ({ ...c, err: priceOf(i, c) })),
          compute?.weight ?? 0, (c) => computeCost(c, compute?.scale ?? 0)),
      }));
      let chosen: { pick: number[]; guards: Guard[] };
      try {
        chosen = allocateGuarded(layers, budget, guardLimit, compute);
      } catch (e) {
        if (!(e instanceof RankError)) throw e;
        failed = e.message;
        break;
      }
      const next = chosen.pick.map((k, i) => layers[i]!.candidates[k]!);
      guards = chosen.guards;
      const same = pick.length > 0 && next.every((c, i) => specKey(i, c.spec) === specKey(i, pick[i]!.spec));
      pick = next;
      if (same) break;
      if (r === 0 && best) {
        const predicted = Math.sqrt(pick.reduce((sum, c, i) => sum + priceOf(i, c) ** 2, 0));
        if (predicted > skipFactor * best.trial.outputError) {
          skipped = `skipped: predicted output error ${predicted.toFixed(4)} > ${skipFactor} x ${best.trial.outputError.toFixed(4)} measured for the ${best.trial.family} plan`;
          break;
        }
      }
      const fresh = pick.filter((c, i) => c.spec.method !== 'dense' && !measured.has(specKey(i, c.spec)));
      if (fresh.length === 0) break;
      pick.forEach((c, i) => measure(i, c));
    }
    const wField = w > 0 ? { computeWeight: w } : {};
    if (skipped !== undefined) {
      log(`  search ${name}: ${skipped}`);
      trials.push({ family: name, specs: pick.map((c) => c.spec), predictedOutputError: NaN, agreement: null, outputError: NaN, rounds: 1, failed: skipped, ...wField });
      if (w > 0) ladderDone = true;
      continue;
    }
    if (failed !== undefined || pick.length === 0) {
      trials.push({ family: name, specs: [], predictedOutputError: NaN, agreement: null, outputError: NaN, rounds: r, failed: failed ?? 'no plan', ...wField });
      continue;
    }
    pick.forEach((c, i) => measure(i, c));
    const est = pick.map((c, i) => priceOf(i, c));
    const planKey = pick.map((c, i) => specKey(i, c.spec)).join(';');
    let y = plans.get(planKey);
    if (!y) {
      const all = new Map<number, Fit>();
      pick.forEach((c, i) => {
        if (c.spec.method !== 'dense') all.set(i, inp.fit(i, c.spec));
      });
      y = run(withFits(model, targets, all));
      plans.set(planKey, y);
    }
    const costed = pick.every((c) => c.us !== undefined);
    const trial: PlanTrial = {
      family: name, specs: pick.map((c) => c.spec),
      predictedOutputError: Math.sqrt(est.reduce((s, e) => s + e * e, 0)),
      agreement: classifier ? topOneAgreement(y, base, samples) : null,
      outputError: outputChange(y, base),
      rounds: Math.min(r + 1, rounds),
      ...wField,
      ...(costed ? { macs: pick.reduce((s, c) => s + c.macs!, 0), us: pick.reduce((s, c) => s + c.us!, 0) } : {}),
    };
    trials.push(trial);
    log(`  search ${name}: ${classifier ? `agreement ${(100 * trial.agreement!).toFixed(1)}%, ` : ''}output error ${trial.outputError.toFixed(4)} (predicted ${trial.predictedOutputError.toFixed(4)})` +
      `${trial.macs !== undefined ? `, ${(trial.macs / 1e6).toFixed(2)} M multiply-adds, ${trial.us!.toFixed(0)} µs predicted` : ''}`);
    const better = !best
      || (classifier && trial.agreement! > best.trial.agreement! + 1e-9)
      || ((!classifier || Math.abs(trial.agreement! - best.trial.agreement!) <= 1e-9) && trial.outputError < best.trial.outputError);
    measuredPlans.push({ trial, est, guards });
    if (better) best = { trial, est, guards };
    // The compute-weight ladder stops at its first plan out of tolerance: heavier weights only trade more.
    if (w > 0 && best && !within(trial, best.trial)) ladderDone = true;
  }
  if (!best) {
    throw new RankError(trials.map((t) => `${t.family}: ${t.failed}`).join('; '));
  }
  let keep: Kept = best;
  if (speed) {
    // The fastest plan whose measured error is comparable with the most accurate one's.
    for (const k of measuredPlans) {
      if (k.trial.us === undefined || keep.trial.us === undefined || !within(k.trial, best.trial)) continue;
      if (k.trial.us < keep.trial.us - 1e-9) keep = k;
    }
  }
  return {
    specs: keep.trial.specs.map((spec, i) => ({ spec, est: keep.est[i]! })),
    family: keep.trial.family, guards: keep.guards, trials, fits, runs, seconds: (performance.now() - t0) / 1000,
  };
}
