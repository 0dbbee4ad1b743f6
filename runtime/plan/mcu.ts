// The "mcu" plan profile: the C firmware's kernels (firmware-bridge/firmware/core/ops/) at batch 1.
// `scratchBytes` is exactly what fl_op_prepare computes as a node's scratch_need; the firmware
// rejects a plan that gives a node less (FLM_MEMORY_PLAN). Graph inputs are external: the
// device reads them in its receive buffer and they take no arena bytes. Which ops the firmware
// runs, and each one's scratch, is its kind's `mcu` part (runtime/layers/<kind>.ts).
import { type GraphNode, type Model, type OpName } from '../ir.js';
import { LAYER_KINDS } from '../layers/registry.js';
import { CONV_POOL_CHAIN, DENSE_CHAIN } from './fuse.js';
import type { PlanProfile } from './types.js';
import { isInt8Full } from '../int8full/params.js';

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
 * core/ops/qparams.c and qkernels.c): the parametric kinds as their integer stages, and the
 * pass-through kinds. A model with another kind gets no "mcu" plan and `inspect` names it.
 */
export const MCU_INT8_FULL_OPS: ReadonlySet<OpName> = new Set<OpName>([
  'dense', 'conv2d', 'svd_dense', 'svd_conv2d', 'tucker2_conv2d', 'cp_conv2d',
  'relu', 'max_pool', 'avg_pool', 'global_avg_pool', 'flatten', 'reshape', 'identity',
]);

/** The firmware ops a model needs from the set that matches its path. */
export function mcuOpsFor(model: Model): ReadonlySet<OpName> {
  return isInt8Full(model) ? MCU_INT8_FULL_OPS : MCU_OPS;
}

/** Scratch floats of the firmware's kernel for one node at batch 1 (mirrors core/ops/). */
export function mcuScratchFloats(node: GraphNode, inputShapes: number[][], outputShape: number[], model: Model): number {
  const f = LAYER_KINDS.get(node.op)?.mcu?.scratchFloats;
  return f ? f(node, inputShapes, outputShape, (role) => shapeOf(node, model, role)) : 0;
}

/** The firmware's plan profile: batch 1, 8-byte offsets (double-word loads on Cortex-M). */
export const mcuProfile: PlanProfile = {
  name: 'mcu',
  batch: 1,
  align: 8,
  externalInputs: true,
  fuses: [DENSE_CHAIN, CONV_POOL_CHAIN],
  // The int8-full path streams no chains; its activations are int8 (one byte each), except the
  // graph output, which the device dequantises in place to f32 (4 bytes each), and its kernels'
  // intermediates (the same element counts as the f32 kernels') are int8 too.
  streamsChains: (model) => !isInt8Full(model),
  valueBytes: (model, value, elements) => !isInt8Full(model) || model.graph.outputs.includes(value) ? 4 * elements : elements,
  scratchBytes: (_k, node, inputShapes, outputShape, model) => (isInt8Full(model) ? 1 : 4) * mcuScratchFloats(node, inputShapes, outputShape, model),
  supports: (node, model) => mcuOpsFor(model).has(node.op),
};
