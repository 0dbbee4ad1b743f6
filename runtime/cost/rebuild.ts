// Row-tile weight rebuild: for every factor layer kind, write rows [r0, r1) of the layer's dense
// weight from the factors only, so that a layer can rebuild its weight one tile at a time into a
// bounded scratch buffer and multiply, instead of contracting the input through the factors.
//
// Rows are outputs: dense kinds give W [out, in]; conv kinds give W [O, I*kh*kw] (the row-major
// unfolding of [O, I, kh, kw]). The full weight never exists: a rebuilder holds only small,
// fixed work buffers (listed by `scratchFloats`), and reuses partial products between consecutive
// rows where they share a prefix of the output index (TT / TR / TTL). The products run on the
// session's kernels (GEMM calls on factor slices), so the rebuild is as fast as the GEMM.
import { attrInts, numel, type GraphNode, type OpName } from '../ir.js';
import { referenceBackend, type KernelBackend } from '../kernels/backend.js';
import type { Weight } from '../layers/kind.js';

export type WeightLookup = (role: string) => Weight | undefined;

export class RebuildError extends Error {
  readonly code = 'REBUILD_INVALID';
  constructor(node: GraphNode, message: string) {
    super(`rebuild ${node.name} (${node.op}): ${message}`);
  }
}

/** A group of identical calls: `calls` GEMMs with `m` output rows (m 0: plain TypeScript loops). */
export interface RebuildWork {
  what: string;
  flops: number;
  calls: number;
  m: number;
}

export interface Rebuilder {
  readonly op: OpName;
  /** Rows of the dense weight (outputs / output channels). */
  readonly rows: number;
  /** Columns (inputs, or I*kh*kw for a conv). */
  readonly cols: number;
  /** Floats of work memory the rebuilder itself holds (besides the caller's tile). */
  readonly scratchFloats: number;
  /** FLOPs (a multiply-add counts 2) to rebuild rows [r0, r1) from a cold start. */
  flops(r0: number, r1: number): number;
  /** The work of rows [r0, r1) from a cold start, by kind of call (the cost model prices each). */
  work(r0: number, r1: number): RebuildWork[];
  /** Writes rows [r0, r1) as (r1 - r0) x cols floats at out[outOffset ..]. */
  rowsInto(r0: number, r1: number, out: Float32Array, outOffset?: number): void;
}

/** The kinds a rebuilder exists for: every factor kind of runtime/ir.ts. */
export const REBUILD_OPS: readonly OpName[] = ['svd_dense', 'svd_conv2d', 'tucker2_conv2d', 'cp_conv2d', 'tt_dense', 'tr_dense', 'ttl_dense'];

function need(node: GraphNode, weight: WeightLookup, role: string, dims: number): Weight {
  const w = weight(role);
  if (!w) throw new RebuildError(node, `missing weight ${role}`);
  if (w.shape.length !== dims) throw new RebuildError(node, `${role} has shape [${w.shape}], expected ${dims}-D`);
  if (w.data.length < numel(w.shape)) throw new RebuildError(node, `${role} holds ${w.data.length} values for shape [${w.shape}]`);
  return w;
}

function checkRange(b: { rows: number }, r0: number, r1: number, out: Float32Array, offset: number, cols: number): void {
  if (!(Number.isInteger(r0) && Number.isInteger(r1) && r0 >= 0 && r0 <= r1 && r1 <= b.rows)) {
    throw new RangeError(`rows [${r0}, ${r1}) outside [0, ${b.rows})`);
  }
  if (offset < 0 || offset + (r1 - r0) * cols > out.length) throw new RangeError(`tile of ${(r1 - r0) * cols} floats does not fit at ${offset} in ${out.length}`);
}

function sumFlops(w: RebuildWork[]): number {
  return w.reduce((s, x) => s + x.flops, 0);
}

/** Distinct prefixes of length k+1 (digits i_0..i_k, `stride` rows each) among rows [r0, r1). */
function distinct(r0: number, r1: number, stride: number): number {
  return r1 > r0 ? Math.floor((r1 - 1) / stride) - Math.floor(r0 / stride) + 1 : 0;
}

