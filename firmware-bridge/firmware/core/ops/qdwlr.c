/* ops/qdwlr.c: dwlr_conv2d on the int8-full path, bit for bit runtime/int8full/ (Int8Session; the
 * stage is defined in runtime/int8full/params.ts dwlrKernelInt8, FORMAT.md 4.5). The node's one
 * stage has u [C, r] as its weight (int8, a scale per channel) and v [r, kh, kw] (int8, one scale)
 * beside it; the depthwise kernels are the exact integers K[c, t] = sum_j u[c, j] v[j, t], so that
 *   y[c, p] = clamp(MultiplyByQuantizedMultiplier(bias[c] + sum_t (x[c, p + t] - zp) K[c, t]) + zp_out)
 * over the taps inside the input (padding holds zp, real 0). The portable loops are the definition
 * (each K[c, t] formed where it is used); the fast ones (FL_FAST_KERNELS, kh kw <= FL_FAST_TAPS) form
 * a channel's K once on the stack and, where a window lies inside the input, add sum_t x K to
 * bias - zp sum_t K: the same int32 sum, which prepare bounds (256 sum_t |K| + |bias| < 2^31). */
#include "op.h"
#include "../model/model.h"
#if FL_INT8_FULL && !FL_Q_STORE_LISTS /* the AVR's int8-full port (FL_Q_STORE_LISTS) refuses the kind */

static const int8_t *dw_v(const fl_node *n) { return (const int8_t *)(const void *)(fl_m.mp + T(n, ROLE_V)->data); }

/* K[c, t] of the stage's channel with u row uc */
static int32_t dw_tap(const int8_t *uc, const int8_t *vq, uint32_t R, uint32_t KK, uint32_t t) {
    int32_t s = 0;
    uint32_t j;
    for (j = 0; j < R; j++) s += (int32_t)uc[j] * vq[j * KK + t];
    return s;
}

int fl_q_dwlr_check(const fl_node *n, const fl_qstage *st) {
    const fl_tensor *vt = T(n, ROLE_V);
    const int8_t *vq;
    uint32_t C = n->d[0], R = n->d[3], KK, c, t;
    fl_src s;
    double b = 0;
    if (!vt || vt->dtype != DT_I8 || vt->axis != 0xFF) return fl_fail("FLM_BAD_METADATA", "quant.int8_full: a dwlr_conv2d's v is not an int8 tensor with one scale");
    if (st->C != C || st->K != R || !R || vt->numel % R) return fl_bad("dwlr_conv2d: u [C, r] and v [r, kh, kw] do not match");
    KK = vt->numel / R;
    vq = dw_v(n);
    if (st->bias_at) fl_src_model(&s, st->bias_at, fl_rd.hdr_end);
    for (c = 0; c < C; c++) {
        int64_t sum = 0;
        for (t = 0; t < KK; t++) {
            int32_t k = dw_tap(st->w + c * R, vq, R, KK, t);
            sum += k < 0 ? -(int64_t)k : k;
        }
        if (st->bias_at && fl_rd_int(&s, -2147483648.0, 2147483647.0, &b)) return fl_fail("FLM_BAD_METADATA", "quant.int8_full: bias is not C int32");
        if (256 * sum + (int64_t)(b < 0 ? -b : b) > 2147483647) return fl_fail("FLM_BAD_METADATA", "quant.int8_full: a dwlr_conv2d's kernel u v could overflow the int32 accumulator");
    }
    return 0;
}

/* TFLite Micro's MultiplyByQuantizedMultiplier (runtime/int8full/requant.ts), the zero point, the clamp */
static int8_t dw_rq(uint32_t acc, const fl_qstage *v, uint32_t c) {
    int32_t sh = v->shift[c], e = sh > 0 ? 0 : -sh, hi;
    int64_t ab = (int64_t)(int32_t)(sh > 0 ? acc << sh : acc) * v->mult[c];
    hi = (int32_t)((ab + (ab >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30))) / ((int64_t)1 << 31));
    if (e) {
        int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u), rem = hi & mask, thr = (mask >> 1) + (hi < 0 ? 1 : 0);
        hi = (hi >> e) + (rem > thr ? 1 : 0);
    }
    hi += v->out_zp;
    return (int8_t)(hi < v->min ? v->min : hi > v->max ? v->max : hi);
}

