/* ops/dense.c: dense and svd_dense (y = x W^T + b; svd: W = u v), rows of any leading shape. */
#include "op.h"

int fl_dense_prepare(fl_node *n) {
    uint32_t rows;
    fl_tensor *w;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 1u << ROLE_WEIGHT | 1u << ROLE_BIAS, 0)); CHECK(fl_need_role(n, ROLE_WEIGHT, &w));
    if (w->rank != 2) return fl_bad("weight must be 2-D");
    CHECK(fl_bias_ok(n, w->dims[0]));
    CHECK(fl_dense_shape(n, w->dims[1], w->dims[0], &rows));
    CHECK(fl_work((double)rows * w->dims[0] * w->dims[1]));
    n->d[0] = rows; n->d[1] = w->dims[1]; n->d[2] = w->dims[0];
    return 0;
}

int fl_svd_dense_prepare(fl_node *n) {
    uint32_t rows;
    fl_tensor *u, *v;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 1u << ROLE_U | 1u << ROLE_V | 1u << ROLE_BIAS, 0));
    CHECK(fl_need_role(n, ROLE_U, &u)); CHECK(fl_need_role(n, ROLE_V, &v));
    if (u->rank != 2 || v->rank != 2 || v->dims[0] != u->dims[1]) return fl_bad("u [out, r] and v [r, in] do not match");
    CHECK(fl_bias_ok(n, u->dims[0]));
    CHECK(fl_dense_shape(n, v->dims[1], u->dims[0], &rows));
    CHECK(fl_work((double)rows * u->dims[1] * ((double)u->dims[0] + v->dims[1])));
    n->d[0] = rows; n->d[1] = v->dims[1]; n->d[2] = u->dims[1]; n->d[3] = u->dims[0];
    n->scratch_need = F4 * rows * u->dims[1];
    return 0;
}

void fl_dense_eval(const fl_node *n, const fl_ctx *cx) {
    float *y = fl_vp(n->out, cx);
    const float *x = fl_x(n, cx);
    fl_tensor *w = T(n, ROLE_WEIGHT), *b = T(n, ROLE_BIAS);
    uint32_t r, o, rows = n->d[0], inF = n->d[1], outF = n->d[2];
    for (r = 0; r < rows; r++)
        for (o = 0; o < outF; o++)
            y[r * outF + o] = cx->u8 && fl_is_ext(n->in[0]) ? fl_wdot_u8(w, o * inF, cx->u8 + r * inF, inF, cx->div) : fl_wdot(w, o * inF, x + r * inF, inF);
    fl_add_bias(y, rows, outF, b);
}

void fl_svd_dense_eval(const fl_node *n, const fl_ctx *cx) {
    float *y = fl_vp(n->out, cx);
    const float *x = fl_x(n, cx);
    float *scr = fl_scratch(n);
    fl_tensor *u = T(n, ROLE_U), *v = T(n, ROLE_V), *b = T(n, ROLE_BIAS);
    uint32_t r, o, rows = n->d[0], inF = n->d[1], R = n->d[2], outF = n->d[3];
    for (r = 0; r < rows; r++) {
        for (o = 0; o < R; o++)
            scr[r * R + o] = cx->u8 && fl_is_ext(n->in[0]) ? fl_wdot_u8(v, o * inF, cx->u8 + r * inF, inF, cx->div) : fl_wdot(v, o * inF, x + r * inF, inF);
        for (o = 0; o < outF; o++) y[r * outF + o] = fl_wdot(u, o * R, scr + r * R, R);
    }
    fl_add_bias(y, rows, outF, b);
}
