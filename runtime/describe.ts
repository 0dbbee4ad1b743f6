// What a model holds, layer by layer: kind, ranks, parameters and bytes. Used by inspect and reports.
import { DTYPE_SIZE, FACTOR_OPS, numel, type GraphNode, type Model } from './ir.js';

export interface LayerSummary {
  name: string;
  op: string;
  factorised: boolean;
  ranks: number[];
  params: number;
  bytes: number;
  tensors: Array<{ role: string; name: string; dtype: string; shape: number[]; bytes: number }>;
}

/** Ranks as stored, read off the factor shapes (see the layouts in ir.ts). */
export function layerRanks(node: GraphNode, model: Model): number[] {
  const sh = (role: string) => model.tensors.get(node.weights[role] ?? '')?.shape ?? [];
  switch (node.op) {
    case 'svd_dense': return [sh('u')[1]!];
    case 'svd_conv2d': return [sh('v')[0]!];
    case 'tucker2_conv2d': return [sh('core')[0]!, sh('core')[1]!];
    case 'cp_conv2d': return [sh('a_in')[0]!];
    case 'ttl_dense': return [...sh('core')];
    case 'tt_dense':
    case 'tr_dense': {
      const cores = Object.keys(node.weights).filter((r) => r.startsWith('core.')).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
      return cores.length ? [sh(cores[0]!)[0]!, ...cores.map((c) => sh(c)[3]!)] : [];
    }
    default: return [];
  }
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
        factorised: FACTOR_OPS.has(n.op),
        ranks: layerRanks(n, model),
        params: tensors.reduce((s, t) => s + numel(t.shape), 0),
        bytes: tensors.reduce((s, t) => s + t.bytes, 0),
        tensors,
      };
    });
}
