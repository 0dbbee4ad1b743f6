// Rank rounding (convert --round-ranks): every chosen rank to a multiple of m, within the
// parameter budget of --ratio when there is one. What may move and how far is each method's
// rankSlots (converter/methods/).
import { CompressError } from '../compressError.js';
import { rankSlots, specParams, specRanks, withRanks } from '../methods/index.js';
import type { RankSpec } from './candidates.js';
import type { Target } from './target.js';

function roundUp(r: number, m: number, cap: number): number {
  return Math.max(1, Math.min(Math.ceil(r / m) * m, cap));
}
function roundDown(r: number, m: number): number {
  const d = Math.floor(r / m) * m;
  return d >= 1 ? d : r; // below one multiple: keep the rank (never below 1)
}

export interface RoundedRanks {
  specs: RankSpec[];
  /** Total parameters of the chosen layers after rounding. */
  params: number;
}

/**
 * Rounds every rank of `specs` to a multiple of `m`: up (capped by the layer's shape), then, while
 * the layers' parameters exceed `budget`, rounds down one rank: the one whose step down lands within
 * budget with the smallest saving, else the one that saves the most; then rounds back up, cheapest
 * first, every lowered rank that still fits the budget. Without a budget all round up.
 */
export function roundSpecRanks(targets: readonly Target[], specs: readonly RankSpec[], m: number, budget?: number): RoundedRanks {
  if (!(Number.isInteger(m) && m >= 1)) throw new CompressError('BAD_OPTIONS', `--round-ranks ${m}: must be a positive integer`);
  const out = specs.map((s) => specRanks(s));
  const units: Array<{ layer: number; idx: number[]; down: number }> = [];
  const upOf = new Map<{ layer: number; idx: number[]; down: number }, number>();
  const lowered: Array<{ layer: number; idx: number[]; down: number; up: number }> = [];
  targets.forEach((t, i) => {
    const spec = specs[i]!;
    for (const slot of rankSlots(t, spec)) {
      const r = out[i]![slot.idx[0]!]!;
      const up = roundUp(r, m, Math.max(slot.cap, 1));
      for (const j of slot.idx) out[i]![j] = up;
      const down = Math.min(roundDown(r, m), up);
      if (down < up) {
        const u = { layer: i, idx: slot.idx, down };
        upOf.set(u, up);
        units.push(u);
      }
    }
  });
  const paramsOf = (i: number) => specParams(targets[i]!, withRanks(specs[i]!, out[i]!));
  let total = targets.reduce((s, _, i) => s + paramsOf(i), 0);
  if (budget !== undefined) {
    while (total > budget && units.length) {
      // The step that lands within budget with the smallest saving, else the largest saving.
      let best = -1;
      let saving = 0;
      let fits = false;
      units.forEach((u, k) => {
        const before = paramsOf(u.layer);
        const keep = out[u.layer]![u.idx[0]!]!;
        for (const j of u.idx) out[u.layer]![j] = u.down;
        const sv = before - paramsOf(u.layer);
        for (const j of u.idx) out[u.layer]![j] = keep;
        if (sv <= 0) return;
        const ok = total - sv <= budget;
        if ((ok && (!fits || sv < saving)) || (!ok && !fits && sv > saving)) {
          best = k;
          saving = sv;
          fits = ok;
        }
      });
      if (best < 0) break;
      const u = units.splice(best, 1)[0]!;
      for (const j of u.idx) out[u.layer]![j] = u.down;
      lowered.push({ ...u, up: upOf.get(u)! });
      total -= saving;
    }
    // Going down one rank at a time can overshoot: raise again, cheapest first, whatever still fits.
    for (;;) {
      let pick = -1;
      let cost = Infinity;
      lowered.forEach((u, k) => {
        const before = paramsOf(u.layer);
        for (const j of u.idx) out[u.layer]![j] = u.up;
        const c = paramsOf(u.layer) - before;
        for (const j of u.idx) out[u.layer]![j] = u.down;
        if (total + c <= budget && c < cost) {
          cost = c;
          pick = k;
        }
      });
      if (pick < 0) break;
      const u = lowered.splice(pick, 1)[0]!;
      for (const j of u.idx) out[u.layer]![j] = u.up;
      total += cost;
    }
  }
  return { specs: specs.map((s, i) => withRanks(s, out[i]!)), params: total };
}
