/* ops/qkern.h: what the int8-full kernels (qkernels.c) give the int8-full executor (qexec.c):
 * the kernels over one stage, the SIMD switch, and the flag by which a fused chain tells the
 * blocked product that its columns are those of the call before. */
#ifndef FL_QKERN_H
#define FL_QKERN_H
#include "op.h"
#if FL_INT8_FULL && !FL_Q_STORE_LISTS
#if FL_FAST_KERNELS && defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#include <arm_acle.h>
#define FL_Q_SIMD 1 /* SXTB16 / SSUB16 / SMLAD: four multiply-adds in a few instructions */
#else
#define FL_Q_SIMD 0
#endif
/* requantisation (qkernels.c explains the identities): a channel's constants, then one accumulator */
typedef struct {
    int32_t m;         /* Q31 multiplier */
    uint32_t l, e;     /* left shift, right shift (one of them 0) */
    int64_t ce;        /* e >= 1: 2^30 + 2^(30+e) (else 0) */
} q_rq;

static inline void rq_chan(const fl_qstage *s, uint32_t c, q_rq *r) {
    int32_t sh = s->shift[c];
    r->m = s->mult[c];
    r->l = sh > 0 ? (uint32_t)sh : 0u;
    r->e = sh > 0 ? 0u : (uint32_t)-sh;
    r->ce = r->e ? ((int64_t)1 << 30) + ((int64_t)1 << (30 + r->e)) : 0;
}

static inline int8_t rq_apply(uint32_t acc, const q_rq *r, int32_t lo, int32_t hi, int32_t zp) {
    int32_t v;
    if (r->ce) v = (int32_t)(((int64_t)(int32_t)acc * r->m + r->ce - (int64_t)(acc & 0x80000000u)) >> 32) >> (r->e - 1u);
    else v = (int32_t)(((int64_t)(int32_t)(acc << r->l) * r->m + ((int64_t)1 << 30)) >> 31); /* e = 0: v as it is */
    v = v < lo ? lo : v > hi ? hi : v;
    return (int8_t)(v + zp);
}

/* a big-endian 32-bit msgpack payload */
static inline int32_t q_be32(const uint8_t *p) {
    uint32_t u;
#if defined(__ARM_FEATURE_UNALIGNED) && defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&u, p, 4);
    u = __builtin_bswap32(u);
#else
    u = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
#endif
    return (int32_t)u;
}

/* one element of a stage list in the store (qparams.c checked it at prepare): the forms the
 * converter writes inline (fixint, int8/16/32, uint8/16/32), any other in qview.c */
int32_t fl_q_par_int(const uint8_t *p, uint32_t *at);
static inline int32_t q_par(const uint8_t *mp, uint32_t *at) {
    const uint8_t *p = mp + *at;
    uint32_t b = p[0];
    if ((int8_t)b >= -32) { *at += 1; return (int32_t)(int8_t)b; } /* a fixint: 0x00..0x7f, 0xe0..0xff */
    if (b == 0xceu || b == 0xd2u) {
        *at += 5;
        return q_be32(p + 1);
    }
    if (b == 0xd1u || b == 0xcdu) {
        uint32_t u = (uint32_t)p[1] << 8 | p[2];
        *at += 3;
        return b == 0xd1u ? (int32_t)(int16_t)u : (int32_t)u;
    }
    if (b == 0xd0u || b == 0xccu) { *at += 2; return b == 0xd0u ? (int32_t)(int8_t)p[1] : (int32_t)p[1]; }
    return fl_q_par_int(p, at);
}

/* the same, a 32-bit form tried first (a Q31 multiplier is one) */
static inline int32_t q_par32(const uint8_t *mp, uint32_t *at) {
    const uint8_t *p = mp + *at;
    if (p[0] == 0xceu) {
        *at += 5;
        return q_be32(p + 1);
    }
    return q_par(mp, at);
}

#if FL_FAST_KERNELS
static inline uint32_t q_ld32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
extern int fl_q_pk_same;
/* natural-order columns (two of K <= 512, or one of K <= 1024), outside the arena */
#define FL_Q_NAT 1024
extern int16_t q_nat[FL_Q_NAT];
#if FL_Q_SIMD
#define q_sxtb16(x) ((uint32_t)__sxtb16(x))
static inline uint32_t q_sxtb16_r8(uint32_t x) { uint32_t r; __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x)); return r; }
#define q_smlad(a, b, c) ((uint32_t)__smlad((a), (b), (int32_t)(c)))
#else
static inline uint32_t q_sxtb16(uint32_t x) { return ((uint32_t)(int32_t)(int8_t)x & 0xFFFFu) | ((uint32_t)(int32_t)(int8_t)(x >> 16) << 16); }
static inline uint32_t q_sxtb16_r8(uint32_t x) { return q_sxtb16((x >> 8) | (x << 24)); }
static inline uint32_t q_smlad(uint32_t a, uint32_t b, uint32_t c) {
    return c + (uint32_t)((int32_t)(int16_t)a * (int32_t)(int16_t)b) + (uint32_t)((int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b >> 16));
}
#endif
#endif
/* a dense stage over one row, its lists read from the store in channel order (qdense.c) */
void fl_q_dense1(const int8_t *x, const fl_qst *s, int8_t *y);
void fl_q_dense(const int8_t *x, uint32_t rows, const fl_qstage *s, int8_t *y);
void fl_q_1x1s(const int8_t *x, uint32_t P, uint32_t xs, const fl_qstage *s, int8_t *y);
void fl_q_1x1(const int8_t *x, uint32_t P, const fl_qstage *s, int8_t *y);
void fl_q_conv_b(const int8_t *x, uint32_t C, uint32_t H, uint32_t W, const fl_qstage *s, uint32_t G, uint32_t KH, uint32_t KW,
                 const int32_t *st, const int32_t *pd, const int32_t *dl, uint32_t oy0, uint32_t OH, uint32_t OW, int8_t *y);
void fl_q_conv(const int8_t *x, uint32_t C, uint32_t H, uint32_t W, const fl_qstage *s, uint32_t G, uint32_t KH, uint32_t KW,
               const int32_t *st, const int32_t *pd, const int32_t *dl, uint32_t OH, uint32_t OW, int8_t *y);
#endif
#endif
