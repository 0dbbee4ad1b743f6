/* ops/binary.c: add and mul with numpy broadcasting; either input may be a stored tensor. */
#include "op.h"

int fl_binary_prepare(fl_node *n) {
    uint32_t out[FL_MAX_RANK];
    uint8_t ra, rb, r, i;
    const uint32_t *da, *db;
    if (n->nin != 2) return fl_bad("needs two inputs");
    CHECK(fl_only_roles(n, 0, 0));
    if ((n->in[0] & FL_REF_TENSOR) && (n->in[1] & FL_REF_TENSOR)) return fl_bad("an input must be an activation");
    for (i = 0; i < 2; i++) {
        if (n->in[i] & FL_REF_TENSOR) {
            fl_tensor *t = &fl_m.tensors[n->in[i] & 0x7FFF];
            if (i == 0) { ra = t->rank; da = t->dims; } else { rb = t->rank; db = t->dims; }
        } else {
            fl_value *v = X(n, i);
            if (i == 0) { ra = v->rank; da = v->dims; } else { rb = v->rank; db = v->dims; }
        }
    }
    r = ra > rb ? ra : rb;
    for (i = 0; i < r; i++) {
        uint32_t x = i + ra >= r ? da[i + ra - r] : 1, y = i + rb >= r ? db[i + rb - r] : 1;
        if (x != y && x != 1 && y != 1) return fl_bad("inputs cannot be broadcast");
        out[i] = x == 1 ? y : x;
    }
    return fl_set_out(n, r, out);
}

void fl_binary_eval(const fl_node *n, const fl_ctx *cx) {
    float *y = fl_vp(n->out, cx);
    uint32_t ne = fl_m.values[n->out].numel;
    uint32_t i;
    /* numpy broadcasting over at most 8 axes */
    fl_value *ov = &fl_m.values[n->out];
    uint32_t r = ov->rank, sa[FL_MAX_RANK], sb[FL_MAX_RANK], idx[FL_MAX_RANK], ia = 0, ib = 0, dd;
    const fl_tensor *ta = NULL, *tb = NULL;
    const float *pa = NULL, *pb = NULL;
    uint32_t ra, rb, *da, *db, acc;
    int j;
    if (n->in[0] & FL_REF_TENSOR) { ta = &fl_m.tensors[n->in[0] & 0x7FFF]; ra = ta->rank; da = (uint32_t *)ta->dims; }
    else { pa = fl_vp(n->in[0], cx); ra = fl_m.values[n->in[0]].rank; da = fl_m.values[n->in[0]].dims; }
    if (n->in[1] & FL_REF_TENSOR) { tb = &fl_m.tensors[n->in[1] & 0x7FFF]; rb = tb->rank; db = (uint32_t *)tb->dims; }
    else { pb = fl_vp(n->in[1], cx); rb = fl_m.values[n->in[1]].rank; db = fl_m.values[n->in[1]].dims; }
    acc = 1;
    for (j = (int)r - 1; j >= 0; j--) { uint32_t d0 = (uint32_t)j + ra >= r ? da[(uint32_t)j + ra - r] : 1; sa[j] = d0 == 1 ? 0 : acc; acc *= d0; }
    acc = 1;
    for (j = (int)r - 1; j >= 0; j--) { uint32_t d0 = (uint32_t)j + rb >= r ? db[(uint32_t)j + rb - r] : 1; sb[j] = d0 == 1 ? 0 : acc; acc *= d0; }
    for (dd = 0; dd < r; dd++) idx[dd] = 0;
    for (i = 0; i < ne; i++) {
        float va = ta ? fl_wget(ta, ia) : pa[ia], vb = tb ? fl_wget(tb, ib) : pb[ib];
        y[i] = n->op == OP_ADD ? va + vb : va * vb;
        for (j = (int)r - 1; j >= 0; j--) {
            idx[j]++; ia += sa[j]; ib += sb[j];
            if (idx[j] < ov->dims[j]) break;
            ia -= sa[j] * ov->dims[j]; ib -= sb[j] * ov->dims[j]; idx[j] = 0;
        }
    }
}
