/* ports/avr/qavr.c: the int8-full path on the ATmega2560 (FL_Q_STORE_LISTS, core/fl.h), bit for
 * bit core/ops/qkernels.c and runtime/int8full (Int8Session.runInt8). The weights and the
 * per-channel lists (mult, shift, bias: msgpack ints checked at prepare, ops/qparams.c) are read
 * from the flash model store as the loops meet them, so a 1,024-channel layer costs no SRAM.
 * Inner loops: int8 x int8 -> int16 products (the MULS instruction), zero point folded out
 * (sum (x - zp) w = sum x w - zp sum w, modulo 2^32 as the reference's int32 wraps), int32
 * accumulators; requantisation as TFLite Micro's, once per output. No float inside a layer; the
 * input's quantisation and the output's dequantisation are qexact.c (binary64-exact). */
/* -O2 here (the rest of the firmware is -Os): the per-output requantisation and the per-channel
 * list decoding inline and unroll, about a third fewer cycles on FC-2 */
#pragma GCC optimize("O2")
#include <avr/pgmspace.h>
#include "../../core/ops/op.h"
#include "../../core/ops/qexact.h"
#include "qrequant.h"
#if FL_INT8_FULL && FL_Q_STORE_LISTS

uint32_t fl_avr_store_base(void); /* port_avr.c */

#define RD(a) ((int8_t)pgm_read_byte_far(a))

/* big-endian integers from flash, assembled a byte at a time (no shifts) */
static inline uint16_t rd16(uint32_t a) {
    union { uint16_t u; uint8_t b[2]; } v;
    v.b[1] = pgm_read_byte_far(a); v.b[0] = pgm_read_byte_far(a + 1);
    return v.u;
}
static inline uint32_t rd32(uint32_t a) {
    union { uint32_t u; uint8_t b[4]; } v;
    v.b[3] = pgm_read_byte_far(a); v.b[2] = pgm_read_byte_far(a + 1); v.b[1] = pgm_read_byte_far(a + 2); v.b[0] = pgm_read_byte_far(a + 3);
    return v.u;
}

/* the next msgpack int of a list checked at prepare (in int32), *a its flash address */
static int32_t next_int(uint32_t *a) {
    uint32_t p = *a;
    uint8_t t = pgm_read_byte_far(p);
    int32_t v;
    p++;
    if (t < 0x80) v = t;
    else if (t >= 0xe0) v = (int32_t)t - 256;
    else switch (t) {
    case 0xcc: v = pgm_read_byte_far(p); p += 1; break;
    case 0xd0: v = (int8_t)pgm_read_byte_far(p); p += 1; break;
    case 0xcd: v = rd16(p); p += 2; break;
    case 0xd1: v = (int16_t)rd16(p); p += 2; break;
    case 0xce: case 0xd2: v = (int32_t)rd32(p); p += 4; break;
    default: v = (int32_t)rd32(p + 4); p += 8; break; /* 0xcf, 0xd3: the low 4 of 8 bytes */
    }
    *a = p;
    return v;
}

/* the per-channel parameters of a stage, decoded in channel order */
typedef struct { uint32_t m, s, b; } qcur;
static void cur_start(qcur *q, const fl_qstage *st) {
    uint32_t base = fl_avr_store_base();
    q->m = base + st->mult_at; q->s = base + st->shift_at; q->b = st->bias_at ? base + st->bias_at : 0;
}

/* acc (bias + sum (x - zp) w) requantised to the stage's int8 output with the channel's mult, shift */
static int8_t rq(uint32_t acc, const fl_qstage *s, int32_t mult, int32_t sh) {
    int32_t v = fl_qx_mbqm(acc, mult, sh);
    if (v > 255) v = 255;
    if (v < -256) v = -256;
    v += s->out_zp;
    return (int8_t)(v < s->min ? s->min : v > s->max ? s->max : v);
}

/* sum_k x[k] w[k] over n <= 255 taps (and sum_k w[k] into *sw: at most 255 * 128 in magnitude, an
 * int16), w in flash at far address a: per tap ELPM Z+ (RAMPZ:Z counts on across 64 KB), LD X+,
 * MULS, the product sign-extended into a 32-bit sum: 23 cycles a tap; RAMPZ back to 0 after */
