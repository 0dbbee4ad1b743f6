// A point against the devices of --target: does its .flm fit (model bytes in flash, arena in RAM,
// the firmware's kernels), and the latency the target's profile predicts. The check is the one
// `convert --target` and `bundle` make (targets/fit.ts); it depends only on the artefact and the
// profile, so a sweep resumed with other targets fills it in from the stored .flm without
// converting again.
import { existsSync, readFileSync } from 'node:fs';
import type { Model } from '../runtime/ir.js';
import { readFlm } from '../runtime/format/reader.js';
import { checkFit, DEFAULT_MARGIN, getTarget } from '../targets/index.js';

export interface PointFit {
  target: string;
  kind: 'node' | 'mcu';
  fits: boolean;
  /** One line per budget broken. */
  why: string[];
  modelBytes: number;
  /** Model budget (flash on an mcu) and arena budget (RAM), after the margin. */
  modelBudget: number;
  arenaBytes: number | null;
  arenaBudget: number;
  macs: number | null;
  /** Predicted batch-1 latency on the target, and where the prediction comes from. */
  latencyMs: number | null;
  latencySource: string;
}

/** Throws TargetError UNKNOWN_TARGET for a name that is not a profile. */
export function checkTargetNames(names: string[]): void {
  for (const n of names) getTarget(n);
}

export function fitOnTarget(model: Model, fileBytes: number, name: string): PointFit {
  const t = getTarget(name);
  try {
    const f = checkFit(model, fileBytes, t, DEFAULT_MARGIN);
    return {
      target: t.name, kind: t.kind, fits: f.fits, why: f.why, modelBytes: f.modelBytes, modelBudget: f.modelBudget,
      arenaBytes: Number.isFinite(f.arenaBytes) ? f.arenaBytes : null, arenaBudget: f.arenaBudget,
      macs: f.macs, latencyMs: Number.isFinite(f.latencyMs) ? f.latencyMs : null, latencySource: f.latencySource,
    };
  } catch (e) {
    // A graph the target's planner cannot take does not fit it; say why.
    return {
      target: t.name, kind: t.kind, fits: false, why: [`${t.name}: ${(e as Error).message}`], modelBytes: fileBytes,
      modelBudget: Math.floor(t.budget.modelBytes * (1 - DEFAULT_MARGIN)), arenaBytes: null,
      arenaBudget: Math.floor(t.budget.arenaBytes * (1 - DEFAULT_MARGIN)), macs: null, latencyMs: null, latencySource: 'not predicted',
    };
  }
}

export function fitsOf(model: Model, fileBytes: number, targets: string[]): Record<string, PointFit> {
  return Object.fromEntries(targets.map((n) => [n, fitOnTarget(model, fileBytes, n)]));
}

/** The row's fits for these targets, computing from the stored artefact those the row lacks. */
export function completeFits(existing: Record<string, PointFit> | undefined, targets: string[], artefactPath: string): Record<string, PointFit> {
  const out: Record<string, PointFit> = {};
  const missing = targets.filter((n) => !existing?.[n]);
  let model: Model | undefined;
  let size = 0;
  if (missing.length > 0 && existsSync(artefactPath)) {
    const bytes = readFileSync(artefactPath);
    model = readFlm(bytes);
    size = bytes.length;
  }
  for (const n of targets) {
    const f = existing?.[n] ?? (model ? fitOnTarget(model, size, n) : undefined);
    if (f) out[n] = f;
  }
  return out;
}
