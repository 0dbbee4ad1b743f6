/* core/ops/qexact.h: binary64-exact input quantisation and output dequantisation with binary32
 * and integers only (qexact.c). */
#ifndef FL_QEXACT_H
#define FL_QEXACT_H
#include <stdint.h>
/* clamp8(round_half_away(x / S) + zp), the quotient rounded to binary64 as the workstation does;
 * s64 = S's binary64 bits (positive, normal), s32 = the nearest binary32 to S (normal) */
int8_t fl_qx_quantize(float x, float s32, uint64_t s64, int32_t zp);
/* the binary32 nearest to d * S (d an integer, |d| < 2^8), as (float)(d * S) in binary64 */
float fl_qx_dequantize(int32_t d, uint64_t s64);
#endif
