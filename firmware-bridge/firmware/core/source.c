/* source.c: byte sources, plain memory or the model store read through the port. */
#include <string.h>
#include "fl.h"

/* ---- byte sources ------------------------------------------------------------------------- */
uint8_t fl_model_byte(uint32_t off) {
    const uint8_t *p = port_model_ptr();
    uint8_t b;
    if (p) return p[off];
    port_model_read(off, &b, 1);
    return b;
}

void fl_src_mem(fl_src *s, const uint8_t *p, uint32_t n) {
    s->mem = p;
    s->pos = 0;
    s->end = n;
    s->err = 0;
    s->cache_at = 0xFFFFFFFFu;
}

void fl_src_model(fl_src *s, uint32_t start, uint32_t end) {
    s->mem = port_model_ptr();
    s->pos = start;
    s->end = end;
    s->err = 0;
    s->cache_at = 0xFFFFFFFFu;
}

int fl_src_byte(fl_src *s) {
    if (s->pos >= s->end) { s->err = 1; return -1; }
    if (s->mem) return s->mem[s->pos++];
    if (s->cache_at == 0xFFFFFFFFu || s->pos < s->cache_at || s->pos >= s->cache_at + sizeof s->cache) {
        uint32_t n = s->end - s->pos;
        if (n > sizeof s->cache) n = sizeof s->cache;
        port_model_read(s->pos, s->cache, (uint16_t)n);
        s->cache_at = s->pos;
    }
    return s->cache[s->pos++ - s->cache_at];
}