static inline int32_t dot255(const int8_t *x, uint32_t a, uint16_t n, int16_t *sw) {
    int32_t acc = 0;
    int16_t s = 0;
    uint8_t w, t, rz;
    uint16_t z = (uint16_t)a;
    if (!n) { *sw = 0; return 0; }
    rz = (uint8_t)(a >> 16);
    __asm__ volatile(
        "out %[rampz], %[rz]\n\t"
        "1:\n\t"
        "elpm %[w], Z+\n\t"
        "ld %[t], X+\n\t"
        "muls %[t], %[w]\n\t"
        "mov %[t], r1\n\t"
        "lsl %[t]\n\t"
        "sbc %[t], %[t]\n\t"
        "add %A[acc], r0\n\t"
        "adc %B[acc], r1\n\t"
        "adc %C[acc], %[t]\n\t"
        "adc %D[acc], %[t]\n\t"
        "mov %[t], %[w]\n\t"
        "lsl %[t]\n\t"
        "sbc %[t], %[t]\n\t"
        "add %A[s], %[w]\n\t"
        "adc %B[s], %[t]\n\t"
        "sbiw %[n], 1\n\t"
        "brne 1b\n\t"
        "clr r1\n\t"
        "out %[rampz], r1\n\t"
        : [acc] "+r"(acc), [s] "+r"(s), [n] "+w"(n), [w] "=&d"(w), [t] "=&d"(t), "+z"(z), "+x"(x)
        : [rampz] "I"(_SFR_IO_ADDR(RAMPZ)), [rz] "r"(rz)
        : "r0", "memory");
    *sw = s;
    return acc;
}

/* sum_k x[k] w[k] over n taps; sum_k w[k] added to *sw (32 bits: a row of 784 weights sums past int16) */
static inline int32_t dot(const int8_t *x, uint32_t a, uint16_t n, int32_t *sw) {
    int32_t acc = 0;
    if (n <= 255u) { int16_t s; acc = dot255(x, a, n, &s); *sw += s; return acc; }
    while (n) {
        uint16_t m = n > 255u ? 255u : n;
        int16_t s;
        acc += dot255(x, a, m, &s);
        *sw += s;
        x += m; a += m; n -= m;
    }
    return acc;
}

/* y[r, C] = rq(bias + sum_k (x[r, k] - zp) w[c, k]) */
static void q_dense(const int8_t *x, uint32_t rows, const fl_qstage *s, int8_t *y) {
    uint32_t r, c, K = s->K, w0 = fl_avr_store_base() + s->w_at;
    int16_t zp = (int16_t)s->in_zp;
    for (r = 0; r < rows; r++, x += K) {
        qcur q;
        uint32_t wc = w0;
        cur_start(&q, s);
        for (c = 0; c < s->C; c++, wc += K) {
            int32_t sw = 0;
            uint32_t acc, k0;
            if (K <= 0xFFFFu) acc = (uint32_t)dot(x, wc, (uint16_t)K, &sw);
            else for (acc = 0, k0 = 0; k0 < K; k0 += 0x8000u) /* dot counts taps in 16 bits */
                acc += (uint32_t)dot(x + k0, wc + k0, (uint16_t)(K - k0 > 0x8000u ? 0x8000u : K - k0), &sw);
            int32_t mult, sh;
            acc += q.b ? (uint32_t)next_int(&q.b) : 0u;
            acc -= (uint32_t)sw * (uint32_t)(int32_t)zp;
            mult = next_int(&q.m);
            sh = next_int(&q.s);
            *y++ = rq(acc, s, mult, sh);
        }
    }
}

/* y[O, OH, OW] from x[C, H, W] and w[O, C/G, KH, KW] (cross-correlation); padded taps contribute
 * nothing, so sum w runs over the taps in range */
