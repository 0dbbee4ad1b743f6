// Depthwise convolution on small maps with the channels in the vector lanes (CONV_DEPTHWISE_PACKED,
// conv.c's rule takes it where depthwise_packed_shape says; also one input channel to 1..4 outputs). NCHW puts one channel's plane in a
// row of memory, and a map a few pixels wide (DS-CNN's 25 x 5) leaves most of an output-row vector
// idle or needs a mask per tap; here 4 output channels are computed at once, one per lane:
//   1. once per call: the table of where each input pixel goes in the zero-padded plane [Hp, Wp]
//      (pixels the window never reads go to one spare slot), and of where each output pixel's
//      window starts in it (any stride and dilation), and the padded block's zeros;
//   2. per block of 4 output planes (4 consecutive planes n * O + o of the batch, so that a layer of
//      1 to 3 output channels fills its lanes from the next images): their 4 input planes transposed 4 pixels at a time
//      (4 loads, 8 shuffles) into the padded block [Hp][Wp][4] (channel innermost); the border
//      keeps the zeros written once;
//   3. per 8 (then 4) output pixels: an accumulator per pixel (4 channels each) started at the
//      bias, then for each tap t one weight vector (the 4 channels' tap t, gathered once per block)
//      times the pixels' inputs, each a single aligned load; the accumulators transposed back, 4 at
//      a time, into 4 pixels of each channel's output plane. The last group overlaps the one before
//      when the outputs are not a multiple of 4 (it stores the same values again).
//      k x 3 kernels at horizontal stride 1 (DS-CNN's 3 x 3) go row by row instead, in runs of 4
//      or 5 neighbouring outputs (then 1 to 3) that load each input pixel of a kernel row once
//      (row_run): 7 loads for 15 multiply-adds of a 5-wide row instead of 15 (1.25x measured).
// Each output is bias + its taps in row-major order, multiplied and added one at a time (MADD), as
// conv.c's wide depthwise kernel sums them. Blocks past the last channel repeat its plane and
// weights in the idle lanes and store only the real channels. The padded block and the tables are
// SCRATCH buffers of this file (thread-local in the threaded build), so nothing is allocated.
#include "kernels.h"

/* Each specialisation of a block or plane loop is a function of its own (see conv.c's NOINLINE). */
#define NOINLINE __attribute__((noinline))

/* Pixels of the padded plane (one spare slot included), of the input and of the output, at most. */
#define DWP_MAX_PIXELS 2048
/* Taps (KH*KW) at most: the block's weight vectors stay on the stack. */
#define DWP_MAX_TAPS 64

static SCRATCH float dwp_block[4 * DWP_MAX_PIXELS] __attribute__((aligned(16)));
static SCRATCH int dwp_in[DWP_MAX_PIXELS];
static SCRATCH int dwp_out[DWP_MAX_PIXELS];

int depthwise_packed_shape(int C, int H, int W, int O, int KH, int KW, int G, int sh, int sw, int dh, int dw,
                           int OH, int OW) {
  // Depthwise (group C), or one input channel to at most 4 outputs (a low-rank stage's k x k
  // filter, e.g. DS-CNN's first conv at rank 1), which the GEMM runs as a matrix-vector product.
  if (G != C || O % C != 0 || (G == 1 && O > 4)) return 0;
  const long long Hp = (long long)(OH - 1) * sh + (long long)(KH - 1) * dh + 1;
  const long long Wp = (long long)(OW - 1) * sw + (long long)(KW - 1) * dw + 1;
  // Narrow maps (rows under 16 outputs), where the row-vectorised kernels idle lanes or mask taps,
  // and strided ones (the plain kernel is scalar there); k x 1 and 1 x k stages on wide rows stay
  // on the wide kernel, which reads them straight from the plane (bench/convPaths.ts).
  const int narrow = OW < 16 || sh != 1 || sw != 1;
  return narrow && KH * KW <= DWP_MAX_TAPS && OH * OW >= 4 && Hp * Wp + 1 <= DWP_MAX_PIXELS &&
         (long long)H * W <= DWP_MAX_PIXELS && (long long)OH * OW <= DWP_MAX_PIXELS;
}

/* 4 x 4 transpose: rows r0..r3 in, columns out (c[j] lane i = r[i] lane j). */
static inline __attribute__((always_inline)) void transpose4(v128_t r0, v128_t r1, v128_t r2, v128_t r3, v128_t *c) {
  const v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
  const v128_t t2 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
  c[0] = wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5);
  c[1] = wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7);
  c[2] = wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5);
  c[3] = wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7);
}

