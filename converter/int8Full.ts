// --quant int8-full: post-training full-integer quantisation from calibration data (TFLite's
// scheme). Each activation value gets an asymmetric int8 (scale, zero point) from its min / max
// over the calibration set (the range widened to hold 0, so real 0 is exact); weights are
// symmetric int8 per output channel; biases int32 at in_scale * w_scale; each output channel a Q31
// multiplier and shift. A factor node runs as a chain of stages (runtime/int8full/params.ts),
// and every intermediate of the chain is calibrated too. A value that only feeds a relu takes
// the relu's (non-negative) range, and its producer clamps at the zero point: the relu folded in.
import { attrNum, numel, type OpName, type GraphNode, type Model, type StoredTensor, type Tensor } from '../runtime/ir.js';
import { Session } from '../runtime/session.js';
import { quantizeTensor, tensorToFloat32 } from '../runtime/format/dtype.js';
import { ADD_LEFT_SHIFT, constantsOf, dwlrKernelInt8, dwlrOverflow, INT8_FULL_KEY, INT8_FULL_VERSION, INT8_STAGES, int8Role, int8Unsupported, SOFTMAX_ONE, SOFTMAX_OUT, stageShape, type ActQuant, type Int8Add, type Int8Concat, type Int8Full, type Int8Stage } from '../runtime/int8full/params.js';
import { inferShapes } from '../runtime/plan/shapes.js';
import { quantizeValue } from '../runtime/int8full/requant.js';
import { INT32_MAX, INT32_MIN, quantizeMultiplier } from '../runtime/int8full/requant.js';
import { quantizeModel } from './quantize.js';
import { CompressError } from './compressError.js';

/** The parametric kinds the integer path runs: what `--method auto` may pick with --quant int8-full. */
export const INT8_KINDS: ReadonlySet<OpName> = new Set(Object.keys(INT8_STAGES) as OpName[]);

/** Name of stage k's output inside node `node` (k < last): the chain's intermediate. */
export const midName = (node: string, k: number): string => `${node}#${k}`;

/** The nodes the integer path cannot run, with why; empty when it runs them all. */
export function int8FullRefusals(model: Model): string[] {
  const out: string[] = [];
  if (model.graph.inputs.length !== 1) out.push(`${model.graph.inputs.length} graph inputs (the integer path takes one)`);
  const isConst = constantsOf(model);
  const size = (name: string) => numel(model.tensors.get(name)!.shape);
  let shapes: Map<string, number[]> | undefined;
  for (const n of model.graph.nodes) {
    const why = int8Unsupported(n, isConst, size);
    if (why) {
      out.push(`node ${n.name}: ${why}`);
      continue;
    }
    const role = int8Role(n, isConst);
    if (role === 'add') {
      // The integer add takes two tensors of one shape (a residual); broadcasting is refused.
      try {
        shapes ??= inferShapes(model, 1).values;
      } catch {
        shapes = new Map();
      }
      const [a, b] = n.inputs.map((i) => shapes!.get(i));
      if (a && b && (a.length !== b.length || a.some((d, i) => d !== b[i]))) out.push(`node ${n.name}: add of [${a}] and [${b}] (the integer add takes two tensors of one shape)`);
    } else if (role !== 'concat' && n.inputs.filter((i) => !isConst(i)).length !== 1) out.push(`node ${n.name} (${n.op}): ${n.inputs.length} inputs`);
  }
  return out;
}

/**
 * The f32 model with each parametric node as its stages (dense or conv2d nodes), so that one
 * session run yields every value the integer path quantises, the chains' intermediates included.
 */
export function stageModel(model: Model): Model {
  const tensors = new Map(model.tensors);
  const nodes: GraphNode[] = [];
  for (const node of model.graph.nodes) {
    const plan = INT8_STAGES[node.op];
    if (!plan || node.op === 'dense' || node.op === 'conv2d' || node.op === 'dwlr_conv2d') {
      nodes.push(node);
      continue;
    }
    let input = node.inputs[0]!;
    plan.forEach(([role, geom], k) => {
      const last = k === plan.length - 1;
      const t = model.tensors.get(node.weights[role]!)!;
      const name = `${node.name}#w${k}`;
      const { shape, p } = stageShape(node, geom, t.shape);
      tensors.set(name, { ...t, name, shape });
      const weights: Record<string, string> = { weight: name };
      if (last && node.weights['bias']) weights['bias'] = node.weights['bias'];
      const attrs: GraphNode['attrs'] = p ? { strides: [...p.strides], pads: [...p.pads], dilations: [...p.dilations], group: p.group } : {};
      const output = last ? node.outputs[0]! : midName(node.name, k);
      nodes.push({ name: `${node.name}#${k}`, op: geom === 'dense' ? 'dense' : 'conv2d', inputs: [input], outputs: [output], attrs, weights });
      input = output;
    });
  }
  return { ...model, graph: { ...model.graph, nodes }, tensors, memoryPlan: undefined } as Model;
}

