/* ops/qdense.c: the int8-full path's dense stage over one row (dense, svd_dense at batch 1) in the
 * fast build. Per output channel such a stage has few multiply-adds (an svd_dense's second stage
 * K = its rank, 10 to 16 here), so what a channel costs besides them decides its speed: here the
 * channel's multiplier, shift and bias are read from the store as the loop reaches them (no block
 * decoded into scratch first, fl_q_view), the input row is made an int16 column (x - zp, in the
 * k0 k2 k1 k3 order of each whole group of four) once, and each pair of channels runs two SMLAD
 * per four weights each over it. The same int32 sums, wrapping, as fl_q_dense's portable loop
 * (qkernels.c, the definition), requantised by the same code. */
#include "op.h"
#include "qkern.h"
#if FL_INT8_FULL && !FL_Q_STORE_LISTS
/* the portable loop, the definition (and the fast build's where K exceeds its column space) */
static void d_plain(const int8_t *x, const fl_qst *s, int8_t *y) {
    const uint8_t *mp = fl_m.mp;
    const int32_t izp = s->in_zp, zp = s->out_zp;
    uint32_t ma = s->mult_at, sa = s->shift_at, ba = s->bias_at, c, k, K = s->K;
    for (c = 0; c < s->C; c++) {
        const int8_t *wc = s->w + c * K;
        uint32_t acc = ba ? (uint32_t)q_par(mp, &ba) : 0u;
        int32_t sh;
        q_rq r;
        for (k = 0; k < K; k++) acc += (uint32_t)(((int32_t)x[k] - izp) * (int32_t)wc[k]);
        r.m = q_par(mp, &ma);
        sh = q_par(mp, &sa);
        r.l = sh > 0 ? (uint32_t)sh : 0u;
        r.e = sh > 0 ? 0u : (uint32_t)-sh;
        r.ce = r.e ? ((int64_t)1 << 30) + ((int64_t)1 << (30 + r.e)) : 0;
        y[c] = rq_apply(acc, &r, s->min - zp, s->max - zp, zp);
    }
}

#if !FL_FAST_KERNELS
void fl_q_dense1(const int8_t *x, const fl_qst *s, int8_t *y) { d_plain(x, s, y); }
#else

/* *a0 += w0 . col, *a1 += w1 . col over K (col as above) */
static inline void d_dot2(const int8_t *w0, const int8_t *w1, const int16_t *col, uint32_t K, uint32_t *a0p, uint32_t *a1p) {
    uint32_t a0 = *a0p, a1 = *a1p, n;
    for (n = K >> 2; n; n--) {
        uint32_t u = q_ld32(w0), v = q_ld32(w1), xe = q_ld32(col), xo = q_ld32(col + 2);
        a0 = q_smlad(xe, q_sxtb16(u), a0); a0 = q_smlad(xo, q_sxtb16_r8(u), a0);
        a1 = q_smlad(xe, q_sxtb16(v), a1); a1 = q_smlad(xo, q_sxtb16_r8(v), a1);
        w0 += 4; w1 += 4; col += 4;
    }
    for (n = K & 3u; n; n--) {
        int32_t x = *col++;
        a0 += (uint32_t)(x * *w0++); a1 += (uint32_t)(x * *w1++);
    }
    *a0p = a0; *a1p = a1;
}

/* a big-endian word at p */
static inline uint32_t d_be32(const uint8_t *p) {
#if defined(__ARM_FEATURE_UNALIGNED) && defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t u;
    memcpy(&u, p, 4);
    return __builtin_bswap32(u);
#else
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
#endif
}

/* where a stage's lists are read: store offsets, or with QF_M32 / QF_S8 (qparams.c) fixed strides */
typedef struct { const uint8_t *mp; uint32_t ma, sa, ba; uint8_t form; } d_lists;

/* the next channel's multiplier and shift, then acc requantised: rq_apply's sum (qkernels.c) for a
 * right shift e >= 2 as a 64-bit multiply-add from 2^30 - 2^31 [acc < 0], and 2^(30+e) (a multiple
 * of 2^32) added to the high word, then that word shifted right by e - 1 */
