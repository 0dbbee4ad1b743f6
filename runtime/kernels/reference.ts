// Plain TypeScript reference kernels: the living definition of every op's arithmetic.
// Faster backends are tested against these. Accumulation is in f64 locals where it is cheap.

// Accumulators in f64, kept between calls (grown, never shrunk) so that a kernel call allocates
// nothing once the sizes it meets have been seen.
let rowAcc = new Float64Array(64);
let tileAcc = new Float64Array(64);
function rowScratch(n: number): Float64Array {
  if (rowAcc.length < n) rowAcc = new Float64Array(n);
  return rowAcc;
}
function tileScratch(n: number): Float64Array {
  if (tileAcc.length < n) tileAcc = new Float64Array(n);
  return tileAcc;
}

/** y[m, n] = sum_k a[m, k] * b[n, k] + bias[n]   (a: [M,K], b: [N,K], "x W^T"). */
export function gemmNT(
  a: Float32Array, b: Float32Array, M: number, N: number, K: number,
  bias: Float32Array | undefined, out: Float32Array,
): void {
  for (let m = 0; m < M; m++) {
    const ao = m * K;
    for (let n = 0; n < N; n++) {
      const bo = n * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += a[ao + k]! * b[bo + k]!;
      out[m * N + n] = bias ? s + bias[n]! : s;
    }
  }
}

/** y[m, n] = sum_k a[m, k] * b[k, n]   (a: [M,K], b: [K,N]); out is overwritten. */
export function gemmNN(
  a: Float32Array, b: Float32Array, M: number, N: number, K: number, out: Float32Array,
  aOffset = 0, bOffset = 0, outOffset = 0,
): void {
  const row = rowScratch(N);
  for (let m = 0; m < M; m++) {
    row.fill(0, 0, N);
    const ao = aOffset + m * K;
    for (let k = 0; k < K; k++) {
      const av = a[ao + k]!;
      if (av === 0) continue;
      const bo = bOffset + k * N;
      for (let n = 0; n < N; n++) row[n]! += av * b[bo + n]!;
    }
    const oo = outOffset + m * N;
    for (let n = 0; n < N; n++) out[oo + n] = row[n]!;
  }
}

/** y[m, n] = sum_k a[k, m] * b[k, n]   (a: [K,M], b: [K,N]); out is overwritten. */
export function gemmTN(
  a: Float32Array, b: Float32Array, M: number, N: number, K: number, out: Float32Array,
  aOffset = 0, bOffset = 0, outOffset = 0,
): void {
  const acc = tileScratch(M * N);
  acc.fill(0, 0, M * N);
  for (let k = 0; k < K; k++) {
    const ao = aOffset + k * M;
    const bo = bOffset + k * N;
    for (let m = 0; m < M; m++) {
      const av = a[ao + m]!;
      if (av === 0) continue;
      const r = m * N;
      for (let n = 0; n < N; n++) acc[r + n]! += av * b[bo + n]!;
    }
  }
  for (let i = 0; i < M * N; i++) out[outOffset + i] = acc[i]!;
}

export interface Conv2dParams {
  strides: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  dilations: [number, number];
  group: number;
}

export function convOutSize(inSize: number, k: number, stride: number, padBegin: number, padEnd: number, dilation: number): number {
  return Math.floor((inSize + padBegin + padEnd - dilation * (k - 1) - 1) / stride) + 1;
}

export interface Im2colGeometry {
  C: number; H: number; W: number; Cg: number; KH: number; KW: number; OH: number; OW: number;
  sh: number; sw: number; pt: number; pl: number; dh: number; dw: number;
}

