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
 * The 2x2 window, stride 2, no padding, every window inside the input (as pool.c's max_pool_2x2),
 * four windows at a time: the maximum as the forward pass takes it, then tap t gets g where it
 * equals the maximum and no earlier tap did. A window whose maximum is -inf (all -inf or NaN)
 * passes nothing, as `v > m` never fires there.
 */
static void max_pool_grad_2x2(const float *x, const float *g, float *gx, int NC, int H, int W, int OH, int OW) {
  const v128_t ninf = wasm_f32x4_splat(-__builtin_inff());
  for (int nc = 0; nc < NC; nc++) {
    const float *xc = x + nc * H * W;
    float *gc = gx + nc * H * W;
    const float *go = g + nc * OH * OW;
    for (int oy = 0; oy < OH; oy++) {
      const float *r0 = xc + 2 * oy * W, *r1 = r0 + W;
      float *q0 = gc + 2 * oy * W, *q1 = q0 + W;
      const float *gr = go + oy * OW;
      int ox = 0;
      for (; ox + 4 <= OW; ox += 4) {
        const v128_t a0 = wasm_v128_load(r0 + 2 * ox), a1 = wasm_v128_load(r0 + 2 * ox + 4);
        const v128_t b0 = wasm_v128_load(r1 + 2 * ox), b1 = wasm_v128_load(r1 + 2 * ox + 4);
        const v128_t t0 = wasm_i32x4_shuffle(a0, a1, 0, 2, 4, 6), t1 = wasm_i32x4_shuffle(a0, a1, 1, 3, 5, 7);
        const v128_t t2 = wasm_i32x4_shuffle(b0, b1, 0, 2, 4, 6), t3 = wasm_i32x4_shuffle(b0, b1, 1, 3, 5, 7);
        v128_t m = ninf;
        m = wasm_f32x4_pmax(m, t0);
        m = wasm_f32x4_pmax(m, t1);
        m = wasm_f32x4_pmax(m, t2);
        m = wasm_f32x4_pmax(m, t3);
        v128_t open = wasm_f32x4_gt(m, ninf);  // windows whose gradient is not yet placed
        const v128_t gv = wasm_v128_load(gr + ox);
        const v128_t e0 = wasm_v128_and(open, wasm_f32x4_eq(t0, m));
        open = wasm_v128_andnot(open, e0);
        const v128_t e1 = wasm_v128_and(open, wasm_f32x4_eq(t1, m));
        open = wasm_v128_andnot(open, e1);
        const v128_t e2 = wasm_v128_and(open, wasm_f32x4_eq(t2, m));
        open = wasm_v128_andnot(open, e2);
        const v128_t e3 = wasm_v128_and(open, wasm_f32x4_eq(t3, m));
        const v128_t g0 = wasm_v128_and(gv, e0), g1 = wasm_v128_and(gv, e1);
        const v128_t g2 = wasm_v128_and(gv, e2), g3 = wasm_v128_and(gv, e3);
        // Back to row order: even columns from taps 0 / 2, odd from taps 1 / 3.
        wasm_v128_store(q0 + 2 * ox, wasm_f32x4_add(wasm_v128_load(q0 + 2 * ox), wasm_i32x4_shuffle(g0, g1, 0, 4, 1, 5)));
        wasm_v128_store(q0 + 2 * ox + 4, wasm_f32x4_add(wasm_v128_load(q0 + 2 * ox + 4), wasm_i32x4_shuffle(g0, g1, 2, 6, 3, 7)));
        wasm_v128_store(q1 + 2 * ox, wasm_f32x4_add(wasm_v128_load(q1 + 2 * ox), wasm_i32x4_shuffle(g2, g3, 0, 4, 1, 5)));
        wasm_v128_store(q1 + 2 * ox + 4, wasm_f32x4_add(wasm_v128_load(q1 + 2 * ox + 4), wasm_i32x4_shuffle(g2, g3, 2, 6, 3, 7)));
      }
      for (; ox < OW; ox++) {
        const float v[4] = {r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]};
        float *dst[4] = {q0 + 2 * ox, q0 + 2 * ox + 1, q1 + 2 * ox, q1 + 2 * ox + 1};
        float m = -__builtin_inff();
        int at = -1;
        for (int i = 0; i < 4; i++)
          if (v[i] > m) {
            m = v[i];
            at = i;
          }
        if (at >= 0) *dst[at] += gr[ox];
      }
    }
  }
}

/*
 * Max pool backward over x [NC, H, W], g [NC, OH, OW]: each window's gradient goes to the first
 * input cell (row-major in the window) holding its maximum, found again as the forward pass found
 * it (m starts at -inf, `v > m` replaces it); a window with no input cell passes nothing.
 */
EXPORT(max_pool_grad) void max_pool_grad(const float *x, const float *g, float *gx, int NC, int H, int W, int OH, int OW,
                                         int KH, int KW, int sh, int sw, int pt, int pl, int dh, int dw) {
  if (KH == 2 && KW == 2 && sh == 2 && sw == 2 && pt == 0 && pl == 0 && dh == 1 && dw == 1 && 2 * OH <= H && 2 * OW <= W) {
    max_pool_grad_2x2(x, g, gx, NC, H, W, OH, OW);
    return;
  }
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
