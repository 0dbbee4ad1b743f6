/* ops/conv.c: conv2d and the factorised convs (svd, tucker2, cp), each a chain of the plain conv
 * and 1x1 kernels below with its intermediates in scratch. */
#include "op.h"

int fl_conv_kind(uint8_t op) { return op == OP_CONV2D || op == OP_SVD_CONV2D || op == OP_TUCKER2_CONV2D || op == OP_CP_CONV2D; }

/* y[O, OH, OW] = fl_conv(x[C, H, W], w[O, C/G, KH, KW]) (+ bias), weight-stationary */
void fl_conv(const float *x, uint32_t C, uint32_t H, uint32_t W, const fl_tensor *w, uint32_t wbase,
                 uint32_t O, uint32_t G, uint32_t KH, uint32_t KW, const fl_attrs *a, const int32_t *strides,
                 const int32_t *pads, const int32_t *dil, uint32_t OH, uint32_t OW, const fl_tensor *bias, float *y) {
    uint32_t Og = O / G, Cg = C / G, P = OH * OW, o, c, ky, kx, oy, ox;
    (void)a;
#if FL_FAST_KERNELS
    if (KH == 1 && KW == 1 && strides[0] == 1 && strides[1] == 1 && pads[0] == 0 && pads[1] == 0 && OH == H && OW == W) {
        /* a pointwise conv: the whole plane is one run of pixels, so fl_conv1x1's column loop (the
         * row loop below would take one call per input channel and output row, costly on narrow maps) */
        float wk[FL_FAST_TAPS];
        for (o = 0; o < O; o++) {
            float *yo = y + o * P;
            uint32_t g = o / Og;
            for (oy = 0; oy < P; oy++) yo[oy] = 0;
            for (c = 0; c < Cg; c += FL_FAST_TAPS) {
                uint32_t k = Cg - c < FL_FAST_TAPS ? Cg - c : FL_FAST_TAPS;
                fl_wrow(w, wbase + o * Cg + c, k, wk);
                fl_mac_cols(wk, k, x + (g * Cg + c) * P, P, P, yo);
            }
            if (bias) { float b = fl_wget(bias, o); for (oy = 0; oy < P; oy++) yo[oy] += b; }
        }
        return;
    }
    /* rows narrower than a block of 8 (the per-call and edge costs outweigh the blocks: DS-CNN's
     * 25x5 maps) take the portable loop below */
    if (KH * KW <= FL_FAST_TAPS && OW >= FL_FAST_MIN_OW) {
        /* channel by channel, its kernel plane widened once, the output rows by blocks (rows.c) */
        float wk[FL_FAST_TAPS];
        for (o = 0; o < O; o++) {
            float *yo = y + o * P;
            uint32_t g = o / Og;
            for (oy = 0; oy < P; oy++) yo[oy] = 0;
            for (c = 0; c < Cg; c++) {
                fl_wrow(w, wbase + (o * Cg + c) * KH * KW, KH * KW, wk);
                fl_conv_rows(x + (g * Cg + c) * H * W, H, W, wk, KH, KW, strides, pads, dil, 0, OH, OW, yo);
            }
            if (bias) { float b = fl_wget(bias, o); for (oy = 0; oy < P; oy++) yo[oy] += b; }
        }
        return;
    }
#endif
    for (o = 0; o < O; o++) {
        float *yo = y + o * P;
        uint32_t g = o / Og;
        for (oy = 0; oy < P; oy++) yo[oy] = 0;
        for (c = 0; c < Cg; c++) {
            const float *xc = x + (g * Cg + c) * H * W;
            for (ky = 0; ky < KH; ky++) {
                for (kx = 0; kx < KW; kx++) {
                    float wv = fl_wget(w, wbase + ((o * Cg + c) * KH + ky) * KW + kx);
                    int32_t ox0, ox1;
                    int32_t offx = (int32_t)kx * dil[1] - pads[1];
                    if (wv == 0) continue;
                    /* ox range with 0 <= ox*sw + offx < W */
                    ox0 = offx >= 0 ? 0 : (-offx + strides[1] - 1) / strides[1];
                    ox1 = (int32_t)W - offx <= 0 ? 0 : ((int32_t)W - offx - 1) / strides[1] + 1;
                    if (ox1 > (int32_t)OW) ox1 = (int32_t)OW;
                    for (oy = 0; oy < OH; oy++) {
                        int32_t iy = (int32_t)oy * strides[0] - pads[0] + (int32_t)ky * dil[0];
                        const float *xr;
                        float *yr;
                        if (iy < 0 || iy >= (int32_t)H) continue;
                        xr = xc + (uint32_t)iy * W;
                        yr = yo + oy * OW;
                        for (ox = (uint32_t)ox0; (int32_t)ox < ox1; ox++) yr[ox] += wv * xr[(int32_t)ox * strides[1] + offx];
                    }
                }
            }
        }
        if (bias) { float b = fl_wget(bias, o); for (oy = 0; oy < P; oy++) yo[oy] += b; }
    }
}

