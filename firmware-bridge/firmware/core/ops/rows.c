/* ops/rows.c: the inner loops of the convolutions where the port asks for them (FL_FAST_KERNELS):
 * a row of outputs is formed 8 or 4 at a time in registers, each weight read once per block, and
 * every output takes the same terms in the same order as in the portable loops of conv.c and
 * chain.c (channel, then kernel row, then kernel column), so the sums are theirs. */
#include "op.h"

#if FL_FAST_KERNELS
/* a += w * x, rounded as C rounds it (the product, then the sum). On an Arm FPU that is one VMLA,
 * which gcc in ISO C mode (no contraction) would otherwise spell as a VMUL and a VADD. */
#if defined(__ARM_FP) && (__ARM_FP & 4) && defined(__thumb2__)
#define MLA(a, w, x) __asm__("vmla.f32 %0, %1, %2" : "+t"(a) : "t"(w), "t"(x))
#else
#define MLA(a, w, x) ((a) += (w) * (x))
#endif

/* a0..a7 += w * (8 inputs), each accumulator its own term */
#define ROW8(w, b0, b1, b2, b3, b4, b5, b6, b7) do { \
        MLA(a0, w, b0); MLA(a1, w, b1); MLA(a2, w, b2); MLA(a3, w, b3); \
        MLA(a4, w, b4); MLA(a5, w, b5); MLA(a6, w, b6); MLA(a7, w, b7); } while (0)

/* one output: y += the taps of kernel rows ky0..ky1 whose input column is inside */
static void conv_px(const float *xc, uint32_t W, const float *wk, uint32_t ky0, uint32_t ky1, uint32_t KW,
                    int32_t iy0, int32_t dy, int32_t ix0, int32_t dx, float *y) {
    float s = *y;
    uint32_t ky, kx;
    for (ky = ky0; ky < ky1; ky++) {
        const float *xr = xc + (uint32_t)(iy0 + (int32_t)ky * dy) * W, *wr = wk + ky * KW;
        for (kx = 0; kx < KW; kx++) {
            int32_t ix = ix0 + (int32_t)kx * dx;
            if (ix >= 0 && ix < (int32_t)W) MLA(s, wr[kx], xr[ix]);
        }
    }
    *y = s;
}