static void q_conv(const int8_t *x, uint16_t C, uint16_t H, uint16_t W, const fl_qstage *s, uint16_t G, uint16_t KH, uint16_t KW,
                   const int32_t *st, const int32_t *pd, const int32_t *dl, uint16_t OH, uint16_t OW, int8_t *y) {
    uint16_t O = (uint16_t)s->C, Og = O / G, Cg = C / G, o, c, oy, ox, ky, kx;
    uint32_t w0 = fl_avr_store_base() + s->w_at;
    qcur q;
    cur_start(&q, s);
    for (o = 0; o < O; o++) {
        uint32_t wo = w0 + (uint32_t)o * Cg * KH * KW;
        const int8_t *xg = x + (uint32_t)(o / Og) * Cg * H * W;
        uint32_t b = q.b ? (uint32_t)next_int(&q.b) : 0u;
        int32_t mult = next_int(&q.m), sh = next_int(&q.s);
        for (oy = 0; oy < OH; oy++)
            for (ox = 0; ox < OW; ox++) {
                int32_t acc = 0;
                int32_t sw = 0;
                int16_t x0 = (int16_t)((int16_t)ox * st[1] - pd[1]);
                for (c = 0; c < Cg; c++) {
                    const int8_t *xc = xg + (uint32_t)c * H * W;
                    uint32_t wc = wo + (uint32_t)c * KH * KW;
                    for (ky = 0; ky < KH; ky++) {
                        int16_t iy = (int16_t)((int16_t)oy * st[0] - pd[0] + (int16_t)ky * dl[0]);
                        if (iy < 0 || iy >= (int16_t)H) continue;
                        if (dl[1] == 1) { /* the row's taps in range as one dot product */
                            int16_t k0 = x0 < 0 ? -x0 : 0, k1 = x0 + (int16_t)KW > (int16_t)W ? (int16_t)W - x0 : (int16_t)KW;
                            if (k1 > k0) acc += dot(xc + (uint16_t)iy * W + (uint16_t)(x0 + k0), wc + ky * KW + (uint16_t)k0, (uint16_t)(k1 - k0), &sw);
                        } else
                            for (kx = 0; kx < KW; kx++) {
                                int16_t ix = (int16_t)(x0 + (int16_t)kx * dl[1]);
                                if (ix < 0 || ix >= (int16_t)W) continue;
                                {
                                    int8_t w = RD(wc + ky * KW + kx);
                                    acc += (int16_t)(xc[(uint16_t)iy * W + (uint16_t)ix] * w);
                                    sw += w;
                                }
                            }
                    }
                }
                y[((uint32_t)o * OH + oy) * OW + ox] = rq(b + (uint32_t)acc - (uint32_t)sw * (uint32_t)s->in_zp, s, mult, sh);
            }
    }
}

/* y[C, P] = rq(bias + sum_k (x[k, p] - zp) w[c, k]): a 1x1 conv over P pixels */
static void q_1x1(const int8_t *x, uint16_t P, const fl_qstage *s, int8_t *y) {
    uint16_t c, k, p, K = (uint16_t)s->K;
    uint32_t w0 = fl_avr_store_base() + s->w_at;
    qcur q;
    cur_start(&q, s);
    for (c = 0; c < s->C; c++) {
        uint32_t wc = w0 + (uint32_t)c * K;
        uint32_t b = q.b ? (uint32_t)next_int(&q.b) : 0u;
        int32_t mult = next_int(&q.m), sh = next_int(&q.s);
        int32_t sw = 0;
        for (k = 0; k < K; k++) sw += RD(wc + k);
        b -= (uint32_t)sw * (uint32_t)s->in_zp;
        for (p = 0; p < P; p++) {
            int32_t acc = 0;
            const int8_t *xp = x + p;
            for (k = 0; k < K; k++, xp += P) acc += (int16_t)(*xp * RD(wc + k));
            y[(uint32_t)c * P + p] = rq(b + (uint32_t)acc, s, mult, sh);
        }
    }
}

static int8_t *qv(uint16_t vi) {
    fl_value *v = &fl_m.values[vi];
    return v->external ? fl_m.qin : (int8_t *)(void *)(fl_arena + v->off);
}

static int8_t clamp8(int32_t v) { return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v); }

static int32_t div_round(int32_t sum, int32_t count) {
    int32_t half = count / 2;
    return sum >= 0 ? (sum + half) / count : -((-sum + half) / count);
}

/* max / average pooling on int8 (as qkernels.c's q_pool): planes first .. first + count - 1 of
 * the output from x holding those planes */
