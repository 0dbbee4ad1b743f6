/* ops/qkernels.c: the int8-full path's kernels, bit for bit runtime/int8full/ (the definition):
 * int8 activations (NCHW), int8 weights (zero point 0), int32 accumulators that wrap like C's
 * two's complement (the reference's `| 0`), TensorFlow Lite Micro's requantisation
 * (MultiplyByQuantizedMultiplier: SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT, in
 * the equivalent form below), the output zero point, the clamp (a folded relu). No float inside a
 * layer: only the input's quantisation and the output's dequantisation use double. The portable
 * loops are the definition; the fast ones (FL_FAST_KERNELS) compute the same int32 sums in another
 * order (blocked products over int16 im2col columns), tested bit for bit on host and Cortex-M4. */
#include <math.h>
#include "op.h"
#include "qkern.h"
#if FL_INT8_FULL && !FL_Q_STORE_LISTS /* else the port's kernels (FL_Q_STORE_LISTS, core/fl.h) */
/* Requantisation, TFLite Micro's MultiplyByQuantizedMultiplier, in a few instructions and bit for
 * bit the reference's (runtime/int8full/):
 * - SaturatingRoundingDoublingHighMul(a, m) = trunc((a m + nudge) / 2^31), nudge 2^30 when a m >= 0,
 *   else 1 - 2^30. For a m < 0 the truncation is a ceiling, ceil(v / 2^31) = floor((v + 2^31 - 1) / 2^31),
 *   and v + 2^31 - 1 = a m + 2^30: both signs are floor((a m + 2^30) / 2^31), one 32x32->64 multiply
 *   (SMULL) and an arithmetic shift. Its one saturating case, a = m = INT32_MIN, cannot occur: prepare
 *   takes m in [0, 2^31) (qparams.c), so the result always fits int32.
 * - RoundingDivideByPOT(v, e), ties away from zero, is floor((v + 2^(e-1) - [v < 0]) / 2^e) for e >= 1,
 *   and nested floors of divisions by powers of two compose: both steps are floor((a m + 2^30 +
 *   2^(30+e) - 2^31 [a < 0]) / 2^(31+e)) ([v < 0] replaced by [a < 0]: where they differ v = 0 and
 *   both give 0), the high word of one 64-bit sum shifted right by e - 1 (checked against the two
 *   steps on 2 x 10^8 random cases, ties included); for e = 0, v as it is.
 * - the zero point and the clamp: clamp(v, min - zp, max - zp) + zp is clamp(v + zp, min, max)
 *   without overflow (and covers the reference's clamp of v to [-256, 255] first, as |zp| <= 128). */
/* requantise accumulator acc of output channel c of stage s to int8 */
static int8_t rq(uint32_t acc, const fl_qstage *s, uint32_t c) {
    q_rq r;
    rq_chan(s, c, &r);
    return rq_apply(acc, &r, s->min - s->out_zp, s->max - s->out_zp, s->out_zp);
}

#if FL_FAST_KERNELS
/* The fast loops (FL_FAST_KERNELS): the same sums in another order, which changes nothing (int32
 * arithmetic wraps, exactly as the portable loops'); on a core with the DSP extension four
 * multiply-adds at a time: (x - zp) and w widened to int16 pairs (SXTB16, SSUB16), SMLAD. */
static inline uint32_t dot_zp(const int8_t *x, const int8_t *w, uint32_t n, int32_t zp, uint32_t acc) {
    uint32_t i = 0;
#if FL_Q_SIMD
    uint32_t zz = ((uint32_t)(uint16_t)(int16_t)zp << 16) | (uint32_t)(uint16_t)(int16_t)zp;
    for (; i + 4 <= n; i += 4) {
        uint32_t xv, wv;
        memcpy(&xv, x + i, 4);
        memcpy(&wv, w + i, 4);
        acc = (uint32_t)__smlad(__ssub16(__sxtb16(xv), zz), __sxtb16(wv), (int32_t)acc);
        acc = (uint32_t)__smlad(__ssub16(__sxtb16(((xv >> 8) | (xv << 24))), zz), __sxtb16(((wv >> 8) | (wv << 24))), (int32_t)acc);
    }
#endif
    for (; i < n; i++) acc += (uint32_t)(((int32_t)x[i] - zp) * (int32_t)w[i]);
    return acc;
}