/* y[O, HW] = w[O, C] x[C, HW] (+ bias) */
void fl_conv1x1(const float *x, uint32_t C, uint32_t HW, const fl_tensor *w, uint32_t O, const fl_tensor *bias, float *y) {
    uint32_t o, c, p;
#if FL_FAST_KERNELS
    {
        /* output channel by channel, its weights widened a run at a time, the pixels by blocks */
        float wk[FL_FAST_TAPS];
        for (o = 0; o < O; o++) {
            float *yo = y + o * HW;
            for (p = 0; p < HW; p++) yo[p] = 0;
            for (c = 0; c < C; c += FL_FAST_TAPS) {
                uint32_t k = C - c < FL_FAST_TAPS ? C - c : FL_FAST_TAPS;
                fl_wrow(w, o * C + c, k, wk);
                fl_mac_cols(wk, k, x + c * HW, HW, HW, yo);
            }
            if (bias) { float b = fl_wget(bias, o); for (p = 0; p < HW; p++) yo[p] += b; }
        }
        return;
    }
#endif
    for (o = 0; o < O; o++) {
        float *yo = y + o * HW;
        for (p = 0; p < HW; p++) yo[p] = 0;
        for (c = 0; c < C; c++) {
            float wv = fl_wget(w, o * C + c);
            const float *xc = x + c * HW;
            if (wv == 0) continue;
            for (p = 0; p < HW; p++) yo[p] += wv * xc[p];
        }
        if (bias) { float b = fl_wget(bias, o); for (p = 0; p < HW; p++) yo[p] += b; }
    }
}

