/* core/ops/qexact.c: the int8-full path's two float steps, exactly as the workstation computes
 * them in binary64 (runtime/int8full: quantizeValue, Int8Session.dequantize), with binary32 and
 * integer arithmetic only, on every port: the AVR, whose double is binary32 (avr-gcc), and the
 * Cortex-M4, whose FPU divides in binary32 where a binary64 division is a software routine
 * (ops/qexec.c fl_q_input). Plain C with no port header, so the host builds it too (test/firmware-bridge/firmware/avrInt8full.test.ts checks
 * it there against binary64 on every kind of input, ties included). */
#include <stdint.h>
#include "qexact.h"

/* Ties can only be decided exactly: 32-bit limbs, least significant first. */
#define QX_LIMBS 5
static void big_shl(uint32_t *r, uint32_t m, int32_t e) { /* r = m << e, 0 <= e < 32 * (QX_LIMBS - 1) */
    int i, w = (int)(e / 32), b = (int)(e % 32);
    for (i = 0; i < QX_LIMBS; i++) r[i] = 0;
    r[w] = m << b;
    if (b) r[w + 1] = m >> (32 - b);
}

static int big_cmp(const uint32_t *a, const uint32_t *b) {
    int i;
    for (i = QX_LIMBS - 1; i >= 0; i--) if (a[i] != b[i]) return a[i] > b[i] ? 1 : -1;
    return 0;
}

/* r = a * b, a and b below 2^64 */
static void big_mul(uint32_t *r, uint64_t a, uint64_t b) {
    uint32_t x[2], y[2];
    int i, j;
    x[0] = (uint32_t)a; x[1] = (uint32_t)(a >> 32); y[0] = (uint32_t)b; y[1] = (uint32_t)(b >> 32);
    for (i = 0; i < QX_LIMBS; i++) r[i] = 0;
    for (i = 0; i < 2; i++) {
        uint64_t carry = 0;
        for (j = 0; j < 2; j++) {
            uint64_t t = (uint64_t)x[i] * y[j] + r[i + j] + carry;
            r[i + j] = (uint32_t)t;
            carry = t >> 32;
        }
        for (j = i + 2; carry && j < QX_LIMBS; j++) { uint64_t t = (uint64_t)r[j] + carry; r[j] = (uint32_t)t; carry = t >> 32; }
    }
}

/* |x| / S >= h - d, where h = m + 1/2 and h - d is the midpoint between h and the binary64 just
 * below it, i.e. whether binary64 division rounds |x| / S to h or above (the tie of that midpoint
 * goes to h, whose last significand bit is 0). mx 2^ex = |x|, ms 2^es = S (53-bit ms). */
static int reaches(uint32_t mx, int32_t ex, uint64_t ms, int32_t es, uint32_t m) {
    uint32_t a[QX_LIMBS], b[QX_LIMBS];
    uint64_t T;
    int32_t P, k = -1, E;
    uint32_t two_m1 = 2u * m + 1u;
    if (m == 0) { P = 55; T = ((uint64_t)1 << 54) - 1u; }
    else {
        while ((two_m1 >> (k + 2)) != 0) k++; /* 2^k <= h < 2^(k+1) */
        P = 53 - k;
        T = ((uint64_t)two_m1 << (P - 1)) - 1u;
    }
    /* mx 2^(ex - es + P) >= T ms */
    E = ex - es + P;
    big_mul(b, T, ms);          /* below 2^108 */
    if (E < 0) return 0;        /* mx < 2^24 < T ms */
    if (E >= 32 * (QX_LIMBS - 1)) return 1;
    big_shl(a, mx, E);
    return big_cmp(a, b) >= 0;
}

