// TFLite form of the tensor-network dense kinds, as chains of builtins that TensorFlow Lite Micro
// has kernels for (RESHAPE, BATCH_MATMUL, FULLY_CONNECTED, TRANSPOSE, ADD):
//
//   tt_dense   x [B, n_0 .. n_{d-1}]; per core k < d-1: RESHAPE to [P, r_k n_k, Q] and
//              BATCH_MATMUL(G_k as [m_k r_{k+1}, r_k n_k], state) -> [P, m_k r_{k+1}, Q], which is
//              already [P m_k, r_{k+1} n_{k+1}, Q'] in memory; the last core (Q = 1) is a
//              FULLY_CONNECTED on rows [P, r n] (per-channel int8 scales there).
//   tr_dense   the same with r_0 on the output side of the first core; the ring closes in the last
//              step: TRANSPOSE [B, r_0, M, r n] -> [B, M, r_0, r n], then one FULLY_CONNECTED whose
//              weight contracts r_0 = r_d together with r n (an exact trace, no mask).
//   ttl_dense  per input mode a mode product (BATCH_MATMUL by the factor, or FULLY_CONNECTED when the
//              mode is the last axis), FULLY_CONNECTED by the unfolded core, per output mode a mode
//              product again.
// Then RESHAPE to [B, out], ADD of the bias (with the fused activation). No weight as large as the
// dense one is ever written. The constant factor is BATCH_MATMUL's left operand, broadcast over the
// batch axes, which TensorFlow Lite and TensorFlow Lite Micro (kernels/batch_matmul.cc) both allow.
import { attrInts, numel, type GraphNode } from '../../runtime/ir.js';
import { Act, F, Op, Opt } from '../tflite/schema.js';
import { ExportError } from './errors.js';

/** What this module needs of the exporter in tflite.ts. */
export interface TensorNetHost {
  b: {
    tensors: Array<{ name: string }>;
    activation(name: string, shape: number[]): number;
    i32(name: string, shape: number[], data: number[]): number;
    op(opcode: number, inputs: number[], outputs: number[], optionsType?: number, options?: Array<[number, 'i8' | 'i32' | 'f32' | 'bool', number | boolean] | [number, 'i32[]', number[]]>): void;
  };
  constF32(name: string, shape: number[], data: Float32Array): number;
  weight(node: GraphNode, role: string): { data: Float32Array; shape: number[] };
  optionalWeight(node: GraphNode, role: string): { data: Float32Array; shape: number[] } | undefined;
}

/** A TFLite tensor and its shape (as TFLite sees it: no layout change in this module). */
interface Raw {
  t: number;
  shape: number[];
}

function fail(node: GraphNode, msg: string): never {
  throw new ExportError('EXPORT_BAD_MODEL', `tflite export: node ${node.name} (${node.op}): ${msg}`);
}

class Chain {
  private step = 0;

  constructor(readonly ex: TensorNetHost, readonly node: GraphNode) {}

  private name(what: string): string {
    return `${this.node.name}/${what}${this.step++}`;
  }

  /** RESHAPE to `shape` (batch axis -1), skipped when the shape is already that. */
  reshape(x: Raw, shape: number[]): Raw {
    if (x.shape.length === shape.length && x.shape.every((d, i) => d === shape[i])) return x;
    const name = this.name('reshape');
    const target = [-1, ...shape.slice(1)];
    const out = this.ex.b.activation(name, shape);
    this.ex.b.op(Op.RESHAPE, [x.t, this.ex.b.i32(`${name}/shape`, [target.length], target)], [out], Opt.ReshapeOptions, [[F.ReshapeOptions.new_shape, 'i32[]', target]]);
    return { t: out, shape };
  }

  /** [P, K, Q] -> [P, R, Q] by the constant [R, K] on the left. */
  leftMul(x: Raw, lhs: Float32Array, rows: number): Raw {
    const [p, k, q] = x.shape as [number, number, number];
    const name = this.name('matmul');
    const a = this.ex.constF32(`${name}/factor`, [rows, k], lhs);
    const out = this.ex.b.activation(name, [p, rows, q]);
    const B = F.BatchMatMulOptions;
    this.ex.b.op(Op.BATCH_MATMUL, [a, x.t], [out], Opt.BatchMatMulOptions, [[B.adj_x, 'bool', false], [B.adj_y, 'bool', false]]);
    return { t: out, shape: [p, rows, q] };
  }

