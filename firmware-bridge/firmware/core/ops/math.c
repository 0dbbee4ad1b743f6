/* ops/math.c: the element-wise math ops users' graphs keep (gelu, erf, sqrt, exp, log, abs,
 * reciprocal, pow), each y[i] = f(x[i]) in f32, in place when the plan says so. */
#include <math.h>
#include "op.h"

/* erfc(z), z >= 0: the Chebyshev-fitted form the runtime uses (runtime/layers/norm.ts), fractional
 * error below 1.2e-7 */
static float erfc_pos(float z) {
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = -z * z - 1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f +
              t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
    return t * expf(p);
}
static float erfc_f(float x) { return x >= 0 ? erfc_pos(x) : 2.0f - erfc_pos(-x); }
static float erf_f(float x) { return x >= 0 ? 1.0f - erfc_pos(x) : erfc_pos(-x) - 1.0f; }
static float gelu_exact(float x) { return 0.5f * x * erfc_f(-x * 0.70710678118654752f); }
static float gelu_tanh(float x) { return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x))); }

#define MATH(name, expr) \
    void name(const fl_node *n, const fl_ctx *cx) { \
        const float *x = fl_x(n, cx); \
        float *y = fl_vp(n->out, cx); \
        uint32_t i, ne = fl_m.values[n->out].numel; \
        for (i = 0; i < ne; i++) { float v = x[i]; y[i] = (expr); } \
    }

/* gelu{approximate: none | tanh}: d[0] 1 for the tanh form */
int fl_gelu_prepare(fl_node *n) {
    static const char *const forms[2] = { "none", "tanh" };
    uint8_t k = 0;
    CHECK(fl_same_shape_prepare(n));
    if (fl_attr_str(n, "approximate", forms, 2, &k) < 0) return -1;
    n->d[0] = k;
    return 0;
}
MATH(fl_gelu_eval, n->d[0] ? gelu_tanh(v) : gelu_exact(v))
MATH(fl_erf_eval, erf_f(v))
MATH(fl_sqrt_eval, sqrtf(v))
MATH(fl_exp_eval, expf(v))
MATH(fl_log_eval, logf(v))
MATH(fl_abs_eval, v < 0 ? -v : v)
MATH(fl_reciprocal_eval, 1.0f / v)

/* pow{exponent >= 0}: d[0] the exponent (fl_getf); 2, 3 and 0.5 as products and a square root, as the runtime */
int fl_pow_prepare(fl_node *n) {
    double e;
    int r;
    CHECK(fl_same_shape_prepare(n));
    if ((r = fl_attr_num(n, "exponent", &e)) < 0) return -1;
    if (!r) return fl_bad("pow needs an exponent");
    if (!(e >= 0) || e > 3.4028234663852886e38) return fl_bad("pow exponent must be finite and >= 0");
    fl_setf(n, 0, (float)e);
    return 0;
}
static float pow_f(float v, float e) { return e == 2.0f ? v * v : e == 3.0f ? v * v * v : e == 0.5f ? sqrtf(v) : powf(v, e); }
MATH(fl_pow_eval, pow_f(v, fl_getf(n, 0)))
