// The model as both the converter and the runtime see it: a graph of nodes over named values,
// plus a table of stored tensors. The .flm header is this structure, encoded with msgpack.

import { FlmError } from './format/errors.js';
import type { MemoryPlan } from './format/planTypes.js';

/** Element types of stored tensors. Ids are append-only; see docs/FORMAT.md. */
export type DType = 'f32' | 'f16' | 'i8';
export const DTYPE_IDS: Readonly<Record<DType, number>> = { f32: 0, f16: 1, i8: 2 };
export const DTYPE_SIZE: Readonly<Record<DType, number>> = { f32: 4, f16: 2, i8: 1 };

/**
 * Layer kinds. Ids are append-only and never reused (docs/FORMAT.md lists retired ids).
 *
 * Weight layouts (row-major, every index written outermost first):
 *  dense          weight [out, in], bias? [out]                       y = x W^T + b
 *  conv2d         weight [O, I/group, kh, kw], bias? [O]              attrs: strides, pads, dilations, group
 *  svd_dense      u [out, r], v [r, in], bias?                         W = u v
 *  svd_conv2d     v [r, I, kh, kw], u [O, r], bias?                    conv(v) with the conv attrs, then 1x1 conv(u)
 *  tucker2_conv2d u_in [r1, I], core [r2, r1, kh, kw], u_out [O, r2], bias?
 *                 W[o,i,y,x] = sum u_out[o,b] core[b,a,y,x] u_in[a,i]; 1x1 -> core conv (conv attrs) -> 1x1
 *  cp_conv2d      a_in [R, I], k_h [R, kh], k_w [R, kw], a_out [O, R], bias?
 *                 W[o,i,y,x] = sum_r a_out[o,r] a_in[r,i] k_h[r,y] k_w[r,x]   (CPAC-Conv chain:
 *                 1x1 -> depthwise kh x 1 -> depthwise 1 x kw -> 1x1)
 *  tt_dense       core.k [r_k, m_k, n_k, r_{k+1}], k = 0..d-1, r_0 = r_d = 1, bias? [out]
 *                 attrs: out_modes m[], in_modes n[]; out = prod m, in = prod n
 *                 W[(i_0..i_{d-1}), (j_0..j_{d-1})] = G_0[:, i_0, j_0, :] ... G_{d-1}[:, i_{d-1}, j_{d-1}, :]
 *                 with i = i_0 m_1..m_{d-1} + ... (row-major), same for j.
 *  tr_dense       as tt_dense but r_0 = r_d = R may exceed 1 and W = trace(G_0 ... G_{d-1}).
 *  ttl_dense      Tucker tensor layer. attrs: out_modes m[p], in_modes n[q].
 *                 W [out, in] seen as tensor [m_0..m_{p-1}, n_0..n_{q-1}] (row-major)
 *                 = core [r_0..r_{p+q-1}] x_k factor.k [dim_k, r_k] for every mode k.
 *  flexact        v [r, in], w [out, r], coeffs [r, D], bias? [out], range? [r, 2]; attrs basis ('poly' | 'bspline'), degree D (bspline: D ≥ 4 cubic B-splines, range required)
 *                 y = g(x v^T) w^T + b with g_b(z) = sum_{d=1..D} coeffs[b, d-1] z^d per branch b,
 *                 continued along its tangent at lo_b / hi_b outside range[b] = [lo_b, hi_b]
 *                 (flexible-activation decoupling of a dense -> activation -> dense pair)
 *  adtn_dense     start [Q, 2], gates [G, 2^k, 2^k], bias? [out]; attrs features [out, in], depth,
 *                 arity k, pairing: W = first out*in entries of the state (layers/adtnDense.ts).
 *  adtn_conv2d    start, gates, bias? [T]; attrs weight_shape [T, S, kh, kw], depth, arity, pairing and the
 *                 conv attrs (group 1): the kernel W [T, S, kh, kw] = the first T S kh kw entries of the
 *                 same circuit's state, row-major (layers/adtnConv2d.ts).
 *  rcp_*, rtk_*, rtt_*, rtr_* (dense and conv2d)  reshaped tensorial networks. attrs t_modes[M], s_modes[M]
 *                 (T = prod t, S = prod s; conv2d adds the conv attrs, group 1), bias? [T]. The kernel
 *                 W [T, S, kh, kw] (dense: kh = kw = 1) as X[(t_1 s_1), .., (t_M s_M), (kh kw)] is:
 *                 rcp  factor.0 [R, kh, kw], factor.m [R, T_m, S_m]           X = sum_r of outer products
 *                 rtk  factor.0 [R0, kh, kw], factor.m [R_m, T_m, S_m], core [R0..RM]  (Tucker)
 *                 rtt  factor.1 [R1, T1, S1], factor.m [R_{m-1}, R_m, T_m, S_m], factor.0 [RM, kh, kw]  (chain)
 *                 rtr  factor.m [R_{m-1}, R_m, T_m, S_m], factor.0 [RM, R0, kh, kw]  (ring closing at R0)
 *  matmul         no weights: y = a @ b on the last two axes (both inputs are activations).
 * Non-parametric: relu, leaky_relu{alpha}, sigmoid, tanh, clip{min,max},
 *  max_pool{kernel,strides,pads,dilations,ceil_mode}, avg_pool{kernel,strides,pads,ceil_mode,count_include_pad},
 *  global_avg_pool, flatten{axis}, reshape{shape} (0 copies the input dim, -1 infers),
 *  transpose{perm}, softmax{axis}, add, mul (numpy broadcasting; an input may name a stored tensor),
 *  identity, hard_sigmoid{alpha,beta} (max(0, min(1, alpha x + beta))), hard_swish (x hard_sigmoid(x) with
 *  alpha 1/6, beta 1/2), log_softmax{axis},
 *  pad{pads, mode, value}: pads [b_0..b_{r-1}, e_0..e_{r-1}] per axis (ONNX order; negative crops),
 *    mode 'constant' | 'reflect' | 'edge',
 *  concat{axis} (any number of inputs), slice{axes, starts, ends, steps} (ONNX Slice on the listed
 *    axes, axes non-negative; start/end clamped to each axis at run time, negatives count from the end),
 *  resize{scales, mode, coord, nearest}: out dim = floor(in * scale) per axis; mode 'nearest' |
 *    'linear' (separable over the axes whose scale is not 1), coord = ONNX
 *    coordinate_transformation_mode, nearest = ONNX nearest_mode.
 *  conv_transpose2d  weight [I, O/group, kh, kw], bias? [O]; attrs strides, pads, dilations, group,
 *                 output_padding: ONNX ConvTranspose with explicit pads.
 *  prelu          slope [C] (per channel, axis 1) or [1]: y = x < 0 ? slope x : x.
 *  gelu{approximate}  x Phi(x) ('none', from erf) or PyTorch's tanh form ('tanh').
 *  erf, sqrt, exp, log, abs, reciprocal   element-wise; pow{exponent}: x ** exponent, exponent >= 0.
 *  reduce{op, axes, keepdims}  op 'mean' | 'sum' | 'max' over the listed axes (negative count
 *                 from the end); keepdims 1 (default) keeps them as size 1.
 *  layer_norm     scale? [D], bias? [D]; attrs axis, epsilon: each row of D = prod(shape[axis:])
 *                 values -> (x - mean) / sqrt(biased var + epsilon) * scale + bias.
 * `pads` follow ONNX: [top, left, bottom, right].
 */
