// Every factor layer kind against the dense layer it stands for. The dense weight is rebuilt here,
// in the test, by explicit sums over the factor indices, and run through the dense kinds.
import t from 'tap';
import type { GraphNode, Model, OpName, StoredTensor, Tensor } from '../../runtime/ir.js';
import { numel } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';

let seed = 12345;
function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
}
function randArray(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand();
  return a;
}
function stored(name: string, shape: number[], data?: Float32Array): StoredTensor {
  return { name, dtype: 'f32', shape, data: data ?? randArray(numel(shape)) };
}

function single(op: OpName, tensors: StoredTensor[], attrs: GraphNode['attrs'], inputShape: number[], roles: string[]): Model {
  const weights: Record<string, string> = {};
  roles.forEach((r, i) => (weights[r] = tensors[i]!.name));
  return {
    graph: {
      inputs: [{ name: 'x', shape: inputShape.map((d, i) => (i === 0 ? -1 : d)) }],
      outputs: ['y'],
      nodes: [{ name: 'n', op, inputs: ['x'], outputs: ['y'], attrs, weights }],
    },
    tensors: new Map(tensors.map((s) => [s.name, s])),
    metadata: {},
  };
}

function run(model: Model, x: Tensor): Tensor {
  return Session.create(model).runBatch(x);
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let scale = 1e-6;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d / scale;
}

const TOL = 1e-5;

t.test('svd_dense equals dense u·v', async (t) => {
  const [out, r, inF] = [7, 3, 11];
  const u = stored('u', [out, r]);
  const v = stored('v', [r, inF]);
  const b = stored('b', [out]);
  const w = new Float32Array(out * inF);
  for (let o = 0; o < out; o++) for (let i = 0; i < inF; i++) for (let k = 0; k < r; k++) w[o * inF + i]! += u.data[o * r + k]! * v.data[k * inF + i]!;
  const x = { shape: [4, inF], data: randArray(4 * inF) };
  const yf = run(single('svd_dense', [u, v, b], {}, [4, inF], ['u', 'v', 'bias']), x);
  const yd = run(single('dense', [stored('w', [out, inF], w), b], {}, [4, inF], ['weight', 'bias']), x);
  t.same(yf.shape, [4, out]);
  t.ok(maxRelDiff(yf.data, yd.data) < TOL);
});

const convAttrs = { strides: [2, 1], pads: [1, 2, 0, 1], dilations: [1, 2], group: 1 };

t.test('svd_conv2d equals the conv of u·v', async (t) => {
  const [O, I, kh, kw, r] = [5, 3, 3, 2, 2];
  const v = stored('v', [r, I, kh, kw]);
  const u = stored('u', [O, r]);
  const b = stored('b', [O]);
  const K = I * kh * kw;
  const w = new Float32Array(O * K);
  for (let o = 0; o < O; o++) for (let c = 0; c < K; c++) for (let k = 0; k < r; k++) w[o * K + c]! += u.data[o * r + k]! * v.data[k * K + c]!;
  const x = { shape: [2, I, 9, 8], data: randArray(2 * I * 72) };
  const yf = run(single('svd_conv2d', [v, u, b], convAttrs, x.shape, ['v', 'u', 'bias']), x);
  const yd = run(single('conv2d', [stored('w', [O, I, kh, kw], w), b], convAttrs, x.shape, ['weight', 'bias']), x);
  t.same(yf.shape, yd.shape);
  t.ok(maxRelDiff(yf.data, yd.data) < TOL);
});

t.test('tucker2_conv2d equals the conv of its reconstruction', async (t) => {
  const [O, I, kh, kw, r1, r2] = [6, 4, 3, 3, 2, 3];
  const uIn = stored('ui', [r1, I]);
  const core = stored('c', [r2, r1, kh, kw]);
  const uOut = stored('uo', [O, r2]);
  const w = new Float32Array(O * I * kh * kw);
  for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
    let s = 0;
    for (let b = 0; b < r2; b++) for (let a = 0; a < r1; a++) s += uOut.data[o * r2 + b]! * core.data[((b * r1 + a) * kh + y) * kw + x]! * uIn.data[a * I + i]!;
    w[((o * I + i) * kh + y) * kw + x] = s;
  }
  const x = { shape: [2, I, 7, 7], data: randArray(2 * I * 49) };
  const yf = run(single('tucker2_conv2d', [uIn, core, uOut], convAttrs, x.shape, ['u_in', 'core', 'u_out']), x);
  const yd = run(single('conv2d', [stored('w', [O, I, kh, kw], w)], convAttrs, x.shape, ['weight']), x);
  t.same(yf.shape, yd.shape);
  t.ok(maxRelDiff(yf.data, yd.data) < TOL);
});

t.test('cp_conv2d (CPAC-Conv chain) equals the conv of the CP kernel', async (t) => {
  const [O, I, kh, kw, R] = [5, 3, 3, 4, 4];
  const aIn = stored('ai', [R, I]);
  const kH = stored('kh', [R, kh]);
  const kW = stored('kw', [R, kw]);
  const aOut = stored('ao', [O, R]);
  const b = stored('b', [O]);
  const w = new Float32Array(O * I * kh * kw);
  for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
    let s = 0;
    for (let r = 0; r < R; r++) s += aOut.data[o * R + r]! * aIn.data[r * I + i]! * kH.data[r * kh + y]! * kW.data[r * kw + x]!;
    w[((o * I + i) * kh + y) * kw + x] = s;
  }
  for (const attrs of [convAttrs, { strides: [1, 2], pads: [2, 0, 1, 3], dilations: [2, 1], group: 1 }]) {
    const x = { shape: [3, I, 10, 9], data: randArray(3 * I * 90) };
    const yf = run(single('cp_conv2d', [aIn, kH, kW, aOut, b], attrs, x.shape, ['a_in', 'k_h', 'k_w', 'a_out', 'bias']), x);
    const yd = run(single('conv2d', [stored('w', [O, I, kh, kw], w), b], attrs, x.shape, ['weight', 'bias']), x);
    t.same(yf.shape, yd.shape);
    t.ok(maxRelDiff(yf.data, yd.data) < TOL, `attrs ${JSON.stringify(attrs)}`);
  }
});

