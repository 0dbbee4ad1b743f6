/* ops/qkernels.c: the int8-full path's kernels, bit for bit runtime/int8full/ (the definition):
 * int8 activations (NCHW), int8 weights (zero point 0), int32 accumulators that wrap like C's
 * two's complement (the reference's `| 0`), TensorFlow Lite Micro's requantisation
 * (MultiplyByQuantizedMultiplier: SaturatingRoundingDoublingHighMul with the int64 product, then
 * RoundingDivideByPOT), the output zero point, the clamp (a folded relu). No float inside a
 * layer: only the input's quantisation and the output's dequantisation use double. */
#include <math.h>
#include "op.h"
#if FL_INT8_FULL
#if FL_FAST_KERNELS && defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#include <arm_acle.h>
#define FL_Q_SIMD 1 /* SXTB16 / SSUB16 / SMLAD: four multiply-adds in a few instructions */
#else
#define FL_Q_SIMD 0
#endif

/* gemmlowp SaturatingRoundingDoublingHighMul: (a b 2 + nudge) >> 31, the int64 division truncating */
static int32_t srdhm(int32_t a, int32_t b) {
    int64_t ab;
    if (a == b && a == INT32_MIN_SENTINEL) return 2147483647;
    ab = (int64_t)a * (int64_t)b;
    return (int32_t)((ab + (ab >= 0 ? (int64_t)(1 << 30) : (int64_t)(1 - (1 << 30)))) / ((int64_t)1 << 31));
}

/* x / 2^e rounded to nearest, ties away from zero (gemmlowp RoundingDivideByPOT), 0 <= e <= 31 */
static int32_t rdbp(int32_t x, int e) {
    int32_t mask, rem, thr;
    if (!e) return x;
    mask = (int32_t)(((uint32_t)1 << e) - 1u);
    rem = x & mask;
    thr = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (rem > thr ? 1 : 0);
}

