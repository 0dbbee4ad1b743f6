// Runs an int8-full model (metadata quant.int8_full) on the reference integer kernels: the
// float input is quantised with the graph input's (scale, zero point), every node runs on int8
// activations with int32 accumulators, and the outputs are dequantised. runInt8 gives the int8
// outputs themselves, the numbers a bit-exact port must reproduce.
import { attrNum, numel, type GraphNode, type Model, type Tensor } from '../ir.js';
import { poolParams } from '../layers/pooling.js';
import { convParams } from '../layers/convAttrs.js';
import { inferShapes } from '../plan/shapes.js';
import type { Conv2dParams } from '../kernels/reference.js';
import { addInt8, avgPoolInt8, concatInt8, convInt8, denseInt8, globalAvgPoolInt8, lutInt8, maxPoolInt8, reluInt8, softmaxInt8, type StageWeight } from './kernels.js';
import { constantsOf, dwlrKernelInt8, INT8_STAGES, readInt8Full, stageShape, type Int8Full, type Int8Stage } from './params.js';
import { quantizeValue } from './requant.js';
import { SessionError } from '../session.js';

export interface Int8Tensor {
  shape: number[];
  data: Int8Array;
}

type NodeRun = (x: Int8Tensor, outShape: number[], all: Int8Tensor[]) => Int8Array;

export class Int8Session {
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly quant: Int8Full;
  private readonly runs: NodeRun[];
  /** Per node, its activation inputs (stored constants of add / mul are folded into their tables). */
  private readonly acts: string[][];

  private constructor(private readonly model: Model) {
    const { graph } = model;
    if (graph.inputs.length !== 1) throw new SessionError('SESSION_BAD_MODEL', `int8-full: ${graph.inputs.length} graph inputs; the integer path takes one`);
    this.inputNames = [graph.inputs[0]!.name];
    this.outputNames = [...graph.outputs];
    this.quant = readInt8Full(model);
    const isConst = constantsOf(model);
    this.acts = graph.nodes.map((n) => n.inputs.filter((i) => !isConst(i)));
    this.runs = graph.nodes.map((node, k) => this.prepare(node, this.acts[k]!));
  }

  static create(model: Model): Int8Session {
    return new Int8Session(model);
  }

  private prepare(node: GraphNode, acts: string[]): NodeRun {
    const inZp = this.quant.values[acts[0]!]![1];
    const outZp = this.quant.values[node.outputs[0]!]![1];
    const q = this.quant;
    if (q.lut?.[node.name]) {
      const lut = q.lut[node.name]!;
      return (x) => { const o = new Int8Array(x.data.length); lutInt8(x.data, lut, o); return o; };
    }
    if (q.add?.[node.name]) {
      const p = q.add[node.name]!;
      const zb = q.values[acts[1]!]![1];
      return (x, os, all) => {
        const b = all[1]!;
        if (b.data.length !== x.data.length || numel(os) !== x.data.length) throw new SessionError('SESSION_BAD_MODEL', `node ${node.name}: add of [${x.shape}] and [${b.shape}]; the integer add takes equal shapes`);
        const o = new Int8Array(x.data.length);
        addInt8(x.data, inZp, b.data, zb, p, outZp, o);
        return o;
      };
    }
    if (q.concat?.[node.name]) {
      const p = q.concat[node.name]!;
      const zps = acts.map((a) => q.values[a]![1]);
      return (_x, os, all) => {
        const raw = attrNum(node, 'axis', 1);
        const axis = raw < 0 ? raw + os.length : raw;
        const o = new Int8Array(numel(os));
        concatInt8(all.map((t) => t.data), all.map((t) => t.shape), axis, zps, p, outZp, o);
        return o;
      };
    }
    if (q.softmax?.[node.name]) {
      const e = q.softmax[node.name]!;
      return (x) => {
        const raw = attrNum(node, 'axis', -1);
        const ax = raw < 0 ? raw + x.shape.length : raw;
        const C = x.shape[ax]!;
        const inner = numel(x.shape.slice(ax + 1));
        const o = new Int8Array(x.data.length);
        softmaxInt8(x.data, x.data.length / (C * inner), C, inner, e, o);
        return o;
      };
    }
    if (node.op === 'dwlr_conv2d') {
      // One depthwise stage on the exact int32 kernels K = u v (params.ts dwlrKernelInt8).
      const u = this.model.tensors.get(node.weights['u']!)!;
      const v = this.model.tensors.get(node.weights['v']!)!;
      const [C, r] = u.shape as [number, number];
      const [, kh, kw] = v.shape as [number, number, number];
      const w: StageWeight = { q: dwlrKernelInt8(u.data as Int8Array, v.data as Int8Array, C, r, kh * kw), shape: [C, 1, kh, kw] };
      const p = convParams(node);
      const s = this.quant.nodes[node.name]![0]!;
      return (x) => runStage(node, x, w, p, s).data;
    }
    const plan = INT8_STAGES[node.op];
    if (plan) {
      const stages = this.quant.nodes[node.name]!;
      const steps = plan.map(([role, geom], k) => {
        const t = this.model.tensors.get(node.weights[role]!)!;
        const { shape, p } = stageShape(node, geom, t.shape);
        if (p && shape.length !== 4) throw new SessionError('SESSION_BAD_MODEL', `node ${node.name}: weight ${role} [${t.shape}] is not a conv weight`);
        const w: StageWeight = { q: t.data as Int8Array, shape };
        return { w, p, s: stages[k]! };
      });
      return (x) => {
        let cur: Int8Tensor = x;
        for (const { w, p, s } of steps) cur = runStage(node, cur, w, p, s);
        return cur.data;
      };
    }
    switch (node.op) {
      case 'relu':
        return (x) => { const o = new Int8Array(x.data.length); reluInt8(x.data, inZp, o); return o; };
      case 'max_pool': {
        const p = poolParams(node);
        return (x, os) => { const o = new Int8Array(numel(os)); maxPoolInt8(x.data, x.shape, p, o); return o; };
      }
      case 'avg_pool': {
        const p = poolParams(node);
        const inc = attrNum(node, 'count_include_pad', 0) !== 0;
        return (x, os) => { const o = new Int8Array(numel(os)); avgPoolInt8(x.data, x.shape, p, inc, inZp, o); return o; };
      }
      case 'global_avg_pool':
        return (x, os) => { const o = new Int8Array(numel(os)); globalAvgPoolInt8(x.data, x.shape, inZp, o); return o; };
      default: // flatten, reshape, identity: the same bytes in another shape
        return (x) => x.data;
    }
  }

