import t from 'tap';
import {
  chooseReshape, mulberry32, randomReshaped, reshapedShapes, type ReshapedMethod, normalSource, paramsRcp, paramsRtk, paramsRtr, paramsRtt, randomNormal,
  rcp, reconstructRcp, reconstructRtk, reconstructRtr, reconstructRtt, relativeError, reshapeKernel,
  reshapedDims, rtk, rtr, rtt, unreshapeKernel, type ReshapedLayout, type ReshapedResult,
} from '../../../converter/decompose/index.js';

const normal = normalSource(mulberry32(12));
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

// A small reference einsum: every label one character, sizes from `size`; the sum runs over every
// label of the inputs that is not in `out`. Naive (one loop over all labels), for tests only.
interface Operand { data: ArrayLike<number>; idx: string }
function einsum(inputs: readonly Operand[], out: string, size: Record<string, number>): Float64Array {
  const labels = [...new Set([...out, ...inputs.flatMap((o) => [...o.idx])])];
  const dims = labels.map((l) => size[l]!);
  const strideOf = (idx: string) => labels.map((l) => {
    const k = idx.indexOf(l);
    if (k < 0) return 0;
    let s = 1;
    for (const m of idx.slice(k + 1)) s *= size[m]!;
    return s;
  });
  for (const o of inputs) if (o.data.length !== numel([...o.idx].map((l) => size[l]!))) throw new Error(`einsum: ${o.idx} has ${o.data.length} values`);
  const strides = inputs.map((o) => strideOf(o.idx));
  const outStride = strideOf(out);
  const y = new Float64Array(numel([...out].map((l) => size[l]!)));
  const at = new Array<number>(labels.length).fill(0);
  for (let n = numel(dims), i = 0; i < n; i++) {
    let v = 1;
    inputs.forEach((o, k) => {
      let off = 0;
      for (let j = 0; j < labels.length; j++) off += at[j]! * strides[k]![j]!;
      v *= o.data[off]!;
    });
    let yo = 0;
    for (let j = 0; j < labels.length; j++) yo += at[j]! * outStride[j]!;
    y[yo]! += v;
    for (let j = labels.length - 1; j >= 0; j--) {
      if (++at[j]! < dims[j]!) break;
      at[j] = 0;
    }
  }
  return y;
}

// Labels for M = 2: t_1 a, t_2 b, s_1 c, s_2 d, kernel h w, output positions p q; ranks r (rcp)
// or x = R_0, y = R_1, z = R_2. The factor specs are the shapes issue 12 gives.
const SPECS: Record<string, { factors: string[]; core?: string; steps: [number | 'core', string][] }> = {
  rcp: { factors: ['rhw', 'rac', 'rbd'], steps: [[0, 'cdpqr'], [2, 'cpqrb'], [1, 'abpq']] },
  rtk: { factors: ['xhw', 'yac', 'zbd'], core: 'xyz', steps: [[0, 'cdpqx'], ['core', 'cdpqyz'], [2, 'cpqyb'], [1, 'abpq']] },
  rtt: { factors: ['zhw', 'yac', 'yzbd'], steps: [[0, 'cdpqz'], [2, 'cpqyb'], [1, 'abpq']] },
  rtr: { factors: ['zxhw', 'xyac', 'yzbd'], steps: [[0, 'cdpqzx'], [2, 'cpqxyb'], [1, 'abpq']] },
};

function sizes(layout: ReshapedLayout, ranks: readonly number[], method: string, hOut: number, wOut: number): Record<string, number> {
  const s: Record<string, number> = {
    a: layout.tModes[0]!, b: layout.tModes[1]!, c: layout.sModes[0]!, d: layout.sModes[1]!,
    h: layout.kh, w: layout.kw, p: hOut, q: wOut,
  };
  if (method === 'rcp') s.r = ranks[0]!;
  else if (method === 'rtt') Object.assign(s, { y: ranks[0]!, z: ranks[1]! });
  else Object.assign(s, { x: ranks[0]!, y: ranks[1]!, z: ranks[2]! });
  return s;
}

