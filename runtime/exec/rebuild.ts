// Row-tile rebuild of any factor node: the rebuilder its kind module provides (`factor.rebuild`),
// found by op. The contract (Rebuilder) and the shared pieces are in ./rebuilder.ts.
import type { GraphNode, OpName } from '../ir.js';
import { referenceBackend, type KernelBackend } from '../kernels/backend.js';
import { LAYER_KINDS } from '../layers/registry.js';
import { RebuildError, type Rebuilder, type WeightLookup } from './rebuilder.js';

export { RebuildError } from './rebuilder.js';
export type { Rebuilder, RebuildWork, WeightLookup } from './rebuilder.js';

/** The kinds a rebuilder exists for: every factor kind (runtime/layers/registry.ts). */
export const REBUILD_OPS: readonly OpName[] = [...LAYER_KINDS.values()].filter((k) => k.factor).map((k) => k.ops[0]);

/**
 * A rebuilder for one factor node; `weight` resolves a role to its f32 factor, `kernels` runs the
 * products (default: the reference kernels).
 */
export function prepareRebuild(node: GraphNode, weight: WeightLookup, kernels: KernelBackend = referenceBackend): Rebuilder {
  const factor = LAYER_KINDS.get(node.op)?.factor;
  if (!factor) throw new RebuildError(node, `not a factor kind (have: ${REBUILD_OPS.join(', ')})`);
  return factor.rebuild(node, weight, kernels);
}