/** cols[k, p] = x[n, g*Cg + c, iy, ix] for tap k = (c, ky, kx) and output pixel p (0 in padding). */
export function im2col(x: Float32Array, n: number, g: number, q: Im2colGeometry, cols: Float32Array): void {
  const { C, H, W, Cg, KH, KW, OH, OW, sh, sw, pt, pl, dh, dw } = q;
  const P = OH * OW;
  let k = 0;
  for (let c = 0; c < Cg; c++) {
    const xo = (n * C + g * Cg + c) * H * W;
    for (let ky = 0; ky < KH; ky++) {
      for (let kx = 0; kx < KW; kx++, k++) {
        const row = k * P;
        for (let oy = 0; oy < OH; oy++) {
          const iy = oy * sh - pt + ky * dh;
          const r = row + oy * OW;
          if (iy < 0 || iy >= H) {
            cols.fill(0, r, r + OW);
            continue;
          }
          const xr = xo + iy * W;
          for (let ox = 0; ox < OW; ox++) {
            const ix = ox * sw - pl + kx * dw;
            cols[r + ox] = ix >= 0 && ix < W ? x[xr + ix]! : 0;
          }
        }
      }
    }
  }
}

/** Output [N, O, OH, OW] of a conv2d, and the floats of `cols` scratch conv2dInto needs. */
export function conv2dGeometry(xShape: readonly number[], wShape: readonly number[], p: Conv2dParams): { shape: number[]; cols: number } {
  const [N, , H, W] = xShape as [number, number, number, number];
  const [O, Cg, KH, KW] = wShape as [number, number, number, number];
  const OH = convOutSize(H, KH, p.strides[0], p.pads[0], p.pads[2], p.dilations[0]);
  const OW = convOutSize(W, KW, p.strides[1], p.pads[1], p.pads[3], p.dilations[1]);
  return { shape: [N, O, OH, OW], cols: Cg * KH * KW * OH * OW };
}

/**
 * 2-D convolution (cross-correlation, as in ONNX Conv) by im2col and a matrix product per group.
 * x [N, C, H, W], w [O, C/group, kh, kw], bias [O] -> [N, O, OH, OW].
 */
export function conv2d(
  x: Float32Array, xShape: readonly number[], w: Float32Array, wShape: readonly number[],
  bias: Float32Array | undefined, p: Conv2dParams,
): { data: Float32Array; shape: number[] } {
  const g = conv2dGeometry(xShape, wShape, p);
  const out = new Float32Array(g.shape.reduce((a, b) => a * b, 1));
  conv2dInto(x, xShape, w, wShape, bias, p, out, new Float32Array(g.cols));
  return { data: out, shape: g.shape };
}

/** conv2d writing `out` [N, O, OH, OW]; `cols` is scratch of conv2dGeometry().cols floats at least. */
export function conv2dInto(
  x: Float32Array, xShape: readonly number[], w: Float32Array, wShape: readonly number[],
  bias: Float32Array | undefined, p: Conv2dParams, out: Float32Array, cols: Float32Array,
): void {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, Cg, KH, KW] = wShape as [number, number, number, number];
  const G = p.group;
  const Og = O / G;
  const [sh, sw] = p.strides;
  const [pt, pl, pb, pr] = p.pads;
  const [dh, dw] = p.dilations;
  const OH = convOutSize(H, KH, sh, pt, pb, dh);
  const OW = convOutSize(W, KW, sw, pl, pr, dw);
  const P = OH * OW;
  const K = Cg * KH * KW;
  const q: Im2colGeometry = { C, H, W, Cg, KH, KW, OH, OW, sh, sw, pt, pl, dh, dw };
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      im2col(x, n, g, q, cols);
      const oBase = (n * O + g * Og) * P;
      gemmNN(w, cols, Og, P, K, out, g * Og * K, 0, oBase);
      if (bias) {
        for (let o = 0; o < Og; o++) {
          const b = bias[g * Og + o]!;
          const base = oBase + o * P;
          for (let i = 0; i < P; i++) out[base + i]! += b;
        }
      }
    }
  }
}

/** 1x1 convolution as a per-pixel matrix product: w [O, C], x [N, C, H, W]. */
export function conv1x1(
  x: Float32Array, xShape: readonly number[], w: Float32Array, O: number, bias: Float32Array | undefined,
): { data: Float32Array; shape: number[] } {
  const [N, , H, W] = xShape as [number, number, number, number];
  const out = new Float32Array(N * O * H * W);
  conv1x1Into(x, xShape, w, O, bias, out);
  return { data: out, shape: [N, O, H, W] };
}