/** W[i, j] for a chain of cores [r_k, m_k, n_k, r_{k+1}], closing with a trace (ring) or r=1 (train). */
function chainWeight(cores: StoredTensor[], m: number[], n: number[]): Float32Array {
  const out = numel(m);
  const inF = numel(n);
  const w = new Float32Array(out * inF);
  const r0 = cores[0]!.shape[0]!;
  for (let i = 0; i < out; i++) {
    for (let j = 0; j < inF; j++) {
      // digits of i and j, row-major
      const id: number[] = [];
      const jd: number[] = [];
      let ri = i;
      let rj = j;
      for (let k = m.length - 1; k >= 0; k--) {
        id[k] = ri % m[k]!;
        ri = Math.floor(ri / m[k]!);
        jd[k] = rj % n[k]!;
        rj = Math.floor(rj / n[k]!);
      }
      let total = 0;
      for (let a0 = 0; a0 < r0; a0++) {
        let vec = new Float64Array(r0);
        vec[a0] = 1;
        cores.forEach((c, k) => {
          const [ra, mk, nk, rb] = c.shape as [number, number, number, number];
          const next = new Float64Array(rb);
          for (let a = 0; a < ra; a++) for (let b = 0; b < rb; b++) next[b]! += vec[a]! * c.data[((a * mk + id[k]!) * nk + jd[k]!) * rb + b]!;
          vec = next;
        });
        total += vec[a0]!;
      }
      w[i * inF + j] = total;
    }
  }
  return w;
}

for (const [op, ranks] of [['tt_dense', [1, 3, 2, 1]], ['tr_dense', [2, 3, 2, 2]]] as const) {
  t.test(`${op} equals dense with the ${op === 'tt_dense' ? 'train' : 'ring'} product`, async (t) => {
    const m = [2, 3, 2];
    const n = [3, 2, 4];
    const cores = m.map((mk, k) => stored(`core${k}`, [ranks[k]!, mk, n[k]!, ranks[k + 1]!]));
    const b = stored('b', [numel(m)]);
    const w = chainWeight(cores, m, n);
    const x = { shape: [5, numel(n)], data: randArray(5 * numel(n)) };
    const roles = [...cores.map((_, k) => `core.${k}`), 'bias'];
    const yf = run(single(op, [...cores, b], { out_modes: m, in_modes: n }, x.shape, roles), x);
    const yd = run(single('dense', [stored('w', [numel(m), numel(n)], w), b], {}, x.shape, ['weight', 'bias']), x);
    t.same(yf.shape, [5, numel(m)]);
    t.ok(maxRelDiff(yf.data, yd.data) < TOL);
  });
}

t.test('ttl_dense equals dense with the Tucker reconstruction', async (t) => {
  const m = [2, 3];
  const n = [4, 2, 3];
  const dims = [...m, ...n];
  const ranks = [2, 2, 3, 1, 2];
  const core = stored('core', ranks);
  const factors = dims.map((d, k) => stored(`f${k}`, [d, ranks[k]!]));
  const out = numel(m);
  const inF = numel(n);
  const w = new Float32Array(out * inF);
  const nR = numel(ranks);
  // W[idx] = sum_r core[r] prod_k factor_k[idx_k, r_k]
  for (let lin = 0; lin < out * inF; lin++) {
    const idx: number[] = [];
    let rem = lin;
    for (let k = dims.length - 1; k >= 0; k--) {
      idx[k] = rem % dims[k]!;
      rem = Math.floor(rem / dims[k]!);
    }
    let s = 0;
    for (let rl = 0; rl < nR; rl++) {
      let rr = rl;
      let p = core.data[rl]!;
      for (let k = dims.length - 1; k >= 0; k--) {
        const rk = rr % ranks[k]!;
        rr = Math.floor(rr / ranks[k]!);
        p *= factors[k]!.data[idx[k]! * ranks[k]! + rk]!;
      }
      s += p;
    }
    w[lin] = s;
  }
  const x = { shape: [3, inF], data: randArray(3 * inF) };
  const roles = ['core', ...factors.map((_, k) => `factor.${k}`)];
  const yf = run(single('ttl_dense', [core, ...factors], { out_modes: m, in_modes: n }, x.shape, roles), x);
  const yd = run(single('dense', [stored('w', [out, inF], w)], {}, x.shape, ['weight']), x);
  t.ok(maxRelDiff(yf.data, yd.data) < TOL);
});

t.test('a factor layer with a wrong factor shape is rejected at prepare', async (t) => {
  const u = stored('u', [4, 2]);
  const v = stored('v', [3, 5]);
  t.throws(() => Session.create(single('svd_dense', [u, v], {}, [1, 5], ['u', 'v'])), { code: 'LAYER_INVALID' });
});
