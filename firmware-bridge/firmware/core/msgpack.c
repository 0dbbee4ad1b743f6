/* msgpack.c: the msgpack reader (the subset of docs/FORMAT.md 3.1) and the response writer. */
#include <string.h>
#include "fl.h"

/* ---- msgpack reader ----------------------------------------------------------------------- */
static int rd_be(fl_src *s, int n, uint64_t *v) {
    uint64_t x = 0;
    int i, b;
    for (i = 0; i < n; i++) {
        if ((b = fl_src_byte(s)) < 0) return -1;
        x = (x << 8) | (uint8_t)b;
    }
    *v = x;
    return 0;
}

static int skip_bytes(fl_src *s, uint64_t n) {
    if (n > (uint64_t)(s->end - s->pos)) { s->err = 1; return -1; }
    s->pos += (uint32_t)n;
    return 0;
}

/* A msgpack float 64 as a double. Where double is binary32 (AVR), round the binary64 to the
 * nearest binary32, ties to even (as Math.fround on the workstation). */
static double f64_bits(uint64_t b) {
#if __SIZEOF_DOUBLE__ == 8
    union { uint64_t u; double f; } c;
    c.u = b;
    return c.f;
#else
    union { uint32_t u; float f; } c;
    uint32_t sign = (uint32_t)(b >> 63) << 31, mant;
    int32_t e = (int32_t)((b >> 52) & 0x7FF);
    uint64_t m = b & 0xFFFFFFFFFFFFFull, rest, half;
    int shift;
    if (e == 0x7FF) { c.u = sign | 0x7F800000u | (m ? 0x400000u : 0u); return c.f; }
    if (e == 0) { c.u = sign; return c.f; }            /* binary64 subnormals are 0 in binary32 */
    e = e - 1023 + 127;
    m |= (uint64_t)1 << 52;                             /* 53-bit significand */
    shift = e > 0 ? 29 : 29 + 1 - e;                    /* binary32 subnormal: shift further */
    if (shift > 60) { c.u = sign; return c.f; }
    mant = (uint32_t)(m >> shift);
    rest = m & (((uint64_t)1 << shift) - 1);
    half = (uint64_t)1 << (shift - 1);
    if (rest > half || (rest == half && (mant & 1u))) mant++;
    if (e <= 0) { c.u = sign | mant; return c.f; }     /* a carry into bit 23 makes it normal */
    if (mant >= 0x1000000u) { mant >>= 1; e++; }
    if (e >= 0xFF) { c.u = sign | 0x7F800000u; return c.f; }
    c.u = sign | ((uint32_t)e << 23) | (mant & 0x7FFFFFu);
    return c.f;
#endif
}

int mp_head(fl_src *s, mp_item *it) {
    int b = fl_src_byte(s);
    uint64_t v;
    uint32_t left;
    memset(it, 0, sizeof *it);
    if (b < 0) return -1;
    if (b <= 0x7f) { it->type = MP_INT; it->u = (uint64_t)b; it->f = b; return 0; }
    if (b >= 0xe0) { it->type = MP_INT; it->neg = 1; it->u = (uint64_t)(256 - b); it->f = -(double)it->u; return 0; }
    if (b >= 0x80 && b <= 0x8f) { it->type = MP_MAP; it->u = (uint64_t)(b & 15); goto count; }
    if (b >= 0x90 && b <= 0x9f) { it->type = MP_ARRAY; it->u = (uint64_t)(b & 15); goto count; }
    if (b >= 0xa0 && b <= 0xbf) { it->type = MP_STR; it->u = (uint64_t)(b & 31); goto payload; }
    switch (b) {
    case 0xc0: it->type = MP_NIL; return 0;
    case 0xc2: it->type = MP_BOOL; it->u = 0; return 0;
    case 0xc3: it->type = MP_BOOL; it->u = 1; return 0;
    case 0xc4: case 0xc5: case 0xc6:
        if (rd_be(s, 1 << (b - 0xc4), &v)) return -1;
        it->type = MP_BIN; it->u = v; goto payload;
    case 0xca: {
        union { uint32_t u; float f; } c;
        if (rd_be(s, 4, &v)) return -1;
        c.u = (uint32_t)v; it->type = MP_FLOAT; it->f = c.f; return 0;
    }
    case 0xcb:
        if (rd_be(s, 8, &v)) return -1;
        it->type = MP_FLOAT; it->f = f64_bits(v); return 0;
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        if (rd_be(s, 1 << (b - 0xcc), &v)) return -1;
        it->type = MP_INT; it->u = v; it->f = (double)v; return 0;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        int n = 1 << (b - 0xd0);
        int64_t sv;
        if (rd_be(s, n, &v)) return -1;
        if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~(uint64_t)0 << (8 * n);
        sv = (int64_t)v;
        it->type = MP_INT;
        if (sv < 0) { it->neg = 1; it->u = (uint64_t)0 - (uint64_t)sv; } else it->u = (uint64_t)sv;
        it->f = (double)sv;
        return 0;
    }
    case 0xd9: case 0xda: case 0xdb:
        if (rd_be(s, 1 << (b - 0xd9), &v)) return -1;
        it->type = MP_STR; it->u = v; goto payload;
    case 0xdc: case 0xdd:
        if (rd_be(s, b == 0xdc ? 2 : 4, &v)) return -1;
        it->type = MP_ARRAY; it->u = v; goto count;
    case 0xde: case 0xdf:
        if (rd_be(s, b == 0xde ? 2 : 4, &v)) return -1;
        it->type = MP_MAP; it->u = v; goto count;
    default:
        it->type = MP_BAD; /* ext, fixext, 0xc1 */
        return -1;
    }
