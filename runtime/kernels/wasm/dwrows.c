// Depthwise k x 1 with a vertical stride (CP's strided vertical stage: 3 x 1 at stride 2, 1 and no
// horizontal padding), whole output rows at a time: output row oy of a plane is
//   bias + sum over the taps ky whose input row iy = oy*sh - pt + ky*dh lies inside the image of
//   w[ky] * (input row iy),
// rows as wide as the input's (OW == W), so each tap is one full-width multiply-add of contiguous
// floats. Tiles of 16 outputs (4 independent accumulators) along the row, 4 where the row is
// narrower; the last tile of a row overlaps the one before (it stores the same values again).
// Taps in the top or bottom padding are skipped, not multiplied by zero: no read leaves the plane.
// The lane-packed kernel (depthwise.c) took these shapes before, at about 2 G multiply-adds/s on
// ResNet-8's 3 x 1 stride-2 stages (bench/results/profile/); stride 1 keeps the wide kernel.
#include "kernels.h"

#define ROWS_MAX_TAPS 64

int depthwise_rows_shape(int C, int W, int O, int KH, int KW, int G, int sh, int sw, int pl, int OW) {
  return G == C && G > 1 && O % C == 0 && KW == 1 && sw == 1 && sh >= 2 && pl == 0 && OW == W && W >= 4 && KH >= 1 &&
         KH <= ROWS_MAX_TAPS;
}

void depthwise_rows(const float *x, const float *w, const float *bias, float *out,
                    int N, int C, int H, int W, int O, int KH, int sh, int pt, int dh, int OH) {
  const int mult = O / C;
  for (int n = 0; n < N; n++) {
    for (int o = 0; o < O; o++) {
      const float *xc = x + (n * C + o / mult) * H * W;
      const float *wk = w + o * KH;
      float *yo = out + (n * O + o) * OH * W;
      const v128_t b = wasm_f32x4_splat(bias ? bias[o] : 0.0f);
      for (int oy = 0; oy < OH; oy++) {
        // Taps [lo, hi) read rows inside the image.
        const int base = oy * sh - pt;
        int lo = 0, hi = KH;
        while (lo < KH && base + lo * dh < 0) lo++;
        while (hi > lo && base + (hi - 1) * dh >= H) hi--;
        const float *xr = xc + base * W;
        float *yr = yo + oy * W;
        if (W >= 16) {
          for (int ox = 0; ox < W; ox += 16) {
            const int q = imin(ox, W - 16);
            v128_t a0 = b, a1 = b, a2 = b, a3 = b;
            for (int ky = lo; ky < hi; ky++) {
              const v128_t wv = wasm_v128_load32_splat(wk + ky);
              const float *s = xr + ky * dh * W + q;
              a0 = MADD(a0, wv, wasm_v128_load(s));
              a1 = MADD(a1, wv, wasm_v128_load(s + 4));
              a2 = MADD(a2, wv, wasm_v128_load(s + 8));
              a3 = MADD(a3, wv, wasm_v128_load(s + 12));
            }
            wasm_v128_store(yr + q, a0);
            wasm_v128_store(yr + q + 4, a1);
            wasm_v128_store(yr + q + 8, a2);
            wasm_v128_store(yr + q + 12, a3);
          }
        } else {
          for (int ox = 0; ox < W; ox += 4) {
            const int q = imin(ox, W - 4);
            v128_t a = b;
            for (int ky = lo; ky < hi; ky++)
              a = MADD(a, wasm_v128_load32_splat(wk + ky), wasm_v128_load(xr + ky * dh * W + q));
            wasm_v128_store(yr + q, a);
          }
        }
      }
    }
  }
}

/*
 * Depthwise 1 x k at stride 1 on rows of 32 outputs or more (CP's horizontal stage on ResNet-8's
 * 32 x 32 maps: 1 x 3 with one column of padding each side), one output row at a time from a
 * zero-padded copy of its input row on the stack: row[j] = x[j - pl] inside the image, 0 in the
 * padding. Then out[ox] = bias + sum over kx of w[kx] * row[ox + kx*dw], every tap added, padding
 * included (as the reference adds its zeros), in tiles of 16 outputs (4 accumulators), the last
 * tile overlapping the one before. Against the masked copy-free kernel (conv.c, depthwise_flat)
 * 0.73 of its time on 25 channels of 32 x 32 (bench/layerProfile.ts); on rows of 16 or fewer the
 * row copy costs more than the masks save, and stride 2 gained nothing over the lane-packed kernel
 * (8 x 16, 16 x 32), so those keep their paths.
 */
