// Pointwise (1x1, stride 1, no padding) convolution of a whole batch as one GEMM:
//   out[n, o, p] = bias[o] + sum_c w[o, c] * x[n, c, p]
// is W [O, C] times the wide matrix X [C, N*HW] whose column j = n*HW + p is pixel p of image n
// (NCHW: channel c of column j lies at x + n*C*HW + c*HW + p). With HW a multiple of 8 the
// columns run in tiles of 8 that never cross an image, read straight from x (2 vector loads per
// input channel, stride HW); the weights are read in place, 4 rows splatted per step as the
// packed GEMM's A panel, and each output is stored once. Loop order: column tile outer, blocks of
// 4 (2, 1) output channels inner, so a tile's C x 8 inputs stay in L1 while every output channel
// uses them; conv.c's per-image direct kernel runs the other way round (weights packed per block
// of 4 channels, then the whole map), which re-reads the map once per block.
// Each output is bias + its C products added in channel order, as conv.c's direct 1x1 kernel
// adds them, so the two give the same bits.
//
// Where it pays (pointwise_batch_pays; measured by CPU time against conv.c's per-image kernel,
// alternating, on this machine's AMD EPYC, README "1x1 convolution over the batch"): maps of 8 to
// 64 pixels with at least 32 input channels, 5-9% faster (LeNet-5's 42 -> 50 on 8x8, ResNet-8's
// 8x8 stage); on wider maps and few input channels conv.c's kernel is as fast or faster.
#include "kernels.h"

/*
 * MRT output channels (weight rows w, w + C, ...) x 8 columns whose channel c starts at
 * xp + c * xs; outputs at y + r * ys (4 + 4 floats per row).
 */
static inline __attribute__((always_inline)) void pw_tile(
    const int MRT, const float *xp, int xs, const float *w, int C, const float *bias, float *y, int ys) {
  v128_t acc[4][2];
  for (int r = 0; r < MRT; r++) {
    const v128_t b = wasm_f32x4_splat(bias ? bias[r] : 0.0f);
    acc[r][0] = b;
    acc[r][1] = b;
  }
  for (int c = 0; c < C; c++, xp += xs) {
    const v128_t x0 = wasm_v128_load(xp), x1 = wasm_v128_load(xp + 4);
    for (int r = 0; r < MRT; r++) {
      const v128_t wv = wasm_v128_load32_splat(w + r * C + c);
      acc[r][0] = MADD(acc[r][0], wv, x0);
      acc[r][1] = MADD(acc[r][1], wv, x1);
    }
  }
  for (int r = 0; r < MRT; r++) {
    wasm_v128_store(y + r * ys, acc[r][0]);
    wasm_v128_store(y + r * ys + 4, acc[r][1]);
  }
}

int pointwise_batch_pays(int C, int HW, int O) { return C >= 32 && O >= 1 && HW >= 8 && HW <= 64 && HW % 8 == 0; }

void pointwise_batch(const float *x, const float *w, const float *bias, float *out, int N, int C, int HW, int O) {
  for (int n = 0; n < N; n++) {
    const float *xn = x + n * C * HW;
    float *yn = out + n * O * HW;
    for (int p = 0; p < HW; p += 8) {
      int o = 0;
      for (; o + 4 <= O; o += 4) pw_tile(4, xn + p, HW, w + o * C, C, bias ? bias + o : 0, yn + o * HW + p, HW);
      for (; o + 2 <= O; o += 2) pw_tile(2, xn + p, HW, w + o * C, C, bias ? bias + o : 0, yn + o * HW + p, HW);
      for (; o < O; o++) pw_tile(1, xn + p, HW, w + o * C, C, bias ? bias + o : 0, yn + o * HW + p, HW);
    }
  }
}
