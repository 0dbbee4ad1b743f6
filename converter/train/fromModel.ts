// A trainable network from any runtime Model (the graph IR): every node becomes the matching
// train op or trainable layer, its parameters initialised from the stored tensors (f16 and int8
// widened to f32), so that forward() computes what Session.runBatch computes on the same model.
// toModel() writes the trained tensors back (f32) into a Model with the same graph. This is what
// fine-tuning a compressed .flm trains.
import type { GraphNode, Model, StoredTensor } from '../../runtime/ir.js';
import { attrInts, attrNum, FACTOR_OPS, NETWORK_OPS, numel } from '../../runtime/ir.js';
import { tensorToFloat32 } from '../../runtime/format/dtype.js';
import { converterKind } from '../methods/index.js';
import type { TrainLayer } from './layers/layer.js';
import { leakyRelu, relu, sigmoid, tanh } from './ops/activation.js';
import type { Conv2dParams } from './ops/conv.js';
import { add, mul } from './ops/elementwise.js';
import { matmul } from './ops/matmul.js';
import { avgPool, globalAvgPool, maxPool } from './ops/pool.js';
import { permute, reshape } from './ops/shape.js';
import { constant, gradOf, param, result, type Var } from './tensor.js';

export class FromModelError extends Error {
  constructor(readonly node: string, message: string) {
    super(`node ${node}: ${message}`);
  }
}

/** One graph node as the trainable network runs it. */
export interface TrainNode {
  readonly node: GraphNode;
  /** The trainable layer of a parametric kind (dense, conv2d and every factor kind). */
  readonly layer?: TrainLayer;
  /** True for the factor kinds and the network kinds (runtime/ir.ts FACTOR_OPS, NETWORK_OPS). */
  readonly factor: boolean;
  /** Stored tensor name -> parameter, for this node's weights and trainable constant operands. */
  readonly params: Record<string, Var>;
  apply(inputs: Var[]): Var;
}

export interface FromModelOptions {
  /** Stored tensors used as operands (add/mul/matmul constants) become parameters too (default true). */
  trainConstants?: boolean;
}

// ---- ops the training engine lacks as such: clip and softmax over one axis ----

function clip(x: Var, lo: number, hi: number): Var {
  const out = new Float32Array(x.size);
  const xd = x.data;
  for (let i = 0; i < out.length; i++) {
    const v = xd[i]!;
    out[i] = v < lo ? lo : v > hi ? hi : v;
  }
  return result(out, x.shape, [x], (g) => {
    const gx = gradOf(x);
    if (gx) for (let i = 0; i < g.length; i++) if (xd[i]! >= lo && xd[i]! <= hi) gx[i]! += g[i]!;
  });
}

function softmaxAxis(x: Var, axis: number): Var {
  const r = x.shape.length;
  const ax = axis < 0 ? axis + r : axis;
  if (ax < 0 || ax >= r) throw new Error(`train: softmax axis ${axis} out of range for [${x.shape}]`);
  const C = x.shape[ax]!;
  const inner = numel(x.shape.slice(ax + 1));
  const outer = x.size / Math.max(1, C * inner);
  const xd = x.data;
  const y = new Float32Array(x.size);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      const base = o * C * inner + j;
      let m = -Infinity;
      for (let c = 0; c < C; c++) m = Math.max(m, xd[base + c * inner]!);
      let s = 0;
      for (let c = 0; c < C; c++) {
        const e = Math.exp(xd[base + c * inner]! - m);
        y[base + c * inner] = e;
        s += e;
      }
      for (let c = 0; c < C; c++) y[base + c * inner]! /= s;
    }
  }
  return result(y, x.shape, [x], (g) => {
    const gx = gradOf(x);
    if (!gx) return;
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const base = o * C * inner + j;
        let dot = 0;
        for (let c = 0; c < C; c++) dot += g[base + c * inner]! * y[base + c * inner]!;
        for (let c = 0; c < C; c++) {
          const k = base + c * inner;
          gx[k]! += y[k]! * (g[k]! - dot);
        }
      }
    }
  });
}