/* Four planes of S pixels into the padded block: pixel p of plane j to dwp_block[4 * dwp_in[p] + j]. */
static NOINLINE void pack_planes(const float *x0, const float *x1, const float *x2, const float *x3, int S) {
  int p = 0;
  for (; p + 4 <= S; p += 4) {
    v128_t c[4];
    transpose4(wasm_v128_load(x0 + p), wasm_v128_load(x1 + p), wasm_v128_load(x2 + p), wasm_v128_load(x3 + p), c);
    wasm_v128_store(dwp_block + 4 * dwp_in[p], c[0]);
    wasm_v128_store(dwp_block + 4 * dwp_in[p + 1], c[1]);
    wasm_v128_store(dwp_block + 4 * dwp_in[p + 2], c[2]);
    wasm_v128_store(dwp_block + 4 * dwp_in[p + 3], c[3]);
  }
  for (; p < S; p++) {
    float *d = dwp_block + 4 * dwp_in[p];
    d[0] = x0[p], d[1] = x1[p], d[2] = x2[p], d[3] = x3[p];
  }
}

/*
 * The outputs of one block: L pixels (L >= 4), NC <= 4 real channels at y[j] (plane j's first
 * output). T taps at float offsets off[t] from a pixel's window start, weights wv[t].
 */
/*
 * NP (4 or 8) output pixels from q0. Tap (ky, kx) of a pixel reads its window start + ky*rs +
 * kx*cs floats; with KH, KW and cs constants where inlined (cs = 4: no horizontal dilation) each
 * kernel row costs one address and its taps are loads at fixed offsets from it.
 */
static inline __attribute__((always_inline)) void group(
    const int NP, const int KH, const int KW, const int cs, int rs, const v128_t *wv, v128_t b, int q0, int NC,
    float *y0, float *y1, float *y2, float *y3) {
  const float *p[8];
  for (int i = 0; i < NP; i++) p[i] = dwp_block + 4 * dwp_out[q0 + i];
  v128_t a[8];
  for (int i = 0; i < NP; i++) a[i] = b;
  for (int ky = 0; ky < KH; ky++)
    for (int i = 0; i < NP; i++) {
      const float *r = p[i] + ky * rs;
      for (int kx = 0; kx < KW; kx++) a[i] = MADD(a[i], wv[ky * KW + kx], wasm_v128_load(r + kx * cs));
    }
  for (int h = 0; h < NP; h += 4) {
    v128_t c[4];
    transpose4(a[h], a[h + 1], a[h + 2], a[h + 3], c);
    const int q = q0 + h;
    wasm_v128_store(y0 + q, c[0]);
    if (NC > 1) wasm_v128_store(y1 + q, c[1]);
    if (NC > 2) wasm_v128_store(y2 + q, c[2]);
    if (NC > 3) wasm_v128_store(y3 + q, c[3]);
  }
}

/*
 * The outputs of one block: L pixels (L >= 4) in groups of 8, then 4 (the last overlapping the one
 * before), NC <= 4 real channels at y0..y3 (each plane's first output).
 */
static inline __attribute__((always_inline)) void block_outputs(
    const int KH, const int KW, const int cs, int rs, const v128_t *wv, v128_t b, int L, int NC,
    float *y0, float *y1, float *y2, float *y3) {
  int q = 0;
  for (; q + 8 <= L; q += 8) group(8, KH, KW, cs, rs, wv, b, q, NC, y0, y1, y2, y3);
  for (; q < L; q += 4) group(4, KH, KW, cs, rs, wv, b, imin(q, L - 4), NC, y0, y1, y2, y3);
}

/*
 * Stride 1 along the row and no horizontal dilation, KW = 3: a run of NP <= 5 neighbouring outputs
 * of one row shares its inputs, so each kernel row loads NP + 2 pixels once (one address, fixed
 * offsets) for its 3 * NP multiply-adds, instead of a load per tap. The outputs are oy's columns
 * ox .. ox + NP - 1 at q = oy * OW + ox; 4 of them go out transposed as one vector per channel,
 * the others lane by lane. Same sums, in the same order, as group().
 */