/* ---- the blocked kernels: im2col into int16, two output channels x two pixels per pass ---- */
/* A pixel's column holds its K = Cg KH KW inputs minus the zero point as int16 (a padded tap 0,
 * which is what the reference adds for it), built once per pixel and used by every output channel.
 * Columns are packed by pairs of pixels a, b as words: per whole group of four k, [a0 a2] [a1 a3]
 * [b0 b2] [b1 b3]; then the K mod 4 remaining values of a, then of b, one per word. A weight word
 * w0 w1 w2 w3, read straight from the model, gives [w0 w2] and [w1 w3] by SXTB16 and SXTB16 of it
 * rotated by 8: two SMLAD per four weights, channel and pixel, the weights as the file stores them.
 * A block of pixel pairs is packed, then every pair of channels runs over it (the requantisation
 * constants of the two channels taken once per block). A last odd pixel, a single row (dense) or a
 * K too long for two columns runs one column at a time. Without the DSP extension (the host's fast
 * build) the same instructions are written in C, so the layout is tested there too. */

/* column space outside the arena: natural-order columns (two of K <= 512, or one of K <= 1024),
 * and the packed pairs of a block (6 KiB of RAM in all) */
#define FL_Q_PACK 1024
int16_t q_nat[FL_Q_NAT];
static uint32_t q_pk[FL_Q_PACK];
/* fl_q_chain sets fl_q_pk_same when a call's columns are those of the call before it (the same band
 * of the same input, the next block of channels); q_gemm then keeps the packed pairs it left in
 * q_pk if they were all of them (q_pk_all: that call's P, packed as one block) */
int fl_q_pk_same;
static uint32_t q_pk_all;

/* where a stage's columns come from */
typedef struct {
    const int8_t *x;
    int32_t zp;
    uint8_t kind;                   /* QS_ROWS, QS_1X1, QS_CONV */
    uint32_t P;                     /* QS_1X1: pixels (the stride between channels) */
    uint32_t C, H, W, KH, KW, OW;   /* QS_CONV (one group) */
    uint32_t p0;                    /* QS_CONV: the first pixel's index in the output plane (a band of rows) */
    const int32_t *st, *pd, *dl;
} q_src;
enum { QS_ROWS, QS_1X1, QS_CONV };

/* the column of pixel p (row p for QS_ROWS) into col[0..K), in order */
static void q_fill(const q_src *q, uint32_t p, uint32_t K, int16_t *col) {
    const int32_t zp = q->zp;
    uint32_t k;
    if (q->kind == QS_ROWS) {
        const int8_t *xr = q->x + p * K;
        for (k = 0; k < K; k++) col[k] = (int16_t)(xr[k] - zp);
    } else if (q->kind == QS_1X1) {
        const int8_t *xp = q->x + p;
        for (k = 0; k < K; k++, xp += q->P) col[k] = (int16_t)(*xp - zp);
    } else {
        uint32_t oy = (p + q->p0) / q->OW, ox = (p + q->p0) - oy * q->OW, c, ky, kx, HW = q->H * q->W;
        int32_t y0 = (int32_t)oy * q->st[0] - q->pd[0], x0 = (int32_t)ox * q->st[1] - q->pd[1], W = (int32_t)q->W, dx = q->dl[1];
        int inside = x0 >= 0 && x0 + ((int32_t)q->KW - 1) * dx < W;
        int16_t *o = col;
        const uint32_t C = q->C, KH = q->KH, KW = q->KW, Wu = q->W;
        const int32_t dy = q->dl[0];
        if (inside && dx == 1 && y0 >= 0 && y0 + ((int32_t)KH - 1) * dy < (int32_t)q->H) {
            /* the whole window inside the input (the common case): rows copied without checks */
            const int8_t *xc = q->x + (uint32_t)y0 * Wu + (uint32_t)x0;
            const uint32_t step = (uint32_t)dy * Wu;
            for (c = 0; c < C; c++, xc += HW) {
                const int8_t *xr = xc;
                if (KW == 5) /* the common kernel widths unrolled */
                    for (ky = 0; ky < KH; ky++, xr += step, o += 5) {
                        o[0] = (int16_t)(xr[0] - zp); o[1] = (int16_t)(xr[1] - zp); o[2] = (int16_t)(xr[2] - zp);
                        o[3] = (int16_t)(xr[3] - zp); o[4] = (int16_t)(xr[4] - zp);
                    }
                else if (KW == 3)
                    for (ky = 0; ky < KH; ky++, xr += step, o += 3) {
                        o[0] = (int16_t)(xr[0] - zp); o[1] = (int16_t)(xr[1] - zp); o[2] = (int16_t)(xr[2] - zp);
                    }
                else
                    for (ky = 0; ky < KH; ky++, xr += step)
                        for (kx = 0; kx < KW; kx++) *o++ = (int16_t)(xr[kx] - zp);
            }
        } else
        for (c = 0; c < q->C; c++) {
            const int8_t *xc = q->x + c * HW;
            for (ky = 0; ky < q->KH; ky++) {
                int32_t iy = y0 + (int32_t)ky * q->dl[0];
                if (iy < 0 || iy >= (int32_t)q->H) {
                    for (kx = 0; kx < q->KW; kx++) *o++ = 0;
                    continue;
                }
                {
                    const int8_t *xr = xc + (uint32_t)iy * q->W;
                    if (inside) {
                        const int8_t *xi = xr + x0;
                        if (dx == 1) for (kx = 0; kx < q->KW; kx++) *o++ = (int16_t)(xi[kx] - zp);
                        else for (kx = 0; kx < q->KW; kx++) *o++ = (int16_t)(xi[(int32_t)kx * dx] - zp);
                    } else {
                        for (kx = 0; kx < q->KW; kx++) {
                            int32_t ix = x0 + (int32_t)kx * dx;
                            *o++ = (int16_t)(ix < 0 || ix >= W ? 0 : xr[ix] - zp);
                        }
                    }
                }
            }
        }
    }
}