export const OP_IDS = {
  dense: 0,
  conv2d: 1,
  svd_dense: 2,
  svd_conv2d: 3,
  tucker2_conv2d: 4,
  cp_conv2d: 5,
  tt_dense: 6,
  tr_dense: 7,
  ttl_dense: 8,
  matmul: 9,
  relu: 10,
  leaky_relu: 11,
  sigmoid: 12,
  tanh: 13,
  clip: 14,
  max_pool: 15,
  avg_pool: 16,
  global_avg_pool: 17,
  flatten: 18,
  reshape: 19,
  transpose: 20,
  softmax: 21,
  add: 22,
  mul: 23,
  identity: 24,
  pad: 25,
  concat: 26,
  slice: 27,
  resize: 28,
  conv_transpose2d: 29,
  prelu: 30,
  hard_sigmoid: 31,
  hard_swish: 32,
  log_softmax: 33,
  // 34-39 are kept for the structural ops added in parallel; the table is append-only.
  gelu: 34,
  layer_norm: 35,
  erf: 36,
  sqrt: 37,
  exp: 38,
  log: 39,
  abs: 40,
  reciprocal: 41,
  pow: 42,
  reduce: 43,
  flexact: 44,
  rcp_dense: 45,
  rcp_conv2d: 46,
  rtk_dense: 47,
  rtk_conv2d: 48,
  rtt_dense: 49,
  rtt_conv2d: 50,
  rtr_dense: 51,
  rtr_conv2d: 52,
  adtn_dense: 53,
  dwlr_conv2d: 54,
  adtn_conv2d: 55,
} as const;
export type OpName = keyof typeof OP_IDS;

