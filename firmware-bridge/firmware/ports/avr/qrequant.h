/* ports/avr/qrequant.h: TensorFlow Lite Micro's requantisation (MultiplyByQuantizedMultiplier)
 * in the arithmetic the ATmega2560 does well: no 64-bit multiplication, shifts a byte at a time.
 * Plain C (static inline), so the host builds it too: test/firmware-bridge/firmware/avrInt8full.test.ts
 * checks it against runtime/int8full/requant.ts multiplyByQuantizedMultiplier. */
#ifndef FL_QREQUANT_H
#define FL_QREQUANT_H
#include <stdint.h>

/* gemmlowp SaturatingRoundingDoublingHighMul for b = mult in [0, 2^31): (a b + nudge) / 2^31
 * truncated toward zero, the nudge 2^30 (a b >= 0) or 1 - 2^30. |a| b < 2^62 from four 16 x 16
 * products (fl_qx_mul16) instead of a 64 x 64 multiplication; (a = b = INT32_MIN, the
 * saturating case, cannot occur: b >= 0). */
/* 16 x 16 -> 32 unsigned: on the AVR four MULs (avr-gcc would call the 32 x 32 __mulsi3) */
static inline uint32_t fl_qx_mul16(uint16_t a, uint16_t b) {
#if defined(__AVR__)
    uint32_t r;
    __asm__("mul %A1, %A2\n\t"
            "movw %A0, r0\n\t"
            "mul %B1, %B2\n\t"
            "movw %C0, r0\n\t"
            "mul %A1, %B2\n\t"
            "add %B0, r0\n\t"
            "adc %C0, r1\n\t"
            "clr r1\n\t"
            "adc %D0, r1\n\t"
            "mul %B1, %A2\n\t"
            "add %B0, r0\n\t"
            "adc %C0, r1\n\t"
            "clr r1\n\t"
            "adc %D0, r1\n\t"
            : "=&r"(r) : "r"(a), "r"(b) : "r0", "r1");
    return r;
#else
    return (uint32_t)a * b;
#endif
}

static inline int32_t fl_qx_srdhm(int32_t a, int32_t b) {
    uint8_t neg = a < 0;
    uint32_t ua = neg ? 0u - (uint32_t)a : (uint32_t)a, ub = (uint32_t)b;
    uint16_t a0 = (uint16_t)ua, a1 = (uint16_t)(ua >> 16), b0 = (uint16_t)ub, b1 = (uint16_t)(ub >> 16);
    uint32_t lo = fl_qx_mul16(a0, b0), hi = fl_qx_mul16(a1, b1), m1 = fl_qx_mul16(a0, b1), m2 = fl_qx_mul16(a1, b0), t;
    /* lo + (m1 + m2) 2^16 + hi 2^32 */
    t = lo + (m1 << 16); hi += (m1 >> 16) + (t < lo); lo = t;
    t = lo + (m2 << 16); hi += (m2 >> 16) + (t < lo); lo = t;
    t = lo + (neg ? 0x3FFFFFFFu : 0x40000000u); hi += t < lo; lo = t; /* + nudge (negative: 2^30 - 1 on |a b|) */
    t = (hi << 1) | (lo >> 31);
    return neg ? -(int32_t)t : (int32_t)t;
}

/* shifts by a variable count, a byte at a time first (avr-gcc shifts a bit per loop turn) */
static inline uint32_t fl_qx_shl32(uint32_t x, uint8_t e) { while (e >= 8) { x <<= 8; e -= 8; } while (e--) x <<= 1; return x; }
static inline int32_t fl_qx_sar32(int32_t x, uint8_t e) { while (e >= 8) { x >>= 8; e -= 8; } while (e--) x >>= 1; return x; }

/* x / 2^e rounded to nearest, ties away from zero (gemmlowp RoundingDivideByPOT), 0 <= e <= 31:
 * h = floor(x / 2^(e-1)); its last bit is the half; below it, the rest of the remainder */
static inline int32_t fl_qx_rdbp(int32_t x, uint8_t e) {
    int32_t h, q;
    if (!e) return x;
    h = fl_qx_sar32(x, (uint8_t)(e - 1));
    q = h >> 1;
    if ((h & 1) && (x >= 0 || (e > 1 && fl_qx_shl32((uint32_t)x, (uint8_t)(33 - e))))) q++;
    return q;
}

/* round(acc M) for M = mult 2^(shift - 31): (acc 2^shift, wrapping) when shift > 0, then the
 * doubling high multiply and the rounding division by 2^-shift */
static inline int32_t fl_qx_mbqm(uint32_t acc, int32_t mult, int32_t sh) {
    uint32_t x = sh > 0 ? fl_qx_shl32(acc, (uint8_t)sh) : acc;
    return fl_qx_rdbp(fl_qx_srdhm((int32_t)x, mult), (uint8_t)(sh > 0 ? 0 : -sh));
}
#endif
