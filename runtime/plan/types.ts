// The memory plan (docs/FORMAT.md section 7): where every activation and every node's scratch
// buffer lives in one preallocated arena, for one profile (whose kernels) and one batch size.
import type { GraphNode, Model } from '../ir.js';
import type { FuseRule } from './fuse.js';

/** One activation value: a graph input or a node output. */
export interface PlanValue {
  name: string;
  offset: number;
  bytes: number;
  /** Index of the defining node; -1 for a graph input. */
  first: number;
  /** Index of the last node that reads it; the number of nodes for a graph output. */
  last: number;
  /** A graph input read where it arrived (an "mcu" plan): offset and bytes are 0. */
  external?: boolean;
  /** Never stored: an intermediate of a streamed chain (runtime/plan/fuse.ts); offset and bytes are 0. */
  fused?: boolean;
}

/** A node's scratch buffer, live only while that node runs. */
export interface PlanScratch {
  node: number;
  offset: number;
  bytes: number;
}

/**
 * How a factor layer computes its product (docs/FORMAT.md section 7): contract the input through
 * the factors, or rebuild `rows` rows of the dense weight at a time into scratch and multiply.
 */
export interface PlanStrategy {
  node: number;
  use: 'contract' | 'rebuild';
  /** Rows of the dense weight rebuilt per tile ("rebuild"); 0 for "contract". */
  rows: number;
}

export interface ArenaPlan {
  profile: string;
  batch: number;
  align: number;
  arena: number;
  values: PlanValue[];
  scratch: PlanScratch[];
  peak_scratch: number;
  strategy?: PlanStrategy[];
}

/** The `memory_plan` header key. */
export interface MemoryPlan {
  version: 1;
  plans: ArenaPlan[];
}

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
  /** Graph inputs are read where they arrived and take no arena bytes (the firmware). */
  externalInputs?: boolean;
  /** Chain kinds the kernels stream (runtime/plan/fuse.ts): a plan may mark their intermediates fused. */
  fuses?: readonly FuseRule[];
  /** Whether this profile's kernels run `node` (default: every op). The writer stores a plan only when all do. */
  supports?(node: GraphNode, model: Model): boolean;
  /**
   * Per factor layer strategy to record in the plan (and size scratch for): by node index.
   * Absent: no `strategy` list is written.
   */
  strategy?(nodeIndex: number, node: GraphNode, inputShapes: number[][], outputShape: number[], model: Model): PlanStrategy | undefined;
}

/** Ops whose output may take exactly the bytes of their (dying) input. */
export const IN_PLACE_OPS: ReadonlySet<string> = new Set([
  'relu', 'leaky_relu', 'sigmoid', 'tanh', 'clip', 'flatten', 'reshape', 'identity', 'hard_sigmoid', 'hard_swish', 'prelu',
]);

/** Pure reshapes: under a profile with external inputs, such a node's output of an external value
 * is external too (read where the value arrived), unless it is a graph output. */
export const RESHAPE_OPS: ReadonlySet<string> = new Set(['flatten', 'reshape', 'identity']);
