/* ops/transpose.c: transpose{perm} (ONNX Transpose; PyTorch's permute, PixelShuffle's 6-D shuffle):
 * y[i_0, ..., i_{r-1}] = x at input index j with j[perm[a]] = i_a. Each output element is one
 * input element, walked in output order as runtime/layers/shapeOps.ts walks it. */
#include "op.h"

/* d[0] the rank, params the input stride of each output axis (uint32 per axis) */
int fl_transpose_prepare(fl_node *n) {
    fl_value *x;
    int32_t perm[FL_MAX_RANK];
    uint32_t out[FL_MAX_RANK], str[FL_MAX_RANK], seen = 0, s = 1, *step;
    uint8_t len, a;
    int got;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 0, 0));
    x = X(n, 0);
    if ((got = fl_attr_ints(n, "perm", perm, FL_MAX_RANK, &len)) < 0) return -1;
    if (!got) return fl_bad("transpose needs perm");
    if (len != x->rank) return fl_bad("transpose perm does not fit the input's rank");
    for (a = x->rank; a-- > 0;) { str[a] = s; s *= x->dims[a]; }
    for (a = 0; a < len; a++) {
        if (perm[a] < 0 || perm[a] >= (int32_t)len || (seen >> perm[a]) & 1u) return fl_bad("transpose perm is not a permutation");
        seen |= 1u << perm[a];
        out[a] = x->dims[perm[a]];
    }
    CHECK(fl_set_out(n, x->rank, out));
    if (!(step = (uint32_t *)fl_op_params(n, 4u * x->rank))) return -1;
    for (a = 0; a < len; a++) step[a] = str[perm[a]];
    n->d[0] = x->rank;
    return 0;
}

void fl_transpose_eval(const fl_node *n, const fl_ctx *cx) {
    const float *x = fl_x(n, cx);
    float *y = fl_vp(n->out, cx);
    const fl_value *yv = &fl_m.values[n->out];
    const uint32_t *step = (const uint32_t *)fl_params(n);
    uint32_t idx[FL_MAX_RANK], k, off = 0, last;
    int a, r = (int)n->d[0];
    if (r == 0) { y[0] = x[0]; return; }
    last = yv->dims[r - 1];
    for (a = 0; a < r; a++) idx[a] = 0;
    /* the innermost output axis as a strided run; the outer axes as an odometer */
    for (k = 0; k < yv->numel; k += last) {
        uint32_t j, s = step[r - 1];
        const float *src = x + off;
        for (j = 0; j < last; j++) y[k + j] = src[j * s];
        for (a = r - 2; a >= 0; a--) {
            off += step[a];
            if (++idx[a] < yv->dims[a]) break;
            off -= step[a] * yv->dims[a];
            idx[a] = 0;
        }
    }
}
