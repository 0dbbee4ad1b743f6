// The memory plan as stored in a .flm (docs/FORMAT.md section 7, the `memory_plan` header key):
// where every activation and every node's scratch buffer lives in one preallocated arena, for one
// profile (whose kernels) and one batch size. Plain data: the reader parses it (memoryPlan.ts),
// runtime/plan/ makes and checks it.

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
