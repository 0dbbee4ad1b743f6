/* ops/resize.c: ONNX Resize / Upsample, nearest and linear, over the last two axes; each output
 * coordinate maps back to the input by the ONNX coordinate transform of its axis (as
 * runtime/layers/resize.ts). */
#include <math.h>
#include "op.h"

enum { MODE_NEAREST, MODE_LINEAR };
enum { CO_HALF_PIXEL, CO_PYTORCH_HALF_PIXEL, CO_ALIGN_CORNERS, CO_ASYMMETRIC, CO_TF_HALF_PIXEL_FOR_NN };
enum { NE_ROUND_PREFER_FLOOR, NE_ROUND_PREFER_CEIL, NE_FLOOR, NE_CEIL };

/* resize{scales, mode, coord, nearest}: d[0] mode | coord << 4 | nearest << 8, d[1], d[2] the scales
 * of the last two axes (fl_getf), d[3..6] H, W, OH, OW, d[7] planes */
int fl_resize_prepare(fl_node *n) {
    static const char *const modes[2] = { "nearest", "linear" };
    static const char *const coords[5] = { "half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn" };
    static const char *const nearests[4] = { "round_prefer_floor", "round_prefer_ceil", "floor", "ceil" };
    fl_value *x;
    double sc[FL_MAX_RANK];
    uint32_t out[FL_MAX_RANK];
    uint8_t len, mode = MODE_NEAREST, coord = CO_HALF_PIXEL, nearest = NE_ROUND_PREFER_FLOOR, a;
    int got, r;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 0, 0));
    x = X(n, 0);
    r = x->rank;
    if (r < 1) return fl_bad("resize input is a scalar");
    if ((got = fl_attr_nums(n, "scales", sc, FL_MAX_RANK, &len)) < 0) return -1;
    if (!got || len != r) return fl_bad("scales must have one value per input axis");
    if (fl_attr_str(n, "mode", modes, 2, &mode) < 0 || fl_attr_str(n, "coord", coords, 5, &coord) < 0 ||
        fl_attr_str(n, "nearest", nearests, 4, &nearest) < 0) return -1;
    for (a = 0; a < r; a++) {
        double d;
        if (!(sc[a] > 0) || sc[a] > 3.4028234663852886e38) return fl_bad("scales must be finite and > 0");
        if (a + 2 < r && sc[a] != 1) return fl_bad("only the last two axes may be resized");
        d = floor(x->dims[a] * sc[a] + 1e-6);
        if (d < 1) return fl_bad("resize output is empty");
        if (d > FL_ARENA_BYTES) return fl_fail("TOO_LARGE", "an activation is larger than the arena");
        out[a] = (uint32_t)d;
    }
    CHECK(fl_set_out(n, (uint8_t)r, out));
    n->d[0] = (uint32_t)mode | (uint32_t)coord << 4 | (uint32_t)nearest << 8;
    n->d[3] = r >= 2 ? x->dims[r - 2] : 1; n->d[4] = x->dims[r - 1];
    n->d[5] = r >= 2 ? out[r - 2] : 1; n->d[6] = out[r - 1];
    n->d[7] = x->numel / (n->d[3] * n->d[4]);
    fl_setf(n, 1, r >= 2 ? (float)sc[r - 2] : 1.0f); fl_setf(n, 2, (float)sc[r - 1]);
    return 0;
}

static float source(uint32_t coord, uint32_t o, float scale, uint32_t in, uint32_t out) {
    switch (coord) {
    case CO_HALF_PIXEL: return ((float)o + 0.5f) / scale - 0.5f;
    case CO_PYTORCH_HALF_PIXEL: return out > 1 ? ((float)o + 0.5f) / scale - 0.5f : 0;
    case CO_ALIGN_CORNERS: return out == 1 ? 0 : (float)(o * (in - 1)) / (float)(out - 1);
    case CO_ASYMMETRIC: return (float)o / scale;
    default: return ((float)o + 0.5f) / scale; /* tf_half_pixel_for_nn */
    }
}

/* the two source indices and the second one's weight of output position o along one axis */
static void taps(const fl_node *n, uint32_t o, float scale, uint32_t in, uint32_t out, uint32_t *i0, uint32_t *i1, float *w1) {
    float c = source((n->d[0] >> 4) & 15u, o, scale, in, out), f;
    if ((n->d[0] & 15u) == MODE_NEAREST) {
        int32_t i;
        switch (n->d[0] >> 8) {
        case NE_FLOOR: i = (int32_t)floorf(c); break;
        case NE_CEIL: i = (int32_t)ceilf(c); break;
        case NE_ROUND_PREFER_CEIL: i = (int32_t)floorf(c + 0.5f); break;
        default: i = c == floorf(c) + 0.5f ? (int32_t)floorf(c) : (int32_t)floorf(c + 0.5f); break;
        }
        i = i < 0 ? 0 : i > (int32_t)in - 1 ? (int32_t)in - 1 : i;
        *i0 = *i1 = (uint32_t)i;
        *w1 = 0;
        return;
    }
    c = c < 0 ? 0 : c > (float)(in - 1) ? (float)(in - 1) : c;
    f = floorf(c);
    *i0 = (uint32_t)f;
    *i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
    *w1 = c - f;
}

void fl_resize_eval(const fl_node *n, const fl_ctx *cx) {
    const float *x = fl_x(n, cx);
    float *y = fl_vp(n->out, cx);
    uint32_t H = n->d[3], W = n->d[4], OH = n->d[5], OW = n->d[6], p, oy, ox, k = 0;
    for (p = 0; p < n->d[7]; p++) {
        const float *base = x + p * H * W;
        for (oy = 0; oy < OH; oy++) {
            uint32_t y0, y1;
            float wy;
            const float *r0, *r1;
            taps(n, oy, fl_getf(n, 1), H, OH, &y0, &y1, &wy);
            r0 = base + y0 * W;
            r1 = base + y1 * W;
            for (ox = 0; ox < OW; ox++) {
                uint32_t c0, c1;
                float wx, top, bottom;
                taps(n, ox, fl_getf(n, 2), W, OW, &c0, &c1, &wx);
                top = r0[c0] * (1 - wx) + r0[c1] * wx;
                bottom = r1[c0] * (1 - wx) + r1[c1] * wx;
                y[k++] = top * (1 - wy) + bottom * wy;
            }
        }
    }
}