#define HROWS_MAX_ROW 512
#define HROWS_MAX_KW 16

int depthwise_hrows_shape(int C, int H, int W, int O, int KH, int KW, int G, int sh, int sw, int pt, int pl, int dw,
                          int OH, int OW) {
  const int Wp = OW + (KW - 1) * dw;
  return G == C && G > 1 && O % C == 0 && KH == 1 && sh == 1 && pt == 0 && OH == H && sw == 1 && KW >= 2 &&
         KW <= HROWS_MAX_KW && OW >= 32 && pl >= 0 && pl <= Wp && W >= 4 && W + pl <= HROWS_MAX_ROW && Wp <= HROWS_MAX_ROW;
}

void depthwise_hrows(const float *x, const float *w, const float *bias, float *out,
                     int N, int C, int H, int W, int O, int KW, int pl, int dw, int OW) {
  const int mult = O / C;
  const int Wp = OW + (KW - 1) * dw;
  // The padded row: the input row at pl (it may run past Wp: those columns are never read), zeros
  // around it, written once; every row then overwrites the same columns.
  float pad[HROWS_MAX_ROW] __attribute__((aligned(16)));
  const int span = imax(Wp, W + pl);
  for (int i = 0; i < span; i++) pad[i] = 0.0f;
  for (int n = 0; n < N; n++) {
    for (int o = 0; o < O; o++) {
      const float *xc = x + (n * C + o / mult) * H * W;
      const float *wk = w + o * KW;
      float *yo = out + (n * O + o) * H * OW;
      const v128_t b = wasm_f32x4_splat(bias ? bias[o] : 0.0f);
      for (int oy = 0; oy < H; oy++) {
        const float *s = xc + oy * W;
        int k = 0;
        for (; k + 4 <= W; k += 4) wasm_v128_store(pad + pl + k, wasm_v128_load(s + k));
        if (k < W) wasm_v128_store(pad + pl + W - 4, wasm_v128_load(s + W - 4));
        float *yr = yo + oy * OW;
        for (int ox = 0; ox < OW; ox += 16) {
          const int q = imin(ox, OW - 16);
          v128_t a0 = b, a1 = b, a2 = b, a3 = b;
          for (int kx = 0; kx < KW; kx++) {
            const v128_t wv = wasm_v128_load32_splat(wk + kx);
            const float *r = pad + kx * dw + q;
            a0 = MADD(a0, wv, wasm_v128_load(r));
            a1 = MADD(a1, wv, wasm_v128_load(r + 4));
            a2 = MADD(a2, wv, wasm_v128_load(r + 8));
            a3 = MADD(a3, wv, wasm_v128_load(r + 12));
          }
          wasm_v128_store(yr + q, a0);
          wasm_v128_store(yr + q + 4, a1);
          wasm_v128_store(yr + q + 8, a2);
          wasm_v128_store(yr + q + 12, a3);
        }
      }
    }
  }
}

/*
 * Depthwise 1 x 3 at horizontal stride 2 with one column of left padding (CP's strided horizontal
 * stage: ResNet-8's 1 x 3 at stride (1, 2)), the last tap never in the right padding (2*OW <= W).
 * Output ox reads input columns 2ox - 1, 2ox and 2ox + 1: for 4 neighbouring outputs two loads and
 * two shuffles give the even columns 2ox and the odd ones 2ox + 1, and a second pair the odd
 * columns 2ox - 1; the first vector of a row zeroes its lane 0 (column -1, the padding) with a mask.
 * Taps added in order from the bias, the padded one as w0 * 0, as the reference adds them.
 */
