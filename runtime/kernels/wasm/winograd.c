// Winograd F(2,3) for 3x3 convolutions of stride 1 and dilation 1 (one group): each 2x2 block
// of outputs ("tile") is computed from a 4x4 block of the input as
//   Y = A^T [ sum_c (G g_oc G^T) .* (B^T d_c B) ] A
// (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016), with
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
// 16 multiplies per tile and (o, c) pair instead of 36. The sum over c is, for each of the 16
// positions xi of the 4x4 block, a matrix product M_xi [O, T] = U_xi [O, C] V_xi [C, T] over a
// chunk of T tiles: a GEMM on packed panels (U packed once, V written packed by the transform)
// with gemm.c's 4 x 8 register tile. Per image:
//   1. the input, zero-padded, into `cols` (rows 2*tH+2, columns 2*tW4+4; tW4 = tile columns
//      rounded up to 4, so that every 4 tiles of a row are one f32x4 per position);
//   2. per chunk of T tiles: V = B^T d B, four neighbouring tiles per vector (strided loads and
//      shuffles of the padded rows), the 16 GEMMs, then Y = A^T M A plus the bias, stored
//      interleaved back to rows of the output (the tiles past OH, OW are computed and dropped).
// The transformed weights U [16][O][C] are made once (winograd_weights) and registered with the
// weight's address (winograd_register); the runtime does that for the weights a session retains.
// A weight not registered is transformed per call into the scratch, when it fits.
// Not bit-exact with the direct sum: the transforms round, and their magnitude (|B^T| |d| |B| up
// to 4 max|d|) lets the rounding error grow by a bounded factor; the conformance suite states the
// tolerance it checks.
#include "kernels.h"

/* Tiles per chunk at most: keeps V and M of a chunk near the cache (measured, bench/convPaths.ts). */
#define WINO_TILES_MAX 64
/* Floats between the 16 positions' blocks of V and M: keeps them off a power-of-two stride (cache sets). */
#ifndef WINO_SKEW
#define WINO_SKEW 16
#endif

/*
 * The registered transforms: weight address -> U. Shared by every instance of the threaded build
 * (not SCRATCH: registered between calls by the main thread, only read during calls), so a slice
 * of output channels (w advanced by whole output channels) finds its rows of U.
 */
#define WINO_MAX 256
typedef struct { const float *w, *U; int O, C; } wino_entry;
static wino_entry wino_tab[WINO_MAX];
static int wino_count;

/* Floats of the transformed weights of O x C: 16 panels of 4 output channels (zero rows past O) by C. */
EXPORT(winograd_weights_floats) int winograd_weights_floats(int O, int C) { return 16 * ((O + 3) & ~3) * C; }

/*
 * w [O, C, 3, 3] -> U, position xi = 4i + j of (G g G^T), packed as the GEMM's A panels:
 * U[xi][o / 4][c][o % 4] (xi stride S = O4*C floats, O4 = O rounded up to 4; rows past O zero).
 */
EXPORT(winograd_weights) void winograd_weights(const float *w, int O, int C, float *U) {
  const int O4 = (O + 3) & ~3, S = O4 * C;
  for (int i = 0; i < 16 * S; i++) U[i] = 0.0f;
  for (int o = 0; o < O; o++)
    for (int c = 0; c < C; c++) {
      const float *g = w + (o * C + c) * 9;
      float t[4][3];  // G g
      for (int k = 0; k < 3; k++) {
        const float g0 = g[k], g1 = g[3 + k], g2 = g[6 + k];
        t[0][k] = g0;
        t[1][k] = 0.5f * (g0 + g1 + g2);
        t[2][k] = 0.5f * (g0 - g1 + g2);
        t[3][k] = g2;
      }
      for (int i = 0; i < 4; i++) {
        const float a = t[i][0], b = t[i][1], d = t[i][2];
        float *u = U + 4 * i * S + (o >> 2) * 4 * C + c * 4 + (o & 3);
        u[0] = a;
        u[S] = 0.5f * (a + b + d);
        u[2 * S] = 0.5f * (a - b + d);
        u[3 * S] = d;
      }
    }
}