/** The kernel W [T, S, H, W] = einsum of the factors in the shapes (independent of tensorial.ts). */
function kernelByEinsum(method: string, factors: readonly ArrayLike<number>[], core: ArrayLike<number> | undefined, size: Record<string, number>): Float64Array {
  const spec = SPECS[method]!;
  const ops: Operand[] = factors.map((data, k) => ({ data, idx: spec.factors[k]! }));
  if (spec.core) ops.push({ data: core!, idx: spec.core });
  return einsum(ops, 'abcdhw', size);
}

/** Valid, stride-1 convolution y [T, P, Q] = Σ W[t, s, h, w] x[s, p+h, q+w]. */
function conv(w: ArrayLike<number>, x: ArrayLike<number>, T: number, S: number, kh: number, kw: number, hi: number, wi: number): Float64Array {
  const ho = hi - kh + 1;
  const wo = wi - kw + 1;
  const y = new Float64Array(T * ho * wo);
  for (let o = 0; o < T; o++)
    for (let p = 0; p < ho; p++)
      for (let q = 0; q < wo; q++) {
        let acc = 0;
        for (let s = 0; s < S; s++)
          for (let i = 0; i < kh; i++)
            for (let j = 0; j < kw; j++) acc += w[((o * S + s) * kh + i) * kw + j]! * x[(s * hi + p + i) * wi + q + j]!;
        y[(o * ho + p) * wo + q] = acc;
      }
  return y;
}

/** Random factors in the stored shapes, for a kernel of known rank. */
function randomFactors(method: string, layout: ReshapedLayout, ranks: number[]): { factors: Float64Array[]; core?: Float64Array } {
  const M = layout.tModes.length;
  const hw = layout.kh * layout.kw;
  const ts = (m: number) => layout.tModes[m - 1]! * layout.sModes[m - 1]!;
  const rnd = (n: number) => randomNormal(normal, n);
  if (method === 'rcp') return { factors: [rnd(ranks[0]! * hw), ...Array.from({ length: M }, (_, k) => rnd(ranks[0]! * ts(k + 1)))] };
  if (method === 'rtk')
    return { factors: [rnd(ranks[0]! * hw), ...Array.from({ length: M }, (_, k) => rnd(ranks[k + 1]! * ts(k + 1)))], core: rnd(numel(ranks)) };
  const chain = method === 'rtt' ? [1, ...ranks, 1] : [...ranks, ranks[0]!];
  return { factors: [rnd(chain[M]! * chain[M + 1]! * hw), ...Array.from({ length: M }, (_, k) => rnd(chain[k]! * chain[k + 1]! * ts(k + 1)))] };
}

function rebuild(method: string, layout: ReshapedLayout, ranks: readonly number[], factors: readonly ArrayLike<number>[], core?: ArrayLike<number>): Float64Array {
  if (method === 'rcp') return reconstructRcp(factors, layout, ranks[0]!);
  if (method === 'rtk') return reconstructRtk(factors, core!, layout, ranks);
  if (method === 'rtt') return reconstructRtt(factors, layout, ranks);
  return reconstructRtr(factors, layout, ranks);
}

function decompose(method: string, w: Float32Array | Float64Array, layout: ReshapedLayout, ranks: number[]): ReshapedResult {
  if (method === 'rcp') return rcp(w, layout, ranks[0]!, { restarts: 4, iters: 3000, tol: 0 });
  if (method === 'rtk') return rtk(w, layout, ranks);
  if (method === 'rtt') return rtt(w, layout, { ranks });
  return rtr(w, layout, { ranks, tol: 0 });
}

function params(method: string, layout: ReshapedLayout, ranks: readonly number[]): number {
  if (method === 'rcp') return paramsRcp(layout, ranks[0]!);
  if (method === 'rtk') return paramsRtk(layout, ranks);
  if (method === 'rtt') return paramsRtt(layout, ranks);
  return paramsRtr(layout, ranks);
}