  /** The graph input quantised with its (scale, zero point), rounding half away from zero. */
  quantizeInput(x: Tensor): Int8Tensor {
    const [scale, zp] = this.quant.values[this.inputNames[0]!]!;
    const data = new Int8Array(x.data.length);
    for (let i = 0; i < data.length; i++) data[i] = quantizeValue(x.data[i]!, scale, zp);
    return { shape: [...x.shape], data };
  }

  /** Every graph output as int8, from an int8 input. */
  runInt8(x: Int8Tensor): Record<string, Int8Tensor> {
    const shapes = inferShapes(this.model, x.shape[0] ?? 1, [x.shape]).values;
    const vals = new Map<string, Int8Tensor>([[this.inputNames[0]!, x]]);
    this.model.graph.nodes.forEach((node, k) => {
      const all = this.acts[k]!.map((name) => {
        const v = vals.get(name);
        if (!v) throw new SessionError('SESSION_BAD_MODEL', `node ${node.name}: input ${name} is not a value`);
        return v;
      });
      const shape = shapes.get(node.outputs[0]!)!;
      const data = this.runs[k]!(all[0]!, shape, all);
      if (data.length !== numel(shape)) throw new SessionError('SESSION_BAD_MODEL', `node ${node.name}: int8 kernel gave ${data.length} values for [${shape}]`);
      vals.set(node.outputs[0]!, { shape, data });
    });
    const out: Record<string, Int8Tensor> = {};
    for (const name of this.outputNames) out[name] = vals.get(name)!;
    return out;
  }

  dequantize(name: string, t: Int8Tensor): Tensor {
    const [scale, zp] = this.quant.values[name]!;
    const data = new Float32Array(t.data.length);
    for (let i = 0; i < data.length; i++) data[i] = (t.data[i]! - zp) * scale;
    return { shape: [...t.shape], data };
  }

  run(feeds: Record<string, Tensor>): Record<string, Tensor> {
    const x = feeds[this.inputNames[0]!];
    if (!x) throw new SessionError('SESSION_BAD_INPUT', `missing input ${this.inputNames[0]}`);
    const want = this.model.graph.inputs[0]!.shape;
    if (x.shape.length !== want.length || x.shape.some((d, i) => want[i]! >= 0 && d !== want[i]) || x.data.length !== numel(x.shape)) {
      throw new SessionError('SESSION_BAD_INPUT', `input ${this.inputNames[0]}: shape [${x.shape}] does not fit [${want}]`);
    }
    const q = this.runInt8(this.quantizeInput(x));
    const out: Record<string, Tensor> = {};
    for (const name of this.outputNames) out[name] = this.dequantize(name, q[name]!);
    return out;
  }

  runBatch(x: Tensor): Tensor {
    return this.run({ [this.inputNames[0]!]: x })[this.outputNames[0]!]!;
  }

  dispose(): void {}
}

function runStage(node: GraphNode, x: Int8Tensor, w: StageWeight, p: Conv2dParams | undefined, s: Int8Stage): Int8Tensor {
  if (!p) {
    const N = w.shape[0]!;
    const K = w.shape[1]!;
    const batch = x.shape[0] ?? 1;
    if (x.data.length !== batch * K) throw new SessionError('SESSION_BAD_INPUT', `node ${node.name}: input [${x.shape}] does not give ${K} features per sample`);
    const out = new Int8Array(batch * N);
    denseInt8(x.data, batch, w, s, out);
    return { shape: [batch, N], data: out };
  }
  if (x.shape.length !== 4 || x.shape[1] !== w.shape[1]! * p.group) throw new SessionError('SESSION_BAD_INPUT', `node ${node.name}: input [${x.shape}] is not [N, ${w.shape[1]! * p.group}, H, W]`);
  const [N, , H, W] = x.shape as [number, number, number, number];
  const OH = Math.floor((H + p.pads[0] + p.pads[2] - p.dilations[0] * (w.shape[2]! - 1) - 1) / p.strides[0]) + 1;
  const OW = Math.floor((W + p.pads[1] + p.pads[3] - p.dilations[1] * (w.shape[3]! - 1) - 1) / p.strides[1]) + 1;
  const out = new Int8Array(N * w.shape[0]! * OH * OW);
  const shape = convInt8(x.data, x.shape, w, p, s, out);
  return { shape, data: out };
}