/* Records U (from winograd_weights) for the weight at w; 0 when the table is full. */
EXPORT(winograd_register) int winograd_register(const float *w, const float *U, int O, int C) {
  for (int i = 0; i < wino_count; i++)
    if (wino_tab[i].w == w) {
      wino_tab[i].U = U, wino_tab[i].O = O, wino_tab[i].C = C;
      return 1;
    }
  if (wino_count == WINO_MAX) return 0;
  wino_tab[wino_count].w = w, wino_tab[wino_count].U = U, wino_tab[wino_count].O = O, wino_tab[wino_count].C = C;
  wino_count++;
  return 1;
}

/* Forgets the transform of the weight at w (before its memory is reused). */
EXPORT(winograd_unregister) void winograd_unregister(const float *w) {
  for (int i = 0; i < wino_count; i++)
    if (wino_tab[i].w == w) {
      wino_tab[i] = wino_tab[--wino_count];
      return;
    }
}

/* The rows of a registered U for the O output channels of C inputs at w; *stride is U's xi stride. */
static const float *wino_find(const float *w, int O, int C, int *stride) {
  for (int i = 0; i < wino_count; i++) {
    const wino_entry *e = &wino_tab[i];
    const long long d = w - e->w;
    // A slice of output channels from a multiple of 4 (the threaded split takes blocks of 16).
    if (e->C == C && d >= 0 && d % (36LL * C) == 0 && d / (9LL * C) + O <= e->O) {
      *stride = ((e->O + 3) & ~3) * C;
      return e->U + (d / (9LL * C)) * C;
    }
  }
  return 0;
}

/* Whether a weight of these shapes takes Winograd on outputs of some size (the runtime transforms it at prepare). */
EXPORT(winograd_weights_pay) int winograd_weights_pay(int C, int O, int KH, int KW, int G, int sh, int sw, int dh, int dw) {
  return KH == 3 && KW == 3 && G == 1 && sh == 1 && sw == 1 && dh == 1 && dw == 1 && C >= 4 && O >= 4 &&
         (long long)C * O >= 64;
}

int winograd_shape(int C, int O, int KH, int KW, int G, int sh, int sw, int dh, int dw, int OH, int OW) {
  return winograd_weights_pay(C, O, KH, KW, G, sh, sw, dh, dw) && OH >= 4 && OW >= 4;
}

/* Channels [C, H, W] into [C, Hq, Wq] at row pt, column pl, zeros around (clipped to Hq, Wq). */
static void wino_pad(const float *x, int C, int H, int W, int pt, int pl, int Hq, int Wq, float *dst) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  const int total = C * Hq * Wq;
  int i = 0;
  for (; i + 4 <= total; i += 4) wasm_v128_store(dst + i, zero);
  for (; i < total; i++) dst[i] = 0.0f;
  const int x0 = imax(0, -pl), x1 = imin(W, Wq - pl), y0 = imax(0, -pt), y1 = imin(H, Hq - pt);
  for (int c = 0; c < C; c++)
    for (int iy = y0; iy < y1; iy++) {
      const float *s = x + (c * H + iy) * W;
      float *d = dst + (c * Hq + iy + pt) * Wq + pl;
      int ix = x0;
      for (; ix + 4 <= x1; ix += 4) wasm_v128_store(d + ix, wasm_v128_load(s + ix));
      for (; ix < x1; ix++) d[ix] = s[ix];
    }
}

/*
 * V of the tiles t0 .. t0+T (T a multiple of 8; 4 tiles per vector; tiles from nt on are zeros)
 * from the padded input, packed as the GEMM's B panels: V[xi][j / 8][c][j % 8] (xi stride C*T).
 */