static inline __attribute__((always_inline)) void row_run(
    const int NP, const int KH, const float *r0, int rs, const v128_t *wv, v128_t b, int q, int NC,
    float *y0, float *y1, float *y2, float *y3) {
  v128_t a[5];
  for (int i = 0; i < NP; i++) a[i] = b;
  for (int ky = 0; ky < KH; ky++) {
    const float *r = r0 + ky * rs;
    v128_t in[7];
    for (int j = 0; j < NP + 2; j++) in[j] = wasm_v128_load(r + 4 * j);
    const v128_t w0 = wv[3 * ky], w1 = wv[3 * ky + 1], w2 = wv[3 * ky + 2];
    for (int i = 0; i < NP; i++) {
      a[i] = MADD(a[i], w0, in[i]);
      a[i] = MADD(a[i], w1, in[i + 1]);
      a[i] = MADD(a[i], w2, in[i + 2]);
    }
  }
  int i = 0;
  if (NP >= 4) {
    v128_t c[4];
    transpose4(a[0], a[1], a[2], a[3], c);
    wasm_v128_store(y0 + q, c[0]);
    if (NC > 1) wasm_v128_store(y1 + q, c[1]);
    if (NC > 2) wasm_v128_store(y2 + q, c[2]);
    if (NC > 3) wasm_v128_store(y3 + q, c[3]);
    i = 4;
  }
  for (; i < NP; i++) {
    y0[q + i] = wasm_f32x4_extract_lane(a[i], 0);
    if (NC > 1) y1[q + i] = wasm_f32x4_extract_lane(a[i], 1);
    if (NC > 2) y2[q + i] = wasm_f32x4_extract_lane(a[i], 2);
    if (NC > 3) y3[q + i] = wasm_f32x4_extract_lane(a[i], 3);
  }
}

/* One block's outputs, row by row, in runs of 4 (of 5 when a row ends one after), then 1 to 3. */
static inline __attribute__((always_inline)) void block_rows(
    const int KH, int OH, int OW, int sh, int rs, int Wp, const v128_t *wv, v128_t b, int NC,
    float *y0, float *y1, float *y2, float *y3) {
  for (int oy = 0; oy < OH; oy++) {
    const float *rowp = dwp_block + 4 * oy * sh * Wp;
    const int q = oy * OW;
    int ox = 0;
    for (; ox + 4 <= OW; ox += 4) {
      if (OW - ox == 5) {
        row_run(5, KH, rowp + 4 * ox, rs, wv, b, q + ox, NC, y0, y1, y2, y3);
        ox += 5;
        break;
      }
      row_run(4, KH, rowp + 4 * ox, rs, wv, b, q + ox, NC, y0, y1, y2, y3);
    }
    const int left = OW - ox;
    if (left == 3) row_run(3, KH, rowp + 4 * ox, rs, wv, b, q + ox, NC, y0, y1, y2, y3);
    else if (left == 2) row_run(2, KH, rowp + 4 * ox, rs, wv, b, q + ox, NC, y0, y1, y2, y3);
    else if (left == 1) row_run(1, KH, rowp + 4 * ox, rs, wv, b, q + ox, NC, y0, y1, y2, y3);
  }
}

/*
 * block_rows' and block_outputs' specialisations, a function each. Those of a fixed tap count copy
 * the weight vectors into a local array first, which the compiler then keeps in locals (as it did
 * when they were inlined into depthwise_packed) instead of reloading them from memory.
 */