/* requantise accumulator acc of output channel c of stage s to int8 */
static int8_t rq(uint32_t acc, const fl_qstage *s, uint32_t c) {
    int32_t sh = s->shift[c], v;
    uint32_t x = sh > 0 ? acc << sh : acc;
    v = rdbp(srdhm((int32_t)x, s->mult[c]), sh > 0 ? 0 : -sh);
    /* v + zp clamped without overflow: |zp| <= 128 */
    if (v > 255) v = 255;
    if (v < -256) v = -256;
    v += s->out_zp;
    return (int8_t)(v < s->min ? s->min : v > s->max ? s->max : v);
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

/* a 1x1 conv, weights stationary: four pixels in registers, zp * sum(w) taken once per channel */
static void q_1x1_fast(const int8_t *x, uint32_t P, const fl_qstage *s, int8_t *y) {
    uint32_t c, k, p, K = s->K;
    for (c = 0; c < s->C; c++) {
        const int8_t *wc = s->w + c * K;
        uint32_t b = s->bias ? (uint32_t)s->bias[c] : 0u, ws = 0;
        for (k = 0; k < K; k++) ws += (uint32_t)(int32_t)wc[k];
        b -= ws * (uint32_t)s->in_zp;
        for (p = 0; p + 4 <= P; p += 4) {
            uint32_t a0 = b, a1 = b, a2 = b, a3 = b;
            const int8_t *xp = x + p;
            for (k = 0; k < K; k++, xp += P) {
                int32_t wv = wc[k];
                a0 += (uint32_t)(xp[0] * wv); a1 += (uint32_t)(xp[1] * wv);
                a2 += (uint32_t)(xp[2] * wv); a3 += (uint32_t)(xp[3] * wv);
            }
            y[c * P + p] = rq(a0, s, c); y[c * P + p + 1] = rq(a1, s, c);
            y[c * P + p + 2] = rq(a2, s, c); y[c * P + p + 3] = rq(a3, s, c);
        }
        for (; p < P; p++) {
            uint32_t a = b;
            for (k = 0; k < K; k++) a += (uint32_t)(x[k * P + p] * (int32_t)wc[k]);
            y[c * P + p] = rq(a, s, c);
        }
    }
}

/* a conv whose kernel rows are contiguous in the input (horizontal dilation 1): each in-range
 * row of taps one dot product */
static void q_conv_rows(const int8_t *x, uint32_t C, uint32_t H, uint32_t W, const fl_qstage *s, uint32_t G, uint32_t KH, uint32_t KW,
                        const int32_t *st, const int32_t *pd, const int32_t *dl, uint32_t OH, uint32_t OW, int8_t *y) {
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
                            int32_t iy = (int32_t)oy * st[0] - pd[0] + (int32_t)ky * dl[0];
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

/* y[C, P] = rq(bias + sum_k (x[k, p] - zp) w[c, k]): a 1x1 conv over P pixels */
static void q_1x1(const int8_t *x, uint32_t P, const fl_qstage *s, int8_t *y) {
    uint32_t c, k, p, K = s->K;
    int32_t zp = s->in_zp;
#if FL_FAST_KERNELS
    if (P >= 4) { q_1x1_fast(x, P, s, y); return; }
#endif
    for (c = 0; c < s->C; c++) {
        const int8_t *wc = s->w + c * K;
        uint32_t b = s->bias ? (uint32_t)s->bias[c] : 0u;
        for (p = 0; p < P; p++) {
            uint32_t acc = b;
            for (k = 0; k < K; k++) acc += (uint32_t)(((int32_t)x[k * P + p] - zp) * (int32_t)wc[k]);
            y[c * P + p] = rq(acc, s, c);
        }
    }
}

/* y[O, OH, OW] from x[C, H, W] and w[O, C/G, KH, KW] (cross-correlation); padding is real 0 and
 * contributes nothing */
static void q_conv(const int8_t *x, uint32_t C, uint32_t H, uint32_t W, const fl_qstage *s, uint32_t G, uint32_t KH, uint32_t KW,
                   const int32_t *st, const int32_t *pd, const int32_t *dl, uint32_t OH, uint32_t OW, int8_t *y) {
    uint32_t O = s->C, Og = O / G, Cg = C / G, o, c, oy, ox, ky, kx;
    int32_t zp = s->in_zp;
#if FL_FAST_KERNELS
    if (dl[1] == 1 && KW > 1) { q_conv_rows(x, C, H, W, s, G, KH, KW, st, pd, dl, OH, OW, y); return; }
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
                        int32_t iy = (int32_t)oy * st[0] - pd[0] + (int32_t)ky * dl[0];
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

/* planes first .. first + count - 1 of the pool's output from x holding those planes */
static void q_pool(const fl_node *n, const int8_t *x, int32_t zp, int8_t *y, uint32_t first, uint32_t count) {
    const fl_attrs *a = &n->a;
    uint32_t H = n->d[1], W = n->d[2], OH = n->d[3], OW = n->d[4], nc, oy, ox;
    int32_t KH = a->kernel[0], KW = a->kernel[1];
    for (nc = first; nc < first + count; nc++) {
        const int8_t *xo = x + (nc - first) * H * W;
        for (oy = 0; oy < OH; oy++)
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

void fl_q_eval(const fl_node *n) {
    const fl_qnode *q = fl_qn(n);
    const int8_t *x = qv(n->in[0]);
    int8_t *y = qv(n->out);
    uint32_t i, ne = fl_m.values[n->out].numel;
    int32_t zp = q->in_zp;
    if (q->kind != QK_STAGES) { fl_q_misc(n); return; }
    if (q->nst) { (void)q_stages(n, x, q->nst, y); return; }
    switch (n->op) {
    case OP_RELU: for (i = 0; i < ne; i++) y[i] = x[i] < zp ? (int8_t)zp : x[i]; return;
    case OP_MAX_POOL: case OP_AVG_POOL: q_pool(n, x, zp, y, 0, n->d[0]); return;
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
 * before its last run as unfused (intermediates in its scratch); then one output channel at a time,
 * its last stage's plane (OH x OW int8, in the producer's scratch at plane_off) by the same kernel
 * on a one-channel view of the stage, the relu, and that channel's pooled outputs. Integer sums:
 * the same bytes as the unfused nodes; the producer's and the relu's outputs are never stored. */
void fl_q_chain(const fl_node *pn) {
    const fl_node *pc = &fl_m.nodes[pn->span_lo];
    const fl_node *an = pn->span_lo + 1u < (uint32_t)(pn - fl_m.nodes) ? pc + 1 : NULL;
    const fl_qnode *q = fl_qn(pc);
    const fl_attrs *a = &pc->a;
    const int8_t *x = qv(pc->in[0]), *z;
    int8_t *y = qv(pn->out), *plane = qscratch(pc) + q->plane_off;
    uint32_t k = q->nst - 1u, O = q->st[k].C, K = q->st[k].K, OH = pc->d[4], OW = pc->d[5], P = OH * OW, o, i, c0 = 0;
    int32_t rzp = an ? fl_qn(an)->in_zp : 0, pzp = fl_qn(pn)->in_zp;
    fl_qstage blk, v;
    z = q_stages(pc, x, k, NULL);
    blk.C = 0;
    for (o = 0; o < O; o++) {
        if (o == c0 + blk.C) { fl_q_view(pc, k, o, &blk); c0 = o; }
        v = blk;
        v.C = 1;
        v.w += (o - c0) * K;
        v.mult += o - c0;
        v.shift += o - c0;
        if (v.bias) v.bias += o - c0;
        if (pc->op == OP_CONV2D) {
            const fl_tensor *w = T(pc, ROLE_WEIGHT);
            uint32_t G = (uint32_t)a->group, Cg = pc->d[0] / G, g = o / (O / G);
            q_conv(x + g * Cg * pc->d[1] * pc->d[2], Cg, pc->d[1], pc->d[2], &v, 1, w->dims[2], w->dims[3], a->strides, a->pads, a->dil, OH, OW, plane);
        } else q_1x1(z, P, &v, plane);
        if (an) for (i = 0; i < P; i++) if (plane[i] < rzp) plane[i] = (int8_t)rzp;
        q_pool(pn, plane, pzp, y, o, 1);
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