int8_t fl_qx_quantize(float x, float s32, uint64_t s64, int32_t zp) {
    union { float f; uint32_t u; } c;
    uint32_t mx, m;
    int32_t ex, es = (int32_t)((s64 >> 52) & 0x7FF) - 1075, n;
    uint64_t ms = (s64 & 0xFFFFFFFFFFFFFull) | ((uint64_t)1 << 52);
    int neg;
    float v;
    c.f = x;
    neg = (int)(c.u >> 31);
    ex = (int32_t)((c.u >> 23) & 0xFF);
    mx = c.u & 0x7FFFFFu;
    if (ex == 0xFF) { /* NaN: the zero point; +-infinity saturates */
        if (mx) n = 0;
        else n = 300;
    } else if (ex == 0) { /* zero or subnormal: |x| < 2^-126 <= S, so |x| / S < 1 and only 0 or 1 */
        if (!mx) return (int8_t)(zp < -128 ? -128 : zp > 127 ? 127 : zp);
        n = reaches(mx, -149, ms, es, 0) ? 1 : 0;
    } else {
        mx |= 0x800000u;
        ex -= 150;
        v = x / s32;
        if (v < 0) v = -v;
        if (!(v < 300.0f)) n = 300; /* >= 256 saturates either way, whatever the zero point */
        else {
            float f;
            m = (uint32_t)v;
            f = v - (float)m;
            /* binary32 is within 2^-13 of the binary64 quotient here (below 300, s32 the
             * nearest binary32 to S, division within two ulps); away from a tie it decides */
            if (f < 0.5f - 1.0f / 512 ) n = (int32_t)m;
            else if (f > 0.5f + 1.0f / 512) n = (int32_t)m + 1;
            else n = (int32_t)m + (reaches(mx, ex, ms, es, m) ? 1 : 0);
        }
    }
    if (ex == 0xFF && mx) n = 0, neg = 0;
    n = neg ? zp - n : zp + n;
    return (int8_t)(n < -128 ? -128 : n > 127 ? 127 : n);
}

float fl_qx_dequantize(int32_t d, uint64_t s64) {
    union { float f; uint32_t u; } c;
    uint32_t sign = d < 0 ? 0x80000000u : 0u, mant;
    uint64_t m = (s64 & 0xFFFFFFFFFFFFFull) | ((uint64_t)1 << 52), rest, half;
    int32_t e = (int32_t)((s64 >> 52) & 0x7FF) - 1075, shift;
    uint32_t ad = (uint32_t)(d < 0 ? -d : d);
    if (!ad) { c.u = 0; return c.f; } /* (0 - 0) * scale: +0 */
    m *= ad;                            /* exact: below 2^61; value m 2^e */
    while (!(m >> 60)) { m <<= 1; e--; } /* bit 60 the leading one: value = m 2^e, m in [2^60, 2^61) */
    /* first to binary64 (53 bits, ties to even), as the workstation's product is, then to binary32 */
    rest = m & 0xFFu;
    m >>= 8;
    if (rest > 0x80u || (rest == 0x80u && (m & 1u))) m++;
    m <<= 8;                            /* a carry to 2^61 keeps the value; the shifts below hold */
    if (m >> 61) { m >>= 1; e++; }
    /* binary32: 24 bits, value = mant 2^(e + shift), biased exponent of the leading bit */
    {
        int32_t be = e + 60 + 127; /* biased exponent of 2^(e + 60) */
        shift = 37;
        if (be <= 0) { shift += 1 - be; be = 0; }
        if (shift > 62) { c.u = sign; return c.f; }
        mant = (uint32_t)(m >> shift);
        rest = m & (((uint64_t)1 << shift) - 1u);
        half = (uint64_t)1 << (shift - 1);
        if (rest > half || (rest == half && (mant & 1u))) mant++;
        if (be == 0) { c.u = sign | mant; return c.f; } /* a carry into bit 23 makes it normal */
        if (mant >= 0x1000000u) { mant >>= 1; be++; }
        if (be >= 0xFF) { c.u = sign | 0x7F800000u; return c.f; }
        c.u = sign | ((uint32_t)be << 23) | (mant & 0x7FFFFFu);
        return c.f;
    }
}
