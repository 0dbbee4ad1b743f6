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
#if FL_INT8_FULL && !FL_Q_STORE_LISTS /* else the port's kernels (FL_Q_STORE_LISTS, core/fl.h) */
#if FL_FAST_KERNELS && defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#include <arm_acle.h>
#define FL_Q_SIMD 1 /* SXTB16 / SSUB16 / SMLAD: four multiply-adds in a few instructions */
#else
#define FL_Q_SIMD 0
#endif

/* Requantisation, TFLite Micro's MultiplyByQuantizedMultiplier, in a few instructions and bit for
 * bit the reference's (runtime/int8full/):
 * - SaturatingRoundingDoublingHighMul(a, m) = trunc((a m + nudge) / 2^31), nudge 2^30 when a m >= 0,
 *   else 1 - 2^30. For a m < 0 the truncation is a ceiling, ceil(v / 2^31) = floor((v + 2^31 - 1) / 2^31),
 *   and v + 2^31 - 1 = a m + 2^30: both signs are floor((a m + 2^30) / 2^31), one 32x32->64 multiply
 *   (SMULL) and an arithmetic shift. Its one saturating case, a = m = INT32_MIN, cannot occur: prepare
 *   takes m in [0, 2^31) (qparams.c), so the result always fits int32.
 * - RoundingDivideByPOT(v, e) (ties away from zero) = (v >> e) + ((v & mask) > (mask >> 1) + (v < 0)),
 *   which is v for e = 0: no branch on the sign of the shift.
 * - the zero point and the clamp: clamp(v, min - zp, max - zp) + zp is clamp(v + zp, min, max)
 *   without overflow (and covers the reference's clamp of v to [-256, 255] first, as |zp| <= 128). */
typedef struct {
    int32_t m;         /* Q31 multiplier */
    uint32_t l, e;     /* left shift, right shift (one of them 0) */
    int32_t mask, half;
} q_rq;

static inline void rq_chan(const fl_qstage *s, uint32_t c, q_rq *r) {
    int32_t sh = s->shift[c];
    r->m = s->mult[c];
    r->l = sh > 0 ? (uint32_t)sh : 0u;
    r->e = sh > 0 ? 0u : (uint32_t)-sh;
    r->mask = (int32_t)(((uint32_t)1 << r->e) - 1u);
    r->half = r->mask >> 1;
}

static inline int8_t rq_apply(uint32_t acc, const q_rq *r, int32_t lo, int32_t hi, int32_t zp) {
    int32_t v = (int32_t)(((int64_t)(int32_t)(acc << r->l) * r->m + ((int64_t)1 << 30)) >> 31);
    v = (v >> r->e) + ((v & r->mask) > r->half - (v >> 31) ? 1 : 0);
    v = v < lo ? lo : v > hi ? hi : v;
    return (int8_t)(v + zp);
}

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
#if FL_Q_SIMD
#define q_sxtb16(x) ((uint32_t)__sxtb16(x))
static inline uint32_t q_sxtb16_r8(uint32_t x) { uint32_t r; __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x)); return r; }
#define q_smlad(a, b, c) ((uint32_t)__smlad((a), (b), (int32_t)(c)))
#else
static inline uint32_t q_sxtb16(uint32_t x) { return ((uint32_t)(int32_t)(int8_t)x & 0xFFFFu) | ((uint32_t)(int32_t)(int8_t)(x >> 16) << 16); }
static inline uint32_t q_sxtb16_r8(uint32_t x) { return q_sxtb16((x >> 8) | (x << 24)); }
static inline uint32_t q_smlad(uint32_t a, uint32_t b, uint32_t c) {
    return c + (uint32_t)((int32_t)(int16_t)a * (int32_t)(int16_t)b) + (uint32_t)((int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b >> 16));
}
#endif
static inline uint32_t q_ld32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* column space outside the arena: natural-order columns (two of K <= 512, or one of K <= 1024),
 * and the packed pairs of a block (6 KiB of RAM in all) */
#define FL_Q_NAT 1024
#define FL_Q_PACK 1024
static int16_t q_nat[FL_Q_NAT];
static uint32_t q_pk[FL_Q_PACK];
/* fl_q_chain sets q_pk_same when a call's columns are those of the call before it (the same band
 * of the same input, the next block of channels); q_gemm then keeps the packed pairs it left in
 * q_pk if they were all of them (q_pk_all: that call's P, packed as one block) */
