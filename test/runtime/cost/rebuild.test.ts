// Row-tile rebuild of every factor kind against the full weight formed here by explicit sums over
// the factor indices (independent of runtime/cost and of converter/decompose), and the tiled
// product against the layer's own contraction on both kernel backends.
import t from 'tap';
import type { GraphNode, OpName } from '../../../runtime/ir.js';
import { numel } from '../../../runtime/ir.js';
import { prepareRebuild } from '../../../runtime/exec/rebuild.js';
import { prepareTiled, tileRowsFor } from '../../../runtime/exec/tiled.js';
import { referenceBackend, wasmBackend, hasWasmSimd, type KernelBackend } from '../../../runtime/kernels/backend.js';
import type { Weight } from '../../../runtime/layers/index.js';
import { contractRunner } from '../../../runtime/cost/autotune.js';

let seed = 777;
function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
}
function randArray(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand();
  return a;
}

interface Case {
  name: string;
  node: GraphNode;
  weights: Map<string, Weight>;
  /** The full dense weight, [rows, cols], by explicit sums. */
  full: Float64Array;
  rows: number;
  cols: number;
  input: number[];
}

function mk(op: OpName, ws: Record<string, number[]>, attrs: GraphNode['attrs'] = {}): { node: GraphNode; weights: Map<string, Weight> } {
  const weights = new Map<string, Weight>();
  const roles: Record<string, string> = {};
  for (const [role, shape] of Object.entries(ws)) {
    weights.set(role, { shape, data: randArray(numel(shape)) });
    roles[role] = role;
  }
  return { node: { name: `n_${op}`, op, inputs: ['x'], outputs: ['y'], attrs, weights: roles }, weights };
}

function svdCase(op: 'svd_dense' | 'svd_conv2d'): Case {
  const [O, r, I, kh, kw] = op === 'svd_dense' ? [13, 5, 21, 1, 1] : [9, 4, 3, 3, 2];
  const vShape = op === 'svd_dense' ? [r, I] : [r, I, kh, kw];
  const { node, weights } = mk(op, { u: [O, r], v: vShape, bias: [O] }, op === 'svd_conv2d' ? { pads: [1, 0, 1, 1] } : {});
  const cols = I * kh * kw;
  const u = weights.get('u')!.data;
  const v = weights.get('v')!.data;
  const full = new Float64Array(O * cols);
  for (let o = 0; o < O; o++) for (let c = 0; c < cols; c++) for (let k = 0; k < r; k++) full[o * cols + c]! += u[o * r + k]! * v[k * cols + c]!;
  return { name: op, node, weights, full, rows: O, cols, input: op === 'svd_dense' ? [I] : [I, 7, 6] };
}

function tucker2Case(): Case {
  const [O, I, r2, r1, kh, kw] = [10, 6, 4, 3, 3, 3];
  const { node, weights } = mk('tucker2_conv2d', { u_in: [r1, I], core: [r2, r1, kh, kw], u_out: [O, r2], bias: [O] }, { strides: [2, 1], pads: [1, 1, 1, 1] });
  const uIn = weights.get('u_in')!.data;
  const core = weights.get('core')!.data;
  const uOut = weights.get('u_out')!.data;
  const cols = I * kh * kw;
  const full = new Float64Array(O * cols);
  for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
    let s = 0;
    for (let b = 0; b < r2; b++) for (let a = 0; a < r1; a++) s += uOut[o * r2 + b]! * core[((b * r1 + a) * kh + y) * kw + x]! * uIn[a * I + i]!;
    full[o * cols + (i * kh + y) * kw + x] = s;
  }
  return { name: 'tucker2_conv2d', node, weights, full, rows: O, cols, input: [I, 8, 8] };
}

function cpCase(): Case {
  const [O, I, R, kh, kw] = [11, 5, 6, 3, 5];
  const { node, weights } = mk('cp_conv2d', { a_in: [R, I], k_h: [R, kh], k_w: [R, kw], a_out: [O, R], bias: [O] }, { pads: [1, 2, 1, 2] });
  const aIn = weights.get('a_in')!.data;
  const kH = weights.get('k_h')!.data;
  const kW = weights.get('k_w')!.data;
  const aOut = weights.get('a_out')!.data;
  const cols = I * kh * kw;
  const full = new Float64Array(O * cols);
  for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
    let s = 0;
    for (let r = 0; r < R; r++) s += aOut[o * R + r]! * aIn[r * I + i]! * kH[r * kh + y]! * kW[r * kw + x]!;
    full[o * cols + (i * kh + y) * kw + x] = s;
  }
  return { name: 'cp_conv2d', node, weights, full, rows: O, cols, input: [I, 9, 9] };
}

