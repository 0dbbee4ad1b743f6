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

/*
 * The packed pointwise kernel (pointwise_packed): per image, strips of up to PK_TILES tiles of 8
 * pixels are copied channel by channel into pk_strip as [tile][C][8] (contiguous: the C x 8
 * inputs of a tile are one run of 32 C bytes, so no load walks the map at its plane stride, which
 * at 32 x 32 is 4 KiB: every channel of a tile in the same L1 set), then every block of 4 output
 * channels runs its 4 x 8 register tiles over the strip while it sits in L1. The weights are read
 * in place: 4 rows splatted per channel. A last block of 1 to 3 channels repeats the last weight
 * row in the missing rows and stores only its own, so no block runs with fewer than 4 rows. Where
 * HW is not a multiple of 8 the last tile overlaps the one before (it stores the same values again).
 * Each output is bias + its C products added in channel order, as pw_tile and conv.c's direct 1x1
 * kernel add them.
 */
#define PK_TILES 8
#define PK_FLOATS 8192
static SCRATCH float pk_strip[PK_FLOATS] __attribute__((aligned(16)));

int pointwise_packed_fits(int C, int HW) { return HW >= 8 && C >= 1 && 8 * C <= PK_FLOATS; }

/*
 * Where conv1x1 takes the packed kernel (bench/pointwisePacked.ts, CPU time against what conv1x1
 * ran before, README "The packed 1x1 kernel"): maps of 96 pixels or more (0.68-0.80 of the direct
 * kernel's time on 32 x 32, whose 4 KiB plane stride puts every channel of a tile in one L1 set;
 * 0.84-1.0 on 16 x 16 and DS-CNN's 25 x 5), and smaller maps when the output channels fill whole
 * blocks of 4 (0.83-1.0 on 8 x 8; with 1 to 3 channels left over the wasted rows cost more there).
 * Not with fewer than 4 input channels: a rank-1 stage (DS-CNN's 1 -> 64 on 25 x 5) is all stores
 * and strip copies, 1.11-1.21 of the direct kernel's time.
 */
int pointwise_packed_pays(int C, int HW, int O) { return C >= 4 && pointwise_packed_fits(C, HW) && (HW >= 96 || O % 4 == 0); }

/* 4 output channels (weight rows w0..w3) x the 8 pixels of one packed tile xp [C][8]; stores `rows` of them. */
static inline __attribute__((always_inline)) void pk_tile(
    const float *xp, int C, const float *w0, const float *w1, const float *w2, const float *w3,
    v128_t b0, v128_t b1, v128_t b2, v128_t b3, float *y, int ys, int rows) {
  v128_t a00 = b0, a01 = b0, a10 = b1, a11 = b1, a20 = b2, a21 = b2, a30 = b3, a31 = b3;
  for (int c = 0; c < C; c++, xp += 8) {
    const v128_t x0 = wasm_v128_load(xp), x1 = wasm_v128_load(xp + 4);
    v128_t wv = wasm_v128_load32_splat(w0 + c);
    a00 = MADD(a00, wv, x0);
    a01 = MADD(a01, wv, x1);
    wv = wasm_v128_load32_splat(w1 + c);
    a10 = MADD(a10, wv, x0);
    a11 = MADD(a11, wv, x1);
    wv = wasm_v128_load32_splat(w2 + c);
    a20 = MADD(a20, wv, x0);
    a21 = MADD(a21, wv, x1);
    wv = wasm_v128_load32_splat(w3 + c);
    a30 = MADD(a30, wv, x0);
    a31 = MADD(a31, wv, x1);
  }
  wasm_v128_store(y, a00);
  wasm_v128_store(y + 4, a01);
  if (rows > 1) {
    wasm_v128_store(y + ys, a10);
    wasm_v128_store(y + ys + 4, a11);
  }
  if (rows > 2) {
    wasm_v128_store(y + 2 * ys, a20);
    wasm_v128_store(y + 2 * ys + 4, a21);
  }
  if (rows > 3) {
    wasm_v128_store(y + 3 * ys, a30);
    wasm_v128_store(y + 3 * ys + 4, a31);
  }
}

void pointwise_packed(const float *x, const float *w, const float *bias, float *out, int N, int C, int HW, int O) {
  const int tiles = (HW + 7) / 8;
  const int perStrip = imin(PK_TILES, PK_FLOATS / (8 * C));
  for (int n = 0; n < N; n++) {
    const float *xn = x + n * C * HW;
    float *yn = out + n * O * HW;
    for (int t0 = 0; t0 < tiles; t0 += perStrip) {
      const int nt = imin(perStrip, tiles - t0);
      // Pack: tile t of the strip starts at pixel min(8 (t0 + t), HW - 8).
      for (int c = 0; c < C; c++) {
        const float *xc = xn + c * HW;
        float *d = pk_strip + 8 * c;
        for (int t = 0; t < nt; t++, d += 8 * C) {
          const int p = imin(8 * (t0 + t), HW - 8);
          wasm_v128_store(d, wasm_v128_load(xc + p));
          wasm_v128_store(d + 4, wasm_v128_load(xc + p + 4));
        }
      }
      for (int o = 0; o < O; o += 4) {
        const int rows = imin(4, O - o);
        const float *w0 = w + o * C;
        const float *w1 = w + (o + imin(1, rows - 1)) * C;
        const float *w2 = w + (o + imin(2, rows - 1)) * C;
        const float *w3 = w + (o + imin(3, rows - 1)) * C;
        const v128_t b0 = wasm_f32x4_splat(bias ? bias[o] : 0.0f);
        const v128_t b1 = wasm_f32x4_splat(bias ? bias[o + imin(1, rows - 1)] : 0.0f);
        const v128_t b2 = wasm_f32x4_splat(bias ? bias[o + imin(2, rows - 1)] : 0.0f);
        const v128_t b3 = wasm_f32x4_splat(bias ? bias[o + imin(3, rows - 1)] : 0.0f);
        float *yo = yn + o * HW;
        for (int t = 0; t < nt; t++) {
          const int p = imin(8 * (t0 + t), HW - 8);
          pk_tile(pk_strip + 8 * C * t, C, w0, w1, w2, w3, b0, b1, b2, b3, yo + p, HW, rows);
        }
      }
    }
  }
}

/* The packed kernel by itself, whatever conv1x1 would choose (the conformance suite and bench/pointwisePacked.ts); 0 when it does not fit. */
EXPORT(conv1x1_packed) int conv1x1_packed(const float *x, const float *w, const float *bias, float *out, int N, int C, int HW, int O) {
  if (!pointwise_packed_fits(C, HW)) return 0;
  pointwise_packed(x, w, bias, out, N, C, HW, O);
  return 1;
}

/* conv1x1's fast paths (conv.c): the packed kernel, else the batch GEMM, where they pay; 0 when neither does. */
int pointwise_fast(const float *x, const float *w, const float *bias, float *out, int N, int C, int HW, int O) {
  if (pointwise_packed_pays(C, HW, O)) {
    pointwise_packed(x, w, bias, out, N, C, HW, O);
    return 1;
  }
  if (pointwise_batch_pays(C, HW, O)) {
    pointwise_batch(x, w, bias, out, N, C, HW, O);
    return 1;
  }
  return 0;
}

/* Which kernel conv1x1 runs for these shapes: 2 packed, 1 batch GEMM, 0 conv.c's (the cost model mirrors it). */
EXPORT(conv1x1_path) int conv1x1_path(int C, int HW, int O) {
  return pointwise_packed_pays(C, HW, O) ? 2 : pointwise_batch_pays(C, HW, O) ? 1 : 0;
}
