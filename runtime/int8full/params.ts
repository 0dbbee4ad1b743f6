// The int8-full quantisation of a model (docs/FORMAT.md, "int8-full"): stored under the metadata
// key `quant.int8_full`, so files without it read as before. Every activation value has an
// asymmetric int8 (scale, zero point); every parametric node is a chain of integer stages, each
// a dense or conv product with an int8 weight (symmetric, per output channel), an int32 bias and
// a Q31 multiplier and shift per output channel. A factor chain's intermediates are the outputs
// of its inner stages and carry their own calibrated scale.
import { FlmError } from '../format/errors.js';
import { attrNum, type GraphNode, type Model, type OpName } from '../ir.js';
import type { Conv2dParams } from '../kernels/reference.js';
import { convParams } from '../layers/convAttrs.js';

export const INT8_FULL_KEY = 'quant.int8_full';
export const INT8_FULL_VERSION = 1;

/** [scale, zero_point]: real = (q - zero_point) * scale, q in [-128, 127]. */
export type ActQuant = [number, number];

export interface Int8Stage {
  /** Role of the node's weight this stage multiplies by (an i8 tensor, scales along axis 0). */
  w: string;
  /** Quantisation of the stage's input and output (inner stages: the chain's intermediates). */
  in: ActQuant;
  out: ActQuant;
  /** int32 per output channel, at scale in_scale * w_scale[c]; absent: no bias. */
  bias?: number[];
  /** Q31 multiplier and shift per output channel: out = clamp(round(acc M_c) + zp_out, min, max). */
  mult: number[];
  shift: number[];
  /** Output clamp; a following relu is folded here (min = the output zero point). */
  min: number;
  max: number;
}

/**
 * An `add` of two activations, TFLite's integer add: each input, less its zero point and shifted
 * left by ADD_LEFT_SHIFT, is scaled by its Q31 multiplier (in_scale / (2 max in_scale)), the two
 * are summed, and the sum is scaled by the output multiplier (2 max in_scale / (2^20 out_scale)).
 */
export interface Int8Add {
  mult: [number, number];
  shift: [number, number];
  outMult: number;
  outShift: number;
  /** Output clamp; a following relu or clip is folded here. */
  min: number;
  max: number;
}
export const ADD_LEFT_SHIFT = 20;

/** A concat: each input rescaled to the output's quantisation (Q31 multiplier in_scale / out_scale). */
export interface Int8Concat {
  mult: number[];
  shift: number[];
}

export interface Int8Full {
  version: number;
  values: Record<string, ActQuant>;
  nodes: Record<string, Int8Stage[]>;
  /** Element-wise nodes as a table: out = lut[node][q + 128] (INT8_LUT_OPS). */
  lut?: Record<string, number[]>;
  add?: Record<string, Int8Add>;
  concat?: Record<string, Int8Concat>;
  /** Softmax: exp table e[d] = round(2^16 exp(-d in_scale)), d = max - q in [0, 255]; output (1/256, -128). */
  softmax?: Record<string, number[]>;
}

/** Element-wise kinds the integer path runs as a 256-entry lookup table (add / mul: by a stored scalar). */
export const INT8_LUT_OPS: ReadonlySet<OpName> = new Set<OpName>([
  'sigmoid', 'tanh', 'hard_sigmoid', 'hard_swish', 'leaky_relu', 'clip', 'add', 'mul',
]);

/** Softmax's fixed output quantisation (TFLite's): q = 256 p - 128. */
export const SOFTMAX_OUT: ActQuant = [1 / 256, -128];
/** Scale of softmax's exp table: e[d] = round(SOFTMAX_ONE exp(-d in_scale)). */
export const SOFTMAX_ONE = 65536;

/** How a node runs on the integer path, given which of its inputs are stored tensors (constants). */
export type Int8Role = 'stages' | 'pass' | 'lut' | 'add' | 'concat' | 'softmax';
export function int8Role(node: GraphNode, isConst: (name: string) => boolean): Int8Role | undefined {
  if (INT8_STAGES[node.op]) return 'stages';
  if (INT8_PASS_THROUGH.has(node.op)) return 'pass';
  if (node.op === 'concat') return 'concat';
  if (node.op === 'softmax') return 'softmax';
  if (node.op === 'add' && node.inputs.length === 2 && !node.inputs.some(isConst)) return 'add';
  if (INT8_LUT_OPS.has(node.op)) return 'lut';
  return undefined;
}

