// Backward passes of the trainer's pointwise and pooling ops (converter/train/kernels.ts), with the
// same rules as its JS loops (converter/train/ops/activation.ts, pool.ts).
#include "kernels.h"

/* gx[i] += x[i] > 0 ? g[i] : 0 (NaN and -0 pass nothing, as the JS loop). */
EXPORT(relu_grad) void relu_grad(const float *x, const float *g, float *gx, int n) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t pos = wasm_f32x4_gt(wasm_v128_load(x + i), zero);
    wasm_v128_store(gx + i, wasm_f32x4_add(wasm_v128_load(gx + i), wasm_v128_and(wasm_v128_load(g + i), pos)));
  }
  for (; i < n; i++)
    if (x[i] > 0.0f) gx[i] += g[i];
}

/*
 * Max pool backward over x [NC, H, W], g [NC, OH, OW]: each window's gradient goes to the first
 * input cell (row-major in the window) holding its maximum, found again as the forward pass found
 * it (m starts at -inf, `v > m` replaces it); a window with no input cell passes nothing.
 */
EXPORT(max_pool_grad) void max_pool_grad(const float *x, const float *g, float *gx, int NC, int H, int W, int OH, int OW,
                                         int KH, int KW, int sh, int sw, int pt, int pl, int dh, int dw) {
  for (int nc = 0; nc < NC; nc++) {
    const float *xc = x + nc * H * W;
    float *gc = gx + nc * H * W;
    const float *go = g + nc * OH * OW;
    for (int oy = 0; oy < OH; oy++) {
      const int y0 = oy * sh - pt;
      const int kyLo = y0 >= 0 ? 0 : (-y0 + dh - 1) / dh;
      const int kyHi = H - 1 - y0 < 0 ? 0 : imin(KH, (H - 1 - y0) / dh + 1);
      for (int ox = 0; ox < OW; ox++) {
        const int x0 = ox * sw - pl;
        const int kxLo = x0 >= 0 ? 0 : (-x0 + dw - 1) / dw;
        const int kxHi = W - 1 - x0 < 0 ? 0 : imin(KW, (W - 1 - x0) / dw + 1);
        float m = -__builtin_inff();
        int at = -1;
        for (int ky = kyLo; ky < kyHi; ky++) {
          const int row = (y0 + ky * dh) * W + x0;
          for (int kx = kxLo; kx < kxHi; kx++) {
            const float v = xc[row + kx * dw];
            if (v > m) {
              m = v;
              at = row + kx * dw;
            }
          }
        }
        if (at >= 0) gc[at] += go[oy * OW + ox];
      }
    }
  }
}
