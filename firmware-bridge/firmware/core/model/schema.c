/* model/schema.c: what the model reader's stages share: the reading state, the schema readers,
 * the name lookup of tensors and values, and the table allocator (tables grow down from the
 * arena's end). */
#include <string.h>
#include "model.h"

fl_reader_state fl_rd;

void fl_graph_err(const char *code, const char *msg, uint32_t at, uint16_t len) {
    if (fl_rd.g_code) return;
    fl_rd.g_code = code; fl_rd.g_msg = msg; fl_rd.g_at = at; fl_rd.g_len = len;
}

int fl_fail_name(const char *code, const char *msg, uint32_t at, uint16_t len) {
    fl_fail(code, msg);
    if (len) { fl_msg_cat(": "); fl_msg_name(at, len); }
    return -1;
}

void *fl_tab_alloc(uint32_t n) {
    n = (n + 7u) & ~7u;
    if (n > fl_rd.tab_top - fl_rd.prep_top) return NULL;
    fl_rd.tab_top -= n;
    memset(fl_arena + fl_rd.tab_top, 0, n);
    return fl_arena + fl_rd.tab_top;
}

int fl_dims(uint32_t **dims, uint8_t have, uint8_t rank) {
    static uint32_t none[FL_MAX_RANK];
    if (rank == 0) { if (!*dims) *dims = none; return 0; }
    if (*dims && *dims != none && have >= rank) return 0;
    if (!(*dims = (uint32_t *)fl_tab_alloc(4u * rank))) return fl_fail("TOO_LARGE", "model tables do not fit the arena");
    return 0;
}

void *fl_prep_alloc(uint32_t n) {
    uint8_t *p = fl_arena + fl_rd.prep_top;
    n = (n + 7u) & ~7u;
    if (n > fl_rd.tab_top - fl_rd.prep_top) return NULL;
    fl_rd.prep_top += n;
    memset(p, 0, n);
    return p;
}

uint32_t fl_name_hash(uint32_t at, uint16_t len) {
    uint32_t h = 2166136261u;
    uint16_t i;
    for (i = 0; i < len; i++) { h ^= fl_model_byte(at + i); h *= 16777619u; }
    return h;
}

int fl_name_eq(uint32_t a, uint16_t al, uint32_t b, uint16_t bl) {
    uint16_t i;
    if (al != bl) return 0;
    if (fl_m.mp) return memcmp(fl_m.mp + a, fl_m.mp + b, al) == 0;
    for (i = 0; i < al; i++) if (fl_model_byte(a + i) != fl_model_byte(b + i)) return 0;
    return 1;
}

int fl_find_tensor(uint32_t at, uint16_t len, uint32_t h) {
    uint16_t i;
    for (i = 0; i < fl_m.ntensors; i++) {
        const fl_nm *t = FL_TN(i);
        if (t->hash == h && fl_name_eq(t->at, t->len, at, len)) return i;
    }
    return -1;
}

int fl_find_value(uint32_t at, uint16_t len, uint32_t h, uint16_t upto) {
    uint16_t i;
    for (i = 0; i < upto; i++) {
        const fl_nm *v = &FL_VR(i)->nm;
        if (v->hash == h && fl_name_eq(v->at, v->len, at, len)) return i;
    }
    return -1;
}

/* ---- small fl_schema readers ------------------------------------------------------------------ */
int fl_schema(const char *what) { return fl_fail("FLM_HEADER_SCHEMA", what); }

/* an "integer" (int, or float with an integral value), within [lo, hi] */
int fl_rd_int(fl_src *s, double lo, double hi, double *out) {
    mp_item it;
    double v;
    if (mp_head(s, &it) || mp_num(&it, &v)) return -1;
    if (v != v || v < lo || v > hi || v != (double)(int64_t)v) return -1;
    *out = v;
    return 0;
}

int fl_rd_name(fl_src *s, uint32_t *at, uint16_t *len) {
    mp_item it;
    if (mp_head(s, &it) || it.type != MP_STR || it.u == 0 || it.u > 0xFFFF) return -1;
    *at = it.at;
    *len = (uint16_t)it.u;
    return 0;
}

int fl_key(fl_src *s, mp_item *k) { return mp_head(s, k) || k->type != MP_STR ? -1 : 0; }

int fl_attr_find(const fl_node *n, const char *key, fl_src *s, mp_item *it) {
    mp_item m, k;
    uint32_t i;
    uint32_t at = FL_NR(n)->attrs_at;
    if (!at) return 0;
    fl_src_model(s, at, fl_rd.hdr_end);
    if (mp_head(s, &m) || m.type != MP_MAP) return -1;
    for (i = 0; i < m.u; i++) {
        if (fl_key(s, &k)) return -1;
        if (mp_str_eq(s, &k, key)) return mp_head(s, it) ? -1 : 1;
        if (mp_skip(s, 0, 3)) return -1;
    }
    return 0;
}
