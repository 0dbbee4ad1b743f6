// Pooling and activations. Window bounds are clipped once per output instead of tested per tap.
#include "kernels.h"

/*
 * The common 2x2 window, stride 2, no padding or dilation, every window inside the input: four
 * outputs at a time. Taps are taken in the reference's order, (0,0) (0,1) (1,0) (1,1), each with
 * m = m < v ? v : m (pmax), which is the reference's `if (v > m) m = v`, NaN and -0 included.
 */
static void max_pool_2x2(const float *x, float *out, int NC, int H, int W, int OH, int OW) {
  const v128_t ninf = wasm_f32x4_splat(-__builtin_inff());
  for (int nc = 0; nc < NC; nc++) {
    const float *xc = x + nc * H * W;
    float *yc = out + nc * OH * OW;
    for (int oy = 0; oy < OH; oy++) {
      const float *r0 = xc + 2 * oy * W;
      const float *r1 = r0 + W;
      float *y = yc + oy * OW;
      int ox = 0;
      for (; ox + 4 <= OW; ox += 4) {
        const v128_t a0 = wasm_v128_load(r0 + 2 * ox), a1 = wasm_v128_load(r0 + 2 * ox + 4);
        const v128_t b0 = wasm_v128_load(r1 + 2 * ox), b1 = wasm_v128_load(r1 + 2 * ox + 4);
        v128_t m = ninf;
        m = wasm_f32x4_pmax(m, wasm_i32x4_shuffle(a0, a1, 0, 2, 4, 6));
        m = wasm_f32x4_pmax(m, wasm_i32x4_shuffle(a0, a1, 1, 3, 5, 7));
        m = wasm_f32x4_pmax(m, wasm_i32x4_shuffle(b0, b1, 0, 2, 4, 6));
        m = wasm_f32x4_pmax(m, wasm_i32x4_shuffle(b0, b1, 1, 3, 5, 7));
        wasm_v128_store(y + ox, m);
      }
      for (; ox < OW; ox++) {
        float m = -__builtin_inff();
        const float v[4] = {r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]};
        for (int i = 0; i < 4; i++) if (v[i] > m) m = v[i];
        y[ox] = m;
      }
    }
  }
}

/* Max pool over x [NC, H, W] -> out [NC, OH, OW]; a window with no input cell gives -inf. */
EXPORT(max_pool) void max_pool(const float *x, float *out, int NC, int H, int W, int OH, int OW,
                               int KH, int KW, int sh, int sw, int pt, int pl, int dh, int dw) {
  if (KH == 2 && KW == 2 && sh == 2 && sw == 2 && pt == 0 && pl == 0 && dh == 1 && dw == 1 && 2 * OH <= H && 2 * OW <= W) {
    max_pool_2x2(x, out, NC, H, W, OH, OW);
    return;
  }
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
void global_avg_pool(const float *x, float *out, int NC, int S);

EXPORT(avg_pool) void avg_pool(const float *x, float *out, int NC, int H, int W, int OH, int OW,
                               int KH, int KW, int sh, int sw, int pt, int pl, int pb, int pr, int countIncludePad) {
  // One window that is the whole unpadded map (DS-CNN's 25 x 5 pool on 25 x 5): the vector sum of
  // the global pool instead of one scalar add chain per channel (4 partial sums, then across).
  if (OH == 1 && OW == 1 && KH == H && KW == W && pt == 0 && pl == 0 && pb == 0 && pr == 0) {
    global_avg_pool(x, out, NC, H * W);
    return;
  }
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