void fl_conv_rows(const float *xc, uint32_t H, uint32_t W, const float *wk, uint32_t KH, uint32_t KW,
                  const int32_t *st, const int32_t *pd, const int32_t *dl, uint32_t oy0, uint32_t oy1, uint32_t OW, float *y) {
    const int32_t sx = st[1], dx = dl[1], px = pd[1], dy = dl[0];
    uint32_t oy, ox, oxa, oxb;
    int32_t lo, hi;
    /* the interior columns: every tap inside, 0 <= ox*sx - px and ox*sx - px + (KW-1)*dx < W */
    lo = px > 0 ? (px + sx - 1) / sx : 0;
    hi = (int32_t)W - 1 + px - (int32_t)(KW - 1u) * dx;
    hi = hi < 0 ? 0 : hi / sx + 1;
    if (hi > (int32_t)OW) hi = (int32_t)OW;
    if (lo > hi) lo = hi;
    oxa = (uint32_t)lo; oxb = (uint32_t)hi;
    for (oy = oy0; oy < oy1; oy++) {
        float *yr = y + (oy - oy0) * OW;
        int32_t iy0 = (int32_t)oy * st[0] - pd[0];
        uint32_t ky0 = 0, ky1 = KH, ky, kx;
        /* the kernel rows whose input row is inside (a contiguous range) */
        while (ky0 < KH && iy0 + (int32_t)ky0 * dy < 0) ky0++;
        while (ky1 > ky0 && iy0 + (int32_t)(ky1 - 1u) * dy >= (int32_t)H) ky1--;
        if (ky0 >= ky1) continue;
        for (ox = 0; ox < oxa; ox++) conv_px(xc, W, wk, ky0, ky1, KW, iy0, dy, (int32_t)ox * sx - px, dx, yr + ox);
        ox = oxa;
        if (sx == 1 && dx == 1 && (KW == 5u || KW == 3u)) {
            /* the common kernel widths: a kernel row's 8 + KW - 1 inputs loaded once for 8 outputs */
            for (; ox + 8u <= oxb; ox += 8u) {
                float a0 = yr[ox], a1 = yr[ox + 1], a2 = yr[ox + 2], a3 = yr[ox + 3];
                float a4 = yr[ox + 4], a5 = yr[ox + 5], a6 = yr[ox + 6], a7 = yr[ox + 7];
                for (ky = ky0; ky < ky1; ky++) {
                    const float *q = xc + (uint32_t)(iy0 + (int32_t)ky * dy) * W + (ox - (uint32_t)px), *wr = wk + ky * KW;
                    float x0 = q[0], x1 = q[1], x2 = q[2], x3 = q[3], x4 = q[4], x5 = q[5], x6 = q[6], x7 = q[7], x8 = q[8], x9 = q[9];
                    float w0 = wr[0], w1 = wr[1], w2 = wr[2];
                    ROW8(w0, x0, x1, x2, x3, x4, x5, x6, x7);
                    ROW8(w1, x1, x2, x3, x4, x5, x6, x7, x8);
                    ROW8(w2, x2, x3, x4, x5, x6, x7, x8, x9);
                    if (KW == 5u) {
                        float x10 = q[10], x11 = q[11], w3 = wr[3], w4 = wr[4];
                        ROW8(w3, x3, x4, x5, x6, x7, x8, x9, x10);
                        ROW8(w4, x4, x5, x6, x7, x8, x9, x10, x11);
                    }
                }
                yr[ox] = a0; yr[ox + 1] = a1; yr[ox + 2] = a2; yr[ox + 3] = a3;
                yr[ox + 4] = a4; yr[ox + 5] = a5; yr[ox + 6] = a6; yr[ox + 7] = a7;
            }
        }
        if (sx == 1 && dx == 1) {
            for (; ox + 8u <= oxb; ox += 8u) {
                float a0 = yr[ox], a1 = yr[ox + 1], a2 = yr[ox + 2], a3 = yr[ox + 3];
                float a4 = yr[ox + 4], a5 = yr[ox + 5], a6 = yr[ox + 6], a7 = yr[ox + 7];
                for (ky = ky0; ky < ky1; ky++) {
                    const float *q = xc + (uint32_t)(iy0 + (int32_t)ky * dy) * W + (ox - (uint32_t)px), *wr = wk + ky * KW;
                    for (kx = 0; kx < KW; kx++, q++) {
                        float w = wr[kx];
                        MLA(a0, w, q[0]); MLA(a1, w, q[1]); MLA(a2, w, q[2]); MLA(a3, w, q[3]);
                        MLA(a4, w, q[4]); MLA(a5, w, q[5]); MLA(a6, w, q[6]); MLA(a7, w, q[7]);
                    }
                }
                yr[ox] = a0; yr[ox + 1] = a1; yr[ox + 2] = a2; yr[ox + 3] = a3;
                yr[ox + 4] = a4; yr[ox + 5] = a5; yr[ox + 6] = a6; yr[ox + 7] = a7;
            }
        }
        for (; ox + 4u <= oxb; ox += 4u) {
            float a0 = yr[ox], a1 = yr[ox + 1], a2 = yr[ox + 2], a3 = yr[ox + 3];
            for (ky = ky0; ky < ky1; ky++) {
                const float *q = xc + (uint32_t)(iy0 + (int32_t)ky * dy) * W + (uint32_t)((int32_t)ox * sx - px), *wr = wk + ky * KW;
                for (kx = 0; kx < KW; kx++, q += dx) {
                    float w = wr[kx];
                    MLA(a0, w, q[0]); MLA(a1, w, q[sx]); MLA(a2, w, q[2 * sx]); MLA(a3, w, q[3 * sx]);
                }
            }
            yr[ox] = a0; yr[ox + 1] = a1; yr[ox + 2] = a2; yr[ox + 3] = a3;
        }
        for (; ox < OW; ox++) conv_px(xc, W, wk, ky0, ky1, KW, iy0, dy, (int32_t)ox * sx - px, dx, yr + ox);
    }
}

void fl_mac_cols(const float *w, uint32_t K, const float *x, uint32_t xs, uint32_t n, float *y) {
    uint32_t j = 0, k;
    for (; j + 8u <= n; j += 8u) {
        float a0 = y[j], a1 = y[j + 1], a2 = y[j + 2], a3 = y[j + 3], a4 = y[j + 4], a5 = y[j + 5], a6 = y[j + 6], a7 = y[j + 7];
        const float *q = x + j;
        for (k = 0; k < K; k++, q += xs) {
            float v = w[k];
            MLA(a0, v, q[0]); MLA(a1, v, q[1]); MLA(a2, v, q[2]); MLA(a3, v, q[3]);
            MLA(a4, v, q[4]); MLA(a5, v, q[5]); MLA(a6, v, q[6]); MLA(a7, v, q[7]);
        }
        y[j] = a0; y[j + 1] = a1; y[j + 2] = a2; y[j + 3] = a3; y[j + 4] = a4; y[j + 5] = a5; y[j + 6] = a6; y[j + 7] = a7;
    }
    for (; j + 4u <= n; j += 4u) {
        float a0 = y[j], a1 = y[j + 1], a2 = y[j + 2], a3 = y[j + 3];
        const float *q = x + j;
        for (k = 0; k < K; k++, q += xs) {
            float v = w[k];
            MLA(a0, v, q[0]); MLA(a1, v, q[1]); MLA(a2, v, q[2]); MLA(a3, v, q[3]);
        }
        y[j] = a0; y[j + 1] = a1; y[j + 2] = a2; y[j + 3] = a3;
    }
    for (; j < n; j++) {
        float a = y[j];
        const float *q = x + j;
        for (k = 0; k < K; k++, q += xs) MLA(a, w[k], q[0]);
        y[j] = a;
    }
}

#endif