/* one output of channel c whose window may reach the padding: bias + sum over the taps inside of (x - zp) K */
static uint32_t dw_edge(const fl_node *n, const int8_t *xc, const int8_t *uc, const int8_t *vq, const int32_t *k, int32_t zp, uint32_t acc, uint32_t oy, uint32_t ox) {
    const fl_attrs *a = &n->a;
    const fl_tensor *vt = T(n, ROLE_V);
    uint32_t H = n->d[1], W = n->d[2], R = n->d[3], KH = vt->dims[1], KW = vt->dims[2], ky, kx;
    for (ky = 0; ky < KH; ky++) {
        int32_t iy = (int32_t)oy * a->strides[0] - a->pads[0] + (int32_t)ky * a->dil[0];
        if (iy < 0 || iy >= (int32_t)H) continue;
        for (kx = 0; kx < KW; kx++) {
            int32_t ix = (int32_t)ox * a->strides[1] - a->pads[1] + (int32_t)kx * a->dil[1];
            if (ix < 0 || ix >= (int32_t)W) continue;
            acc += (uint32_t)(((int32_t)xc[(uint32_t)iy * W + (uint32_t)ix] - zp) * (k ? k[ky * KW + kx] : dw_tap(uc, vq, R, KH * KW, ky * KW + kx)));
        }
    }
    return acc;
}

#if FL_FAST_KERNELS
/* the outputs [o0, o1) along one axis whose windows lie inside [0, size) */
static void dw_inside(int32_t size, int32_t k, int32_t s, int32_t pad, int32_t d, uint32_t out, uint32_t *o0, uint32_t *o1) {
    int32_t lo = (pad + s - 1) / s, last = size - 1 - (k - 1) * d + pad, hi = last < 0 ? 0 : last / s + 1;
    if (hi > (int32_t)out) hi = (int32_t)out;
    if (lo > hi) lo = hi;
    *o0 = (uint32_t)lo;
    *o1 = (uint32_t)hi;
}
#endif

/* channels c0 .. c0 + v->C - 1 (v: their lists, fl_q_view; v->w at channel c0's u row) of x [C, H, W] into y (channel c0's plane) */
void fl_q_dwlr(const fl_node *n, const int8_t *x, const fl_qstage *v, uint32_t c0, int8_t *y) {
    const int8_t *vq = dw_v(n);
    uint32_t H = n->d[1], W = n->d[2], R = n->d[3], OH = n->d[4], OW = n->d[5], c, oy, ox;
    int32_t zp = v->in_zp;
    for (c = 0; c < v->C; c++) {
        const int8_t *xc = x + (c0 + c) * H * W, *uc = v->w + c * R;
        int8_t *yc = y + c * OH * OW;
        uint32_t bias = v->bias ? (uint32_t)v->bias[c] : 0u;
#if FL_FAST_KERNELS
        const fl_attrs *a = &n->a;
        uint32_t KH = T(n, ROLE_V)->dims[1], KW = T(n, ROLE_V)->dims[2], KK = KH * KW;
        if (KK <= FL_FAST_TAPS) {
            int32_t k[FL_FAST_TAPS], S = 0;
            uint32_t t, ky, kx, y0, y1, x0, x1, base;
            int32_t sy = a->strides[0], sx = a->strides[1], dy = a->dil[0], dx = a->dil[1];
            for (t = 0; t < KK; t++) { k[t] = dw_tap(uc, vq, R, KK, t); S += k[t]; }
            base = bias - (uint32_t)(zp * S);
            dw_inside((int32_t)H, (int32_t)KH, sy, a->pads[0], dy, OH, &y0, &y1);
            dw_inside((int32_t)W, (int32_t)KW, sx, a->pads[1], dx, OW, &x0, &x1);
            for (oy = 0; oy < OH; oy++) {
                int inside = oy >= y0 && oy < y1;
                for (ox = 0; ox < OW; ox++) {
                    uint32_t acc;
                    if (inside && ox >= x0 && ox < x1) {
                        const int8_t *xp = xc + ((int32_t)oy * sy - a->pads[0]) * (int32_t)W + ((int32_t)ox * sx - a->pads[1]);
                        const int32_t *kr = k;
                        acc = base;
                        if (KW == 3 && dx == 1)
                            for (ky = 0; ky < KH; ky++, xp += dy * (int32_t)W, kr += 3)
                                acc += (uint32_t)(xp[0] * kr[0] + xp[1] * kr[1] + xp[2] * kr[2]);
                        else
                            for (ky = 0; ky < KH; ky++, xp += dy * (int32_t)W, kr += KW)
                                for (kx = 0; kx < KW; kx++) acc += (uint32_t)(xp[kx * (uint32_t)dx] * kr[kx]);
                    } else acc = dw_edge(n, xc, uc, vq, k, zp, bias, oy, ox);
                    yc[oy * OW + ox] = dw_rq(acc, v, c);
                }
            }
            continue;
        }
#endif
        for (oy = 0; oy < OH; oy++)
            for (ox = 0; ox < OW; ox++) yc[oy * OW + ox] = dw_rq(dw_edge(n, xc, uc, vq, NULL, zp, bias, oy, ox), v, c);
    }
}
#endif