// ---- node builders ----

function convOf(node: GraphNode): Conv2dParams {
  const s = attrInts(node, 'strides', [1, 1]);
  const p = attrInts(node, 'pads', [0, 0, 0, 0]);
  const d = attrInts(node, 'dilations', [1, 1]);
  if (s.length !== 2 || p.length !== 4 || d.length !== 2) throw new FromModelError(node.name, 'conv attributes must be 2-D');
  return { strides: [s[0]!, s[1]!], pads: [p[0]!, p[1]!, p[2]!, p[3]!], dilations: [d[0]!, d[1]!], group: attrNum(node, 'group', 1) };
}

function poolOf(node: GraphNode) {
  const k = attrInts(node, 'kernel');
  const s = attrInts(node, 'strides', [1, 1]);
  const p = attrInts(node, 'pads', [0, 0, 0, 0]);
  const d = attrInts(node, 'dilations', [1, 1]);
  if (k.length !== 2 || s.length !== 2 || p.length !== 4 || d.length !== 2) throw new FromModelError(node.name, 'pooling attributes must be 2-D');
  return {
    kernel: [k[0]!, k[1]!] as [number, number],
    strides: [s[0]!, s[1]!] as [number, number],
    pads: [p[0]!, p[1]!, p[2]!, p[3]!] as [number, number, number, number],
    dilations: [d[0]!, d[1]!] as [number, number],
    ceilMode: attrNum(node, 'ceil_mode', 0) !== 0,
  };
}

/** The trainable layer of a parametric node, started from `w` (role -> f32 values). */
function buildLayer(node: GraphNode, shapes: Record<string, number[]>, w: Record<string, Float32Array>): TrainLayer {
  const kind = converterKind(node.op);
  if (!kind) throw new FromModelError(node.name, `${node.op} has no trainable layer`);
  return kind.trainable({
    node,
    shape: (role) => {
      const s = shapes[role];
      if (!s) throw new FromModelError(node.name, `missing weight ${role}`);
      return s;
    },
    need: (cond, what) => {
      if (!cond) throw new FromModelError(node.name, `${node.op}: ${what}`);
    },
    conv: () => convOf(node),
    init: { weights: w, bias: w['bias'] !== undefined },
  });
}

/** Whether the node is of a parametric kind (dense, conv2d or a factor kind): a trainable layer. */
const isParametric = (op: GraphNode['op']): boolean => converterKind(op) !== undefined;

/** The function of a non-parametric node over its input Vars. */
function opFn(node: GraphNode): (xs: Var[]) => Var {
  const one = (f: (x: Var) => Var) => (xs: Var[]) => f(xs[0]!);
  const two = (f: (a: Var, b: Var) => Var) => (xs: Var[]) => {
    if (xs.length !== 2) throw new FromModelError(node.name, `${node.op} needs two inputs`);
    return f(xs[0]!, xs[1]!);
  };
  switch (node.op) {
    case 'relu': return one(relu);
    case 'leaky_relu': { const a = attrNum(node, 'alpha', 0.01); return one((x) => leakyRelu(x, a)); }
    case 'sigmoid': return one(sigmoid);
    case 'tanh': return one(tanh);
    case 'clip': { const lo = attrNum(node, 'min', -Infinity), hi = attrNum(node, 'max', Infinity); return one((x) => clip(x, lo, hi)); }
    case 'identity': return one((x) => x);
    case 'max_pool': { const p = poolOf(node); return one((x) => maxPool(x, p)); }
    case 'avg_pool': {
      const p = poolOf(node);
      if (p.dilations[0] !== 1 || p.dilations[1] !== 1) throw new FromModelError(node.name, 'dilated average pooling is not trainable');
      const countIncludePad = attrNum(node, 'count_include_pad', 0) !== 0;
      return one((x) => avgPool(x, { ...p, countIncludePad }));
    }
    case 'global_avg_pool': return one((x) => {
      if (x.shape.length === 4) return globalAvgPool(x);
      // [N, C, ...spatial] of another rank: mean over the trailing axes, kept as 1s.
      const [N, C] = x.shape as [number, number];
      const S = x.size / (N * C);
      const flat = reshape(x, [N, C, 1, S]);
      return reshape(globalAvgPool(flat), [N, C, ...x.shape.slice(2).map(() => 1)]);
    });
    case 'flatten': {
      const axis = attrNum(node, 'axis', 1);
      return one((x) => {
        const a = axis < 0 ? axis + x.shape.length : axis;
        if (a < 0 || a > x.shape.length) throw new FromModelError(node.name, `axis ${axis} out of range for [${x.shape}]`);
        const outer = numel(x.shape.slice(0, a));
        return reshape(x, [outer, numel(x.shape.slice(a))]);
      });
    }
    case 'reshape': {
      const target = attrInts(node, 'shape');
      return one((x) => reshape(x, target.map((d, i) => (d === 0 ? x.shape[i]! : d))));
    }
    case 'transpose': { const perm = attrInts(node, 'perm'); return one((x) => permute(x, perm)); }
    case 'softmax': { const axis = attrNum(node, 'axis', -1); return one((x) => softmaxAxis(x, axis)); }
    case 'add': return two(add);
    case 'mul': return two(mul);
    case 'matmul': return two(matmul);
    default:
      throw new FromModelError(node.name, `op ${node.op} cannot be trained`);
  }
}

