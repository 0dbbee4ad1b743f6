/* ops/data.c: ops that move data without arithmetic on it: pad, concat, slice. Each output element
 * comes from one input element (or pad's constant), found per axis as runtime/layers/reshapeData.ts
 * finds it. */
#include "op.h"

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE };

/* strides of a row-major shape */
static void strides(const uint32_t *dims, int r, uint32_t *str) {
    uint32_t s = 1;
    int a;
    for (a = r - 1; a >= 0; a--) { str[a] = s; s *= dims[a]; }
}

/* pad{pads [b_0..b_{r-1}, e_0..e_{r-1}] (negative crops), mode, value}: d[0] mode, d[1] value,
 * params the begins (int32 per axis) */
int fl_pad_prepare(fl_node *n) {
    static const char *const modes[3] = { "constant", "reflect", "edge" };
    fl_value *x;
    int32_t pads[2 * FL_MAX_RANK], *begin;
    uint32_t out[FL_MAX_RANK];
    uint8_t len, mode = PAD_CONSTANT, a;
    double value = 0;
    int got;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 0, 0));
    x = X(n, 0);
    if ((got = fl_attr_ints(n, "pads", pads, 2 * FL_MAX_RANK, &len)) < 0) return -1;
    if (!got || len != 2 * x->rank) return fl_bad("pads must hold a begin and an end per input axis");
    if (fl_attr_str(n, "mode", modes, 3, &mode) < 0) return -1;
    if (fl_attr_num(n, "value", &value) < 0) return -1;
    if (!(value <= 3.4028234663852886e38 && value >= -3.4028234663852886e38)) return fl_bad("pad value must be finite");
    for (a = 0; a < x->rank; a++) {
        int64_t d = (int64_t)x->dims[a] + pads[a] + pads[a + x->rank];
        if (d < 1) return fl_bad("pads crop an axis to nothing");
        if (d > FL_ARENA_BYTES) return fl_fail("TOO_LARGE", "an activation is larger than the arena");
        if (mode == PAD_REFLECT && (pads[a] >= (int32_t)x->dims[a] || pads[a + x->rank] >= (int32_t)x->dims[a]))
            return fl_bad("reflect pads must be smaller than the input's dims");
        out[a] = (uint32_t)d;
    }
    CHECK(fl_set_out(n, x->rank, out));
    if (!(begin = (int32_t *)fl_op_params(n, 4u * x->rank))) return -1;
    for (a = 0; a < x->rank; a++) begin[a] = pads[a];
    n->d[0] = mode;
    fl_setf(n, 1, (float)value);
    return 0;
}

/* the input index along one axis of output position o; -1 for the constant */
static int32_t pad_src(int32_t o, int32_t begin, int32_t len, uint32_t mode) {
    int32_t i = o - begin;
    if (i >= 0 && i < len) return i;
    if (mode == PAD_EDGE) return i < 0 ? 0 : len - 1;
    if (mode == PAD_REFLECT) {
        int32_t period = 2 * (len - 1);
        if (len == 1) return 0;
        i %= period;
        if (i < 0) i += period;
        return i < len ? i : period - i;
    }
    return -1;
}

void fl_pad_eval(const fl_node *n, const fl_ctx *cx) {
    const float *x = fl_x(n, cx);
    float *y = fl_vp(n->out, cx);
    const fl_value *xv = X(n, 0), *yv = &fl_m.values[n->out];
    const int32_t *begin = (const int32_t *)fl_params(n);
    float value = fl_getf(n, 1);
    uint32_t str[FL_MAX_RANK], idx[FL_MAX_RANK], k;
    int a, r = xv->rank;
    strides(xv->dims, r, str);
    for (a = 0; a < r; a++) idx[a] = 0;
    for (k = 0; k < yv->numel; k++) {
        uint32_t off = 0;
        int outside = 0;
        for (a = 0; a < r; a++) {
            int32_t s = pad_src((int32_t)idx[a], begin[a], (int32_t)xv->dims[a], n->d[0]);
            if (s < 0) { outside = 1; break; }
            off += (uint32_t)s * str[a];
        }
        y[k] = outside ? value : x[off];
        for (a = r - 1; a >= 0; a--) {
            if (++idx[a] < yv->dims[a]) break;
            idx[a] = 0;
        }
    }
}

