// The ADTN circuit (runtime/layers/adtnDense.ts) as an exact MPS, and the two ways the runtime uses
// it: W expanded from the MPS straight into the f32 weight (no 2^Q state), or the input contracted
// with the MPS per call (W never formed). adtnDense.ts chooses between them (adtnRuntimePlan).
//
// MPS: core k is A_k [r_k, 2, r_(k+1)] (f64), r_0 = r_Q = 1, site 0 the most significant bit of the
// flat index n = o * in + i. The start is the MPS of bond 1. A gate on `arity` neighbouring sites
// [p, p + k) contracts the window into T [r_p, 2^k, r_(p+k)], applies the gate on the middle index,
// and splits T back site by site without an SVD, each split exact: a matrix M [m, n] is I_m M (the
// core an identity, bond m) or M I_n (the core M, bond n), whichever bond is smaller. At arity 2 the
// gate's operator-Schmidt form G = sum_(a, h1) E[a, h1] (x) G[a ., h1 .] (bond 4 r_(p+1)) is the third
// choice, as in the firmware (core/ops/adtn.c): the bonds are then adtnBonds' exactly. Any arity
// (1 to 4) goes through the same code; the firmware runs 1 and 2.
import type { AdtnLayout } from './adtnLayout.js';

export interface AdtnMps {
  q: number;
  /** Bonds at the Q + 1 cuts. */
  r: number[];
  /** Core k, [r_k, 2, r_(k+1)] row-major. */
  cores: Float64Array[];
  /** Multiply-adds the build took (counted, for the plan's record). */
  work: number;
}

/** out [rows, n] = a [rows, m] b [m, n]; returns the multiply-adds. */
function matmul(a: Float64Array, b: Float64Array, rows: number, m: number, n: number, out: Float64Array): number {
  out.fill(0, 0, rows * n);
  for (let i = 0; i < rows; i++) {
    const o = i * n;
    for (let j = 0; j < m; j++) {
      const v = a[i * m + j]!;
      if (v === 0) continue;
      const bo = j * n;
      for (let x = 0; x < n; x++) out[o + x] = out[o + x]! + v * b[bo + x]!;
    }
  }
  return rows * m * n;
}

/**
 * The bonds adtnMps reaches, its multiply-adds and its largest temporary (floats), without building
 * it: the same choices on the shapes alone.
 */
export function mpsShape(l: AdtnLayout): { r: number[]; work: number; peakFloats: number } {
  const r = new Array<number>(l.q + 1).fill(1);
  const k = l.arity, D = 2 ** k;
  let work = 0, peak = 2;
  for (const layer of l.layers) {
    for (const p of layer) {
      if (k === 1) {
        work += 4 * r[p]! * r[p + 1]!;
        continue;
      }
      const rl = r[p]!, rr = r[p + k]!;
      if (k === 2 && 4 * r[p + 1]! < Math.min(2 * rl, 2 * rr)) {
        const n = 4 * r[p + 1]!;
        work += n * 2 * rr * 2;
        peak = Math.max(peak, n * 2 * rr, rl * 2 * n);
        r[p + 1] = n;
        continue;
      }
      let rows = rl * 2;
      for (let j = 1; j < k; j++) {
        work += rows * r[p + j]! * 2 * r[p + j + 1]!;
        rows *= 2;
      }
      work += rl * D * D * rr;
      peak = Math.max(peak, 2 * rl * D * rr);
      let rcur = rl;
      for (let j = 0; j < k - 1; j++) {
        const rest = 2 ** (k - 1 - j) * rr;
        if (rcur * 2 > rest) peak = Math.max(peak, rest * rest);
        rcur = Math.min(rcur * 2, rest);
        r[p + j + 1] = rcur;
      }
    }
  }
  return { r, work, peakFloats: peak };
}

