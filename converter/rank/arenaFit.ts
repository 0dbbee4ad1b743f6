// The device arena as a constraint of the rank search (convert --arena BYTES, or an mcu target's
// arena budget). The firmware runs a factorised conv as a chain of small convs whose intermediates
// sit in the node's scratch, next to the activations live at that node; a form whose scratch does
// not fit beside them is refused by the device (TOO_LARGE) however few parameters it has. So each
// layer keeps only the forms whose firmware scratch (the kind's `mcu` part, what
// runtime/plan/mcu.ts plans) fits in the arena less what is live there; the dense form needs no
// scratch in the firmware and always stays. After the decomposition, `checkArenaFit` plans the
// result as the firmware will and names the layer and the bytes when it still does not fit.
//
//   arena  |<----------------------------- arenaBytes ----------------------------->|
//   at k   |<-- activations live at node k -->|<-- scratch of node k's form: free -->|
import type { Model } from '../../runtime/ir.js';
import { LAYER_KINDS } from '../../runtime/layers/registry.js';
import { chainSpan, fusableChains } from '../../runtime/plan/fuse.js';
import { mcuProfile, mcuScratchFloats } from '../../runtime/plan/mcu.js';
import { planArena } from '../../runtime/plan/planner.js';
import { CORTEX_M4, mcuTableBytes } from '../../runtime/plan/mcuTables.js';
import { inferShapes, type InferredShapes } from '../../runtime/plan/shapes.js';
import { CompressError } from '../compressError.js';
import { findMethod } from '../methods/index.js';
import type { Candidate, RankSpec } from './candidates.js';
import type { Target } from './target.js';

const ALIGN = mcuProfile.align;
const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/**
 * Bytes of activations live at each node under the firmware's plan: graph inputs are external,
 * streamed intermediates take none, and a value live at any node of a streamed chain is live over
 * all of it, and an in-place output takes its input's bytes (runtime/plan/planner.ts). Scratch
 * is not included.
 */
export function liveBytes(model: Model, shapes: InferredShapes = inferShapes(model, 1)): number[] {
  const plan = planArena(model, mcuProfile);
  const span = chainSpan(fusableChains(model, shapes, mcuProfile.fuses ?? []));
  // An in-place output shares its dying input's bytes (same offset): live buffers at one node
  // never overlap otherwise, so one offset counts once there.
  const at = model.graph.nodes.map(() => new Map<number, number>());
  for (const v of plan.values) {
    if (v.bytes === 0) continue;
    const [a, b] = span(v.first, v.last);
    for (let k = Math.max(0, a); k <= Math.min(b, at.length - 1); k++) at[k]!.set(v.offset, Math.max(at[k]!.get(v.offset) ?? 0, alignUp(v.bytes)));
  }
  return at.map((m) => [...m.values()].reduce((s, x) => s + x, 0));
}

/** Firmware scratch bytes of a layer in form `spec` (0 dense); undefined when its method cannot size it unbuilt. */
export function formScratchBytes(t: Target, spec: RankSpec, k: number, shapes: InferredShapes): number | undefined {
  if (spec.method === 'dense') return 0;
  const m = findMethod(spec.method);
  const f = m?.shapes?.(t, spec as never);
  if (!f) return undefined;
  const mcu = LAYER_KINDS.get(f.op)?.mcu;
  if (!mcu) return undefined;
  const s = shapes.nodes[k]!;
  const node = { ...t.node, op: f.op, weights: Object.fromEntries(Object.keys(f.roles).map((r) => [r, r])) };
  const floats = mcu.scratchFloats?.(node, s.inputs, s.output, (role) => {
    const shape = f.roles[role];
    if (!shape) throw new Error(`node ${t.node.name} (${f.op}): no factor ${role}`);
    return shape;
  }) ?? 0;
  return 4 * floats;
}

export interface ArenaFilter {
  /** Per target: the candidates whose firmware scratch fits beside the live activations. */
  candidates: Candidate[][];
  /** Per target: bytes left for its scratch, and how many forms were dropped. */
  layers: Array<{ name: string; free: number; dropped: number }>;
}

/**
 * Keeps, per target layer, the forms whose firmware scratch fits in `arenaBytes` less what is live
 * at that layer. Forms whose method cannot size its scratch unbuilt stay (checkArenaFit sees them
 * built).
 */
export function filterByArena(model: Model, targets: Target[], cands: Candidate[][], arenaBytes: number): ArenaFilter {
  const shapes = inferShapes(model, 1);
  const live = liveBytes(model, shapes);
  const index = new Map(model.graph.nodes.map((n, k) => [n.name, k]));
  const layers: ArenaFilter['layers'] = [];
  // The device's tables take the arena's end: those of the model before its decomposition (one
  // record per node and tensor, as many nodes after it; a factorised layer's extra tensor records
  // and a quantisation's scales are counted by checkArenaFit on the result).
  const tables = mcuTableBytes(model, CORTEX_M4).bytes;
  const candidates = targets.map((t, i) => {
    const k = index.get(t.node.name)!;
    // The live activations alone over the arena: no form of any layer can fit.
    const free = arenaBytes - tables - live[k]!;
    if (free < 0) {
      throw new CompressError('ARENA_EXCEEDED',
        `the activations live at ${t.node.name} alone take ${live[k]} B and the device's tables ${tables} B, more than the ${arenaBytes} B arena given; no form of any layer can fit`);
    }
    const kept = cands[i]!.filter((c) => c.spec.method === 'dense' || alignUp(formScratchBytes(t, c.spec, k, shapes) ?? 0) <= free);
    layers.push({ name: t.node.name, free, dropped: cands[i]!.length - kept.length });
    return kept;
  });
  return { candidates, layers };
}

export interface ArenaFit {
  /** The firmware plan's arena (scratch included). */
  arena: number;
  /** The device's model tables beside it (runtime/plan/mcuTables.ts, Cortex-M4 records). */
  tables: number;
  limit: number;
  fits: boolean;
  /** The fullest node: live activations plus its scratch. */
  peak: { node: string; op: string; live: number; scratch: number };
}

/** Plans `model` as the firmware will and compares its arena and the device's tables with `limit`. */
export function arenaFit(model: Model, limit: number): ArenaFit {
  const shapes = inferShapes(model, 1);
  const plan = planArena(model, mcuProfile);
  const live = liveBytes(model, shapes);
  let peak = { node: '', op: '', live: 0, scratch: 0 };
  model.graph.nodes.forEach((n, k) => {
    const s = shapes.nodes[k]!;
    const scratch = 4 * mcuScratchFloats(n, s.inputs, s.output, model);
    if (live[k]! + scratch > peak.live + peak.scratch) peak = { node: n.name, op: n.op, live: live[k]!, scratch };
  });
  const t = mcuTableBytes(model, CORTEX_M4), tables = t.bytes;
  // while preparing, the device's prepare area takes the plan's place (model/prepare.c)
  return { arena: plan.arena, tables, limit, fits: Math.max(plan.arena, t.prepare) + tables <= limit, peak };
}

/** Throws ARENA_EXCEEDED, naming the fullest layer and the bytes, when `model` needs more than `limit`. */
export function checkArenaFit(model: Model, limit: number): ArenaFit {
  const f = arenaFit(model, limit);
  if (!f.fits) {
    const p = f.peak;
    throw new CompressError('ARENA_EXCEEDED',
      `the firmware arena needs ${f.arena} B and its tables ${f.tables} B, more than the ${limit} B given; the fullest layer is ${p.node} (${p.op}): ` +
      `${p.scratch} B of scratch beside ${p.live} B of live activations`);
  }
  return f;
}
