/* ops/check.c: the checks and shape rules prepare shares across ops. */
#include "op.h"

static const char *const role_names[ROLE_IDX] = FL_ROLE_NAMES;

int fl_bad(const char *m) { return fl_fail("MODEL_INVALID", m); }

int fl_need_role(const fl_node *n, int slot, fl_tensor **t) {
    *t = T(n, slot);
    if (!*t) {
        fl_fail("MODEL_INVALID", "missing weight role ");
        if (slot < ROLE_IDX) fl_msg_cat(role_names[slot]);
        else { fl_msg_cat("core/factor."); fl_msg_uint((uint32_t)(slot - ROLE_IDX)); }
        return -1;
    }
    return 0;
}

/* only the roles in mask (bit per fixed slot) and indexed slots < nidx may be present */
int fl_only_roles(const fl_node *n, uint32_t mask, uint32_t nidx) {
    const uint16_t *p = (const uint16_t *)(const void *)(fl_arena + n->w_at);
    uint8_t j;
    for (j = 0; j < n->nw; j++) {
        int i = p[2 * j];
        if (i < ROLE_IDX ? !(mask & (1u << i)) : (uint32_t)(i - ROLE_IDX) >= nidx) return fl_bad("a weight role this op does not use");
    }
    return 0;
}

int fl_shape_is(const fl_tensor *t, uint8_t rank, const uint32_t *dims) {
    uint8_t i;
    if (t->rank != rank) return 0;
    for (i = 0; i < rank; i++) if (dims[i] != t->dims[i]) return 0;
    return 1;
}

int fl_bias_ok(const fl_node *n, uint32_t O) {
    fl_tensor *b = T(n, ROLE_BIAS);
    if (b && !fl_shape_is(b, 1, &O)) return fl_bad("bias shape does not match the output");
    return 0;
}

int fl_set_out(fl_node *n, uint8_t rank, const uint32_t *dims) {
    fl_value *v = &fl_m.values[n->out];
    uint64_t ne = 1;
    uint8_t i;
    if (rank > FL_MAX_RANK) return fl_bad("output rank over the device's limit");
    if (fl_dims(&v->dims, v->rank, rank)) return -1;
    for (i = 0; i < rank; i++) { ne *= dims[i]; if (ne > FL_ARENA_BYTES / 4u) break; v->dims[i] = dims[i]; }
    if (ne == 0) return fl_bad("empty output");
    if (ne > FL_ARENA_BYTES / 4u) return fl_fail("TOO_LARGE", "an activation is larger than the arena");
    v->rank = rank;
    v->numel = (uint32_t)ne;
    return 0;
}


int fl_one_input(const fl_node *n) {
    if (n->nin != 1) return fl_bad("needs exactly one input");
    if (n->in[0] & FL_REF_TENSOR) return fl_bad("input must be an activation");
    return 0;
}

int fl_conv_out(int32_t in, int32_t k, int32_t s, int32_t p0, int32_t p1, int32_t d, uint32_t *out) {
    int64_t span = (int64_t)in + p0 + p1 - (int64_t)d * (k - 1) - 1;
    if (span < 0) return fl_bad("kernel larger than the padded input");
    *out = (uint32_t)(span / s + 1);
    return 0;
}

int fl_conv_attrs_ok(const fl_attrs *a) {
    int i;
    if (a->strides[0] < 1 || a->strides[1] < 1 || a->dil[0] < 1 || a->dil[1] < 1 || a->group < 1) return fl_bad("conv attributes out of range");
    for (i = 0; i < 4; i++) if (a->pads[i] < 0) return fl_bad("conv attributes out of range");
    return 0;
}

/* x must be [1, C, H, W] */
int fl_nchw(const fl_node *n, uint32_t C, uint32_t *H, uint32_t *W) {
    fl_value *x = X(n, 0);
    if (x->rank != 4 || x->dims[1] != C || x->dims[0] != 1) return fl_bad("input is not [1, C, H, W] with the weight's C");
    *H = x->dims[2];
    *W = x->dims[3];
    return 0;
}

/* last axis of x is inF; rows = numel / inF; output shape = x's with the last axis = out */
int fl_dense_shape(fl_node *n, uint32_t inF, uint32_t outF, uint32_t *rows) {
    fl_value *x = X(n, 0);
    uint32_t d[FL_MAX_RANK];
    if (x->rank < 1 || x->dims[x->rank - 1] != inF) return fl_bad("input does not end in the layer's input size");
    *rows = x->numel / inF;
    memcpy(d, x->dims, 4u * x->rank);
    d[x->rank - 1] = outF;
    return fl_set_out(n, x->rank, d);
}

uint32_t fl_prod(const uint32_t *d, int from, int to) {
    uint32_t p = 1;
    int i;
    for (i = from; i < to; i++) p *= d[i];
    return p;
}


/* Eval never hangs: a node whose multiply-adds (or pooling window visits) exceed this is refused
 * at prepare. 2^31 is far above any model that fits a microcontroller (LeNet-5's largest layer:
 * about 1e6) and still a bounded run time on the host. */
#ifndef FL_MAX_WORK
#define FL_MAX_WORK 2147483648.0
#endif
int fl_work(double w) { return w > FL_MAX_WORK ? fl_fail("TOO_LARGE", "a node needs more work than the device allows") : 0; }

int fl_same_shape_prepare(fl_node *n) {
    fl_value *x;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 0, 0));
    x = X(n, 0);
    return fl_set_out(n, x->rank, x->dims);
}
