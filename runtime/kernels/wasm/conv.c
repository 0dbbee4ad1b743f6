// Convolution (ONNX Conv semantics: cross-correlation, NCHW, [top, left, bottom, right] pads).
// conv_path picks one kernel per call from the shapes alone (conv2d_path exports the rule):
//   CONV_IM2COL      im2col of one group into `cols` [K = Cg*KH*KW, P = OH*OW], then w_g [Og, K] x cols
//   CONV_1X1         1x1 stride 1 no pad: the image itself is the [C, HW] matrix of a packed GEMM
//   CONV_DEPTHWISE   Cg == 1, G > 1: direct, vectorised along the output row when the horizontal
//                    stride is 1, the output row read and written once per tap
//   CONV_DIRECT      horizontal stride 1 or 2, output rows of 8 or more: register-blocked direct
//                    convolution, 4 output channels x 8 outputs of a row per tile, accumulators
//                    started at the bias and stored once, no im2col and no packing. A padded input
//                    is first copied with its zero border into `cols` (checked to be at most the
//                    im2col matrix's Cg*KH*KW*OH*OW floats); at stride 2 each padded row is stored
//                    as its even columns then its odd columns, so that every tap of 8 neighbouring
//                    outputs is again 8 consecutive floats
//   CONV_1X1_DIRECT  the plain 1x1 case as CONV_DIRECT on one "row" of HW outputs (no packing)
//   CONV_DEPTHWISE_VALID depthwise 1 x k or k x 1 without padding at stride 1 (depthwise.c):
//                    register tiles read straight from the input plane
//   CONV_DEPTHWISE_WIDE  depthwise with both strides 1: each tap is a constant offset into the
//                    padded plane once the output is computed Wp columns wide, so one output plane
//                    is a single run of 8-wide register tiles (narrow maps included); the extra
//                    columns are dropped when the plane is copied out
// The direct kernels re-read one image's input group once per 4 output channels, so they are
// used while it stays cache-sized (DIRECT_MAX_INPUT); larger inputs take the packed GEMM.
// Where a run of 8-wide tiles does not divide the row, the last tile overlaps the one before
// (it stores the same values again), so no tile reads or writes past its row.
#include "kernels.h"

/*
 * Each path is a function of its own (NOINLINE), and so is each specialisation of a register-tile
 * loop (one per constant shape): conv2d is only the dispatcher. V8 tiers a hot wasm function up to
 * TurboFan one function at a time, so a model then recompiles only the paths it runs, each in a
 * small compile job; with every path inlined into conv2d (35 KB of code) the tier-up of that one
 * function held up to 4 MB of compiler memory at once (bench/rssBreakdown.ts).
 */
#define NOINLINE __attribute__((noinline))

enum { CONV_IM2COL = 0, CONV_1X1 = 1, CONV_DEPTHWISE = 2, CONV_DIRECT = 3, CONV_1X1_DIRECT = 4, CONV_DEPTHWISE_WIDE = 5,
       CONV_WINOGRAD = 6, CONV_DEPTHWISE_PACKED = 7, CONV_1X1_STRIDED = 8, CONV_DEPTHWISE_VALID = 9, CONV_DEPTHWISE_ROWS = 10,
       CONV_DEPTHWISE_HROWS = 11, CONV_DEPTHWISE_S2K3 = 12 };

#define DIRECT_MAX_INPUT (64 * 1024)

#define DIRECT_MAX_KW 64
/* Taps (KH*KW) of the wide depthwise kernel's offset table. */
#define WIDE_MAX_TAPS 256
/* Taps per output (Cg*KH*KW) the direct kernels' tap table and packed weights hold. */
#define DIRECT_MAX_K 4608

/*
 * The input the direct kernel reads: Hp rows of `row` floats per channel (`plane` floats apart),
 * the input itself when it needs no padding (stride 1), else a copy in `cols`. Tap kx of the
 * output column ox reads row[ox + toff[kx]]: kx*dw at stride 1; at stride 2 the padded column
 * 2*ox + kx*dw, which is in the even (phase 0) or odd (phase 1) half of the row, `half` apart.
 */
typedef struct { int Hp, row, plane, half, inPlace; } direct_geom;

static direct_geom direct_geometry(int H, int W, int KH, int KW, int sh, int sw, int pt, int pl, int dh, int dw, int OH, int OW) {
  direct_geom g;
  g.Hp = (OH - 1) * sh + (KH - 1) * dh + 1;
  if (sw == 1) {
    const int Wp = OW + (KW - 1) * dw;
    g.inPlace = pt == 0 && pl == 0 && g.Hp <= H && Wp <= W;
    g.half = 0;
    g.row = g.inPlace ? W : Wp;
    g.plane = g.inPlace ? H * W : g.Hp * Wp;
  } else {
    g.inPlace = 0;
    g.half = OW + (((KW - 1) * dw) >> 1);
    g.row = 2 * g.half;
    g.plane = g.Hp * g.row;
  }
  return g;
}

/* 16-wide tiles (blocks of one or two output channels): at most a quarter of the row recomputed by the overlapping last tile. */
static int tiles16_pay(int n) { return n >= 16 && 16 * ((n + 15) / 16) <= n + n / 4; }

/* n outputs in 8-wide tiles, the last one overlapping: worth it when at most half a tile per row is recomputed. */
static int tiles_pay(int n) { return n >= 8 && 16 * ((n + 7) / 8) <= 3 * n; }

/* Floats of scratch the wide depthwise kernel needs per channel: padded plane (+ read-past tail) and wide output. */
static long long wide_scratch(int H, int W, int KH, int KW, int pt, int pl, int dh, int dw, int OH, int OW) {
  const int Hp = OH + (KH - 1) * dh, Wp = OW + (KW - 1) * dw;
  const int inPlace = KW == 1 && pt == 0 && pl == 0 && Hp <= H && Wp == W;
  return (inPlace ? 0 : (long long)Hp * Wp + (KW - 1) * dw) + (Wp == OW ? 0 : (long long)OH * Wp);
}

static int flat_shape(int Cg, int G, int H, int W, int KH, int KW, int sh, int sw, int OH, int OW);

