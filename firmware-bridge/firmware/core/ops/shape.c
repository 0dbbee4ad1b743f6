/* ops/shape.c: ops that change only the shape: identity, flatten, reshape (the bytes are copied,
 * or stay where they are). */
#include "op.h"

int fl_flatten_prepare(fl_node *n) {
    fl_attrs *a = n->a;
    uint32_t out[FL_MAX_RANK];
    fl_value *x;
    int32_t ax = a->axis == INT32_MIN_SENTINEL ? 1 : a->axis;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 0, 0));
    x = X(n, 0);
    if (ax < 0) ax += x->rank;
    if (ax < 0 || ax > x->rank) return fl_bad("flatten axis out of range");
    out[0] = fl_prod(x->dims, 0, ax);
    out[1] = fl_prod(x->dims, ax, x->rank);
    return fl_set_out(n, 2, out);
}

int fl_reshape_prepare(fl_node *n) {
    uint32_t out[FL_MAX_RANK];
    int32_t shape[FL_MAX_RANK];
    uint8_t nshape;
    fl_value *x;
    int i, neg = -1, r;
    uint64_t known = 1;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 0, 0));
    x = X(n, 0);
    /* the shape attribute (the reader checked it: a list of at most FL_MAX_RANK small integers) */
    if ((r = fl_attr_ints(n, "shape", shape, FL_MAX_RANK, &nshape)) < 0) return -1;
    if (r == 0) return fl_bad("reshape needs a shape");
    for (i = 0; i < nshape; i++) {
        int32_t d = shape[i];
        if (d == 0) { if (i >= x->rank) return fl_bad("reshape 0 beyond the input rank"); out[i] = x->dims[i]; }
        else if (d == -1) { if (neg >= 0) return fl_bad("at most one -1 in shape"); neg = i; out[i] = 1; continue; }
        else if (d < 0) return fl_bad("negative reshape dim");
        else out[i] = (uint32_t)d;
        known *= out[i];
        if (known > x->numel) return fl_bad("cannot reshape");
    }
    if (neg >= 0) {
        if (known == 0 || x->numel % known) return fl_bad("cannot reshape");
        out[neg] = (uint32_t)(x->numel / known);
    } else if (known != x->numel) return fl_bad("cannot reshape");
    return fl_set_out(n, nshape, out);
}

void fl_copy_eval(const fl_node *n, const fl_ctx *cx) {
    const float *x = fl_x(n, cx);
    float *y = fl_vp(n->out, cx);
    uint32_t i, ne = fl_m.values[n->out].numel;
    if (fl_m.values[n->out].external) return; /* a reshape of the external input: same bytes */
    if (cx->u8 && fl_is_ext(n->in[0])) { for (i = 0; i < ne; i++) y[i] = (float)cx->u8[i] / cx->div; return; }
    if (y != x) memmove(y, x, ne * 4u);
}