static void wino_input(const float *xp, int C, int Hq, int Wq, int tW4, int nt, int t0, int T, float *V) {
  const int S = C * T + WINO_SKEW;
  for (int c = 0; c < C; c++) {
    const float *xc = xp + c * Hq * Wq;
    for (int j = 0; j < T; j += 4) {
      float *vc = V + (j >> 3) * 8 * C + c * 8 + (j & 7);
      const int t = t0 + j, ty = t / tW4, tx = t - ty * tW4;
      if (t >= nt) {
        for (int xi = 0; xi < 16; xi++) wasm_v128_store(vc + xi * S, wasm_f32x4_splat(0.0f));
        continue;
      }
      const float *base = xc + 2 * ty * Wq + 2 * tx;
      v128_t r[4][4];
      for (int i = 0; i < 4; i++) {
        const float *row = base + i * Wq;
        const v128_t a = wasm_v128_load(row), b = wasm_v128_load(row + 4);
        const v128_t a2 = wasm_v128_load(row + 2), b2 = wasm_v128_load(row + 6);
        const v128_t d0 = wasm_i32x4_shuffle(a, b, 0, 2, 4, 6), d1 = wasm_i32x4_shuffle(a, b, 1, 3, 5, 7);
        const v128_t d2 = wasm_i32x4_shuffle(a2, b2, 0, 2, 4, 6), d3 = wasm_i32x4_shuffle(a2, b2, 1, 3, 5, 7);
        r[i][0] = wasm_f32x4_sub(d0, d2);
        r[i][1] = wasm_f32x4_add(d1, d2);
        r[i][2] = wasm_f32x4_sub(d2, d1);
        r[i][3] = wasm_f32x4_sub(d1, d3);
      }
      for (int k = 0; k < 4; k++) {
        wasm_v128_store(vc + (0 * 4 + k) * S, wasm_f32x4_sub(r[0][k], r[2][k]));
        wasm_v128_store(vc + (1 * 4 + k) * S, wasm_f32x4_add(r[1][k], r[2][k]));
        wasm_v128_store(vc + (2 * 4 + k) * S, wasm_f32x4_sub(r[2][k], r[1][k]));
        wasm_v128_store(vc + (3 * 4 + k) * S, wasm_f32x4_sub(r[1][k], r[3][k]));
      }
    }
  }
}

/*
 * M [16][O4][T] (xi stride O4*T) = U_xi V_xi: the batched element-wise GEMM, 4 output channels x 8
 * tiles per register tile (8 accumulators, as gemm.c's micro-kernel), over packed panels.
 */
static void wino_gemm(const float *U, int ustride, const float *V, int C, int T, int O4, float *M) {
  for (int xi = 0; xi < 16; xi++) {
    const float *u = U + xi * ustride, *v = V + xi * (C * T + WINO_SKEW);
    float *m = M + xi * (O4 * T + WINO_SKEW);
    for (int op = 0; op < O4; op += 4) {
      const float *ua = u + op * C;
      for (int tp = 0; tp < T; tp += 8) {
        const float *vb = v + tp * C;
        v128_t acc[4][2];
        for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = wasm_f32x4_splat(0.0f);
        for (int c = 0; c < C; c++) {
          const v128_t b0 = wasm_v128_load(vb + 8 * c), b1 = wasm_v128_load(vb + 8 * c + 4);
          for (int r = 0; r < 4; r++) {
            const v128_t a = wasm_v128_load32_splat(ua + 4 * c + r);
            acc[r][0] = MADD(acc[r][0], a, b0);
            acc[r][1] = MADD(acc[r][1], a, b1);
          }
        }
        for (int r = 0; r < 4; r++) {
          wasm_v128_store(m + (op + r) * T + tp, acc[r][0]);
          wasm_v128_store(m + (op + r) * T + tp + 4, acc[r][1]);
        }
      }
    }
  }
}