static int conv_path_base(int C, int H, int W, int O, int KH, int KW, int G, int sh, int sw, int pt, int pl,
                          int dh, int dw, int OH, int OW) {
  const int Cg = C / G;
  (void)O;
  // Depthwise 1 x k or k x 1 without padding at stride 1 (CP's separable stages of an unpadded
  // conv): straight from the input plane in register tiles (depthwise.c).
  if (Cg == 1 && depthwise_valid_shape(C, H, W, O, KH, KW, G, sh, sw, pt, pl, dh, dw, OH, OW)) return CONV_DEPTHWISE_VALID;
  // Depthwise k x 1 at stride 1, padded, with rows as wide as the input's (a CP stage): the
  // copy-free wide kernel, one run of full vectors over the plane, no column masks; before the
  // lane-packed kernel, whose transposes cost more than the idle lanes of a narrow row here.
  if (Cg == 1 && G > 1 && KW == 1 && flat_shape(Cg, G, H, W, KH, KW, sh, sw, OH, OW) && OH * OW >= 8 &&
      KH <= WIDE_MAX_TAPS && wide_scratch(H, W, KH, KW, pt, pl, dh, dw, OH, OW) <= (long long)KH * OH * OW)
    return CONV_DEPTHWISE_WIDE;
  if (Cg == 1 && depthwise_rows_shape(C, W, O, KH, KW, G, sh, sw, pl, OW)) return CONV_DEPTHWISE_ROWS;  // dwrows.c
  if (Cg == 1 && depthwise_hrows_shape(C, H, W, O, KH, KW, G, sh, sw, pt, pl, dw, OH, OW)) return CONV_DEPTHWISE_HROWS;
  if (Cg == 1 && depthwise_s2k3_shape(C, H, W, O, KH, KW, G, sh, sw, pt, pl, dw, OH, OW)) return CONV_DEPTHWISE_S2K3;
  if (Cg == 1 && depthwise_packed_shape(C, H, W, O, KH, KW, G, sh, sw, dh, dw, OH, OW)) return CONV_DEPTHWISE_PACKED;
  if (Cg == 1 && G > 1) {
    const int wide = sh == 1 && sw == 1 && OH * (OW + (KW - 1) * dw) >= 8 && KH * KW <= WIDE_MAX_TAPS &&
                     wide_scratch(H, W, KH, KW, pt, pl, dh, dw, OH, OW) <= (long long)KH * KW * OH * OW;
    return wide ? CONV_DEPTHWISE_WIDE : CONV_DEPTHWISE;
  }
  if (KH == 1 && KW == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && OH == H && OW == W)
    return (long long)Cg * H * W <= DIRECT_MAX_INPUT && Cg <= DIRECT_MAX_K && tiles_pay(H * W) ? CONV_1X1_DIRECT : CONV_1X1;
  // A strided 1x1 without padding: the sampled pixels gathered into `cols` [Cg, OH*OW] (the im2col
  // matrix of a 1x1), then the direct 1x1 kernel on them.
  if (KH == 1 && KW == 1 && pt == 0 && pl == 0 && (sh > 1 || sw > 1) && (long long)Cg * OH * OW <= DIRECT_MAX_INPUT &&
      Cg <= DIRECT_MAX_K && tiles_pay(OH * OW))
    return CONV_1X1_STRIDED;
  if ((sw != 1 && sw != 2) || KW > DIRECT_MAX_KW || Cg * KH * KW > DIRECT_MAX_K || !tiles_pay(OW)) return CONV_IM2COL;
  const direct_geom g = direct_geometry(H, W, KH, KW, sh, sw, pt, pl, dh, dw, OH, OW);
  if (!g.inPlace && (long long)g.plane > (long long)KH * KW * OH * OW) return CONV_IM2COL;
  if ((long long)Cg * g.plane > DIRECT_MAX_INPUT) return CONV_IM2COL;
  return CONV_DIRECT;
}

/* CONV_WINOGRAD (winograd.c) for the 3x3 stride-1 shapes where it pays, else the rule above. */
static int conv_path(int C, int H, int W, int O, int KH, int KW, int G, int sh, int sw, int pt, int pl,
                     int dh, int dw, int OH, int OW) {
  if (winograd_shape(C, O, KH, KW, G, sh, sw, dh, dw, OH, OW)) return CONV_WINOGRAD;
  return conv_path_base(C, H, W, O, KH, KW, G, sh, sw, pt, pl, dh, dw, OH, OW);
}

EXPORT(conv2d_path) int conv2d_path(int C, int H, int W, int O, int KH, int KW, int G, int sh, int sw, int pt, int pl,
                                    int dh, int dw, int OH, int OW) {
  return conv_path(C, H, W, O, KH, KW, G, sh, sw, pt, pl, dh, dw, OH, OW);
}

/*
 * Copies channels [Cg, H, W] into [Cg, Hp, Wp] at row pt, column pl, zeros around (and clips what
 * lies past Hp, Wp): the planes are zeroed with vector stores, then each row copied in 4-float
 * vectors, the last one overlapping the one before (rows of 4 or more floats).
 */
static NOINLINE void pad_input(const float *x, int Cg, int H, int W, int pt, int pl, int Hp, int Wp, float *dst) {
  const int total = Cg * Hp * Wp;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 4 <= total; i += 4) wasm_v128_store(dst + i, zero);
  for (; i < total; i++) dst[i] = 0.0f;
  const int cw = imin(W, Wp - pl);  // columns of each input row that land inside the padded row
  const int rows = imin(H, Hp - pt);
  if (cw <= 0 || rows <= 0) return;
  for (int c = 0; c < Cg; c++) {
    const float *xc = x + c * H * W;
    float *dc = dst + c * Hp * Wp + pt * Wp + pl;
    for (int iy = 0; iy < rows; iy++) {
      const float *s = xc + iy * W;
      float *d = dc + iy * Wp;
      if (cw >= 4) {
        int k = 0;
        for (; k + 4 <= cw; k += 4) wasm_v128_store(d + k, wasm_v128_load(s + k));
        if (k < cw) wasm_v128_store(d + cw - 4, wasm_v128_load(s + cw - 4));
      } else {
        for (int k = 0; k < cw; k++) d[k] = s[k];
      }
    }
  }
}

/*
 * Copies channels [Cg, H, W] into rows of even then odd padded columns: dst[c][y][p * half + q] = padded(y, 2q + p).
 * Where 8 input columns from 2q - pl are inside the row, one pair of loads and two shuffles give
 * 4 even and 4 odd columns; the rest of a row (its first and last few columns) is copied one by one.
 */
