/* ops/qexec.c: the int8-full path's executor: a node's stages over blocks of output channels,
 * pooling, relu, the fused conv -> [relu] -> pool chain streamed by row bands, and the graph
 * input's quantisation and output's dequantisation. The kernels are in qkernels.c. */
#include <math.h>
#include "qkern.h"
#include "qexact.h"
#if FL_INT8_FULL && !FL_Q_STORE_LISTS /* else the port's kernels (FL_Q_STORE_LISTS, core/fl.h) */
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
    const fl_attrs *a = n->a;
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
    const fl_attrs *a = n->a;
    int8_t *scr = qscratch(n);
    uint32_t c0, P = n->d[4] * n->d[5];
    fl_qstage v;
    switch (n->op) {
    case OP_DENSE:
        if (n->d[0] == 1) { /* one row: the lists read as the loop goes (qdense.c; no block in scratch) */
            if (upto > 0) fl_q_dense1(x, &q->st[0], y);
            return x;
        }
        if (upto > 0) Q_BLOCKS(0) fl_q_dense(x, n->d[0], &v, y + c0); /* a block short of C: one row */
        return x;
    case OP_SVD_DENSE:
        if (n->d[0] == 1) {
            if (upto > 0) fl_q_dense1(x, &q->st[0], scr);
            if (upto > 1) fl_q_dense1(scr, &q->st[1], y);
            return upto > 0 ? scr : x;
        }
        if (upto > 0) Q_BLOCKS(0) fl_q_dense(x, n->d[0], &v, scr + c0);
        if (upto > 1) Q_BLOCKS(1) fl_q_dense(scr, n->d[0], &v, y + c0);
        return upto > 0 ? scr : x;
    case OP_CONV2D: {
        const fl_tensor *w = T(n, ROLE_WEIGHT);
        uint32_t G = (uint32_t)a->group, Og = q->st[0].C / G, Cg = n->d[0] / G, HW = n->d[1] * n->d[2];
        if (upto > 0) Q_BLOCKS(0) {
            if (G == 1) fl_q_conv(x, n->d[0], n->d[1], n->d[2], &v, 1, w->dims[2], w->dims[3], a->strides, a->pads, a->dil, n->d[4], n->d[5], y + c0 * P);
            else fl_q_conv(x + (c0 / Og) * Cg * HW, (v.C / Og) * Cg, n->d[1], n->d[2], &v, v.C / Og, w->dims[2], w->dims[3], a->strides, a->pads, a->dil, n->d[4], n->d[5], y + c0 * P);
        }
        return x;
    }
    case OP_SVD_CONV2D: {
        const fl_tensor *vt = T(n, ROLE_V);
        if (upto > 0) Q_BLOCKS(0) fl_q_conv(x, n->d[0], n->d[1], n->d[2], &v, 1, vt->dims[2], vt->dims[3], a->strides, a->pads, a->dil, n->d[4], n->d[5], scr + c0 * P);
        if (upto > 1) Q_BLOCKS(1) fl_q_1x1(scr, P, &v, y + c0 * P);
        return upto > 0 ? scr : x;
    }
    case OP_TUCKER2_CONV2D: {
        const fl_tensor *core = T(n, ROLE_CORE);
        uint32_t HW = n->d[1] * n->d[2];
        int8_t *s2 = scr + n->d[6] * HW;
        if (upto > 0) Q_BLOCKS(0) fl_q_1x1(x, HW, &v, scr + c0 * HW);
        if (upto > 1) Q_BLOCKS(1) fl_q_conv(scr, n->d[6], n->d[1], n->d[2], &v, 1, core->dims[2], core->dims[3], a->strides, a->pads, a->dil, n->d[4], n->d[5], s2 + c0 * P);
        if (upto > 2) Q_BLOCKS(2) fl_q_1x1(s2, P, &v, y + c0 * P);
        return upto > 1 ? s2 : upto > 0 ? scr : x;
    }
    case OP_CP_CONV2D: {
        uint32_t R = n->d[6], H = n->d[1], W = n->d[2], OH = n->d[4], OW = n->d[5], HW = H * W;
        int8_t *sa = scr, *sv = scr + R * (HW > P ? HW : P);
        int32_t vs[2], vp[4], vd[2], hs[2], hp[4], hd[2];
        vs[0] = a->strides[0]; vs[1] = 1; vp[0] = a->pads[0]; vp[1] = 0; vp[2] = a->pads[2]; vp[3] = 0; vd[0] = a->dil[0]; vd[1] = 1;
        hs[0] = 1; hs[1] = a->strides[1]; hp[0] = 0; hp[1] = a->pads[1]; hp[2] = 0; hp[3] = a->pads[3]; hd[0] = 1; hd[1] = a->dil[1];
        if (upto > 0) Q_BLOCKS(0) fl_q_1x1(x, HW, &v, sa + c0 * HW);                                                        /* [R, H, W] */
        if (upto > 1) Q_BLOCKS(1) fl_q_conv(sa + c0 * HW, v.C, H, W, &v, v.C, v.K, 1, vs, vp, vd, OH, W, sv + c0 * OH * W);       /* [R, OH, W] */
        if (upto > 2) Q_BLOCKS(2) fl_q_conv(sv + c0 * OH * W, v.C, OH, W, &v, v.C, 1, v.K, hs, hp, hd, OH, OW, sa + c0 * P);     /* [R, OH, OW] */
        if (upto > 3) Q_BLOCKS(3) fl_q_1x1(sa, P, &v, y + c0 * P);
        return upto > 2 ? sa : upto > 1 ? sv : upto > 0 ? sa : x;
    }
    case OP_DWLR_CONV2D: /* qdwlr.c */
        if (upto > 0) Q_BLOCKS(0) fl_q_dwlr(n, x, &v, c0, y + c0 * P);
        return x;
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
    const fl_attrs *pa = pn->a;
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
    const fl_attrs *a = pc->a;
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
                /* the relu folded into the clamp: max(clamp(v, min, max), rzp) = clamp(v, max(min, rzp), max) when rzp <= max */
                if (an && rzp <= v.max && rzp > v.min) v.min = rzp;
                v.C = nb;
                v.w += (o - c0) * K;
                v.mult += o - c0;
                v.shift += o - c0;
                if (v.bias) v.bias += o - c0;
                if (r1 > r0) {
#if FL_FAST_KERNELS
                    /* the same columns as the channels before in this band (same group of the input) */
                    fl_q_pk_same = o > c0 && (pc->op != OP_CONV2D || o % Og);
#endif
                    if (pc->op == OP_CONV2D) {
                        const fl_tensor *w = T(pc, ROLE_WEIGHT);
                        uint32_t Cg = pc->d[0] / G;
                        fl_q_conv_b(x + (o / Og) * Cg * pc->d[1] * pc->d[2], Cg, pc->d[1], pc->d[2], &v, 1, w->dims[2], w->dims[3], a->strides, a->pads, a->dil, r0, r1 - r0, OW, plane);
                    } else fl_q_1x1s(z + r0 * OW, (r1 - r0) * OW, P, &v, plane);
#if FL_FAST_KERNELS
                    fl_q_pk_same = 0;
#endif
                    if (an && rzp > v.max) q_relu(plane, plane, nb * (r1 - r0) * OW, rzp);
                }
                q_pool_b(pn, plane, pzp, y, o, nb, pa, pb, r0, r1 - r0);
            }
        }
    }
}

/* into fl_m.qin (the frame buffer's tail where the input leaves room, ops/qparams.c); binary64-exact
 * with binary32 and integers (ops/qexact.c: the FPU's single division, where a binary64 one is a
 * software routine of some 300 instructions); u8 pixels: a run of equal pixels quantised once */
void fl_q_input(const fl_ctx *cx) {
    uint32_t i;
    float s32 = (float)fl_m.in_scale;
    int32_t zp = fl_m.in_zp;
    uint32_t prev = 0x100; /* u8 pixels: the previous pixel's value (none yet) and answer */
    int8_t pq = 0;
    if (cx->u8)
        for (i = 0; i < fl_m.in_numel; i++) {
            uint32_t u = cx->u8[i];
            if (u != prev) { pq = fl_qx_quantize(u ? (float)u / cx->div : 0.0f, s32, fl_m.in_scale64, zp); prev = u; }
            fl_m.qin[i] = pq;
        }
    else
        for (i = 0; i < fl_m.in_numel; i++) fl_m.qin[i] = fl_qx_quantize(cx->x[i], s32, fl_m.in_scale64, zp);
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