export class TrainableModel {
  /** Values fed in by name. */
  readonly inputNames: string[];
  readonly outputNames: string[];

  private constructor(
    readonly source: Model,
    readonly nodes: TrainNode[],
    /** Stored tensor name -> parameter. */
    readonly params: Record<string, Var>,
    /** Stored tensors used as operands but not trained (trainConstants false). */
    private readonly constants: Map<string, Var>,
  ) {
    this.inputNames = source.graph.inputs.map((i) => i.name);
    this.outputNames = [...source.graph.outputs];
  }

  static create(model: Model, opts: FromModelOptions = {}): TrainableModel {
    const trainConstants = opts.trainConstants ?? true;
    const params: Record<string, Var> = {};
    const constants = new Map<string, Var>();
    const owner = new Map<string, string>();
    const known = new Set(model.graph.inputs.map((i) => i.name));
    const f32 = (name: string, node: GraphNode): { t: StoredTensor; data: Float32Array } => {
      const t = model.tensors.get(name);
      if (!t) throw new FromModelError(node.name, `stored tensor ${name} is missing`);
      return { t, data: tensorToFloat32(t) };
    };
    const claim = (name: string, node: GraphNode) => {
      const prev = owner.get(name);
      if (prev !== undefined && prev !== node.name) {
        throw new FromModelError(node.name, `tensor ${name} is shared with node ${prev}; shared weights cannot be fine-tuned`);
      }
      owner.set(name, node.name);
    };
    const nodes: TrainNode[] = model.graph.nodes.map((node) => {
      const nodeParams: Record<string, Var> = {};
      const operands: Array<Var | null> = node.inputs.map((inp) => {
        if (known.has(inp)) return null;
        const hit = params[inp] ?? constants.get(inp);
        if (hit) return hit;
        const { t, data } = f32(inp, node);
        const v = trainConstants ? param(Float32Array.from(data), [...t.shape], inp) : constant(Float32Array.from(data), [...t.shape], inp);
        if (trainConstants) {
          params[inp] = v;
          nodeParams[inp] = v;
        } else constants.set(inp, v);
        return v;
      });
      for (const o of node.outputs) known.add(o);
      const pick = (xs: Var[]): Var[] => {
        let k = 0;
        return operands.map((c) => c ?? xs[k++]!);
      };
      if (isParametric(node.op)) {
        const shapes: Record<string, number[]> = {};
        const w: Record<string, Float32Array> = {};
        for (const [role, name] of Object.entries(node.weights)) {
          claim(name, node);
          if (params[name]) throw new FromModelError(node.name, `tensor ${name} is also used as an operand`);
          const { t, data } = f32(name, node);
          shapes[role] = [...t.shape];
          w[role] = data;
        }
        const layer = buildLayer(node, shapes, w);
        for (const role of Object.keys(node.weights)) {
          const v = layer.params[role];
          if (!v) throw new FromModelError(node.name, `${node.op} has no weight role ${role}`);
          const name = node.weights[role]!;
          const s = shapes[role]!;
          if (s.length !== v.shape.length || s.some((d, i) => d !== v.shape[i])) {
            throw new FromModelError(node.name, `weight ${role} has shape [${s}], the layer needs [${v.shape}]`);
          }
          v.name = name;
          params[name] = v;
          nodeParams[name] = v;
        }
        for (const role of Object.keys(layer.params)) {
          if (node.weights[role] === undefined) throw new FromModelError(node.name, `missing weight ${role}`);
        }
        return {
          node, layer, factor: FACTOR_OPS.has(node.op) || NETWORK_OPS.has(node.op), params: nodeParams,
          apply: (xs: Var[]) => layer.forward(pick(xs)[0]!),
        };
      }
      if (Object.keys(node.weights).length > 0) throw new FromModelError(node.name, `${node.op} takes no weights`);
      const f = opFn(node);
      return { node, factor: false, params: nodeParams, apply: (xs: Var[]) => f(pick(xs)) };
    });
    for (const o of model.graph.outputs) if (!known.has(o)) throw new FromModelError('(graph)', `output ${o} is never produced`);
    return new TrainableModel(model, nodes, params, constants);
  }

