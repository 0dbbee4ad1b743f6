// Rank selection: --ratio spreads a parameter budget over layers by sensitivity; --energy keeps
// a fraction of each layer's spectral energy; --ranks takes them from a file.
import type { Candidate } from './candidates.js';

export interface LayerOptions {
  name: string;
  /** Pareto front by parameters ascending; the last one may be the dense layer itself (err 0). */
  candidates: Candidate[];
  /** Relative output error energy per unit of relative weight error energy (measured). */
  sensitivity: number;
}

export class RankError extends Error {
  readonly code = 'RANK_UNREACHABLE';
}

/**
 * --prefer speed: the allocator's objective adds `weight` × a form's compute to its predicted
 * error (sensitivity × err²), the compute being its predicted time (Candidate.us) times `scale`
 * (1 / the dense layers' total, so that the weight is in units of err² per whole model's compute).
 */
export interface ComputeWeight {
  weight: number;
  scale: number;
}

/** A candidate's compute in the allocator's units (0 when it was not priced). */
export const computeCost = (c: Candidate, scale: number): number => (c.us ?? 0) * scale;

/**
 * Greedy marginal allocation: start every layer at its smallest candidate, then repeatedly buy the
 * step (to any larger candidate of one layer) with the best drop in predicted output error,
 * sensitivity × err², per parameter spent, while the budget allows. With `compute`, a step's drop
 * is less the weighted compute it adds (more when it saves compute), and a step that adds more
 * compute than it buys error is not taken.
 */
export function allocateBudget(layers: LayerOptions[], budget: number, start?: readonly number[], compute?: ComputeWeight): number[] {
  const pick = layers.map((_, i) => start?.[i] ?? 0);
  let spent = layers.reduce((s, l, i) => s + l.candidates[pick[i]!]!.params, 0);
  if (spent > budget) {
    throw new RankError(`the factorised layers need at least ${spent} parameters, more than the budget of ${Math.floor(budget)}`);
  }
  for (;;) {
    let best: { layer: number; to: number; eff: number; cost: number } | undefined;
    layers.forEach((l, li) => {
      const cur = l.candidates[pick[li]!]!;
      for (let j = pick[li]! + 1; j < l.candidates.length; j++) {
        const c = l.candidates[j]!;
        const cost = c.params - cur.params;
        if (cost <= 0 || spent + cost > budget) continue;
        const gain = Math.max(l.sensitivity, 1e-9) * (cur.err * cur.err - c.err * c.err)
          - (compute ? compute.weight * (computeCost(c, compute.scale) - computeCost(cur, compute.scale)) : 0);
        const eff = gain / cost;
        if (!best || eff > best.eff) best = { layer: li, to: j, eff, cost };
      }
    });
    if (!best || best.eff <= 0) break;
    pick[best.layer] = best.to;
    spent += best.cost;
  }
  return pick;
}

/** The smallest candidate that keeps at least `energy` of the weight's energy (1 - err² ≥ energy). */
export function pickByEnergy(cands: Candidate[], energy: number): number {
  const i = cands.findIndex((c) => 1 - c.err * c.err >= energy - 1e-12);
  return i < 0 ? cands.length - 1 : i;
}

/** One layer's guard rail: the smallest candidate whose predicted error stays within the limit. */
export interface Guard {
  name: string;
  /** Parameters of that smallest acceptable candidate. */
  floorParams: number;
  /** Its predicted error (the candidates' `err` scale). */
  floorErr: number;
  /** True when the budget could not afford the floor and the layer was allowed below it. */
  relaxed: boolean;
  reason?: string;
}

/**
 * allocateBudget with guard rails: no layer starts (or stays) below the smallest candidate whose
 * predicted error is at most `limit`, unless the floors together exceed the budget; then floors are
 * dropped, the most expensive first, until the rest fit, and each dropped one says why.
 */
export function allocateGuarded(layers: LayerOptions[], budget: number, limit: number, compute?: ComputeWeight): { pick: number[]; guards: Guard[] } {
  const floors = layers.map((l) => {
    const k = l.candidates.findIndex((c) => c.err <= limit);
    return k < 0 ? l.candidates.length - 1 : k;
  });
  const guards: Guard[] = layers.map((l, i) => ({
    name: l.name, floorParams: l.candidates[floors[i]!]!.params, floorErr: l.candidates[floors[i]!]!.err, relaxed: false,
  }));
  const need = () => layers.reduce((s, l, i) => s + l.candidates[floors[i]!]!.params, 0);
  const order = layers.map((_, i) => i).sort((a, b) =>
    (layers[b]!.candidates[floors[b]!]!.params - layers[b]!.candidates[0]!.params) - (layers[a]!.candidates[floors[a]!]!.params - layers[a]!.candidates[0]!.params));
  for (const i of order) {
    const total = need();
    if (total <= budget) break;
    if (floors[i] === 0) continue;
    floors[i] = 0;
    guards[i]!.relaxed = true;
    guards[i]!.reason = `the guarded layers need ${total} parameters, more than the budget of ${Math.floor(budget)}; ` +
      `${layers[i]!.name} may go below ${guards[i]!.floorParams} parameters (predicted error ${guards[i]!.floorErr.toFixed(3)} at the limit ${limit})`;
  }
  return { pick: allocateBudget(layers, budget, floors, compute), guards };
}
