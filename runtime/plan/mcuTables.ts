// The bytes of the firmware's model tables, counted as the device allocates them when it prepares
// a file (firmware-bridge/firmware/core: model/prepare.c, model/reader.c, ops/*.c). The tables sit
// at the arena's end beside the mcu plan's activations and scratch, so a board's arena must hold
// both: `convert --arena BYTES` checks plan arena + tables <= BYTES (converter/rank/arenaFit.ts).
//
// Every allocation is rounded up to 8 bytes (fl_tab_alloc). In order:
//   tensor records            ntensors x sizeof(fl_tensor)
//   per-tensor int8 scales    one float (8 B) per tensor with a single scale; a per-channel list
//                             4 B per channel, but on the int8-full path it stays in the
//                             (memory-mapped) model store when every entry is a float64 (msgpack
//                             0xcb: a non-integer number as the writer packs it)
//   node and value records    nnodes x sizeof(fl_node), (nnodes + 1) x sizeof(fl_value)
//   a node's weights          4 B per role it names, (role, tensor) pairs (model/reader.c)
//   op parameters             tt/tr/ttl: their modes (fl_modes); pad 4 B and slice 8 B per input
//                             axis; transpose 4 B per axis
//   int8-full records         per node a fl_qnode and its stages (fl_qstage each), or for a table,
//                             add, concat or softmax node a fl_qnode and a fl_qmisc (+ 256 B of
//                             table for a lut, + 1,024 B of exp table for a softmax); the
//                             quantised input in the tables only when the frame buffer has no
//                             room for it past an f32 input (5 x in_numel > the frame buffer)
// The record sizes depend on the port's compiler and limits: CORTEX_M4 is arm-none-eabi-gcc's
// (FL_MAX_RANK 8, FL_MAX_MODES 8, FL_MAX_IN 2); test/runtime/plan/mcuTables.test.ts compiles the
// firmware's headers to check them and compares the device's own count with this one.
import type { Model } from '../ir.js';
import { inferShapes } from './shapes.js';
import { INT8_FULL_KEY } from '../int8full/params.js';

export interface RecordSizes {
  tensor: number; value: number; node: number; qnode: number; qstage: number; qmisc: number; modes: number;
  /** FL_FRAME_BUF: the frame buffer's bytes (the quantised input goes past an f32 input there). */
  frameBuf: number;
}

/** The Cortex-M4 builds (cortex-m4, cortex-m4-l4r5): the sizes but the frame buffer. */
const M4 = { tensor: 72, value: 68, node: 164, qnode: 20, qstage: 76, qmisc: 44, modes: 68 };
/** `hil --emulate cortex-m4` (FL_MAX_FRAME 4,096). */
export const CORTEX_M4: RecordSizes = { ...M4, frameBuf: 4096 + Math.floor(4096 / 254) + 2 };
/** `hil --emulate cortex-m4-l4r5` (FL_MAX_FRAME 112 KiB). */
export const CORTEX_M4_L4R5: RecordSizes = { ...M4, frameBuf: 114688 + Math.floor(114688 / 254) + 2 };

export interface TableBytes {
  bytes: number;
  parts: { tensors: number; scales: number; nodes: number; values: number; weights: number; params: number; int8Full: number; input: number };
  /** Ops whose parameters this count leaves out (the reshaped kinds rcp_* .. rtr_*): not exact then. */
  uncounted: string[];
}

const up8 = (n: number) => Math.ceil(n / 8) * 8;
const STAGES: Record<string, number> = {
  dense: 1, conv2d: 1, svd_dense: 2, svd_conv2d: 2, tucker2_conv2d: 3, cp_conv2d: 4,
  relu: 0, max_pool: 0, avg_pool: 0, global_avg_pool: 0, flatten: 0, reshape: 0, identity: 0,
};
const LUT_OPS = new Set(['mul', 'sigmoid', 'tanh', 'hard_sigmoid', 'hard_swish', 'leaky_relu', 'clip']);

/** The tables the firmware allocates for `model` (an f32-activation or int8-full file). */
export function mcuTableBytes(model: Model, sizes: RecordSizes = CORTEX_M4): TableBytes {
  const nodes = model.graph.nodes;
  const parts = { tensors: up8(model.tensors.size * sizes.tensor), scales: 0, nodes: up8(nodes.length * sizes.node), values: up8((nodes.length + 1) * sizes.value), weights: 0, params: 0, int8Full: 0, input: 0 };
  const uncounted: string[] = [];
  const int8Full = model.metadata[INT8_FULL_KEY] !== undefined;
  for (const t of model.tensors.values()) {
    const s = t.quant?.scale;
    if (!s) continue;
    // with the store memory-mapped, the f32 path keeps them in the tables (read per weight)
    const inStore = int8Full && s.length > 1 && Array.from(s).every((v) => !Number.isInteger(v));
    if (!inStore) parts.scales += up8(4 * s.length);
  }
  const shapes = nodes.some((n) => n.op === 'pad' || n.op === 'slice' || n.op === 'transpose') || int8Full ? inferShapes(model, 1) : undefined;
  const activation = (name: string) => !model.tensors.has(name);
  nodes.forEach((n, k) => {
    const roles = Object.keys(n.weights ?? {}).length;
    if (roles) parts.weights += up8(4 * roles);
    const rank = () => shapes!.nodes[k]!.inputs[0]!.length;
    if (n.op === 'tt_dense' || n.op === 'tr_dense' || n.op === 'ttl_dense') parts.params += up8(sizes.modes);
    else if (n.op === 'pad' || n.op === 'transpose') parts.params += up8(4 * rank());
    else if (n.op === 'slice') parts.params += up8(8 * rank());
    else if (/^r(cp|tk|tt|tr)_/.test(n.op)) uncounted.push(n.op);
    if (!int8Full) return;
    if (n.op === 'add' && n.inputs.length === 2 && n.inputs.every(activation)) parts.int8Full += up8(sizes.qnode) + up8(sizes.qmisc);
    else if (n.op === 'add' || LUT_OPS.has(n.op)) parts.int8Full += up8(sizes.qnode) + up8(sizes.qmisc + 256);
    else if (n.op === 'concat') parts.int8Full += up8(sizes.qnode) + up8(sizes.qmisc);
    else if (n.op === 'softmax') parts.int8Full += up8(sizes.qnode) + up8(sizes.qmisc + 1024);
    else parts.int8Full += up8(sizes.qnode + (STAGES[n.op] ?? 0) * sizes.qstage);
  });
  if (int8Full) {
    const inNumel = (shapes!.values.get(model.graph.inputs[0]!.name) ?? []).reduce((a, b) => a * b, 1);
    if (5 * inNumel > sizes.frameBuf) parts.input = up8(inNumel);
  }
  const bytes = Object.values(parts).reduce((a, b) => a + b, 0);
  return { bytes, parts, uncounted };
}
