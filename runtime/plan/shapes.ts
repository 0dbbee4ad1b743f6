// Shape inference: the shape of every activation value at a given batch, from the graph and the
// stored tensors' shapes alone (no weights are read). Each kind's rule is its `outputShape`
// (runtime/layers/<kind>.ts); a LayerError it throws becomes the planner's error.
import { type GraphNode, type Model } from '../ir.js';
import { FlmError } from '../format/errors.js';
import { LayerError, type RequiredShape } from '../layers/kind.js';
import { LAYER_KINDS } from '../layers/registry.js';

function fail(node: GraphNode, what: string): never {
  throw new FlmError('FLM_MEMORY_PLAN', `node ${node.name} (${node.op}): ${what}`);
}

/** Output shape of one node from its input shapes. */
export function outputShape(node: GraphNode, ins: number[][], w: RequiredShape): number[] {
  if (!ins[0]) fail(node, 'missing input');
  const kind = LAYER_KINDS.get(node.op);
  if (!kind) fail(node, 'unknown op');
  try {
    return kind.outputShape(node, ins, w);
  } catch (e) {
    if (e instanceof LayerError) fail(node, e.message);
    throw e;
  }
}

export interface InferredShapes {
  /** Shape of every activation value (graph inputs and node outputs) at the batch. */
  values: Map<string, number[]>;
  /** Per node: its input shapes (stored tensors used as operands included) and its output shape. */
  nodes: Array<{ inputs: number[][]; output: number[] }>;
}

/**
 * Shapes at `batch`: a graph input's leading -1 becomes the batch. `inputShapes` (one per graph
 * input) replaces that rule, for graphs with other free dimensions (a session fed real tensors).
 */
export function inferShapes(model: Model, batch: number, inputShapes?: number[][]): InferredShapes {
  const { graph, tensors } = model;
  if (!Number.isInteger(batch) || batch < 1) throw new FlmError('FLM_MEMORY_PLAN', `batch ${batch} is not a positive integer`);
  const values = new Map<string, number[]>();
  graph.inputs.forEach((inp, k) => {
    const given = inputShapes?.[k];
    const shape = given ? [...given] : inp.shape.map((d, i) => (d < 0 ? (i === 0 ? batch : NaN) : d));
    if (shape.some((d) => Number.isNaN(d))) throw new FlmError('FLM_MEMORY_PLAN', `graph input ${inp.name}: only the leading dimension may be free, got [${inp.shape}]`);
    values.set(inp.name, shape);
  });
  const nodes: InferredShapes['nodes'] = [];
  for (const node of graph.nodes) {
    const ins = node.inputs.map((name) => {
      const v = values.get(name) ?? tensors.get(name)?.shape;
      if (!v) throw new FlmError('FLM_MEMORY_PLAN', `node ${node.name}: input ${name} is neither a value nor a stored tensor`);
      return v;
    });
    const weightShape = (role: string): number[] => {
      const name = node.weights[role];
      const t = name === undefined ? undefined : tensors.get(name);
      if (!t) fail(node, `missing weight ${role}`);
      return t.shape;
    };
    const out = outputShape(node, ins, weightShape);
    if (node.outputs.length !== 1) fail(node, `has ${node.outputs.length} outputs; every kind has one`);
    values.set(node.outputs[0]!, out);
    nodes.push({ inputs: ins, output: out });
  }
  return { values, nodes };
}
