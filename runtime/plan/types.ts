// Plan profiles (whose kernels a plan is for) and the op sets the planner reads; the stored plan's
// types are format/planTypes.ts (docs/FORMAT.md section 7).
import type { PlanStrategy } from '../format/planTypes.js';
import type { GraphNode, Model } from '../ir.js';
import { LAYER_KINDS } from '../layers/registry.js';
import type { FuseRule } from './fuse.js';

export type { ArenaPlan, MemoryPlan, PlanScratch, PlanStrategy, PlanValue } from '../format/planTypes.js';

/**
 * Whose kernels a plan is for. `scratchBytes` gives the scratch one node needs at the plan's
 * batch (0 for none); shapes come from inferShapes (runtime/plan/shapes.ts) at `batch`.
 */
export interface PlanProfile {
  name: 'node' | 'mcu';
  batch: number;
  /** Offsets are multiples of this: a power of two, >= 4. */
  align: number;
  scratchBytes(
    nodeIndex: number, node: GraphNode, inputShapes: number[][], outputShape: number[], model: Model,
    /** The node's entry of the plan's `strategy` list, when it has one. */
    strategy?: PlanStrategy,
  ): number;
  /**
   * Bytes per activation element: 4 (f32, the default); 1 for the int8-full path's int8
   * activations (runtime/plan/profiles.ts int8Activations).
   */
  elementBytes?: number;
  /** Graph inputs are read where they arrived and take no arena bytes (the firmware). */
  externalInputs?: boolean;
  /** Chain kinds the kernels stream (runtime/plan/fuse.ts): a plan may mark their intermediates fused. */
  fuses?: readonly FuseRule[];
  /** The chain kinds of `fuses` streamed for this model, when that depends on it (default: all of
   * them); the firmware's int8-full path streams only conv -> [relu] -> pool, in its integer form. */
  fusesFor?(model: Model, fuses: readonly FuseRule[]): readonly FuseRule[];
  /** Bytes a value of `elements` elements takes in this profile's arena (default: 4 per element, f32). */
  valueBytes?(model: Model, value: string, elements: number): number;
  /** Whether this profile's kernels run `node` (default: every op). The writer stores a plan only when all do. */
  supports?(node: GraphNode, model: Model): boolean;
  /**
   * Per factor layer strategy to record in the plan (and size scratch for): by node index.
   * Absent: no `strategy` list is written.
   */
  strategy?(nodeIndex: number, node: GraphNode, inputShapes: number[][], outputShape: number[], model: Model): PlanStrategy | undefined;
}

/** Ops whose output may take exactly the bytes of their (dying) input. */
export const IN_PLACE_OPS: ReadonlySet<string> = new Set([...LAYER_KINDS.values()].filter((k) => k.inPlace).map((k) => k.ops[0]));

/** Pure reshapes: under a profile with external inputs, such a node's output of an external value
 * is external too (read where the value arrived), unless it is a graph output. */
export const RESHAPE_OPS: ReadonlySet<string> = new Set([...LAYER_KINDS.values()].filter((k) => k.inPlace === 'reshape').map((k) => k.ops[0]));

/** The chain kinds `profile` streams for `model`. */
export function profileFuses(profile: PlanProfile, model: Model): readonly FuseRule[] {
  const fuses = profile.fuses ?? [];
  return profile.fusesFor ? profile.fusesFor(model, fuses) : fuses;
}

/** Bytes value `name` of `elements` elements needs under `profile` for `model`. */
export function profileValueBytes(profile: PlanProfile, model: Model, name: string, elements: number): number {
  return profile.valueBytes ? profile.valueBytes(model, name, elements) : elements * (profile.elementBytes ?? 4);
}
