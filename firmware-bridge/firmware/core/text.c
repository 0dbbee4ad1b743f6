/* text.c: output helpers of the text dialects (mlperf.c). */
#include <string.h>
#include "fl.h"

/* ---- text output -------------------------------------------------------------------------- */
void fl_puts(const char *s) { port_write((const uint8_t *)s, (uint16_t)strlen(s)); }

void fl_put_uint(uint32_t v) {
    char t[11];
    int i = 10;
    t[i] = 0;
    do { t[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    fl_puts(t + i);
}

/* Shortest-enough decimal for an f32: 9 significant digits, scientific notation. Enough to
 * reproduce the value exactly when parsed back (printf("%.9g") equivalent, without printf). */
void fl_put_float(float f) {
    char t[24];
    int n = 0, e = 0, i;
    uint32_t m;
    double v = f;
    union { float f; uint32_t u; } c;
    c.f = f;
    if ((c.u & 0x7F800000u) == 0x7F800000u) { fl_puts((c.u & 0x007FFFFFu) ? "nan" : (c.u >> 31) ? "-inf" : "inf"); return; }
    if (v < 0) { t[n++] = '-'; v = -v; }
    if (v == 0) { t[n++] = '0'; t[n] = 0; fl_puts(t); return; }
    while (v >= 10.0) { v /= 10.0; e++; }
    while (v < 1.0) { v *= 10.0; e--; }
    m = (uint32_t)(v * 1e8 + 0.5);
    if (m >= 1000000000u) { m /= 10; e++; }
    t[n++] = (char)('0' + m / 100000000u);
    t[n++] = '.';
    for (i = 7; i >= 0; i--) {
        uint32_t p = 1;
        int k;
        for (k = 0; k < i; k++) p *= 10;
        t[n++] = (char)('0' + (m / p) % 10);
    }
    t[n++] = 'e';
    if (e < 0) { t[n++] = '-'; e = -e; }
    if (e >= 10) t[n++] = (char)('0' + e / 10);
    t[n++] = (char)('0' + e % 10);
    t[n] = 0;
    fl_puts(t);
}

