/* ops/qdwlr.c: dwlr_conv2d on the int8-full path, bit for bit runtime/int8full/ (Int8Session; the
 * stage is defined in runtime/int8full/params.ts dwlrKernelInt8, FORMAT.md 4.5). The node's one
 * stage has u [C, r] as its weight (int8, a scale per channel) and v [r, kh, kw] (int8, one scale)
 * beside it; the depthwise kernels are the exact integers K[c, t] = sum_j u[c, j] v[j, t], so that
 *   y[c, p] = clamp(MultiplyByQuantizedMultiplier(bias[c] + sum_t (x[c, p + t] - zp) K[c, t]) + zp_out)
 * over the taps inside the input (padding holds zp, real 0). The portable loops are the definition
 * (each K[c, t] formed where it is used); the fast ones (FL_FAST_KERNELS, kh kw <= FL_FAST_TAPS and
 * kh padded input rows within FL_DW_ROWS bytes) form a channel's K once on the stack, copy the
 * input rows an output row reads into a padded buffer (padding = zp) and add sum_t x K to
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

int fl_q_dwlr_check(const fl_node *n, const fl_qst *st) {
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

/* TFLite Micro's MultiplyByQuantizedMultiplier (runtime/int8full/requant.ts) of acc by (m, 2^l or 2^-e),
 * the zero point, the clamp [lo, hi] */
static inline int8_t dw_rq_of(uint32_t acc, int32_t m, uint32_t l, uint32_t e, int32_t zp, int32_t lo, int32_t hi) {
    int64_t ab = (int64_t)(int32_t)(acc << l) * m;
    int32_t v = (int32_t)((ab + (ab >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30))) / ((int64_t)1 << 31));
    if (e) {
        int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u), rem = v & mask, thr = (mask >> 1) + (v < 0 ? 1 : 0);
        v = (v >> e) + (rem > thr ? 1 : 0);
    }
    v += zp;
    return (int8_t)(v < lo ? lo : v > hi ? hi : v);
}

static int8_t dw_rq(uint32_t acc, const fl_qstage *v, uint32_t c) {
    int32_t sh = v->shift[c];
    return dw_rq_of(acc, v->mult[c], sh > 0 ? (uint32_t)sh : 0u, sh > 0 ? 0u : (uint32_t)-sh, v->out_zp, v->min, v->max);
}

/* one output of channel c, the definition: bias + sum over the taps inside of (x - zp) K, each K formed there */
static uint32_t dw_edge(const fl_node *n, const int8_t *xc, const int8_t *uc, const int8_t *vq, int32_t zp, uint32_t acc, uint32_t oy, uint32_t ox) {
    const fl_attrs *a = n->a;
    const fl_tensor *vt = T(n, ROLE_V);
    uint32_t H = n->d[1], W = n->d[2], R = n->d[3], KH = vt->dims[1], KW = vt->dims[2], ky, kx;
    for (ky = 0; ky < KH; ky++) {
        int32_t iy = (int32_t)oy * a->strides[0] - a->pads[0] + (int32_t)ky * a->dil[0];
        if (iy < 0 || iy >= (int32_t)H) continue;
        for (kx = 0; kx < KW; kx++) {
            int32_t ix = (int32_t)ox * a->strides[1] - a->pads[1] + (int32_t)kx * a->dil[1];
            if (ix < 0 || ix >= (int32_t)W) continue;
            acc += (uint32_t)(((int32_t)xc[(uint32_t)iy * W + (uint32_t)ix] - zp) * dw_tap(uc, vq, R, KH * KW, ky * KW + kx));
        }
    }
    return acc;
}

#if FL_FAST_KERNELS
#define FL_DW_BUF 384u /* bytes of padded input on the stack: the whole padded plane, or kh padded rows */

/* in zp (real 0) then the rows iy = iy0 + r dy (r < nr) of xc [H, W] inside the input, each at b + r Wp + pl */
static void dw_pad(const int8_t *xc, int32_t H, uint32_t W, int32_t iy0, int32_t dy, uint32_t nr, uint32_t Wp, uint32_t pl, int32_t zp, int8_t *b) {
    uint32_t r;
    memset(b, zp, nr * Wp);
    for (r = 0; r < nr; r++) {
        int32_t iy = iy0 + (int32_t)r * dy;
        if (iy >= 0 && iy < H) memcpy(b + r * Wp + pl, xc + (uint32_t)iy * W, W);
    }
}