/** How each parametric kind runs as stages: the weight role and the stage's geometry. */
export type StageGeometry = 'dense' | 'conv' | 'conv1x1' | 'conv_v' | 'conv_h' | 'dw';
export const INT8_STAGES: Partial<Record<OpName, ReadonlyArray<readonly [string, StageGeometry]>>> = {
  dense: [['weight', 'dense']],
  conv2d: [['weight', 'conv']],
  svd_dense: [['v', 'dense'], ['u', 'dense']],
  svd_conv2d: [['v', 'conv'], ['u', 'conv1x1']],
  tucker2_conv2d: [['u_in', 'conv1x1'], ['core', 'conv'], ['u_out', 'conv1x1']],
  cp_conv2d: [['a_in', 'conv1x1'], ['k_h', 'conv_v'], ['k_w', 'conv_h'], ['a_out', 'conv1x1']],
  // One depthwise stage whose int32 kernels are the exact integer product u v (dwlrKernelInt8).
  dwlr_conv2d: [['u', 'dw']],
};

/**
 * dwlr_conv2d's stage on the integer path (FORMAT.md, int8-full): the stage's weight role is u
 * (int8 [C, r], a scale per channel s_u[c]); v [r, kh, kw] is int8 with one scale s_v. The
 * depthwise kernels are the exact integers K[c, t] = sum_j u[c, j] v[j, t] (no rounding: the
 * product of the two int8 factors is the weight), at scale s_u[c] s_v; the stage's multiplier and
 * bias are at in_scale s_u[c] s_v as any stage's at in_scale w_scale[c]. K [C, kh*kw] row-major.
 */
export function dwlrKernelInt8(u: ArrayLike<number>, v: ArrayLike<number>, C: number, r: number, khw: number): Int32Array {
  const k = new Int32Array(C * khw);
  for (let c = 0; c < C; c++) {
    for (let t = 0; t < khw; t++) {
      let s = 0;
      for (let j = 0; j < r; j++) s += u[c * r + j]! * v[j * khw + t]!;
      k[c * khw + t] = s;
    }
  }
  return k;
}

/**
 * The first channel of a dwlr stage whose int32 accumulator could leave int32 on some input:
 * 256 sum_t |K[c, t]| + |bias[c]| > 2^31 - 1 (each (q - zp) is within [-255, 255], and the
 * firmware's fast loops add sum_t q K[c, t] to bias - zp sum_t K[c, t], each part at most 128 sum_t
 * |K[c, t]|); -1 when none. 3x3 kernels of rank <= 9 never overflow (256 * 9 * 9 * 127^2 < 2^31 / 6).
 */
export function dwlrOverflow(k: Int32Array, C: number, khw: number, bias?: readonly number[]): number {
  for (let c = 0; c < C; c++) {
    let a = 0;
    for (let t = 0; t < khw; t++) a += Math.abs(k[c * khw + t]!);
    if (256 * a + Math.abs(bias?.[c] ?? 0) > 2147483647) return c;
  }
  return -1;
}

const ONE_BY_ONE: Conv2dParams = { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 };

/**
 * A stage's weight shape and conv parameters (dense: none) from the stored tensor's shape:
 * conv takes the node's conv attributes; conv1x1 is [C, K, 1, 1]; conv_v / conv_h are CP's
 * depthwise kh x 1 and 1 x kw steps, each with the vertical or horizontal half of the attributes.
 */