  /** Activation inputs of a node (its stored-tensor operands excluded). */
  activationInputs(n: TrainNode): string[] {
    return n.node.inputs.filter((i) => !this.params[i] && !this.constants.has(i));
  }

  /** Runs the graph; returns every value (or only the outputs unless keepAll). */
  run(feeds: Record<string, Var>, keepAll = false): Map<string, Var> {
    const values = new Map<string, Var>();
    for (const name of this.inputNames) {
      const v = feeds[name];
      if (!v) throw new Error(`train: missing input ${name}`);
      values.set(name, v);
    }
    for (const n of this.nodes) {
      const xs = this.activationInputs(n).map((name) => {
        const v = values.get(name);
        if (!v) throw new FromModelError(n.node.name, `input ${name} is not computed`);
        return v;
      });
      values.set(n.node.outputs[0]!, n.apply(xs));
    }
    if (keepAll) return values;
    return new Map(this.outputNames.map((o) => [o, values.get(o)!]));
  }

  /** The single output of a single-input model (e.g. logits of images). */
  forward(x: Var): Var {
    if (this.inputNames.length !== 1 || this.outputNames.length !== 1) throw new Error('train: forward() needs a model with one input and one output');
    return this.run({ [this.inputNames[0]!]: x }).get(this.outputNames[0]!)!;
  }

  /** Parameters of the factor-kind nodes only (the blocks that distillation trains first). */
  factorParams(): Record<string, Var> {
    const out: Record<string, Var> = {};
    for (const n of this.nodes) if (n.factor) Object.assign(out, n.params);
    return out;
  }

  get paramCount(): number {
    return Object.values(this.params).reduce((s, v) => s + v.size, 0) + [...this.constants.values()].reduce((s, v) => s + v.size, 0);
  }

  /** The source model's graph with the current parameter values, every trained tensor f32 (copies). */
  toModel(metadata: Record<string, unknown> = {}): Model {
    const tensors = new Map<string, StoredTensor>(this.source.tensors);
    for (const [name, v] of Object.entries(this.params)) {
      tensors.set(name, { name, dtype: 'f32', shape: [...v.shape], data: Float32Array.from(v.data) });
    }
    const graph = structuredClone(this.source.graph);
    return { graph, tensors, metadata: { ...this.source.metadata, ...metadata } };
  }
}

/** Shorthand for TrainableModel.create. */
export function fromModel(model: Model, opts: FromModelOptions = {}): TrainableModel {
  return TrainableModel.create(model, opts);
}
