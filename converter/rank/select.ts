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
 * Greedy marginal allocation: start every layer at its smallest candidate, then repeatedly buy the
 * step (to any larger candidate of one layer) with the best drop in predicted output error,
 * sensitivity × err², per parameter spent, while the budget allows.
 */
export function allocateBudget(layers: LayerOptions[], budget: number): number[] {
  const pick = layers.map(() => 0);
  let spent = layers.reduce((s, l) => s + l.candidates[0]!.params, 0);
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
        const gain = Math.max(l.sensitivity, 1e-9) * (cur.err * cur.err - c.err * c.err);
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
