// The "mcu" plan profile: the C firmware's kernels (firmware-bridge/firmware/core/ops/) at batch 1.
// `scratchBytes` is exactly what fl_op_prepare computes as a node's scratch_need; the firmware
// rejects a plan that gives a node less (FLM_MEMORY_PLAN). Graph inputs are external: the
// device reads them in its receive buffer and they take no arena bytes. Which ops the firmware
// runs, and each one's scratch, is its kind's `mcu` part (runtime/layers/<kind>.ts).
import { type GraphNode, type Model, type OpName } from '../ir.js';
import { LAYER_KINDS } from '../layers/registry.js';
import { CONV_POOL_CHAIN, DENSE_CHAIN, type FuseRule } from './fuse.js';
import type { PlanProfile } from './types.js';
import { INT8_FULL_KEY, isInt8Full } from '../int8full/params.js';
import { alignUp } from './planner.js';

/** Ops the firmware runs (hello.ops lists their ids): the kinds with an `mcu` part. */
export const MCU_OPS: ReadonlySet<OpName> = new Set<OpName>([...LAYER_KINDS.values()].filter((k) => k.mcu).map((k) => k.ops[0]));

function shapeOf(node: GraphNode, model: Model, role: string): number[] {
  const name = node.weights[role];
  const t = name === undefined ? undefined : model.tensors.get(name);
  if (!t) throw new Error(`node ${node.name} (${node.op}): missing weight ${role}`);
  return t.shape;
}

/**
 * Ops the firmware runs on the int8-full path (int8 activations, metadata quant.int8_full;
 * core/ops/qparams.c, qkernels.c, qmisc.c): the parametric kinds as their integer stages, the
 * pass-through kinds, and the table / add / concat / softmax kinds. A model with another kind gets no "mcu" plan and `inspect` names it.
 */
export const MCU_INT8_FULL_OPS: ReadonlySet<OpName> = new Set<OpName>([
  'dense', 'conv2d', 'svd_dense', 'svd_conv2d', 'tucker2_conv2d', 'cp_conv2d',
  'dwlr_conv2d', // core/ops/qdwlr.c
  'relu', 'max_pool', 'avg_pool', 'global_avg_pool', 'flatten', 'reshape', 'identity',
  // core/ops/qmisc.c: tables (by a stored scalar for add / mul), the integer add, concat, softmax
  'sigmoid', 'tanh', 'hard_sigmoid', 'hard_swish', 'leaky_relu', 'clip', 'add', 'mul', 'concat', 'softmax',
]);

/** The firmware ops a model needs from the set that matches its path. */
export function mcuOpsFor(model: Model): ReadonlySet<OpName> {
  return isInt8Full(model) ? MCU_INT8_FULL_OPS : MCU_OPS;
}

/**
 * Why the firmware cannot run this node of `model` (its op is outside the path's set, or its
 * kind's `mcu.unsupported` names an attribute the device refuses); undefined when it runs it.
 */
export function mcuRefusal(node: GraphNode, model: Model): string | undefined {
  if (!mcuOpsFor(model).has(node.op)) return `kind ${node.op} has no ${isInt8Full(model) ? 'int8-full ' : ''}kernel on the device`;
  return LAYER_KINDS.get(node.op)?.mcu?.unsupported?.(node);
}

/** Scratch floats of the firmware's kernel for one node at batch 1 (mirrors core/ops/). */
export function mcuScratchFloats(node: GraphNode, inputShapes: number[][], outputShape: number[], model: Model): number {
  const f = LAYER_KINDS.get(node.op)?.mcu?.scratchFloats;
  return f ? f(node, inputShapes, outputShape, (role) => shapeOf(node, model, role)) : 0;
}

/** Output channels whose stage lists the firmware decodes at a time (core/ops/qparams.c FL_Q_PAR_BLOCK). */
export const MCU_INT8_PAR_BLOCK = 64;

/**
 * Bytes of a node's stage lists in its scratch while it runs (core/ops/qparams.c fl_q_view; they
 * are not kept in the tables): one block of output channels of one stage at a time, per channel an
 * int32 multiplier, an int32 bias when the stage has them, an int8 shift (padded to 4). A block is
 * MCU_INT8_PAR_BLOCK channels, or all C where the kernel cannot be split by channel: a dense stage
 * over more than one row, a grouped conv2d whose groups have more than one output channel. A dense
 * or svd_dense over one row needs none.
 */