/** Min and max of every value of `model` (its stages included) over the calibration inputs. */
export function calibrateRanges(model: Model, calib: Tensor, batch = 64, onBatch?: (done: number, total: number) => void): Map<string, [number, number]> {
  const staged = stageModel(model);
  const session = Session.create(staged, { retainWeights: false });
  const inName = staged.graph.inputs[0]!.name;
  const n = calib.shape[0]!;
  const per = numel(calib.shape) / n;
  const ranges = new Map<string, [number, number]>();
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const x = { shape: [m, ...calib.shape.slice(1)], data: calib.data.subarray(s * per, (s + m) * per) };
    const all = session.run({ [inName]: x }, true);
    for (const [name, t] of Object.entries(all)) {
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of t.data) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const r = ranges.get(name);
      ranges.set(name, r ? [Math.min(r[0], lo), Math.max(r[1], hi)] : [lo, hi]);
    }
    onBatch?.(s + m, n);
  }
  session.dispose();
  return ranges;
}

/** Asymmetric int8 for [lo, hi] widened to hold 0: scale (an f32) and zero point in [-128, 127]. */
export function actQuantOf(lo: number, hi: number): ActQuant {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new CompressError('BAD_OPTIONS', `--quant int8-full: calibration met a non-finite activation (${lo}..${hi})`);
  const a = Math.min(lo, 0);
  const b = Math.max(hi, 0);
  const scale = Math.fround(b - a > 0 ? (b - a) / 255 : 1 / 255);
  const zp = Math.round(-128 - a / scale);
  return [scale, Math.max(-128, Math.min(127, zp))];
}

export interface Int8FullOptions {
  onBatch?: (done: number, total: number) => void;
}

/**
 * `model` (f32 weights) as an int8-full model calibrated on `calib` [N, ...input]. Throws
 * CompressError INT8_UNSUPPORTED naming the nodes whose kinds the integer path lacks.
 */