/* concat{axis = 1} of 1..FL_MAX_IN activations (2 unless a port sets more): d[0] the rows before the axis, d[1] the axis */
int fl_concat_prepare(fl_node *n) {
    fl_value *x;
    uint32_t out[FL_MAX_RANK], j;
    int32_t ax = n->a->axis == INT32_MIN_SENTINEL ? 1 : n->a->axis;
    uint8_t a;
    CHECK(fl_only_roles(n, 0, 0));
    if (n->nin < 1) return fl_bad("concat needs an input");
    if (n->nin > FL_MAX_IN) return fl_fail("TOO_LARGE", "concat has more inputs than the device allows");
    x = X(n, 0);
    if (ax < 0) ax += x->rank;
    if (ax < 0 || ax >= x->rank) return fl_bad("concat axis out of range");
    memcpy(out, x->dims, 4u * x->rank);
    out[ax] = 0;
    for (j = 0; j < n->nin; j++) {
        fl_value *v;
        if (n->in[j] & FL_REF_TENSOR) return fl_bad("concat inputs must be activations");
        v = X(n, (int)j);
        if (v->rank != x->rank) return fl_bad("concat inputs differ in rank");
        for (a = 0; a < x->rank; a++) if ((int32_t)a != ax && v->dims[a] != x->dims[a]) return fl_bad("concat inputs differ off the axis");
        out[ax] += v->dims[ax];
    }
    n->d[0] = fl_prod(x->dims, 0, ax); n->d[1] = (uint32_t)ax;
    return fl_set_out(n, x->rank, out);
}

void fl_concat_eval(const fl_node *n, const fl_ctx *cx) {
    float *y = fl_vp(n->out, cx);
    const fl_value *yv = &fl_m.values[n->out];
    uint32_t o, j, ax = n->d[1], row = fl_prod(yv->dims, (int)ax, yv->rank);
    for (o = 0; o < n->d[0]; o++) {
        float *at = y + o * row;
        for (j = 0; j < n->nin; j++) {
            const fl_value *v = X(n, (int)j);
            uint32_t block = fl_prod(v->dims, (int)ax, v->rank);
            memcpy(at, fl_vp(n->in[j], cx) + o * block, block * 4u);
            at += block;
        }
    }
}

/* slice{axes, starts, ends, steps} as ONNX Slice: params the start and the step of every axis
 * (int32 each, the axes not listed whole) */
int fl_slice_prepare(fl_node *n) {
    fl_value *x;
    int32_t axes[FL_MAX_RANK], starts[FL_MAX_RANK], ends[FL_MAX_RANK], steps[FL_MAX_RANK], *p;
    uint32_t out[FL_MAX_RANK], seen = 0;
    uint8_t na, ns, ne, nst, a, k;
    int got;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 0, 0));
    x = X(n, 0);
    if ((got = fl_attr_ints(n, "axes", axes, FL_MAX_RANK, &na)) < 0) return -1;
    if (!got) return fl_bad("slice needs axes");
    if (fl_attr_ints(n, "starts", starts, FL_MAX_RANK, &ns) < 0 || fl_attr_ints(n, "ends", ends, FL_MAX_RANK, &ne) < 0) return -1;
    if ((got = fl_attr_ints(n, "steps", steps, FL_MAX_RANK, &nst)) < 0) return -1;
    if (!got) for (nst = na, k = 0; k < na; k++) steps[k] = 1;
    if (ns != na || ne != na || nst != na) return fl_bad("axes, starts, ends and steps must have as many values");
    if (!(p = (int32_t *)fl_op_params(n, 8u * x->rank))) return -1;
    for (a = 0; a < x->rank; a++) { p[a] = 0; p[x->rank + a] = 1; out[a] = x->dims[a]; }
    for (k = 0; k < na; k++) {
        int64_t dim, s, e, step = steps[k], cnt = 0;
        if (axes[k] < 0 || axes[k] >= x->rank || (seen >> axes[k]) & 1u) return fl_bad("slice axes out of range or repeated");
        if (step == 0) return fl_bad("a slice step is 0");
        seen |= 1u << axes[k];
        a = (uint8_t)axes[k];
        dim = x->dims[a];
        s = starts[k] < 0 ? starts[k] + dim : starts[k];
        e = ends[k] < 0 ? ends[k] + dim : ends[k];
        if (step > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            if (e > s) cnt = (e - s + step - 1) / step;
        } else {
            s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            if (s > e) cnt = (s - e - step - 1) / -step;
        }
        if (cnt < 1) return fl_bad("slice takes nothing");
        p[a] = (int32_t)s; p[x->rank + a] = (int32_t)step; out[a] = (uint32_t)cnt;
    }
    return fl_set_out(n, x->rank, out);
}

void fl_slice_eval(const fl_node *n, const fl_ctx *cx) {
    const float *x = fl_x(n, cx);
    float *y = fl_vp(n->out, cx);
    const fl_value *xv = X(n, 0), *yv = &fl_m.values[n->out];
    const int32_t *p = (const int32_t *)fl_params(n);
    uint32_t str[FL_MAX_RANK], idx[FL_MAX_RANK], k;
    int32_t off = 0;
    int a, r = xv->rank;
    strides(xv->dims, r, str);
    for (a = 0; a < r; a++) { idx[a] = 0; off += p[a] * (int32_t)str[a]; }
    for (k = 0; k < yv->numel; k++) {
        y[k] = x[off];
        for (a = r - 1; a >= 0; a--) {
            int32_t step = p[r + a] * (int32_t)str[a];
            off += step;
            if (++idx[a] < yv->dims[a]) break;
            off -= step * (int32_t)yv->dims[a];
            idx[a] = 0;
        }
    }
}
