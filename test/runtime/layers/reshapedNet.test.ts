// The reshaped tensorial kinds (rcp / rtk / rtt / rtr, dense and conv2d) against the kernel formed
// here by explicit sums over the factor indices (independent of runtime/exec/tensorNet.ts), run by
// the plain dense / conv2d kinds: the contraction, the row-tile rebuild and the tiled product, a
// .flm round trip through the Session, and the contraction engine's order independence.
import t from 'tap';
import { writeFlm } from '../../../converter/writer.js';
import { contractRunner } from '../../../runtime/cost/autotune.js';
import { prepareRebuild } from '../../../runtime/exec/rebuild.js';
import { prepareTiled } from '../../../runtime/exec/tiled.js';
import { bindNet, planNet, planOrder } from '../../../runtime/exec/tensorNet.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { numel, type GraphNode, type Model, type OpName, type StoredTensor, type Tensor } from '../../../runtime/ir.js';
import { hasWasmSimd, referenceBackend, wasmBackend, type KernelBackend } from '../../../runtime/kernels/backend.js';
import type { Weight } from '../../../runtime/layers/index.js';
import { LAYER_KINDS } from '../../../runtime/layers/registry.js';
import { runLayer } from '../../../runtime/layers/runLayer.js';
import { Session } from '../../../runtime/session.js';

let seed = 4242;
function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
}
const randArray = (n: number) => Float32Array.from({ length: n }, rand);

type Method = 'rcp' | 'rtk' | 'rtt' | 'rtr';

interface Case {
  name: string;
  node: GraphNode;
  weights: Map<string, Weight>;
  /** W [T, S * kh * kw] by explicit sums. */
  full: Float64Array;
  T: number;
  S: number;
  kh: number;
  kw: number;
  input: number[];
}

/** Factor shapes written from the layouts (not from the runtime's tables). */
function shapesFor(method: Method, tm: number[], sm: number[], kh: number, kw: number, ranks: number[]): Record<string, number[]> {
  const M = tm.length;
  const out: Record<string, number[]> = {};
  for (let m = 1; m <= M; m++) {
    const mode = [tm[m - 1]!, sm[m - 1]!];
    if (method === 'rcp') out[`factor.${m}`] = [ranks[0]!, ...mode];
    else if (method === 'rtk') out[`factor.${m}`] = [ranks[m]!, ...mode];
    else if (method === 'rtt') out[`factor.${m}`] = m === 1 ? [ranks[0]!, ...mode] : [ranks[m - 2]!, ranks[m - 1]!, ...mode];
    else out[`factor.${m}`] = [ranks[m - 1]!, ranks[m]!, ...mode];
  }
  out['factor.0'] = method === 'rcp' || method === 'rtk' ? [ranks[0]!, kh, kw] : method === 'rtt' ? [ranks[M - 1]!, kh, kw] : [ranks[M]!, ranks[0]!, kh, kw];
  if (method === 'rtk') out['core'] = ranks.slice();
  return out;
}

function digitsOf(i: number, modes: number[]): number[] {
  const d = new Array<number>(modes.length);
  for (let m = modes.length - 1; m >= 0; m--) {
    d[m] = i % modes[m]!;
    i = Math.floor(i / modes[m]!);
  }
  return d;
}

/** One entry W[t, s, k] by the sums of each method's formula. */
function entry(method: Method, f: (role: string) => Float32Array, tm: number[], sm: number[], K: number, ranks: number[], t: number[], s: number[], k: number): number {
  const M = tm.length;
  const fm = (m: number, rIdx: number[], rDims: number[]) => {
    let o = 0;
    for (let i = 0; i < rIdx.length; i++) o = o * rDims[i]! + rIdx[i]!;
    o = (o * tm[m - 1]! + t[m - 1]!) * sm[m - 1]! + s[m - 1]!;
    return f(`factor.${m}`)[o]!;
  };
  if (method === 'rcp') {
    const R = ranks[0]!;
    let sum = 0;
    for (let r = 0; r < R; r++) {
      let p = f('factor.0')[r * K + k]!;
      for (let m = 1; m <= M; m++) p *= fm(m, [r], [R]);
      sum += p;
    }
    return sum;
  }
  if (method === 'rtk') {
    const core = f('core');
    let sum = 0;
    for (let c = 0; c < core.length; c++) {
      const r = digitsOf(c, ranks);
      let p = core[c]! * f('factor.0')[r[0]! * K + k]!;
      for (let m = 1; m <= M; m++) p *= fm(m, [r[m]!], [ranks[m]!]);
      sum += p;
    }
    return sum;
  }
  if (method === 'rtt') {
    let v = Array.from({ length: ranks[0]! }, (_, a) => fm(1, [a], [ranks[0]!]));
    for (let m = 2; m <= M; m++) {
      const [Ra, Rb] = [ranks[m - 2]!, ranks[m - 1]!];
      v = Array.from({ length: Rb }, (_, b) => v.reduce((acc, va, a) => acc + va * fm(m, [a, b], [Ra, Rb]), 0));
    }
    return v.reduce((acc, va, a) => acc + va * f('factor.0')[a * K + k]!, 0);
  }
  // rtr: P[r0][b] along the ring, closed by factor.0 [RM, R0, k]
  const R0 = ranks[0]!;
  let sum = 0;
  for (let r0 = 0; r0 < R0; r0++) {
    let v = Array.from({ length: ranks[1]! }, (_, b) => fm(1, [r0, b], [R0, ranks[1]!]));
    for (let m = 2; m <= M; m++) {
      const [Ra, Rb] = [ranks[m - 1]!, ranks[m]!];
      v = Array.from({ length: Rb }, (_, b) => v.reduce((acc, va, a) => acc + va * fm(m, [a, b], [Ra, Rb]), 0));
    }
    sum += v.reduce((acc, va, a) => acc + va * f('factor.0')[(a * R0 + r0) * K + k]!, 0);
  }
  return sum;
}