export function quantizeInt8Full(source: Model, calib: Tensor, opts: Int8FullOptions = {}): Model {
  const refused = int8FullRefusals(source);
  if (refused.length) throw new CompressError('INT8_UNSUPPORTED', `--quant int8-full: ${refused.join('; ')}`);
  const model = balanceDwlr(source);
  const ranges = calibrateRanges(model, calib, 64, opts.onBatch);
  const { graph } = model;
  const isConst = constantsOf(model);
  const actsOf = (n: GraphNode) => n.inputs.filter((i) => !isConst(i));
  const roleOf = new Map(graph.nodes.map((n) => [n.name, int8Role(n, isConst)!]));
  const consumers = new Map<string, GraphNode[]>();
  for (const n of graph.nodes) for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const producer = new Map(graph.nodes.map((n) => [n.outputs[0]!, n]));
  // Relu / clip folding: the producer's output (a stage chain or an add) takes the activation's
  // range and clamps at its bounds (relu: the zero point).
  const folded = new Map<string, GraphNode>();
  for (const n of graph.nodes) {
    if (n.op !== 'relu' && n.op !== 'clip') continue;
    const v = n.inputs[0]!;
    const p = producer.get(v);
    const pr = p ? roleOf.get(p.name) : undefined;
    if (p && (pr === 'stages' || pr === 'add') && consumers.get(v)!.length === 1 && !graph.outputs.includes(v)) {
      ranges.set(v, ranges.get(n.outputs[0]!)!);
      folded.set(p.name, n);
    }
  }
  const values: Record<string, ActQuant> = {};
  const q = (name: string): ActQuant => {
    const r = ranges.get(name);
    if (!r) throw new CompressError('BAD_OPTIONS', `--quant int8-full: calibration saw no value ${name}`);
    return actQuantOf(r[0], r[1]);
  };
  values[graph.inputs[0]!.name] = q(graph.inputs[0]!.name);
  for (const n of graph.nodes) {
    const role = roleOf.get(n.name)!;
    values[n.outputs[0]!] = role === 'pass' ? values[actsOf(n)[0]!]! : role === 'softmax' ? [...SOFTMAX_OUT] : q(n.outputs[0]!);
  }
  /** The output clamp of a node whose relu or clip was folded into it. */
  const clampOf = (n: GraphNode, outQ: ActQuant): [number, number] => {
    const act = folded.get(n.name);
    if (!act) return [-128, 127];
    if (act.op === 'relu') return [outQ[1], 127];
    const lo = attrNum(act, 'min', -Infinity);
    const hi = attrNum(act, 'max', Infinity);
    return [lo === -Infinity ? -128 : quantizeValue(lo, outQ[0], outQ[1]), hi === Infinity ? 127 : quantizeValue(hi, outQ[0], outQ[1])];
  };
  const lut: Record<string, number[]> = {};
  const add: Record<string, Int8Add> = {};
  const concat: Record<string, Int8Concat> = {};
  const softmax: Record<string, number[]> = {};
  for (const n of graph.nodes) {
    const role = roleOf.get(n.name)!;
    const ins = actsOf(n).map((i) => values[i]!);
    const outQ = values[n.outputs[0]!]!;
    if (role === 'lut') lut[n.name] = tabulate(model, n, isConst, ins[0]!, outQ);
    else if (role === 'softmax') softmax[n.name] = Array.from({ length: 256 }, (_, d) => Math.round(SOFTMAX_ONE * Math.exp(-d * ins[0]![0])));
    else if (role === 'concat') {
      const m = ins.map((iq) => quantizeMultiplier(iq[0] / outQ[0]));
      concat[n.name] = { mult: m.map((x) => x.mult), shift: m.map((x) => x.shift) };
    } else if (role === 'add') {
      const twiceMax = 2 * Math.max(ins[0]![0], ins[1]![0]);
      const m0 = quantizeMultiplier(ins[0]![0] / twiceMax);
      const m1 = quantizeMultiplier(ins[1]![0] / twiceMax);
      const mo = quantizeMultiplier(twiceMax / (2 ** ADD_LEFT_SHIFT * outQ[0]));
      const [min, max] = clampOf(n, outQ);
      add[n.name] = { mult: [m0.mult, m1.mult], shift: [m0.shift, m1.shift], outMult: mo.mult, outShift: mo.shift, min, max };
    }
  }
  const quantised = quantizeModel(model, 'int8');
  // dwlr: v takes one scale, so that the kernels u v are integers at s_u[c] s_v (params.ts dwlrKernelInt8).
  for (const n of graph.nodes) {
    if (n.op !== 'dwlr_conv2d') continue;
    const v = n.weights['v']!;
    quantised.tensors.set(v, quantizeTensor(model.tensors.get(v)!, 'i8'));
  }
  const nodes: Record<string, Int8Stage[]> = {};
  for (const n of graph.nodes) {
    const plan = INT8_STAGES[n.op];
    if (!plan) continue;
    const dwlrV = n.op === 'dwlr_conv2d' ? quantised.tensors.get(n.weights['v']!)! : undefined;
    let inQ = values[n.inputs[0]!]!;
    nodes[n.name] = plan.map(([role], k): Int8Stage => {
      const last = k === plan.length - 1;
      const outQ = last ? values[n.outputs[0]!]! : q(midName(n.name, k));
      const w = quantised.tensors.get(n.weights[role]!)!;
      const C = w.shape[0]!;
      const sv = dwlrV ? dwlrV.quant!.scale[0]! : 1;
      const ws = (c: number) => w.quant!.scale[w.quant!.axis === undefined ? 0 : c]! * sv;
      const mult: number[] = [];
      const shift: number[] = [];
      for (let c = 0; c < C; c++) {
        const m = quantizeMultiplier((inQ[0] * ws(c)) / outQ[0]);
        mult.push(m.mult);
        shift.push(m.shift);
      }
      const [min, max] = last ? clampOf(n, outQ) : [-128, 127];
      const stage: Int8Stage = { w: role, in: inQ, out: outQ, mult, shift, min, max };
      const b = last && n.weights['bias'] ? model.tensors.get(n.weights['bias']) : undefined;
      if (b) stage.bias = int32Bias(b, C, (c) => inQ[0] * ws(c));
      if (dwlrV) {
        const khw = dwlrV.shape[1]! * dwlrV.shape[2]!;
        const ch = dwlrOverflow(dwlrKernelInt8(w.data as Int8Array, dwlrV.data as Int8Array, C, w.shape[1]!, khw), C, khw, stage.bias);
        if (ch >= 0) throw new CompressError('INT8_UNSUPPORTED', `--quant int8-full: node ${n.name} (dwlr_conv2d): channel ${ch}'s kernel u v could overflow the int32 accumulator (kernel ${dwlrV.shape[1]}x${dwlrV.shape[2]} of rank ${w.shape[1]})`);
      }
      inQ = outQ;
      return stage;
    });
  }
  const full: Int8Full = { version: INT8_FULL_VERSION, values, nodes };
  if (Object.keys(lut).length) full.lut = lut;
  if (Object.keys(add).length) full.add = add;
  if (Object.keys(concat).length) full.concat = concat;
  if (Object.keys(softmax).length) full.softmax = softmax;
  return { ...quantised, metadata: { ...quantised.metadata, 'convert.quant': 'int8-full', [INT8_FULL_KEY]: full as unknown } };
}