t.test('reshape: X[(t_1 s_1), (t_2 s_2), (h w)] = W[t, s, h, w], and back', async (t) => {
  const layout: ReshapedLayout = { tModes: [2, 3], sModes: [4, 2], kh: 3, kw: 2 };
  const w = randomNormal(normal, 6 * 8 * 6);
  const x = reshapeKernel(w, layout);
  t.same(reshapedDims(layout), [8, 6, 6]);
  let worst = 0;
  for (let t1 = 0; t1 < 2; t1++)
    for (let t2 = 0; t2 < 3; t2++)
      for (let s1 = 0; s1 < 4; s1++)
        for (let s2 = 0; s2 < 2; s2++)
          for (let k = 0; k < 6; k++) {
            const got = x[((t1 * 4 + s1) * 6 + (t2 * 2 + s2)) * 6 + k]!;
            worst = Math.max(worst, Math.abs(got - w[((t1 * 3 + t2) * 8 + s1 * 2 + s2) * 6 + k]!));
          }
  t.equal(worst, 0);
  t.same(Array.from(unreshapeKernel(x, layout)), Array.from(w));
  t.throws(() => reshapeKernel(w.subarray(1), layout), /kernel length 287 != T·S·H·W = 288/);
  t.throws(() => reshapeKernel(w, { ...layout, sModes: [8] }), /equal length/);
});

t.test('chooseReshape: T = Π T_m, S = Π S_m, products balanced', async (t) => {
  const l = chooseReshape(64, 32, 3, 3);
  t.equal(numel(l.tModes), 64);
  t.equal(numel(l.sModes), 32);
  t.equal(l.tModes.length, 4, 'M = 4 when every T_m S_m ≥ 4');
  t.ok(l.tModes.every((x, k) => x * l.sModes[k]! >= 4));
  t.same(chooseReshape(10, 6, 1, 1, 2), { tModes: [2, 5], sModes: [3, 2], kh: 1, kw: 1 });
  t.same(chooseReshape(7, 5).tModes, [7], 'primes keep M = 1');
  t.same(chooseReshape(1024, 784).tModes.length, 4);
  t.throws(() => chooseReshape(8, 8, 1, 1, 0), /order must be a positive integer/);
});

t.test('parameter counts match the formulas worked by hand', async (t) => {
  const l: ReshapedLayout = { tModes: [2, 3], sModes: [2, 2], kh: 3, kw: 3 };
  t.equal(paramsRcp(l, 3), 3 * (4 + 6 + 9));
  t.equal(paramsRtk(l, [3, 2, 3]), 3 * 9 + 2 * 4 + 3 * 6 + 3 * 2 * 3);
  t.equal(paramsRtt(l, [3, 4]), 3 * 4 + 3 * 4 * 6 + 4 * 9);
  t.equal(paramsRtr(l, [2, 2, 3]), 2 * 2 * 4 + 2 * 3 * 6 + 3 * 2 * 9);
  // Dense FC-2 hidden layer 1024 x 784 reshaped M = 4 at R = 4: a few hundred parameters.
  const fc = chooseReshape(1024, 784);
  t.equal(paramsRcp(fc, 4), 4 * (reshapedDims(fc).reduce((a, b) => a + b, 0)));
});

// Known-rank kernels of several layouts: conv and dense, M = 1, 2, 3.
const CASES: { name: string; layout: ReshapedLayout; ranks: Record<string, number[]> }[] = [
  {
    name: 'conv M=2', layout: { tModes: [2, 3], sModes: [2, 2], kh: 3, kw: 3 },
    ranks: { rcp: [3], rtk: [3, 2, 3], rtt: [3, 4], rtr: [2, 2, 3] },
  },
  {
    name: 'dense M=2', layout: { tModes: [3, 4], sModes: [4, 2], kh: 1, kw: 1 },
    ranks: { rcp: [3], rtk: [1, 3, 4], rtt: [4, 1], rtr: [2, 3, 2] },
  },
  {
    name: 'conv M=1', layout: { tModes: [4], sModes: [3], kh: 2, kw: 2 },
    ranks: { rcp: [2], rtk: [3, 2], rtt: [3], rtr: [2, 2] },
  },
  {
    name: 'dense M=3', layout: { tModes: [2, 2, 3], sModes: [3, 2, 2], kh: 1, kw: 1 },
    ranks: { rcp: [3], rtk: [1, 2, 3, 3], rtt: [3, 4, 1], rtr: [2, 3, 2, 2] },
  },
];