static void q_pool(const fl_node *n, const int8_t *x, int32_t zp, int8_t *y, uint32_t first, uint32_t count) {
    const fl_attrs *a = n->a;
    uint32_t H = n->d[1], W = n->d[2], OH = n->d[3], OW = n->d[4], nc, oy, ox;
    int32_t KH = a->kernel[0], KW = a->kernel[1];
    for (nc = first; nc < first + count; nc++) {
        const int8_t *xo = x + (nc - first) * H * W;
        for (oy = 0; oy < OH; oy++)
            for (ox = 0; ox < OW; ox++) {
                int32_t r;
                if (n->op == OP_MAX_POOL) {
                    int32_t ky, kx;
                    r = -128;
                    for (ky = 0; ky < KH; ky++) {
                        int32_t iy = (int32_t)oy * a->strides[0] - a->pads[0] + ky * a->dil[0];
                        if (iy < 0 || iy >= (int32_t)H) continue;
                        for (kx = 0; kx < KW; kx++) {
                            int32_t ix = (int32_t)ox * a->strides[1] - a->pads[1] + kx * a->dil[1];
                            if (ix < 0 || ix >= (int32_t)W) continue;
                            if (xo[(uint32_t)iy * W + (uint32_t)ix] > r) r = xo[(uint32_t)iy * W + (uint32_t)ix];
                        }
                    }
                } else {
                    int32_t y0 = (int32_t)oy * a->strides[0] - a->pads[0], x0 = (int32_t)ox * a->strides[1] - a->pads[1];
                    int32_t y1 = y0 + KH < (int32_t)H + a->pads[2] ? y0 + KH : (int32_t)H + a->pads[2];
                    int32_t x1 = x0 + KW < (int32_t)W + a->pads[3] ? x0 + KW : (int32_t)W + a->pads[3];
                    int32_t ys = y0 > 0 ? y0 : 0, ye = y1 < (int32_t)H ? y1 : (int32_t)H;
                    int32_t xs = x0 > 0 ? x0 : 0, xe = x1 < (int32_t)W ? x1 : (int32_t)W, iy, ix, cnt, real, sum = 0;
                    for (iy = ys; iy < ye; iy++) for (ix = xs; ix < xe; ix++) sum += xo[(uint32_t)iy * W + (uint32_t)ix];
                    real = ye > ys && xe > xs ? (ye - ys) * (xe - xs) : 0;
                    cnt = a->count_include_pad ? (y1 - y0) * (x1 - x0) : real;
                    r = cnt > 0 ? clamp8(div_round(sum - zp * real, cnt) + zp) : zp;
                }
                y[(nc * OH + oy) * OW + ox] = (int8_t)r;
            }
    }
}

/* the kinds fl_q_eval runs (qparams.c refuses any other a later core may accept) */
int fl_q_port_has(uint8_t op) {
    switch (op) {
    case OP_DENSE: case OP_SVD_DENSE: case OP_CONV2D: case OP_SVD_CONV2D: case OP_TUCKER2_CONV2D: case OP_CP_CONV2D:
    case OP_RELU: case OP_MAX_POOL: case OP_AVG_POOL: case OP_GLOBAL_AVG_POOL: case OP_FLATTEN: case OP_RESHAPE: case OP_IDENTITY:
        return 1;
    default: return 0;
    }
}

/* The stages of the parametric node n before stage upto (nst: all, the last one into y); the
 * intermediates in its scratch (as qkernels.c's q_stages). Returns stage upto's input. */