/** W = u v: rows [r0, r1) = u[r0:r1] v, one GEMM. Serves svd_dense (v [r, in]) and svd_conv2d (v [r, I, kh, kw]). */
function svdRebuilder(node: GraphNode, weight: WeightLookup, k: KernelBackend): Rebuilder {
  const u = need(node, weight, 'u', 2);
  const v = weight('v');
  if (!v || v.shape.length < 2) throw new RebuildError(node, 'missing or malformed v');
  const [rows, r] = u.shape as [number, number];
  if (v.shape[0] !== r) throw new RebuildError(node, `v has ${v.shape[0]} rows, u has rank ${r}`);
  const cols = numel(v.shape.slice(1));
  const work = (r0: number, r1: number): RebuildWork[] => [{ what: 'u v', flops: 2 * (r1 - r0) * r * cols, calls: r1 > r0 ? 1 : 0, m: r1 - r0 }];
  return {
    op: node.op, rows, cols, scratchFloats: 0, work,
    flops: (a, b) => sumFlops(work(a, b)),
    rowsInto(r0, r1, out, off = 0) {
      checkRange(this, r0, r1, out, off, cols);
      if (r1 > r0) k.gemmNN(u.data, v.data, r1 - r0, cols, r, out, r0 * r, 0, off);
    },
  };
}

/**
 * W[o, i, y, x] = sum_b u_out[o, b] sum_a core[b, a, y, x] u_in[a, i]. A chunk of rows first gives
 * T = u_out[chunk] core ([rows, r1 * kh * kw], one GEMM), then each row is u_in^T T[o] ([I, kh * kw]).
 */
function tucker2Rebuilder(node: GraphNode, weight: WeightLookup, k: KernelBackend): Rebuilder {
  const uIn = need(node, weight, 'u_in', 2);
  const core = need(node, weight, 'core', 4);
  const uOut = need(node, weight, 'u_out', 2);
  const [r1, I] = uIn.shape as [number, number];
  const [r2, c1, kh, kw] = core.shape as [number, number, number, number];
  const [O, c2] = uOut.shape as [number, number];
  if (c1 !== r1 || c2 !== r2) throw new RebuildError(node, `core [${core.shape}] does not match u_in [${uIn.shape}] and u_out [${uOut.shape}]`);
  const S = kh * kw;
  const cols = I * S;
  // T for a chunk of rows, at most 4096 floats (16 KiB).
  const chunk = Math.max(1, Math.min(O, Math.floor(4096 / (r1 * S))));
  const t = new Float32Array(chunk * r1 * S);
  const work = (a: number, b: number): RebuildWork[] => {
    const n = b - a;
    return [
      { what: 'u_out core', flops: 2 * n * r2 * r1 * S, calls: Math.ceil(n / chunk), m: Math.min(chunk, n) },
      { what: 'u_in^T t', flops: 2 * n * I * r1 * S, calls: n, m: I },
    ];
  };
  return {
    op: node.op, rows: O, cols, scratchFloats: t.length, work,
    flops: (a, b) => sumFlops(work(a, b)),
    rowsInto(ra, rb, out, off = 0) {
      checkRange(this, ra, rb, out, off, cols);
      for (let c0 = ra; c0 < rb; c0 += chunk) {
        const c1 = Math.min(rb, c0 + chunk);
        k.gemmNN(uOut.data, core.data, c1 - c0, r1 * S, r2, t, c0 * r2, 0, 0);
        for (let o = c0; o < c1; o++) k.gemmTN(uIn.data, t, I, S, r1, out, 0, (o - c0) * r1 * S, off + (o - ra) * cols);
      }
    },
  };
}

/**
 * W[o, i, y, x] = sum_r a_out[o, r] a_in[r, i] k_h[r, y] k_w[r, x]. k_h k_w is formed once
 * (hw [R, kh * kw]); each row scales a_in by a_out[o] (A [R, I]) and is A^T hw, one GEMM.
 */