for (const method of ['rcp', 'rtk', 'rtt', 'rtr']) {
  t.test(`${method}: exact recovery of a kernel built to a known rank, f64 and f32`, async (t) => {
    for (const c of CASES) {
      const ranks = c.ranks[method]!;
      const { factors, core } = randomFactors(method, c.layout, ranks);
      const w = rebuild(method, c.layout, ranks, factors, core);
      for (const input of [w, Float32Array.from(w)]) {
        const res = decompose(method, input, c.layout, ranks);
        const tag = `${c.name} ${input instanceof Float32Array ? 'f32' : 'f64'}`;
        t.same(res.ranks, ranks, `${tag}: ranks`);
        t.ok(res.relError < 1e-5, `${tag}: relError ${res.relError.toExponential(2)}`);
        t.ok(relativeError(w, rebuild(method, c.layout, res.ranks, res.factors, res.core)) < 1e-5, `${tag}: rebuilt`);
        t.same(res.factors.map((f) => f.length), res.shapes.map(numel), `${tag}: factors fill their shapes`);
        const stored = res.factors.reduce((a, f) => a + f.length, 0) + (res.core?.length ?? 0);
        t.equal(stored, params(method, c.layout, res.ranks), `${tag}: stored values = params formula`);
      }
    }
  });
}

t.test('factor shapes are the ones issue 12 gives', async (t) => {
  const l: ReshapedLayout = { tModes: [2, 3], sModes: [2, 2], kh: 3, kw: 3 };
  const w = randomNormal(normal, 6 * 4 * 9);
  t.same(rcp(w, l, 3).shapes, [[3, 3, 3], [3, 2, 2], [3, 3, 2]]);
  t.same(rtk(w, l, [3, 2, 3]).shapes, [[3, 3, 3], [2, 2, 2], [3, 3, 2]]);
  t.same(rtk(w, l, [3, 2, 3]).core!.length, 18);
  t.same(rtt(w, l, { ranks: [3, 4] }).shapes, [[4, 3, 3], [3, 2, 2], [3, 4, 3, 2]]);
  t.same(rtr(w, l, { ranks: [2, 2, 3], alsSweeps: 0 }).shapes, [[3, 2, 3, 3], [2, 2, 2, 2], [2, 3, 3, 2]]);
  t.throws(() => rtk(w, l, [3, 2]), /rtk: 2 ranks for M = 2/);
  t.throws(() => rtt(w, l, { ranks: [3] }), /rtt: 1 ranks for M = 2/);
  t.throws(() => rtr(w, l, { ranks: [3, 3] }), /rtr: 2 ranks for M = 2/);
});

t.test('truncation: a lower rank gives a larger error, never above 1, and the full ranks are exact', async (t) => {
  const l: ReshapedLayout = { tModes: [2, 3], sModes: [2, 2], kh: 3, kw: 3 };
  const w = randomNormal(normal, 6 * 4 * 9);
  const low = rtt(w, l, { ranks: [2, 2] });
  const full = rtt(w, l, {});
  t.ok(low.relError > 0.1 && low.relError < 1, `rtt [2, 2]: ${low.relError}`);
  t.ok(full.relError < 1e-6, `rtt full ranks ${full.ranks}: ${full.relError}`);
  const eps = rtt(w, l, { eps: 0.3 });
  t.ok(eps.relError <= 0.3, `rtt eps 0.3: ${eps.relError}`);
  const tk = rtk(w, l, [9, 4, 6]);
  t.ok(tk.relError < 1e-6, `rtk full ranks: ${tk.relError}`);
  t.ok(rtk(w, l, [2, 2, 2]).relError > tk.relError);
});