payload:
    it->at = s->pos;
    return skip_bytes(s, it->u);
count:
    left = s->end - s->pos;
    if (it->u > (uint64_t)left || (it->type == MP_MAP && it->u * 2 > (uint64_t)left)) { s->err = 1; return -1; }
    return 0;
}

static int utf8_ok(fl_src *s, uint32_t at, uint32_t n) {
    fl_src t = *s;
    uint32_t i = 0;
    t.pos = at;
    t.end = at + n;
    t.cache_at = 0xFFFFFFFFu;
    while (i < n) {
        int c = fl_src_byte(&t), k, j;
        uint32_t cp;
        if (c < 0) return 0;
        i++;
        if (c < 0x80) continue;
        if ((c & 0xE0) == 0xC0) { k = 1; cp = (uint32_t)(c & 0x1F); }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = (uint32_t)(c & 0x0F); }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = (uint32_t)(c & 0x07); }
        else return 0;
        for (j = 0; j < k; j++) {
            int d = fl_src_byte(&t);
            if (d < 0 || (d & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (uint32_t)(d & 0x3F);
            i++;
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    }
    return 1;
}

int mp_skip(fl_src *s, int strict, int depth) {
    mp_item it;
    uint64_t i;
    if (depth > FL_MAX_DEPTH) return -1;
    if (mp_head(s, &it)) return -1;
    switch (it.type) {
    case MP_STR:
        return strict && !utf8_ok(s, it.at, (uint32_t)it.u) ? -1 : 0;
    case MP_BIN:
        return strict ? -1 : 0;
    case MP_ARRAY:
        for (i = 0; i < it.u; i++) if (mp_skip(s, strict, depth + 1)) return -1;
        return 0;
    case MP_MAP:
        for (i = 0; i < it.u; i++) {
            mp_item k;
            if (strict) {
                if (mp_head(s, &k) || k.type != MP_STR || !utf8_ok(s, k.at, (uint32_t)k.u)) return -1;
            } else if (mp_skip(s, 0, depth + 1)) return -1;
            if (mp_skip(s, strict, depth + 1)) return -1;
        }
        return 0;
    default:
        return 0;
    }
}

int mp_str_eq(fl_src *s, const mp_item *it, const char *lit) {
    uint32_t n = (uint32_t)strlen(lit), i;
    if (it->type != MP_STR || it->u != n) return 0;
    if (s->mem) return memcmp(s->mem + it->at, lit, n) == 0;
    for (i = 0; i < n; i++) if (fl_model_byte(it->at + i) != (uint8_t)FL_RD(lit + i)) return 0;
    return 1;
}

int mp_num(const mp_item *it, double *v) {
    if (it->type != MP_INT && it->type != MP_FLOAT) return -1;
    *v = it->f;
    return 0;
}

/* ---- msgpack writer ----------------------------------------------------------------------- */
void mpw_init(mp_writer *w, uint8_t *buf, uint16_t cap) { w->buf = buf; w->cap = cap; w->len = 0; w->err = 0; }

void mpw_raw(mp_writer *w, const void *p, uint32_t n) {
    if (w->err || n > (uint32_t)(w->cap - w->len)) { w->err = 1; return; }
    memcpy(w->buf + w->len, p, n);
    w->len = (uint16_t)(w->len + n);
}

static void put_be(mp_writer *w, uint8_t tag, uint32_t v, int n) {
    uint8_t b[5];
    int i;
    b[0] = tag;
    for (i = 0; i < n; i++) b[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    mpw_raw(w, b, (uint32_t)(1 + n));
}

static void put_count(mp_writer *w, uint32_t n, uint8_t fix, uint8_t fixmax, uint8_t t8, uint8_t t16, uint8_t t32) {
    if (n <= fixmax) { uint8_t b = (uint8_t)(fix | n); mpw_raw(w, &b, 1); }
    else if (t8 && n <= 0xFF) put_be(w, t8, n, 1);
    else if (n <= 0xFFFF) put_be(w, t16, n, 2);
    else put_be(w, t32, n, 4);
}

void mpw_map(mp_writer *w, uint32_t n) { put_count(w, n, 0x80, 15, 0, 0xde, 0xdf); }
void mpw_array(mp_writer *w, uint32_t n) { put_count(w, n, 0x90, 15, 0, 0xdc, 0xdd); }
void mpw_strn(mp_writer *w, const char *s, uint32_t n) { put_count(w, n, 0xa0, 31, 0xd9, 0xda, 0xdb); mpw_raw(w, s, n); }
void mpw_str(mp_writer *w, const char *s) { mpw_strn(w, s, (uint32_t)strlen(s)); }
void mpw_bin_head(mp_writer *w, uint32_t n) {
    if (n <= 0xFF) put_be(w, 0xc4, n, 1);
    else if (n <= 0xFFFF) put_be(w, 0xc5, n, 2);
    else put_be(w, 0xc6, n, 4);
}
void mpw_uint(mp_writer *w, uint32_t v) {
    if (v <= 0x7f) { uint8_t b = (uint8_t)v; mpw_raw(w, &b, 1); }
    else if (v <= 0xFF) put_be(w, 0xcc, v, 1);
    else if (v <= 0xFFFF) put_be(w, 0xcd, v, 2);
    else put_be(w, 0xce, v, 4);
}
void mpw_bool(mp_writer *w, int v) { uint8_t b = v ? 0xc3 : 0xc2; mpw_raw(w, &b, 1); }
void mpw_nil(mp_writer *w) { uint8_t b = 0xc0; mpw_raw(w, &b, 1); }

