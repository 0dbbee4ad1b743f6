/* ops/pool.c: max_pool, avg_pool (with ceil_mode, count_include_pad) and global_avg_pool. */
#include <math.h>
#include "op.h"

int fl_pool_prepare(fl_node *n) {
    fl_attrs *a = n->a;
    uint32_t out[FL_MAX_RANK];
    fl_value *x;
    int i;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 0, 0));
    x = X(n, 0);
    if (x->rank != 4) return fl_bad("input is not [N, C, H, W]");
    if (a->kernel[0] < 1 || a->kernel[1] < 1) return fl_bad("pooling needs a kernel");
    if (a->strides[0] < 1 || a->strides[1] < 1 || a->dil[0] < 1 || a->dil[1] < 1) return fl_bad("pooling attributes out of range");
    for (i = 0; i < 4; i++) if (a->pads[i] < 0) return fl_bad("pooling attributes out of range");
    {
        int k;
        for (k = 0; k < 2; k++) {
            int32_t in = (int32_t)x->dims[2 + k], dl = n->op == OP_MAX_POOL ? a->dil[k] : 1;
            int64_t span = (int64_t)in + a->pads[k] + a->pads[k + 2] - (int64_t)dl * (a->kernel[k] - 1) - 1;
            int64_t o;
            if (span < 0) return fl_bad("pool kernel larger than the padded input");
            if (!a->ceil_mode) o = span / a->strides[k] + 1;
            else {
                o = (span + a->strides[k] - 1) / a->strides[k] + 1;
                if ((o - 1) * a->strides[k] >= (int64_t)in + a->pads[k]) o--;
            }
            if (o < 1) return fl_bad("empty pool output");
            out[2 + k] = (uint32_t)o;
        }
    }
    CHECK(fl_work((double)x->dims[0] * x->dims[1] * out[2] * out[3] * (double)a->kernel[0] * a->kernel[1]));
    out[0] = x->dims[0]; out[1] = x->dims[1];
    n->d[0] = x->dims[0] * x->dims[1]; n->d[1] = x->dims[2]; n->d[2] = x->dims[3]; n->d[3] = out[2]; n->d[4] = out[3];
    return fl_set_out(n, 4, out);
}

int fl_gap_prepare(fl_node *n) {
    uint32_t out[FL_MAX_RANK];
    fl_value *x;
    int i;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 0, 0));
    x = X(n, 0);
    if (x->rank < 3) return fl_bad("input has no spatial axes");
    out[0] = x->dims[0]; out[1] = x->dims[1];
    for (i = 2; i < x->rank; i++) out[i] = 1;
    n->d[0] = x->dims[0] * x->dims[1]; n->d[1] = x->numel / n->d[0];
    return fl_set_out(n, x->rank, out);
}

void fl_pool_eval(const fl_node *n, const fl_ctx *cx) {
    const fl_attrs *a = n->a;
    float *y = fl_vp(n->out, cx);
    const float *x = fl_x(n, cx);
    uint32_t NC = n->d[0], H = n->d[1], W = n->d[2], OH = n->d[3], OW = n->d[4], nc, oy, ox;
    int32_t KH = a->kernel[0], KW = a->kernel[1];
    for (nc = 0; nc < NC; nc++) {
        const float *xo = x + nc * H * W;
        for (oy = 0; oy < OH; oy++)
            for (ox = 0; ox < OW; ox++) {
                float r;
                if (n->op == OP_MAX_POOL) {
                    int32_t ky, kx;
                    float m = -INFINITY;
                    for (ky = 0; ky < KH; ky++) {
                        int32_t iy = (int32_t)oy * a->strides[0] - a->pads[0] + ky * a->dil[0];
                        if (iy < 0 || iy >= (int32_t)H) continue;
                        for (kx = 0; kx < KW; kx++) {
                            int32_t ix = (int32_t)ox * a->strides[1] - a->pads[1] + kx * a->dil[1];
                            float v;
                            if (ix < 0 || ix >= (int32_t)W) continue;
                            v = xo[(uint32_t)iy * W + (uint32_t)ix];
                            if (v > m) m = v;
                        }
                    }
                    r = m;
                } else {
                    int32_t y0 = (int32_t)oy * a->strides[0] - a->pads[0], x0 = (int32_t)ox * a->strides[1] - a->pads[1];
                    int32_t y1 = y0 + KH < (int32_t)H + a->pads[2] ? y0 + KH : (int32_t)H + a->pads[2];
                    int32_t x1 = x0 + KW < (int32_t)W + a->pads[3] ? x0 + KW : (int32_t)W + a->pads[3];
                    int32_t ys = y0 > 0 ? y0 : 0, ye = y1 < (int32_t)H ? y1 : (int32_t)H;
                    int32_t xs = x0 > 0 ? x0 : 0, xe = x1 < (int32_t)W ? x1 : (int32_t)W, iy, ix, cnt;
                    float s = 0;
                    for (iy = ys; iy < ye; iy++) for (ix = xs; ix < xe; ix++) s += xo[(uint32_t)iy * W + (uint32_t)ix];
                    cnt = a->count_include_pad ? (y1 - y0) * (x1 - x0) : (ye - ys) * (xe - xs);
                    r = cnt > 0 ? s / (float)cnt : 0;
                }
                y[(nc * OH + oy) * OW + ox] = r;
            }
    }
}

void fl_gap_eval(const fl_node *n, const fl_ctx *cx) {
    float *y = fl_vp(n->out, cx);
    const float *x = fl_x(n, cx);
    uint32_t i;
    uint32_t nc, S = n->d[1];
    for (nc = 0; nc < n->d[0]; nc++) {
        float s = 0;
        for (i = 0; i < S; i++) s += x[nc * S + i];
        y[nc] = s / (float)S;
    }
}
