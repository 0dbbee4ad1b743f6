// The measured rank search behind `--method auto --ratio R`: estimate, allocate, then fit only the
// chosen forms, measure what each does to the network's outputs, correct the estimates of that
// layer's method by what was measured, and allocate again until the choice settles. It runs once
// over every method that fits each layer and once per single-method family, then keeps the plan
// whose full network agrees best with the source on the calibration samples.
import type { GraphNode, Model, StoredTensor, Tensor } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import { outputChange, topOneAgreement, classesOf } from '../check.js';
import { paretoFront, type Candidate, type RankSpec } from './candidates.js';
import { allocateGuarded, RankError, type Guard } from './select.js';
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
   * are skipped (the first always runs).
   */
  maxSeconds?: number;
  /**
   * A later family is skipped when its first allocation (on the estimates as corrected so far)
   * predicts an output error above this many times the measured output error of the best plan yet:
   * it could not win. Default 1.5; Infinity tries every family.
   */
  skipFactor?: number;
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
  const classifier = classesOf({ shape: [samples, base.length / samples], data: base }, samples) > 0;
  // Measured error per layer form, and per layer and method the measured/predicted factors by params.
  const measured = new Map<string, number>();
  const factors = new Map<string, Array<{ params: number; f: number }>>();
  let fits = 0;
  let runs = 0;
  const run = (m: Model) => {
    runs++;
    return Session.create(m, { retainWeights: false }).runBatch(x).data;
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
  let best: { trial: PlanTrial; est: number[]; guards: Guard[] } | undefined;
  // Whole plans already measured (families often arrive at the same one), by their spec keys.
  const plans = new Map<string, Float32Array>();
  for (const fam of inp.families) {
    if (best && inp.maxSeconds !== undefined && cpuSeconds() > inp.maxSeconds) {
      trials.push({ family: fam.name, specs: [], predictedOutputError: NaN, agreement: null, outputError: NaN, rounds: 0, failed: `skipped: the search passed its ${inp.maxSeconds} s CPU bound` });
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
        candidates: paretoFront(priced[i]!.filter((c) => c.spec.method === 'dense' || fam.keep(t, c.spec)).map((c) => ({ ...c, err: priceOf(i, c) }))),
      }));
      let chosen: { pick: number[]; guards: Guard[] };
      try {
        chosen = allocateGuarded(layers, budget, guardLimit);
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
    if (skipped !== undefined) {
      log(`  search ${fam.name}: ${skipped}`);
      trials.push({ family: fam.name, specs: pick.map((c) => c.spec), predictedOutputError: NaN, agreement: null, outputError: NaN, rounds: 1, failed: skipped });
      continue;
    }
    if (failed !== undefined || pick.length === 0) {
      trials.push({ family: fam.name, specs: [], predictedOutputError: NaN, agreement: null, outputError: NaN, rounds: r, failed: failed ?? 'no plan' });
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
    const trial: PlanTrial = {
      family: fam.name, specs: pick.map((c) => c.spec),
      predictedOutputError: Math.sqrt(est.reduce((s, e) => s + e * e, 0)),
      agreement: classifier ? topOneAgreement(y, base, samples) : null,
      outputError: outputChange(y, base),
      rounds: Math.min(r + 1, rounds),
    };
    trials.push(trial);
    log(`  search ${fam.name}: ${classifier ? `agreement ${(100 * trial.agreement!).toFixed(1)}%, ` : ''}output error ${trial.outputError.toFixed(4)} (predicted ${trial.predictedOutputError.toFixed(4)})`);
    const better = !best
      || (classifier && trial.agreement! > best.trial.agreement! + 1e-9)
      || ((!classifier || Math.abs(trial.agreement! - best.trial.agreement!) <= 1e-9) && trial.outputError < best.trial.outputError);
    if (better) best = { trial, est, guards };
  }
  if (!best) {
    throw new RankError(trials.map((t) => `${t.family}: ${t.failed}`).join('; '));
  }
  return {
    specs: best.trial.specs.map((spec, i) => ({ spec, est: best!.est[i]! })),
    family: best.trial.family, guards: best.guards, trials, fits, runs, seconds: (performance.now() - t0) / 1000,
  };
}