static inline uint32_t q_pair(int16_t lo, int16_t hi) { return (uint32_t)(uint16_t)lo | ((uint32_t)(uint16_t)hi << 16); }

/* columns a, b (in order) packed at o: K + K mod 4 words */
static void q_pack2(const int16_t *a, const int16_t *b, uint32_t K, uint32_t *o) {
    uint32_t k;
    for (k = 0; k + 4 <= K; k += 4, o += 4) {
        o[0] = q_pair(a[k], a[k + 2]); o[1] = q_pair(a[k + 1], a[k + 3]);
        o[2] = q_pair(b[k], b[k + 2]); o[3] = q_pair(b[k + 1], b[k + 3]);
    }
    for (; k < K; k++) { o[0] = (uint32_t)(int32_t)a[k]; o[K & 3u] = (uint32_t)(int32_t)b[k]; o++; }
}

/* channels w0, w1 over a packed pair x: a[0] = w0.xa, a[1] = w0.xb, a[2] = w1.xa, a[3] = w1.xb */
static void q_mm22(const int8_t *w0, const int8_t *w1, const uint32_t *x, uint32_t K, uint32_t *a) {
    uint32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], n, r = K & 3u;
#if FL_Q_SIMD
    /* the loop in assembly: 18 instructions for 16 multiply-adds (GCC's own allocation spilled) */
    if (K >= 4) {
        const int8_t *end = w0 + (K - r);
        uint32_t xe, xo, ye, yo, ue, u;
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[xe], %[xo], [%[x]], #8\n\t"
            "ldr %[u], [%[w0]], #4\n\t"
            "sxtb16 %[ue], %[u]\n\t"
            "sxtb16 %[u], %[u], ror #8\n\t"
            "smlad %[a0], %[xe], %[ue], %[a0]\n\t"
            "smlad %[a0], %[xo], %[u], %[a0]\n\t"
            "ldrd %[ye], %[yo], [%[x]], #8\n\t"
            "smlad %[a1], %[ye], %[ue], %[a1]\n\t"
            "smlad %[a1], %[yo], %[u], %[a1]\n\t"
            "ldr %[u], [%[w1]], #4\n\t"
            "sxtb16 %[ue], %[u]\n\t"
            "sxtb16 %[u], %[u], ror #8\n\t"
            "smlad %[a2], %[xe], %[ue], %[a2]\n\t"
            "smlad %[a2], %[xo], %[u], %[a2]\n\t"
            "smlad %[a3], %[ye], %[ue], %[a3]\n\t"
            "smlad %[a3], %[yo], %[u], %[a3]\n\t"
            "cmp %[w0], %[end]\n\t"
            "bne 1b\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w0] "+r"(w0), [w1] "+r"(w1), [x] "+r"(x),
              [xe] "=&r"(xe), [xo] "=&r"(xo), [ye] "=&r"(ye), [yo] "=&r"(yo), [ue] "=&r"(ue), [u] "=&r"(u)
            : [end] "r"(end)
            : "cc", "memory");
    }