function cpRebuilder(node: GraphNode, weight: WeightLookup, k: KernelBackend): Rebuilder {
  const aIn = need(node, weight, 'a_in', 2);
  const kH = need(node, weight, 'k_h', 2);
  const kW = need(node, weight, 'k_w', 2);
  const aOut = need(node, weight, 'a_out', 2);
  const [R, I] = aIn.shape as [number, number];
  const kh = kH.shape[1]!;
  const kw = kW.shape[1]!;
  const O = aOut.shape[0]!;
  if (kH.shape[0] !== R || kW.shape[0] !== R || aOut.shape[1] !== R) throw new RebuildError(node, 'CP factors disagree on the rank');
  const S = kh * kw;
  const hw = new Float32Array(R * S);
  for (let r = 0; r < R; r++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) hw[r * S + y * kw + x] = kH.data[r * kh + y]! * kW.data[r * kw + x]!;
  k.retain(hw);
  const A = new Float32Array(R * I);
  const cols = I * S;
  const work = (a: number, b: number): RebuildWork[] => [
    { what: 'a_out * a_in', flops: (b - a) * R * I, calls: 0, m: 0 },
    { what: 'A^T hw', flops: 2 * (b - a) * I * S * R, calls: b - a, m: I },
  ];
  return {
    op: node.op, rows: O, cols, scratchFloats: hw.length + A.length, work,
    flops: (a, b) => sumFlops(work(a, b)),
    rowsInto(ra, rb, out, off = 0) {
      checkRange(this, ra, rb, out, off, cols);
      for (let o = ra; o < rb; o++) {
        for (let r = 0; r < R; r++) {
          const c = aOut.data[o * R + r]!;
          for (let i = 0; i < I; i++) A[r * I + i] = c * aIn.data[r * I + i]!;
        }
        k.gemmTN(A, hw, I, S, R, out, 0, 0, off + (o - ra) * cols);
      }
    },
  };
}

/** Row-major digits of `index` in the mixed radix `modes`. */
function digits(index: number, modes: readonly number[], into: number[]): void {
  for (let k = modes.length - 1; k >= 0; k--) {
    into[k] = index % modes[k]!;
    index = Math.floor(index / modes[k]!);
  }
}

/**
 * TT / TR: row (i_0..i_{d-1}) of W is, for each column (j_0..j_{d-1}),
 * trace(G_0[:, i_0, j_0, :] ... G_{d-1}[:, i_{d-1}, j_{d-1}, :]) (a tensor train has r_0 = r_d = 1).
 * Level k holds L_k[(a, j_0..j_k), b] = (G_0[a, i_0, j_0, :] ... G_k[:, i_k, j_k, b]) for the
 * current prefix (i_0..i_k), one GEMM from level k-1 and the slice i_k of core k; consecutive rows
 * recompute only the levels whose prefix changed. The last core closes the trace into the row.
 */