static NOINLINE void pad_phases(const float *x, int Cg, int H, int W, int pt, int pl, int Hp, int half, float *dst) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  const int qlo = (pl + 1) >> 1;  // first q with 2q - pl >= 0
  for (int c = 0; c < Cg; c++) {
    const float *xc = x + c * H * W;
    for (int y = 0; y < Hp; y++) {
      float *d = dst + (c * Hp + y) * 2 * half;
      const int iy = y - pt;
      if (iy < 0 || iy >= H) {
        int i = 0;
        for (; i + 4 <= 2 * half; i += 4) wasm_v128_store(d + i, zero);
        for (; i < 2 * half; i++) d[i] = 0.0f;
        continue;
      }
      const float *s = xc + iy * W;
      int q = 0;
      for (; q < imin(qlo, half); q++) {
        const int ix = 2 * q - pl;
        d[q] = ix >= 0 && ix < W ? s[ix] : 0.0f;
        d[half + q] = ix + 1 >= 0 && ix + 1 < W ? s[ix + 1] : 0.0f;
      }
      for (; q + 4 <= half && 2 * q - pl + 8 <= W; q += 4) {
        const v128_t a = wasm_v128_load(s + 2 * q - pl), b = wasm_v128_load(s + 2 * q - pl + 4);
        wasm_v128_store(d + q, wasm_i32x4_shuffle(a, b, 0, 2, 4, 6));
        wasm_v128_store(d + half + q, wasm_i32x4_shuffle(a, b, 1, 3, 5, 7));
      }
      for (; q < half; q++) {
        const int ix = 2 * q - pl;
        d[q] = ix >= 0 && ix < W ? s[ix] : 0.0f;
        d[half + q] = ix + 1 >= 0 && ix + 1 < W ? s[ix + 1] : 0.0f;
      }
    }
  }
}

/*
 * The direct kernel's inner loop is one run over k < K = Cg*KH*KW, like the GEMM micro-kernel's:
 * koff[k] is where tap k = (c, ky, kx) reads, relative to the tile's first output, and the weights
 * of 4 (2, 1) output channels are packed k-major (wpack[k * MRT + r]) once per block, so each step
 * is 2 input loads, MRT weight splats and 2*MRT multiply-adds.
 */
static SCRATCH int koff[DIRECT_MAX_K];
static SCRATCH float wpack[4 * DIRECT_MAX_K] __attribute__((aligned(16)));

static void tap_offsets(int Cg, int KH, int KW, int plane, int rowStep, const int *toff) {
  int k = 0;
  for (int c = 0; c < Cg; c++)
    for (int ky = 0; ky < KH; ky++)
      for (int kx = 0; kx < KW; kx++) koff[k++] = c * plane + ky * rowStep + toff[kx];
}

/* One tile: MRT output channels x 8 outputs of one row at xt (inputs) and y (outputs, channel stride P). */
static inline __attribute__((always_inline)) void direct_tile(
    const int MRT, const float *xt, int K, const float *bias, float *y, int P) {
  v128_t acc[4][2];
  for (int r = 0; r < MRT; r++) {
    const v128_t b = wasm_f32x4_splat(bias ? bias[r] : 0.0f);
    acc[r][0] = b;
    acc[r][1] = b;
  }
  const float *wk = wpack;
  for (int k = 0; k < K; k++, wk += MRT) {
    const float *xp = xt + koff[k];
    const v128_t x0 = wasm_v128_load(xp), x1 = wasm_v128_load(xp + 4);
    for (int r = 0; r < MRT; r++) {
      const v128_t wv = wasm_v128_load32_splat(wk + r);
      acc[r][0] = MADD(acc[r][0], wv, x0);
      acc[r][1] = MADD(acc[r][1], wv, x1);
    }
  }
  for (int r = 0; r < MRT; r++) {
    wasm_v128_store(y + r * P, acc[r][0]);
    wasm_v128_store(y + r * P + 4, acc[r][1]);
  }
}

/*
 * MRT <= 2 output channels x 16 outputs of one row: four accumulators per channel instead of two,
 * so a block of one or two channels (a low-rank factor stage: 64 -> 1, 32 -> 2) is not held to the
 * latency of two dependent multiply-add chains K long. Same sums, in the same order, as direct_tile.
 */
static inline __attribute__((always_inline)) void direct_tile16(
    const int MRT, const float *xt, int K, const float *bias, float *y, int P) {
  v128_t acc[2][4];
  for (int r = 0; r < MRT; r++) {
    const v128_t b = wasm_f32x4_splat(bias ? bias[r] : 0.0f);
    for (int v = 0; v < 4; v++) acc[r][v] = b;
  }
  const float *wk = wpack;
  for (int k = 0; k < K; k++, wk += MRT) {
    const float *xp = xt + koff[k];
    const v128_t x0 = wasm_v128_load(xp), x1 = wasm_v128_load(xp + 4), x2 = wasm_v128_load(xp + 8), x3 = wasm_v128_load(xp + 12);
    for (int r = 0; r < MRT; r++) {
      const v128_t wv = wasm_v128_load32_splat(wk + r);
      acc[r][0] = MADD(acc[r][0], wv, x0);
      acc[r][1] = MADD(acc[r][1], wv, x1);
      acc[r][2] = MADD(acc[r][2], wv, x2);
      acc[r][3] = MADD(acc[r][3], wv, x3);
    }
  }
  for (int r = 0; r < MRT; r++)
    for (int v = 0; v < 4; v++) wasm_v128_store(y + r * P + 4 * v, acc[r][v]);
}

/* MRT output channels (weights w, row stride K) over the whole output map; the last tile of a row overlaps the one before. */
static inline __attribute__((always_inline)) void direct_block(
    const int MRT, const float *xp, int rs, int sh, const float *w, int K, const float *bias, float *y, int OH, int OW) {
  for (int k = 0; k < K; k++)
    for (int r = 0; r < MRT; r++) wpack[k * MRT + r] = w[r * K + k];
  const int P = OH * OW;
  if (MRT <= 2 && OW >= 16 && tiles16_pay(OW)) {
    for (int oy = 0; oy < OH; oy++) {
      const float *xrow = xp + oy * sh * rs;
      float *yrow = y + oy * OW;
      for (int ox = 0; ox < OW; ox += 16) {
        const int o0 = imin(ox, OW - 16);
        direct_tile16(MRT, xrow + o0, K, bias, yrow + o0, P);
      }
    }
    return;
  }
  for (int oy = 0; oy < OH; oy++) {
    const float *xrow = xp + oy * sh * rs;
    float *yrow = y + oy * OW;
    for (int ox = 0; ox < OW; ox += 8) {
      const int o0 = imin(ox, OW - 8);
      direct_tile(MRT, xrow + o0, K, bias, yrow + o0, P);
    }
  }
}

