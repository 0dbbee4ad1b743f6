// Does a model fit a target? Model bytes against the target's model budget, the planned arena
// (scratch included) against its arena budget, both with a stated margin; and a latency predicted
// from the profile's cost constants.
import { FACTOR_OPS, numel, type Model } from '../runtime/ir.js';
import { estimate, shapesOf, type Machine } from '../runtime/cost/model.js';
import { mcuOpsFor, mcuProfile } from '../runtime/plan/mcu.js';
import { planArena } from '../runtime/plan/planner.js';
import { nodeProfile } from '../runtime/plan/profiles.js';
import { inferShapes } from '../runtime/plan/shapes.js';
import type { TargetProfile } from './profiles.js';

/** Fraction of each budget kept free by default. */
export const DEFAULT_MARGIN = 0.1;

export interface FitReport {
  target: string;
  margin: number;
  modelBytes: number;
  modelBudget: number;
  arenaBytes: number;
  arenaBudget: number;
  /** Operations the target's kernels do not have (mcu), if any. */
  unsupported: string[];
  /** Multiply-accumulates of one sample. */
  macs: number;
  latencyMs: number;
  latencySource: string;
  fits: boolean;
  /** One line per budget broken, with the numbers. */
  why: string[];
}

/** MACs of one node at its shapes: factor nodes from the cost model, dense layers from the weight. */
function nodeFlops(model: Model, k: number, ins: number[][], out: number[], machine: Machine | undefined, use?: 'contract'): { flops: number; us?: number } {
  const node = model.graph.nodes[k]!;
  if (FACTOR_OPS.has(node.op) && ins[0] && ins[0].length >= 2) {
    try {
      const e = estimate(node, shapesOf(node, (n) => model.tensors.get(n)?.shape), ins[0][0]!, ins[0].slice(1), machine ? { machine } : {});
      const path = (use ?? e.use) === 'rebuild' ? e.rebuild : e.contract;
      return { flops: path.flops, us: path.us };
    } catch {
      // priced below from the output size
    }
  }
  if (node.op === 'dwlr_conv2d') {
    // The device rebuilds the C kernels K = u v (C r kh kw) at each inference, then runs the
    // depthwise conv on them (kh kw per output).
    const u = model.tensors.get(node.weights['u'] ?? '')?.shape;
    const v = model.tensors.get(node.weights['v'] ?? '')?.shape;
    if (u && v) {
      const khw = v[1]! * v[2]!;
      return { flops: 2 * (u[0]! * u[1]! * khw + numel(out) * khw) };
    }
  }
  if (node.op === 'adtn_conv2d' && Array.isArray(node.attrs['weight_shape'])) {
    // W is formed once at load (runtime and device): each inference is the plain conv.
    const [, S, kh, kw] = node.attrs['weight_shape'] as number[];
    return { flops: 2 * numel(out) * S! * kh! * kw! };
  }
  const w = node.weights['weight'] ? model.tensors.get(node.weights['weight']) : undefined;
  if (w && (node.op === 'dense' || node.op === 'conv2d' || node.op === 'matmul')) {
    const outCh = node.op === 'conv2d' ? out[1]! : out[out.length - 1]!;
    return { flops: (2 * numel(out) * numel(w.shape)) / Math.max(1, outCh) };
  }
  return { flops: numel(out) };
}

/**
 * Multiply-accumulates of one sample as a device without a rebuild runs the graph: factor layers
 * contracted through their factors (each kind's `factor.contract`), dense, conv and matmul layers
 * from their weights, dwlr_conv2d as its kernel rebuild plus the depthwise conv, adtn_conv2d as the conv with its kernel formed at load; element-wise, pooling and shape nodes count none. This is the denominator of instructions per MAC.
 */
export function graphMacs(model: Model): number {
  return Math.round(nodeMacs(model).reduce((a, b) => a + b, 0));
}

/** graphMacs node by node (graph order; 0 for element-wise, pooling and shape nodes), unrounded. */
export function nodeMacs(model: Model): number[] {
  const shapes = inferShapes(model, 1);
  return model.graph.nodes.map((n, k) => {
    if (!FACTOR_OPS.has(n.op) && n.op !== 'dense' && n.op !== 'conv2d' && n.op !== 'matmul' && n.op !== 'dwlr_conv2d' && n.op !== 'adtn_conv2d') return 0;
    const s = shapes.nodes[k]!;
    return nodeFlops(model, k, s.inputs, s.output, undefined, 'contract').flops / 2;
  });
}

export function checkFit(model: Model, modelBytes: number, t: TargetProfile, margin = DEFAULT_MARGIN): FitReport {
  const mcu = t.kind === 'mcu';
  const ops = mcuOpsFor(model);
  const unsupported = mcu ? [...new Set(model.graph.nodes.filter((n) => !ops.has(n.op)).map((n) => n.op))] : [];
  let arenaBytes = Number.NaN;
  try {
    arenaBytes = planArena(model, mcu ? mcuProfile : nodeProfile).arena;
  } catch (e) {
    if (!unsupported.length) throw e;
  }
  const shapes = inferShapes(model, 1);
  let macs = 0;
  let us = 0;
  model.graph.nodes.forEach((_n, k) => {
    const s = shapes.nodes[k]!;
    const f = nodeFlops(model, k, s.inputs, s.output, t.machine ?? undefined);
    macs += f.flops / 2;
    if (t.machine) us += f.us ?? t.machine.callUs + f.flops / (t.machine.gemmGflopsSmall * 1e3);
  });
  let latencyMs: number;
  let latencySource: string;
  if (mcu && t.cyclesPerMac) {
    latencyMs = (macs * t.cyclesPerMac.value) / (t.clockMHz.value * 1e3);
    latencySource = `MACs x ${t.cyclesPerMac.value} cycles per MAC / ${t.clockMHz.value} MHz (${t.cyclesPerMac.source})`;
  } else {
    latencyMs = us / 1e3;
    latencySource = `runtime cost model, batch 1, one core, constants: ${t.machine?.source ?? 'none'}`;
  }
  const modelBudget = Math.floor(t.budget.modelBytes * (1 - margin));
  const arenaBudget = Math.floor(t.budget.arenaBytes * (1 - margin));
  const why: string[] = [];
  if (unsupported.length) why.push(`${t.name} kernels lack ${unsupported.join(', ')}`);
  if (modelBytes > modelBudget) why.push(`model is ${modelBytes} B, more than ${modelBudget} B (${t.budget.modelBytes} B less a ${margin * 100}% margin)`);
  if (arenaBytes > arenaBudget) why.push(`arena needs ${arenaBytes} B, more than ${arenaBudget} B (${t.budget.arenaBytes} B less a ${margin * 100}% margin)`);
  return {
    target: t.name, margin, modelBytes, modelBudget, arenaBytes, arenaBudget, unsupported,
    macs: Math.round(macs), latencyMs: +latencyMs.toFixed(4), latencySource, fits: why.length === 0, why,
  };
}