  /** Rows [P, K] -> [P, R] by the weight [R, K]. */
  fc(x: Raw, w: Float32Array, rows: number, bias?: Float32Array, act: number = Act.NONE): Raw {
    const [p, k] = x.shape as [number, number];
    const name = this.name('fc');
    const wt = this.ex.constF32(`${name}/weights`, [rows, k], w);
    const bt = bias ? this.ex.constF32(`${name}/bias`, [rows], bias) : -1;
    const out = this.ex.b.activation(name, [p, rows]);
    const FC = F.FullyConnectedOptions;
    this.ex.b.op(Op.FULLY_CONNECTED, [x.t, wt, bt], [out], Opt.FullyConnectedOptions, [
      [FC.fused_activation_function, 'i8', act], [FC.weights_format, 'i8', 0], [FC.keep_num_dims, 'bool', false],
    ]);
    return { t: out, shape: [p, rows] };
  }

  /** Mode product on the middle axis of [pre, n, post] by M [rows, n]: FULLY_CONNECTED when post is 1. */
  modeProduct(x: Raw, pre: number, n: number, post: number, m: Float32Array, rows: number): Raw {
    if (post === 1) return this.fc(this.reshape(x, [pre, n]), m, rows);
    return this.leftMul(this.reshape(x, [pre, n, post]), m, rows);
  }

  transpose(x: Raw, perm: number[]): Raw {
    const name = this.name('transpose');
    const shape = perm.map((p) => x.shape[p]!);
    const out = this.ex.b.activation(name, shape);
    this.ex.b.op(Op.TRANSPOSE, [x.t, this.ex.b.i32(`perm_${perm.join('')}`, [perm.length], perm)], [out], Opt.TransposeOptions);
    return { t: out, shape };
  }

  /** [B, out] plus the bias and the fused activation; the last tensor takes the node's output name. */
  finish(y: Raw, batch: number, out: number, act: number, outName: string): Raw {
    let r = this.reshape(y, [batch, out]);
    const bias = this.ex.optionalWeight(this.node, 'bias');
    if (bias) {
      if (bias.data.length !== out) fail(this.node, `bias has ${bias.data.length} values for ${out} outputs`);
      const name = this.name('bias');
      const bt = this.ex.constF32(`${name}/values`, [out], bias.data);
      const o = this.ex.b.activation(name, [batch, out]);
      this.ex.b.op(Op.ADD, [r.t, bt], [o], Opt.AddOptions, [[0, 'i8', act]]);
      r = { t: o, shape: [batch, out] };
    } else if (act !== Act.NONE) {
      const o = this.ex.b.activation(this.name('act'), [batch, out]);
      const code = act === Act.RELU ? Op.RELU : act === Act.RELU6 ? Op.RELU6 : Op.RELU_N1_TO_1;
      this.ex.b.op(code, [r.t], [o]);
      r = { t: o, shape: [batch, out] };
    }
    this.ex.b.tensors[r.t]!.name = outName;
    return r;
  }
}

/** The flattened input: a tensor holding [B, inF] in the IR's element order. */
export interface TensorNetInput {
  t: number;
  batch: number;
  features: number;
}

/** tt_dense / tr_dense: returns the TFLite tensor of the output [B, out]. */
function trainChain(ex: TensorNetHost, node: GraphNode, x: TensorNetInput, act: number, outName: string, ring: boolean): Raw {
  const outModes = attrInts(node, 'out_modes');
  const inModes = attrInts(node, 'in_modes');
  const d = outModes.length;
  if (d < 1 || inModes.length !== d) fail(node, 'out_modes and in_modes must have the same length >= 1');
  const cores = outModes.map((m, k) => {
    const c = ex.weight(node, `core.${k}`);
    if (c.shape.length !== 4 || c.shape[1] !== m || c.shape[2] !== inModes[k]) fail(node, `core.${k} [${c.shape}] does not fit modes ${m} x ${inModes[k]}`);
    return c;
  });
  const r0 = cores[0]!.shape[0]!;
  for (let k = 0; k < d; k++) {
    const next = k + 1 < d ? cores[k + 1]!.shape[0]! : r0;
    if (cores[k]!.shape[3] !== next) fail(node, `core.${k} rank ${cores[k]!.shape[3]} does not match ${next}`);
  }
  if (!ring && r0 !== 1) fail(node, 'a tensor train has boundary ranks 1');
  const inF = numel(inModes);
  const out = numel(outModes);
  if (x.features !== inF) fail(node, `input has ${x.features} features, the modes ${inF}`);
  const B = x.batch;
  const ch = new Chain(ex, node);
  let state: Raw = { t: x.t, shape: [B, inF] };
  if (d === 1) {
    // One core: the dense weight itself (trace over r_0 for a ring of one).
    const [ra, m, n] = cores[0]!.shape as [number, number, number, number];
    const g = cores[0]!.data;
    const w = new Float32Array(m * n);
    for (let a = 0; a < ra; a++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) w[i * n + j]! += g[((a * m + i) * n + j) * ra + a]!;
    return ch.finish(ch.fc(state, w, m), B, out, act, outName);
  }
  let P = B;
  let Q = inF;
  for (let k = 0; k < d - 1; k++) {
    const [ra, m, n, rb] = cores[k]!.shape as [number, number, number, number];
    const g = cores[k]!.data;
    const first = ring && k === 0;
    Q /= n;
    const rows = first ? n : ra * n;
    const cols = first ? ra * m * rb : m * rb;
    // Left factor [cols, rows]: for the ring's first core, r_0 joins the output side.
    const lhs = new Float32Array(rows * cols);
    for (let a = 0; a < ra; a++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let b = 0; b < rb; b++) {
      const v = g[((a * m + i) * n + j) * rb + b]!;
      if (first) lhs[((a * m + i) * rb + b) * rows + j] = v;
      else lhs[(i * rb + b) * rows + a * n + j] = v;
    }
    state = ch.leftMul(ch.reshape(state, [P, rows, Q]), lhs, cols);
    P *= (first ? ra : 1) * m;
  }
  const [ra, m, n, rb] = cores[d - 1]!.shape as [number, number, number, number];
  const g = cores[d - 1]!.data;
  let y: Raw;
  if (!ring || r0 === 1) {
    // Rows [P, r n] by W[i, (a n + j)] = G[a, i, j, 0] (a ring of boundary rank 1 is a train).
    const w = new Float32Array(m * ra * n);
    for (let a = 0; a < ra; a++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) w[i * ra * n + a * n + j] = g[((a * m + i) * n + j) * rb]!;
    y = ch.fc(ch.reshape(state, [P, ra * n]), w, m);
  } else {
    // state [B, r_0, M, r n] -> [B, M, r_0, r n]; W[i, (c r n + a n + j)] = G[a, i, j, c] closes the ring.
    const M = P / (B * r0);
    const moved = ch.transpose(ch.reshape(state, [B, r0, M, ra * n]), [0, 2, 1, 3]);
    const w = new Float32Array(m * r0 * ra * n);
    for (let c = 0; c < r0; c++) for (let a = 0; a < ra; a++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      w[((i * r0 + c) * ra + a) * n + j] = g[((a * m + i) * n + j) * rb + c]!;
    }
    y = ch.fc(ch.reshape(moved, [B * M, r0 * ra * n]), w, m);
  }
  return ch.finish(y, B, out, act, outName);
}

