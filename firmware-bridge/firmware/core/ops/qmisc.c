/* ops/qmisc.c: the int8-full path's kinds without weights beyond the pass-throughs, bit for bit
 * runtime/int8full/kernels.ts (docs/FORMAT.md 4.5): element-wise ops as a 256-entry table, the
 * integer add of two activations (TFLite's: inputs shifted left by 20, a Q31 multiplier each, the
 * sum rescaled), concat with each input rescaled to the output's quantisation, and the integer
 * softmax (an exp table over d = max - q, output fixed at (1/256, -128)). Prepare: qparams.c. */
#include "op.h"
#if FL_INT8_FULL && FL_Q_MISC

#define Q_ADD_LEFT_SHIFT 20 /* runtime/int8full/params.ts ADD_LEFT_SHIFT */

/* gemmlowp SaturatingRoundingDoublingHighMul and RoundingDivideByPOT, as in qkernels.c */
static int32_t m_srdhm(int32_t a, int32_t b) {
    int64_t ab;
    if (a == b && a == INT32_MIN_SENTINEL) return 2147483647;
    ab = (int64_t)a * (int64_t)b;
    return (int32_t)((ab + (ab >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30))) / ((int64_t)1 << 31));
}

static int32_t m_rdbp(int32_t x, int e) {
    int32_t mask, rem, thr;
    if (!e) return x;
    mask = (int32_t)(((uint32_t)1 << e) - 1u);
    rem = x & mask;
    thr = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (rem > thr ? 1 : 0);
}

/* round(x M): x 2^left wrapping like C's int32 (the reference's `| 0`), then the Q31 multiply */
int32_t fl_q_mbqm(int32_t x, int32_t mult, int32_t shift) {
    uint32_t l = shift > 0 ? (uint32_t)x << shift : (uint32_t)x;
    return m_rdbp(m_srdhm((int32_t)l, mult), shift > 0 ? 0 : -shift);
}

static int8_t *mv(uint16_t vi) {
    fl_value *v = &fl_m.values[vi];
    return v->external ? fl_m.qin : (int8_t *)(void *)(fl_arena + v->off);
}

void fl_q_misc(const fl_node *n) {
    const fl_qnode *q = fl_qn(n);
    const fl_qmisc *p = (const fl_qmisc *)(const void *)(fl_arena + q->misc_at);
    int8_t *y = mv(n->out);
    uint32_t i, ne = fl_m.values[n->out].numel;
    switch (q->kind) {
    case QK_LUT: {
        const int8_t *x = mv(n->in[q->act]), *t = (const int8_t *)(const void *)p->tab;
        for (i = 0; i < ne; i++) y[i] = t[(int32_t)x[i] + 128];
        return;
    }
    case QK_ADD: {
        const int8_t *a = mv(n->in[0]), *b = mv(n->in[1]);
        for (i = 0; i < ne; i++) {
            int32_t sa = fl_q_mbqm(((int32_t)a[i] - p->zp[0]) * ((int32_t)1 << Q_ADD_LEFT_SHIFT), p->mult[0], p->shift[0]);
            int32_t sb = fl_q_mbqm(((int32_t)b[i] - p->zp[1]) * ((int32_t)1 << Q_ADD_LEFT_SHIFT), p->mult[1], p->shift[1]);
            int32_t v = fl_q_mbqm((int32_t)((uint32_t)sa + (uint32_t)sb), p->out_mult, p->out_shift);
            /* + zp without overflow (|v| may be large only where the clamp cuts it) */
            if (v > 255) v = 255;
            if (v < -256) v = -256;
            v += p->out_zp;
            y[i] = (int8_t)(v < p->min ? p->min : v > p->max ? p->max : v);
        }
        return;
    }
    case QK_CONCAT: {
        const fl_value *yv = &fl_m.values[n->out];
        uint32_t o, j, ax = n->d[1], row = fl_prod(yv->dims, (int)ax, yv->rank);
        for (o = 0; o < n->d[0]; o++) {
            int8_t *at = y + o * row;
            for (j = 0; j < n->nin; j++) {
                const fl_value *v = &fl_m.values[n->in[j]];
                uint32_t block = fl_prod(v->dims, (int)ax, v->rank);
                const int8_t *x = mv(n->in[j]) + o * block;
                for (i = 0; i < block; i++) {
                    int32_t r = fl_q_mbqm((int32_t)x[i] - p->zp[j], p->mult[j], p->shift[j]);
                    if (r > 255) r = 255;
                    if (r < -256) r = -256;
                    r += p->out_zp;
                    at[i] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
                }
                at += block;
            }
        }
        return;
    }
    case QK_SOFTMAX: {
        const int8_t *x = mv(n->in[0]);
        uint32_t o, in, c, C = n->d[1], inner = n->d[2];
        for (o = 0; o < n->d[0]; o++)
            for (in = 0; in < inner; in++) {
                uint32_t base = o * C * inner + in, sum = 0, half;
                int32_t mx = -128;
                for (c = 0; c < C; c++) if (x[base + c * inner] > mx) mx = x[base + c * inner];
                for (c = 0; c < C; c++) sum += p->tab[mx - x[base + c * inner]];
                half = sum / 2u;
                for (c = 0; c < C; c++) {
                    int32_t v = (int32_t)((256u * p->tab[mx - x[base + c * inner]] + half) / sum) - 128;
                    y[base + c * inner] = (int8_t)(v > 127 ? 127 : v);
                }
            }
        return;
    }
    default: return;
    }
}
#endif
