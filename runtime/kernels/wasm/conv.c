// Convolution (ONNX Conv semantics: cross-correlation, NCHW, [top, left, bottom, right] pads).
//   general:    im2col of one group into `cols` [K = Cg*KH*KW, P = OH*OW], then w_g [Og, K] x cols
//   1x1 stride 1 no pad: the image itself is the [C, HW] matrix, no im2col
//   depthwise (Cg == 1): direct, vectorised along the output row when the horizontal stride is 1
#include "kernels.h"

static void im2col(const float *x, int H, int W, int Cg, int KH, int KW, int sh, int sw,
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

static void depthwise(const float *x, const float *w, const float *bias, float *out,
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
                wasm_v128_store(yr + ox, wasm_f32x4_add(wasm_v128_load(yr + ox), wasm_f32x4_mul(wvv, wasm_v128_load(xr + ox))));
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
 * x [N, C, H, W], w [O, C/G, KH, KW], bias [O] or 0 -> out [N, O, OH, OW].
 * cols: scratch of (C/G)*KH*KW*OH*OW floats (unused for depthwise and plain 1x1).
 */
EXPORT(conv2d) void conv2d(const float *x, const float *w, const float *bias, float *out, float *cols,
                           int N, int C, int H, int W, int O, int KH, int KW, int G,
                           int sh, int sw, int pt, int pl, int dh, int dw, int OH, int OW) {
  const int Cg = C / G, Og = O / G, P = OH * OW, K = Cg * KH * KW;
  if (Cg == 1 && G > 1) {
    depthwise(x, w, bias, out, N, C, H, W, O, KH, KW, sh, sw, pt, pl, dh, dw, OH, OW);
    return;
  }
  const int direct = KH == 1 && KW == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && OH == H && OW == W;
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

/* 1x1 convolution: w [O, C], x [N, C, HW] -> out [N, O, HW]. */
EXPORT(conv1x1) void conv1x1(const float *x, const float *w, const float *bias, float *out, int N, int C, int HW, int O) {
  for (int n = 0; n < N; n++) {
    float *y = out + n * O * HW;
    fill_bias(O, HW, y, HW, bias, 0);
    gemm_acc(O, HW, C, w, C, 1, x + n * C * HW, HW, 1, y, HW);
  }
}