/* direct_block of 4, 2 and 1 output channels, a function each. */
static NOINLINE void direct_block4(const float *xp, int rs, int sh, const float *w, int K, const float *bias, float *y, int OH, int OW) {
  direct_block(4, xp, rs, sh, w, K, bias, y, OH, OW);
}
static NOINLINE void direct_block2(const float *xp, int rs, int sh, const float *w, int K, const float *bias, float *y, int OH, int OW) {
  direct_block(2, xp, rs, sh, w, K, bias, y, OH, OW);
}
static NOINLINE void direct_block1(const float *xp, int rs, int sh, const float *w, int K, const float *bias, float *y, int OH, int OW) {
  direct_block(1, xp, rs, sh, w, K, bias, y, OH, OW);
}

/*
 * Direct convolution of one image and group: input channels `plane` floats apart with rows `rs`
 * floats apart (the padded copy, or the input itself), w [Og, K] -> y [Og, OH, OW]; toff[kx]: the
 * offset of tap kx in a row.
 */
static NOINLINE void direct_conv(const float *xp, int rs, int plane, const float *w, const float *bias, float *y,
                        int Og, int Cg, int KH, int KW, int sh, int dh, const int *toff, int OH, int OW) {
  const int K = Cg * KH * KW, P = OH * OW;
  tap_offsets(Cg, KH, KW, plane, dh * rs, toff);
  int o = 0;
  for (; o + 4 <= Og; o += 4) direct_block4(xp, rs, sh, w + o * K, K, bias ? bias + o : 0, y + o * P, OH, OW);
  for (; o + 2 <= Og; o += 2) direct_block2(xp, rs, sh, w + o * K, K, bias ? bias + o : 0, y + o * P, OH, OW);
  for (; o < Og; o++) direct_block1(xp, rs, sh, w + o * K, K, bias ? bias + o : 0, y + o * P, OH, OW);
}

/* 1x1, stride 1: x [C, P] (channels `plane` floats apart), w [O, C] -> y [O, P], as one row of P outputs. */
static NOINLINE void pointwise_direct(const float *x, int plane, const float *w, const float *bias, float *y, int O, int C, int P) {
  static const int toff[1] = {0};
  direct_conv(x, P, plane, w, bias, y, O, C, 1, 1, 1, 1, toff, 1, P);
}

/* cols[c][oy][ox] = x[c][oy * sh][ox * sw]: the pixels a strided 1x1 reads (every other one in 8-float pairs at sw = 2). */
static NOINLINE void subsample(const float *x, int Cg, int H, int W, int sh, int sw, int OH, int OW, float *cols) {
  for (int c = 0; c < Cg; c++)
    for (int oy = 0; oy < OH; oy++) {
      const float *s = x + (c * H + oy * sh) * W;
      float *d = cols + (c * OH + oy) * OW;
      int ox = 0;
      if (sw == 2)
        for (; ox + 4 <= OW && 2 * ox + 8 <= W; ox += 4)
          wasm_v128_store(d + ox, wasm_i32x4_shuffle(wasm_v128_load(s + 2 * ox), wasm_v128_load(s + 2 * ox + 4), 0, 2, 4, 6));
      for (; ox < OW; ox++) d[ox] = s[ox * sw];
    }
}

NOINLINE void im2col(const float *x, int H, int W, int Cg, int KH, int KW, int sh, int sw,
            int pt, int pl, int dh, int dw, int OH, int OW, float *cols) {
  const int P = OH * OW;
  int k = 0;
  for (int c = 0; c < Cg; c++) {
    const float *xc = x + c * H * W;
    for (int ky = 0; ky < KH; ky++) {
      for (int kx = 0; kx < KW; kx++, k++) {
        float *row = cols + k * P;
        const int off = kx * dw - pl;
        // Output columns whose input column lies inside the image: lo <= ox < hi.
        int lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
        int hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1;
        lo = imin(lo, OW);
        hi = imax(imin(hi, OW), lo);
        for (int oy = 0; oy < OH; oy++) {
          float *r = row + oy * OW;
          const int iy = oy * sh - pt + ky * dh;
          if (iy < 0 || iy >= H) {
            for (int ox = 0; ox < OW; ox++) r[ox] = 0.0f;
            continue;
          }
          const float *xr = xc + iy * W + off;
          for (int ox = 0; ox < lo; ox++) r[ox] = 0.0f;
          if (sw == 1) {
            int ox = lo;
            for (; ox + 4 <= hi; ox += 4) wasm_v128_store(r + ox, wasm_v128_load(xr + ox));
            for (; ox < hi; ox++) r[ox] = xr[ox];
          } else {
            for (int ox = lo; ox < hi; ox++) r[ox] = xr[ox * sw];
          }
          for (int ox = hi; ox < OW; ox++) r[ox] = 0.0f;
        }
      }
    }
  }
}

static NOINLINE void depthwise(const float *x, const float *w, const float *bias, float *out,
                      int N, int C, int H, int W, int O, int KH, int KW, int sh, int sw,
                      int pt, int pl, int dh, int dw, int OH, int OW) {
  const int mult = O / C;  // output channels per input channel
  for (int n = 0; n < N; n++) {
    for (int o = 0; o < O; o++) {
      const float *xc = x + (n * C + o / mult) * H * W;
      const float *wk = w + o * KH * KW;
      float *yo = out + (n * O + o) * OH * OW;
      const float b = bias ? bias[o] : 0.0f;
      for (int oy = 0; oy < OH; oy++) {
        float *yr = yo + oy * OW;
        for (int ox = 0; ox < OW; ox++) yr[ox] = b;
        for (int ky = 0; ky < KH; ky++) {
          const int iy = oy * sh - pt + ky * dh;
          if (iy < 0 || iy >= H) continue;
          for (int kx = 0; kx < KW; kx++) {
            const int off = kx * dw - pl;
            int lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
            int hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1;
            hi = imin(hi, OW);
            if (lo >= hi) continue;
            const float *xr = xc + iy * W + off;
            const float wv = wk[ky * KW + kx];
            if (sw == 1) {
              const v128_t wvv = wasm_f32x4_splat(wv);
              int ox = lo;
              for (; ox + 4 <= hi; ox += 4)
                wasm_v128_store(yr + ox, MADD(wasm_v128_load(yr + ox), wvv, wasm_v128_load(xr + ox)));
              for (; ox < hi; ox++) yr[ox] += wv * xr[ox];
            } else {
              for (int ox = lo; ox < hi; ox++) yr[ox] += wv * xr[ox * sw];
            }
          }
        }
      }
    }
  }
}