export function stageShape(node: GraphNode, geom: StageGeometry, w: readonly number[]): { shape: number[]; p?: Conv2dParams } {
  const C = w[0]!;
  const K = w.slice(1).reduce((a, b) => a * b, 1);
  switch (geom) {
    case 'dense': return { shape: [C, K] };
    case 'conv1x1': return { shape: [C, K, 1, 1], p: ONE_BY_ONE };
    case 'conv': return { shape: [...w], p: convParams(node) };
    case 'conv_v': {
      const p = convParams(node);
      return { shape: [C, 1, K, 1], p: { strides: [p.strides[0], 1], pads: [p.pads[0], 0, p.pads[2], 0], dilations: [p.dilations[0], 1], group: C } };
    }
    case 'conv_h': {
      const p = convParams(node);
      return { shape: [C, 1, 1, K], p: { strides: [1, p.strides[1]], pads: [0, p.pads[1], 0, p.pads[3]], dilations: [1, p.dilations[1]], group: C } };
    }
    case 'dw': // the kernel's kh, kw are v's: [C, 1, kh, kw] (dwlrKernelInt8)
      throw new Error(`node ${node.name}: a dwlr stage's shape comes from its v factor, not from u`);
  }
}

/** Kinds without weights that the integer path runs; their output shares the input's quantisation. */
export const INT8_PASS_THROUGH: ReadonlySet<OpName> = new Set<OpName>([
  'relu', 'max_pool', 'avg_pool', 'global_avg_pool', 'flatten', 'reshape', 'identity',
]);

/**
 * Why the integer path cannot run this node, or undefined when it can. `consts` tells which input
 * names are stored tensors (add / mul by a constant); without it every input is an activation.
 */
export function int8Unsupported(node: GraphNode, consts: (name: string) => boolean = () => false, constSize: (name: string) => number = () => 1): string | undefined {
  const role = int8Role(node, consts);
  if (role === 'pass') return undefined;
  if (!role) return `kind ${node.op} has no int8-full kernel (supported: ${[...Object.keys(INT8_STAGES), ...INT8_PASS_THROUGH, ...INT8_LUT_OPS, 'concat', 'softmax'].join(', ')})`;
  if (role === 'lut') {
    const acts = node.inputs.filter((i) => !consts(i));
    if (acts.length !== 1) return `${node.op} of ${acts.length} activations (the integer path takes ${node.op === 'mul' ? 'a product by a stored scalar' : 'one'})`;
    const c = node.inputs.find(consts);
    if (c !== undefined && constSize(c) !== 1) return `${node.op} by the ${constSize(c)}-value constant ${c} (the integer path takes a scalar)`;
    return undefined;
  }
  if (role === 'add' || role === 'concat') return node.inputs.length < 1 ? `${node.op} without inputs` : undefined;
  if (role === 'softmax') return node.inputs.length !== 1 ? `softmax of ${node.inputs.length} inputs` : undefined;
  if (node.op !== 'conv2d' && node.op !== 'dense' && node.op !== 'dwlr_conv2d' && node.attrs['group'] !== undefined && attrNum(node, 'group') !== 1) return `${node.op} with group ${String(node.attrs['group'])}`;
  return undefined;
}

export function isInt8Full(model: Model): boolean {
  return model.metadata[INT8_FULL_KEY] !== undefined;
}

const bad = (why: string): FlmError => new FlmError('FLM_BAD_METADATA', `${INT8_FULL_KEY}: ${why}`);

function actQuant(v: unknown, where: string): ActQuant {
  if (!Array.isArray(v) || v.length !== 2) throw bad(`${where}: expected [scale, zero_point]`);
  const [s, z] = v as [unknown, unknown];
  if (typeof s !== 'number' || !(s > 0) || !Number.isFinite(s)) throw bad(`${where}: scale ${String(s)} is not a finite number > 0`);
  if (typeof z !== 'number' || !Number.isInteger(z) || z < -128 || z > 127) throw bad(`${where}: zero point ${String(z)} is not an integer in [-128, 127]`);
  return [s, z];
}

function intList(v: unknown, n: number, lo: number, hi: number, where: string): number[] {
  if (!Array.isArray(v) || v.length !== n) throw bad(`${where}: expected ${n} integers`);
  for (const x of v) if (typeof x !== 'number' || !Number.isInteger(x) || x < lo || x > hi) throw bad(`${where}: ${String(x)} is not an integer in [${lo}, ${hi}]`);
  return v as number[];
}

/** Whether a node input names a stored tensor (a constant operand) rather than a value. */
export function constantsOf(model: Model): (name: string) => boolean {
  const vals = new Set<string>([...model.graph.inputs.map((i) => i.name), ...model.graph.nodes.flatMap((n) => n.outputs)]);
  return (name) => !vals.has(name) && model.tensors.has(name);
}

