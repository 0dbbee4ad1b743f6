// The bytes of the firmware's model tables, counted as the device allocates them when it prepares
// a file (firmware-bridge/firmware/core: model/prepare.c, model/reader.c, ops/*.c). The tables sit
// at the arena's end beside the mcu plan's activations and scratch, so a board's arena must hold
// both: `convert --arena BYTES` checks plan arena + tables <= BYTES (converter/rank/arenaFit.ts).
//
// Every allocation is rounded up to 8 bytes (fl_tab_alloc). In order:
//   tensor records            ntensors x sizeof(fl_tensor), and each tensor's dims (4 B per axis)
//   per-tensor int8 scales    one float (8 B) per tensor with a single scale; a per-channel list
//                             4 B per channel, but on the int8-full path it stays in the
//                             (memory-mapped) model store when every entry is a float64 (msgpack
//                             0xcb: a non-integer number as the writer packs it)
//   node and value records    nnodes x sizeof(fl_node), (nnodes + 1) x sizeof(fl_value), and each
//                             value's dims (4 B per axis)
//   a node's weights          4 B per role it names, (role, tensor) pairs (model/reader.c)
//   op parameters             tt/tr/ttl: their modes (fl_modes); pad 4 B and slice 8 B per input
//                             axis; transpose 4 B per axis; the reshaped kinds rcp_* .. rtr_* one
//                             fl_rtn each
//   int8-full records         per node a fl_qnode and its stages (fl_qst each), or for a table,
//                             add, concat or softmax node a fl_qnode and a fl_qmisc (+ 256 B of
//                             table for a lut, + 1,024 B of exp table for a softmax); the
//                             quantised input in the tables only when the frame buffer has no
//                             room for it past an f32 input (5 x in_numel > the frame buffer)
//   attributes                one fl_attrs per distinct set that the ops reading attributes when
//                             they run keep (conv kinds: strides, pads, dilations, group; pools:
//                             also kernel, ceil_mode, count_include_pad; leaky_relu: alpha; clip:
//                             min, max), shared by the nodes with the same (model/prepare.c)
// While it prepares, the device also keeps names, lifetimes and each node's full attributes in a
// prepare area at the arena's start (ntensors x fl_nm, nnodes x fl_node_rd, (nnodes + 1) x
// fl_value_rd), which the plan's activations take over afterwards: `prepare`, so that the arena a
// model needs is max(plan arena, prepare) + tables.
// The record sizes depend on the port's compiler and limits: CORTEX_M4 is arm-none-eabi-gcc's
// (FL_MAX_RANK 8, FL_MAX_MODES 8, FL_MAX_IN 2); test/firmware-bridge/firmware/int8Arena.test.ts
// compiles the firmware's headers to check them and compares the device's own count with this one.
import type { Model } from '../ir.js';
import { inferShapes } from './shapes.js';
import { INT8_FULL_KEY } from '../int8full/params.js';

export interface RecordSizes {
  tensor: number; value: number; node: number; qnode: number; qstage: number; qmisc: number; modes: number;
  /** fl_attrs, and the reshaped kinds' fl_rtn */
  attrs: number; rtn: number;
  /** the prepare area's records: fl_nm (a tensor), fl_node_rd, fl_value_rd */
  nameRec: number; nodePrep: number; valuePrep: number;
  /** FL_FRAME_BUF: the frame buffer's bytes (the quantised input goes past an f32 input there). */
  frameBuf: number;
}

/** The Cortex-M4 builds (cortex-m4, cortex-m4-l4r5): the sizes but the frame buffer. */
const M4 = { tensor: 32, value: 16, node: 64, qnode: 16, qstage: 32, qmisc: 44, modes: 68, attrs: 64, rtn: 148, nameRec: 12, nodePrep: 100, valuePrep: 24 };
/** `hil --emulate cortex-m4` (FL_MAX_FRAME 4,096). */
export const CORTEX_M4: RecordSizes = { ...M4, frameBuf: 4096 + Math.floor(4096 / 254) + 2 };
/** `hil --emulate cortex-m4-l4r5` (FL_MAX_FRAME 112 KiB). */
export const CORTEX_M4_L4R5: RecordSizes = { ...M4, frameBuf: 114688 + Math.floor(114688 / 254) + 2 };

export interface TableBytes {
  bytes: number;
  parts: { tensors: number; scales: number; nodes: number; values: number; weights: number; params: number; attrs: number; int8Full: number; input: number };
  /** The prepare area's bytes (at the arena's start, while preparing only). */
  prepare: number;
  /** Ops whose parameters this count leaves out (adtn_dense): not exact then. */
  uncounted: string[];
}

const up8 = (n: number) => Math.ceil(n / 8) * 8;
/** core/ops/adtnconv.c: its tables, a header of kh, kw (8 bytes), then the circuit's state of 2^Q floats (W its head). */
const ADTN_CONV_HEADER = 8;
function adtnConvStateFloats(shape: unknown, arity: unknown): number {
  const n = Array.isArray(shape) ? (shape as number[]).reduce((a, b) => a * b, 1) : 1;
  let q = 0;
  while (2 ** q < n) q++;
  return 2 ** Math.max(q, typeof arity === 'number' ? arity : 2);
}
const STAGES: Record<string, number> = {
  dense: 1, conv2d: 1, svd_dense: 2, svd_conv2d: 2, tucker2_conv2d: 3, cp_conv2d: 4,
  relu: 0, max_pool: 0, avg_pool: 0, global_avg_pool: 0, flatten: 0, reshape: 0, identity: 0,
};
const LUT_OPS = new Set(['mul', 'sigmoid', 'tanh', 'hard_sigmoid', 'hard_swish', 'leaky_relu', 'clip']);
const CONV_ATTRS = new Set(['conv2d', 'svd_conv2d', 'tucker2_conv2d', 'cp_conv2d', 'conv_transpose2d', 'rcp_conv2d', 'rtk_conv2d', 'rtt_conv2d', 'rtr_conv2d', 'dwlr_conv2d', 'adtn_conv2d']);
const RESHAPED = /^r(cp|tk|tt|tr)_(dense|conv2d)$/;