static NOINLINE void rows_3x3(int OH, int OW, int sh, int rs, int Wp, const v128_t *restrict wv, v128_t b, int NC,
                              float *y0, float *y1, float *y2, float *y3) {
  v128_t w[9];
  for (int t = 0; t < 9; t++) w[t] = wv[t];
  block_rows(3, OH, OW, sh, rs, Wp, w, b, NC, y0, y1, y2, y3);
}
static NOINLINE void rows_kx3(int KH, int OH, int OW, int sh, int rs, int Wp, const v128_t *restrict wv, v128_t b, int NC,
                              float *y0, float *y1, float *y2, float *y3) {
  block_rows(KH, OH, OW, sh, rs, Wp, wv, b, NC, y0, y1, y2, y3);
}
static NOINLINE void outputs_3x3(int rs, const v128_t *restrict wv, v128_t b, int L, int NC, float *y0, float *y1, float *y2, float *y3) {
  v128_t w[9];
  for (int t = 0; t < 9; t++) w[t] = wv[t];
  block_outputs(3, 3, 4, rs, w, b, L, NC, y0, y1, y2, y3);
}
static NOINLINE void outputs_5x5(int rs, const v128_t *restrict wv, v128_t b, int L, int NC, float *y0, float *y1, float *y2, float *y3) {
  v128_t w[25];
  for (int t = 0; t < 25; t++) w[t] = wv[t];
  block_outputs(5, 5, 4, rs, w, b, L, NC, y0, y1, y2, y3);
}
/* Any KH x KW: the groups of 8 and of 4 pixels each a function (their tap loops are not unrolled). */
static NOINLINE void group8_any(int KH, int KW, int cs, int rs, const v128_t *restrict wv, v128_t b, int q0, int NC,
                                float *y0, float *y1, float *y2, float *y3) {
  group(8, KH, KW, cs, rs, wv, b, q0, NC, y0, y1, y2, y3);
}
static NOINLINE void group4_any(int KH, int KW, int cs, int rs, const v128_t *restrict wv, v128_t b, int q0, int NC,
                                float *y0, float *y1, float *y2, float *y3) {
  group(4, KH, KW, cs, rs, wv, b, q0, NC, y0, y1, y2, y3);
}
static void outputs_any(int KH, int KW, int cs, int rs, const v128_t *wv, v128_t b, int L, int NC,
                        float *y0, float *y1, float *y2, float *y3) {
  int q = 0;
  for (; q + 8 <= L; q += 8) group8_any(KH, KW, cs, rs, wv, b, q, NC, y0, y1, y2, y3);
  for (; q < L; q += 4) group4_any(KH, KW, cs, rs, wv, b, imin(q, L - 4), NC, y0, y1, y2, y3);
}

/*
 * x [N, C, H, W], w [O, 1, KH, KW] (O = C * mult, group C), bias [O] or 0 -> out [N, O, OH, OW];
 * the shapes are ones depthwise_packed_shape accepts.
 */
void depthwise_packed(const float *x, const float *w, const float *bias, float *out,
                      int N, int C, int H, int W, int O, int KH, int KW, int sh, int sw,
                      int pt, int pl, int dh, int dw, int OH, int OW) {
  const int mult = O / C, T = KH * KW, S = H * W, L = OH * OW;
  const int Hp = (OH - 1) * sh + (KH - 1) * dh + 1, Wp = (OW - 1) * sw + (KW - 1) * dw + 1;
  const int spare = Hp * Wp;
  // Where the input pixels go: inside the window at row iy + pt, column ix + pl; else the spare slot.
  for (int iy = 0, p = 0; iy < H; iy++) {
    const int y = iy + pt;
    for (int ix = 0; ix < W; ix++, p++) {
      const int xx = ix + pl;
      dwp_in[p] = y < Hp && xx < Wp ? y * Wp + xx : spare;
    }
  }
  for (int oy = 0, q = 0; oy < OH; oy++)
    for (int ox = 0; ox < OW; ox++, q++) dwp_out[q] = oy * sh * Wp + ox * sw;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int i = 0; i <= spare; i++) wasm_v128_store(dwp_block + 4 * i, zero);
  v128_t wv[DWP_MAX_TAPS];
  // The lanes of a block are 4 consecutive output planes of the batch (plane i = n * O + o), so a
  // layer with fewer than 4 output channels (a rank-1 stage's k x k filter: O = 1) fills its lanes
  // from the next images instead of leaving them idle: N * O / 4 blocks, not N * ceil(O / 4).
  const int planes = N * O;
  for (int i = 0; i < planes; i += 4) {
    {
      const int NC = imin(4, planes - i);
      int oc[4];
      const float *xs[4];
      for (int j = 0; j < 4; j++) {
        const int plane = i + imin(j, NC - 1), n = plane / O;
        oc[j] = plane - n * O;
        xs[j] = x + ((long long)n * C + oc[j] / mult) * S;
      }
      pack_planes(xs[0], xs[1], xs[2], xs[3], S);
      for (int t = 0; t < T; t++) {
        v128_t v = wasm_f32x4_splat(w[oc[0] * T + t]);
        v = wasm_f32x4_replace_lane(v, 1, w[oc[1] * T + t]);
        v = wasm_f32x4_replace_lane(v, 2, w[oc[2] * T + t]);
        wv[t] = wasm_f32x4_replace_lane(v, 3, w[oc[3] * T + t]);
      }
      v128_t b = zero;
      if (bias) {
        b = wasm_f32x4_splat(bias[oc[0]]);
        b = wasm_f32x4_replace_lane(b, 1, bias[oc[1]]);
        b = wasm_f32x4_replace_lane(b, 2, bias[oc[2]]);
        b = wasm_f32x4_replace_lane(b, 3, bias[oc[3]]);
      }
      float *y0 = out + (long long)i * L, *y1 = y0 + L, *y2 = y0 + 2 * L, *y3 = y0 + 3 * L;
      const int rs = 4 * dh * Wp;
      if (KH == 3 && KW == 3 && dw == 1 && sw == 1) rows_3x3(OH, OW, sh, rs, Wp, wv, b, NC, y0, y1, y2, y3);
      else if (KW == 3 && dw == 1 && sw == 1) rows_kx3(KH, OH, OW, sh, rs, Wp, wv, b, NC, y0, y1, y2, y3);
      else if (KH == 3 && KW == 3 && dw == 1) outputs_3x3(rs, wv, b, L, NC, y0, y1, y2, y3);
      else if (KH == 5 && KW == 5 && dw == 1) outputs_5x5(rs, wv, b, L, NC, y0, y1, y2, y3);
      else outputs_any(KH, KW, 4 * dw, rs, wv, b, L, NC, y0, y1, y2, y3);
    }
  }
}

