/* ops/flexact.c: flexact, the flexible-activation layer of a decoupled dense -> act -> dense pair
 * (runtime/layers/flexact.ts):
 *   z = x v^T [rows, r];  basis poly: g_b(z) = sum_{d=1..D} coeffs[b, d-1] z^d by Horner (D <= 16,
 *   a bounded loop); basis bspline: g_b(z) = sum_i coeffs[b, i] N_i(z), D >= 4 cubic B-splines on
 *   uniform clamped knots over range[b] (runtime/layers/flexactSpline.ts: the four non-zero N_i by
 *   the Cox-de Boor triangle, loops of at most 3); continued along its tangent at lo_b / hi_b
 *   outside range[b] when there is one; y = g(z) w^T + bias.
 * Horner runs in double, as the runtime's reference does; the two products accumulate in f32 as
 * every dense kernel here. Scratch: z for every row, rows * r floats (the kind's mcu scratchFloats). */
#include "op.h"

#define FLEXACT_MAX_DEGREE 16u   /* runtime/layers/flexact.ts FLEXACT_MAX_DEGREE */

int fl_flexact_prepare(fl_node *n) {
    static const char *const bases[] = { "poly", "bspline" };
    fl_tensor *v, *w, *c, *rg;
    uint32_t rows, R, b, two[2];
    uint8_t basis = 0;
    double deg = 0;
    int got;
    CHECK(fl_one_input(n));
    CHECK(fl_only_roles(n, 1u << ROLE_V | 1u << ROLE_W | 1u << ROLE_COEFFS | 1u << ROLE_BIAS | 1u << ROLE_RANGE, 0));
    CHECK(fl_need_role(n, ROLE_V, &v)); CHECK(fl_need_role(n, ROLE_W, &w)); CHECK(fl_need_role(n, ROLE_COEFFS, &c));
    if (fl_attr_str(n, "basis", bases, 2, &basis) < 0) return -1;
    if ((got = fl_attr_num(n, "degree", &deg)) < 0) return -1;
    if (!got) return fl_bad("flexact needs attribute degree");
    if (!(deg >= 1 && deg <= FLEXACT_MAX_DEGREE) || deg != (double)(uint32_t)deg) return fl_bad("flexact degree must be an integer 1..16");
    if (v->rank != 2 || w->rank != 2 || w->dims[1] != v->dims[0]) return fl_bad("v [r, in] and w [out, r] do not match");
    R = v->dims[0];
    two[0] = R; two[1] = (uint32_t)deg;
    if (!fl_shape_is(c, 2, two)) return fl_bad("coeffs must be [r, degree]");
    rg = T(n, ROLE_RANGE);
    if (basis == 1 && (deg < 4 || !rg)) return fl_bad("flexact bspline needs degree >= 4 and a range");
    if (rg) {
        two[1] = 2;
        if (!fl_shape_is(rg, 2, two)) return fl_bad("range must be [r, 2]");
        for (b = 0; b < R; b++) {
            float lo = fl_wget(rg, 2u * b), hi = fl_wget(rg, 2u * b + 1u);
            /* also false for NaN; an infinite end would make the tangent's step infinite */
            if (!(lo <= hi) || !(lo >= -3.4028234663852886e38f && hi <= 3.4028234663852886e38f)) return fl_bad("a flexact range is not a finite [lo, hi]");
        }
    }
    CHECK(fl_bias_ok(n, w->dims[0]));
    CHECK(fl_dense_shape(n, v->dims[1], w->dims[0], &rows));
    CHECK(fl_work((double)rows * R * ((double)v->dims[1] + w->dims[0] + 2.0 * deg)));
    n->d[0] = rows; n->d[1] = v->dims[1]; n->d[2] = R; n->d[3] = w->dims[0]; n->d[4] = (uint32_t)deg; n->d[5] = basis;
    n->scratch_need = F4 * rows * R;
    return 0;
}

/* knot j of K cubic B-splines clamped on [lo, lo + M h]: lo + clamp(j - 3, 0, M) h */
static double knot(int32_t j, double lo, double h, int32_t M) {
    return lo + (double)(j < 3 ? 0 : j - 3 > M ? M : j - 3) * h;
}