/** Kinds whose weights are factors: they never carry a dense weight tensor. */
export const FACTOR_OPS: ReadonlySet<OpName> = new Set<OpName>([
  'svd_dense', 'svd_conv2d', 'tucker2_conv2d', 'cp_conv2d', 'tt_dense', 'tr_dense', 'ttl_dense',
  'rcp_dense', 'rcp_conv2d', 'rtk_dense', 'rtk_conv2d', 'rtt_dense', 'rtt_conv2d', 'rtr_dense', 'rtr_conv2d',
]);

/**
 * Kinds whose weights are a small network the runtime contracts into the dense weight once, at
 * load (adtn_dense; adtn_conv2d, a conv kernel as the same circuit; dwlr_conv2d, a depthwise kernel
 * matrix as a low-rank product). They are
 * compressed layers like the factor kinds, but not FACTOR_OPS: they have no row-tile rebuild or
 * contraction strategy. The firmware runs adtn_dense from an MPS it builds at load (core/ops/adtn.c),
 * never holding W, adtn_conv2d from W formed once at load into its tables (core/ops/adtnconv.c), and dwlr_conv2d by rebuilding the depthwise kernels in scratch (core/ops/dwlr.c).
 */
export const NETWORK_OPS: ReadonlySet<OpName> = new Set<OpName>(['adtn_dense', 'dwlr_conv2d', 'adtn_conv2d']);

export type AttrValue = number | number[] | string;

export interface GraphNode {
  name: string;
  op: OpName;
  /** Activation names, or names of stored tensors used as constant operands (add, mul). */
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
  /** Role -> stored tensor name. Roles per kind are listed above (e.g. 'weight', 'bias', 'core.0'). */
  weights: Record<string, string>;
}

export interface GraphInput {
  name: string;
  /** -1 marks the batch (or any free) dimension. */
  shape: number[];
}

export interface Graph {
  inputs: GraphInput[];
  outputs: string[];
  /** Topologically ordered. */
  nodes: GraphNode[];
}

/** Per-tensor (scale.length === 1) or per-channel along `axis` int8 scale: real = q * scale. */
export interface Quant {
  scale: Float32Array;
  axis?: number;
}

export interface StoredTensor {
  name: string;
  dtype: DType;
  shape: number[];
  data: Float32Array | Uint16Array | Int8Array;
  quant?: Quant;
}

/** What the converter builds and writes, and what the reader hands to a session. */
export interface Model {
  graph: Graph;
  tensors: Map<string, StoredTensor>;
  /** Dotted lower_snake_case keys, e.g. 'source.model', 'convert.method'. */
  metadata: Record<string, unknown>;
  /** Offline arena plans (docs/FORMAT.md section 7), when the file has them. */
  memoryPlan?: MemoryPlan;
}

/** An activation: row-major f32 data with its shape, batch first. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function attrInts(node: GraphNode, key: string, fallback?: number[]): number[] {
  const v = node.attrs[key];
  if (v === undefined) {
    if (fallback) return fallback;
    throw new FlmError('FLM_ATTR_MISSING', `node ${node.name} (${node.op}): missing attribute ${key}`);
  }
  if (!Array.isArray(v)) throw new FlmError('FLM_ATTR_TYPE', `node ${node.name} (${node.op}): attribute ${key} must be a list`);
  return v;
}

export function attrNum(node: GraphNode, key: string, fallback?: number): number {
  const v = node.attrs[key];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new FlmError('FLM_ATTR_MISSING', `node ${node.name} (${node.op}): missing attribute ${key}`);
  }
  if (typeof v !== 'number') throw new FlmError('FLM_ATTR_TYPE', `node ${node.name} (${node.op}): attribute ${key} must be a number`);
  return v;
}