/** The circuit's state as an MPS, exactly (f64). */
export function adtnMps(l: AdtnLayout, start: Float32Array, gates: Float32Array): AdtnMps {
  const q = l.q;
  const r = new Array<number>(q + 1).fill(1);
  const cores: Float64Array[] = [];
  for (let k = 0; k < q; k++) cores.push(Float64Array.of(start[2 * k]!, start[2 * k + 1]!));
  const k = l.arity, D = 2 ** k;
  let work = 0;
  let gi = 0;
  for (const layer of l.layers) {
    for (const p of layer) {
      const g = gates.subarray(gi * D * D, (gi + 1) * D * D);
      gi++;
      if (k === 1) {
        const A = cores[p]!, rl = r[p]!, rr = r[p + 1]!;
        const t = new Float64Array(A.length);
        for (let a = 0; a < rl; a++)
          for (let s = 0; s < 2; s++)
            for (let x = 0; x < rr; x++) t[(a * 2 + s) * rr + x] = g[s * 2]! * A[a * 2 * rr + x]! + g[s * 2 + 1]! * A[(a * 2 + 1) * rr + x]!;
        cores[p] = t;
        work += 4 * rl * rr;
        continue;
      }
      const rl = r[p]!, rr = r[p + k]!;
      if (k === 2 && 4 * r[p + 1]! < Math.min(2 * rl, 2 * rr)) {
        work += schmidt2(cores, r, p, g);
        continue;
      }
      // T [rl, 2^k, rr]: the window's cores contracted left to right.
      let T: Float64Array = cores[p]!;
      let rows = rl * 2;
      for (let j = 1; j < k; j++) {
        const m = r[p + j]!, n = r[p + j + 1]!;
        const nt = new Float64Array(rows * 2 * n);
        work += matmul(T, cores[p + j]!, rows, m, 2 * n, nt);
        T = nt;
        rows *= 2;
      }
      // the gate on the middle index: T'[a, g, x] = sum_h G[g, h] T[a, h, x]
      const Tg = new Float64Array(rl * D * rr);
      for (let a = 0; a < rl; a++) {
        const base = a * D * rr;
        for (let gg = 0; gg < D; gg++) {
          const o = base + gg * rr;
          for (let h = 0; h < D; h++) {
            const w = g[gg * D + h]!;
            if (w === 0) continue;
            const src = base + h * rr;
            for (let x = 0; x < rr; x++) Tg[o + x] = Tg[o + x]! + w * T[src + x]!;
          }
        }
      }
      work += rl * D * D * rr;
      // split site by site: M [rcur * 2, rest]; identity core (bond 2 rcur) or M as the core (bond rest)
      let M = Tg;
      let rcur = rl;
      for (let j = 0; j < k - 1; j++) {
        const rest = 2 ** (k - 1 - j) * rr;
        const m2 = rcur * 2;
        if (m2 <= rest) {
          const core = new Float64Array(rcur * 2 * m2);
          for (let a = 0; a < rcur; a++) for (let s = 0; s < 2; s++) core[(a * 2 + s) * m2 + a * 2 + s] = 1;
          cores[p + j] = core;
          r[p + j + 1] = m2;
          rcur = m2;
          // M is already [m2, rest] row-major
        } else {
          cores[p + j] = M;
          r[p + j + 1] = rest;
          rcur = rest;
          M = new Float64Array(rest * rest);
          for (let i = 0; i < rest; i++) M[i * rest + i] = 1;
        }
      }
      cores[p + k - 1] = M; // [rcur, 2, rr]
    }
  }
  return { q, r, cores, work };
}

/**
 * A two-site gate by its operator-Schmidt form (bond 4 r_(p+1)): core p + 1 becomes
 * B'[(j, a, h1), g2, x] = sum_h2 G[(a, g2), (h1, h2)] B[j, h2, x], core p becomes
 * A'[l, g1, (j, a, h1)] = [a = g1] A[l, h1, j].
 */
function schmidt2(cores: Float64Array[], r: number[], p: number, g: Float32Array): number {
  const rl = r[p]!, m = r[p + 1]!, rr = r[p + 2]!;
  const A = cores[p]!, B = cores[p + 1]!;
  const n = 4 * m;
  const nb = new Float64Array(n * 2 * rr);
  for (let j = 0; j < m; j++)
    for (let a = 0; a < 2; a++)
      for (let h1 = 0; h1 < 2; h1++)
        for (let g2 = 0; g2 < 2; g2++)
          for (let x = 0; x < rr; x++) {
            let s = 0;
            for (let h2 = 0; h2 < 2; h2++) s += g[(a * 2 + g2) * 4 + h1 * 2 + h2]! * B[(j * 2 + h2) * rr + x]!;
            nb[(((j * 2 + a) * 2 + h1) * 2 + g2) * rr + x] = s;
          }
  const na = new Float64Array(rl * 2 * n);
  for (let l = 0; l < rl; l++)
    for (let g1 = 0; g1 < 2; g1++)
      for (let j = 0; j < m; j++)
        for (let h1 = 0; h1 < 2; h1++) na[(l * 2 + g1) * n + (j * 2 + g1) * 2 + h1] = A[(l * 2 + h1) * m + j]!;
  cores[p] = na;
  cores[p + 1] = nb;
  r[p + 1] = n;
  return n * 2 * rr * 2;
}