/** A dwlr stage's factors (u checked as any stage weight): v int8 with one scale, shapes that meet, no int32 overflow. */
function checkDwlr(model: Model, node: GraphNode, st: Int8Stage): void {
  const u = model.tensors.get(node.weights['u'] ?? '')!;
  const v = model.tensors.get(node.weights['v'] ?? '');
  const where = `node ${node.name} (dwlr_conv2d)`;
  if (!v || v.dtype !== 'i8' || !v.quant || v.quant.scale.length !== 1) throw bad(`${where}: v is not an int8 tensor with one scale`);
  if (u.shape.length !== 2 || v.shape.length !== 3 || u.shape[1] !== v.shape[0]) throw bad(`${where}: u [${u.shape}] and v [${v.shape}] are not [C, r] and [r, kh, kw]`);
  const [C, r] = u.shape as [number, number];
  const khw = v.shape[1]! * v.shape[2]!;
  const c = dwlrOverflow(dwlrKernelInt8(u.data as Int8Array, v.data as Int8Array, C, r, khw), C, khw, st.bias);
  if (c >= 0) throw bad(`${where}: channel ${c}'s kernel u v could overflow the int32 accumulator (256 sum |K| + |bias| > 2^31 - 1)`);
}

const sameQuant = (a: ActQuant, b: ActQuant) => a[0] === b[0] && a[1] === b[1];

/**
 * The model's int8-full quantisation, checked against its graph and tensors (a file is untrusted):
 * every value quantised, every node a supported kind, every stage's lists as long as its weight's
 * output channels, chains connected. Throws FlmError FLM_BAD_METADATA naming what is wrong.
 */
