// An inference session: prepare validates every node and resolves its weights once;
// run() executes the prepared nodes in order and drops each value after its last use.
import { tensorToFloat32 } from './format/dtype.js';
import type { Model, Tensor } from './ir.js';
import { defaultBackend, type KernelBackend } from './kernels/backend.js';
import { LAYER_KINDS, LayerError, type LayerRun, type Weight } from './layers/index.js';

export class SessionError extends Error {
  constructor(readonly code: 'SESSION_BAD_MODEL' | 'SESSION_BAD_INPUT', message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface SessionOptions {
  /** Kernels to run on; default: defaultBackend() (the reference until initKernels() runs). */
  backend?: KernelBackend;
  /**
   * Let the backend keep its own copy of every weight (default true). Turn it off for short-lived
   * sessions, e.g. the converter's probes, so that copies do not pile up in the backend.
   */
  retainWeights?: boolean;
}

interface PreparedNode {
  name: string;
  inputs: string[];
  outputs: string[];
  run: LayerRun;
}

export class Session {
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputShapes: number[][];
  private readonly nodes: PreparedNode[];
  /** Stored tensors used as constant operands (e.g. a bias added by an `add` node). */
  private readonly constants = new Map<string, Tensor>();
  /** For each value, the index of the last node that reads it. */
  private readonly lastUse = new Map<string, number>();

  readonly kernels: KernelBackend;

  private constructor(model: Model, opts: SessionOptions) {
    const { graph, tensors } = model;
    this.inputNames = graph.inputs.map((i) => i.name);
    this.inputShapes = graph.inputs.map((i) => [...i.shape]);
    this.outputNames = [...graph.outputs];
    const kernels = (this.kernels = opts.backend ?? defaultBackend());
    const retain = opts.retainWeights ?? true;
    const f32 = new Map<string, Weight>();
    const resolve = (name: string): Weight | undefined => {
      const hit = f32.get(name);
      if (hit) return hit;
      const t = tensors.get(name);
      if (!t) return undefined;
      // Factors and small dense tensors only: f16/int8 are widened once here, f32 stays a view.
      const w = { data: tensorToFloat32(t), shape: [...t.shape] };
      if (retain) kernels.retain(w.data);
      f32.set(name, w);
      return w;
    };
    const known = new Set(this.inputNames);
    this.nodes = graph.nodes.map((node, idx) => {
      const kind = LAYER_KINDS.get(node.op);
      if (!kind) throw new SessionError('SESSION_BAD_MODEL', `node ${node.name}: unknown op ${node.op}`);
      for (const inp of node.inputs) {
        if (!known.has(inp)) {
          const c = resolve(inp);
          if (!c) throw new SessionError('SESSION_BAD_MODEL', `node ${node.name}: input ${inp} is neither a value nor a stored tensor`);
          this.constants.set(inp, c);
        }
        this.lastUse.set(inp, idx);
      }
      for (const o of node.outputs) known.add(o);
      const ctx = {
        kernels,
        optionalWeight: (role: string) => {
          const name = node.weights[role];
          if (name === undefined) return undefined;
          const w = resolve(name);
          if (!w) throw new LayerError(node, `weight ${role} names missing tensor ${name}`);
          return w;
        },
        weight: (role: string) => {
          const w = ctx.optionalWeight(role);
          if (!w) throw new LayerError(node, `missing weight ${role}`);
          return w;
        },
      };
      return { name: node.name, inputs: node.inputs, outputs: node.outputs, run: kind.prepare(node, ctx) };
    });
    for (const o of this.outputNames) {
      if (!known.has(o)) throw new SessionError('SESSION_BAD_MODEL', `graph output ${o} is never produced`);
      this.lastUse.set(o, Infinity);
    }
  }

  static create(model: Model, opts: SessionOptions = {}): Session {
    return new Session(model, opts);
  }

  /** Runs the graph; with `keepAll`, every intermediate value is kept and returned too (calibration). */
  run(feeds: Record<string, Tensor>, keepAll = false): Record<string, Tensor> {
    const values = new Map<string, Tensor>(this.constants);
    this.inputNames.forEach((name, i) => {
      const t = feeds[name];
      if (!t) throw new SessionError('SESSION_BAD_INPUT', `missing input ${name}`);
      const want = this.inputShapes[i]!;
      const ok = t.shape.length === want.length && want.every((d, k) => d === -1 || d === t.shape[k]);
      if (!ok) throw new SessionError('SESSION_BAD_INPUT', `input ${name} has shape [${t.shape}], expected [${want.map((d) => (d < 0 ? 'N' : d))}]`);
      if (t.data.length !== t.shape.reduce((a, b) => a * b, 1)) throw new SessionError('SESSION_BAD_INPUT', `input ${name}: data length does not match shape`);
      values.set(name, t);
    });
    this.nodes.forEach((n, idx) => {
      const ins = n.inputs.map((name) => values.get(name)!);
      const out = n.run(ins);
      values.set(n.outputs[0]!, out);
      for (const name of n.inputs) {
        if (!keepAll && this.lastUse.get(name) === idx && !this.constants.has(name)) values.delete(name);
      }
    });
    const result: Record<string, Tensor> = {};
    if (keepAll) for (const [k, v] of values) if (!this.constants.has(k)) result[k] = v;
    for (const o of this.outputNames) result[o] = values.get(o)!;
    return result;
  }

  /** Runs a single-input, single-output model on a batch. */
  runBatch(x: Tensor): Tensor {
    if (this.inputNames.length !== 1 || this.outputNames.length !== 1) {
      throw new SessionError('SESSION_BAD_INPUT', 'runBatch needs a model with one input and one output');
    }
    return this.run({ [this.inputNames[0]!]: x })[this.outputNames[0]!]!;
  }
}
