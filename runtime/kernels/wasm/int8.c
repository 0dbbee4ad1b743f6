// GEMM-NT with int8 weights: out[M, N] = a[M, K] (q[N, K] * scale)^T + bias[N], where a is f32,
// q is symmetric int8 and the scale is one per row of q (per channel) or one for all (per tensor).
//
// Few rows of a (M < 4, batch-1 dense layers, which are bandwidth-bound): each weight row is read
// once as int8 (a quarter of the f32 bytes), widened to f32 in registers 16 at a time (shifts, with
// the activations permuted to the lane order the shifts give), and multiplied into four running
// dot products; the scale is applied once per output.
// More rows: a panel of weight rows is dequantised (scale applied) into a 64 KiB f32 buffer, and
// the f32 register-blocked GEMM of gemm.c multiplies it, so the conversion is paid once per call.
#include "kernels.h"

#define PANEL_FLOATS 16384

static SCRATCH float panel[PANEL_FLOATS] __attribute__((aligned(16)));

static inline float scale_of(const float *scale, int perRow, int n) { return perRow ? scale[n] : scale[0]; }

// 16 int8 -> four f32x4 in strided order: f_j holds bytes j, j+4, j+8, j+12. Two shifts per
// vector (byte j of each 32-bit lane moved to the top, then shifted down with its sign): fewer
// instructions than the extends once V8 lowers them to x86. The activations are permuted to match
// (permute16), since a dot product does not depend on the order of its terms.
static inline void widen16_strided(v128_t q, v128_t *f0, v128_t *f1, v128_t *f2, v128_t *f3) {
  *f0 = wasm_f32x4_convert_i32x4(wasm_i32x4_shr(wasm_i32x4_shl(q, 24), 24));
  *f1 = wasm_f32x4_convert_i32x4(wasm_i32x4_shr(wasm_i32x4_shl(q, 16), 24));
  *f2 = wasm_f32x4_convert_i32x4(wasm_i32x4_shr(wasm_i32x4_shl(q, 8), 24));
  *f3 = wasm_f32x4_convert_i32x4(wasm_i32x4_shr(q, 24));
}

// dst[b + 4 j + l] = src[b + j + 4 l] for each block b of 16: the order widen16_strided produces.
static void permute16(const float *src, float *dst, int n16) {
  for (int b = 0; b < n16; b += 16)
    for (int j = 0; j < 4; j++)
      for (int l = 0; l < 4; l++) dst[b + 4 * j + l] = src[b + j + 4 * l];
}

static inline float hsum(v128_t s) {
  return wasm_f32x4_extract_lane(s, 0) + wasm_f32x4_extract_lane(s, 1) + wasm_f32x4_extract_lane(s, 2) +
         wasm_f32x4_extract_lane(s, 3);
}

static inline v128_t dot16(v128_t acc, v128_t a0, v128_t a1, v128_t a2, v128_t a3, v128_t q) {
  v128_t f0, f1, f2, f3;
  widen16_strided(q, &f0, &f1, &f2, &f3);
  return wasm_f32x4_add(acc, wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(a0, f0), wasm_f32x4_mul(a1, f1)),
                                            wasm_f32x4_add(wasm_f32x4_mul(a2, f2), wasm_f32x4_mul(a3, f3))));
}

// Rows of a one at a time (M < 4): out[n] = bias[n] + s_n sum_k a[k] q[n, k]. K is taken in chunks
// of the permuted-activation buffer; partial sums collect in out.
static SCRATCH float aperm[PANEL_FLOATS] __attribute__((aligned(16)));