#else
    for (n = K >> 2; n; n--) {
        uint32_t xe = x[0], xo = x[1], ye = x[2], yo = x[3], u, ue, uo;
        u = q_ld32(w0); w0 += 4;
        ue = q_sxtb16(u); uo = q_sxtb16_r8(u);
        a0 = q_smlad(xe, ue, a0); a0 = q_smlad(xo, uo, a0);
        a1 = q_smlad(ye, ue, a1); a1 = q_smlad(yo, uo, a1);
        u = q_ld32(w1); w1 += 4;
        ue = q_sxtb16(u); uo = q_sxtb16_r8(u);
        a2 = q_smlad(xe, ue, a2); a2 = q_smlad(xo, uo, a2);
        a3 = q_smlad(ye, ue, a3); a3 = q_smlad(yo, uo, a3);
        x += 4;
    }
#endif
    for (n = 0; n < r; n++) {
        int32_t p = w0[n], q = w1[n], xa = (int32_t)x[n], xb = (int32_t)x[r + n];
        a0 += (uint32_t)(xa * p); a1 += (uint32_t)(xb * p); a2 += (uint32_t)(xa * q); a3 += (uint32_t)(xb * q);
    }
    a[0] = a0; a[1] = a1; a[2] = a2; a[3] = a3;
}

/* one channel w0 over a packed pair x: a[0] = w0.xa, a[1] = w0.xb (an odd last channel, a one-channel view) */
static void q_mm12(const int8_t *w0, const uint32_t *x, uint32_t K, uint32_t *a) {
    uint32_t a0 = a[0], a1 = a[1], n, r = K & 3u;
    for (n = K >> 2; n; n--) {
        uint32_t u = q_ld32(w0), ue = q_sxtb16(u), uo = q_sxtb16_r8(u);
        a0 = q_smlad(x[0], ue, a0); a0 = q_smlad(x[1], uo, a0);
        a1 = q_smlad(x[2], ue, a1); a1 = q_smlad(x[3], uo, a1);
        w0 += 4; x += 4;
    }
    for (n = 0; n < r; n++) {
        int32_t p = w0[n];
        a0 += (uint32_t)((int32_t)x[n] * p); a1 += (uint32_t)((int32_t)x[r + n] * p);
    }
    a[0] = a0; a[1] = a1;
}

/* one column, k0 k2 k1 k3 in each whole group of four: a[0] = w0.xa, a[1] = w1.xa */
static void q_mm21(const int8_t *w0, const int8_t *w1, const int16_t *xa, uint32_t K, uint32_t *a) {
    uint32_t a0 = a[0], a1 = a[1], n;
    for (n = K >> 2; n; n--) {
        uint32_t u = q_ld32(w0), v = q_ld32(w1), xe = q_ld32(xa), xo = q_ld32(xa + 2);
        a0 = q_smlad(xe, q_sxtb16(u), a0); a0 = q_smlad(xo, q_sxtb16_r8(u), a0);
        a1 = q_smlad(xe, q_sxtb16(v), a1); a1 = q_smlad(xo, q_sxtb16_r8(v), a1);
        w0 += 4; w1 += 4; xa += 4;
    }
    for (n = K & 3u; n; n--) {
        int32_t x = *xa++;
        a0 += (uint32_t)(x * *w0++); a1 += (uint32_t)(x * *w1++);
    }
    a[0] = a0; a[1] = a1;
}

/* y[c yc + p yp] = rq(bias[c0 + c] + w[c] . column(p)) for channels c < C (their weights from w,
 * K each) and pixels p < P; 0, or -1 when K is too long for the column space */