function mkCase(method: Method, conv: boolean, tm: number[], sm: number[], ranks: number[], attrs: GraphNode['attrs'] = {}, k: [number, number] = [3, 2]): Case {
  const [kh, kw] = conv ? k : [1, 1];
  const op = `${method}_${conv ? 'conv2d' : 'dense'}` as OpName;
  const T = numel(tm);
  const S = numel(sm);
  const K = kh * kw;
  const weights = new Map<string, Weight>();
  const roles: Record<string, string> = {};
  for (const [role, shape] of Object.entries({ ...shapesFor(method, tm, sm, kh, kw, ranks), bias: [T] })) {
    weights.set(role, { shape, data: randArray(numel(shape)) });
    roles[role] = role;
  }
  const f = (role: string) => weights.get(role)!.data;
  const full = new Float64Array(T * S * K);
  for (let ti = 0; ti < T; ti++) {
    const td = digitsOf(ti, tm);
    for (let si = 0; si < S; si++) {
      const sd = digitsOf(si, sm);
      for (let kk = 0; kk < K; kk++) full[(ti * S + si) * K + kk] = entry(method, f, tm, sm, K, ranks, td, sd, kk);
    }
  }
  const node: GraphNode = { name: `n_${op}`, op, inputs: ['x'], outputs: ['y'], attrs: { ...attrs, t_modes: tm, s_modes: sm }, weights: roles };
  return { name: `${op} [${tm}]x[${sm}] ranks [${ranks}] ${JSON.stringify(attrs)}`, node, weights, full, T, S, kh, kw, input: conv ? [S, 7, 6] : [S] };
}

const CASES: Case[] = [];
for (const conv of [false, true]) {
  CASES.push(mkCase('rcp', conv, [3, 4], [2, 3], [5]));
  CASES.push(mkCase('rtk', conv, [3, 4], [2, 3], [conv ? 3 : 1, 2, 3]));
  CASES.push(mkCase('rtt', conv, [3, 4], [2, 3], [3, conv ? 4 : 1]));
  CASES.push(mkCase('rtr', conv, [3, 4], [2, 3], [2, 3, 2]));
  // three mode pairs, and one
  CASES.push(mkCase('rcp', conv, [2, 2, 3], [3, 2, 2], [4]));
  CASES.push(mkCase('rtk', conv, [2, 2, 3], [3, 2, 2], [conv ? 2 : 1, 2, 2, 3]));
  CASES.push(mkCase('rtt', conv, [2, 2, 3], [3, 2, 2], [2, 3, conv ? 2 : 1]));
  CASES.push(mkCase('rtr', conv, [2, 2, 3], [3, 2, 2], [2, 2, 3, 2]));
  CASES.push(mkCase('rtr', conv, [5], [4], [2, 3]));
  CASES.push(mkCase('rtt', conv, [5], [4], [conv ? 3 : 1]));
}
// conv attributes as the other conv kinds take them
CASES.push(mkCase('rtt', true, [3, 2], [2, 2], [3, 2], { strides: [2, 1], pads: [1, 0, 1, 2], dilations: [1, 2] }));
CASES.push(mkCase('rcp', true, [3, 2], [2, 2], [4], { strides: [1, 2], pads: [2, 1, 0, 1], dilations: [2, 1] }, [2, 3]));
CASES.push(mkCase('rtr', true, [3, 2], [2, 2], [2, 2, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }, [3, 3]));