/** conv1x1 writing `out` [N, O, H, W]. */
export function conv1x1Into(
  x: Float32Array, xShape: readonly number[], w: Float32Array, O: number, bias: Float32Array | undefined, out: Float32Array,
): void {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const HW = H * W;
  for (let n = 0; n < N; n++) {
    gemmNN(w, x, O, HW, C, out, 0, n * C * HW, n * O * HW);
    if (bias) {
      for (let o = 0; o < O; o++) {
        const b = bias[o]!;
        const base = (n * O + o) * HW;
        for (let i = 0; i < HW; i++) out[base + i]! += b;
      }
    }
  }
}

export interface PoolParams {
  kernel: [number, number];
  strides: [number, number];
  pads: [number, number, number, number];
  dilations: [number, number];
  ceilMode: boolean;
}

export function poolOutSize(inSize: number, k: number, stride: number, padBegin: number, padEnd: number, dilation: number, ceil: boolean): number {
  const span = inSize + padBegin + padEnd - dilation * (k - 1) - 1;
  if (!ceil) return Math.floor(span / stride) + 1;
  let out = Math.ceil(span / stride) + 1;
  // A window must start inside the input or its leading padding (PyTorch and ONNX Runtime rule).
  if ((out - 1) * stride >= inSize + padBegin) out--;
  return out;
}

/** Output [N, C, OH, OW] of a max pool (dilated) or, with dilation 1, an average pool. */
export function poolShape(xShape: readonly number[], p: PoolParams, dilated = true): number[] {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [dh, dw] = dilated ? p.dilations : [1, 1];
  return [
    N, C,
    poolOutSize(H, p.kernel[0], p.strides[0], p.pads[0], p.pads[2], dh, p.ceilMode),
    poolOutSize(W, p.kernel[1], p.strides[1], p.pads[1], p.pads[3], dw, p.ceilMode),
  ];
}

export function maxPool(x: Float32Array, xShape: readonly number[], p: PoolParams): { data: Float32Array; shape: number[] } {
  const shape = poolShape(xShape, p);
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  maxPoolInto(x, xShape, p, out);
  return { data: out, shape };
}

export function maxPoolInto(x: Float32Array, xShape: readonly number[], p: PoolParams, out: Float32Array): void {
  maxPoolWindows(x, xShape, p, out, -Infinity);
}

/**
 * Max pooling over NCHW for f32 activations and for the int8-full path's int8 ones: a window that holds
 * only padding gives `lowest`; the first largest value wins and NaN never does. With `arg`, each output's
 * input index (-1 for an all-padding window), which the trainer's backward scatters to.
 */
export function maxPoolWindows<T extends Float32Array | Int8Array>(
  x: T, xShape: readonly number[], p: PoolParams, out: T, lowest: number, arg?: Int32Array,
): void {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [KH, KW] = p.kernel;
  const [sh, sw] = p.strides;
  const [pt, pl, pb, pr] = p.pads;
  const [dh, dw] = p.dilations;
  const OH = poolOutSize(H, KH, sh, pt, pb, dh, p.ceilMode);
  const OW = poolOutSize(W, KW, sw, pl, pr, dw, p.ceilMode);
  for (let nc = 0, i = 0; nc < N * C; nc++) {
    const xo = nc * H * W;
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++, i++) {
        let m = lowest;
        let at = -1;
        for (let ky = 0; ky < KH; ky++) {
          const iy = oy * sh - pt + ky * dh;
          if (iy < 0 || iy >= H) continue;
          for (let kx = 0; kx < KW; kx++) {
            const ix = ox * sw - pl + kx * dw;
            if (ix < 0 || ix >= W) continue;
            const v = x[xo + iy * W + ix]!;
            if (v > m) {
              m = v;
              at = xo + iy * W + ix;
            }
          }
        }
        out[i] = m;
        if (arg) arg[i] = at;
      }
    }
  }
}

