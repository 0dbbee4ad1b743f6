// The contract of a layer kind: one file per kind, listed in index.ts.
// prepare() validates a node once and precomputes; the returned run() only computes.
import type { GraphNode, OpName, Tensor } from '../ir.js';
import type { KernelBackend } from '../kernels/backend.js';
import type { PlanStrategy } from '../plan/types.js';

export interface Weight {
  data: Float32Array;
  shape: number[];
}

export interface LayerContext {
  /** A required weight of this node, as f32 (dequantised once at prepare if stored as f16/int8). */
  weight(role: string): Weight;
  optionalWeight(role: string): Weight | undefined;
  /** The kernels this session runs on (reference or a faster backend). */
  kernels: KernelBackend;
}

export type LayerRun = (inputs: Tensor[]) => Tensor;

/** Shape of a weight by role, from the stored tensor table (undefined when absent). */
export type WeightShape = (role: string) => number[] | undefined;

export interface LayerKind {
  readonly ops: readonly OpName[];
  prepare(node: GraphNode, ctx: LayerContext): LayerRun;
  /**
   * Floats of scratch this kind's run needs at these shapes (absent: none). The planner's "node"
   * profile (runtime/plan/profiles.ts) sizes each node's scratch with it.
   */
  scratchFloats?(node: GraphNode, inputShapes: number[][], outputShape: number[], weightShape: WeightShape, strategy?: PlanStrategy): number;
}

export class LayerError extends Error {
  readonly code = 'LAYER_INVALID';
  constructor(node: GraphNode, message: string) {
    super(`layer ${node.name} (${node.op}): ${message}`);
  }
}

/** Checks a weight's shape against an expectation; -1 in `expected` matches any size. */
export function expectShape(node: GraphNode, role: string, w: Weight, expected: readonly number[]): void {
  const ok = w.shape.length === expected.length && expected.every((d, i) => d === -1 || d === w.shape[i]);
  if (!ok) throw new LayerError(node, `${role} has shape [${w.shape}], expected [${expected.map((d) => (d === -1 ? '?' : d))}]`);
}

export function firstInput(node: GraphNode, inputs: Tensor[]): Tensor {
  const x = inputs[0];
  if (!x) throw new LayerError(node, 'missing input');
  return x;
}