/*
 * One plane of the wide depthwise kernel: dst[q] = bias + sum over taps t < T of
 * wk[t] * xp[q + off[t]] for q < L. 16 outputs per tile when L allows (four independent
 * accumulator chains, so the multiply-adds of one tile do not wait on each other), else 8; the
 * last tile overlaps the one before. HOLD (a constant where inlined): the T <= 9 weights stay in
 * registers for the whole plane instead of being splat from memory at every tile.
 */
static inline __attribute__((always_inline)) void wide_plane(
    const int HOLD, const int T, const int *off, const float *wk, float bias, const float *xp, float *dst, int L) {
  v128_t wv[9];
  if (HOLD)
    for (int t = 0; t < T; t++) wv[t] = wasm_v128_load32_splat(wk + t);
  const v128_t b = wasm_f32x4_splat(bias);
  if (L >= 16) {
    for (int q = 0; q < L; q += 16) {
      const int q0 = imin(q, L - 16);
      v128_t a0 = b, a1 = b, a2 = b, a3 = b;
      for (int t = 0; t < T; t++) {
        const v128_t w = HOLD ? wv[t] : wasm_v128_load32_splat(wk + t);
        const float *xq = xp + q0 + off[t];
        a0 = MADD(a0, w, wasm_v128_load(xq));
        a1 = MADD(a1, w, wasm_v128_load(xq + 4));
        a2 = MADD(a2, w, wasm_v128_load(xq + 8));
        a3 = MADD(a3, w, wasm_v128_load(xq + 12));
      }
      wasm_v128_store(dst + q0, a0);
      wasm_v128_store(dst + q0 + 4, a1);
      wasm_v128_store(dst + q0 + 8, a2);
      wasm_v128_store(dst + q0 + 12, a3);
    }
    return;
  }
  for (int q = 0; q < L; q += 8) {
    const int q0 = imin(q, L - 8);
    v128_t a0 = b, a1 = b;
    for (int t = 0; t < T; t++) {
      const v128_t w = HOLD ? wv[t] : wasm_v128_load32_splat(wk + t);
      const float *xq = xp + q0 + off[t];
      a0 = MADD(a0, w, wasm_v128_load(xq));
      a1 = MADD(a1, w, wasm_v128_load(xq + 4));
    }
    wasm_v128_store(dst + q0, a0);
    wasm_v128_store(dst + q0 + 4, a1);
  }
}

/* wide_plane's three specialisations, a function each. */
static NOINLINE void wide_plane9(const int *restrict off, const float *restrict wk, float bias, const float *xp, float *dst, int L) {
  wide_plane(1, 9, off, wk, bias, xp, dst, L);
}
static NOINLINE void wide_plane_held(int T, const int *restrict off, const float *restrict wk, float bias, const float *xp, float *dst, int L) {
  wide_plane(1, T, off, wk, bias, xp, dst, L);
}
static NOINLINE void wide_plane_any(int T, const int *restrict off, const float *restrict wk, float bias, const float *xp, float *dst, int L) {
  wide_plane(0, T, off, wk, bias, xp, dst, L);
}

/*
 * Depthwise, both strides 1. Per output channel: the input plane padded to [Hp, Wp] (or used in
 * place when it already is), then the output computed Wp wide: out[q] = bias + sum over taps of
 * w[tap] * xp[q + ky*dh*Wp + kx*dw] for q < OH*Wp, in register tiles (wide_plane). The last tile
 * reads up to (KW-1)*dw floats past the plane, which the padded copy provides as zeros. Kernels of
 * more than WIDE_MAX_TAPS taps go through the tap loop of the plain depthwise kernel instead.
 */
static NOINLINE void depthwise_wide(const float *x, const float *w, const float *bias, float *out, float *cols,
                           int N, int C, int H, int W, int O, int KH, int KW,
                           int pt, int pl, int dh, int dw, int OH, int OW) {
  const int mult = O / C;
  const int Hp = OH + (KH - 1) * dh, Wp = OW + (KW - 1) * dw;
  const int inPlace = KW == 1 && pt == 0 && pl == 0 && Hp <= H && Wp == W;
  const int padFloats = inPlace ? 0 : Hp * Wp + (KW - 1) * dw;
  const int L = OH * Wp, T = KH * KW;
  int off[WIDE_MAX_TAPS];
  for (int ky = 0; ky < KH; ky++)
    for (int kx = 0; kx < KW; kx++) off[ky * KW + kx] = ky * dh * Wp + kx * dw;
  float *wideOut = cols + padFloats;
  for (int n = 0; n < N; n++) {
    for (int o = 0; o < O; o++) {
      const float *xc = x + (n * C + o / mult) * H * W;
      const float *xp = xc;
      if (!inPlace) {
        pad_input(xc, 1, H, W, pt, pl, Hp, Wp, cols);
        for (int i = Hp * Wp; i < padFloats; i++) cols[i] = 0.0f;
        xp = cols;
      }
      const float *wk = w + o * T;
      float *yo = out + (n * O + o) * OH * OW;
      float *dst = Wp == OW ? yo : wideOut;
      const float b = bias ? bias[o] : 0.0f;
      if (T == 9) wide_plane9(off, wk, b, xp, dst, L);
      else if (T <= 9) wide_plane_held(T, off, wk, b, xp, dst, L);
      else wide_plane_any(T, off, wk, b, xp, dst, L);
      if (dst != yo)
        for (int oy = 0; oy < OH; oy++) {
          const float *s = wideOut + oy * Wp;
          float *d = yo + oy * OW;
          int ox = 0;
          for (; ox + 4 <= OW; ox += 4) wasm_v128_store(d + ox, wasm_v128_load(s + ox));
          for (; ox < OW; ox++) d[ox] = s[ox];
        }
    }
  }
}

/*
 * The copy-free variant of the wide depthwise kernel, for shapes whose output rows are as wide as
 * the input's (OW == W: "same" width padding, or none on a k x 1 kernel). Then output q = oy*W + ox
 * and tap t read input q + off[t] with one constant off[t] = (ky*dh - pt)*W + kx*dw - pl, straight
 * from the input plane: no padded copy and no copy-out (writing a fresh copy and reading it back at
 * unaligned offsets stalls on store forwarding). A tap whose input lies in the padding reads some
 * other float (the row before or after, or the plane next door): a per-call mask table zeroes it
 * (AND with all-ones or zero), so the sum is the same as over the zero-padded plane, term by term
 * and in the same order as the padded variant. The mask table, [vector i][tap t] for the outputs
 * 4i..4i+3, lives in `cols` (T*4*floor(L/4) <= T*OH*OW floats); the last, overlapping vector when L
 * is not a multiple of 4 keeps its masks on the stack.
 */
