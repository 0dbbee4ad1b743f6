/* ops/activation.c: the unary activations (relu, leaky_relu, sigmoid, tanh, clip), each also
 * applicable to one value inside a fused chain (fl_act_apply). */
#include <math.h>
#include "op.h"

float fl_act_apply(const fl_node *an, float v) {
    if (!an) return v;
    switch (an->op) {
    case OP_RELU: return v > 0 ? v : 0;
    case OP_LEAKY_RELU: return v >= 0 ? v : an->a.alpha * v;
    case OP_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case OP_TANH: return tanhf(v);
    default: return v < an->a.lo ? an->a.lo : v > an->a.hi ? an->a.hi : v; /* OP_CLIP */
    }
}

#define UNARY(name, expr) \
    void name(const fl_node *n, const fl_ctx *cx) { \
        const fl_attrs *a = &n->a; \
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