function chainRebuilder(node: GraphNode, weight: WeightLookup, ring: boolean, kern: KernelBackend): Rebuilder {
  const outModes = attrInts(node, 'out_modes');
  const inModes = attrInts(node, 'in_modes');
  const d = outModes.length;
  if (d < 1 || inModes.length !== d) throw new RebuildError(node, 'out_modes and in_modes must have the same length >= 1');
  const cores: Weight[] = [];
  const ranks: number[] = [];
  for (let k = 0; k < d; k++) {
    const c = need(node, weight, `core.${k}`, 4);
    if (c.shape[1] !== outModes[k] || c.shape[2] !== inModes[k]) throw new RebuildError(node, `core.${k} [${c.shape}] does not match modes ${outModes[k]} x ${inModes[k]}`);
    if (k === 0) ranks.push(c.shape[0]!);
    else if (c.shape[0] !== ranks[k]) throw new RebuildError(node, `core.${k} rank ${c.shape[0]} does not match ${ranks[k]}`);
    ranks.push(c.shape[3]!);
    cores.push(c);
  }
  const R0 = ranks[0]!;
  if (ranks[d] !== R0) throw new RebuildError(node, `first and last ranks differ (${R0} vs ${ranks[d]})`);
  if (!ring && R0 !== 1) throw new RebuildError(node, 'a tensor train has boundary ranks 1');
  const rows = numel(outModes);
  const cols = numel(inModes);
  const N: number[] = [];
  inModes.forEach((n, k) => N.push(n * (k > 0 ? N[k - 1]! : 1)));
  const levels: Float32Array[] = [];
  for (let k = 0; k + 1 < d; k++) levels.push(new Float32Array(R0 * N[k]! * ranks[k + 1]!));
  // Middle cores rearranged by output index: g[k][i] = G_k[:, i, :, :] as [r_k, (n_k r_{k+1})].
  // The last core as [i][a][c][j] = G_{d-1}[c, i, j, a], so that each a is a [r_{d-1}, n] block.
  const rearranged: Float32Array[] = cores.map((c, k) => {
    const [ra, m, n, rb] = c.shape as [number, number, number, number];
    const g = new Float32Array(ra * m * n * rb);
    for (let a = 0; a < ra; a++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let b = 0; b < rb; b++) {
      const v = c.data[((a * m + i) * n + j) * rb + b]!;
      if (k + 1 < d) g[((i * ra + a) * n + j) * rb + b] = v;
      else g[((i * rb + b) * ra + a) * n + j] = v;
    }
    kern.retain(g);
    return g;
  });
  const rowTmp = ring && d > 1 ? new Float32Array(cols / inModes[d - 1]! * inModes[d - 1]!) : new Float32Array(0);
  const cached: number[] = new Array<number>(d).fill(-1);
  const dig: number[] = new Array<number>(d).fill(0);

  function level(k: number): void {
    const [ra, m, n, rb] = cores[k]!.shape as [number, number, number, number];
    const i = dig[k]!;
    const L = levels[k]!;
    if (k === 0) {
      // L_0[(a, j), b] = G_0[a, i, j, b]
      const g = cores[0]!.data;
      for (let a = 0; a < ra; a++) for (let j = 0; j < n; j++) for (let b = 0; b < rb; b++) L[(a * n + j) * rb + b] = g[((a * m + i) * n + j) * rb + b]!;
      return;
    }
    // L_k[(a, J), (j, b)] = sum_c L_{k-1}[(a, J), c] G_k[c, i, j, b]
    kern.gemmNN(levels[k - 1]!, rearranged[k]!, R0 * N[k - 1]!, n * rb, ra, L, 0, i * ra * n * rb, 0);
  }

  function lastInto(out: Float32Array, base: number): void {
    const [ra, m, n, rb] = cores[d - 1]!.shape as [number, number, number, number];
    const i = dig[d - 1]!;
    if (d === 1) {
      const g = cores[0]!.data;
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let a = 0; a < ra; a++) s += g[((a * m + i) * n + j) * rb + a]!;
        out[base + j] = s;
      }
      return;
    }
    const P = levels[d - 2]!;
    const Np = N[d - 2]!;
    const gl = rearranged[d - 1]!;
    // row[(J, j)] = sum_a sum_c P[(a, J), c] G[c, i, j, a]
    if (R0 === 1) {
      kern.gemmNN(P, gl, Np, n, ra, out, 0, i * ra * n, base);
      return;
    }
    out.fill(0, base, base + cols);
    for (let a = 0; a < R0; a++) {
      kern.gemmNN(P, gl, Np, n, ra, rowTmp, a * Np * ra, (i * R0 + a) * ra * n, 0);
      for (let c = 0; c < cols; c++) out[base + c]! += rowTmp[c]!;
    }
  }

  function work(r0: number, r1: number): RebuildWork[] {
    const w: RebuildWork[] = [];
    let stride = rows;
    for (let k = 0; k < d; k++) {
      stride /= outModes[k]!;
      const times = distinct(r0, r1, stride);
      if (k === 0 && d > 1) {
        w.push({ what: 'core.0 slice', flops: 0, calls: 0, m: 0 });
      } else if (k < d - 1) {
        w.push({ what: `level ${k}`, flops: times * 2 * R0 * N[k - 1]! * ranks[k]! * inModes[k]! * ranks[k + 1]!, calls: times, m: R0 * N[k - 1]! });
      } else if (d === 1) {
        w.push({ what: 'trace', flops: times * R0 * cols, calls: 0, m: 0 });
      } else {
        w.push({ what: `core.${k} and trace`, flops: times * 2 * R0 * N[k - 1]! * ranks[k]! * inModes[k]!, calls: times * R0, m: N[k - 1]! });
        if (R0 > 1) w.push({ what: 'ring sum', flops: times * R0 * cols, calls: 0, m: 0 });
      }
    }
    return w;
  }

  return {
    op: node.op, rows, cols, scratchFloats: levels.reduce((s, l) => s + l.length, 0) + rowTmp.length, work,
    flops: (a, b) => sumFlops(work(a, b)),
    rowsInto(r0, r1, out, off = 0) {
      checkRange(this, r0, r1, out, off, cols);
      for (let o = r0; o < r1; o++) {
        digits(o, outModes, dig);
        let prefix = 0;
        let stale = false;
        for (let k = 0; k + 1 < d; k++) {
          prefix = prefix * outModes[k]! + dig[k]!;
          if (stale || cached[k] !== prefix) {
            stale = true;
            level(k);
            cached[k] = prefix;
          }
        }
        lastInto(out, off + (o - r0) * cols);
      }
    },
  };
}