#define FLAT_MAX_TAPS 32
#define FLAT_MAX_KW 16

static int flat_shape(int Cg, int G, int H, int W, int KH, int KW, int sh, int sw, int OH, int OW) {
  return Cg == 1 && G > 1 && sh == 1 && sw == 1 && OW == W && KH * KW <= FLAT_MAX_TAPS && KW <= FLAT_MAX_KW &&
         OH * OW >= 4 && H >= 1;
}

/* The taps' reads stay inside linear memory (they may leave the tensor by a row and a bit; masked). */
static int flat_reads_inside(const float *x, int N, int C, int H, int W, int KH, int KW, int pt, int pl, int dh, int dw, int OH) {
  const long long offMin = -(long long)pt * W - pl;
  const long long offMax = ((long long)(KH - 1) * dh - pt) * W + (long long)(KW - 1) * dw - pl;
  const long long before = offMin < 0 ? -offMin : 0;
  const long long last = (long long)OH * W + offMax - (long long)H * W;  // floats read past the last plane
  const long long start = (long long)(unsigned long)x;
  const long long end = start + 4LL * N * C * H * W;
  const long long memBytes = (long long)__builtin_wasm_memory_size(0) * 65536;
  return start - 4 * before >= 0 && end + 4 * (last > 0 ? last : 0) <= memBytes;
}

EXPORT(conv2d_depthwise_copy_free) int conv2d_depthwise_copy_free(
    int C, int H, int W, int O, int KH, int KW, int G, int sh, int sw, int pt, int pl, int dh, int dw, int OH, int OW) {
  return conv_path(C, H, W, O, KH, KW, G, sh, sw, pt, pl, dh, dw, OH, OW) == CONV_DEPTHWISE_WIDE &&
         flat_shape(C / G, G, H, W, KH, KW, sh, sw, OH, OW);
}

/*
 * The masks of one plane shape. Vectors i < ib and ie <= i < nv (output rows with a tap in the
 * top or bottom padding) keep a mask per tap: full + 4*(j*T + t), j their index among those; the
 * interior vectors ib <= i < ie only one per kernel column: col + 4*((i - ib)*KW + kx), and none
 * where that column reads the output's own column (need[kx] == 0). The last, overlapping vector
 * when L is not a multiple of 4 has a mask per tap in tail.
 */
typedef struct {
  int T, KH, KW, L, nv, ib, ie;
  int off[FLAT_MAX_TAPS], need[FLAT_MAX_KW];
  const float *full, *col, *tail;
} flat_geom;

static inline int flat_ok(int oy, int ox, int ky, int kx, int H, int W, int pt, int pl, int dh, int dw) {
  const int iy = oy + ky * dh - pt, ix = ox + kx * dw - pl;
  return iy >= 0 && iy < H && ix >= 0 && ix < W;
}

/* One vector of 4 outputs at q0, a mask per tap (m + 4*t). */
static inline __attribute__((always_inline)) void flat_edge(
    const int HOLD, const int T, const int *off, const v128_t *wv, const float *wk, v128_t b,
    const float *m, const float *xc, float *yo, int q0) {
  v128_t a = b;
  for (int t = 0; t < T; t++) {
    const v128_t w = HOLD ? wv[t] : wasm_v128_load32_splat(wk + t);
    a = MADD(a, w, wasm_v128_and(wasm_v128_load(xc + q0 + off[t]), wasm_v128_load(m + 4 * t)));
  }
  wasm_v128_store(yo + q0, a);
}

/* NV interior vectors from q0 (all taps' rows inside the image): column masks only, where needed. */
static inline __attribute__((always_inline)) void flat_inner(
    const int NV, const int HOLD, const int KH, const int KW, const flat_geom *g, const v128_t *wv, const float *wk,
    v128_t b, const float *cm, const float *xc, float *yo, int q0) {
  v128_t a[4];
  for (int k = 0; k < NV; k++) a[k] = b;
  for (int ky = 0; ky < KH; ky++)
    for (int kx = 0; kx < KW; kx++) {
      const int t = ky * KW + kx;
      const v128_t w = HOLD ? wv[t] : wasm_v128_load32_splat(wk + t);
      const float *xq = xc + q0 + g->off[t];
      if (g->need[kx])
        for (int k = 0; k < NV; k++)
          a[k] = MADD(a[k], w, wasm_v128_and(wasm_v128_load(xq + 4 * k), wasm_v128_load(cm + 4 * (k * KW + kx))));
      else
        for (int k = 0; k < NV; k++) a[k] = MADD(a[k], w, wasm_v128_load(xq + 4 * k));
    }
  for (int k = 0; k < NV; k++) wasm_v128_store(yo + q0 + 4 * k, a[k]);
}

static inline __attribute__((always_inline)) void flat_plane(
    const int HOLD, const int KH, const int KW, const flat_geom *g, const float *wk, float bias, const float *xc, float *yo) {
  const int T = KH * KW;
  v128_t wv[9];
  if (HOLD)
    for (int t = 0; t < T; t++) wv[t] = wasm_v128_load32_splat(wk + t);
  const v128_t b = wasm_f32x4_splat(bias);
  int i = 0;
  for (; i < g->ib; i++) flat_edge(HOLD, T, g->off, wv, wk, b, g->full + 4 * i * T, xc, yo, 4 * i);
  for (; i + 4 <= g->ie; i += 4) flat_inner(4, HOLD, KH, KW, g, wv, wk, b, g->col + 4 * (i - g->ib) * KW, xc, yo, 4 * i);
  for (; i < g->ie; i++) flat_inner(1, HOLD, KH, KW, g, wv, wk, b, g->col + 4 * (i - g->ib) * KW, xc, yo, 4 * i);
  for (; i < g->nv; i++) flat_edge(HOLD, T, g->off, wv, wk, b, g->full + 4 * (g->ib + i - g->ie) * T, xc, yo, 4 * i);
  if (g->L & 3) flat_edge(HOLD, T, g->off, wv, wk, b, g->tail, xc, yo, g->L - 4);
}

