// What a model holds, layer by layer: kind, ranks, parameters and bytes; and its stored memory
// plans. Used by inspect and reports.
import { DTYPE_SIZE, FACTOR_OPS, NETWORK_OPS, numel, type GraphNode, type Model } from './ir.js';
import { LAYER_KINDS } from './layers/registry.js';
import { checkPlan } from './plan/check.js';
import { getProfile } from './plan/profiles.js';

export interface LayerSummary {
  name: string;
  op: string;
  factorised: boolean;
  ranks: number[];
  params: number;
  bytes: number;
  tensors: Array<{ role: string; name: string; dtype: string; shape: number[]; bytes: number }>;
}

/** Ranks as stored, read off the factor shapes (each factor kind's `factor.ranks`; an ADTN's depth; a dwlr_conv2d's rank; [] for other kinds). */
export function layerRanks(node: GraphNode, model: Model): number[] {
  const sh = (role: string) => model.tensors.get(node.weights[role] ?? '')?.shape ?? [];
  if (node.op === 'dwlr_conv2d') return [sh('u')[1] ?? 0];
  if (NETWORK_OPS.has(node.op)) return [node.attrs['depth'] as number];
  return LAYER_KINDS.get(node.op)?.factor?.ranks(node, sh) ?? [];
}

export function summarize(model: Model): LayerSummary[] {
  return model.graph.nodes
    .filter((n) => Object.keys(n.weights).length > 0 || n.inputs.some((i) => model.tensors.has(i)))
    .map((n) => {
      const roles = [...Object.entries(n.weights), ...n.inputs.filter((i) => model.tensors.has(i)).map((i) => ['operand', i] as [string, string])];
      const tensors = roles.map(([role, name]) => {
        const t = model.tensors.get(name)!;
        return { role, name, dtype: t.dtype, shape: [...t.shape], bytes: numel(t.shape) * DTYPE_SIZE[t.dtype] };
      });
      return {
        name: n.name,
        op: n.op,
        factorised: FACTOR_OPS.has(n.op) || NETWORK_OPS.has(n.op),
        ranks: layerRanks(n, model),
        params: tensors.reduce((s, t) => s + numel(t.shape), 0),
        bytes: tensors.reduce((s, t) => s + t.bytes, 0),
        tensors,
      };
    });
}

export interface PlanSummary {
  profile: string;
  batch: number;
  align: number;
  arenaBytes: number;
  peakScratchBytes: number;
  /** Buffers placed in the arena: non-external values plus scratch entries. */
  buffers: number;
  values: number;
  scratch: number;
  /** Values read where they arrived (graph inputs of an "mcu" plan). */
  external: number;
  /** Values never stored (intermediates of streamed chains in an "mcu" plan). */
  fused: number;
  /** Factor layers with a stored strategy, by use. */
  strategy: { contract: number; rebuild: number } | null;
  /** Bytes of one buffer per value and per scratch, for comparison with the arena. */
  unsharedBytes: number;
  /** "ok", or why the plan fails checkPlan against this runtime's profile of that name. */
  check: string;
}

/** Each stored memory plan (docs/FORMAT.md section 7), checked against the registered profile of its name. */
export function summarizePlans(model: Model): PlanSummary[] {
  return (model.memoryPlan?.plans ?? []).map((p) => {
    const profile = getProfile(p.profile);
    let check = 'ok';
    if (!profile) check = `no profile named ${p.profile} in this runtime`;
    else {
      try {
        checkPlan(model, p, { ...profile, batch: p.batch });
      } catch (e) {
        check = e instanceof Error ? e.message : String(e);
      }
    }
    const placed = p.values.filter((v) => !v.external && !v.fused);
    return {
      profile: p.profile,
      batch: p.batch,
      align: p.align,
      arenaBytes: p.arena,
      peakScratchBytes: p.peak_scratch,
      buffers: placed.length + p.scratch.length,
      values: p.values.length,
      scratch: p.scratch.length,
      external: p.values.filter((v) => v.external).length,
      fused: p.values.filter((v) => v.fused).length,
      strategy: p.strategy
        ? { contract: p.strategy.filter((s) => s.use === 'contract').length, rebuild: p.strategy.filter((s) => s.use === 'rebuild').length }
        : null,
      unsharedBytes: placed.reduce((s, v) => s + v.bytes, 0) + p.scratch.reduce((s, v) => s + v.bytes, 0),
      check,
    };
  });
}