static const int8_t *q_stages(const fl_node *n, const int8_t *x, uint32_t upto, int8_t *y) {
    const fl_qnode *q = fl_qn(n);
    const fl_attrs *a = n->a;
    int8_t *scr = (int8_t *)(void *)(fl_arena + n->scratch_off);
    switch (n->op) {
    case OP_DENSE: if (upto > 0) q_dense(x, n->d[0], &q->st[0], y); return x;
    case OP_SVD_DENSE:
        if (upto > 0) q_dense(x, n->d[0], &q->st[0], scr);
        if (upto > 1) q_dense(scr, n->d[0], &q->st[1], y);
        return upto > 0 ? scr : x;
    case OP_CONV2D: {
        const fl_tensor *w = T(n, ROLE_WEIGHT);
        if (upto > 0) q_conv(x, (uint16_t)n->d[0], (uint16_t)n->d[1], (uint16_t)n->d[2], &q->st[0], (uint16_t)a->group, (uint16_t)w->dims[2], (uint16_t)w->dims[3], a->strides, a->pads, a->dil, (uint16_t)n->d[4], (uint16_t)n->d[5], y);
        return x;
    }
    case OP_SVD_CONV2D: {
        const fl_tensor *v = T(n, ROLE_V);
        if (upto > 0) q_conv(x, (uint16_t)n->d[0], (uint16_t)n->d[1], (uint16_t)n->d[2], &q->st[0], 1, (uint16_t)v->dims[2], (uint16_t)v->dims[3], a->strides, a->pads, a->dil, (uint16_t)n->d[4], (uint16_t)n->d[5], scr);
        if (upto > 1) q_1x1(scr, (uint16_t)(n->d[4] * n->d[5]), &q->st[1], y);
        return upto > 0 ? scr : x;
    }
    case OP_TUCKER2_CONV2D: {
        const fl_tensor *core = T(n, ROLE_CORE);
        uint32_t HW = n->d[1] * n->d[2];
        int8_t *s2 = scr + n->d[6] * HW;
        if (upto > 0) q_1x1(x, (uint16_t)HW, &q->st[0], scr);
        if (upto > 1) q_conv(scr, (uint16_t)n->d[6], (uint16_t)n->d[1], (uint16_t)n->d[2], &q->st[1], 1, (uint16_t)core->dims[2], (uint16_t)core->dims[3], a->strides, a->pads, a->dil, (uint16_t)n->d[4], (uint16_t)n->d[5], s2);
        if (upto > 2) q_1x1(s2, (uint16_t)(n->d[4] * n->d[5]), &q->st[2], y);
        return upto > 1 ? s2 : upto > 0 ? scr : x;
    }
    case OP_CP_CONV2D: {
        uint32_t R = n->d[6], H = n->d[1], W = n->d[2], OH = n->d[4], OW = n->d[5], HW = H * W, P = OH * OW;
        int8_t *sa = scr, *sv = scr + R * (HW > P ? HW : P);
        int32_t vs[2], vp[4], vd[2], hs[2], hp[4], hd[2];
        vs[0] = a->strides[0]; vs[1] = 1; vp[0] = a->pads[0]; vp[1] = 0; vp[2] = a->pads[2]; vp[3] = 0; vd[0] = a->dil[0]; vd[1] = 1;
        hs[0] = 1; hs[1] = a->strides[1]; hp[0] = 0; hp[1] = a->pads[1]; hp[2] = 0; hp[3] = a->pads[3]; hd[0] = 1; hd[1] = a->dil[1];
        if (upto > 0) q_1x1(x, (uint16_t)HW, &q->st[0], sa);
        if (upto > 1) q_conv(sa, (uint16_t)R, (uint16_t)H, (uint16_t)W, &q->st[1], (uint16_t)R, (uint16_t)q->st[1].K, 1, vs, vp, vd, (uint16_t)OH, (uint16_t)W, sv);
        if (upto > 2) q_conv(sv, (uint16_t)R, (uint16_t)OH, (uint16_t)W, &q->st[2], (uint16_t)R, 1, (uint16_t)q->st[2].K, hs, hp, hd, (uint16_t)OH, (uint16_t)OW, sa);
        if (upto > 3) q_1x1(sa, (uint16_t)P, &q->st[3], y);
        return upto > 2 ? sa : upto > 1 ? sv : upto > 0 ? sa : x;
    }
    default: return x;
    }
}

void fl_q_eval(const fl_node *n) {
    const fl_qnode *q = fl_qn(n);
    const int8_t *x = qv(n->in[0]);
    int8_t *y = qv(n->out);
    uint32_t i, ne = fl_m.values[n->out].numel;
    int32_t zp = q->in_zp;
#if FL_Q_MISC
    if (q->kind != QK_STAGES) { fl_q_misc(n); return; } /* ops/qmisc.c */
#endif
    if (q->nst) { (void)q_stages(n, x, q->nst, y); return; }
    switch (n->op) {
    case OP_RELU: for (i = 0; i < ne; i++) y[i] = x[i] < zp ? (int8_t)zp : x[i]; return;
    case OP_MAX_POOL: case OP_AVG_POOL: q_pool(n, x, zp, y, 0, n->d[0]); return;
    case OP_GLOBAL_AVG_POOL: {
        uint32_t nc, S = n->d[1];
        for (nc = 0; nc < n->d[0]; nc++) {
            int32_t sum = 0;
            for (i = 0; i < S; i++) sum += x[nc * S + i] - zp;
            y[nc] = clamp8(div_round(sum, (int32_t)S) + zp);
        }
        return;
    }
    default:
        if (y != x) memmove(y, x, ne);
        return;
    }
}

