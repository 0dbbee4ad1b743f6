/* ops/dwlr.c: dwlr_conv2d (runtime/layers/dwlrConv2d.ts), a depthwise conv whose C kernels are a
 * low-rank product K [C, KH*KW] = u [C, r] v [r, KH, KW]. Each inference rebuilds K into the node's
 * scratch (C*KH*KW*r multiply-adds, summed over r in order, as the workstation does) and runs the
 * depthwise conv over it with the loops of fl_conv (conv.c; rows.c where FL_FAST_KERNELS): the
 * same terms in the same order as conv2d with the rebuilt kernels stored as its weight. */
#include "op.h"

int fl_dwlr_prepare(fl_node *n) {
    fl_attrs *a = n->a;
    fl_tensor *u, *v;
    uint32_t C, R, KH, KW, H = 0, W = 0, OH = 0, OW = 0, out[FL_MAX_RANK];
    uint64_t need;
    CHECK(fl_one_input(n)); CHECK(fl_conv_attrs_ok(a));
    CHECK(fl_only_roles(n, 1u << ROLE_U | 1u << ROLE_V | 1u << ROLE_BIAS, 0));
    CHECK(fl_need_role(n, ROLE_U, &u)); CHECK(fl_need_role(n, ROLE_V, &v));
    if (u->rank != 2 || v->rank != 3 || u->dims[1] != v->dims[0]) return fl_bad("u [C, r] and v [r, kh, kw] do not match");
    C = u->dims[0]; R = u->dims[1]; KH = v->dims[1]; KW = v->dims[2];
    if (C < 1 || R < 1 || KH < 1 || KW < 1 || KH > FL_ATTR_MAX || KW > FL_ATTR_MAX) return fl_bad("empty kernel");
    if ((uint32_t)a->group != C) return fl_bad("dwlr_conv2d: group must equal the channels");
    CHECK(fl_bias_ok(n, C));
    CHECK(fl_nchw(n, C, &H, &W));
    CHECK(fl_conv_out((int32_t)H, (int32_t)KH, a->strides[0], a->pads[0], a->pads[2], a->dil[0], &OH));
    CHECK(fl_conv_out((int32_t)W, (int32_t)KW, a->strides[1], a->pads[1], a->pads[3], a->dil[1], &OW));
    out[0] = 1; out[1] = C; out[2] = OH; out[3] = OW;
    CHECK(fl_set_out(n, 4, out));
    n->d[0] = C; n->d[1] = H; n->d[2] = W; n->d[3] = R; n->d[4] = OH; n->d[5] = OW;
    /* scratch: the rebuilt kernels, C*KH*KW floats */
    need = (uint64_t)C * KH * KW;
    if (need * 4u > FL_ARENA_BYTES) return fl_fail("TOO_LARGE", "scratch larger than the arena");
    CHECK(fl_work((double)C * KH * KW * R + (double)OH * OW * C * KH * KW));
    n->scratch_need = (uint32_t)need * 4u;
    return 0;
}

void fl_dwlr_eval(const fl_node *n, const fl_ctx *cx) {
    const fl_attrs *a = n->a;
    float *y = fl_vp(n->out, cx);
    const float *x = fl_x(n, cx);
    float *k = fl_scratch(n);
    fl_tensor *u = T(n, ROLE_U), *v = T(n, ROLE_V), *b = T(n, ROLE_BIAS);
    uint32_t C = n->d[0], H = n->d[1], W = n->d[2], R = n->d[3], OH = n->d[4], OW = n->d[5];
    uint32_t KH = v->dims[1], KW = v->dims[2], KK = KH * KW, P = OH * OW, c, j, t, ky, kx, oy, ox;
    for (c = 0; c < C; c++) {
        for (t = 0; t < KK; t++) {
            float s = 0;
            for (j = 0; j < R; j++) s += fl_wget(u, c * R + j) * fl_wget(v, j * KK + t);
            k[c * KK + t] = s;
        }
    }
    for (c = 0; c < C; c++) {
        const float *xc = x + c * H * W, *kc = k + c * KK;
        float *yo = y + c * P;
        for (oy = 0; oy < P; oy++) yo[oy] = 0;
#if FL_FAST_KERNELS
        if (KK <= FL_FAST_TAPS) {
            fl_conv_rows(xc, H, W, kc, KH, KW, a->strides, a->pads, a->dil, 0, OH, OW, yo);
            if (b) { float bv = fl_wget(b, c); for (oy = 0; oy < P; oy++) yo[oy] += bv; }
            continue;
        }
#endif
        for (ky = 0; ky < KH; ky++) {
            for (kx = 0; kx < KW; kx++) {
                float wv = kc[ky * KW + kx];
                int32_t ox0, ox1, offx = (int32_t)kx * a->dil[1] - a->pads[1];
                if (wv == 0) continue;
                ox0 = offx >= 0 ? 0 : (-offx + a->strides[1] - 1) / a->strides[1];
                ox1 = (int32_t)W - offx <= 0 ? 0 : ((int32_t)W - offx - 1) / a->strides[1] + 1;
                if (ox1 > (int32_t)OW) ox1 = (int32_t)OW;
                for (oy = 0; oy < OH; oy++) {
                    int32_t iy = (int32_t)oy * a->strides[0] - a->pads[0] + (int32_t)ky * a->dil[0];
                    const float *xr;
                    float *yr;
                    if (iy < 0 || iy >= (int32_t)H) continue;
                    xr = xc + (uint32_t)iy * W;
                    yr = yo + oy * OW;
                    for (ox = (uint32_t)ox0; (int32_t)ox < ox1; ox++) yr[ox] += wv * xr[(int32_t)ox * a->strides[1] + offx];
                }
            }
        }
        if (b) { float bv = fl_wget(b, c); for (oy = 0; oy < P; oy++) yo[oy] += bv; }
    }
}
