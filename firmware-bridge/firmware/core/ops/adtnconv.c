/* ops/adtnconv.c: adtn_conv2d (runtime/layers/adtnConv2d.ts), a conv (group 1) whose kernel
 * W [T, S, KH, KW] is the first T*S*KH*KW entries, row-major, of the state of an ADTN circuit on Q
 * indices of dimension 2 (index 0 the most significant bit): the product of the Q start vectors
 * start [Q, 2], then the gates [G, D, D] (D = 2^arity, arity 1..4) layer by layer, gate i at index p
 * mapping the state seen as [2^p, D, 2^(Q-p-arity)] by s'[a, g, b] = sum_h G[g, h] s[a, h, b].
 * A conv kernel is small (LeNet-5's larger one: 2,400 floats, Q 12), and each inference meets every
 * kernel entry OH*OW times, so W is formed once, at load, in place in the node's tables (2^Q floats:
 * the state; the gate's D inputs of one column kept on the stack), in f32; each inference is then the
 * plain conv over it, with the loops of fl_conv (conv.c; rows.c where FL_FAST_KERNELS). The Node
 * runtime forms W from the same circuit with f64 sums, so the two agree to f32 rounding, not bit for
 * bit. Tables: kh, kw, then the state (runtime/plan/mcuTables.ts counts the same). */
#include "op.h"

#define FL_ADTNC_MAX_Q 26

typedef struct { uint32_t KH, KW; } fl_adtnc;

static float *adtnc_w(const fl_adtnc *p) { return (float *)(void *)((uint8_t *)(void *)(fl_adtnc *)p + sizeof(fl_adtnc)); }

/* one gate on the state s (2^Q floats): A = 2^p columns before it, B = 2^(Q-p-arity) after */
static void adtnc_gate(float *s, const fl_tensor *gates, uint32_t gi, uint32_t D, uint32_t A, uint32_t B) {
    float t[16], u[16];
    uint32_t a, b, g, h;
    for (a = 0; a < A; a++)
        for (b = 0; b < B; b++) {
            float *col = s + (a * D) * B + b;
            for (h = 0; h < D; h++) t[h] = col[h * B];
            for (g = 0; g < D; g++) {
                float acc = 0.0f;
                for (h = 0; h < D; h++) acc += fl_wget(gates, (gi * D + g) * D + h) * t[h];
                u[g] = acc;
            }
            for (g = 0; g < D; g++) col[g * B] = u[g];
        }
}

