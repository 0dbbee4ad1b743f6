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
#if FL_FAST_KERNELS
static inline uint32_t q_ld32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
extern int fl_q_pk_same;
#endif
void fl_q_dense(const int8_t *x, uint32_t rows, const fl_qstage *s, int8_t *y);
void fl_q_1x1s(const int8_t *x, uint32_t P, uint32_t xs, const fl_qstage *s, int8_t *y);
void fl_q_1x1(const int8_t *x, uint32_t P, const fl_qstage *s, int8_t *y);
void fl_q_conv_b(const int8_t *x, uint32_t C, uint32_t H, uint32_t W, const fl_qstage *s, uint32_t G, uint32_t KH, uint32_t KW,
                 const int32_t *st, const int32_t *pd, const int32_t *dl, uint32_t oy0, uint32_t OH, uint32_t OW, int8_t *y);
void fl_q_conv(const int8_t *x, uint32_t C, uint32_t H, uint32_t W, const fl_qstage *s, uint32_t G, uint32_t KH, uint32_t KW,
               const int32_t *st, const int32_t *pd, const int32_t *dl, uint32_t OH, uint32_t OW, int8_t *y);
#endif
#endif