/** TT / TR with d cores: W[(i..), (j..)] = trace(prod_k G_k[:, i_k, j_k, :]). */
function chainCase(op: 'tt_dense' | 'tr_dense', m: number[], n: number[], ranks: number[]): Case {
  const d = m.length;
  const ws: Record<string, number[]> = {};
  for (let k = 0; k < d; k++) ws[`core.${k}`] = [ranks[k]!, m[k]!, n[k]!, ranks[k + 1]!];
  const rows = numel(m);
  const cols = numel(n);
  ws['bias'] = [rows];
  const { node, weights } = mk(op, ws, { out_modes: m, in_modes: n });
  const full = new Float64Array(rows * cols);
  const di = new Array<number>(d);
  const dj = new Array<number>(d);
  for (let o = 0; o < rows; o++) {
    let rem = o;
    for (let k = d - 1; k >= 0; k--) { di[k] = rem % m[k]!; rem = Math.floor(rem / m[k]!); }
    for (let c = 0; c < cols; c++) {
      rem = c;
      for (let k = d - 1; k >= 0; k--) { dj[k] = rem % n[k]!; rem = Math.floor(rem / n[k]!); }
      // M = G_0[:, i0, j0, :] as an r0 x r1 matrix, times the following slices.
      let M: number[][] = [];
      for (let k = 0; k < d; k++) {
        const [ra, , , rb] = [ranks[k]!, m[k]!, n[k]!, ranks[k + 1]!];
        const g = weights.get(`core.${k}`)!.data;
        const S: number[][] = [];
        for (let a = 0; a < ra; a++) {
          S.push([]);
          for (let b = 0; b < rb; b++) S[a]!.push(g[((a * m[k]! + di[k]!) * n[k]! + dj[k]!) * rb + b]!);
        }
        if (k === 0) M = S;
        else M = M.map((row) => Array.from({ length: rb }, (_, b) => row.reduce((s, v, c) => s + v * S[c]![b]!, 0)));
      }
      let tr = 0;
      for (let a = 0; a < ranks[0]!; a++) tr += M[a]![a]!;
      full[o * cols + c] = tr;
    }
  }
  return { name: `${op} ${m}x${n} ranks ${ranks}`, node, weights, full, rows, cols, input: [cols] };
}

function ttlCase(m: number[], n: number[], r: number[]): Case {
  const p = m.length;
  const dims = [...m, ...n];
  const ws: Record<string, number[]> = { core: r };
  dims.forEach((dk, k) => (ws[`factor.${k}`] = [dk, r[k]!]));
  const rows = numel(m);
  const cols = numel(n);
  ws['bias'] = [rows];
  const { node, weights } = mk('ttl_dense', ws, { out_modes: m, in_modes: n });
  const core = weights.get('core')!.data;
  // Dense tensor [dims] = core x_k F_k, by iterating every (index, rank index) pair.
  const full = new Float64Array(rows * cols);
  const nd = dims.length;
  const R = numel(r);
  const ri = new Array<number>(nd);
  const xi = new Array<number>(nd);
  for (let flat = 0; flat < rows * cols; flat++) {
    let rem = flat;
    for (let k = nd - 1; k >= 0; k--) { xi[k] = rem % dims[k]!; rem = Math.floor(rem / dims[k]!); }
    let s = 0;
    for (let rf = 0; rf < R; rf++) {
      rem = rf;
      for (let k = nd - 1; k >= 0; k--) { ri[k] = rem % r[k]!; rem = Math.floor(rem / r[k]!); }
      let v = core[rf]!;
      for (let k = 0; k < nd; k++) v *= weights.get(`factor.${k}`)!.data[xi[k]! * r[k]! + ri[k]!]!;
      s += v;
    }
    full[flat] = s; // row-major [m.., n..] is exactly [rows, cols]
  }
  return { name: `ttl ${m}|${n} ranks ${r}`, node, weights, full, rows, cols, input: [cols] };
}

const CASES: Case[] = [
  svdCase('svd_dense'),
  svdCase('svd_conv2d'),
  tucker2Case(),
  cpCase(),
  chainCase('tt_dense', [4, 3, 2], [3, 5, 2], [1, 3, 4, 1]),
  chainCase('tt_dense', [6], [7], [1, 1]),
  chainCase('tt_dense', [4, 5], [6, 4], [1, 5, 1]),
  chainCase('tr_dense', [3, 4, 2], [2, 3, 4], [2, 3, 2, 2]),
  chainCase('tr_dense', [5], [4], [3, 3]),
  ttlCase([4, 3], [5, 3], [2, 3, 4, 2]),
  ttlCase([6], [2, 3, 4], [3, 2, 3, 2]),
  ttlCase([2, 3, 2], [7], [2, 2, 2, 3]),
];

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  let scale = 1e-9;
  for (let i = 0; i < n; i++) scale = Math.max(scale, Math.abs(b[i]!));
  let d = 0;
  for (let i = 0; i < n; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d / scale;
}