/* flat_plane's specialisations, a function each. */
static NOINLINE void flat_plane33(const flat_geom *restrict g, const float *restrict wk, float bias, const float *xc, float *yo) {
  flat_plane(1, 3, 3, g, wk, bias, xc, yo);
}
static NOINLINE void flat_plane31(const flat_geom *restrict g, const float *restrict wk, float bias, const float *xc, float *yo) {
  flat_plane(1, 3, 1, g, wk, bias, xc, yo);
}
static NOINLINE void flat_plane13(const flat_geom *restrict g, const float *restrict wk, float bias, const float *xc, float *yo) {
  flat_plane(1, 1, 3, g, wk, bias, xc, yo);
}
static NOINLINE void flat_plane_held(int KH, int KW, const flat_geom *restrict g, const float *restrict wk, float bias, const float *xc, float *yo) {
  flat_plane(1, KH, KW, g, wk, bias, xc, yo);
}
static NOINLINE void flat_plane_any(int KH, int KW, const flat_geom *restrict g, const float *restrict wk, float bias, const float *xc, float *yo) {
  flat_plane(0, KH, KW, g, wk, bias, xc, yo);
}

static NOINLINE void depthwise_flat(const float *x, const float *w, const float *bias, float *out, float *cols,
                           int N, int C, int H, int W, int O, int KH, int KW,
                           int pt, int pl, int dh, int dw, int OH) {
  const int mult = O / C, T = KH * KW, L = OH * W, nv = L >> 2;
  flat_geom g;
  g.T = T, g.KH = KH, g.KW = KW, g.L = L, g.nv = nv;
  for (int ky = 0; ky < KH; ky++)
    for (int kx = 0; kx < KW; kx++) g.off[ky * KW + kx] = (ky * dh - pt) * W + kx * dw - pl;
  for (int kx = 0; kx < KW; kx++) g.need[kx] = kx * dw != pl;
  // Interior output rows [rowLo, rowHi): every tap's input row is inside the image.
  const int rowLo = imax(pt, 0), rowHi = imin(OH, H + pt - (KH - 1) * dh);
  g.ib = imin(nv, (rowLo * W + 3) >> 2);
  g.ie = rowHi > rowLo ? imax(g.ib, imin(nv, (rowHi * W) >> 2)) : g.ib;
  // cols: the edge vectors' tap masks, then the interior vectors' column masks (as i32 -1 / 0),
  // filled walking the outputs q = oy*W + ox in order (no division).
  int *full = (int *)cols;
  int *col = full + 4 * T * (g.ib + nv - g.ie);
  g.full = (const float *)full, g.col = (const float *)col;
  // The interior's column masks are skipped when no kernel column needs one (k x 1 kernels).
  int anyNeed = 0;
  for (int kx = 0; kx < KW; kx++) anyNeed |= g.need[kx];
  const int runs[3][2] = {{0, 4 * g.ib}, {4 * g.ib, anyNeed ? 4 * g.ie : 4 * g.ib}, {4 * g.ie, 4 * nv}};
  for (int r = 0; r < 3; r++)
    for (int q = runs[r][0], oy = q / W, ox = q % W; q < runs[r][1]; q++) {
      const int i = q >> 2, lane = q & 3;
      if (r == 1) {
        for (int kx = 0; kx < KW; kx++) col[4 * ((i - g.ib) * KW + kx) + lane] = flat_ok(rowLo, ox, 0, kx, H, W, 0, pl, dh, dw) ? -1 : 0;
      } else {
        int *m = full + 4 * T * (i < g.ib ? i : g.ib + i - g.ie) + lane;
        for (int t = 0; t < T; t++) m[4 * t] = flat_ok(oy, ox, t / KW, t % KW, H, W, pt, pl, dh, dw) ? -1 : 0;
      }
      if (++ox == W) ox = 0, oy++;
    }
  int tail[4 * FLAT_MAX_TAPS];
  if (L & 3)
    for (int lane = 0; lane < 4; lane++) {
      const int q = L - 4 + lane;
      for (int t = 0; t < T; t++) tail[4 * t + lane] = flat_ok(q / W, q % W, t / KW, t % KW, H, W, pt, pl, dh, dw) ? -1 : 0;
    }
  g.tail = (const float *)tail;
  for (int n = 0; n < N; n++) {
    for (int o = 0; o < O; o++) {
      const float *xc = x + (n * C + o / mult) * H * W;
      const float *wk = w + o * T;
      float *yo = out + (n * O + o) * L;
      const float b = bias ? bias[o] : 0.0f;
      if (KH == 3 && KW == 3) flat_plane33(&g, wk, b, xc, yo);
      else if (KW == 1 && KH == 3) flat_plane31(&g, wk, b, xc, yo);
      else if (KH == 1 && KW == 3) flat_plane13(&g, wk, b, xc, yo);
      else if (T <= 9) flat_plane_held(KH, KW, &g, wk, b, xc, yo);
      else flat_plane_any(KH, KW, &g, wk, b, xc, yo);
    }
  }
}

static void conv_direct(const float *x, const float *w, const float *bias, float *out, float *cols,
                        int N, int C, int H, int W, int O, int KH, int KW, int G,
                        int sh, int sw, int pt, int pl, int dh, int dw, int OH, int OW);
static void conv_gemm(int direct, const float *x, const float *w, const float *bias, float *out, float *cols,
                      int N, int C, int H, int W, int O, int KH, int KW, int G,
                      int sh, int sw, int pt, int pl, int dh, int dw, int OH, int OW);

/*
 * x [N, C, H, W], w [O, C/G, KH, KW], bias [O] or 0 -> out [N, O, OH, OW].
 * cols: scratch of (C/G)*KH*KW*OH*OW floats (unused for depthwise and plain 1x1).
 */
