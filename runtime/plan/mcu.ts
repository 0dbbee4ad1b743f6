// The "mcu" plan profile: the C firmware's kernels (firmware-bridge/firmware/core/ops/) at batch 1.
// `scratchBytes` is exactly what fl_op_prepare computes as a node's scratch_need; the firmware
// rejects a plan that gives a node less (FLM_MEMORY_PLAN). Graph inputs are external: the
// device reads them in its receive buffer and they take no arena bytes.
import { numel, type GraphNode, type Model, type OpName } from '../ir.js';
import { CONV_POOL_CHAIN, DENSE_CHAIN } from './fuse.js';
import type { PlanProfile } from './types.js';

/** Ops the firmware runs (hello.ops lists their ids). */
export const MCU_OPS: ReadonlySet<OpName> = new Set<OpName>([
  'dense', 'conv2d', 'svd_dense', 'svd_conv2d', 'tucker2_conv2d', 'cp_conv2d', 'tt_dense', 'tr_dense', 'ttl_dense',
  'relu', 'leaky_relu', 'sigmoid', 'tanh', 'clip', 'max_pool', 'avg_pool', 'global_avg_pool', 'flatten', 'reshape',
  'softmax', 'add', 'mul', 'identity', 'pad', 'concat', 'slice', 'resize', 'conv_transpose2d', 'prelu', 'hard_sigmoid',
  'hard_swish', 'log_softmax', 'gelu', 'layer_norm', 'erf', 'sqrt', 'exp', 'log', 'abs', 'reciprocal', 'pow', 'reduce',
]);

function shapeOf(node: GraphNode, model: Model, role: string): number[] {
  const name = node.weights[role];
  const t = name === undefined ? undefined : model.tensors.get(name);
  if (!t) throw new Error(`node ${node.name} (${node.op}): missing weight ${role}`);
  return t.shape;
}

function modes(node: GraphNode, key: string): number[] {
  const v = node.attrs[key];
  if (!Array.isArray(v)) throw new Error(`node ${node.name} (${node.op}): attribute ${key} must be a list`);
  return v;
}

/** Scratch floats of the firmware's kernel for one node at batch 1 (mirrors core/ops/; the ops not listed take none). */
export function mcuScratchFloats(node: GraphNode, inputShapes: number[][], outputShape: number[], model: Model): number {
  const x = inputShapes[0] ?? [];
  switch (node.op) {
    case 'svd_dense': {
      const [, r] = shapeOf(node, model, 'u') as [number, number];
      const inF = shapeOf(node, model, 'v')[1]!;
      return (numel(x) / inF) * r;
    }
    case 'svd_conv2d': {
      const r = shapeOf(node, model, 'v')[0]!;
      return r * outputShape[2]! * outputShape[3]!;
    }
    case 'tucker2_conv2d': {
      const r1 = shapeOf(node, model, 'u_in')[0]!;
      const r2 = shapeOf(node, model, 'core')[0]!;
      return r1 * x[2]! * x[3]! + r2 * outputShape[2]! * outputShape[3]!;
    }
    case 'cp_conv2d': {
      const R = shapeOf(node, model, 'a_in')[0]!;
      const hw = x[2]! * x[3]!;
      const ohw = outputShape[2]! * outputShape[3]!;
      // 1x1 projection [R, H, W] (reused for the horizontal pass [R, OH, OW]) + vertical pass [R, OH, W]
      return R * Math.max(hw, ohw) + R * outputShape[2]! * x[3]!;
    }
    case 'tt_dense':
    case 'tr_dense': {
      const ring = node.op === 'tr_dense';
      const outModes = modes(node, 'out_modes');
      const inModes = modes(node, 'in_modes');
      const d = outModes.length;
      const inF = numel(inModes);
      const rows = numel(x) / inF;
      const r0 = shapeOf(node, model, 'core.0')[0]!;
      let P = rows;
      let Q = inF / inModes[0]!;
      let S = 0;
      let count = 0;
      for (let k = 0; k < d; k++) {
        const c = shapeOf(node, model, `core.${k}`);
        const rf = ring && k === 0;
        const cols = rf ? c[0]! * c[1]! * c[3]! : c[1]! * c[3]!;
        const size = P * cols * Q;
        // every step but a tensor train's last writes an intermediate (ping-pong buffers)
        if (ring || k + 1 < d) {
          S = Math.max(S, size);
          count++;
        }
        P *= (rf ? r0 : 1) * outModes[k]!;
        Q = k + 1 < d ? Q / inModes[k + 1]! : 1;
      }
      return Math.min(count, 2) * S;
    }
    case 'ttl_dense': {
      const outModes = modes(node, 'out_modes');
      const inModes = modes(node, 'in_modes');
      const p = outModes.length;
      const q = inModes.length;
      const core = shapeOf(node, model, 'core');
      const rows = numel(x) / numel(inModes);
      let S = 0;
      const cur = [...inModes];
      for (let k = 0; k < q; k++) {
        cur[k] = core[p + k]!;
        S = Math.max(S, rows * numel(cur));
      }
      S = Math.max(S, rows * numel(core.slice(0, p)));
      const oc = core.slice(0, p);
      for (let k = 0; k + 1 < p; k++) {
        oc[k] = outModes[k]!;
        S = Math.max(S, rows * numel(oc));
      }
      return 2 * S;
    }
    default:
      return 0;
  }
}

/** The firmware's plan profile: batch 1, 8-byte offsets (double-word loads on Cortex-M). */
export const mcuProfile: PlanProfile = {
  name: 'mcu',
  batch: 1,
  align: 8,
  externalInputs: true,
  fuses: [DENSE_CHAIN, CONV_POOL_CHAIN],
  scratchBytes: (_k, node, inputShapes, outputShape, model) => 4 * mcuScratchFloats(node, inputShapes, outputShape, model),
  supports: (node) => MCU_OPS.has(node.op),
};
