// Gradients of the convolution for the trainer (converter/train/kernels.ts), and the general
// accumulating GEMM it runs its matrix products on.
//
// conv2d_grad, for y = conv(x, w) (ONNX Conv semantics, no bias: the trainer adds the bias as its
// own op), given gy = dL/dy, adds into gx = dL/dx and gw = dL/dw (either may be 0 = not wanted):
//   depthwise (Cg == 1, G > 1)  direct loops over the taps: per tap and output row, gw gets a dot
//                               product of the gy row and the x row, gx row gets w * gy row
//                               (f32x4 along the row at horizontal stride 1)
//   plain 1x1 (stride 1, no pad) the image group is the [Cg, P] matrix:
//                               gw_g += gy_g x_g^T, gx_g += w_g^T gy_g (two packed GEMMs)
//   otherwise                   per image and group: im2col into `cols`, gw_g += gy_g cols^T;
//                               then cols = w_g^T gy_g and col2im (the adjoint of im2col) into gx
// `cols` is scratch of Cg*KH*KW*OH*OW floats (unused by the first two paths).
#include "kernels.h"

/* C[i, j] += sum_p a(i, p) b(p, j): gemm_acc with its strides, for the trainer's NN, NT and TN products. */
EXPORT(gemm_acc_strided) void gemm_acc_strided(int M, int N, int K, const float *A, int rsa, int csa,
                                               const float *B, int rsb, int csb, float *C, int ldc) {
  gemm_acc(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc);
}

/* Output columns ox whose input column ox*sw + off lies in [0, W): lo <= ox < hi. */
static void column_range(int W, int OW, int sw, int off, int *lo, int *hi) {
  int l = off >= 0 ? 0 : (-off + sw - 1) / sw;
  int h = W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1;
  l = imin(l, OW);
  *lo = l;
  *hi = imax(imin(h, OW), l);
}

/* gx group [Cg, H, W] += the image of gcols [Cg*KH*KW, OH*OW] under the adjoint of im2col. */
static void col2im_add(const float *gcols, int H, int W, int Cg, int KH, int KW, int sh, int sw,
                       int pt, int pl, int dh, int dw, int OH, int OW, float *gx) {
  const int P = OH * OW;
  int k = 0;
  for (int c = 0; c < Cg; c++) {
    float *gc = gx + c * H * W;
    for (int ky = 0; ky < KH; ky++) {
      for (int kx = 0; kx < KW; kx++, k++) {
        const float *row = gcols + k * P;
        const int off = kx * dw - pl;
        int lo, hi;
        column_range(W, OW, sw, off, &lo, &hi);
        for (int oy = 0; oy < OH; oy++) {
          const int iy = oy * sh - pt + ky * dh;
          if (iy < 0 || iy >= H) continue;
          const float *r = row + oy * OW;
          float *g = gc + iy * W + off;
          if (sw == 1) {
            int ox = lo;
            for (; ox + 4 <= hi; ox += 4) wasm_v128_store(g + ox, wasm_f32x4_add(wasm_v128_load(g + ox), wasm_v128_load(r + ox)));
            for (; ox < hi; ox++) g[ox] += r[ox];
          } else {
            for (int ox = lo; ox < hi; ox++) g[ox * sw] += r[ox];
          }
        }
      }
    }
  }
}

