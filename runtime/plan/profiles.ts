// Plan profiles by name: whose kernels a plan's scratch sizes are for. "node" is this runtime
// (runtime/layers on either kernel backend); "mcu" is the C firmware (runtime/plan/mcu.ts).
import { estimate, shapesOf } from '../cost/model.js';
import { FACTOR_OPS, type GraphNode, type Model } from '../ir.js';
import { LAYER_KINDS } from '../layers/index.js';
import { mcuProfile } from './mcu.js';
import type { PlanProfile, PlanStrategy } from './types.js';

function weightShapeOf(node: GraphNode, model: Model) {
  return (role: string): number[] | undefined => {
    const name = node.weights[role];
    return name === undefined ? undefined : model.tensors.get(name)?.shape;
  };
}

/** Scratch floats the node runtime's layer needs for this node (0 when it needs none). */
export function nodeScratchFloats(
  node: GraphNode, inputShapes: number[][], outputShape: number[], model: Model, strategy?: PlanStrategy,
): number {
  const kind = LAYER_KINDS.get(node.op);
  return kind?.scratchFloats?.(node, inputShapes, outputShape, weightShapeOf(node, model), strategy) ?? 0;
}

/**
 * The cost model's product for a factor layer at these shapes (runtime/cost/model.ts): contract
 * the input through the factors, or rebuild row tiles of the weight and multiply. Undefined for
 * other ops; "contract" when the model cannot price the node.
 */
export function costStrategy(k: number, node: GraphNode, inputShapes: number[][], model: Model): PlanStrategy | undefined {
  if (!FACTOR_OPS.has(node.op)) return undefined;
  const x = inputShapes[0];
  if (!x || x.length < 2) return { node: k, use: 'contract', rows: 0 };
  try {
    const e = estimate(node, shapesOf(node, (name) => model.tensors.get(name)?.shape), x[0]!, x.slice(1));
    return e.use === 'rebuild' && e.tileRows >= 1 ? { node: k, use: 'rebuild', rows: e.tileRows } : { node: k, use: 'contract', rows: 0 };
  } catch {
    return { node: k, use: 'contract', rows: 0 };
  }
}

/**
 * The Node runtime at batch 1; 64-byte offsets (a cache line; SIMD loads want 16). Factor layers
 * take the cost model's product; the plan records it (`strategy`) and sizes scratch for it.
 */
export const nodeProfile: PlanProfile = {
  name: 'node',
  batch: 1,
  align: 64,
  scratchBytes: (_k, node, inputShapes, outputShape, model, strategy) => 4 * nodeScratchFloats(node, inputShapes, outputShape, model, strategy),
  supports: (node) => LAYER_KINDS.has(node.op),
  strategy: (k, node, inputShapes, _outputShape, model) => costStrategy(k, node, inputShapes, model),
};

/** The same profile at another batch. */
export function atBatch(profile: PlanProfile, batch: number): PlanProfile {
  return { ...profile, batch };
}

const registry = new Map<string, PlanProfile>([['node', nodeProfile], ['mcu', mcuProfile]]);

/** Adds or replaces a profile by name. */
export function registerProfile(profile: PlanProfile): void {
  registry.set(profile.name, profile);
}

export function getProfile(name: string): PlanProfile | undefined {
  return registry.get(name);
}

/** Every known profile, "node" first. */
export function allProfiles(): PlanProfile[] {
  return [...registry.values()];
}

/**
 * `profile` with int8 activations (the int8-full path): every value one byte per element, and each
 * node's scratch a quarter of the f32 kernel's (the integer kernels keep the same scratch layout
 * with int8 elements in place of floats), rounded up. The name stays, so plans stay comparable.
 */
export function int8Activations(profile: PlanProfile): PlanProfile {
  return {
    ...profile,
    elementBytes: 1,
    // One byte for every value, whatever the profile's own per-value rule says for this model
    // (the mcu profile's valueBytes keeps f32 for non-int8-full models).
    valueBytes: undefined,
    scratchBytes: (k, node, inputShapes, outputShape, model, st) => Math.ceil(profile.scratchBytes(k, node, inputShapes, outputShape, model, st) / 4),
  };
}