static inline int8_t d_rq(uint32_t acc, d_lists *L, int fixed, int32_t lo, int32_t hi, int32_t zp) {
    int32_t m, sh, v;
    if (fixed) { m = (int32_t)d_be32(L->mp + L->ma + 1); L->ma += 5; sh = (int8_t)L->mp[L->sa++]; }
    else { m = q_par32(L->mp, &L->ma); sh = q_par(L->mp, &L->sa); }
    if (sh <= -2) {
        int64_t t = (int64_t)(int32_t)acc * m + ((int32_t)acc < 0 ? -((int64_t)1 << 30) : ((int64_t)1 << 30));
        v = ((int32_t)(t >> 32) + (int32_t)(1u << (uint32_t)(-sh - 2))) >> (uint32_t)(-sh - 1);
        v = v < lo ? lo : v > hi ? hi : v;
        return (int8_t)(v + zp);
    } else {
        q_rq r;
        r.m = m;
        r.l = sh > 0 ? (uint32_t)sh : 0u;
        r.e = sh > 0 ? 0u : (uint32_t)-sh;
        r.ce = r.e ? ((int64_t)1 << 30) + ((int64_t)1 << (30 + r.e)) : 0;
        return rq_apply(acc, &r, lo, hi, zp);
    }
}

/* channels c0 .. C - 1 of s over the column (lists from L, in channel order) into y[c] */
static inline void d_channels(const fl_qst *s, const int16_t *col, d_lists *L, int fixed, int8_t *y) {
    const uint32_t K = s->K, C = s->C;
    const int32_t zp = s->out_zp, lo = s->min - zp, hi = s->max - zp;
    const int8_t *w = s->w;
    uint32_t c;
    for (c = 0; c + 2 <= C; c += 2, w += 2 * K) {
        uint32_t a0 = L->ba ? (uint32_t)q_par(L->mp, &L->ba) : 0u, a1 = L->ba ? (uint32_t)q_par(L->mp, &L->ba) : 0u;
        d_dot2(w, w + K, col, K, &a0, &a1);
        y[c] = d_rq(a0, L, fixed, lo, hi, zp);
        y[c + 1] = d_rq(a1, L, fixed, lo, hi, zp);
    }
    if (c < C) { /* an odd last channel: its row twice */
        uint32_t a0 = L->ba ? (uint32_t)q_par(L->mp, &L->ba) : 0u, a1 = 0;
        d_dot2(w, w, col, K, &a0, &a1);
        y[c] = d_rq(a0, L, fixed, lo, hi, zp);
    }
}

/* y[c] = rq(bias[c] + sum_k (x[k] - zp) w[c, k]) for c < C; K <= FL_Q_NAT */
void fl_q_dense1(const int8_t *x, const fl_qst *s, int8_t *y) {
    const uint32_t K = s->K;
    const int32_t izp = s->in_zp;
    uint32_t k = 0;
    int16_t *col = q_nat;
    d_lists L;
    if (K > FL_Q_NAT) { d_plain(x, s, y); return; }
#if FL_Q_SIMD
    {   /* four inputs a word: SXTB16 gives x0 x2 and (rotated) x1 x3, SSUB16 the zero point off */
        uint32_t zz = ((uint32_t)(uint16_t)(int16_t)izp << 16) | (uint32_t)(uint16_t)(int16_t)izp;
        for (; k + 4 <= K; k += 4) {
            uint32_t v = q_ld32(x + k), e = (uint32_t)__ssub16(__sxtb16(v), zz), o = (uint32_t)__ssub16(q_sxtb16_r8(v), zz);
            memcpy(col + k, &e, 4);
            memcpy(col + k + 2, &o, 4);
        }
    }
#else
    for (; k + 4 <= K; k += 4) {
        col[k] = (int16_t)(x[k] - izp); col[k + 1] = (int16_t)(x[k + 2] - izp);
        col[k + 2] = (int16_t)(x[k + 1] - izp); col[k + 3] = (int16_t)(x[k + 3] - izp);
    }
#endif
    for (; k < K; k++) col[k] = (int16_t)(x[k] - izp);
    L.mp = fl_m.mp; L.ma = s->mult_at; L.sa = s->shift_at; L.ba = s->bias_at; L.form = s->form;
    if (L.form == (QF_M32 | QF_S8)) d_channels(s, col, &L, 1, y);
    else d_channels(s, col, &L, 0, y);
}
#endif
#endif