int fl_conv_prepare(fl_node *n) {
    fl_attrs *a = n->a;
    uint32_t H = 0, W = 0, OH = 0, OW = 0, out[FL_MAX_RANK];
    fl_tensor *w, *u, *core, *uo, *kh, *kw;
    uint32_t C, O, KH, KW, r1 = 0, r2 = 0, G = (uint32_t)a->group;
    CHECK(fl_one_input(n)); CHECK(fl_conv_attrs_ok(a));
    if (n->op != OP_CONV2D && G != 1) return fl_bad("grouped conv cannot be factorised");
    if (n->op == OP_CONV2D) {
        CHECK(fl_only_roles(n, 1u << ROLE_WEIGHT | 1u << ROLE_BIAS, 0)); CHECK(fl_need_role(n, ROLE_WEIGHT, &w));
        if (w->rank != 4) return fl_bad("weight must be 4-D");
        O = w->dims[0]; C = w->dims[1] * G; KH = w->dims[2]; KW = w->dims[3];
        if (O % G || C / G != w->dims[1] || C > 0xFFFFu * 0xFFu) return fl_bad("group does not divide the channels");
    } else if (n->op == OP_SVD_CONV2D) {
        CHECK(fl_only_roles(n, 1u << ROLE_U | 1u << ROLE_V | 1u << ROLE_BIAS, 0));
        CHECK(fl_need_role(n, ROLE_V, &w)); CHECK(fl_need_role(n, ROLE_U, &u));
        if (w->rank != 4 || u->rank != 2 || u->dims[1] != w->dims[0]) return fl_bad("v [r, I, kh, kw] and u [O, r] do not match");
        r1 = w->dims[0]; C = w->dims[1]; KH = w->dims[2]; KW = w->dims[3]; O = u->dims[0];
    } else if (n->op == OP_TUCKER2_CONV2D) {
        CHECK(fl_only_roles(n, 1u << ROLE_U_IN | 1u << ROLE_CORE | 1u << ROLE_U_OUT | 1u << ROLE_BIAS, 0));
        CHECK(fl_need_role(n, ROLE_U_IN, &u)); CHECK(fl_need_role(n, ROLE_CORE, &core)); CHECK(fl_need_role(n, ROLE_U_OUT, &uo));
        if (u->rank != 2 || core->rank != 4 || uo->rank != 2) return fl_bad("u_in, u_out must be 2-D and core 4-D");
        r1 = u->dims[0]; C = u->dims[1]; r2 = core->dims[0];
        if (core->dims[1] != r1 || uo->dims[1] != r2) return fl_bad("tucker factors do not match");
        KH = core->dims[2]; KW = core->dims[3]; O = uo->dims[0];
    } else {
        CHECK(fl_only_roles(n, 1u << ROLE_A_IN | 1u << ROLE_K_H | 1u << ROLE_K_W | 1u << ROLE_A_OUT | 1u << ROLE_BIAS, 0));
        CHECK(fl_need_role(n, ROLE_A_IN, &u)); CHECK(fl_need_role(n, ROLE_K_H, &kh)); CHECK(fl_need_role(n, ROLE_K_W, &kw)); CHECK(fl_need_role(n, ROLE_A_OUT, &uo));
        if (u->rank != 2 || kh->rank != 2 || kw->rank != 2 || uo->rank != 2) return fl_bad("CP factors must be 2-D");
        r1 = u->dims[0]; C = u->dims[1];
        if (kh->dims[0] != r1 || kw->dims[0] != r1 || uo->dims[1] != r1) return fl_bad("CP factors do not match");
        KH = kh->dims[1]; KW = kw->dims[1]; O = uo->dims[0];
    }
    if (KH < 1 || KW < 1 || KH > FL_ATTR_MAX || KW > FL_ATTR_MAX || O < 1 || C < 1) return fl_bad("empty kernel");
    CHECK(fl_bias_ok(n, O));
    CHECK(fl_nchw(n, C, &H, &W));
    CHECK(fl_conv_out((int32_t)H, (int32_t)KH, a->strides[0], a->pads[0], a->pads[2], a->dil[0], &OH));
    CHECK(fl_conv_out((int32_t)W, (int32_t)KW, a->strides[1], a->pads[1], a->pads[3], a->dil[1], &OW));
    out[0] = 1; out[1] = O; out[2] = OH; out[3] = OW;
    CHECK(fl_set_out(n, 4, out));
    n->d[0] = C; n->d[1] = H; n->d[2] = W; n->d[3] = O; n->d[4] = OH; n->d[5] = OW; n->d[6] = r1; n->d[7] = r2;
    /* scratch (floats): svd r*OH*OW; tucker r1*H*W + r2*OH*OW; cp R*max(H*W, OH*OW) + R*OH*W */
    {
        uint64_t need = 0;
        if (n->op == OP_SVD_CONV2D) need = (uint64_t)r1 * OH * OW;
        else if (n->op == OP_TUCKER2_CONV2D) need = (uint64_t)r1 * H * W + (uint64_t)r2 * OH * OW;
        else if (n->op == OP_CP_CONV2D) {
            uint64_t hw = (uint64_t)H * W, ohw = (uint64_t)OH * OW;
            /* the vertical pass keeps the input width: its output is [R, OH, W] */
            need = (uint64_t)r1 * (hw > ohw ? hw : ohw) + (uint64_t)r1 * OH * W;
        }
        if (need * 4u > FL_ARENA_BYTES) return fl_fail("TOO_LARGE", "scratch larger than the arena");
        {
            /* multiply-adds of the stages, by the weights each output pixel meets */
            double px = (double)OH * OW, hw = (double)H * W, cg = (double)C / G;
            double wk = n->op == OP_CONV2D ? px * O * cg * KH * KW
                : n->op == OP_SVD_CONV2D ? px * r1 * C * KH * KW + px * O * r1
                : n->op == OP_TUCKER2_CONV2D ? hw * r1 * C + px * r2 * r1 * KH * KW + px * O * r2
                : hw * r1 * C + (double)OH * W * r1 * KH + px * r1 * KW + px * O * r1;
            CHECK(fl_work(wk));
        }
        n->scratch_need = (uint32_t)need * 4u;
    }
    return 0;
}