/* A fused conv kind -> [relu] -> max_pool | avg_pool at its consumer pn (as qkernels.c's
 * fl_q_chain, which the plan's scratch is sized for): the producer's stages before its last as
 * unfused, then one output channel at a time, its last stage's plane (in the producer's scratch at
 * plane_off) through a one-channel stage whose lists start at that channel's (the cursors carried
 * from channel to channel), the relu, and that channel's pooled outputs. */
void fl_q_chain(const fl_node *pn) {
    const fl_node *pc = &fl_m.nodes[pn->span_lo];
    const fl_node *an = pn->span_lo + 1u < (uint32_t)(pn - fl_m.nodes) ? pc + 1 : NULL;
    const fl_qnode *q = fl_qn(pc);
    const fl_attrs *a = pc->a;
    const int8_t *x = qv(pc->in[0]), *z;
    int8_t *y = qv(pn->out), *plane = (int8_t *)(void *)(fl_arena + pc->scratch_off + q->plane_off);
    uint32_t k = q->nst - 1u, O = q->st[k].C, K = q->st[k].K, OH = pc->d[4], OW = pc->d[5], P = OH * OW, o, i;
    uint32_t base = fl_avr_store_base();
    int32_t rzp = an ? fl_qn(an)->in_zp : 0, pzp = fl_qn(pn)->in_zp;
    fl_qstage v = q->st[k];
    z = q_stages(pc, x, k, NULL);
    v.C = 1;
    for (o = 0; o < O; o++) {
        if (pc->op == OP_CONV2D) {
            const fl_tensor *w = T(pc, ROLE_WEIGHT);
            uint32_t G = (uint32_t)a->group, Cg = pc->d[0] / G, g = o / (O / G);
            q_conv(x + g * Cg * pc->d[1] * pc->d[2], (uint16_t)Cg, (uint16_t)pc->d[1], (uint16_t)pc->d[2], &v, 1, (uint16_t)w->dims[2], (uint16_t)w->dims[3], a->strides, a->pads, a->dil, (uint16_t)OH, (uint16_t)OW, plane);
        } else q_1x1(z, (uint16_t)P, &v, plane);
        if (an) for (i = 0; i < P; i++) if (plane[i] < rzp) plane[i] = (int8_t)rzp;
        q_pool(pn, plane, pzp, y, o, 1);
        /* the next channel: its weights, and its list elements after this one's */
        v.w_at += K;
        { uint32_t at = base + v.mult_at; (void)next_int(&at); v.mult_at = at - base; }
        { uint32_t at = base + v.shift_at; (void)next_int(&at); v.shift_at = at - base; }
        if (v.bias_at) { uint32_t at = base + v.bias_at; (void)next_int(&at); v.bias_at = at - base; }
    }
}

void fl_q_input(const fl_ctx *cx) {
    uint32_t i;
    float s32 = (float)fl_m.in_scale;
    int32_t zp = fl_m.in_zp;
    uint16_t prev = 0x100; /* u8 pixels: the previous pixel's value (none yet) and answer */
    int8_t pq = 0;
    for (i = 0; i < fl_m.in_numel; i++) {
        if (cx->u8) {
            uint8_t u = cx->u8[i];
            if (u != prev) { pq = fl_qx_quantize(u ? (float)u / cx->div : 0.0f, s32, fl_m.in_scale64, zp); prev = u; }
            fl_m.qin[i] = pq;
        } else fl_m.qin[i] = fl_qx_quantize(cx->x[i], s32, fl_m.in_scale64, zp);
    }
}

void fl_q_output(void) {
    fl_value *v = &fl_m.values[fl_m.output];
    const int8_t *q = (const int8_t *)(const void *)(fl_arena + v->off);
    float *y = (float *)(void *)(fl_arena + v->off);
    uint32_t i = v->numel;
    while (i--) y[i] = fl_qx_dequantize((int32_t)q[i] - fl_m.out_zp, fl_m.out_scale64);
}
#endif