export function readInt8Full(model: Model): Int8Full {
  const raw = model.metadata[INT8_FULL_KEY];
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad('expected a map');
  const r = raw as Record<string, unknown>;
  if (r['version'] !== INT8_FULL_VERSION) throw bad(`version ${String(r['version'])}; this reader knows ${INT8_FULL_VERSION}`);
  const rv = r['values'];
  const rn = r['nodes'];
  if (!rv || typeof rv !== 'object' || Array.isArray(rv)) throw bad('values: expected a map');
  if (!rn || typeof rn !== 'object' || Array.isArray(rn)) throw bad('nodes: expected a map');
  const values: Record<string, ActQuant> = {};
  const q = (name: string): ActQuant => {
    const hit = values[name];
    if (hit) return hit;
    const v = (rv as Record<string, unknown>)[name];
    if (v === undefined) throw bad(`value ${name} has no quantisation`);
    return (values[name] = actQuant(v, `value ${name}`));
  };
  for (const i of model.graph.inputs) q(i.name);
  const nodes: Record<string, Int8Stage[]> = {};
  const extra = (key: string): Record<string, unknown> => {
    const v = r[key];
    if (v === undefined) return {};
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad(`${key}: expected a map`);
    return v as Record<string, unknown>;
  };
  const rl = extra('lut');
  const ra = extra('add');
  const rc = extra('concat');
  const rsm = extra('softmax');
  const lut: Record<string, number[]> = {};
  const add: Record<string, Int8Add> = {};
  const concat: Record<string, Int8Concat> = {};
  const softmax: Record<string, number[]> = {};
  const isConst = constantsOf(model);
  const constSize = (name: string) => model.tensors.get(name)!.shape.reduce((a, b) => a * b, 1);
  for (const node of model.graph.nodes) {
    const why = int8Unsupported(node, isConst, constSize);
    if (why) throw bad(`node ${node.name}: ${why}`);
    const role = int8Role(node, isConst)!;
    const acts = node.inputs.filter((i) => !isConst(i));
    const inQ = q(acts[0]!);
    const outQ = q(node.outputs[0]!);
    const where = `node ${node.name} (${node.op})`;
    if (role === 'pass') {
      if (!sameQuant(inQ, outQ)) throw bad(`${where}: output quantisation differs from its input's`);
      continue;
    }
    if (role === 'lut') {
      lut[node.name] = intList(rl[node.name], 256, -128, 127, `${where} lut`);
      continue;
    }
    if (role === 'softmax') {
      if (!sameQuant(outQ, SOFTMAX_OUT)) throw bad(`${where}: output quantisation is not [1/256, -128]`);
      const e = intList(rsm[node.name], 256, 0, SOFTMAX_ONE, `${where} exp table`);
      if (e[0] !== SOFTMAX_ONE) throw bad(`${where}: exp table starts at ${e[0]}, expected ${SOFTMAX_ONE}`);
      softmax[node.name] = e;
      continue;
    }
    if (role === 'add' || role === 'concat') {
      for (const i of acts) q(i);
      const o = (role === 'add' ? ra : rc)[node.name];
      if (!o || typeof o !== 'object' || Array.isArray(o)) throw bad(`${where}: expected a map`);
      const m = o as Record<string, unknown>;
      const n = acts.length;
      const mult = intList(m['mult'], n, 0, 2147483647, `${where} mult`);
      const shift = intList(m['shift'], n, -31, 30, `${where} shift`);
      if (role === 'concat') {
        concat[node.name] = { mult, shift };
        continue;
      }
      const a: Int8Add = {
        mult: mult as [number, number],
        shift: shift as [number, number],
        outMult: intList([m['outMult']], 1, 0, 2147483647, `${where} outMult`)[0]!,
        outShift: intList([m['outShift']], 1, -31, 30, `${where} outShift`)[0]!,
        min: intList([m['min']], 1, -128, 127, `${where} min`)[0]!,
        max: intList([m['max']], 1, -128, 127, `${where} max`)[0]!,
      };
      if (a.min > a.max) throw bad(`${where}: clamp min ${a.min} > max ${a.max}`);
      add[node.name] = a;
      continue;
    }
    const plan = INT8_STAGES[node.op]!;
    const rs = (rn as Record<string, unknown>)[node.name];
    if (!Array.isArray(rs) || rs.length !== plan.length) throw bad(`node ${node.name} (${node.op}): expected ${plan.length} stages`);
    let prev = inQ;
    nodes[node.name] = rs.map((s, k): Int8Stage => {
      const where = `node ${node.name} stage ${k}`;
      if (!s || typeof s !== 'object' || Array.isArray(s)) throw bad(`${where}: expected a map`);
      const o = s as Record<string, unknown>;
      const role = plan[k]![0];
      if (o['w'] !== role) throw bad(`${where}: weight role ${String(o['w'])}, expected ${role}`);
      const t = model.tensors.get(node.weights[role] ?? '');
      if (!t || t.dtype !== 'i8' || !t.quant || (t.quant.axis !== undefined && t.quant.axis !== 0)) throw bad(`${where}: weight ${role} is not an int8 tensor with scales along axis 0`);
      const C = t.shape[0]!;
      const st: Int8Stage = {
        w: role,
        in: actQuant(o['in'], `${where} in`),
        out: actQuant(o['out'], `${where} out`),
        mult: intList(o['mult'], C, 0, 2147483647, `${where} mult`),
        shift: intList(o['shift'], C, -31, 30, `${where} shift`),
        min: intList([o['min']], 1, -128, 127, `${where} min`)[0]!,
        max: intList([o['max']], 1, -128, 127, `${where} max`)[0]!,
      };
      if (o['bias'] !== undefined) st.bias = intList(o['bias'], C, -2147483648, 2147483647, `${where} bias`);
      if (st.min > st.max) throw bad(`${where}: clamp min ${st.min} > max ${st.max}`);
      if (!sameQuant(st.in, prev)) throw bad(`${where}: input quantisation does not match what precedes it`);
      prev = st.out;
      return st;
    });
    if (!sameQuant(prev, outQ)) throw bad(`node ${node.name}: last stage's output quantisation differs from value ${node.outputs[0]}`);
    if (node.op === 'dwlr_conv2d') checkDwlr(model, node, nodes[node.name]![0]!);
  }
  const full: Int8Full = { version: INT8_FULL_VERSION, values, nodes };
  if (Object.keys(lut).length) full.lut = lut;
  if (Object.keys(add).length) full.add = add;
  if (Object.keys(concat).length) full.concat = concat;
  if (Object.keys(softmax).length) full.softmax = softmax;
  return full;
}