static int q_pk_same;
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
        if (!(q_pk_same && p == 0 && nb == P / 2 && q_pk_all == P))
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
static void q_dense(const int8_t *x, uint32_t rows, const fl_qstage *s, int8_t *y) {
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
static void q_1x1s(const int8_t *x, uint32_t P, uint32_t xs, const fl_qstage *s, int8_t *y) {
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

static void q_1x1(const int8_t *x, uint32_t P, const fl_qstage *s, int8_t *y) { q_1x1s(x, P, P, s, y); }

/* output rows oy0 .. oy0 + OH - 1 of y[O, ., OW] from x[C, H, W] and w[O, C/G, KH, KW]
 * (cross-correlation), stored as y[O, OH, OW]; padding is real 0 and contributes nothing */
static void q_conv_b(const int8_t *x, uint32_t C, uint32_t H, uint32_t W, const fl_qstage *s, uint32_t G, uint32_t KH, uint32_t KW,
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

static void q_conv(const int8_t *x, uint32_t C, uint32_t H, uint32_t W, const fl_qstage *s, uint32_t G, uint32_t KH, uint32_t KW,
                   const int32_t *st, const int32_t *pd, const int32_t *dl, uint32_t OH, uint32_t OW, int8_t *y) {
    q_conv_b(x, C, H, W, s, G, KH, KW, st, pd, dl, 0, OH, OW, y);
}

static int8_t *qv(uint16_t vi) {
    fl_value *v = &fl_m.values[vi];
    return v->external ? fl_m.qin : (int8_t *)(void *)(fl_arena + v->off);
}

static int8_t *qscratch(const fl_node *n) { return (int8_t *)(void *)(fl_arena + n->scratch_off); }

static int8_t clamp8(int32_t v) { return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v); }

/* sum / count rounded to nearest, ties away from zero */
static int32_t div_round(int32_t sum, int32_t count) {
    int32_t half = count / 2;
    return sum >= 0 ? (sum + half) / count : -((-sum + half) / count);
}

#if FL_FAST_KERNELS
static inline int32_t q_max(int32_t a, int32_t b) { return a > b ? a : b; }

/* a max pool whose every window lies inside the input (no padding reached): no bounds to check */
static void q_maxpool_inside(const int8_t *x, uint32_t NC, uint32_t H, uint32_t W, uint32_t OH, uint32_t OW, uint32_t KH, uint32_t KW,
                             uint32_t sy, uint32_t sx, uint32_t dy, uint32_t dx, uint32_t oy0, uint32_t oy1, uint32_t r0, int8_t *y) {
    uint32_t nc, oy, ox, ky, kx;
    for (nc = 0; nc < NC; nc++)
        for (oy = oy0; oy < oy1; oy++) {
            const int8_t *row = x + nc * H * W + (oy * sy - r0) * W;
            int8_t *yo = y + (nc * OH + oy) * OW;
            if (KH == 2 && KW == 2 && dy == 1 && dx == 1)
                for (ox = 0; ox < OW; ox++, row += sx) *yo++ = (int8_t)q_max(q_max(row[0], row[1]), q_max(row[W], row[W + 1]));
            else
                for (ox = 0; ox < OW; ox++, row += sx) {
                    int32_t r = -128;
                    for (ky = 0; ky < KH; ky++)
                        for (kx = 0; kx < KW; kx++) r = q_max(r, row[ky * dy * W + kx * dx]);
                    *yo++ = (int8_t)r;
                }
        }
}
#endif

/* rows oy0 .. oy1 - 1 of planes first .. first + count - 1 of the pool's output from x holding
 * the input rows r0 .. r0 + hb - 1 of those planes (every row those output rows' windows reach) */
static void q_pool_b(const fl_node *n, const int8_t *x, int32_t zp, int8_t *y, uint32_t first, uint32_t count,
                     uint32_t oy0, uint32_t oy1, uint32_t r0, uint32_t hb) {
    const fl_attrs *a = &n->a;
    uint32_t H = n->d[1], W = n->d[2], OH = n->d[3], OW = n->d[4], nc, oy, ox;
    int32_t KH = a->kernel[0], KW = a->kernel[1];
#if FL_FAST_KERNELS
    if (n->op == OP_MAX_POOL && !a->pads[0] && !a->pads[1] && (int32_t)(OH - 1) * a->strides[0] + (KH - 1) * a->dil[0] < (int32_t)H &&
        (int32_t)(OW - 1) * a->strides[1] + (KW - 1) * a->dil[1] < (int32_t)W) {
        q_maxpool_inside(x, count, hb, W, OH, OW, (uint32_t)KH, (uint32_t)KW, (uint32_t)a->strides[0], (uint32_t)a->strides[1], (uint32_t)a->dil[0], (uint32_t)a->dil[1], oy0, oy1, r0, y + first * OH * OW);
        return;
    }
#endif
    for (nc = first; nc < first + count; nc++) {
        const int8_t *xo = x + (nc - first) * hb * W - r0 * W; /* row iy (r0 <= iy < r0 + hb) at xo + iy W */
        for (oy = oy0; oy < oy1; oy++)
            for (ox = 0; ox < OW; ox++) {
                int32_t r;
                if (n->op == OP_MAX_POOL) {
                    int32_t ky, kx;
                    r = -128;
                    for (ky = 0; ky < KH; ky++) {
                        int32_t iy = (int32_t)oy * a->strides[0] - a->pads[0] + ky * a->dil[0];
                        if (iy < 0 || iy >= (int32_t)H) continue;
                        for (kx = 0; kx < KW; kx++) {
                            int32_t ix = (int32_t)ox * a->strides[1] - a->pads[1] + kx * a->dil[1];
                            if (ix < 0 || ix >= (int32_t)W) continue;
                            if (xo[(uint32_t)iy * W + (uint32_t)ix] > r) r = xo[(uint32_t)iy * W + (uint32_t)ix];
                        }
                    }
                } else {
                    int32_t y0 = (int32_t)oy * a->strides[0] - a->pads[0], x0 = (int32_t)ox * a->strides[1] - a->pads[1];
                    int32_t y1 = y0 + KH < (int32_t)H + a->pads[2] ? y0 + KH : (int32_t)H + a->pads[2];
                    int32_t x1 = x0 + KW < (int32_t)W + a->pads[3] ? x0 + KW : (int32_t)W + a->pads[3];
                    int32_t ys = y0 > 0 ? y0 : 0, ye = y1 < (int32_t)H ? y1 : (int32_t)H;
                    int32_t xs = x0 > 0 ? x0 : 0, xe = x1 < (int32_t)W ? x1 : (int32_t)W, iy, ix, cnt, real, sum = 0;
                    for (iy = ys; iy < ye; iy++) for (ix = xs; ix < xe; ix++) sum += xo[(uint32_t)iy * W + (uint32_t)ix];
                    real = ye > ys && xe > xs ? (ye - ys) * (xe - xs) : 0;
                    cnt = a->count_include_pad ? (y1 - y0) * (x1 - x0) : real;
                    r = cnt > 0 ? clamp8(div_round(sum - zp * real, cnt) + zp) : zp;
                }
                y[(nc * OH + oy) * OW + ox] = (int8_t)r;
            }
    }
}

/* stage k of the node n in blocks of output channels, each with its lists decoded (fl_q_view) */
#define Q_BLOCKS(k) for (c0 = 0; c0 < q->st[k].C && (fl_q_view(n, (k), c0, &v), 1); c0 += v.C)

/* The stages of the parametric node n before stage upto (nst: all, the last one into y); the
 * intermediates in its scratch, as the kernels lay them out. Returns stage upto's input. */
static const int8_t *q_stages(const fl_node *n, const int8_t *x, uint32_t upto, int8_t *y) {
    const fl_qnode *q = fl_qn(n);
    const fl_attrs *a = &n->a;
    int8_t *scr = qscratch(n);
    uint32_t c0, P = n->d[4] * n->d[5];
    fl_qstage v;
    switch (n->op) {
    case OP_DENSE:
        if (upto > 0) Q_BLOCKS(0) q_dense(x, n->d[0], &v, y + c0); /* a block short of C: one row */
        return x;
    case OP_SVD_DENSE:
        if (upto > 0) Q_BLOCKS(0) q_dense(x, n->d[0], &v, scr + c0);
        if (upto > 1) Q_BLOCKS(1) q_dense(scr, n->d[0], &v, y + c0);
        return upto > 0 ? scr : x;
    case OP_CONV2D: {
        const fl_tensor *w = T(n, ROLE_WEIGHT);
        uint32_t G = (uint32_t)a->group, Og = q->st[0].C / G, Cg = n->d[0] / G, HW = n->d[1] * n->d[2];
        if (upto > 0) Q_BLOCKS(0) {
            if (G == 1) q_conv(x, n->d[0], n->d[1], n->d[2], &v, 1, w->dims[2], w->dims[3], a->strides, a->pads, a->dil, n->d[4], n->d[5], y + c0 * P);
            else q_conv(x + (c0 / Og) * Cg * HW, (v.C / Og) * Cg, n->d[1], n->d[2], &v, v.C / Og, w->dims[2], w->dims[3], a->strides, a->pads, a->dil, n->d[4], n->d[5], y + c0 * P);
        }
        return x;
    }
    case OP_SVD_CONV2D: {
        const fl_tensor *vt = T(n, ROLE_V);
        if (upto > 0) Q_BLOCKS(0) q_conv(x, n->d[0], n->d[1], n->d[2], &v, 1, vt->dims[2], vt->dims[3], a->strides, a->pads, a->dil, n->d[4], n->d[5], scr + c0 * P);
        if (upto > 1) Q_BLOCKS(1) q_1x1(scr, P, &v, y + c0 * P);
        return upto > 0 ? scr : x;
    }
    case OP_TUCKER2_CONV2D: {
        const fl_tensor *core = T(n, ROLE_CORE);
        uint32_t HW = n->d[1] * n->d[2];
        int8_t *s2 = scr + n->d[6] * HW;
        if (upto > 0) Q_BLOCKS(0) q_1x1(x, HW, &v, scr + c0 * HW);
        if (upto > 1) Q_BLOCKS(1) q_conv(scr, n->d[6], n->d[1], n->d[2], &v, 1, core->dims[2], core->dims[3], a->strides, a->pads, a->dil, n->d[4], n->d[5], s2 + c0 * P);
        if (upto > 2) Q_BLOCKS(2) q_1x1(s2, P, &v, y + c0 * P);
        return upto > 1 ? s2 : upto > 0 ? scr : x;
    }
    case OP_CP_CONV2D: {
        uint32_t R = n->d[6], H = n->d[1], W = n->d[2], OH = n->d[4], OW = n->d[5], HW = H * W;
        int8_t *sa = scr, *sv = scr + R * (HW > P ? HW : P);
        int32_t vs[2], vp[4], vd[2], hs[2], hp[4], hd[2];
        vs[0] = a->strides[0]; vs[1] = 1; vp[0] = a->pads[0]; vp[1] = 0; vp[2] = a->pads[2]; vp[3] = 0; vd[0] = a->dil[0]; vd[1] = 1;
        hs[0] = 1; hs[1] = a->strides[1]; hp[0] = 0; hp[1] = a->pads[1]; hp[2] = 0; hp[3] = a->pads[3]; hd[0] = 1; hd[1] = a->dil[1];
        if (upto > 0) Q_BLOCKS(0) q_1x1(x, HW, &v, sa + c0 * HW);                                                        /* [R, H, W] */
        if (upto > 1) Q_BLOCKS(1) q_conv(sa + c0 * HW, v.C, H, W, &v, v.C, v.K, 1, vs, vp, vd, OH, W, sv + c0 * OH * W);       /* [R, OH, W] */
        if (upto > 2) Q_BLOCKS(2) q_conv(sv + c0 * OH * W, v.C, OH, W, &v, v.C, 1, v.K, hs, hp, hd, OH, OW, sa + c0 * P);     /* [R, OH, OW] */
        if (upto > 3) Q_BLOCKS(3) q_1x1(sa, P, &v, y + c0 * P);
        return upto > 2 ? sa : upto > 1 ? sv : upto > 0 ? sa : x;
    }
    default: return x;
    }
}

/* y[i] = max(x[i], zp) for i < ne (x and y may be the same bytes) */
static void q_relu(const int8_t *x, int8_t *y, uint32_t ne, int32_t zp) {
    uint32_t i = 0;
#if FL_Q_SIMD
    {   /* four at a time: SSUB8 sets a GE flag per byte where x >= zp, SEL keeps x there, else zp */
        uint32_t zz = (uint32_t)(uint8_t)zp * 0x01010101u;
        for (; i + 4 <= ne; i += 4) {
            uint32_t v = q_ld32(x + i);
            (void)__ssub8((int8x4_t)v, (int8x4_t)zz);
            v = (uint32_t)__sel((uint8x4_t)v, (uint8x4_t)zz);
            memcpy(y + i, &v, 4);
        }
    }
#endif
    for (; i < ne; i++) y[i] = x[i] < zp ? (int8_t)zp : x[i];
}

void fl_q_eval(const fl_node *n) {
    const fl_qnode *q = fl_qn(n);
    const int8_t *x = qv(n->in[0]);
    int8_t *y = qv(n->out);
    uint32_t i, ne = fl_m.values[n->out].numel;
    int32_t zp = q->in_zp;
#if FL_Q_MISC
    if (q->kind != QK_STAGES) { fl_q_misc(n); return; }
#endif
    if (q->nst) { (void)q_stages(n, x, q->nst, y); return; }
    switch (n->op) {
    case OP_RELU: q_relu(x, y, ne, zp); return;
    case OP_MAX_POOL: case OP_AVG_POOL: q_pool_b(n, x, zp, y, 0, n->d[0], 0, n->d[3], 0, n->d[1]); return;
    case OP_GLOBAL_AVG_POOL: {
        uint32_t nc, S = n->d[1];
        for (nc = 0; nc < n->d[0]; nc++) {
            int32_t sum = 0;
            for (i = 0; i < S; i++) sum += x[nc * S + i] - zp;
            y[nc] = clamp8(div_round(sum, (int32_t)S) + zp);
        }
        return;
    }
    default: /* flatten, reshape, identity: the same bytes */
        if (y != x) memmove(y, x, ne);
        return;
    }
}

/* ---- fused conv kind -> [relu] -> max_pool | avg_pool on int8 activations -------------------
 * The consumer pn of the chain nodes[pn->span_lo ..] (plan.c check_chains): the producer's stages
 * before its last run as unfused (intermediates in its scratch); then the last stage streams in row
 * bands through the producer's plane space (OH x OW int8 at plane_off, the size the planner
 * reserves): for each block of channels whose lists are decoded (fl_q_view), a band is the conv
 * output rows that some pool output rows need, for as many of the block's channels as the plane
 * space holds (at least one, since one pool row needs at most OH conv rows). Each band is computed
 * by the same kernel (its im2col columns shared by the band's channels), relu'd and pooled into
 * those pool rows. Integer sums: the same bytes as the unfused nodes; the producer's and the
 * relu's outputs are never stored. Where pool windows overlap vertically (stride < extent), the
 * shared conv rows are computed once per band they fall in. */

/* the conv rows [*r0, *r1) that pool output rows [a, b) read (clipped to the conv output) */
static void q_band_rows(const fl_node *pn, uint32_t a, uint32_t b, uint32_t H, uint32_t *r0, uint32_t *r1) {
    const fl_attrs *pa = &pn->a;
    int32_t lo = (int32_t)a * pa->strides[0] - pa->pads[0], hi = (int32_t)(b - 1u) * pa->strides[0] - pa->pads[0] + (pa->kernel[0] - 1) * pa->dil[0] + 1;
    if (lo < 0) lo = 0;
    if (hi > (int32_t)H) hi = (int32_t)H;
    if (hi < lo) hi = lo;
    *r0 = (uint32_t)lo;
    *r1 = (uint32_t)hi;
}

void fl_q_chain(const fl_node *pn) {
    const fl_node *pc = &fl_m.nodes[pn->span_lo];
    const fl_node *an = pn->span_lo + 1u < (uint32_t)(pn - fl_m.nodes) ? pc + 1 : NULL;
    const fl_qnode *q = fl_qn(pc);
    const fl_attrs *a = &pc->a;
    const int8_t *x = qv(pc->in[0]), *z;
    int8_t *y = qv(pn->out), *plane = qscratch(pc) + q->plane_off;
    uint32_t k = q->nst - 1u, O = q->st[k].C, K = q->st[k].K, OH = pc->d[4], OW = pc->d[5], P = OH * OW, POH = pn->d[3];
    uint32_t c0, o, nb, most, pa, pb, r0, r1, n1, G = pc->op == OP_CONV2D ? (uint32_t)a->group : 1u, Og = O / G;
    int32_t rzp = an ? fl_qn(an)->in_zp : 0, pzp = fl_qn(pn)->in_zp;
    fl_qstage blk, v;
    z = q_stages(pc, x, k, NULL);
    /* the most conv rows one pool row needs: channels per band = P / (that many rows) */
    for (n1 = 0, pa = 0; pa < POH; pa++) { q_band_rows(pn, pa, pa + 1u, OH, &r0, &r1); if (r1 - r0 > n1) n1 = r1 - r0; }
    most = n1 ? OH / n1 : O;
    if (most > 2u) most &= ~1u; /* whole pairs of channels for the kernels */
    for (c0 = 0; c0 < O; c0 += blk.C) {
        fl_q_view(pc, k, c0, &blk);
        for (pa = 0; pa < POH; pa = pb) {
            /* as many pool rows as the bands of `most` channels fit in the plane space (at least one) */
            for (pb = pa + 1u; pb < POH; pb++) {
                q_band_rows(pn, pa, pb + 1u, OH, &r0, &r1);
                if (most * (r1 - r0) * OW > P) break;
            }
            q_band_rows(pn, pa, pb, OH, &r0, &r1);
            for (o = c0; o < c0 + blk.C; o += nb) {
                nb = c0 + blk.C - o;
                if (nb > most) nb = most;
                if (nb > (o / Og + 1u) * Og - o) nb = (o / Og + 1u) * Og - o; /* one group at a time */
                v = blk;
                v.C = nb;
                v.w += (o - c0) * K;
                v.mult += o - c0;
                v.shift += o - c0;
                if (v.bias) v.bias += o - c0;
                if (r1 > r0) {
#if FL_FAST_KERNELS
                    /* the same columns as the channels before in this band (same group of the input) */
                    q_pk_same = o > c0 && (pc->op != OP_CONV2D || o % Og);
#endif
                    if (pc->op == OP_CONV2D) {
                        const fl_tensor *w = T(pc, ROLE_WEIGHT);
                        uint32_t Cg = pc->d[0] / G;
                        q_conv_b(x + (o / Og) * Cg * pc->d[1] * pc->d[2], Cg, pc->d[1], pc->d[2], &v, 1, w->dims[2], w->dims[3], a->strides, a->pads, a->dil, r0, r1 - r0, OW, plane);
                    } else q_1x1s(z + r0 * OW, (r1 - r0) * OW, P, &v, plane);
#if FL_FAST_KERNELS
                    q_pk_same = 0;
#endif
                    if (an) q_relu(plane, plane, nb * (r1 - r0) * OW, rzp);
                }
                q_pool_b(pn, plane, pzp, y, o, nb, pa, pb, r0, r1 - r0);
            }
        }
    }
}

void fl_q_input(const fl_ctx *cx) {
    uint32_t i;
    double sc = fl_m.in_scale;
    int32_t zp = fl_m.in_zp;
    for (i = 0; i < fl_m.in_numel; i++) {
        float xf = cx->u8 ? (float)cx->u8[i] / cx->div : cx->x[i];
        double v = (double)xf / sc;
        int32_t qv8;
        if (v != v) qv8 = zp; /* NaN */
        else if (v >= 256.0) qv8 = 127;
        else if (v <= -256.0) qv8 = -128;
        else qv8 = clamp8((int32_t)round(v) + zp); /* ties away from zero */
        fl_m.qin[i] = (int8_t)qv8;
    }
}

void fl_q_output(void) {
    fl_value *v = &fl_m.values[fl_m.output];
    const int8_t *q = (const int8_t *)(const void *)(fl_arena + v->off);
    float *y = (float *)(void *)(fl_arena + v->off);
    uint32_t i = v->numel;
    /* backwards: y[i] takes bytes 4i..4i+3, past every q[j] still to be read (j < i) */
    while (i--) { int32_t d = (int32_t)q[i] - fl_m.out_zp; y[i] = (float)((double)d * fl_m.out_scale); }
}
#endif