export function mcuInt8ParamBytes(node: GraphNode, model: Model, outputShape: number[]): number {
  const nodes = (model.metadata[INT8_FULL_KEY] as { nodes?: Record<string, unknown> } | undefined)?.nodes;
  const stages = nodes && typeof nodes === 'object' ? nodes[node.name] : undefined;
  if (!Array.isArray(stages)) return 0;
  const last = outputShape[outputShape.length - 1] ?? 1;
  const rows = last > 0 ? outputShape.reduce((a, b) => a * b, 1) / last : 1;
  // a dense kind over one row reads its lists in channel order as it runs (core/ops/qdense.c): none
  if ((node.op === 'dense' || node.op === 'svd_dense') && rows === 1) return 0;
  const group = typeof node.attrs['group'] === 'number' ? node.attrs['group'] : 1;
  let bytes = 0;
  for (const st of stages as { mult?: unknown; bias?: unknown }[]) {
    const C = Array.isArray(st?.mult) ? st.mult.length : 0;
    const whole = ((node.op === 'dense' || node.op === 'svd_dense') && rows !== 1) || (node.op === 'conv2d' && group > 1 && C / group > 1);
    const b = whole ? C : Math.min(C, MCU_INT8_PAR_BLOCK);
    bytes = Math.max(bytes, 4 * b + (st?.bias !== undefined ? 4 * b : 0) + alignUp(b, 4));
  }
  return bytes;
}

/** The conv kinds the int8-full path streams into a pool, one output channel at a time. */
export const MCU_INT8_CONV_KINDS: ReadonlySet<OpName> = new Set<OpName>(['conv2d', 'svd_conv2d', 'tucker2_conv2d', 'cp_conv2d']);

/** conv kind -> [relu] -> max_pool | avg_pool on int8 activations (the firmware's fl_q_chain). */
export const INT8_CONV_POOL_CHAIN: FuseRule = {
  name: CONV_POOL_CHAIN.name,
  producers: MCU_INT8_CONV_KINDS,
  consumers: new Set(['max_pool', 'avg_pool']),
  oneRow: false,
  acts: new Set(['relu']),
};

/**
 * A node's scratch on the int8-full path (core/ops/qparams.c): the int8 intermediates (the f32
 * kernels' element counts); for a conv kind OH x OW bytes of plane space (fl_q_chain streams row
 * bands of several channels through it when the node feeds a pool; reserved either way); then, 4-aligned,
 * one block of its stage lists (mcuInt8ParamBytes).
 */
export function mcuInt8Scratch(node: GraphNode, model: Model, floats: number, outputShape: number[]): number {
  const plane = MCU_INT8_CONV_KINDS.has(node.op) && outputShape.length === 4 ? outputShape[2]! * outputShape[3]! : 0;
  const params = mcuInt8ParamBytes(node, model, outputShape);
  return params ? alignUp(floats + plane, 4) + params : floats + plane;
}

/** The firmware's plan profile: batch 1, 8-byte offsets (double-word loads on Cortex-M). */
export const mcuProfile: PlanProfile = {
  name: 'mcu',
  batch: 1,
  align: 8,
  externalInputs: true,
  fuses: [DENSE_CHAIN, CONV_POOL_CHAIN],
  // The int8-full path streams conv -> [relu] -> pool (fl_q_chain); its activations are int8 (one
  // byte each), except the graph output, which the device dequantises in place to f32 (4 bytes
  // each), and its kernels' intermediates (the same element counts as the f32 kernels') are int8 too.
  fusesFor: (model, fuses) => (isInt8Full(model) ? (fuses.includes(CONV_POOL_CHAIN) ? [INT8_CONV_POOL_CHAIN] : []) : fuses),
  valueBytes: (model, value, elements) => !isInt8Full(model) || model.graph.outputs.includes(value) ? 4 * elements : elements,
  scratchBytes: (_k, node, inputShapes, outputShape, model) =>
    isInt8Full(model) ? mcuInt8Scratch(node, model, mcuScratchFloats(node, inputShapes, outputShape, model), outputShape) : 4 * mcuScratchFloats(node, inputShapes, outputShape, model),
  supports: (node, model) => mcuRefusal(node, model) === undefined,
};