int fl_adtnc_prepare(fl_node *n) {
    static const char *const pairings[] = { "brickwall", "fixed" };
    fl_attrs *a = n->a;
    fl_tensor *st, *gt;
    fl_adtnc *p;
    int32_t ws[4];
    uint8_t len = 0, pairing = 0;
    double depth = 0, arity = 0;
    uint32_t T0, S, KH, KW, H = 0, W = 0, OH = 0, OW = 0, out[FL_MAX_RANK], Q = 0, k, m, i, G = 0, D, dims[3], total, N, len2;
    uint64_t bytes;
    float *s;
    CHECK(fl_one_input(n)); CHECK(fl_conv_attrs_ok(a));
    if (a->group != 1) return fl_bad("adtn_conv2d takes group 1");
    CHECK(fl_only_roles(n, (uint32_t)1 << ROLE_START | (uint32_t)1 << ROLE_GATES | (uint32_t)1 << ROLE_BIAS, 0));
    CHECK(fl_need_role(n, ROLE_START, &st)); CHECK(fl_need_role(n, ROLE_GATES, &gt));
    if (fl_attr_ints(n, "weight_shape", ws, 4, &len) != 1 || len != 4 || ws[0] < 1 || ws[1] < 1 || ws[2] < 1 || ws[3] < 1) return fl_bad("adtn weight_shape [T, S, kh, kw] missing");
    if (fl_attr_num(n, "depth", &depth) != 1 || depth < 1 || depth > 4096) return fl_bad("adtn depth missing or out of range");
    if (fl_attr_num(n, "arity", &arity) != 1 || arity < 1 || arity > 4) return fl_bad("adtn arity missing or out of range");
    if (fl_attr_str(n, "pairing", pairings, 2, &pairing) != 1) return fl_bad("adtn pairing missing");
    T0 = (uint32_t)ws[0]; S = (uint32_t)ws[1]; KH = (uint32_t)ws[2]; KW = (uint32_t)ws[3];
    if (KH > FL_ATTR_MAX || KW > FL_ATTR_MAX || (uint64_t)T0 * S * KH * KW > ((uint32_t)1 << FL_ADTNC_MAX_Q)) return fl_bad("adtn weight_shape: more than 2^26 weights");
    total = T0 * S * KH * KW;
    while (((uint32_t)1 << Q) < total) Q++;
    if (Q < (uint32_t)arity) Q = (uint32_t)arity;
    D = 1u << (uint32_t)arity;
    for (m = 0; m < (uint32_t)depth; m++)
        for (k = pairing == 0 ? m % (uint32_t)arity : 0u; k + (uint32_t)arity <= Q; k += (uint32_t)arity) G++;
    dims[0] = Q; dims[1] = 2;
    if (!fl_shape_is(st, 2, dims)) return fl_bad("adtn start must be [Q, 2]");
    dims[0] = G; dims[1] = D; dims[2] = D;
    if (!fl_shape_is(gt, 3, dims)) return fl_bad("adtn gates must be [G, 2^arity, 2^arity] for its depth and pairing");
    CHECK(fl_bias_ok(n, T0));
    CHECK(fl_nchw(n, S, &H, &W));
    CHECK(fl_conv_out((int32_t)H, (int32_t)KH, a->strides[0], a->pads[0], a->pads[2], a->dil[0], &OH));
    CHECK(fl_conv_out((int32_t)W, (int32_t)KW, a->strides[1], a->pads[1], a->pads[3], a->dil[1], &OW));
    out[0] = 1; out[1] = T0; out[2] = OH; out[3] = OW;
    CHECK(fl_set_out(n, 4, out));
    N = 1u << Q;
    bytes = sizeof(fl_adtnc) + (uint64_t)N * 4u;
    if (bytes > FL_ARENA_BYTES) return fl_fail("TOO_LARGE", "adtn_conv2d: its circuit's state does not fit the arena");
    /* the load (the product state, every gate over the state) and each inference's conv */
    CHECK(fl_work((double)N * (2.0 + (double)G * D) + (double)OH * OW * total));
    p = (fl_adtnc *)fl_op_params(n, (uint32_t)bytes);
    if (!p) return -1;
    p->KH = KH; p->KW = KW;
    s = adtnc_w(p);
    /* the product state, one index at a time, in place from the end */
    s[0] = 1.0f;
    for (k = 0, len2 = 1; k < Q; k++, len2 *= 2u) {
        float va = fl_wget(st, 2u * k), vb = fl_wget(st, 2u * k + 1u);
        for (i = len2; i-- > 0;) { float v = s[i]; s[2u * i] = v * va; s[2u * i + 1u] = v * vb; }
    }
    i = 0;
    for (m = 0; m < (uint32_t)depth; m++)
        for (k = pairing == 0 ? m % (uint32_t)arity : 0u; k + (uint32_t)arity <= Q; k += (uint32_t)arity)
            adtnc_gate(s, gt, i++, D, 1u << k, 1u << (Q - k - (uint32_t)arity));
    n->d[0] = S; n->d[1] = H; n->d[2] = W; n->d[3] = T0; n->d[4] = OH; n->d[5] = OW;
    n->scratch_need = 0;
    return 0;
}

void fl_adtnc_eval(const fl_node *n, const fl_ctx *cx) {
    const fl_attrs *a = n->a;
    const fl_adtnc *p = (const fl_adtnc *)fl_params(n);
    const float *wk = adtnc_w(p), *x = fl_x(n, cx);
    float *y = fl_vp(n->out, cx);
    const fl_tensor *b = T(n, ROLE_BIAS);
    uint32_t S = n->d[0], H = n->d[1], W = n->d[2], O = n->d[3], OH = n->d[4], OW = n->d[5], KH = p->KH, KW = p->KW;
    uint32_t KK = KH * KW, P = OH * OW, o, c, ky, kx, oy, ox;
    for (o = 0; o < O; o++) {
        float *yo = y + o * P;
        for (oy = 0; oy < P; oy++) yo[oy] = 0;
        for (c = 0; c < S; c++) {
            const float *xc = x + c * H * W, *kc = wk + (o * S + c) * KK;
#if FL_FAST_KERNELS
            if (KK <= FL_FAST_TAPS && OW >= FL_FAST_MIN_OW) {
                fl_conv_rows(xc, H, W, kc, KH, KW, a->strides, a->pads, a->dil, 0, OH, OW, yo);
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
        }
        if (b) { float bv = fl_wget(b, o); for (oy = 0; oy < P; oy++) yo[oy] += bv; }
    }
}