int depthwise_s2k3_shape(int C, int H, int W, int O, int KH, int KW, int G, int sh, int sw, int pt, int pl, int dw,
                         int OH, int OW) {
  return G == C && G > 1 && O % C == 0 && KH == 1 && KW == 3 && sh == 1 && sw == 2 && pt == 0 && OH == H && pl == 1 &&
         dw == 1 && OW >= 4 && 2 * OW <= W;
}

void depthwise_s2k3(const float *x, const float *w, const float *bias, float *out, int N, int C, int H, int W, int O, int OW) {
  const int mult = O / C;
  const v128_t first = wasm_i32x4_make(0, -1, -1, -1);
  const v128_t all = wasm_i32x4_splat(-1);
  for (int n = 0; n < N; n++) {
    for (int o = 0; o < O; o++) {
      const float *xc = x + (n * C + o / mult) * H * W;
      const v128_t w0 = wasm_v128_load32_splat(w + 3 * o), w1 = wasm_v128_load32_splat(w + 3 * o + 1);
      const v128_t w2 = wasm_v128_load32_splat(w + 3 * o + 2);
      const v128_t b = wasm_f32x4_splat(bias ? bias[o] : 0.0f);
      float *yo = out + (n * O + o) * H * OW;
      for (int oy = 0; oy < H; oy++) {
        const float *r = xc + oy * W;
        float *yr = yo + oy * OW;
        for (int ox = 0; ox < OW; ox += 4) {
          const int q = imin(ox, OW - 4);
          const v128_t a = wasm_v128_load(r + 2 * q), c = wasm_v128_load(r + 2 * q + 4);
          const v128_t even = wasm_i32x4_shuffle(a, c, 0, 2, 4, 6), odd = wasm_i32x4_shuffle(a, c, 1, 3, 5, 7);
          // Columns 2q - 2 .. 2q + 5; at q = 0 the two before the row are read and lane 0 masked.
          const v128_t p = wasm_v128_load(r + 2 * q - 2), e = wasm_v128_load(r + 2 * q + 2);
          const v128_t before = wasm_v128_and(wasm_i32x4_shuffle(p, e, 1, 3, 5, 7), q == 0 ? first : all);
          v128_t acc = MADD(b, w0, before);
          acc = MADD(acc, w1, even);
          acc = MADD(acc, w2, odd);
          wasm_v128_store(yr + q, acc);
        }
      }
    }
  }
}

/*
 * CP's two depthwise stages in one pass (cp_separable): v = the k_h x 1 conv of x (vertical stride
 * sh, top padding pt, dilation dh; no bias), then out = the 1 x k_w conv of v at horizontal stride 1
 * (left padding pl, dilation dw; no bias). Row by row: output row oy's vertical sums (as
 * depthwise_rows adds them: padding rows skipped) are written into a zero-padded row on the stack at
 * pl, and the horizontal taps read that row (as depthwise_hrows does). The intermediate map v is
 * never written to memory, and the two passes are one call. v's values are rounded to float before
 * the horizontal pass, as between the two separate calls. Returns 0, computing nothing, for shapes
 * it does not take (horizontal stride 2: the caller runs the two stages).
 */
#define SEP_MAX_ROW 512

static int cp_separable_shape(int W, int KH, int KW, int sh, int sw, int pl, int dw, int OW) {
  const int Wp = OW + (KW - 1) * dw;
  return sw == 1 && sh >= 1 && KH >= 1 && KH <= ROWS_MAX_TAPS && KW >= 1 && KW <= HROWS_MAX_KW && W >= 4 && OW >= 4 &&
         pl >= 0 && W + pl <= SEP_MAX_ROW && Wp <= SEP_MAX_ROW;
}