static int q_gemm(const q_src *q, uint32_t P, const fl_qstage *s, uint32_t c0, uint32_t C, const int8_t *w, int8_t *y, uint32_t yc, uint32_t yp) {
    const uint32_t K = s->K, S = K + (K & 3u); /* words of a packed pair */
    const int32_t zp = s->out_zp, lo = s->min - zp, hi = s->max - zp;
    const int32_t *bias = s->bias;
    uint32_t p = 0, c, j, k, pairs = 0;
    q_rq r0, r1;
    if (K > FL_Q_NAT) return -1;
    if (2u * K <= FL_Q_NAT && P >= 2) {
        pairs = FL_Q_PACK / S;
        if (pairs > P / 2) pairs = P / 2;
    }
    /* blocks of pixel pairs */
    while (pairs && p + 2 <= P) {
        uint32_t nb = (P - p) / 2 < pairs ? (P - p) / 2 : pairs;
        if (!(fl_q_pk_same && p == 0 && nb == P / 2 && q_pk_all == P))
            for (j = 0; j < nb; j++) {
                q_fill(q, p + 2 * j, K, q_nat);
                q_fill(q, p + 2 * j + 1, K, q_nat + K);
                q_pack2(q_nat, q_nat + K, K, q_pk + j * S);
            }
        q_pk_all = p == 0 && nb == P / 2 ? P : 0;
        for (c = 0; c < C; c += 2) {
            uint32_t c1 = c + 1 < C ? c + 1 : c, b0 = bias ? (uint32_t)bias[c0 + c] : 0u, b1 = bias ? (uint32_t)bias[c0 + c1] : 0u;
            const int8_t *w0 = w + c * K, *w1 = w + c1 * K;
            int8_t *y0 = y + c * yc + p * yp, *y1 = y + c1 * yc + p * yp;
            rq_chan(s, c0 + c, &r0);
            rq_chan(s, c0 + c1, &r1);
            for (j = 0; j < nb; j++) {
                uint32_t a[4];
                a[0] = a[1] = b0; a[2] = a[3] = b1;
                if (c1 != c) q_mm22(w0, w1, q_pk + j * S, K, a);
                else q_mm12(w0, q_pk + j * S, K, a);
                y0[0] = rq_apply(a[0], &r0, lo, hi, zp);
                y0[yp] = rq_apply(a[1], &r0, lo, hi, zp);
                if (c1 != c) {
                    y1[0] = rq_apply(a[2], &r1, lo, hi, zp);
                    y1[yp] = rq_apply(a[3], &r1, lo, hi, zp);
                }
                y0 += 2 * yp; y1 += 2 * yp;
            }
        }
        p += 2 * nb;
    }
    /* the rest one column at a time */
    for (; p < P; p++) {
        q_fill(q, p, K, q_nat);
        for (k = 0; k + 4 <= K; k += 4) { int16_t t = q_nat[k + 1]; q_nat[k + 1] = q_nat[k + 2]; q_nat[k + 2] = t; }
        for (c = 0; c < C; c += 2) {
            uint32_t c1 = c + 1 < C ? c + 1 : c, a[2];
            a[0] = bias ? (uint32_t)bias[c0 + c] : 0u;
            a[1] = bias ? (uint32_t)bias[c0 + c1] : 0u;
            rq_chan(s, c0 + c, &r0);
            rq_chan(s, c0 + c1, &r1);
            q_mm21(w + c * K, w + c1 * K, q_nat, K, a);
            y[c * yc + p * yp] = rq_apply(a[0], &r0, lo, hi, zp);
            if (c1 != c) y[c1 * yc + p * yp] = rq_apply(a[1], &r1, lo, hi, zp);
        }
    }
    return 0;
}

/* a 1x1 conv, weights stationary: four pixels in registers, zp * sum(w) taken once per channel */
static void q_1x1_fast(const int8_t *x, uint32_t P, uint32_t xs, const fl_qstage *s, int8_t *y) {
    uint32_t c, k, p, K = s->K;
    for (c = 0; c < s->C; c++) {
        const int8_t *wc = s->w + c * K;
        uint32_t b = s->bias ? (uint32_t)s->bias[c] : 0u, ws = 0;
        for (k = 0; k < K; k++) ws += (uint32_t)(int32_t)wc[k];
        b -= ws * (uint32_t)s->in_zp;
        for (p = 0; p + 4 <= P; p += 4) {
            uint32_t a0 = b, a1 = b, a2 = b, a3 = b;
            const int8_t *xp = x + p;
            for (k = 0; k < K; k++, xp += xs) {
                int32_t wv = wc[k];
                a0 += (uint32_t)(xp[0] * wv); a1 += (uint32_t)(xp[1] * wv);
                a2 += (uint32_t)(xp[2] * wv); a3 += (uint32_t)(xp[3] * wv);
            }
            y[c * P + p] = rq(a0, s, c); y[c * P + p + 1] = rq(a1, s, c);
            y[c * P + p + 2] = rq(a2, s, c); y[c * P + p + 3] = rq(a3, s, c);
        }
        for (; p < P; p++) {
            uint32_t a = b;
            for (k = 0; k < K; k++) a += (uint32_t)(x[k * xs + p] * (int32_t)wc[k]);
            y[c * P + p] = rq(a, s, c);
        }
    }
}