/*
 * Depthwise "valid" convolution (CONV_DEPTHWISE_VALID) of a 1 x k or k x 1 kernel: both strides 1,
 * no padding, every tap inside the input (OH + (KH-1)*dh <= H, OW + (KW-1)*dw <= W): the separable
 * stages of a CP factorisation of a conv without padding (LeNet-5's 5 x 1 on 12 x 12 and 1 x 5 on
 * 8 x 12). Register tiles read straight from the input plane, each tap a weight splat and one
 * unaligned load per vector: no padded copy, no transposes and no copy-out, which the lane-packed
 * kernel above and the wide kernel of conv.c need.
 *   1 x k (rows of 4 or more outputs): each output row a run of 8- (or 4-) wide tiles, the last
 *     overlapping the one before, 4 rows per tile where the map has them (8 accumulator chains);
 *   k x 1 with OW == W: output q = oy*W + ox reads input q + ky*dh*W, so the plane is one row of
 *     OH*W outputs: 32 at a time (8 chains), then 8 (the last overlapping), then 4.
 * Each output is bias + its taps in order, multiplied and added one at a time, as the other
 * depthwise kernels sum them.
 */
int depthwise_valid_shape(int C, int H, int W, int O, int KH, int KW, int G, int sh, int sw, int pt, int pl,
                          int dh, int dw, int OH, int OW) {
  const int valid = G == C && G > 1 && O % C == 0 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && OH >= 1 &&
                    (long long)OH + (long long)(KH - 1) * dh <= H && (long long)OW + (long long)(KW - 1) * dw <= W;
  if (!valid || KH * KW > DWP_MAX_TAPS) return 0;
  if (KH == 1) return OW >= 4;
  if (KW == 1) return OW == W && (long long)OH * OW >= 4;
  return 0;
}

/*
 * R tile rows (input xs, output ys floats apart) x NV vectors of outputs at yp, from the input at
 * xp; tap (ky, kx) reads ky*dh*W + kx*dw further on.
 */
static inline __attribute__((always_inline)) void valid_tile(
    const int R, const int NV, const int KH, const int KW, const float *xp, int xs, int W, int dh, int dw,
    const float *wk, v128_t b, float *yp, int ys) {
  v128_t a[4][2];
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) a[r][v] = b;
  for (int ky = 0; ky < KH; ky++)
    for (int kx = 0; kx < KW; kx++) {
      const v128_t wv = wasm_v128_load32_splat(wk + ky * KW + kx);
      const float *xq = xp + ky * dh * W + kx * dw;
      for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) a[r][v] = MADD(a[r][v], wv, wasm_v128_load(xq + r * xs + 4 * v));
    }
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) wasm_v128_store(yp + r * ys + 4 * v, a[r][v]);
}

/* 1 x KW: rows in fours, then one by one; each row in tiles of 4 * NV columns, the last overlapping. */
static inline __attribute__((always_inline)) void valid_rows(
    const int NV, const int KW, const float *xc, int W, int dw, const float *wk, v128_t b, float *yo, int OH, int OW) {
  const int TW = 4 * NV;
  int oy = 0;
  for (; oy + 4 <= OH; oy += 4)
    for (int ox = 0; ox < OW; ox += TW) {
      const int o0 = imin(ox, OW - TW);
      valid_tile(4, NV, 1, KW, xc + oy * W + o0, W, W, 1, dw, wk, b, yo + oy * OW + o0, OW);
    }
  for (; oy < OH; oy++)
    for (int ox = 0; ox < OW; ox += TW) {
      const int o0 = imin(ox, OW - TW);
      valid_tile(1, NV, 1, KW, xc + oy * W + o0, W, W, 1, dw, wk, b, yo + oy * OW + o0, OW);
    }
}

