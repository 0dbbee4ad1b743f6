// Plan profiles by name: whose kernels a plan's scratch sizes are for. "node" is this runtime
// (runtime/layers on either kernel backend); "mcu" is the C firmware (runtime/plan/mcu.ts).
import type { GraphNode, Model } from '../ir.js';
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

/** The Node runtime at batch 1; 64-byte offsets (a cache line; SIMD loads want 16). */
export const nodeProfile: PlanProfile = {
  name: 'node',
  batch: 1,
  align: 64,
  scratchBytes: (_k, node, inputShapes, outputShape, model, strategy) => 4 * nodeScratchFloats(node, inputShapes, outputShape, model, strategy),
  supports: (node) => LAYER_KINDS.has(node.op),
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