/* a conv whose kernel rows are contiguous in the input (horizontal dilation 1): each in-range
 * row of taps one dot product */
static void q_conv_rows(const int8_t *x, uint32_t C, uint32_t H, uint32_t W, const fl_qstage *s, uint32_t G, uint32_t KH, uint32_t KW,
                        const int32_t *st, const int32_t *pd, const int32_t *dl, uint32_t oy0, uint32_t OH, uint32_t OW, int8_t *y) {
    uint32_t O = s->C, Og = O / G, Cg = C / G, o, c, oy, ox, ky;
    int32_t zp = s->in_zp;
    for (o = 0; o < O; o++) {
        const int8_t *wo = s->w + o * Cg * KH * KW;
        const int8_t *xg = x + (o / Og) * Cg * H * W;
        uint32_t b = s->bias ? (uint32_t)s->bias[o] : 0u;
        for (oy = 0; oy < OH; oy++)
            for (ox = 0; ox < OW; ox++) {
                uint32_t acc = b;
                int32_t x0 = (int32_t)ox * st[1] - pd[1];
                int32_t k0 = x0 < 0 ? -x0 : 0, k1 = x0 + (int32_t)KW > (int32_t)W ? (int32_t)W - x0 : (int32_t)KW;
                if (k1 > k0)
                    for (c = 0; c < Cg; c++) {
                        const int8_t *xc = xg + c * H * W, *wc = wo + c * KH * KW;
                        for (ky = 0; ky < KH; ky++) {
                            int32_t iy = (int32_t)(oy0 + oy) * st[0] - pd[0] + (int32_t)ky * dl[0];
                            if (iy < 0 || iy >= (int32_t)H) continue;
                            acc = dot_zp(xc + (uint32_t)iy * W + (uint32_t)(x0 + k0), wc + ky * KW + (uint32_t)k0, (uint32_t)(k1 - k0), zp, acc);
                        }
                    }
                y[(o * OH + oy) * OW + ox] = rq(acc, s, o);
            }
    }
}
#endif

/* y[r, C] = rq(bias + sum_k (x[r, k] - zp) w[c, k]) */
void fl_q_dense(const int8_t *x, uint32_t rows, const fl_qstage *s, int8_t *y) {
    uint32_t r, c, k, K = s->K;
    int32_t zp = s->in_zp;
#if FL_FAST_KERNELS
    q_src q;
    q.x = x; q.zp = zp; q.kind = QS_ROWS;
    if (!q_gemm(&q, rows, s, 0, s->C, s->w, y, 1, s->C)) return;
#endif
    for (r = 0; r < rows; r++) {
        const int8_t *xr = x + r * K;
        for (c = 0; c < s->C; c++) {
            const int8_t *wc = s->w + c * K;
            uint32_t acc = s->bias ? (uint32_t)s->bias[c] : 0u;
#if FL_FAST_KERNELS
            acc = dot_zp(xr, wc, K, zp, acc);
            (void)k;
#else
            for (k = 0; k < K; k++) acc += (uint32_t)(((int32_t)xr[k] - zp) * (int32_t)wc[k]);
#endif
            y[r * s->C + c] = rq(acc, s, c);
        }
    }
}

/* y[C, P] = rq(bias + sum_k (x[k xs + p] - zp) w[c, k]): a 1x1 conv over P pixels whose input
 * channels lie xs apart (xs = P, or a band of rows of a larger plane) */