/* Depthwise (one input channel per group, Og = O / C outputs each). */
static void depthwise_grad(const float *x, const float *w, const float *gy, float *gx, float *gw,
                           int N, int C, int H, int W, int O, int KH, int KW, int sh, int sw,
                           int pt, int pl, int dh, int dw, int OH, int OW) {
  const int Og = O / C, P = OH * OW;
  for (int n = 0; n < N; n++) {
    for (int o = 0; o < O; o++) {
      const int c = o / Og;
      const float *xc = x + (n * C + c) * H * W;
      float *gxc = gx ? gx + (n * C + c) * H * W : 0;
      const float *go = gy + (n * O + o) * P;
      for (int ky = 0; ky < KH; ky++) {
        for (int kx = 0; kx < KW; kx++) {
          const int t = o * KH * KW + ky * KW + kx;
          const float wv = w[t];
          const v128_t wvv = wasm_f32x4_splat(wv);
          const int off = kx * dw - pl;
          int lo, hi;
          column_range(W, OW, sw, off, &lo, &hi);
          v128_t accv = wasm_f32x4_splat(0.0f);
          float acc = 0.0f;
          for (int oy = 0; oy < OH; oy++) {
            const int iy = oy * sh - pt + ky * dh;
            if (iy < 0 || iy >= H) continue;
            const float *g = go + oy * OW;
            const float *xr = xc + iy * W + off;
            float *gxr = gxc ? gxc + iy * W + off : 0;
            if (sw == 1) {
              int ox = lo;
              for (; ox + 4 <= hi; ox += 4) {
                const v128_t gv = wasm_v128_load(g + ox);
                if (gw) accv = wasm_f32x4_add(accv, wasm_f32x4_mul(gv, wasm_v128_load(xr + ox)));
                if (gxr) wasm_v128_store(gxr + ox, wasm_f32x4_add(wasm_v128_load(gxr + ox), wasm_f32x4_mul(wvv, gv)));
              }
              for (; ox < hi; ox++) {
                acc += g[ox] * xr[ox];
                if (gxr) gxr[ox] += wv * g[ox];
              }
            } else {
              for (int ox = lo; ox < hi; ox++) {
                acc += g[ox] * xr[ox * sw];
                if (gxr) gxr[ox * sw] += wv * g[ox];
              }
            }
          }
          if (gw) {
            gw[t] += acc + wasm_f32x4_extract_lane(accv, 0) + wasm_f32x4_extract_lane(accv, 1) +
                     wasm_f32x4_extract_lane(accv, 2) + wasm_f32x4_extract_lane(accv, 3);
          }
        }
      }
    }
  }
}

/*
 * x [N, C, H, W], w [O, C/G, KH, KW], gy [N, O, OH, OW]; gx [N, C, H, W] += dL/dx (gx may be 0),
 * gw [O, C/G, KH, KW] += dL/dw (gw may be 0), gb [O] += dL/db (gb may be 0).
 * cols: scratch of (C/G)*KH*KW*OH*OW floats.
 */
EXPORT(conv2d_grad) void conv2d_grad(const float *x, const float *w, const float *gy, float *gx, float *gw, float *gb, float *cols,
                                     int N, int C, int H, int W, int O, int KH, int KW, int G,
                                     int sh, int sw, int pt, int pl, int dh, int dw, int OH, int OW) {
  const int Cg = C / G, Og = O / G, P = OH * OW, K = Cg * KH * KW;
  if (gb) {
    for (int n = 0; n < N; n++) {
      for (int o = 0; o < O; o++) {
        const float *r = gy + (n * O + o) * P;
        v128_t s4 = wasm_f32x4_splat(0.0f);
        float s = 0.0f;
        int p = 0;
        for (; p + 4 <= P; p += 4) s4 = wasm_f32x4_add(s4, wasm_v128_load(r + p));
        for (; p < P; p++) s += r[p];
        gb[o] += s + wasm_f32x4_extract_lane(s4, 0) + wasm_f32x4_extract_lane(s4, 1) +
                 wasm_f32x4_extract_lane(s4, 2) + wasm_f32x4_extract_lane(s4, 3);
      }
    }
  }
  if (!gx && !gw) return;
  if (Cg == 1 && G > 1) {
    depthwise_grad(x, w, gy, gx, gw, N, C, H, W, O, KH, KW, sh, sw, pt, pl, dh, dw, OH, OW);
    return;
  }
  const int plain = KH == 1 && KW == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && OH == H && OW == W;
  for (int n = 0; n < N; n++) {
    for (int g = 0; g < G; g++) {
      const float *xg = x + (n * C + g * Cg) * H * W;
      const float *gyg = gy + (n * O + g * Og) * P;
      const float *wg = w + g * Og * K;
      float *gxg = gx ? gx + (n * C + g * Cg) * H * W : 0;
      float *gwg = gw ? gw + g * Og * K : 0;
      if (plain) {
        // gw_g [Og, Cg] += gy_g [Og, P] x_g^T;  gx_g [Cg, P] += w_g^T gy_g.
        if (gwg) gemm_acc(Og, Cg, P, gyg, P, 1, xg, 1, P, gwg, Cg);
        if (gxg) gemm_acc(Cg, P, Og, wg, 1, Cg, gyg, P, 1, gxg, P);
        continue;
      }
      if (gwg) {
        im2col(xg, H, W, Cg, KH, KW, sh, sw, pt, pl, dh, dw, OH, OW, cols);
        gemm_acc(Og, K, P, gyg, P, 1, cols, 1, P, gwg, K);
      }
      if (gxg) {
        fill_bias(K, P, cols, P, 0, 0);
        gemm_acc(K, P, Og, wg, 1, K, gyg, P, 1, cols, P);
        col2im_add(cols, H, W, Cg, KH, KW, sh, sw, pt, pl, dh, dw, OH, OW, gxg);
      }
    }
  }
}
