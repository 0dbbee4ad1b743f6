/* ops/norm.c: layer_norm over the trailing axes, and reduce (mean, sum, max over listed axes). */
#include <math.h>
#include "op.h"

/* layer_norm{axis = -1, epsilon = 1e-5}, scale? [D], bias? [D]: d[0] rows, d[1] D, d[2] epsilon */
int fl_layer_norm_prepare(fl_node *n) {
    fl_value *x;
    fl_tensor *sc = T(n, ROLE_SCALE), *b = T(n, ROLE_BIAS);
    int32_t ax = n->a->axis == INT32_MIN_SENTINEL ? -1 : n->a->axis;
    uint32_t D;
    double eps = 1e-5;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 1u << ROLE_SCALE | 1u << ROLE_BIAS, 0));
    x = X(n, 0);
    if (ax < 0) ax += x->rank;
    if (ax < 0 || ax >= x->rank) return fl_bad("layer_norm axis out of range");
    D = fl_prod(x->dims, ax, x->rank);
    if ((sc && sc->numel != D) || (b && b->numel != D)) return fl_bad("scale or bias does not have one value per normalised element");
    if (fl_attr_num(n, "epsilon", &eps) < 0) return -1;
    if (!(eps >= 0) || eps > 3.4028234663852886e38) return fl_bad("epsilon must be finite and >= 0");
    n->d[0] = x->numel / D; n->d[1] = D; fl_setf(n, 2, (float)eps);
    return fl_set_out(n, x->rank, x->dims);
}

void fl_layer_norm_eval(const fl_node *n, const fl_ctx *cx) {
    const float *x = fl_x(n, cx);
    float *y = fl_vp(n->out, cx);
    const fl_tensor *sc = T(n, ROLE_SCALE), *b = T(n, ROLE_BIAS);
    uint32_t r, i, rows = n->d[0], D = n->d[1];
    for (r = 0; r < rows; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D, mean = 0, var = 0, inv;
        for (i = 0; i < D; i++) mean += xr[i];
        mean /= (float)D;
        for (i = 0; i < D; i++) { float d = xr[i] - mean; var += d * d; }
        inv = 1.0f / sqrtf(var / (float)D + fl_getf(n, 2));
        for (i = 0; i < D; i++) {
            float t = (xr[i] - mean) * inv;
            if (sc) t *= fl_wget(sc, i);
            if (b) t += fl_wget(b, i);
            yr[i] = t;
        }
    }
}

/* reduce{op: mean | sum | max, axes, keepdims = 1}: d[0] the reduced axes (bit mask), d[1] the op,
 * d[2] the count of values per output */
int fl_reduce_prepare(fl_node *n) {
    static const char *const ops[3] = { "mean", "sum", "max" };
    fl_value *x;
    int32_t axes[FL_MAX_RANK];
    uint8_t nax, op = 0, i, r = 0;
    uint32_t mask = 0, count = 1, out[FL_MAX_RANK];
    double keep = 1;
    int got;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 0, 0));
    x = X(n, 0);
    if ((got = fl_attr_str(n, "op", ops, 3, &op)) < 0) return -1;
    if (!got) return fl_bad("reduce needs an op");
    if ((got = fl_attr_ints(n, "axes", axes, FL_MAX_RANK, &nax)) < 0) return -1;
    if (!got || nax == 0) return fl_bad("reduce needs axes");
    if (fl_attr_num(n, "keepdims", &keep) < 0) return -1;
    if (keep != 0 && keep != 1) return fl_bad("keepdims must be 0 or 1");
    for (i = 0; i < nax; i++) {
        int32_t a = axes[i] < 0 ? axes[i] + x->rank : axes[i];
        if (a < 0 || a >= x->rank || (mask >> a) & 1u) return fl_bad("reduce axes do not fit the input's rank");
        mask |= 1u << a;
        count *= x->dims[a];
    }
    for (i = 0; i < x->rank; i++) {
        if (!((mask >> i) & 1u)) out[r++] = x->dims[i];
        else if (keep != 0) out[r++] = 1;
    }
    n->d[0] = mask; n->d[1] = op; n->d[2] = count;
    return fl_set_out(n, r, out);
}

void fl_reduce_eval(const fl_node *n, const fl_ctx *cx) {
    const float *x = fl_x(n, cx);
    float *y = fl_vp(n->out, cx);
    const fl_value *xv = X(n, 0);
    uint32_t str[FL_MAX_RANK], idx[FL_MAX_RANK], s = 1, i, o = 0, mask = n->d[0], op = n->d[1];
    uint32_t ne = fl_m.values[n->out].numel;
    int a, r = xv->rank;
    /* the output index of every input element: strides of the kept axes, 0 on the reduced ones */
    for (a = r - 1; a >= 0; a--) {
        idx[a] = 0;
        if ((mask >> a) & 1u) { str[a] = 0; continue; }
        str[a] = s;
        s *= xv->dims[a];
    }
    for (i = 0; i < ne; i++) y[i] = op == 2 ? -INFINITY : 0;
    for (i = 0; i < xv->numel; i++) {
        float v = x[i];
        if (op != 2) y[o] += v;
        else if (v > y[o] || v != v) y[o] = v;
        for (a = r - 1; a >= 0; a--) {
            idx[a]++;
            o += str[a];
            if (idx[a] < xv->dims[a]) break;
            o -= str[a] * xv->dims[a];
            idx[a] = 0;
        }
    }
    if (op == 0) for (i = 0; i < ne; i++) y[i] /= (float)n->d[2];
}