/** The plain kind (dense / conv2d) with the explicitly summed kernel. */
function plainNode(c: Case): { node: GraphNode; weights: Map<string, Weight> } {
  const conv = c.node.op.endsWith('conv2d');
  const { t_modes: _t, s_modes: _s, ...attrs } = c.node.attrs;
  const weights = new Map<string, Weight>([
    ['weight', { shape: conv ? [c.T, c.S, c.kh, c.kw] : [c.T, c.S], data: Float32Array.from(c.full) }],
    ['bias', c.weights.get('bias')!],
  ]);
  return { node: { ...c.node, op: conv ? 'conv2d' : 'dense', attrs, weights: { weight: 'weight', bias: 'bias' } }, weights };
}

function ctxOf(weights: Map<string, Weight>, kernels: KernelBackend = referenceBackend) {
  return {
    kernels,
    retain: (d: Float32Array) => kernels.retain(d),
    optionalWeight: (role: string) => weights.get(role),
    weight: (role: string) => {
      const w = weights.get(role);
      if (!w) throw new Error(`missing ${role}`);
      return w;
    },
  };
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / (den || 1);
}

t.test('the contraction equals the plain kind run with the summed kernel', async (t) => {
  const backends: KernelBackend[] = [referenceBackend];
  if (hasWasmSimd()) backends.push(await wasmBackend());
  for (const kernels of backends) {
    for (const c of CASES) {
      const plain = plainNode(c);
      for (const batch of [1, 3]) {
        const shape = [batch, ...c.input];
        const x: Tensor = { shape, data: randArray(numel(shape)) };
        const want = runLayer(plain.node, ctxOf(plain.weights, referenceBackend), [x]);
        const got = runLayer(c.node, ctxOf(c.weights, kernels), [x]);
        t.same(got.shape, want.shape, `${kernels.name} ${c.name} batch ${batch}: shape`);
        const e = maxRel(got.data, want.data);
        t.ok(e < 1e-5, `${kernels.name} ${c.name} batch ${batch}: within 1e-5 (${e.toExponential(2)})`);
      }
    }
  }
  // a dense input with leading axes
  const c = CASES[0]!;
  const x: Tensor = { shape: [2, 3, c.S], data: randArray(6 * c.S) };
  const plain = plainNode(c);
  const e = maxRel(runLayer(c.node, ctxOf(c.weights), [x]).data, runLayer(plain.node, ctxOf(plain.weights), [x]).data);
  t.ok(e < 1e-5, `dense [2, 3, ${c.S}] input: within 1e-5`);
});

t.test('the row-tile rebuild writes the summed kernel, and the tiled product equals the contraction', async (t) => {
  for (const c of CASES) {
    const rb = prepareRebuild(c.node, (role) => c.weights.get(role));
    t.equal(rb.rows, c.T, `${c.name}: rows`);
    t.equal(rb.cols, c.S * c.kh * c.kw, `${c.name}: cols`);
    const all = new Float32Array(rb.rows * rb.cols);
    rb.rowsInto(0, rb.rows, all);
    t.ok(maxRel(all, c.full) < 1e-5, `${c.name}: every row within 1e-5`);
    const buf = new Float32Array(2 + 2 * rb.cols + 2).fill(42);
    rb.rowsInto(rb.rows - 2, rb.rows, buf, 2);
    t.ok(maxRel(buf.subarray(2, 2 + 2 * rb.cols), c.full.subarray((rb.rows - 2) * rb.cols)) < 1e-5, `${c.name}: the last two rows at an offset`);
    t.ok(buf[1] === 42 && buf[buf.length - 1] === 42, `${c.name}: nothing written outside the tile`);
    t.ok(rb.flops(0, rb.rows) > 0, `${c.name}: positive rebuild FLOPs`);
    const ctx = ctxOf(c.weights);
    const shape = [2, ...c.input];
    const x = { shape, data: randArray(numel(shape)) };
    for (const rows of [1, 5, c.T]) {
      const tiled = prepareTiled(c.node, ctx, rows);
      const yShape = tiled.outputShape(shape);
      const want = contractRunner(c.node, ctx, x, yShape)();
      t.ok(maxRel(tiled.apply(x).data, want.data) < 1e-4, `${c.name}: ${rows}-row tiles = contraction`);
    }
  }
});

