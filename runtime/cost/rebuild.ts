// Row-tile weight rebuild: for every factor layer kind, write rows [r0, r1) of the layer's dense
// weight from the factors only, so that a layer can rebuild its weight one tile at a time into a
// bounded scratch buffer and multiply, instead of contracting the input through the factors.
//
// Rows are outputs: dense kinds give W [out, in]; conv kinds give W [O, I*kh*kw] (the row-major
// unfolding of [O, I, kh, kw]). The full weight never exists: a rebuilder holds only small,
// fixed work buffers (listed by `scratchFloats`), and reuses partial products between consecutive
// rows where they share a prefix of the output index (TT / TR / TTL).
import { attrInts, numel, type GraphNode, type OpName } from '../ir.js';
import type { Weight } from '../layers/kind.js';

export type WeightLookup = (role: string) => Weight | undefined;

export class RebuildError extends Error {
  readonly code = 'REBUILD_INVALID';
  constructor(node: GraphNode, message: string) {
    super(`rebuild ${node.name} (${node.op}): ${message}`);
  }
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

/** W = u v: row o = sum_k u[o, k] v[k, :]. Serves svd_dense (v [r, in]) and svd_conv2d (v [r, I, kh, kw]). */
function svdRebuilder(node: GraphNode, weight: WeightLookup): Rebuilder {
  const u = need(node, weight, 'u', 2);
  const v = weight('v');
  if (!v || v.shape.length < 2) throw new RebuildError(node, 'missing or malformed v');
  const [rows, r] = u.shape as [number, number];
  if (v.shape[0] !== r) throw new RebuildError(node, `v has ${v.shape[0]} rows, u has rank ${r}`);
  const cols = numel(v.shape.slice(1));
  return {
    op: node.op, rows, cols, scratchFloats: 0,
    flops: (r0, r1) => 2 * (r1 - r0) * r * cols,
    rowsInto(r0, r1, out, off = 0) {
      checkRange(this, r0, r1, out, off, cols);
      const ud = u.data;
      const vd = v.data;
      for (let o = r0; o < r1; o++) {
        const base = off + (o - r0) * cols;
        out.fill(0, base, base + cols);
        for (let k = 0; k < r; k++) {
          const c = ud[o * r + k]!;
          if (c === 0) continue;
          const vo = k * cols;
          for (let j = 0; j < cols; j++) out[base + j]! += c * vd[vo + j]!;
        }
      }
    },
  };
}

/** W[o, i, y, x] = sum_b u_out[o, b] sum_a core[b, a, y, x] u_in[a, i]; per row: t = u_out[o] core, then u_in^T t. */
function tucker2Rebuilder(node: GraphNode, weight: WeightLookup): Rebuilder {
  const uIn = need(node, weight, 'u_in', 2);
  const core = need(node, weight, 'core', 4);
  const uOut = need(node, weight, 'u_out', 2);
  const [r1, I] = uIn.shape as [number, number];
  const [r2, c1, kh, kw] = core.shape as [number, number, number, number];
  const [O, c2] = uOut.shape as [number, number];
  if (c1 !== r1 || c2 !== r2) throw new RebuildError(node, `core [${core.shape}] does not match u_in [${uIn.shape}] and u_out [${uOut.shape}]`);
  const S = kh * kw;
  const cols = I * S;
  const t = new Float32Array(r1 * S);
  return {
    op: node.op, rows: O, cols, scratchFloats: t.length,
    flops: (a, b) => 2 * (b - a) * (r2 * r1 * S + r1 * I * S),
    rowsInto(ra, rb, out, off = 0) {
      checkRange(this, ra, rb, out, off, cols);
      const cd = core.data;
      for (let o = ra; o < rb; o++) {
        t.fill(0);
        for (let b = 0; b < r2; b++) {
          const c = uOut.data[o * r2 + b]!;
          if (c === 0) continue;
          const co = b * r1 * S;
          for (let j = 0; j < r1 * S; j++) t[j]! += c * cd[co + j]!;
        }
        const base = off + (o - ra) * cols;
        out.fill(0, base, base + cols);
        for (let a = 0; a < r1; a++) {
          const ta = a * S;
          for (let i = 0; i < I; i++) {
            const c = uIn.data[a * I + i]!;
            if (c === 0) continue;
            const ro = base + i * S;
            for (let s = 0; s < S; s++) out[ro + s]! += c * t[ta + s]!;
          }
        }
      }
    },
  };
}

/** W[o, i, y, x] = sum_r a_out[o, r] a_in[r, i] k_h[r, y] k_w[r, x]; k_h k_w is formed once (R x kh*kw). */
function cpRebuilder(node: GraphNode, weight: WeightLookup): Rebuilder {
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
  const cols = I * S;
  return {
    op: node.op, rows: O, cols, scratchFloats: hw.length,
    flops: (a, b) => (b - a) * R * I * (1 + 2 * S),
    rowsInto(ra, rb, out, off = 0) {
      checkRange(this, ra, rb, out, off, cols);
      for (let o = ra; o < rb; o++) {
        const base = off + (o - ra) * cols;
        out.fill(0, base, base + cols);
        for (let r = 0; r < R; r++) {
          const c = aOut.data[o * R + r]!;
          if (c === 0) continue;
          for (let i = 0; i < I; i++) {
            const ci = c * aIn.data[r * I + i]!;
            const ro = base + i * S;
            for (let s = 0; s < S; s++) out[ro + s]! += ci * hw[r * S + s]!;
          }
        }
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
 * Level k holds L_k[a, (j_0..j_k), b] = (G_0[a, i_0, j_0, :] ... G_k[:, i_k, j_k, b]) for the current
 * prefix (i_0..i_k); consecutive rows recompute only the levels whose prefix changed. The last core
 * is applied with the trace straight into the output row.
 */
function chainRebuilder(node: GraphNode, weight: WeightLookup, ring: boolean): Rebuilder {
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
  // Columns covered by levels 0..k: N[k] = n_0 .. n_k.
  const N: number[] = [];
  inModes.forEach((n, k) => N.push(n * (k > 0 ? N[k - 1]! : 1)));
  const levels: Float32Array[] = [];
  for (let k = 0; k + 1 < d; k++) levels.push(new Float32Array(R0 * N[k]! * ranks[k + 1]!));
  const cached: number[] = new Array<number>(d).fill(-1);
  const dig: number[] = new Array<number>(d).fill(0);

  function level(k: number): void {
    const [ra, m, n, rb] = cores[k]!.shape as [number, number, number, number];
    const g = cores[k]!.data;
    const i = dig[k]!;
    const L = levels[k]!;
    if (k === 0) {
      // L_0[a, j, b] = G_0[a, i, j, b]
      for (let a = 0; a < ra; a++) for (let j = 0; j < n; j++) for (let b = 0; b < rb; b++) L[(a * n + j) * rb + b] = g[((a * m + i) * n + j) * rb + b]!;
      return;
    }
    const P = levels[k - 1]!;
    const Np = N[k - 1]!;
    // L_k[a, (J, j), b] = sum_c P[a, J, c] G_k[c, i, j, b]
    L.fill(0);
    for (let a = 0; a < R0; a++) {
      for (let J = 0; J < Np; J++) {
        const po = (a * Np + J) * ra;
        for (let c = 0; c < ra; c++) {
          const pv = P[po + c]!;
          if (pv === 0) continue;
          const go = (c * m + i) * n * rb;
          const lo = (a * Np + J) * n * rb;
          for (let jb = 0; jb < n * rb; jb++) L[lo + jb]! += pv * g[go + jb]!;
        }
      }
    }
  }

  function lastInto(out: Float32Array, base: number): void {
    const k = d - 1;
    const [ra, m, n, rb] = cores[k]!.shape as [number, number, number, number];
    const g = cores[k]!.data;
    const i = dig[k]!;
    out.fill(0, base, base + cols);
    if (d === 1) {
      // row[j] = sum_a G_0[a, i, j, a]
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let a = 0; a < ra; a++) s += g[((a * m + i) * n + j) * rb + a]!;
        out[base + j] = s;
      }
      return;
    }
    const P = levels[k - 1]!;
    const Np = N[k - 1]!;
    // row[(J, j)] = sum_a sum_c P[a, J, c] G_{d-1}[c, i, j, a]
    for (let a = 0; a < R0; a++) {
      for (let J = 0; J < Np; J++) {
        const po = (a * Np + J) * ra;
        const ro = base + J * n;
        for (let c = 0; c < ra; c++) {
          const pv = P[po + c]!;
          if (pv === 0) continue;
          const go = (c * m + i) * n * rb + a;
          for (let j = 0; j < n; j++) out[ro + j]! += pv * g[go + j * rb]!;
        }
      }
    }
  }

  function flops(r0: number, r1: number): number {
    // Level k is rebuilt once per distinct prefix (i_0..i_k) among rows [r0, r1) (cold start).
    let f = 0;
    let stride = rows; // rows per prefix of length 0
    for (let k = 0; k < d; k++) {
      stride /= outModes[k]!;
      const distinct = Math.floor((r1 - 1) / stride) - Math.floor(r0 / stride) + (r1 > r0 ? 1 : 0);
      if (k === 0) continue; // a copy
      const perRebuild = 2 * R0 * N[k - 1]! * ranks[k]! * inModes[k]! * (k === d - 1 ? 1 : ranks[k + 1]!);
      f += distinct * perRebuild;
    }
    if (d === 1) f += (r1 - r0) * R0 * cols;
    return f;
  }

  return {
    op: node.op, rows, cols, scratchFloats: levels.reduce((s, l) => s + l.length, 0),
    flops,
    rowsInto(r0, r1, out, off = 0) {
      checkRange(this, r0, r1, out, off, cols);
      for (let o = r0; o < r1; o++) {
        digits(o, outModes, dig);
        // Prefix index of (i_0..i_k): recompute from the first level that differs.
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
function ttlRebuilder(node: GraphNode, weight: WeightLookup): Rebuilder {
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
  // Level k: [r_{k+1}..r_{p-1}, S] after contracting output modes 0..k.
  const levels: Float32Array[] = [];
  for (let k = 0; k < p; k++) levels.push(new Float32Array(numel(rOut.slice(k + 1)) * S));
  // Expansion buffers: after input mode k, [n_0..n_k, s_{k+1}..s_{q-1}].
  let exp = 0;
  for (let k = 0; k + 1 < q; k++) exp = Math.max(exp, numel(inModes.slice(0, k + 1)) * numel(sIn.slice(k + 1)));
  const bufA = new Float32Array(exp);
  const bufB = new Float32Array(exp);
  const cached: number[] = new Array<number>(p).fill(-1);
  const dig: number[] = new Array<number>(p).fill(0);

  function level(k: number): void {
    const src = k === 0 ? core.data : levels[k - 1]!;
    const dst = levels[k]!;
    const rk = rOut[k]!;
    const rest = dst.length;
    const f = factors[k]!.data;
    const i = dig[k]!;
    dst.fill(0);
    for (let r = 0; r < rk; r++) {
      const c = f[i * rk + r]!;
      if (c === 0) continue;
      const so = r * rest;
      for (let t = 0; t < rest; t++) dst[t]! += c * src[so + t]!;
    }
  }

  function expand(out: Float32Array, base: number): void {
    // x [pre, s_k, post] -> [pre, n_k, post] with F_k [n_k, s_k]; pre = n_0..n_{k-1}, post = s_{k+1}..
    let src: Float32Array = levels[p - 1]!;
    let srcOff = 0;
    for (let k = 0; k < q; k++) {
      const pre = numel(inModes.slice(0, k));
      const post = numel(sIn.slice(k + 1));
      const nk = inModes[k]!;
      const sk = sIn[k]!;
      const last = k === q - 1;
      const dst = last ? out : k % 2 === 0 ? bufA : bufB;
      const dOff = last ? base : 0;
      dst.fill(0, dOff, dOff + pre * nk * post);
      const f = factors[p + k]!.data;
      for (let a = 0; a < pre; a++) {
        for (let n = 0; n < nk; n++) {
          const yo = dOff + (a * nk + n) * post;
          for (let s = 0; s < sk; s++) {
            const c = f[n * sk + s]!;
            if (c === 0) continue;
            const xo = srcOff + (a * sk + s) * post;
            for (let t = 0; t < post; t++) dst[yo + t]! += c * src[xo + t]!;
          }
        }
      }
      src = dst;
      srcOff = dOff;
    }
  }

  function flops(r0: number, r1: number): number {
    let f = 0;
    let stride = rows;
    for (let k = 0; k < p; k++) {
      stride /= outModes[k]!;
      const distinct = Math.floor((r1 - 1) / stride) - Math.floor(r0 / stride) + (r1 > r0 ? 1 : 0);
      f += distinct * 2 * numel(rOut.slice(k)) * S;
    }
    let per = 0;
    for (let k = 0; k < q; k++) per += 2 * numel(inModes.slice(0, k + 1)) * numel(sIn.slice(k));
    return f + (r1 - r0) * per;
  }

  return {
    op: node.op, rows, cols, scratchFloats: levels.reduce((s, l) => s + l.length, 0) + 2 * exp,
    flops,
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

/** A rebuilder for one factor node; `weight` resolves a role to its f32 factor. */
export function prepareRebuild(node: GraphNode, weight: WeightLookup): Rebuilder {
  switch (node.op) {
    case 'svd_dense':
    case 'svd_conv2d':
      return svdRebuilder(node, weight);
    case 'tucker2_conv2d':
      return tucker2Rebuilder(node, weight);
    case 'cp_conv2d':
      return cpRebuilder(node, weight);
    case 'tt_dense':
      return chainRebuilder(node, weight, false);
    case 'tr_dense':
      return chainRebuilder(node, weight, true);
    case 'ttl_dense':
      return ttlRebuilder(node, weight);
    default:
      throw new RebuildError(node, `not a factor kind (have: ${REBUILD_OPS.join(', ')})`);
  }
}