/* g_b(e) and g_b'(e) of a B-spline branch, e in [lo, hi]: the four non-zero B-splines by the
 * Cox-de Boor triangle, their derivatives from its degree-2 row (flexactSpline.ts splineBasis) */
static double spline(const fl_tensor *c, uint32_t o, uint32_t K, double lo, double hi, double e, double *slope) {
    double N[4] = { 1, 0, 0, 0 }, N2[3] = { 0, 0, 0 }, left[4] = { 0, 0, 0, 0 }, right[4] = { 0, 0, 0, 0 };
    double h, saved, temp, g = 0, a, b;
    int32_t M = (int32_t)K - 3, s, j, r, k, i, span;
    if (!(hi > lo)) { *slope = 0; return fl_wget(c, o); }
    h = (hi - lo) / M;
    span = (int32_t)((e - lo) / h);
    s = 3 + (span < 0 ? 0 : span > M - 1 ? M - 1 : span);
    for (j = 1; j <= 3; j++) {
        left[j] = e - knot(s + 1 - j, lo, h, M);
        right[j] = knot(s + j, lo, h, M) - e;
        saved = 0;
        for (r = 0; r < j; r++) {
            temp = N[r] / (right[r + 1] + left[j - r]);
            N[r] = saved + right[r + 1] * temp;
            saved = left[j - r] * temp;
        }
        N[j] = saved;
        if (j == 2) { N2[0] = N[0]; N2[1] = N[1]; N2[2] = N[2]; }
    }
    *slope = 0;
    for (k = 0; k <= 3; k++) {
        double ck;
        i = s - 3 + k;
        a = k >= 1 ? N2[k - 1] / (knot(i + 3, lo, h, M) - knot(i, lo, h, M)) : 0;
        b = k <= 2 ? N2[k] / (knot(i + 4, lo, h, M) - knot(i + 1, lo, h, M)) : 0;
        ck = fl_wget(c, o + (uint32_t)i);
        g += ck * N[k];
        *slope += ck * 3.0 * (a - b);
    }
    return g;
}

/* g_b(z) of branch b: Horner over the D coefficients (or the B-splines), the tangent beyond the range */
static float branch(const fl_tensor *c, const fl_tensor *rg, uint32_t b, uint32_t D, uint32_t basis, float zf) {
    double z = zf, e = z, acc = 0, g;
    uint32_t d, o = b * D;
    if (rg) {
        double lo = fl_wget(rg, 2u * b), hi = fl_wget(rg, 2u * b + 1u);
        e = z < lo ? lo : z > hi ? hi : z;
        if (basis == 1) {
            double slope;
            g = spline(c, o, D, lo, hi, e, &slope);
            return (float)(g + slope * (z - e));
        }
    }
    for (d = D; d-- > 0;) acc = acc * e + fl_wget(c, o + d);
    g = acc * e;
    if (e != z) {
        double slope = 0;
        for (d = D; d-- > 0;) slope = slope * e + (double)(d + 1u) * fl_wget(c, o + d);
        g += slope * (z - e);
    }
    return (float)g;
}

void fl_flexact_eval(const fl_node *n, const fl_ctx *cx) {
    float *y = fl_vp(n->out, cx);
    const float *x = fl_x(n, cx);
    float *z = fl_scratch(n);
    fl_tensor *v = T(n, ROLE_V), *w = T(n, ROLE_W), *c = T(n, ROLE_COEFFS), *rg = T(n, ROLE_RANGE), *bias = T(n, ROLE_BIAS);
    uint32_t r, o, rows = n->d[0], inF = n->d[1], R = n->d[2], outF = n->d[3], D = n->d[4], basis = n->d[5];
    int u8 = cx->u8 && fl_is_ext(n->in[0]);
    for (r = 0; r < rows; r++) {
        float *zr = z + r * R;
        for (o = 0; o < R; o++) {
            float s = u8 ? fl_wdot_u8(v, o * inF, cx->u8 + r * inF, inF, cx->div) : fl_wdot(v, o * inF, x + r * inF, inF);
            zr[o] = branch(c, rg, o, D, basis, s);
        }
        for (o = 0; o < outF; o++) y[r * outF + o] = fl_wdot(w, o * R, zr, R);
    }
    fl_add_bias(y, rows, outF, bias);
}