/* Vertical sums of output row oy (taps [lo, hi) of xr's rows, dh*W apart) into vrow [W]. */
static inline __attribute__((always_inline)) void sep_vertical(const float *xr, const float *kv, int lo, int hi, int dh, int W, float *vrow) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  if (W >= 16) {
    for (int ox = 0; ox < W; ox += 16) {
      const int q = imin(ox, W - 16);
      v128_t a0 = zero, a1 = zero, a2 = zero, a3 = zero;
      for (int ky = lo; ky < hi; ky++) {
        const v128_t w = wasm_v128_load32_splat(kv + ky);
        const float *s = xr + ky * dh * W + q;
        a0 = MADD(a0, w, wasm_v128_load(s));
        a1 = MADD(a1, w, wasm_v128_load(s + 4));
        a2 = MADD(a2, w, wasm_v128_load(s + 8));
        a3 = MADD(a3, w, wasm_v128_load(s + 12));
      }
      wasm_v128_store(vrow + q, a0);
      wasm_v128_store(vrow + q + 4, a1);
      wasm_v128_store(vrow + q + 8, a2);
      wasm_v128_store(vrow + q + 12, a3);
    }
  } else {
    for (int ox = 0; ox < W; ox += 4) {
      const int q = imin(ox, W - 4);
      v128_t a = zero;
      for (int ky = lo; ky < hi; ky++) a = MADD(a, wasm_v128_load32_splat(kv + ky), wasm_v128_load(xr + ky * dh * W + q));
      wasm_v128_store(vrow + q, a);
    }
  }
}

/* Horizontal taps of one zero-padded row `pad` into the output row yr [OW]. */
static inline __attribute__((always_inline)) void sep_horizontal(const float *pad, const float *kh, int KW, int dw, int OW, float *yr) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  if (OW >= 16) {
    for (int ox = 0; ox < OW; ox += 16) {
      const int q = imin(ox, OW - 16);
      v128_t a0 = zero, a1 = zero, a2 = zero, a3 = zero;
      for (int kx = 0; kx < KW; kx++) {
        const v128_t w = wasm_v128_load32_splat(kh + kx);
        const float *s = pad + kx * dw + q;
        a0 = MADD(a0, w, wasm_v128_load(s));
        a1 = MADD(a1, w, wasm_v128_load(s + 4));
        a2 = MADD(a2, w, wasm_v128_load(s + 8));
        a3 = MADD(a3, w, wasm_v128_load(s + 12));
      }
      wasm_v128_store(yr + q, a0);
      wasm_v128_store(yr + q + 4, a1);
      wasm_v128_store(yr + q + 8, a2);
      wasm_v128_store(yr + q + 12, a3);
    }
  } else {
    for (int ox = 0; ox < OW; ox += 4) {
      const int q = imin(ox, OW - 4);
      v128_t a = zero;
      for (int kx = 0; kx < KW; kx++) a = MADD(a, wasm_v128_load32_splat(kh + kx), wasm_v128_load(pad + kx * dw + q));
      wasm_v128_store(yr + q, a);
    }
  }
}

/*
 * Two padded rows in turn: the vertical sums of row oy go into one while the horizontal pass reads
 * row oy - 1 from the other, so no load reads back (at an unaligned offset) a vector stored just
 * before it, which would stall on store forwarding.
 */
EXPORT(cp_separable) int cp_separable(const float *x, const float *wv, const float *wh, float *out, int N, int R, int H,
                                      int W, int KH, int sh, int pt, int dh, int OH, int KW, int sw, int pl, int dw, int OW) {
  if (!cp_separable_shape(W, KH, KW, sh, sw, pl, dw, OW)) return 0;
  const int Wp = OW + (KW - 1) * dw;
  float pads[2][SEP_MAX_ROW] __attribute__((aligned(16)));
  const int span = imax(Wp, W + pl);
  for (int i = 0; i < span; i++) pads[0][i] = pads[1][i] = 0.0f;
  for (int n = 0; n < N; n++) {
    for (int r = 0; r < R; r++) {
      const float *xc = x + (n * R + r) * H * W;
      const float *kv = wv + r * KH, *kh = wh + r * KW;
      float *yo = out + (n * R + r) * OH * OW;
      for (int oy = 0; oy <= OH; oy++) {
        if (oy < OH) {
          const int base = oy * sh - pt;
          int lo = 0, hi = KH;
          while (lo < KH && base + lo * dh < 0) lo++;
          while (hi > lo && base + (hi - 1) * dh >= H) hi--;
          sep_vertical(xc + base * W, kv, lo, hi, dh, W, pads[oy & 1] + pl);
        }
        if (oy > 0) sep_horizontal(pads[(oy - 1) & 1], kh, KW, dw, OW, yo + (oy - 1) * OW);
      }
    }
  }
  return 1;
}