export function avgPool(
  x: Float32Array, xShape: readonly number[], p: PoolParams, countIncludePad: boolean,
): { data: Float32Array; shape: number[] } {
  const shape = poolShape(xShape, p, false);
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  avgPoolInto(x, xShape, p, countIncludePad, out);
  return { data: out, shape };
}

export function avgPoolInto(x: Float32Array, xShape: readonly number[], p: PoolParams, countIncludePad: boolean, out: Float32Array): void {
  avgPoolWindows(x, xShape, p, countIncludePad, out, (sum, count) => (count > 0 ? sum / count : 0));
}

/**
 * Average pooling over NCHW for f32 and int8 activations: each window's sum of inputs, its count as
 * ONNX takes it (with or without the padding) and the number of real inputs in it, turned into the
 * output by `finish` (f32: sum / count; the int8-full path rounds and re-centres on its zero point).
 */
export function avgPoolWindows<T extends Float32Array | Int8Array>(
  x: T, xShape: readonly number[], p: PoolParams, countIncludePad: boolean, out: T,
  finish: (sum: number, count: number, real: number) => number,
): void {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [KH, KW] = p.kernel;
  const [sh, sw] = p.strides;
  const [pt, pl, pb, pr] = p.pads;
  const OH = poolOutSize(H, KH, sh, pt, pb, 1, p.ceilMode);
  const OW = poolOutSize(W, KW, sw, pl, pr, 1, p.ceilMode);
  for (let nc = 0; nc < N * C; nc++) {
    const xo = nc * H * W;
    for (let oy = 0; oy < OH; oy++) {
      const y0 = oy * sh - pt;
      const y1 = Math.min(y0 + KH, H + pb);
      const ys = Math.max(y0, 0);
      const ye = Math.min(y1, H);
      for (let ox = 0; ox < OW; ox++) {
        const x0 = ox * sw - pl;
        const x1 = Math.min(x0 + KW, W + pr);
        const xs = Math.max(x0, 0);
        const xe = Math.min(x1, W);
        let s = 0;
        for (let iy = ys; iy < ye; iy++) for (let ix = xs; ix < xe; ix++) s += x[xo + iy * W + ix]!;
        const real = (ye - ys) * (xe - xs);
        out[(nc * OH + oy) * OW + ox] = finish(s, countIncludePad ? (y1 - y0) * (x1 - x0) : real, real);
      }
    }
  }
}

export function globalAvgPool(x: Float32Array, xShape: readonly number[]): { data: Float32Array; shape: number[] } {
  const [N, C] = xShape as [number, number];
  const out = new Float32Array(N * C);
  globalAvgPoolInto(x, xShape, out);
  return { data: out, shape: [N, C, ...xShape.slice(2).map(() => 1)] };
}

export function globalAvgPoolInto(x: Float32Array, xShape: readonly number[], out: Float32Array): void {
  const N = xShape[0]!;
  const C = xShape[1]!;
  let S = 1;
  for (let d = 2; d < xShape.length; d++) S *= xShape[d]!;
  for (let nc = 0; nc < N * C; nc++) {
    let s = 0;
    for (let i = 0; i < S; i++) s += x[nc * S + i]!;
    out[nc] = s / S;
  }
}

