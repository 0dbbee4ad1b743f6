// One node run once on fresh buffers: for tests and probes that call a layer kind directly
// rather than through a Session. Allocates its output and scratch; the session never does this per call.
import { numel, type GraphNode, type Tensor } from '../ir.js';
import { outputShape } from '../plan/shapes.js';
import type { LayerContext } from './kind.js';
import { LayerError } from './kind.js';
import { LAYER_KINDS } from './registry.js';

export function runLayer(node: GraphNode, ctx: Omit<LayerContext, 'retain'> & Partial<Pick<LayerContext, 'retain'>>, inputs: Tensor[]): Tensor {
  const kind = LAYER_KINDS.get(node.op);
  if (!kind) throw new LayerError(node, 'unknown op');
  const prepared = kind.prepare(node, { retain: () => {}, ...ctx });
  const shapes = inputs.map((t) => t.shape);
  const shape = outputShape(node, shapes, (role) => ctx.weight(role).shape);
  const scratch = new Float32Array(kind.scratchFloats?.(node, shapes, shape, (role) => ctx.optionalWeight(role)?.shape) ?? 0);
  const out: Tensor = { shape, data: new Float32Array(numel(shape)) };
  prepared.bind(inputs, out, scratch)();
  return out;
}