// The forward pass as pairwise contractions of the factors with the reshaped input patches, never
// forming W, against the convolution with the rebuilt kernel and with the original one.
for (const method of ['rcp', 'rtk', 'rtt', 'rtr']) {
  t.test(`${method}: contracting the factors with the input = convolution with the kernel`, async (t) => {
    for (const c of CASES.filter((k) => k.layout.tModes.length === 2)) {
      const { layout } = c;
      const ranks = c.ranks[method]!;
      const { factors, core } = randomFactors(method, layout, ranks);
      const w = rebuild(method, layout, ranks, factors, core);
      const res = decompose(method, w, layout, ranks);
      const T = numel(layout.tModes);
      const S = numel(layout.sModes);
      const [hi, wi] = [layout.kh + 3, layout.kw + 2];
      const [ho, wo] = [hi - layout.kh + 1, wi - layout.kw + 1];
      const size = sizes(layout, res.ranks, method, ho, wo);
      // The rebuilt layout is the issue's: the einsum of the factors is the kernel.
      t.ok(relativeError(w, kernelByEinsum(method, factors, core, size)) < 1e-12, `${c.name}: einsum kernel = reconstruct`);
      const x = randomNormal(normal, S * hi * wi);
      // Patches P[s_1, s_2, h, w, p, q] = x[s, p + h, q + w].
      const patches = new Float64Array(S * layout.kh * layout.kw * ho * wo);
      for (let s = 0; s < S; s++)
        for (let i = 0; i < layout.kh; i++)
          for (let j = 0; j < layout.kw; j++)
            for (let p = 0; p < ho; p++)
              for (let q = 0; q < wo; q++) patches[((((s * layout.kh + i) * layout.kw + j) * ho + p) * wo) + q] = x[(s * hi + p + i) * wi + q + j]!;
      let cur: Operand = { data: patches, idx: 'cdhwpq' };
      for (const [which, out] of SPECS[method]!.steps) {
        const op: Operand = which === 'core'
          ? { data: res.core!, idx: SPECS[method]!.core! }
          : { data: res.factors[which]!, idx: SPECS[method]!.factors[which]! };
        cur = { data: einsum([cur, op], out, size), idx: out };
      }
      const want = conv(w, x, T, S, layout.kh, layout.kw, hi, wi);
      const rebuilt = conv(rebuild(method, layout, res.ranks, res.factors, res.core), x, T, S, layout.kh, layout.kw, hi, wi);
      t.ok(relativeError(rebuilt, cur.data) < 1e-10, `${c.name}: contractions = conv with the rebuilt kernel`);
      t.ok(relativeError(want, cur.data) < 1e-5, `${c.name}: = conv with the original kernel (${relativeError(want, cur.data).toExponential(2)})`);
    }
  });
}

t.test('reshapedShapes agree with the decompositions; randomReshaped has the target variance', async (t) => {
  for (const c of CASES)
    for (const method of ['rcp', 'rtk', 'rtt', 'rtr'] as ReshapedMethod[]) {
      const ranks = c.ranks[method]!;
      const { factors, core } = randomFactors(method, c.layout, ranks);
      const res = decompose(method, Float32Array.from(rebuild(method, c.layout, ranks, factors, core)), c.layout, ranks);
      const want = reshapedShapes(method, c.layout, ranks);
      t.same(want.shapes, res.shapes, `${c.name} ${method}: shapes`);
      if (method === 'rtk') t.same(want.coreShape, ranks, `${c.name} rtk: core shape`);
    }
  t.throws(() => reshapedShapes('rtt', CASES[0]!.layout, [2, 2, 2]), /rtt: 3 ranks for M = 2 \(want 2\)/);
  t.throws(() => randomReshaped('rcp', CASES[0]!.layout, [2], -1), /std must be ≥ 0/);
  // Variance of the rebuilt kernel over many seeds (entries share factors, so one draw is noisy).
  const layout: ReshapedLayout = { tModes: [4, 4], sModes: [4, 2], kh: 3, kw: 3 };
  const std = 0.05;
  for (const [method, ranks] of [['rcp', [6]], ['rtk', [3, 4, 5]], ['rtt', [4, 3]], ['rtr', [2, 3, 4]]] as [ReshapedMethod, number[]][]) {
    let sq = 0;
    let sum = 0;
    let n = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const f = randomReshaped(method, layout, ranks, std, seed);
      if (seed === 1) t.equal(f.factors.reduce((a, x) => a + x.length, 0) + (f.core?.length ?? 0), params(method, layout, ranks), `${method}: params`);
      const w = rebuild(method, layout, ranks, f.factors, f.core);
      for (const v of w) {
        sq += v * v;
        sum += v;
      }
      n += w.length;
    }
    const variance = sq / n;
    t.ok(Math.abs(variance / (std * std) - 1) < 0.15, `${method}: variance ${variance.toExponential(3)} vs ${(std * std).toExponential(3)}`);
    t.ok(Math.abs(sum / n) < 0.1 * std, `${method}: mean ${(sum / n).toExponential(2)}`);
  }
});
