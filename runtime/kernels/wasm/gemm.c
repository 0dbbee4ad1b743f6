// GEMM: GotoBLAS-style blocking (pack a KC x NC panel of B, an MC x KC block of A) around a
// register-blocked MR x NR micro-kernel built from f32x4 multiply + add (wasm SIMD has no FMA).
//
//   for jc in N step NC:            B block  [KC x NC]  -> packB  (NR-wide column panels)
//     for pc in K step KC:
//       for ic in M step MC:        A block  [MC x KC]  -> packA  (MR-tall row panels)
//         for jr, ir: micro-kernel  C[MR x NR] += packA panel * packB panel
//
// Packed panels are zero-padded to MR / NR so the micro-kernel never branches inside its k loop;
// edge tiles are computed into a small buffer and only their valid part is added to C.
#include "kernels.h"

#ifndef MR
#define MR 4
#endif
#ifndef NR
#define NR 8
#endif
#define NV (NR / 4)
#define KC 256
#define MC 96
#ifndef GEMM_NC
// The threaded build narrows it (build-wasm.sh): packB is per thread there, and its zero image is
// stored in the module. Columns only: the order of each output's sum over k does not change.
#define GEMM_NC 2048
#endif
#define NC GEMM_NC

static SCRATCH float packA[MC * KC] __attribute__((aligned(16)));
static SCRATCH float packB[KC * NC] __attribute__((aligned(16)));

static void pack_a(int mc, int kc, const float *A, int rsa, int csa, float *dst) {
  for (int i = 0; i < mc; i += MR) {
    int mr = imin(MR, mc - i);
    const float *src = A + i * rsa;
    for (int p = 0; p < kc; p++) {
      int r = 0;
      for (; r < mr; r++) dst[r] = src[r * rsa + p * csa];
      for (; r < MR; r++) dst[r] = 0.0f;
      dst += MR;
    }
  }
}

static void pack_b(int kc, int nc, const float *B, int rsb, int csb, float *dst) {
  for (int j = 0; j < nc; j += NR) {
    int nr = imin(NR, nc - j);
    const float *src = B + j * csb;
    if (nr == NR && csb == 1) {
      // Rows of B are contiguous (NN, TN): copy NR floats per k with vector loads.
      for (int p = 0; p < kc; p++) {
        const float *s = src + p * rsb;
        for (int v = 0; v < NV; v++) wasm_v128_store(dst + 4 * v, wasm_v128_load(s + 4 * v));
        dst += NR;
      }
    } else {
      for (int p = 0; p < kc; p++) {
        int c = 0;
        for (; c < nr; c++) dst[c] = src[p * rsb + c * csb];
        for (; c < NR; c++) dst[c] = 0.0f;
        dst += NR;
      }
    }
  }
}

// C[MR x NR] += a_panel[kc x MR]^T b_panel[kc x NR]; mr x nr is the valid part of the tile.
static void micro_kernel(int kc, const float *a, const float *b, float *C, int ldc, int mr, int nr) {
  v128_t acc[MR][NV];
  for (int r = 0; r < MR; r++)
    for (int v = 0; v < NV; v++) acc[r][v] = wasm_f32x4_splat(0.0f);
  for (int p = 0; p < kc; p++) {
    v128_t bv[NV];
    for (int v = 0; v < NV; v++) bv[v] = wasm_v128_load(b + 4 * v);
    for (int r = 0; r < MR; r++) {
      v128_t av = wasm_v128_load32_splat(a + r);
      for (int v = 0; v < NV; v++) acc[r][v] = MADD(acc[r][v], av, bv[v]);
    }
    a += MR;
    b += NR;
  }
  if (mr == MR && nr == NR) {
    for (int r = 0; r < MR; r++)
      for (int v = 0; v < NV; v++) {
        float *c = C + r * ldc + 4 * v;
        wasm_v128_store(c, wasm_f32x4_add(wasm_v128_load(c), acc[r][v]));
      }
  } else {
    float tile[MR * NR] __attribute__((aligned(16)));
    for (int r = 0; r < MR; r++)
      for (int v = 0; v < NV; v++) wasm_v128_store(tile + r * NR + 4 * v, acc[r][v]);
    for (int r = 0; r < mr; r++)
      for (int c = 0; c < nr; c++) C[r * ldc + c] += tile[r * NR + c];
  }
}