void fl_q_1x1s(const int8_t *x, uint32_t P, uint32_t xs, const fl_qstage *s, int8_t *y) {
    uint32_t c, k, p, K = s->K;
    int32_t zp = s->in_zp;
#if FL_FAST_KERNELS
    q_src q;
    q.x = x; q.zp = zp; q.kind = QS_1X1; q.P = xs;
    if (!q_gemm(&q, P, s, 0, s->C, s->w, y, P, 1)) return;
    if (P >= 4) { q_1x1_fast(x, P, xs, s, y); return; }
#endif
    for (c = 0; c < s->C; c++) {
        const int8_t *wc = s->w + c * K;
        uint32_t b = s->bias ? (uint32_t)s->bias[c] : 0u;
        for (p = 0; p < P; p++) {
            uint32_t acc = b;
            for (k = 0; k < K; k++) acc += (uint32_t)(((int32_t)x[k * xs + p] - zp) * (int32_t)wc[k]);
            y[c * P + p] = rq(acc, s, c);
        }
    }
}

void fl_q_1x1(const int8_t *x, uint32_t P, const fl_qstage *s, int8_t *y) { fl_q_1x1s(x, P, P, s, y); }

/* output rows oy0 .. oy0 + OH - 1 of y[O, ., OW] from x[C, H, W] and w[O, C/G, KH, KW]
 * (cross-correlation), stored as y[O, OH, OW]; padding is real 0 and contributes nothing */
void fl_q_conv_b(const int8_t *x, uint32_t C, uint32_t H, uint32_t W, const fl_qstage *s, uint32_t G, uint32_t KH, uint32_t KW,
                     const int32_t *st, const int32_t *pd, const int32_t *dl, uint32_t oy0, uint32_t OH, uint32_t OW, int8_t *y) {
    uint32_t O = s->C, Og = O / G, Cg = C / G, o, c, oy, ox, ky, kx;
    int32_t zp = s->in_zp;
#if FL_FAST_KERNELS
    if (s->K <= FL_Q_NAT) {
        uint32_t g;
        q_src q;
        q.zp = zp; q.kind = QS_CONV; q.C = Cg; q.H = H; q.W = W; q.KH = KH; q.KW = KW; q.OW = OW; q.st = st; q.pd = pd; q.dl = dl; q.p0 = oy0 * OW;
        for (g = 0; g < G; g++) {
            q.x = x + g * Cg * H * W;
            q_gemm(&q, OH * OW, s, g * Og, Og, s->w + g * Og * s->K, y + g * Og * OH * OW, OH * OW, 1);
        }
        return;
    }
    if (dl[1] == 1 && KW > 1) { q_conv_rows(x, C, H, W, s, G, KH, KW, st, pd, dl, oy0, OH, OW, y); return; }
#endif
    for (o = 0; o < O; o++) {
        const int8_t *wo = s->w + o * Cg * KH * KW;
        const int8_t *xg = x + (o / Og) * Cg * H * W;
        uint32_t b = s->bias ? (uint32_t)s->bias[o] : 0u;
        for (oy = 0; oy < OH; oy++)
            for (ox = 0; ox < OW; ox++) {
                uint32_t acc = b;
                for (c = 0; c < Cg; c++) {
                    const int8_t *xc = xg + c * H * W, *wc = wo + c * KH * KW;
                    for (ky = 0; ky < KH; ky++) {
                        int32_t iy = (int32_t)(oy0 + oy) * st[0] - pd[0] + (int32_t)ky * dl[0];
                        if (iy < 0 || iy >= (int32_t)H) continue;
                        for (kx = 0; kx < KW; kx++) {
                            int32_t ix = (int32_t)ox * st[1] - pd[1] + (int32_t)kx * dl[1];
                            if (ix < 0 || ix >= (int32_t)W) continue;
                            acc += (uint32_t)(((int32_t)xc[(uint32_t)iy * W + (uint32_t)ix] - zp) * (int32_t)wc[ky * KW + kx]);
                        }
                    }
                }
                y[(o * OH + oy) * OW + ox] = rq(acc, s, o);
            }
    }
}

void fl_q_conv(const int8_t *x, uint32_t C, uint32_t H, uint32_t W, const fl_qstage *s, uint32_t G, uint32_t KH, uint32_t KW,
                   const int32_t *st, const int32_t *pd, const int32_t *dl, uint32_t OH, uint32_t OW, int8_t *y) {
    fl_q_conv_b(x, C, H, W, s, G, KH, KW, st, pd, dl, 0, OH, OW, y);
}
#endif