/** The left vectors of the top c sites: [2^c, r_c], row h the product A_0[h_0] .. A_(c-1)[h_(c-1)]. */
export function leftTable(m: AdtnMps, c: number): Float64Array {
  let L = Float64Array.of(1);
  let rows = 1;
  for (let lev = 0; lev < c; lev++) {
    const a = m.r[lev]!, b = m.r[lev + 1]!;
    const nl = new Float64Array(rows * 2 * b);
    // L [rows, a] times core [a, 2 b] is exactly [rows * 2, b] row-major
    matmul(L, m.cores[lev]!, rows, a, 2 * b, nl);
    L = nl;
    rows *= 2;
  }
  return L;
}

/** The right vectors of the sites c..Q-1: [2^(Q-c), r_c], row s (site c its top bit) A_c[s_0] .. A_(Q-1)[.] . */
export function rightTable(m: AdtnMps, c: number): Float64Array {
  let R = Float64Array.of(1);
  let len = 1;
  for (let lev = m.q - 1; lev >= c; lev--) {
    const a = m.r[lev]!, b = m.r[lev + 1]!;
    const A = m.cores[lev]!;
    const nr = new Float64Array(2 * len * a);
    for (let bit = 0; bit < 2; bit++)
      for (let s = 0; s < len; s++) {
        const o = (bit * len + s) * a;
        const rs = s * b;
        for (let i = 0; i < a; i++) {
          const ab = (i * 2 + bit) * b;
          let acc = 0;
          for (let x = 0; x < b; x++) acc += A[ab + x]! * R[rs + x]!;
          nr[o + i] = acc;
        }
      }
    R = nr;
    len *= 2;
  }
  return R;
}

/** Multiply-adds of the two tables at cut c. */
function tableCost(r: number[], q: number, c: number): number {
  let w = 0;
  for (let lev = 0; lev < c; lev++) w += 2 ** (lev + 1) * r[lev]! * r[lev + 1]!;
  for (let lev = c; lev < q; lev++) w += 2 ** (q - lev) * r[lev]! * r[lev + 1]!;
  return w;
}

/** The cut with the fewest multiply-adds to expand `total` entries, and that count. */
export function expandPlan(r: number[], q: number, total: number): { cut: number; work: number } {
  let best = { cut: 0, work: Infinity };
  for (let c = 0; c <= q; c++) {
    const w = tableCost(r, q, c) + total * r[c]!;
    if (w < best.work) best = { cut: c, work: w };
  }
  return best;
}

/** The first `total` entries of the state, in f32, from the MPS: W[n] = L[n >> b] . R[n & (2^b - 1)]. */
export function expandMps(m: AdtnMps, total: number, into?: Float32Array): Float32Array {
  const w = into ?? new Float32Array(total);
  const { cut } = expandPlan(m.r, m.q, total);
  const rc = m.r[cut]!;
  const L = leftTable(m, cut);
  const R = rightTable(m, cut);
  const bs = 2 ** (m.q - cut);
  // R transposed to [rc, bs]: each block is then rc contiguous axpys into an f64 row
  const Rt = new Float64Array(rc * bs);
  for (let s = 0; s < bs; s++) for (let x = 0; x < rc; x++) Rt[x * bs + s] = R[s * rc + x]!;
  const acc = new Float64Array(bs);
  for (let n0 = 0, hi = 0; n0 < total; n0 += bs, hi++) {
    const lo = hi * rc;
    const end = Math.min(bs, total - n0);
    acc.fill(0);
    for (let x = 0; x < rc; x++) {
      const v = L[lo + x]!;
      if (v === 0) continue;
      const ro = x * bs;
      for (let s = 0; s < end; s++) acc[s] = acc[s]! + v * Rt[ro + s]!;
    }
    for (let s = 0; s < end; s++) w[n0 + s] = acc[s]!;
  }
  return w;
}