// Few rows of A (batch-1 dense layers): packing B would cost as much as the product itself.
static void gemm_small_m(int M, int N, int K, const float *A, int rsa, int csa,
                         const float *B, int rsb, int csb, float *C, int ldc) {
  for (int i = 0; i < M; i++) {
    const float *a = A + i * rsa;
    float *c = C + i * ldc;
    if (csb == 1) {
      // B rows contiguous: c[j..] += a(p) * B[p, j..], 16 columns at a time held in registers.
      int j = 0;
      for (; j + 16 <= N; j += 16) {
        v128_t s0 = wasm_v128_load(c + j), s1 = wasm_v128_load(c + j + 4);
        v128_t s2 = wasm_v128_load(c + j + 8), s3 = wasm_v128_load(c + j + 12);
        for (int p = 0; p < K; p++) {
          const float *b = B + p * rsb + j;
          v128_t av = wasm_f32x4_splat(a[p * csa]);
          s0 = MADD(s0, av, wasm_v128_load(b));
          s1 = MADD(s1, av, wasm_v128_load(b + 4));
          s2 = MADD(s2, av, wasm_v128_load(b + 8));
          s3 = MADD(s3, av, wasm_v128_load(b + 12));
        }
        wasm_v128_store(c + j, s0);
        wasm_v128_store(c + j + 4, s1);
        wasm_v128_store(c + j + 8, s2);
        wasm_v128_store(c + j + 12, s3);
      }
      for (; j + 4 <= N; j += 4) {
        v128_t s = wasm_v128_load(c + j);
        for (int p = 0; p < K; p++)
          s = MADD(s, wasm_f32x4_splat(a[p * csa]), wasm_v128_load(B + p * rsb + j));
        wasm_v128_store(c + j, s);
      }
      for (; j < N; j++) {
        float s = 0.0f;
        for (int p = 0; p < K; p++) s += a[p * csa] * B[p * rsb + j];
        c[j] += s;
      }
    } else if (rsb == 1 && csa == 1) {
      // NT: each output is a dot product of two contiguous rows; four at a time.
      int j = 0;
      for (; j + 4 <= N; j += 4) {
        const float *b0 = B + j * csb, *b1 = b0 + csb, *b2 = b1 + csb, *b3 = b2 + csb;
        v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
        int p = 0;
        for (; p + 4 <= K; p += 4) {
          v128_t av = wasm_v128_load(a + p);
          s0 = MADD(s0, av, wasm_v128_load(b0 + p));
          s1 = MADD(s1, av, wasm_v128_load(b1 + p));
          s2 = MADD(s2, av, wasm_v128_load(b2 + p));
          s3 = MADD(s3, av, wasm_v128_load(b3 + p));
        }
        // Transpose-and-add: lane q of the result is the horizontal sum of s_q.
        v128_t t0 = wasm_i32x4_shuffle(s0, s1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(s0, s1, 2, 6, 3, 7);
        v128_t t2 = wasm_i32x4_shuffle(s2, s3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(s2, s3, 2, 6, 3, 7);
        v128_t u0 = wasm_f32x4_add(t0, t1), u1 = wasm_f32x4_add(t2, t3);
        v128_t sum = wasm_f32x4_add(wasm_i32x4_shuffle(u0, u1, 0, 1, 4, 5), wasm_i32x4_shuffle(u0, u1, 2, 3, 6, 7));
        float r[4] __attribute__((aligned(16)));
        wasm_v128_store(r, sum);
        for (; p < K; p++) {
          r[0] += a[p] * b0[p];
          r[1] += a[p] * b1[p];
          r[2] += a[p] * b2[p];
          r[3] += a[p] * b3[p];
        }
        c[j] += r[0];
        c[j + 1] += r[1];
        c[j + 2] += r[2];
        c[j + 3] += r[3];
      }
      for (; j < N; j++) {
        const float *b = B + j * csb;
        v128_t s = wasm_f32x4_splat(0.0f);
        int p = 0;
        for (; p + 4 <= K; p += 4) s = MADD(s, wasm_v128_load(a + p), wasm_v128_load(b + p));
        float t = wasm_f32x4_extract_lane(s, 0) + wasm_f32x4_extract_lane(s, 1) +
                  wasm_f32x4_extract_lane(s, 2) + wasm_f32x4_extract_lane(s, 3);
        for (; p < K; p++) t += a[p] * b[p];
        c[j] += t;
      }
    } else {
      for (int j = 0; j < N; j++) {
        float s = 0.0f;
        for (int p = 0; p < K; p++) s += a[p * csa] * B[p * rsb + j * csb];
        c[j] += s;
      }
    }
  }
}

void gemm_acc(int M, int N, int K, const float *A, int rsa, int csa,
              const float *B, int rsb, int csb, float *C, int ldc) {
  if (M <= 0 || N <= 0 || K <= 0) return;
  if (M < MR) {
    gemm_small_m(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc);
    return;
  }
  for (int jc = 0; jc < N; jc += NC) {
    int nc = imin(NC, N - jc);
    for (int pc = 0; pc < K; pc += KC) {
      int kc = imin(KC, K - pc);
      pack_b(kc, nc, B + pc * rsb + jc * csb, rsb, csb, packB);
      for (int ic = 0; ic < M; ic += MC) {
        int mc = imin(MC, M - ic);
        pack_a(mc, kc, A + ic * rsa + pc * csa, rsa, csa, packA);
        for (int jr = 0; jr < nc; jr += NR) {
          int nr = imin(NR, nc - jr);
          for (int ir = 0; ir < mc; ir += MR) {
            micro_kernel(kc, packA + ir * kc, packB + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc,
                         imin(MR, mc - ir), nr);
          }
        }
      }
    }
  }
}

void fill_bias(int M, int N, float *C, int ldc, const float *rowBias, const float *colBias) {
  for (int i = 0; i < M; i++) {
    float r = rowBias ? rowBias[i] : 0.0f;
    float *c = C + i * ldc;
    for (int j = 0; j < N; j++) c[j] = r + (colBias ? colBias[j] : 0.0f);
  }
}

/* out[M, N] = a[M, K] b[N, K]^T + bias[N]   (bias may be 0). */
EXPORT(gemm_nt) void gemm_nt(const float *a, const float *b, int M, int N, int K, const float *bias, float *out) {
  fill_bias(M, N, out, N, 0, bias);
  gemm_acc(M, N, K, a, K, 1, b, 1, K, out, N);
}

/* out[M, N] = a[M, K] b[K, N]. */
EXPORT(gemm_nn) void gemm_nn(const float *a, const float *b, int M, int N, int K, float *out) {
  fill_bias(M, N, out, N, 0, 0);
  gemm_acc(M, N, K, a, K, 1, b, N, 1, out, N);
}

/* out[M, N] = a[K, M]^T b[K, N]. */
EXPORT(gemm_tn) void gemm_tn(const float *a, const float *b, int M, int N, int K, float *out) {
  fill_bias(M, N, out, N, 0, 0);
  gemm_acc(M, N, K, a, 1, M, b, N, 1, out, N);
}