/* KH x 1 on a plane of L = OH*W outputs (L >= 4): 32 at a time, then 8, the last overlapping, or one 4-wide vector run. */
static inline __attribute__((always_inline)) void valid_column(
    const int KH, const float *xc, int W, int dh, const float *wk, v128_t b, float *yo, int L) {
  int q = 0;
  for (; q + 32 <= L; q += 32) valid_tile(4, 2, KH, 1, xc + q, 8, W, dh, 1, wk, b, yo + q, 8);
  if (L >= 8) {
    for (; q < L; q += 8) {
      const int q0 = imin(q, L - 8);
      valid_tile(1, 2, KH, 1, xc + q0, 8, W, dh, 1, wk, b, yo + q0, 8);
    }
    return;
  }
  for (; q < L; q += 4) {
    const int q0 = imin(q, L - 4);
    valid_tile(1, 1, KH, 1, xc + q0, 4, W, dh, 1, wk, b, yo + q0, 4);
  }
}

/* valid_rows' and valid_column's specialisations, a function each. */
static NOINLINE void valid_rows8_3(const float *xc, int W, int dw, const float *restrict wk, v128_t b, float *yo, int OH, int OW) {
  valid_rows(2, 3, xc, W, dw, wk, b, yo, OH, OW);
}
static NOINLINE void valid_rows8_5(const float *xc, int W, int dw, const float *restrict wk, v128_t b, float *yo, int OH, int OW) {
  valid_rows(2, 5, xc, W, dw, wk, b, yo, OH, OW);
}
static NOINLINE void valid_rows8(int KW, const float *xc, int W, int dw, const float *restrict wk, v128_t b, float *yo, int OH, int OW) {
  valid_rows(2, KW, xc, W, dw, wk, b, yo, OH, OW);
}
static NOINLINE void valid_rows4(int KW, const float *xc, int W, int dw, const float *restrict wk, v128_t b, float *yo, int OH, int OW) {
  valid_rows(1, KW, xc, W, dw, wk, b, yo, OH, OW);
}
static NOINLINE void valid_column3(const float *xc, int W, int dh, const float *restrict wk, v128_t b, float *yo, int L) {
  valid_column(3, xc, W, dh, wk, b, yo, L);
}
static NOINLINE void valid_column5(const float *xc, int W, int dh, const float *restrict wk, v128_t b, float *yo, int L) {
  valid_column(5, xc, W, dh, wk, b, yo, L);
}
static NOINLINE void valid_column_any(int KH, const float *xc, int W, int dh, const float *restrict wk, v128_t b, float *yo, int L) {
  valid_column(KH, xc, W, dh, wk, b, yo, L);
}

void depthwise_valid(const float *x, const float *w, const float *bias, float *out,
                     int N, int C, int H, int W, int O, int KH, int KW, int dh, int dw, int OH, int OW) {
  const int mult = O / C, T = KH * KW;
  for (int n = 0; n < N; n++)
    for (int o = 0; o < O; o++) {
      const float *xc = x + ((long long)n * C + o / mult) * H * W;
      const float *wk = w + o * T;
      float *yo = out + ((long long)n * O + o) * OH * OW;
      const v128_t b = wasm_f32x4_splat(bias ? bias[o] : 0.0f);
      if (KH == 1) {
        if (OW >= 8) {
          if (KW == 3) valid_rows8_3(xc, W, dw, wk, b, yo, OH, OW);
          else if (KW == 5) valid_rows8_5(xc, W, dw, wk, b, yo, OH, OW);
          else valid_rows8(KW, xc, W, dw, wk, b, yo, OH, OW);
        } else {
          valid_rows4(KW, xc, W, dw, wk, b, yo, OH, OW);
        }
      } else {
        if (KH == 3) valid_column3(xc, W, dh, wk, b, yo, OH * W);
        else if (KH == 5) valid_column5(xc, W, dh, wk, b, yo, OH * W);
        else valid_column_any(KH, xc, W, dh, wk, b, yo, OH * W);
      }
    }
}