/* channel c's outputs from its kernels k (on the stack): the padded plane ((pt + H + pb) x Wp) is
 * laid in buf with the padding as zp (real 0), or where it does not fit, for each output row the kh
 * input rows it reads; every window then lies inside buf and its sum is base + sum_t x K, base =
 * bias - zp sum_t K (the definition's sum over the taps inside: a padding tap adds zp K). The
 * requantisation is qkernels.c's one-step form: floor((a m + 2^30 + 2^(30+e) - 2^31 [a < 0]) /
 * 2^(31+e)) for a right shift e >= 1, floor((a m + 2^30) / 2^31) for e = 0, a = acc 2^l. */
static void dw_fast(const fl_node *n, const int8_t *xc, const int32_t *k, int32_t zp, uint32_t bias, const fl_qstage *v, uint32_t c, int8_t *yc, int8_t *buf) {
    const fl_attrs *a = n->a;
    const fl_tensor *vt = T(n, ROLE_V);
    int32_t H = (int32_t)n->d[1], KH = (int32_t)vt->dims[1], sy = a->strides[0], dy = a->dil[0], S = 0, t, sh = v->shift[c];
    uint32_t W = n->d[2], KW = vt->dims[2], pl = (uint32_t)a->pads[1], Wp = pl + W + (uint32_t)a->pads[3], sx = (uint32_t)a->strides[1], dx = (uint32_t)a->dil[1];
    uint32_t OH = n->d[4], OW = n->d[5], oy, ox, base, l = sh > 0 ? (uint32_t)sh : 0u, e = sh > 0 ? 0u : (uint32_t)-sh;
    int32_t m = v->mult[c], ozp = v->out_zp, lo = v->min, hi = v->max;
    int64_t ce = ((int64_t)1 << 30) + (e ? (int64_t)1 << (30 + e) : 0), neg = e ? (int64_t)1 << 31 : 0;
    uint32_t Hp = (uint32_t)(a->pads[0] + H + a->pads[2]), plane = Hp * Wp <= FL_DW_BUF;
    for (t = 0; t < KH * (int32_t)KW; t++) S += k[t];
    base = bias - (uint32_t)(zp * S);
    if (plane) dw_pad(xc, H, W, -a->pads[0], 1, Hp, Wp, pl, zp, buf);
    for (oy = 0; oy < OH; oy++) {
        int32_t ky, iy0 = (int32_t)oy * sy - a->pads[0];
        const int8_t *row = plane ? buf + (uint32_t)(iy0 + a->pads[0]) * Wp : buf;
        uint32_t rs = plane ? (uint32_t)dy * Wp : Wp; /* from one tap row to the next */
        if (!plane) dw_pad(xc, H, W, iy0, dy, (uint32_t)KH, Wp, pl, zp, buf);
        for (ox = 0; ox < OW; ox++) {
            const int8_t *xp = row + ox * sx;
            const int32_t *kr = k;
            uint32_t acc = base, kx;
            if (KW == 3 && dx == 1)
                for (ky = 0; ky < KH; ky++, xp += rs, kr += 3) acc += (uint32_t)(xp[0] * kr[0] + xp[1] * kr[1] + xp[2] * kr[2]);
            else
                for (ky = 0; ky < KH; ky++, xp += rs, kr += KW)
                    for (kx = 0; kx < KW; kx++) acc += (uint32_t)(xp[kx * dx] * kr[kx]);
            {
                int32_t aa = (int32_t)(acc << l);
                int32_t q = (int32_t)(((int64_t)aa * m + ce - (aa < 0 ? neg : 0)) >> (31u + e)) + ozp;
                yc[oy * OW + ox] = (int8_t)(q < lo ? lo : q > hi ? hi : q);
            }
        }
    }
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
        const fl_tensor *vt = T(n, ROLE_V);
        uint32_t KK = vt->numel / R;
        if (KK <= FL_FAST_TAPS && vt->dims[1] * ((uint32_t)n->a->pads[1] + W + (uint32_t)n->a->pads[3]) <= FL_DW_BUF) {
            int32_t k[FL_FAST_TAPS];
            int8_t buf[FL_DW_BUF];
            uint32_t t;
            for (t = 0; t < KK; t++) k[t] = dw_tap(uc, vq, R, KK, t);
            dw_fast(n, xc, k, zp, bias, v, c, yc, buf);
            continue;
        }
#endif
        for (oy = 0; oy < OH; oy++)
            for (ox = 0; ox < OW; ox++) yc[oy * OW + ox] = dw_rq(dw_edge(n, xc, uc, vq, zp, bias, oy, ox), v, c);
    }
}
#endif