/**
 * The 256-entry table of an element-wise node: each int8 input dequantised, run through the f32
 * runtime's own kernel for the node (its constant operand included), quantised to the output.
 */
function tabulate(model: Model, node: GraphNode, isConst: (name: string) => boolean, inQ: ActQuant, outQ: ActQuant): number[] {
  const tensors = new Map<string, StoredTensor>();
  for (const i of node.inputs) if (isConst(i)) tensors.set(i, model.tensors.get(i)!);
  const x = '#lut.in';
  const one: Model = {
    graph: { inputs: [{ name: x, shape: [1, 256] }], outputs: [node.outputs[0]!], nodes: [{ ...node, inputs: node.inputs.map((i) => (isConst(i) ? i : x)) }] },
    tensors,
    metadata: {},
  };
  const session = Session.create(one, { retainWeights: false });
  const data = Float32Array.from({ length: 256 }, (_, k) => (k - 128 - inQ[1]) * inQ[0]);
  const y = session.run({ [x]: { shape: [1, 256], data } })[node.outputs[0]!]!;
  session.dispose();
  if (y.data.length !== 256) throw new CompressError('INT8_UNSUPPORTED', `--quant int8-full: node ${node.name} (${node.op}) is not element-wise with its constant`);
  return Array.from(y.data, (v) => quantizeValue(v, outQ[0], outQ[1]));
}

/**
 * The model with each dwlr_conv2d's factors rescaled so that every row of v has max |v| = 1 (u's
 * columns take the inverse): the same kernels u v up to f32 rounding, and v's one int8 scale
 * (the integer path's) then loses nothing against a scale per row.
 */
export function balanceDwlr(model: Model): Model {
  if (!model.graph.nodes.some((n) => n.op === 'dwlr_conv2d')) return model;
  const tensors = new Map(model.tensors);
  for (const n of model.graph.nodes) {
    if (n.op !== 'dwlr_conv2d') continue;
    const ut = model.tensors.get(n.weights['u']!)!;
    const vt = model.tensors.get(n.weights['v']!)!;
    const u = Float32Array.from(tensorToFloat32(ut));
    const v = Float32Array.from(tensorToFloat32(vt));
    const [C, r] = ut.shape as [number, number];
    const khw = v.length / r;
    for (let j = 0; j < r; j++) {
      let m = 0;
      for (let t = 0; t < khw; t++) m = Math.max(m, Math.abs(v[j * khw + t]!));
      if (!(m > 0) || !Number.isFinite(m)) continue;
      for (let t = 0; t < khw; t++) v[j * khw + t] = v[j * khw + t]! / m;
      for (let c = 0; c < C; c++) u[c * r + j] = u[c * r + j]! * m;
    }
    tensors.set(ut.name, { name: ut.name, dtype: 'f32', shape: [...ut.shape], data: u });
    tensors.set(vt.name, { name: vt.name, dtype: 'f32', shape: [...vt.shape], data: v });
  }
  return { ...model, tensors };
}

function int32Bias(b: StoredTensor, C: number, scaleOf: (c: number) => number): number[] {
  const f = tensorToFloat32(b);
  if (f.length !== C) throw new CompressError('BAD_OPTIONS', `--quant int8-full: bias ${b.name} has ${f.length} values for ${C} channels`);
  return Array.from(f, (v, c) => {
    const r = v / scaleOf(c);
    const q = r < 0 ? -Math.round(-r) : Math.round(r);
    return Math.max(INT32_MIN, Math.min(INT32_MAX, q));
  });
}