/** The attributes the device keeps for node n when it runs (a key per distinct fl_attrs), or null. */
function keptAttrs(op: string, attrs: Record<string, unknown>): string | null {
  const ints = (k: string, d: number[]) => (Array.isArray(attrs[k]) ? (attrs[k] as number[]).map(Number) : d);
  const num = (k: string, d: number) => (typeof attrs[k] === 'number' ? (attrs[k] as number) : d);
  const pool = op === 'max_pool' || op === 'avg_pool';
  let a: unknown[] = [[1, 1], [0, 0, 0, 0], [1, 1], 1, [-1, -1], 0, 0, Math.fround(0.01), -Infinity, Infinity];
  if (CONV_ATTRS.has(op) || pool) {
    a = [ints('strides', [1, 1]), ints('pads', [0, 0, 0, 0]), ints('dilations', [1, 1]), num('group', 1), pool ? ints('kernel', [-1, -1]) : [-1, -1],
      pool ? num('ceil_mode', 0) : 0, pool ? num('count_include_pad', 0) : 0, Math.fround(0.01), -Infinity, Infinity];
  } else if (op === 'leaky_relu') a[7] = Math.fround(num('alpha', 0.01));
  else if (op === 'clip') { a[8] = Math.fround(num('min', -Infinity)); a[9] = Math.fround(num('max', Infinity)); }
  else return null;
  return JSON.stringify(a.map((v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)));
}

/** The tables the firmware allocates for `model` (an f32-activation or int8-full file). */
export function mcuTableBytes(model: Model, sizes: RecordSizes = CORTEX_M4): TableBytes {
  const nodes = model.graph.nodes;
  const dims = (rank: number) => (rank > 0 ? up8(4 * rank) : 0);
  const parts = { tensors: up8(model.tensors.size * sizes.tensor), scales: 0, nodes: up8(nodes.length * sizes.node), values: up8((nodes.length + 1) * sizes.value), weights: 0, params: 0, attrs: 0, int8Full: 0, input: 0 };
  const prepare = up8(model.tensors.size * sizes.nameRec) + up8(nodes.length * sizes.nodePrep) + up8((nodes.length + 1) * sizes.valuePrep);
  const uncounted: string[] = [];
  const int8Full = model.metadata[INT8_FULL_KEY] !== undefined;
  for (const t of model.tensors.values()) {
    parts.tensors += dims(t.shape.length);
    const s = t.quant?.scale;
    if (!s) continue;
    // with the store memory-mapped, the f32 path keeps them in the tables (read per weight)
    const inStore = int8Full && s.length > 1 && Array.from(s).every((v) => !Number.isInteger(v));
    if (!inStore) parts.scales += up8(4 * s.length);
  }
  const shapes = inferShapes(model, 1);
  parts.values += dims(model.graph.inputs[0]!.shape.length);
  const activation = (name: string) => !model.tensors.has(name);
  const kept = new Set<string>();
  nodes.forEach((n, k) => {
    parts.values += dims(shapes.values.get(n.outputs[0]!)?.length ?? 0);
    const roles = Object.keys(n.weights ?? {}).length;
    if (roles) parts.weights += up8(4 * roles);
    const key = keptAttrs(n.op, (n.attrs ?? {}) as Record<string, unknown>);
    if (key !== null && !kept.has(key)) { kept.add(key); parts.attrs += up8(sizes.attrs); }
    const rank = () => shapes.nodes[k]!.inputs[0]!.length;
    if (n.op === 'tt_dense' || n.op === 'tr_dense' || n.op === 'ttl_dense') parts.params += up8(sizes.modes);
    else if (n.op === 'pad' || n.op === 'transpose') parts.params += up8(4 * rank());
    else if (n.op === 'slice') parts.params += up8(8 * rank());
    else if (RESHAPED.test(n.op)) parts.params += up8(sizes.rtn);
    else if (n.op === 'adtn_dense') uncounted.push(n.op);
    else if (n.op === 'adtn_conv2d') parts.params += up8(ADTN_CONV_HEADER + 4 * adtnConvStateFloats(n.attrs['weight_shape'], n.attrs['arity']));
    if (!int8Full) return;
    if (n.op === 'add' && n.inputs.length === 2 && n.inputs.every(activation)) parts.int8Full += up8(sizes.qnode) + up8(sizes.qmisc);
    else if (n.op === 'add' || LUT_OPS.has(n.op)) parts.int8Full += up8(sizes.qnode) + up8(sizes.qmisc + 256);
    else if (n.op === 'concat') parts.int8Full += up8(sizes.qnode) + up8(sizes.qmisc);
    else if (n.op === 'softmax') parts.int8Full += up8(sizes.qnode) + up8(sizes.qmisc + 1024);
    else parts.int8Full += up8(sizes.qnode + (STAGES[n.op] ?? 0) * sizes.qstage);
  });
  if (int8Full) {
    const inNumel = (shapes.values.get(model.graph.inputs[0]!.name) ?? []).reduce((a, b) => a * b, 1);
    if (5 * inNumel > sizes.frameBuf) parts.input = up8(inNumel);
  }
  const bytes = Object.values(parts).reduce((a, b) => a + b, 0);
  return { bytes, parts, prepare, uncounted };
}
