/* ops/activation.c: the unary activations (relu, leaky_relu, sigmoid, tanh, clip), each also
 * applicable to one value inside a fused chain (fl_act_apply). */
#include <math.h>
#include "op.h"

float fl_act_apply(const fl_node *an, float v) {
    if (!an) return v;
    switch (an->op) {
    case OP_RELU: return v > 0 ? v : 0;
    case OP_LEAKY_RELU: return v >= 0 ? v : an->a->alpha * v;
    case OP_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case OP_TANH: return tanhf(v);
    default: return v < an->a->lo ? an->a->lo : v > an->a->hi ? an->a->hi : v; /* OP_CLIP */
    }
}

#define UNARY(name, expr) \
    void name(const fl_node *n, const fl_ctx *cx) { \
        const fl_attrs *a = n->a; \
        const float *x = fl_x(n, cx); \
        float *y = fl_vp(n->out, cx); \
        uint32_t i, ne = fl_m.values[n->out].numel; \
        (void)a; \
        for (i = 0; i < ne; i++) { float v = x[i]; y[i] = (expr); } \
    }
UNARY(fl_relu_eval, v > 0 ? v : 0)
UNARY(fl_leaky_relu_eval, v >= 0 ? v : a->alpha * v)
UNARY(fl_sigmoid_eval, 1.0f / (1.0f + expf(-v)))
UNARY(fl_tanh_eval, tanhf(v))
UNARY(fl_clip_eval, v < a->lo ? a->lo : v > a->hi ? a->hi : v)

/* hard_sigmoid{alpha = 0.2, beta = 0.5}: max(0, min(1, alpha x + beta)) */
int fl_hard_sigmoid_prepare(fl_node *n) {
    double v;
    int r;
    CHECK(fl_same_shape_prepare(n));
    fl_setf(n, 0, 0.2f); fl_setf(n, 1, 0.5f);
    if ((r = fl_attr_num(n, "alpha", &v)) < 0) return -1;
    if (r && !(v <= 3.4028234663852886e38 && v >= -3.4028234663852886e38)) return fl_bad("alpha must be finite");
    if (r) fl_setf(n, 0, (float)v);
    if ((r = fl_attr_num(n, "beta", &v)) < 0) return -1;
    if (r && !(v <= 3.4028234663852886e38 && v >= -3.4028234663852886e38)) return fl_bad("beta must be finite");
    if (r) fl_setf(n, 1, (float)v);
    return 0;
}
static float hsig(float v, float a, float b) { float t = a * v + b; return t < 0 ? 0 : t > 1 ? 1 : t; }
UNARY(fl_hard_sigmoid_eval, hsig(v, fl_getf(n, 0), fl_getf(n, 1)))
UNARY(fl_hard_swish_eval, v * hsig(v, 1.0f / 6.0f, 0.5f))

/* prelu: slope [C] (per channel, axis 1) or [1] */
int fl_prelu_prepare(fl_node *n) {
    fl_tensor *s;
    fl_value *x;
    uint32_t C;
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 1u << ROLE_SLOPE, 0)); CHECK(fl_need_role(n, ROLE_SLOPE, &s));
    x = X(n, 0);
    C = x->rank >= 2 ? x->dims[1] : 1;
    if (s->numel != 1 && s->numel != C) return fl_bad("slope has neither 1 nor one value per channel");
    n->d[0] = s->numel == 1 ? 1 : C;
    n->d[1] = x->rank >= 2 ? fl_prod(x->dims, 2, x->rank) : 1; /* inner */
    return fl_set_out(n, x->rank, x->dims);
}

void fl_prelu_eval(const fl_node *n, const fl_ctx *cx) {
    const float *x = fl_x(n, cx);
    float *y = fl_vp(n->out, cx);
    const fl_tensor *s = T(n, ROLE_SLOPE);
    uint32_t i, C = n->d[0], inner = n->d[1], ne = fl_m.values[n->out].numel;
    for (i = 0; i < ne; i++) {
        float v = x[i];
        y[i] = v >= 0 ? v : v * fl_wget(s, C == 1 ? 0u : (i / inner) % C);
    }
}