/* Y = A^T M A + bias of the tiles t0 .. t0+T (those before nt) into out [O, OH, OW]. */
static void wino_output(const float *M, int O, int O4, int T, const float *bias, int tW4, int nt, int t0, float *out, int OH, int OW) {
  const int S = O4 * T + WINO_SKEW;
  for (int o = 0; o < O; o++) {
    const float *mo = M + o * T;
    const v128_t b = wasm_f32x4_splat(bias ? bias[o] : 0.0f);
    float *yo = out + o * OH * OW;
    for (int j = 0; j < T; j += 4) {
      const int t = t0 + j, ty = t / tW4, tx = t - ty * tW4;
      if (t >= nt) break;
      v128_t s[4][2];
      for (int i = 0; i < 4; i++) {
        const v128_t m0 = wasm_v128_load(mo + (4 * i) * S + j), m1 = wasm_v128_load(mo + (4 * i + 1) * S + j);
        const v128_t m2 = wasm_v128_load(mo + (4 * i + 2) * S + j), m3 = wasm_v128_load(mo + (4 * i + 3) * S + j);
        s[i][0] = wasm_f32x4_add(wasm_f32x4_add(m0, m1), m2);
        s[i][1] = wasm_f32x4_sub(wasm_f32x4_sub(m1, m2), m3);
      }
      const int ox = 2 * tx;
      for (int a = 0; a < 2; a++) {
        const int oy = 2 * ty + a;
        if (oy >= OH) break;
        v128_t y0, y1;
        if (a == 0) {
          y0 = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_add(s[0][0], s[1][0]), s[2][0]), b);
          y1 = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_add(s[0][1], s[1][1]), s[2][1]), b);
        } else {
          y0 = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_sub(s[1][0], s[2][0]), s[3][0]), b);
          y1 = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_sub(s[1][1], s[2][1]), s[3][1]), b);
        }
        const v128_t lo = wasm_i32x4_shuffle(y0, y1, 0, 4, 1, 5), hi = wasm_i32x4_shuffle(y0, y1, 2, 6, 3, 7);
        float *d = yo + oy * OW + ox;
        if (ox + 8 <= OW) {
          wasm_v128_store(d, lo);
          wasm_v128_store(d + 4, hi);
        } else if (ox < OW) {
          float tmp[8] __attribute__((aligned(16)));
          wasm_v128_store(tmp, lo);
          wasm_v128_store(tmp + 4, hi);
          for (int k = 0; k < OW - ox; k++) d[k] = tmp[k];
        }
      }
    }
  }
}

int winograd_conv(const float *x, const float *w, const float *bias, float *out, float *cols, long long colsFloats,
                  int N, int C, int H, int W, int O, int pt, int pl, int OH, int OW) {
  const int tH = (OH + 1) / 2, tW4 = (((OW + 1) / 2) + 3) & ~3, nt = tH * tW4, nt8 = (nt + 7) & ~7;
  const int Hq = 2 * tH + 2, Wq = 2 * tW4 + 4, O4 = (O + 3) & ~3;
  int ustride = 0;
  const float *U = wino_find(w, O, C, &ustride);
  long long avail = colsFloats - (long long)C * Hq * Wq - (U ? 0 : (long long)winograd_weights_floats(O, C));
  long long T = (avail - 32LL * WINO_SKEW) / (16LL * (C + O4));
  if (T > WINO_TILES_MAX) T = WINO_TILES_MAX;
  if (T > nt8) T = nt8;
  T &= ~7LL;
  if (T < 8) return 0;
  float *xp = cols, *V = cols + C * Hq * Wq, *M = V + 16 * (C * T + WINO_SKEW);
  if (!U) {
    float *u = M + 16 * (O4 * T + WINO_SKEW);
    winograd_weights(w, O, C, u);
    U = u, ustride = O4 * C;
  }
  const int tc = (int)T;
  for (int n = 0; n < N; n++) {
    wino_pad(x + n * C * H * W, C, H, W, pt, pl, Hq, Wq, xp);
    float *yn = out + n * O * OH * OW;
    for (int t0 = 0; t0 < nt; t0 += tc) {
      const int Tc = imin(tc, nt8 - t0);
      wino_input(xp, C, Hq, Wq, tW4, nt, t0, Tc, V);
      wino_gemm(U, ustride, V, C, Tc, O4, M);
      wino_output(M, O, O4, Tc, bias, tW4, nt, t0, yn, OH, OW);
    }
  }
  return 1;
}