EXPORT(conv2d) void conv2d(const float *x, const float *w, const float *bias, float *out, float *cols,
                           int N, int C, int H, int W, int O, int KH, int KW, int G,
                           int sh, int sw, int pt, int pl, int dh, int dw, int OH, int OW) {
  const int Cg = C / G, Og = O / G, P = OH * OW, K = Cg * KH * KW;
  int path = conv_path(C, H, W, O, KH, KW, G, sh, sw, pt, pl, dh, dw, OH, OW);
  if (path == CONV_WINOGRAD) {
    if (winograd_conv(x, w, bias, out, cols, (long long)K * P, N, C, H, W, O, pt, pl, OH, OW)) return;
    path = conv_path_base(C, H, W, O, KH, KW, G, sh, sw, pt, pl, dh, dw, OH, OW);  // scratch too small for it
  }
  if (path == CONV_DEPTHWISE_VALID) {
    depthwise_valid(x, w, bias, out, N, C, H, W, O, KH, KW, dh, dw, OH, OW);
    return;
  }
  if (path == CONV_DEPTHWISE_ROWS) {
    depthwise_rows(x, w, bias, out, N, C, H, W, O, KH, sh, pt, dh, OH);
    return;
  }
  if (path == CONV_DEPTHWISE_S2K3) {
    depthwise_s2k3(x, w, bias, out, N, C, H, W, O, OW);
    return;
  }
  if (path == CONV_DEPTHWISE_HROWS) {
    depthwise_hrows(x, w, bias, out, N, C, H, W, O, KW, pl, dw, OW);
    return;
  }
  if (path == CONV_DEPTHWISE_PACKED) {
    depthwise_packed(x, w, bias, out, N, C, H, W, O, KH, KW, sh, sw, pt, pl, dh, dw, OH, OW);
    return;
  }
  if (path == CONV_DEPTHWISE) {
    depthwise(x, w, bias, out, N, C, H, W, O, KH, KW, sh, sw, pt, pl, dh, dw, OH, OW);
    return;
  }
  if (path == CONV_DEPTHWISE_WIDE) {
    if (flat_shape(Cg, G, H, W, KH, KW, sh, sw, OH, OW) && flat_reads_inside(x, N, C, H, W, KH, KW, pt, pl, dh, dw, OH)) {
      depthwise_flat(x, w, bias, out, cols, N, C, H, W, O, KH, KW, pt, pl, dh, dw, OH);
      return;
    }
    depthwise_wide(x, w, bias, out, cols, N, C, H, W, O, KH, KW, pt, pl, dh, dw, OH, OW);
    return;
  }
  if (path == CONV_1X1_STRIDED) {
    for (int n = 0; n < N; n++)
      for (int g = 0; g < G; g++) {
        subsample(x + (n * C + g * Cg) * H * W, Cg, H, W, sh, sw, OH, OW, cols);
        pointwise_direct(cols, P, w + g * Og * Cg, bias ? bias + g * Og : 0, out + (n * O + g * Og) * P, Og, Cg, P);
      }
    return;
  }
  if (path == CONV_1X1_DIRECT) {
    for (int n = 0; n < N; n++)
      for (int g = 0; g < G; g++)
        pointwise_direct(x + (n * C + g * Cg) * P, P, w + g * Og * Cg, bias ? bias + g * Og : 0, out + (n * O + g * Og) * P, Og, Cg, P);
    return;
  }
  if (path == CONV_DIRECT) {
    conv_direct(x, w, bias, out, cols, N, C, H, W, O, KH, KW, G, sh, sw, pt, pl, dh, dw, OH, OW);
    return;
  }
  conv_gemm(path == CONV_1X1, x, w, bias, out, cols, N, C, H, W, O, KH, KW, G, sh, sw, pt, pl, dh, dw, OH, OW);
}

/* CONV_DIRECT: per image and group, the padded copy when needed, then direct_conv. */
static NOINLINE void conv_direct(const float *x, const float *w, const float *bias, float *out, float *cols,
                                 int N, int C, int H, int W, int O, int KH, int KW, int G,
                                 int sh, int sw, int pt, int pl, int dh, int dw, int OH, int OW) {
  const int Cg = C / G, Og = O / G, P = OH * OW, K = Cg * KH * KW;
  {
    const direct_geom d = direct_geometry(H, W, KH, KW, sh, sw, pt, pl, dh, dw, OH, OW);
    int toff[DIRECT_MAX_KW];
    for (int kx = 0; kx < KW; kx++) toff[kx] = sw == 1 ? kx * dw : ((kx * dw) & 1) * d.half + ((kx * dw) >> 1);
    for (int n = 0; n < N; n++) {
      for (int g = 0; g < G; g++) {
        const float *xg = x + (n * C + g * Cg) * H * W;
        float *yg = out + (n * O + g * Og) * P;
        const float *wg = w + g * Og * K;
        const float *bg = bias ? bias + g * Og : 0;
        const float *xp = xg;
        if (!d.inPlace) {
          if (sw == 1) pad_input(xg, Cg, H, W, pt, pl, d.Hp, d.row, cols);
          else pad_phases(xg, Cg, H, W, pt, pl, d.Hp, d.half, cols);
          xp = cols;
        }
        // Reads at most Hp rows of each channel, and of each row what the tap offsets reach.
        direct_conv(xp, d.row, d.plane, wg, bg, yg, Og, Cg, KH, KW, sh, dh, toff, OH, OW);
      }
    }
  }
}

/* CONV_1X1 (direct: the image is the GEMM's right operand) and CONV_IM2COL: per image and group, bias then the packed GEMM. */
static NOINLINE void conv_gemm(int direct, const float *x, const float *w, const float *bias, float *out, float *cols,
                               int N, int C, int H, int W, int O, int KH, int KW, int G,
                               int sh, int sw, int pt, int pl, int dh, int dw, int OH, int OW) {
  const int Cg = C / G, Og = O / G, P = OH * OW, K = Cg * KH * KW;
  for (int n = 0; n < N; n++) {
    for (int g = 0; g < G; g++) {
      const float *xg = x + (n * C + g * Cg) * H * W;
      float *yg = out + (n * O + g * Og) * P;
      const float *src = xg;
      if (!direct) {
        im2col(xg, H, W, Cg, KH, KW, sh, sw, pt, pl, dh, dw, OH, OW, cols);
        src = cols;
      }
      fill_bias(Og, P, yg, P, bias ? bias + g * Og : 0, 0);
      gemm_acc(Og, P, K, w + g * Og * K, K, 1, src, P, 1, yg, P);
    }
  }
}

/* 1x1 convolution: w [O, C], x [N, C, HW] -> out [N, O, HW] (conv1x1.c's packed kernel or batch GEMM where one pays, else direct or packed GEMM, as conv2d's plain 1x1). */
EXPORT(conv1x1) void conv1x1(const float *x, const float *w, const float *bias, float *out, int N, int C, int HW, int O) {
  if (pointwise_fast(x, w, bias, out, N, C, HW, O)) return;
  if (conv_path(C, HW, 1, O, 1, 1, 1, 1, 1, 0, 0, 1, 1, HW, 1) == CONV_1X1_DIRECT) {
    for (int n = 0; n < N; n++) pointwise_direct(x + n * C * HW, HW, w, bias, out + n * O * HW, O, C, HW);
    return;
  }
  for (int n = 0; n < N; n++) {
    float *y = out + n * O * HW;
    fill_bias(O, HW, y, HW, bias, 0);
    gemm_acc(O, HW, C, w, C, 1, x + n * C * HW, HW, 1, y, HW);
  }
}