t.test('every factor kind rebuilds any row range of its weight', async (t) => {
  for (const c of CASES) {
    const rb = prepareRebuild(c.node, (role) => c.weights.get(role));
    t.equal(rb.rows, c.rows, `${c.name}: rows`);
    t.equal(rb.cols, c.cols, `${c.name}: cols`);
    const all = new Float32Array(c.rows * c.cols);
    rb.rowsInto(0, c.rows, all);
    t.ok(maxRel(all, c.full, all.length) < 1e-5, `${c.name}: all rows within 1e-5 (${maxRel(all, c.full, all.length).toExponential(2)})`);
    // Tiles out of order and of odd sizes, written at an offset: the prefix cache must not leak.
    const ranges: Array<[number, number]> = [[c.rows - 1, c.rows], [1, Math.min(c.rows, 4)], [0, 1], [Math.floor(c.rows / 2), c.rows], [2, 3]];
    for (const [a, b] of ranges) {
      if (a >= b) continue;
      const buf = new Float32Array(3 + (b - a) * c.cols + 2).fill(42);
      rb.rowsInto(a, b, buf, 3);
      const want = c.full.subarray(a * c.cols, b * c.cols);
      t.ok(maxRel(buf.subarray(3, 3 + (b - a) * c.cols), want, want.length) < 1e-5, `${c.name}: rows [${a}, ${b})`);
      t.equal(buf[2], 42, `${c.name}: nothing written before the offset`);
      t.equal(buf[buf.length - 1], 42, `${c.name}: nothing written after the tile`);
    }
    t.ok(rb.flops(0, c.rows) > 0, `${c.name}: positive rebuild FLOPs`);
  }
});

t.test('rebuild refuses bad ranges and non-factor kinds', async (t) => {
  const c = CASES[0]!;
  const rb = prepareRebuild(c.node, (role) => c.weights.get(role));
  t.throws(() => rb.rowsInto(0, c.rows + 1, new Float32Array((c.rows + 1) * c.cols)), /outside/);
  t.throws(() => rb.rowsInto(0, 2, new Float32Array(c.cols)), /does not fit/);
  t.throws(() => prepareRebuild({ ...c.node, op: 'dense' }, (role) => c.weights.get(role)), /not a factor kind/);
  t.throws(() => prepareRebuild(c.node, () => undefined), /missing weight/);
});

t.test('tile rows bound the scratch', async (t) => {
  t.equal(tileRowsFor(1024, 784), 20);
  t.equal(tileRowsFor(10, 784), 10);
  t.equal(tileRowsFor(500, 100000), 1);
  t.equal(tileRowsFor(120, 400, 64 * 1024), 40);
  for (const c of CASES) t.ok(tileRowsFor(c.rows, c.cols) * c.cols * 4 <= 64 * 1024 || tileRowsFor(c.rows, c.cols) === 1);
});

t.test('the tiled product equals the layer contraction on every backend', async (t) => {
  const backends: KernelBackend[] = [referenceBackend];
  if (hasWasmSimd()) backends.push(await wasmBackend());
  for (const kernels of backends) {
    for (const c of CASES) {
      const ctx = {
        kernels,
        retain: (d: Float32Array) => kernels.retain(d),
        optionalWeight: (role: string) => c.weights.get(role),
        weight: (role: string) => {
          const w = c.weights.get(role);
          if (!w) throw new Error(`missing ${role}`);
          return w;
        },
      };
      for (const batch of [1, 3]) {
        const shape = [batch, ...c.input];
        const x = { shape, data: randArray(numel(shape)) };
        for (const tileRows of [1, 4, 7, c.rows]) {
          const tiled = prepareTiled(c.node, ctx, tileRows);
          const yShape = tiled.outputShape(shape);
          const want = contractRunner(c.node, ctx, x, yShape)();
          const got = tiled.apply(x);
          t.same(got.shape, want.shape, `${kernels.name} ${c.name} batch ${batch} tile ${tileRows}: shape`);
          let e = maxRel(got.data, want.data, want.data.length);
          t.ok(e < 1e-4, `${kernels.name} ${c.name} batch ${batch} tile ${tileRows}: within 1e-4 (${e.toExponential(2)})`);
          // The in-place form with a caller's scratch gives the same.
          const y = { shape: yShape, data: new Float32Array(numel(yShape)).fill(NaN) };
          tiled.run(x, y, new Float32Array(tiled.scratchFloats(shape)));
          e = maxRel(y.data, want.data, want.data.length);
          t.ok(e < 1e-4, `${kernels.name} ${c.name} batch ${batch} tile ${tileRows}: into a given output`);
          t.throws(() => tiled.run(x, y, new Float32Array(tiled.scratchFloats(shape) - 1)), /scratch/);
        }
      }
    }
  }
});
