// Shape inference: the shape of every activation value at a given batch, from the graph and the
// stored tensors' shapes alone (no weights are read). One rule per op, matching runtime/layers.
import { attrInts, attrNum, numel, type GraphNode, type Model, type OpName } from '../ir.js';
import { FlmError } from '../format/errors.js';
import { convTransposeShape } from '../layers/convTranspose2d.js';
import { LayerError } from '../layers/kind.js';
import { concatShape, padShape, sliceShape } from '../layers/reshapeData.js';
import { resizeShape } from '../layers/resize.js';

/** Shape rules the layer modules own; their LayerError becomes the planner's error. */
function viaLayer(node: GraphNode, f: () => number[]): number[] {
  try {
    return f();
  } catch (e) {
    if (e instanceof LayerError) fail(node, e.message);
    throw e;
  }
}

function fail(node: GraphNode, what: string): never {
  throw new FlmError('FLM_MEMORY_PLAN', `node ${node.name} (${node.op}): ${what}`);
}

function convOut(inSize: number, k: number, stride: number, padBegin: number, padEnd: number, dilation: number): number {
  return Math.floor((inSize + padBegin + padEnd - dilation * (k - 1) - 1) / stride) + 1;
}

function poolOut(inSize: number, k: number, stride: number, padBegin: number, padEnd: number, dilation: number, ceil: boolean): number {
  const span = inSize + padBegin + padEnd - dilation * (k - 1) - 1;
  if (!ceil) return Math.floor(span / stride) + 1;
  let out = Math.ceil(span / stride) + 1;
  if ((out - 1) * stride >= inSize + padBegin) out--;
  return out;
}

function broadcast(node: GraphNode, a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) fail(node, `cannot broadcast [${a}] with [${b}]`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

type WeightShape = (role: string) => number[];

function convShape(node: GraphNode, x: number[], O: number, KH: number, KW: number): number[] {
  if (x.length !== 4) fail(node, `input [${x}] is not [N, C, H, W]`);
  const s = attrInts(node, 'strides', [1, 1]);
  const p = attrInts(node, 'pads', [0, 0, 0, 0]);
  const d = attrInts(node, 'dilations', [1, 1]);
  const OH = convOut(x[2]!, KH, s[0]!, p[0]!, p[2]!, d[0]!);
  const OW = convOut(x[3]!, KW, s[1]!, p[1]!, p[3]!, d[1]!);
  if (!(OH >= 1 && OW >= 1)) fail(node, `output would be empty for input [${x}]`);
  return [x[0]!, O, OH, OW];
}

function denseShape(node: GraphNode, x: number[], inF: number, out: number): number[] {
  if (x.length < 1 || x[x.length - 1] !== inF) fail(node, `input [${x}] does not end in ${inF}`);
  return [...x.slice(0, -1), out];
}

/** Output shape of one node from its input shapes. */
export function outputShape(node: GraphNode, ins: number[][], w: WeightShape): number[] {
  const x = ins[0];
  if (!x) fail(node, 'missing input');
  const op: OpName = node.op;
  switch (op) {
    case 'dense': { const s = w('weight'); return denseShape(node, x, s[1]!, s[0]!); }
    case 'svd_dense': return denseShape(node, x, w('v')[1]!, w('u')[0]!);
    case 'tt_dense':
    case 'tr_dense':
    case 'ttl_dense': return denseShape(node, x, numel(attrInts(node, 'in_modes')), numel(attrInts(node, 'out_modes')));
    case 'conv2d': { const s = w('weight'); return convShape(node, x, s[0]!, s[2]!, s[3]!); }
    case 'svd_conv2d': { const v = w('v'); return convShape(node, x, w('u')[0]!, v[2]!, v[3]!); }
    case 'tucker2_conv2d': { const c = w('core'); return convShape(node, x, w('u_out')[0]!, c[2]!, c[3]!); }
    case 'cp_conv2d': return convShape(node, x, w('a_out')[0]!, w('k_h')[1]!, w('k_w')[1]!);
    case 'max_pool':
    case 'avg_pool': {
      if (x.length !== 4) fail(node, `input [${x}] is not [N, C, H, W]`);
      const k = attrInts(node, 'kernel');
      const s = attrInts(node, 'strides', [1, 1]);
      const p = attrInts(node, 'pads', [0, 0, 0, 0]);
      const d = op === 'max_pool' ? attrInts(node, 'dilations', [1, 1]) : [1, 1];
      const ceil = attrNum(node, 'ceil_mode', 0) !== 0;
      return [x[0]!, x[1]!, poolOut(x[2]!, k[0]!, s[0]!, p[0]!, p[2]!, d[0]!, ceil), poolOut(x[3]!, k[1]!, s[1]!, p[1]!, p[3]!, d[1]!, ceil)];
    }
    case 'global_avg_pool':
      if (x.length < 3) fail(node, `input [${x}] has no spatial axes`);
      return [x[0]!, x[1]!, ...x.slice(2).map(() => 1)];
    case 'relu': case 'leaky_relu': case 'sigmoid': case 'tanh': case 'clip': case 'softmax': case 'identity':
    case 'hard_sigmoid': case 'hard_swish': case 'log_softmax': case 'prelu':
      return [...x];
    case 'pad': return viaLayer(node, () => padShape(node, x));
    case 'slice': return viaLayer(node, () => sliceShape(node, x));
    case 'concat': return viaLayer(node, () => concatShape(node, ins));
    case 'resize': return viaLayer(node, () => resizeShape(node, x));
    case 'conv_transpose2d': return viaLayer(node, () => convTransposeShape(node, x, w('weight')));
    case 'flatten': {
      const axis = attrNum(node, 'axis', 1);
      const a = axis < 0 ? axis + x.length : axis;
      if (a < 0 || a > x.length) fail(node, `axis ${axis} out of range for [${x}]`);
      return [numel(x.slice(0, a)), numel(x.slice(a))];
    }
    case 'reshape': {
      const target = attrInts(node, 'shape');
      const shape = target.map((d, i) => (d === 0 ? x[i]! : d));
      const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      const fixed = shape.map((d) => (d === -1 ? numel(x) / known : d));
      if (numel(fixed) !== numel(x) || fixed.some((d) => !Number.isInteger(d) || d < 0)) fail(node, `cannot reshape [${x}] to [${target}]`);
      return fixed;
    }
    case 'transpose': {
      const perm = attrInts(node, 'perm');
      if (perm.length !== x.length) fail(node, `perm [${perm}] does not fit [${x}]`);
      return perm.map((p) => x[p]!);
    }
    case 'add':
    case 'mul': {
      const b = ins[1];
      if (!b) fail(node, 'needs two inputs');
      return broadcast(node, x, b);
    }
    case 'matmul': {
      const b = ins[1];
      if (!b) fail(node, 'needs two inputs');
      const a2 = x.length === 1 ? [1, x[0]!] : x;
      const b2 = b.length === 1 ? [b[0]!, 1] : b;
      if (b2[b2.length - 2] !== a2[a2.length - 1]) fail(node, `inner dims differ, [${x}] @ [${b}]`);
      const lead = broadcast(node, a2.slice(0, -2), b2.slice(0, -2));
      const M = a2[a2.length - 2]!;
      const N = b2[b2.length - 1]!;
      if (x.length === 1 && b.length === 1) return lead;
      if (x.length === 1) return [...lead, N];
      if (b.length === 1) return [...lead, M];
      return [...lead, M, N];
    }
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