/** Row-major strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`cannot broadcast [${a}] with [${b}]`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Elementwise binary op with numpy broadcasting. */
export function broadcastBinary(
  a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[],
  f: (x: number, y: number) => number,
): { data: Float32Array; shape: number[] } {
  const shape = broadcastShape(aShape, bShape);
  const r = shape.length;
  const pad = (s: readonly number[]) => [...new Array<number>(r - s.length).fill(1), ...s];
  const ap = pad(aShape);
  const bp = pad(bShape);
  const as = stridesOf(ap).map((st, i) => (ap[i] === 1 ? 0 : st));
  const bs = stridesOf(bp).map((st, i) => (bp[i] === 1 ? 0 : st));
  const total = shape.reduce((x, y) => x * y, 1);
  const out = new Float32Array(total);
  const idx = new Array<number>(r).fill(0);
  let ai = 0;
  let bi = 0;
  for (let i = 0; i < total; i++) {
    out[i] = f(a[ai]!, b[bi]!);
    for (let d = r - 1; d >= 0; d--) {
      idx[d]!++;
      ai += as[d]!;
      bi += bs[d]!;
      if (idx[d]! < shape[d]!) break;
      ai -= as[d]! * shape[d]!;
      bi -= bs[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return { data: out, shape };
}

export function transpose(x: Float32Array, shape: readonly number[], perm: readonly number[]): { data: Float32Array; shape: number[] } {
  const r = shape.length;
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = stridesOf(shape);
  const permStrides = perm.map((p) => inStrides[p]!);
  const total = x.length;
  const out = new Float32Array(total);
  const idx = new Array<number>(r).fill(0);
  let src = 0;
  for (let i = 0; i < total; i++) {
    out[i] = x[src]!;
    for (let d = r - 1; d >= 0; d--) {
      idx[d]!++;
      src += permStrides[d]!;
      if (idx[d]! < outShape[d]!) break;
      src -= permStrides[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
  return { data: out, shape: outShape };
}

/** Softmax along one axis. */
export function softmax(x: Float32Array, shape: readonly number[], axis: number): Float32Array {
  const ax = axis < 0 ? axis + shape.length : axis;
  const n = shape[ax]!;
  const inner = shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  const outer = shape.slice(0, ax).reduce((a, b) => a * b, 1);
  const out = new Float32Array(x.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let m = -Infinity;
      for (let k = 0; k < n; k++) m = Math.max(m, x[base + k * inner]!);
      let s = 0;
      for (let k = 0; k < n; k++) s += Math.exp(x[base + k * inner]! - m);
      for (let k = 0; k < n; k++) out[base + k * inner] = Math.exp(x[base + k * inner]! - m) / s;
    }
  }
  return out;
}

/** Batched matmul on the last two axes with broadcasting over the leading ones. */
/**
 * Maps a linear index over the broadcast shape `lead` to the linear index of the same element in
 * `src`, a shape that broadcasts to `lead` (numpy rules: missing leading axes and size-1 axes repeat).
 */
export function broadcastIndex(lin: number, lead: readonly number[], src: readonly number[]): number {
  let rem = lin;
  let res = 0;
  let mul = 1;
  for (let d = lead.length - 1; d >= 0; d--) {
    const coord = rem % lead[d]!;
    rem = Math.floor(rem / lead[d]!);
    const sd = d - (lead.length - src.length);
    if (sd >= 0) {
      const size = src[sd]!;
      res += (size === 1 ? 0 : coord) * mul;
      mul *= size;
    }
  }
  return res;
}

export function matmul(
  a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[],
): { data: Float32Array; shape: number[] } {
  const a2 = aShape.length === 1 ? [1, aShape[0]!] : [...aShape];
  const b2 = bShape.length === 1 ? [bShape[0]!, 1] : [...bShape];
  const M = a2[a2.length - 2]!;
  const K = a2[a2.length - 1]!;
  const N = b2[b2.length - 1]!;
  if (b2[b2.length - 2] !== K) throw new Error(`matmul: inner dims differ, [${aShape}] @ [${bShape}]`);
  const lead = broadcastShape(a2.slice(0, -2), b2.slice(0, -2));
  const batch = lead.reduce((x, y) => x * y, 1);
  const out = new Float32Array(batch * M * N);
  const aLead = a2.slice(0, -2);
  const bLead = b2.slice(0, -2);
  const idxOf = (lin: number, src: number[]): number => broadcastIndex(lin, lead, src);
  for (let i = 0; i < batch; i++) {
    gemmNN(a, b, M, N, K, out, idxOf(i, aLead) * M * K, idxOf(i, bLead) * K * N, i * M * N);
  }
  let shape = [...lead, M, N];
  if (aShape.length === 1) shape = [...lead, N];
  if (bShape.length === 1) shape = aShape.length === 1 ? [...lead] : [...lead, M];
  return { data: out, shape };
}
