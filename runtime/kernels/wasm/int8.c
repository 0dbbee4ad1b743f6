// GEMM-NT with int8 weights: out[M, N] = a[M, K] (q[N, K] * scale)^T + bias[N], where a is f32,
// q is symmetric int8 and the scale is one per row of q (per channel) or one for all (per tensor).
//
// Few rows of a (M < 4, batch-1 dense layers, which are bandwidth-bound): each weight row is read
// once as int8 (a quarter of the f32 bytes), widened to f32 in registers 16 at a time, and
// multiplied into four running dot products; the scale is applied once per output.
// More rows: a panel of weight rows is dequantised (scale applied) into a 64 KiB f32 buffer, and
// the f32 register-blocked GEMM of gemm.c multiplies it, so the conversion is paid once per call.
#include "kernels.h"

#define PANEL_FLOATS 16384

static float panel[PANEL_FLOATS] __attribute__((aligned(16)));

static inline float scale_of(const float *scale, int perRow, int n) { return perRow ? scale[n] : scale[0]; }

// 16 int8 -> four f32x4.
static inline void widen16(v128_t q, v128_t *f0, v128_t *f1, v128_t *f2, v128_t *f3) {
  v128_t lo = wasm_i16x8_extend_low_i8x16(q), hi = wasm_i16x8_extend_high_i8x16(q);
  *f0 = wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(lo));
  *f1 = wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(lo));
  *f2 = wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(hi));
  *f3 = wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(hi));
}

static inline float hsum(v128_t s) {
  return wasm_f32x4_extract_lane(s, 0) + wasm_f32x4_extract_lane(s, 1) + wasm_f32x4_extract_lane(s, 2) +
         wasm_f32x4_extract_lane(s, 3);
}

// sum_k a[k] * q[k] over one row, k < K.
static float dot_i8(const float *a, const signed char *q, int K) {
  v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
  int k = 0;
  for (; k + 16 <= K; k += 16) {
    v128_t f0, f1, f2, f3;
    widen16(wasm_v128_load(q + k), &f0, &f1, &f2, &f3);
    s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + k), f0));
    s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(a + k + 4), f1));
    s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(wasm_v128_load(a + k + 8), f2));
    s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(wasm_v128_load(a + k + 12), f3));
  }
  float t = hsum(wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3)));
  for (; k < K; k++) t += a[k] * (float)q[k];
  return t;
}

static void small_m(const float *a, const signed char *q, const float *scale, int perRow, int M, int N, int K,
                    const float *bias, float *out) {
  for (int m = 0; m < M; m++) {
    const float *am = a + m * K;
    float *om = out + m * N;
    int n = 0;
    // Four weight rows at a time share each load of a.
    for (; n + 4 <= N; n += 4) {
      const signed char *q0 = q + n * K, *q1 = q0 + K, *q2 = q1 + K, *q3 = q2 + K;
      v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
      int k = 0;
      for (; k + 16 <= K; k += 16) {
        v128_t a0 = wasm_v128_load(am + k), a1 = wasm_v128_load(am + k + 4);
        v128_t a2 = wasm_v128_load(am + k + 8), a3 = wasm_v128_load(am + k + 12);
        v128_t f0, f1, f2, f3;
        widen16(wasm_v128_load(q0 + k), &f0, &f1, &f2, &f3);
        s0 = wasm_f32x4_add(s0, wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(a0, f0), wasm_f32x4_mul(a1, f1)),
                                               wasm_f32x4_add(wasm_f32x4_mul(a2, f2), wasm_f32x4_mul(a3, f3))));
        widen16(wasm_v128_load(q1 + k), &f0, &f1, &f2, &f3);
        s1 = wasm_f32x4_add(s1, wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(a0, f0), wasm_f32x4_mul(a1, f1)),
                                               wasm_f32x4_add(wasm_f32x4_mul(a2, f2), wasm_f32x4_mul(a3, f3))));
        widen16(wasm_v128_load(q2 + k), &f0, &f1, &f2, &f3);
        s2 = wasm_f32x4_add(s2, wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(a0, f0), wasm_f32x4_mul(a1, f1)),
                                               wasm_f32x4_add(wasm_f32x4_mul(a2, f2), wasm_f32x4_mul(a3, f3))));
        widen16(wasm_v128_load(q3 + k), &f0, &f1, &f2, &f3);
        s3 = wasm_f32x4_add(s3, wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(a0, f0), wasm_f32x4_mul(a1, f1)),
                                               wasm_f32x4_add(wasm_f32x4_mul(a2, f2), wasm_f32x4_mul(a3, f3))));
      }
      float r0 = hsum(s0), r1 = hsum(s1), r2 = hsum(s2), r3 = hsum(s3);
      for (; k < K; k++) {
        float av = am[k];
        r0 += av * (float)q0[k];
        r1 += av * (float)q1[k];
        r2 += av * (float)q2[k];
        r3 += av * (float)q3[k];
      }
      om[n] = (bias ? bias[n] : 0.0f) + scale_of(scale, perRow, n) * r0;
      om[n + 1] = (bias ? bias[n + 1] : 0.0f) + scale_of(scale, perRow, n + 1) * r1;
      om[n + 2] = (bias ? bias[n + 2] : 0.0f) + scale_of(scale, perRow, n + 2) * r2;
      om[n + 3] = (bias ? bias[n + 3] : 0.0f) + scale_of(scale, perRow, n + 3) * r3;
    }
    for (; n < N; n++) om[n] = (bias ? bias[n] : 0.0f) + scale_of(scale, perRow, n) * dot_i8(am, q + n * K, K);
  }
}

// panel[r, k] = q[n0 + r, k0 + k] * scale, for nb rows and kb columns (panel row stride kb).
static void dequantise(const signed char *q, const float *scale, int perRow, int K, int n0, int nb, int k0, int kb) {
  for (int r = 0; r < nb; r++) {
    const signed char *src = q + (n0 + r) * K + k0;
    float *dst = panel + r * kb;
    v128_t s = wasm_f32x4_splat(scale_of(scale, perRow, n0 + r));
    int k = 0;
    for (; k + 16 <= kb; k += 16) {
      v128_t f0, f1, f2, f3;
      widen16(wasm_v128_load(src + k), &f0, &f1, &f2, &f3);
      wasm_v128_store(dst + k, wasm_f32x4_mul(f0, s));
      wasm_v128_store(dst + k + 4, wasm_f32x4_mul(f1, s));
      wasm_v128_store(dst + k + 8, wasm_f32x4_mul(f2, s));
      wasm_v128_store(dst + k + 12, wasm_f32x4_mul(f3, s));
    }
    float sv = scale_of(scale, perRow, n0 + r);
    for (; k < kb; k++) dst[k] = (float)src[k] * sv;
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
  int kb = imin(K, PANEL_FLOATS);
  int nb = imax(1, PANEL_FLOATS / kb);
  for (int k0 = 0; k0 < K; k0 += kb) {
    int kc = imin(kb, K - k0);
    for (int n0 = 0; n0 < N; n0 += nb) {
      int nc = imin(nb, N - n0);
      dequantise(q, scale, perRow, K, n0, nc, k0, kc);
      // out[:, n0 .. n0 + nc] += a[:, k0 .. k0 + kc] panel^T
      gemm_acc(M, nc, kc, a + k0, K, 1, panel, 1, kc, out + n0, N);
    }
  }
}
