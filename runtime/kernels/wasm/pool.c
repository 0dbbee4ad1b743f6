// Pooling and activations. Window bounds are clipped once per output instead of tested per tap.
#include "kernels.h"

/* Max pool over x [NC, H, W] -> out [NC, OH, OW]; a window with no input cell gives -inf. */
EXPORT(max_pool) void max_pool(const float *x, float *out, int NC, int H, int W, int OH, int OW,
                               int KH, int KW, int sh, int sw, int pt, int pl, int dh, int dw) {
  for (int nc = 0; nc < NC; nc++) {
    const float *xc = x + nc * H * W;
    float *yc = out + nc * OH * OW;
    for (int oy = 0; oy < OH; oy++) {
      const int y0 = oy * sh - pt;
      // Taps ky with 0 <= y0 + ky*dh < H.
      const int kyLo = y0 >= 0 ? 0 : (-y0 + dh - 1) / dh;
      const int kyHi = H - 1 - y0 < 0 ? 0 : imin(KH, (H - 1 - y0) / dh + 1);
      for (int ox = 0; ox < OW; ox++) {
        const int x0 = ox * sw - pl;
        const int kxLo = x0 >= 0 ? 0 : (-x0 + dw - 1) / dw;
        const int kxHi = W - 1 - x0 < 0 ? 0 : imin(KW, (W - 1 - x0) / dw + 1);
        float m = -__builtin_inff();
        for (int ky = kyLo; ky < kyHi; ky++) {
          const float *xr = xc + (y0 + ky * dh) * W + x0;
          for (int kx = kxLo; kx < kxHi; kx++) {
            const float v = xr[kx * dw];
            if (v > m) m = v;
          }
        }
        yc[oy * OW + ox] = m;
      }
    }
  }
}

/*
 * Average pool (no dilation, as in the reference). The divisor counts the window clipped to the
 * padded input when countIncludePad, else the cells inside the input only; an empty window gives 0.
 */
EXPORT(avg_pool) void avg_pool(const float *x, float *out, int NC, int H, int W, int OH, int OW,
                               int KH, int KW, int sh, int sw, int pt, int pl, int pb, int pr, int countIncludePad) {
  for (int nc = 0; nc < NC; nc++) {
    const float *xc = x + nc * H * W;
    float *yc = out + nc * OH * OW;
    for (int oy = 0; oy < OH; oy++) {
      const int y0 = oy * sh - pt, y1 = imin(y0 + KH, H + pb);
      const int ys = imax(y0, 0), ye = imin(y1, H);
      for (int ox = 0; ox < OW; ox++) {
        const int x0 = ox * sw - pl, x1 = imin(x0 + KW, W + pr);
        const int xs = imax(x0, 0), xe = imin(x1, W);
        float s = 0.0f;
        for (int iy = ys; iy < ye; iy++)
          for (int ix = xs; ix < xe; ix++) s += xc[iy * W + ix];
        const int count = countIncludePad ? (y1 - y0) * (x1 - x0) : (ye - ys) * (xe - xs);
        yc[oy * OW + ox] = count > 0 ? s / (float)count : 0.0f;
      }
    }
  }
}

/* Mean over S cells for each of NC rows. */
EXPORT(global_avg_pool) void global_avg_pool(const float *x, float *out, int NC, int S) {
  for (int nc = 0; nc < NC; nc++) {
    const float *xc = x + nc * S;
    v128_t acc = wasm_f32x4_splat(0.0f);
    int i = 0;
    for (; i + 4 <= S; i += 4) acc = wasm_f32x4_add(acc, wasm_v128_load(xc + i));
    float s = wasm_f32x4_extract_lane(acc, 0) + wasm_f32x4_extract_lane(acc, 1) +
              wasm_f32x4_extract_lane(acc, 2) + wasm_f32x4_extract_lane(acc, 3);
    for (; i < S; i++) s += xc[i];
    out[nc] = s / (float)S;
  }
}

/* out[i] = x[i] > 0 ? x[i] : 0 (NaN and -0 give +0, like the reference); in place is fine. */
EXPORT(relu) void relu(const float *x, float *out, int n) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  int i = 0;
  // pmax(0, v) = 0 < v ? v : 0
  for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, wasm_f32x4_pmax(zero, wasm_v128_load(x + i)));
  for (; i < n; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