void fl_conv2d_eval(const fl_node *n, const fl_ctx *cx) {
    const fl_attrs *a = n->a;
    float *y = fl_vp(n->out, cx);
    const float *x = fl_x(n, cx);
    fl_tensor *w = T(n, ROLE_WEIGHT);
    fl_conv(x, n->d[0], n->d[1], n->d[2], w, 0, n->d[3], (uint32_t)a->group, w->dims[2], w->dims[3], a, a->strides, a->pads, a->dil, n->d[4], n->d[5], T(n, ROLE_BIAS), y);
}

void fl_svd_conv2d_eval(const fl_node *n, const fl_ctx *cx) {
    const fl_attrs *a = n->a;
    float *y = fl_vp(n->out, cx);
    const float *x = fl_x(n, cx);
    float *scr = fl_scratch(n);
    fl_tensor *v = T(n, ROLE_V), *u = T(n, ROLE_U);
    uint32_t R = n->d[6], P = n->d[4] * n->d[5];
    fl_conv(x, n->d[0], n->d[1], n->d[2], v, 0, R, 1, v->dims[2], v->dims[3], a, a->strides, a->pads, a->dil, n->d[4], n->d[5], NULL, scr);
    fl_conv1x1(scr, R, P, u, n->d[3], T(n, ROLE_BIAS), y);
}

void fl_tucker2_conv2d_eval(const fl_node *n, const fl_ctx *cx) {
    const fl_attrs *a = n->a;
    float *y = fl_vp(n->out, cx);
    const float *x = fl_x(n, cx);
    float *scr = fl_scratch(n);
    fl_tensor *ui = T(n, ROLE_U_IN), *core = T(n, ROLE_CORE), *uo = T(n, ROLE_U_OUT);
    uint32_t r1 = n->d[6], r2 = n->d[7], HW = n->d[1] * n->d[2], P = n->d[4] * n->d[5];
    float *s2 = scr + r1 * HW;
    fl_conv1x1(x, n->d[0], HW, ui, r1, NULL, scr);
    fl_conv(scr, r1, n->d[1], n->d[2], core, 0, r2, 1, core->dims[2], core->dims[3], a, a->strides, a->pads, a->dil, n->d[4], n->d[5], NULL, s2);
    fl_conv1x1(s2, r2, P, uo, n->d[3], T(n, ROLE_BIAS), y);
}

void fl_cp_conv2d_eval(const fl_node *n, const fl_ctx *cx) {
    const fl_attrs *a = n->a;
    float *y = fl_vp(n->out, cx);
    const float *x = fl_x(n, cx);
    float *scr = fl_scratch(n);
    fl_tensor *ai = T(n, ROLE_A_IN), *kh = T(n, ROLE_K_H), *kw = T(n, ROLE_K_W), *ao = T(n, ROLE_A_OUT);
    uint32_t R = n->d[6], H = n->d[1], W = n->d[2], OH = n->d[4], OW = n->d[5], HW = H * W, P = OH * OW;
    uint32_t big = HW > P ? HW : P;
    float *sa = scr, *sv = scr + R * big;
    int32_t sv_str[2], sv_pad[4], sv_dil[2], sh_str[2], sh_pad[4], sh_dil[2];
    sv_str[0] = a->strides[0]; sv_str[1] = 1; sv_pad[0] = a->pads[0]; sv_pad[1] = 0; sv_pad[2] = a->pads[2]; sv_pad[3] = 0; sv_dil[0] = a->dil[0]; sv_dil[1] = 1;
    sh_str[0] = 1; sh_str[1] = a->strides[1]; sh_pad[0] = 0; sh_pad[1] = a->pads[1]; sh_pad[2] = 0; sh_pad[3] = a->pads[3]; sh_dil[0] = 1; sh_dil[1] = a->dil[1];
    fl_conv1x1(x, n->d[0], HW, ai, R, NULL, sa);                                                        /* [R, H, W] */
    fl_conv(sa, R, H, W, kh, 0, R, R, kh->dims[1], 1, a, sv_str, sv_pad, sv_dil, OH, W, NULL, sv);      /* [R, OH, W] */
    fl_conv(sv, R, OH, W, kw, 0, R, R, 1, kw->dims[1], a, sh_str, sh_pad, sh_dil, OH, OW, NULL, sa);    /* [R, OH, OW] */
    fl_conv1x1(sa, R, P, ao, n->d[3], T(n, ROLE_BIAS), y);
}
