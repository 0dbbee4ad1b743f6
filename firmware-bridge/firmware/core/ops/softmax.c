/* ops/softmax.c: softmax and log_softmax over one axis (one prepare). */
#include <math.h>
#include "op.h"

int fl_softmax_prepare(fl_node *n) {
    fl_attrs *a = n->a;
    fl_value *x;
    int32_t ax = a->axis == INT32_MIN_SENTINEL ? -1 : a->axis;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 0, 0));
    x = X(n, 0);
    if (ax >= x->rank || ax < -(int32_t)x->rank) return fl_bad("softmax axis out of range");
    if (ax < 0) ax += x->rank;
    n->d[0] = fl_prod(x->dims, 0, ax); n->d[1] = x->dims[ax]; n->d[2] = fl_prod(x->dims, ax + 1, x->rank);
    return fl_set_out(n, x->rank, x->dims);
}

void fl_softmax_eval(const fl_node *n, const fl_ctx *cx) {
    float *y = fl_vp(n->out, cx);
    const float *x = fl_x(n, cx);
    uint32_t o, in, k, N = n->d[1], inner = n->d[2];
    for (o = 0; o < n->d[0]; o++)
        for (in = 0; in < inner; in++) {
            uint32_t base = o * N * inner + in;
            float m = -INFINITY, s = 0;
            for (k = 0; k < N; k++) if (x[base + k * inner] > m) m = x[base + k * inner];
            for (k = 0; k < N; k++) s += expf(x[base + k * inner] - m);
            if (n->op == OP_LOG_SOFTMAX) {
                float ls = logf(s);
                for (k = 0; k < N; k++) y[base + k * inner] = x[base + k * inner] - m - ls;
            } else
                for (k = 0; k < N; k++) y[base + k * inner] = expf(x[base + k * inner] - m) / s;
        }
}