/**
 * Contracting the input per call (W never formed), after the firmware's class path: the flat index is
 * split at b low bits (2^b <= in); a block of 2^b weights starts at column c0 = n mod in, a multiple of
 * g = gcd(in, 2^b), so the input gives in / g class sums per row, H[c] (the block's columns in its row)
 * and T[c] (those that run into the next row), each r floats; each block then costs two dot products.
 */
export interface AdtnContraction {
  b: number;
  g: number;
  classes: number;
  /** r at the cut Q - b. */
  rc: number;
  /** Left vectors of the top Q - b sites, [blocks, rc] (only the blocks W uses). */
  L: Float64Array;
  /** Right vectors of the low b sites, [2^b, rc]. */
  R: Float64Array;
  blocks: number;
  /** Multiply-adds per input row. */
  workPerRow: number;
}

/** b with the fewest multiply-adds per input row (2^b <= in). */
export function contractPlan(r: number[], q: number, out: number, inF: number): { b: number; g: number; classes: number; workPerRow: number } {
  const total = out * inF;
  let best = { b: 0, g: 1, classes: inF, workPerRow: Infinity };
  for (let b = 0; b <= q && 2 ** b <= inF; b++) {
    let g = 1;
    while (g < 2 ** b && inF % (2 * g) === 0) g *= 2;
    const classes = inF / g;
    const rc = r[q - b]!;
    const blocks = Math.ceil(total / 2 ** b);
    const w = classes * 2 ** b * rc + blocks * 2 * rc;
    if (w < best.workPerRow) best = { b, g, classes, workPerRow: w };
  }
  return best;
}

export function prepareContraction(m: AdtnMps, out: number, inF: number): AdtnContraction {
  const p = contractPlan(m.r, m.q, out, inF);
  const c = m.q - p.b;
  const rc = m.r[c]!;
  const blocks = Math.ceil((out * inF) / 2 ** p.b);
  const L = leftTable(m, c).slice(0, blocks * rc);
  return { ...p, rc, L, R: rightTable(m, c), blocks };
}

/** The f64 scratch contractRows needs: the class sums (2 * classes * rc), then one output row. */
export function contractionScratch(ct: AdtnContraction, out: number): Float64Array {
  return new Float64Array(2 * ct.classes * ct.rc + out);
}

/** y [rows, out] = x [rows, in] W^T (+ bias), W from the MPS; `hz` from contractionScratch. */
export function contractRows(ct: AdtnContraction, x: Float32Array, rows: number, out: number, inF: number, bias: Float32Array | undefined, y: Float32Array, hz: Float64Array): void {
  const { b, g, classes, rc, L, R, blocks } = ct;
  const bs = 2 ** b;
  const T0 = classes * rc;
  for (let row = 0; row < rows; row++) {
    const xo = row * inF;
    hz.fill(0, 0, 2 * T0);
    for (let c = 0; c < classes; c++) {
      const c0 = c * g;
      const ho = c * rc;
      for (let s = 0; s < bs; s++) {
        let col = c0 + s;
        let o = ho;
        if (col >= inF) {
          col -= inF;
          o += T0;
        }
        const v = x[xo + col]!;
        if (v === 0) continue;
        const rs = s * rc;
        for (let j = 0; j < rc; j++) hz[o + j] = hz[o + j]! + v * R[rs + j]!;
      }
    }
    const yo = row * out;
    const acc = 2 * T0;
    hz.fill(0, acc, acc + out);
    for (let hi = 0; hi < blocks; hi++) {
      const n0 = hi * bs;
      const o = Math.floor(n0 / inF);
      const c0 = n0 - o * inF;
      const cls = c0 / g;
      const lo = hi * rc, ho = cls * rc;
      let dh = 0;
      for (let j = 0; j < rc; j++) dh += L[lo + j]! * hz[ho + j]!;
      hz[acc + o] = hz[acc + o]! + dh;
      if (c0 + bs > inF && o + 1 < out) {
        let dt = 0;
        for (let j = 0; j < rc; j++) dt += L[lo + j]! * hz[T0 + ho + j]!;
        hz[acc + o + 1] = hz[acc + o + 1]! + dt;
      }
    }
    for (let o = 0; o < out; o++) y[yo + o] = bias ? hz[acc + o]! + bias[o]! : hz[acc + o]!;
  }
}