/**
 * TTL: W as [m_0..m_{p-1}, n_0..n_{q-1}] = core x_k factor.k. For row (i_0..i_{p-1}), the output
 * modes of the core are contracted with factor.k[i_k, :] one at a time (level k, shared by rows with
 * the same prefix), leaving c [s_0..s_{q-1}]; the row is c expanded on each input mode by its factor.
 */
function ttlRebuilder(node: GraphNode, weight: WeightLookup, kern: KernelBackend): Rebuilder {
  const outModes = attrInts(node, 'out_modes');
  const inModes = attrInts(node, 'in_modes');
  const p = outModes.length;
  const q = inModes.length;
  if (p < 1 || q < 1) throw new RebuildError(node, 'out_modes and in_modes must be non-empty');
  const core = need(node, weight, 'core', p + q);
  const dims = [...outModes, ...inModes];
  const factors: Weight[] = [];
  for (let k = 0; k < p + q; k++) {
    const f = need(node, weight, `factor.${k}`, 2);
    if (f.shape[0] !== dims[k] || f.shape[1] !== core.shape[k]) throw new RebuildError(node, `factor.${k} [${f.shape}] does not match [${dims[k]}, ${core.shape[k]}]`);
    factors.push(f);
  }
  const rOut = core.shape.slice(0, p);
  const sIn = core.shape.slice(p);
  const S = numel(sIn);
  const rows = numel(outModes);
  const cols = numel(inModes);
  const levels: Float32Array[] = [];
  for (let k = 0; k < p; k++) levels.push(new Float32Array(numel(rOut.slice(k + 1)) * S));
  let exp = 0;
  for (let k = 0; k + 1 < q; k++) exp = Math.max(exp, numel(inModes.slice(0, k + 1)) * numel(sIn.slice(k + 1)));
  const bufA = new Float32Array(exp);
  const bufB = new Float32Array(exp);
  const cached: number[] = new Array<number>(p).fill(-1);
  const dig: number[] = new Array<number>(p).fill(0);
  // Input factors transposed ([s_k, n_k]), for the last mode's expansion as one GEMM with an offset.
  const transposed = inModes.map((nk, k) => {
    const sk = sIn[k]!;
    const f = factors[p + k]!.data;
    const t = new Float32Array(sk * nk);
    for (let n = 0; n < nk; n++) for (let r = 0; r < sk; r++) t[r * nk + n] = f[n * sk + r]!;
    kern.retain(t);
    return t;
  });

  function level(k: number): void {
    const src = k === 0 ? core.data : levels[k - 1]!;
    const dst = levels[k]!;
    const rk = rOut[k]!;
    // dst[rest] = sum_r F_k[i, r] src[r, rest]
    kern.gemmNN(factors[k]!.data, src, 1, dst.length, rk, dst, dig[k]! * rk, 0, 0);
  }

  function expand(out: Float32Array, base: number): void {
    // x [pre, s_k, post] -> [pre, n_k, post] with F_k [n_k, s_k]; pre = n_0..n_{k-1}, post = s_{k+1}..
    let src: Float32Array = levels[p - 1]!;
    for (let k = 0; k < q; k++) {
      const pre = numel(inModes.slice(0, k));
      const post = numel(sIn.slice(k + 1));
      const nk = inModes[k]!;
      const sk = sIn[k]!;
      const last = k === q - 1;
      const dst = last ? out : k % 2 === 0 ? bufA : bufB;
      const dOff = last ? base : 0;
      const f = factors[p + k]!.data;
      if (pre === 1) kern.gemmNN(f, src, nk, post, sk, dst, 0, 0, dOff);
      else if (post === 1) kern.gemmNN(src, transposed[k]!, pre, nk, sk, dst, 0, 0, dOff);
      else for (let a = 0; a < pre; a++) kern.gemmNN(f, src, nk, post, sk, dst, 0, a * sk * post, dOff + a * nk * post);
      src = dst;
    }
  }

  function work(r0: number, r1: number): RebuildWork[] {
    const w: RebuildWork[] = [];
    let stride = rows;
    for (let k = 0; k < p; k++) {
      stride /= outModes[k]!;
      const times = distinct(r0, r1, stride);
      w.push({ what: `factor.${k} level`, flops: times * 2 * numel(rOut.slice(k)) * S, calls: times, m: 1 });
    }
    const n = r1 - r0;
    for (let k = 0; k < q; k++) {
      const pre = numel(inModes.slice(0, k));
      const post = numel(sIn.slice(k + 1));
      const calls = pre === 1 || post === 1 ? 1 : pre;
      w.push({ what: `factor.${p + k} expand`, flops: n * 2 * pre * inModes[k]! * sIn[k]! * post, calls: n * calls, m: post === 1 && pre > 1 ? pre : inModes[k]! });
    }
    return w;
  }

  return {
    op: node.op, rows, cols, scratchFloats: levels.reduce((s, l) => s + l.length, 0) + 2 * exp + transposed.reduce((s, t) => s + t.length, 0), work,
    flops: (a, b) => sumFlops(work(a, b)),
    rowsInto(r0, r1, out, off = 0) {
      checkRange(this, r0, r1, out, off, cols);
      for (let o = r0; o < r1; o++) {
        digits(o, outModes, dig);
        let prefix = 0;
        let stale = false;
        for (let k = 0; k < p; k++) {
          prefix = prefix * outModes[k]! + dig[k]!;
          if (stale || cached[k] !== prefix) {
            stale = true;
            level(k);
            cached[k] = prefix;
          }
        }
        expand(out, off + (o - r0) * cols);
      }
    },
  };
}

/**
 * A rebuilder for one factor node; `weight` resolves a role to its f32 factor, `kernels` runs the
 * products (default: the reference kernels).
 */
export function prepareRebuild(node: GraphNode, weight: WeightLookup, kernels: KernelBackend = referenceBackend): Rebuilder {
  switch (node.op) {
    case 'svd_dense':
    case 'svd_conv2d':
      return svdRebuilder(node, weight, kernels);
    case 'tucker2_conv2d':
      return tucker2Rebuilder(node, weight, kernels);
    case 'cp_conv2d':
      return cpRebuilder(node, weight, kernels);
    case 'tt_dense':
      return chainRebuilder(node, weight, false, kernels);
    case 'tr_dense':
      return chainRebuilder(node, weight, true, kernels);
    case 'ttl_dense':
      return ttlRebuilder(node, weight, kernels);
    default:
      throw new RebuildError(node, `not a factor kind (have: ${REBUILD_OPS.join(', ')})`);
  }
}