/** ttl_dense: input-mode projections, the core, output-mode expansions. */
function tuckerLayer(ex: TensorNetHost, node: GraphNode, x: TensorNetInput, act: number, outName: string): Raw {
  const outModes = attrInts(node, 'out_modes');
  const inModes = attrInts(node, 'in_modes');
  const p = outModes.length;
  const q = inModes.length;
  const core = ex.weight(node, 'core');
  if (core.shape.length !== p + q) fail(node, `core must have ${p + q} modes, got [${core.shape}]`);
  const dims = [...outModes, ...inModes];
  const factors = dims.map((dim, k) => {
    const f = ex.weight(node, `factor.${k}`);
    if (f.shape.length !== 2 || f.shape[0] !== dim || f.shape[1] !== core.shape[k]) fail(node, `factor.${k} [${f.shape}] does not fit [${dim}, ${core.shape[k]}]`);
    return f;
  });
  const inF = numel(inModes);
  const out = numel(outModes);
  if (x.features !== inF) fail(node, `input has ${x.features} features, the modes ${inF}`);
  const B = x.batch;
  const ch = new Chain(ex, node);
  let state: Raw = { t: x.t, shape: [B, inF] };
  const cur = [...inModes];
  for (let k = 0; k < q; k++) {
    const f = factors[p + k]!;
    const [n, s] = f.shape as [number, number];
    // z[.., s, ..] = sum_n F[n, s] x[.., n, ..]: the left factor is F transposed, [s, n].
    const ft = new Float32Array(s * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < s; j++) ft[j * n + i] = f.data[i * s + j]!;
    state = ch.modeProduct(state, B * numel(cur.slice(0, k)), n, numel(cur.slice(k + 1)), ft, s);
    cur[k] = s;
  }
  const R = numel(core.shape.slice(0, p));
  state = ch.fc(ch.reshape(state, [B, numel(cur)]), core.data, R);
  const oc = core.shape.slice(0, p);
  for (let k = 0; k < p; k++) {
    const f = factors[k]!;
    const [m, r] = f.shape as [number, number];
    state = ch.modeProduct(state, B * numel(oc.slice(0, k)), r, numel(oc.slice(k + 1)), f.data, m);
    oc[k] = m;
  }
  return ch.finish(state, B, out, act, outName);
}

/** The TFLite chain of a tt_dense / tr_dense / ttl_dense node; returns the output tensor [B, out]. */
export function tensorNetDense(ex: TensorNetHost, node: GraphNode, x: TensorNetInput, act: number, outName: string): number {
  if (node.op === 'ttl_dense') return tuckerLayer(ex, node, x, act, outName).t;
  return trainChain(ex, node, x, act, outName, node.op === 'tr_dense').t;
}
