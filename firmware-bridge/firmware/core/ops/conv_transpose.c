/* ops/conv_transpose.c: conv_transpose2d (ONNX ConvTranspose with explicit pads): each input pixel
 * scatters its kernel-weighted values into the output, as runtime/layers/convTranspose2d.ts. */
#include "op.h"

/* weight [C, O/group, KH, KW], bias? [O]; d[] = C, H, W, O, OH, OW, KH, KW */
int fl_conv_transpose_prepare(fl_node *n) {
    fl_attrs *a = n->a;
    fl_tensor *w;
    int32_t op[2] = { 0, 0 };
    uint8_t len;
    uint32_t C, H, W, O, G = (uint32_t)a->group, KH, KW, out[4], k;
    int got;
    CHECK(fl_one_input(n)); CHECK(fl_conv_attrs_ok(a));
    CHECK(fl_only_roles(n, 1u << ROLE_WEIGHT | 1u << ROLE_BIAS, 0)); CHECK(fl_need_role(n, ROLE_WEIGHT, &w));
    if (w->rank != 4) return fl_bad("weight must be 4-D");
    C = w->dims[0]; KH = w->dims[2]; KW = w->dims[3];
    if (C % G || w->dims[1] < 1 || KH < 1 || KW < 1 || KH > FL_ATTR_MAX || KW > FL_ATTR_MAX) return fl_bad("weight does not split into the groups");
    O = w->dims[1] * G;
    if ((got = fl_attr_ints(n, "output_padding", op, 2, &len)) < 0) return -1;
    if (got && len != 2) return fl_bad("output_padding must be 2 integers");
    CHECK(fl_bias_ok(n, O));
    CHECK(fl_nchw(n, C, &H, &W));
    for (k = 0; k < 2; k++) {
        int32_t st = a->strides[k], dl = a->dil[k];
        int64_t sz = (int64_t)st * ((int64_t)(k ? W : H) - 1) + op[k] + (int64_t)((k ? KW : KH) - 1) * dl + 1 - a->pads[k] - a->pads[k + 2];
        if (op[k] < 0 || op[k] >= (st > dl ? st : dl)) return fl_bad("output_padding must be below the stride or the dilation");
        if (sz < 1) return fl_bad("conv_transpose2d output is empty");
        if (sz > FL_ARENA_BYTES) return fl_fail("TOO_LARGE", "an activation is larger than the arena");
        out[2 + k] = (uint32_t)sz;
    }
    out[0] = 1; out[1] = O;
    CHECK(fl_set_out(n, 4, out));
    CHECK(fl_work((double)C * w->dims[1] * H * W * KH * KW + (double)O * out[2] * out[3]));
    n->d[0] = C; n->d[1] = H; n->d[2] = W; n->d[3] = O; n->d[4] = out[2]; n->d[5] = out[3]; n->d[6] = KH; n->d[7] = KW;
    return 0;
}

void fl_conv_transpose_eval(const fl_node *n, const fl_ctx *cx) {
    const fl_attrs *a = n->a;
    const float *x = fl_x(n, cx);
    float *y = fl_vp(n->out, cx);
    const fl_tensor *w = T(n, ROLE_WEIGHT), *b = T(n, ROLE_BIAS);
    uint32_t C = n->d[0], H = n->d[1], W = n->d[2], O = n->d[3], OH = n->d[4], OW = n->d[5], KH = n->d[6], KW = n->d[7];
    uint32_t G = (uint32_t)a->group, Cg = C / G, Og = O / G, g, ci, og, o, iy, ix, ky, kx, i;
    int32_t sh = a->strides[0], sw = a->strides[1], dh = a->dil[0], dw = a->dil[1], pt = a->pads[0], pl = a->pads[1];
    for (o = 0; o < O; o++) {
        float bv = b ? fl_wget(b, o) : 0;
        for (i = 0; i < OH * OW; i++) y[o * OH * OW + i] = bv;
    }
    for (g = 0; g < G; g++)
        for (ci = 0; ci < Cg; ci++) {
            uint32_t c = g * Cg + ci;
            const float *xc = x + c * H * W;
            for (og = 0; og < Og; og++) {
                float *yo = y + (g * Og + og) * OH * OW;
                uint32_t wo = (c * Og + og) * KH * KW;
                for (iy = 0; iy < H; iy++)
                    for (ky = 0; ky < KH; ky++) {
                        int32_t oy = (int32_t)iy * sh - pt + (int32_t)ky * dh;
                        if (oy < 0 || oy >= (int32_t)OH) continue;
                        for (ix = 0; ix < W; ix++) {
                            float v = xc[iy * W + ix];
                            for (kx = 0; kx < KW; kx++) {
                                int32_t ox = (int32_t)ix * sw - pl + (int32_t)kx * dw;
                                if (ox < 0 || ox >= (int32_t)OW) continue;
                                yo[(uint32_t)oy * OW + (uint32_t)ox] += v * fl_wget(w, wo + ky * KW + kx);
                            }
                        }
                    }
            }
        }
}