t.test('a .flm round trip keeps the kind, and the Session runs it as the plain model', async (t) => {
  for (const c of CASES.filter((_, i) => i % 3 === 0)) {
    const tensors = new Map<string, StoredTensor>();
    const roles: Record<string, string> = {};
    for (const [role, w] of c.weights) {
      tensors.set(`l.${role}`, { name: `l.${role}`, dtype: 'f32', shape: w.shape, data: w.data });
      roles[role] = `l.${role}`;
    }
    const model: Model = {
      graph: { inputs: [{ name: 'x', shape: [-1, ...c.input] }], outputs: ['y'], nodes: [{ ...c.node, weights: roles }] },
      tensors, metadata: {},
    };
    const back = readFlm(writeFlm(model));
    t.same(back.graph.nodes[0]!.op, c.node.op, `${c.name}: op kept`);
    t.same(back.graph.nodes[0]!.attrs, model.graph.nodes[0]!.attrs, `${c.name}: attrs kept`);
    const x: Tensor = { shape: [2, ...c.input], data: randArray(2 * numel(c.input)) };
    const plain = plainNode(c);
    const want = runLayer(plain.node, ctxOf(plain.weights), [x]);
    const got = Session.create(back).runBatch(x);
    t.ok(maxRel(got.data, want.data) < 1e-5, `${c.name}: Session on the read-back model = plain kind`);
  }
});

t.test('bad factors are refused with the layer named', async (t) => {
  const c = CASES[1]!; // rtk dense
  const bad = new Map(c.weights);
  bad.set('core', { shape: [1, 2, 4], data: randArray(8) });
  t.throws(() => runLayer(c.node, ctxOf(bad), [{ shape: [1, c.S], data: randArray(c.S) }]), /n_rtk_dense.*expected/);
  const noCore = new Map(c.weights);
  noCore.delete('core');
  t.throws(() => runLayer(c.node, ctxOf(noCore), [{ shape: [1, c.S], data: randArray(c.S) }]), /missing weight core/);
  const conv = CASES.find((k) => k.node.op === 'rcp_conv2d')!;
  t.throws(() => runLayer({ ...conv.node, attrs: { ...conv.node.attrs, group: 2 } }, ctxOf(conv.weights), [{ shape: [1, conv.S, 7, 6], data: randArray(conv.S * 42) }]), /grouped/);
  t.throws(() => runLayer(c.node, ctxOf(c.weights), [{ shape: [1, c.S + 1], data: randArray(c.S + 1) }]), /does not end in/);
  for (const op of ['rcp_dense', 'rtk_conv2d', 'rtt_dense', 'rtr_conv2d'] as OpName[]) t.ok(LAYER_KINDS.get(op)?.factor, `${op}: a factor kind`);
});

t.test('the contraction engine: every order gives the same result, the planned one is the cheapest', async (t) => {
  // rcp's rank r is shared by all four tensors (a hyperedge).
  const sizes = new Map([['p', 3], ['r', 4], ['s1', 2], ['s2', 3], ['t1', 5], ['t2', 2], ['k', 1]]);
  const tensors = [['p', 's1', 's2', 'k'], ['r', 'k'], ['r', 't1', 's1'], ['r', 't2', 's2']];
  const open = ['p', 't1', 't2'];
  const data = tensors.map((legs) => randArray(legs.reduce((a, l) => a * sizes.get(l)!, 1)));
  // explicit sum
  const want = new Float64Array(3 * 5 * 2);
  for (let p = 0; p < 3; p++) for (let t1 = 0; t1 < 5; t1++) for (let t2 = 0; t2 < 2; t2++) {
    let s = 0;
    for (let r = 0; r < 4; r++) for (let s1 = 0; s1 < 2; s1++) for (let s2 = 0; s2 < 3; s2++) {
      s += data[0]![(p * 2 + s1) * 3 + s2]! * data[1]![r]! * data[2]![(r * 5 + t1) * 2 + s1]! * data[3]![(r * 2 + t2) * 3 + s2]!;
    }
    want[(p * 5 + t1) * 2 + t2] = s;
  }
  const best = planNet({ sizes, tensors, open, fixedFirst: true });
  const orders = [[0, 1, 2, 3], [0, 1, 3, 2], [0, 2, 1, 3], [0, 2, 3, 1], [0, 3, 1, 2], [0, 3, 2, 1]];
  for (const order of orders) {
    const plan = planOrder({ sizes, tensors, open, fixedFirst: true }, order);
    t.ok(best.flops <= plan.flops, `planned ${best.flops} flops <= order [${order}] ${plan.flops}`);
    const out = new Float32Array(30).fill(NaN);
    bindNet(plan, new Float32Array(plan.scratch), referenceBackend)(data, [0, 0, 0, 0], out, 0);
    t.ok(maxRel(out, want) < 1e-5, `order [${order}] = explicit sum`);
  }
  t.throws(() => planOrder({ sizes, tensors, open: ['p', 't1'], fixedFirst: true }, [0, 1, 2, 3]), /t2 belongs to one tensor only/);
  t.throws(() => planNet({ sizes, tensors: [...tensors, ['q']], open, fixedFirst: true }), /no size/);
});