static void small_m(const float *a, const signed char *q, const float *scale, int perRow, int M, int N, int K,
                    const float *bias, float *out) {
  for (int m = 0; m < M; m++) {
    const float *am = a + m * K;
    float *om = out + m * N;
    for (int n = 0; n < N; n++) om[n] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += PANEL_FLOATS) {
      int kc = imin(PANEL_FLOATS, K - k0);
      int k16 = kc & ~15;
      permute16(am + k0, aperm, k16);
      int n = 0;
      // Four weight rows at a time share each load of a.
      for (; n + 4 <= N; n += 4) {
        const signed char *q0 = q + n * K + k0, *q1 = q0 + K, *q2 = q1 + K, *q3 = q2 + K;
        v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
        for (int k = 0; k < k16; k += 16) {
          v128_t a0 = wasm_v128_load(aperm + k), a1 = wasm_v128_load(aperm + k + 4);
          v128_t a2 = wasm_v128_load(aperm + k + 8), a3 = wasm_v128_load(aperm + k + 12);
          s0 = dot16(s0, a0, a1, a2, a3, wasm_v128_load(q0 + k));
          s1 = dot16(s1, a0, a1, a2, a3, wasm_v128_load(q1 + k));
          s2 = dot16(s2, a0, a1, a2, a3, wasm_v128_load(q2 + k));
          s3 = dot16(s3, a0, a1, a2, a3, wasm_v128_load(q3 + k));
        }
        float r0 = hsum(s0), r1 = hsum(s1), r2 = hsum(s2), r3 = hsum(s3);
        for (int k = k16; k < kc; k++) {
          float av = am[k0 + k];
          r0 += av * (float)q0[k];
          r1 += av * (float)q1[k];
          r2 += av * (float)q2[k];
          r3 += av * (float)q3[k];
        }
        om[n] += r0;
        om[n + 1] += r1;
        om[n + 2] += r2;
        om[n + 3] += r3;
      }
      for (; n < N; n++) {
        const signed char *qn = q + n * K + k0;
        v128_t s = wasm_f32x4_splat(0.0f);
        for (int k = 0; k < k16; k += 16)
          s = dot16(s, wasm_v128_load(aperm + k), wasm_v128_load(aperm + k + 4), wasm_v128_load(aperm + k + 8),
                    wasm_v128_load(aperm + k + 12), wasm_v128_load(qn + k));
        float r = hsum(s);
        for (int k = k16; k < kc; k++) r += am[k0 + k] * (float)qn[k];
        om[n] += r;
      }
    }
    for (int n = 0; n < N; n++) om[n] = (bias ? bias[n] : 0.0f) + scale_of(scale, perRow, n) * om[n];
  }
}

// panel[r, k] = q[n0 + r, k0 + k] * scale for nb rows and kb columns (panel row stride kb), each
// full block of 16 columns in the strided order of widen16_strided (a's block is permuted to match),
// the last kb % 16 columns in natural order.
static void dequantise(const signed char *q, const float *scale, int perRow, int K, int n0, int nb, int k0, int kb) {
  int k16 = kb & ~15;
  for (int r = 0; r < nb; r++) {
    const signed char *src = q + (n0 + r) * K + k0;
    float *dst = panel + r * kb;
    float sv = scale_of(scale, perRow, n0 + r);
    v128_t s = wasm_f32x4_splat(sv);
    for (int k = 0; k < k16; k += 16) {
      v128_t f0, f1, f2, f3;
      widen16_strided(wasm_v128_load(src + k), &f0, &f1, &f2, &f3);
      wasm_v128_store(dst + k, wasm_f32x4_mul(f0, s));
      wasm_v128_store(dst + k + 4, wasm_f32x4_mul(f1, s));
      wasm_v128_store(dst + k + 8, wasm_f32x4_mul(f2, s));
      wasm_v128_store(dst + k + 12, wasm_f32x4_mul(f3, s));
    }
    for (int k = k16; k < kb; k++) dst[k] = (float)src[k] * sv;
  }
}

/*
 * out[M, N] = a[M, K] (q[N, K] * s)^T + bias[N]   (bias may be 0).
 * perRow != 0: s[n] = scale[n] (per channel); perRow == 0: s = scale[0] (per tensor).
 */
EXPORT(gemm_nt_i8) void gemm_nt_i8(const float *a, const signed char *q, const float *scale, int perRow, int M, int N,
                                  int K, const float *bias, float *out) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    fill_bias(M, N, out, N, 0, bias);
    return;
  }
  if (M < 4) {
    small_m(a, q, scale, perRow, M, N, K, bias, out);
    return;
  }
  fill_bias(M, N, out, N, 0, bias);
  // Panels of 256 columns (the GEMM's own KC) and 64 rows, so that each GEMM call is big enough to
  // pay for packing its share of a; a is taken 64 rows at a time, its block permuted to the
  // panel's column order.
  int kb = imin(K, 256);
  int nb = PANEL_FLOATS / 256;
  int mb = PANEL_FLOATS / 256;
  for (int m0 = 0; m0 < M; m0 += mb) {
    int mc = imin(mb, M - m0);
    for (int k0 = 0; k0 < K; k0 += kb) {
      int kc = imin(kb, K - k0);
      int k16 = kc & ~15;
      for (int r = 0; r < mc; r++) {
        const float *src = a + (m0 + r) * K + k0;
        permute16(src, aperm + r * kc, k16);
        for (int k = k16; k < kc; k++) aperm[r * kc + k] = src[k];
      }
      for (int n0 = 0; n0 < N; n0 += nb) {
        int nc = imin(nb, N - n0);
        dequantise(q, scale, perRow, K, n0, nc, k0, kc);
        // out[m0 .., n0 ..] += a_block panel^T
        gemm_acc(mc, nc, kc, aperm, kc, 1, panel, 1, kc, out + m0 * N + n0, N);
      }
    }
  }
}
