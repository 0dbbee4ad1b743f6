/* model.c: the .flm reader and prepare. Reads the stored model through the port (never assumes
 * flash is memory), validates it as untrusted input in the order of docs/FORMAT.md section 8,
 * builds compact tables at the arena's top end, checks the device's limits and the stored "mcu"
 * memory plan (FORMAT.md section 7). Whatever it accepts, fl_eval runs safely. */
#include <string.h>
#include "fl.h"
#include "ops.h"

fl_model fl_m;
static union { uint64_t a; uint8_t b[FL_ARENA_BYTES]; } arena_store;
uint8_t *fl_arena = arena_store.b;

#define MAX_SAFE 9007199254740991.0 /* 2^53 - 1 */

static uint32_t tab_top;     /* tables grow down from FL_ARENA_BYTES */
static uint32_t file_size, hdr_end, data_off, data_len;

/* deferred graph errors (step 8 of FORMAT.md section 8, found while reading the schema) */
static const char *g_code;
static const char *g_msg;
static uint32_t g_at;
static uint16_t g_len;

static void graph_err(const char *code, const char *msg, uint32_t at, uint16_t len) {
    if (g_code) return;
    g_code = code; g_msg = msg; g_at = at; g_len = len;
}

static int fail_name(const char *code, const char *msg, uint32_t at, uint16_t len) {
    fl_fail(code, msg);
    if (len) { fl_msg_cat(": "); fl_msg_name(at, len); }
    return -1;
}

static void *tab_alloc(uint32_t n) {
    n = (n + 7u) & ~7u;
    if (n > tab_top) return NULL;
    tab_top -= n;
    memset(fl_arena + tab_top, 0, n);
    return fl_arena + tab_top;
}

static uint32_t name_hash(uint32_t at, uint16_t len) {
    uint32_t h = 2166136261u;
    uint16_t i;
    for (i = 0; i < len; i++) { h ^= fl_model_byte(at + i); h *= 16777619u; }
    return h;
}

static int name_eq(uint32_t a, uint16_t al, uint32_t b, uint16_t bl) {
    uint16_t i;
    if (al != bl) return 0;
    if (fl_m.mp) return memcmp(fl_m.mp + a, fl_m.mp + b, al) == 0;
    for (i = 0; i < al; i++) if (fl_model_byte(a + i) != fl_model_byte(b + i)) return 0;
    return 1;
}

static int find_tensor(uint32_t at, uint16_t len, uint32_t h) {
    uint16_t i;
    for (i = 0; i < fl_m.ntensors; i++) {
        fl_tensor *t = &fl_m.tensors[i];
        if (t->hash == h && name_eq(t->name_at, t->name_len, at, len)) return i;
    }
    return -1;
}

static int find_value(uint32_t at, uint16_t len, uint32_t h, uint16_t upto) {
    uint16_t i;
    for (i = 0; i < upto; i++) {
        fl_value *v = &fl_m.values[i];
        if (v->hash == h && name_eq(v->name_at, v->name_len, at, len)) return i;
    }
    return -1;
}

/* ---- small schema readers ------------------------------------------------------------------ */
static int schema(const char *what) { return fl_fail("FLM_HEADER_SCHEMA", what); }

/* an "integer" (int, or float with an integral value), within [lo, hi] */
static int rd_int(fl_src *s, double lo, double hi, double *out) {
    mp_item it;
    double v;
    if (mp_head(s, &it) || mp_num(&it, &v)) return -1;
    if (v != v || v < lo || v > hi || v != (double)(int64_t)v) return -1;
    *out = v;
    return 0;
}

static int rd_name(fl_src *s, uint32_t *at, uint16_t *len) {
    mp_item it;
    if (mp_head(s, &it) || it.type != MP_STR || it.u == 0 || it.u > 0xFFFF) return -1;
    *at = it.at;
    *len = (uint16_t)it.u;
    return 0;
}

static int key(fl_src *s, mp_item *k) { return mp_head(s, k) || k->type != MP_STR ? -1 : 0; }

/* ---- tensors --------------------------------------------------------------------------------- */
static int read_tensor(fl_src *s, fl_tensor *t) {
    mp_item m, k;
    uint32_t i, seen = 0;
    double v;
    uint64_t numel = 1;
    uint8_t zero = 0;
    uint32_t offset = 0, length = 0;
    if (mp_head(s, &m) || m.type != MP_MAP) return schema("tensor entry is not a map");
    t->axis = 0xFF;
    for (i = 0; i < m.u; i++) {
        if (key(s, &k)) return schema("tensor key");
        if (mp_str_eq(s, &k, "name")) {
            if (rd_name(s, &t->name_at, &t->name_len)) return schema("tensor name");
            seen |= 1;
        } else if (mp_str_eq(s, &k, "dtype")) {
            if (rd_int(s, 0, MAX_SAFE, &v)) return schema("tensor dtype");
            if (v > 2) return fl_fail("FLM_BAD_DTYPE", "unknown dtype id");
            t->dtype = (uint8_t)v;
            seen |= 2;
        } else if (mp_str_eq(s, &k, "shape")) {
            mp_item a;
            uint32_t j;
            if (mp_head(s, &a) || a.type != MP_ARRAY) return schema("tensor shape");
            if (a.u > 8) return fl_fail("FLM_BAD_SHAPE", "tensor rank over 8");
            if (a.u > FL_MAX_RANK) return fl_fail("MODEL_INVALID", "tensor rank over the device's limit");
            t->rank = (uint8_t)a.u;
            for (j = 0; j < a.u; j++) {
                if (rd_int(s, -MAX_SAFE, MAX_SAFE, &v) || v < 0 || v > 2147483647.0) return fl_fail("FLM_BAD_SHAPE", "tensor dim out of range");
                t->dims[j] = (uint32_t)v;
            }
            seen |= 4;
        } else if (mp_str_eq(s, &k, "offset")) {
            if (rd_int(s, 0, MAX_SAFE, &v)) return schema("tensor offset");
            offset = v > 4294967295.0 ? 0xFFFFFFFFu : (uint32_t)v;
            seen |= 8;
        } else if (mp_str_eq(s, &k, "length")) {
            if (rd_int(s, 0, MAX_SAFE, &v)) return schema("tensor length");
            length = v > 4294967295.0 ? 0xFFFFFFFFu : (uint32_t)v;
            seen |= 16;
        } else if (mp_str_eq(s, &k, "quant")) {
            mp_item q, qk;
            uint32_t j, qs = 0;
            if (mp_head(s, &q) || q.type != MP_MAP) return schema("tensor quant");
            for (j = 0; j < q.u; j++) {
                if (key(s, &qk)) return schema("quant key");
                if (mp_str_eq(s, &qk, "scale")) {
                    mp_item a;
                    uint32_t c;
                    if (mp_head(s, &a) || a.type != MP_ARRAY || a.u > 0xFFFF) return schema("quant scale");
                    t->nscale = (uint16_t)a.u;
                    /* Where the store is not memory (AVR flash), per-channel scales that are all
                     * float64 stay in the header and are read when used: 1024 channels would
                     * otherwise take 4 KB of an 8 KB part's arena. */
                    if (!fl_m.mp && a.u > 1) {
                        fl_src probe = *s;
                        uint32_t first = s->pos;
                        for (c = 0; c < a.u; c++) {
                            if (fl_src_byte(&probe) != 0xcb) break;
                            probe.pos += 8;
                        }
                        if (c == a.u && probe.pos <= s->end) {
                            for (c = 0; c < a.u; c++) {
                                mp_item e;
                                if (mp_head(s, &e) || mp_num(&e, &v)) return schema("quant scale value");
                            }
                            t->scale = NULL;
                            t->scale_at = first;
                            qs |= 1;
                            continue;
                        }
                    }
                    t->scale = (float *)tab_alloc(4u * (uint32_t)a.u);
                    if (!t->scale && a.u) return fl_fail("TOO_LARGE", "model tables do not fit the arena");
                    for (c = 0; c < a.u; c++) {
                        mp_item e;
                        if (mp_head(s, &e) || mp_num(&e, &v)) return schema("quant scale value");
                        t->scale[c] = (float)v;
                    }
                    qs |= 1;
                } else if (mp_str_eq(s, &qk, "axis")) {
                    if (rd_int(s, 0, MAX_SAFE, &v)) return schema("quant axis");
                    t->axis = v > 254 ? 254 : (uint8_t)v;
                } else return schema("unknown key in quant");
            }
            if (!(qs & 1)) return schema("quant without scale");
            seen |= 32;
        } else return schema("unknown key in tensor entry");
    }
    if ((seen & 31) != 31) return schema("tensor entry misses a key");
    /* numel with the 2^53 - 1 rule; the byte size */
    for (i = 0; i < t->rank; i++) if (t->dims[i] == 0) zero = 1;
    if (zero) numel = 0;
    else for (i = 0; i < t->rank; i++) {
        if (numel > (uint64_t)9007199254740991ull / t->dims[i]) return fl_fail("FLM_SIZE_OVERFLOW", "tensor element count");
        numel *= t->dims[i];
    }
    {
        uint64_t dsz = t->dtype == DT_F32 ? 4 : t->dtype == DT_F16 ? 2 : 1;
        uint64_t bytes = numel * dsz;
        if (bytes > 9007199254740991ull) return fl_fail("FLM_SIZE_OVERFLOW", "tensor byte size");
        t->numel = numel > 0xFFFFFFFFull ? 0xFFFFFFFFu : (uint32_t)numel;
        /* keep length and offset for the layout checks */
        t->data = offset;
        t->inner = (bytes == length) ? 1u : 0u; /* 1: length matches; inner is recomputed later */
        if (!(seen & 32)) { t->nscale = 0; }
        (void)bytes;
    }
    return 0;
}

/* ---- attributes ------------------------------------------------------------------------------ */
static void attrs_default(fl_attrs *a) {
    memset(a, 0, sizeof *a);
    a->strides[0] = a->strides[1] = 1;
    a->dil[0] = a->dil[1] = 1;
    a->group = 1;
    a->kernel[0] = a->kernel[1] = -1;
    a->alpha = 0.01f;
    a->lo = -3.4028235e38f * 10.0f; /* -inf */
    a->hi = 3.4028235e38f * 10.0f;
    a->axis = INT32_MIN_SENTINEL;
    a->nshape = 0xFF;
}

/* read an attribute value: a number or a list of numbers (strings are skipped). Integers go to
 * ints (count in *n), the first number also to *num. Returns -1 on a schema error. */
static int rd_attr(fl_src *s, int32_t *ints, uint8_t cap, uint8_t *n, double *num, uint8_t *isint) {
    mp_item it;
    double v;
    *n = 0;
    *isint = 1;
    *num = 0;
    if (mp_head(s, &it)) return -1;
    if (it.type == MP_STR) { *isint = 0; *n = 0xFE; return 0; }
    if (it.type == MP_INT || it.type == MP_FLOAT) {
        v = it.f;
        if (v != v) return -1;
        *num = v;
        if (v != (double)(int64_t)v || v > FL_ATTR_MAX || v < -FL_ATTR_MAX) *isint = 0;
        else if (cap) ints[0] = (int32_t)v;
        *n = 1;
        return 0;
    }
    if (it.type == MP_ARRAY) {
        uint64_t i;
        *n = it.u > 254 ? 254 : (uint8_t)it.u;
        for (i = 0; i < it.u; i++) {
            mp_item e;
            if (mp_head(s, &e) || mp_num(&e, &v) || v != v) return -1;
            if (i == 0) *num = v;
            if (v != (double)(int64_t)v || v > FL_ATTR_MAX || v < -FL_ATTR_MAX) *isint = 0;
            else if (i < cap) ints[i] = (int32_t)v;
        }
        *n |= 0; /* list marker below */
        return 1; /* a list */
    }
    return -1;
}

/* attribute problems are device errors, reported after the format checks */
static const char *attr_err;

static int read_attrs(fl_src *s, fl_attrs *a) {
    mp_item m, k;
    uint32_t i;
    if (mp_head(s, &m) || m.type != MP_MAP) return schema("attrs is not a map");
    for (i = 0; i < m.u; i++) {
        int32_t ints[8];
        uint8_t n, isint;
        double num;
        int list, str;
        if (key(s, &k) || k.u == 0) return schema("attribute name");
        list = rd_attr(s, ints, 8, &n, &num, &isint);
        if (list < 0) return schema("attribute value");
        str = n == 0xFE; /* a string: wrong type for every attribute the device reads, ignored for others */
#define LISTN(name, dst, cnt) \
        if (mp_str_eq(s, &k, name)) { \
            uint8_t j; \
            if (list != 1 || n != (cnt) || !isint) { if (!attr_err) attr_err = name " must be a list of " #cnt " small integers"; continue; } \
            for (j = 0; j < (cnt); j++) (dst)[j] = ints[j]; \
            continue; \
        }
        LISTN("strides", a->strides, 2)
        LISTN("pads", a->pads, 4)
        LISTN("dilations", a->dil, 2)
        LISTN("kernel", a->kernel, 2)
#undef LISTN
#define SCALARI(name, dst) \
        if (mp_str_eq(s, &k, name)) { \
            if (list != 0 || !isint) { if (!attr_err) attr_err = name " must be a small integer"; continue; } \
            dst = ints[0]; \
            continue; \
        }
        SCALARI("group", a->group)
        /* flags are the integers 0 or 1, as the TypeScript reader wants (runtime/format/attrs.ts) */
        if (mp_str_eq(s, &k, "ceil_mode")) { if (list || str || (num != 0 && num != 1)) { if (!attr_err) attr_err = "ceil_mode must be 0 or 1"; } else a->ceil_mode = num != 0; continue; }
        if (mp_str_eq(s, &k, "count_include_pad")) { if (list || str || (num != 0 && num != 1)) { if (!attr_err) attr_err = "count_include_pad must be 0 or 1"; } else a->count_include_pad = num != 0; continue; }
        SCALARI("axis", a->axis)
#undef SCALARI
        if (mp_str_eq(s, &k, "alpha")) {
            if (list || str || !(num <= 3.4028234663852886e38 && num >= -3.4028234663852886e38)) { if (!attr_err) attr_err = "alpha must be a finite number"; }
            else a->alpha = (float)num;
            continue;
        }
        if (mp_str_eq(s, &k, "min")) { if (list || str) { if (!attr_err) attr_err = "min must be a number"; } else a->lo = (float)num; continue; }
        if (mp_str_eq(s, &k, "max")) { if (list || str) { if (!attr_err) attr_err = "max must be a number"; } else a->hi = (float)num; continue; }
        if (mp_str_eq(s, &k, "out_modes") || mp_str_eq(s, &k, "in_modes")) {
            int out = mp_str_eq(s, &k, "out_modes");
            uint8_t j;
            if (list != 1 || !isint || n > FL_MAX_MODES) { if (!attr_err) attr_err = "modes: too many, or not small integers"; continue; }
            for (j = 0; j < n; j++) {
                if (ints[j] < 1) { if (!attr_err) attr_err = "modes must be >= 1"; }
                if (out) a->out_modes[j] = (uint32_t)(ints[j] < 1 ? 1 : ints[j]); else a->in_modes[j] = (uint32_t)(ints[j] < 1 ? 1 : ints[j]);
            }
            if (out) a->nmodes_out = n; else a->nmodes_in = n;
            continue;
        }
        if (mp_str_eq(s, &k, "shape")) {
            uint8_t j;
            if (list != 1 || !isint || n > FL_MAX_RANK) { if (!attr_err) attr_err = "shape: rank over the device's limit, or not small integers"; continue; }
            for (j = 0; j < n; j++) a->shape[j] = ints[j];
            a->nshape = n;
            continue;
        }
        /* other attributes (perm, ...) belong to ops the device does not run */
    }
    return 0;
}

/* ---- weights roles --------------------------------------------------------------------------- */
static int role_slot(fl_src *s, const mp_item *k) {
    static const char *const fixed[ROLE_IDX] = { "weight", "bias", "u", "v", "u_in", "core", "u_out", "a_in", "k_h", "k_w", "a_out" };
    int i;
    for (i = 0; i < ROLE_IDX; i++) if (mp_str_eq(s, k, fixed[i])) return i;
    /* core.K or factor.K */
    {
        char b[12];
        uint32_t n = (uint32_t)k->u, j, pre;
        if (n < 6 || n > 9) return -1;
        for (j = 0; j < n; j++) b[j] = (char)(s->mem ? s->mem[k->at + j] : fl_model_byte(k->at + j));
        b[n] = 0;
        if (!memcmp(b, "core.", 5)) pre = 5;
        else if (!memcmp(b, "factor.", 7)) pre = 7;
        else return -1;
        if (pre >= n) return -1;
        {
            uint32_t v = 0;
            for (j = pre; j < n; j++) {
                if (b[j] < '0' || b[j] > '9') return -1;
                v = v * 10 + (uint32_t)(b[j] - '0');
            }
            if (n - pre > 1 && b[pre] == '0') return -1;
            if (v >= FL_MAX_INDEXED) return -1;
            return ROLE_IDX + (int)v + (pre == 7 ? 0x100 : 0);
        }
    }
}

/* ---- graph ----------------------------------------------------------------------------------- */
static uint16_t out_at_len;
static uint32_t out_at;
static uint8_t idx_kind[256]; /* per node: 0 none, 1 core.K seen, 2 factor.K seen (nodes <= 256 tracked) */

static int read_node(fl_src *s, uint16_t ni) {
    fl_node *n = &fl_m.nodes[ni];
    mp_item m, k;
    uint32_t i, seen = 0;
    double v;
    if (mp_head(s, &m) || m.type != MP_MAP) return schema("node is not a map");
    for (i = 0; i < FL_MAX_ROLES; i++) n->w[i] = 0xFFFF;
    attrs_default(&n->a);
    for (i = 0; i < m.u; i++) {
        if (key(s, &k)) return schema("node key");
        if (mp_str_eq(s, &k, "name")) {
            if (rd_name(s, &n->name_at, &n->name_len)) return schema("node name");
            n->hash = name_hash(n->name_at, n->name_len);
            seen |= 1;
        } else if (mp_str_eq(s, &k, "op")) {
            if (rd_int(s, 0, MAX_SAFE, &v)) return schema("node op");
            if (v >= OP_COUNT) return fl_fail("FLM_UNKNOWN_OP", "unknown op id");
            n->op = (uint8_t)v;
            seen |= 2;
        } else if (mp_str_eq(s, &k, "inputs")) {
            mp_item a;
            uint32_t j;
            if (mp_head(s, &a) || a.type != MP_ARRAY) return schema("node inputs");
            for (j = 0; j < a.u; j++) {
                uint32_t at; uint16_t len;
                if (rd_name(s, &at, &len)) return schema("node input name");
                if (j < FL_MAX_IN) { n->in_at[j] = at; n->in_len[j] = len; }
            }
            n->nin = a.u > 255 ? 255 : (uint8_t)a.u;
            seen |= 4;
        } else if (mp_str_eq(s, &k, "outputs")) {
            mp_item a;
            uint32_t j;
            if (mp_head(s, &a) || a.type != MP_ARRAY) return schema("node outputs");
            if (a.u != 1) return fl_fail("MODEL_INVALID", "the device runs nodes with exactly one output");
            for (j = 0; j < a.u; j++) {
                fl_value *val = &fl_m.values[fl_m.nvalues];
                if (rd_name(s, &val->name_at, &val->name_len)) return schema("node output name");
                val->hash = name_hash(val->name_at, val->name_len);
                val->first = (int16_t)ni;
                n->out = fl_m.nvalues++;
            }
            seen |= 8;
        } else if (mp_str_eq(s, &k, "attrs")) {
            if (read_attrs(s, &n->a)) return -1;
            seen |= 16;
        } else if (mp_str_eq(s, &k, "weights")) {
            mp_item wm, rk;
            uint32_t j;
            if (mp_head(s, &wm) || wm.type != MP_MAP) return schema("node weights");
            for (j = 0; j < wm.u; j++) {
                uint32_t at; uint16_t len;
                int slot, ti;
                if (key(s, &rk) || rk.u == 0) return schema("weight role");
                slot = role_slot(s, &rk);
                if (rd_name(s, &at, &len)) return schema("weight tensor name");
                ti = find_tensor(at, len, name_hash(at, len));
                if (ti < 0) { graph_err("FLM_MISSING_TENSOR", "a weight role names a tensor that is not stored", at, len); continue; }
                if (slot < 0) { if (!attr_err) attr_err = "a weight role the device does not know"; continue; }
                if (slot >= 0x100) {
                    if (ni < 256) { if (idx_kind[ni] == 1) { if (!attr_err) attr_err = "core.K and factor.K roles on one node"; } idx_kind[ni] = 2; }
                    slot -= 0x100;
                } else if (slot >= ROLE_IDX && ni < 256) {
                    if (idx_kind[ni] == 2) { if (!attr_err) attr_err = "core.K and factor.K roles on one node"; }
                    idx_kind[ni] = 1;
                }
                n->w[slot] = (uint16_t)ti;
            }
            seen |= 32;
        } else return schema("unknown key in node");
    }
    if ((seen & 63) != 63) return schema("node misses a key");
    /* rules between attributes, as runtime/format/attrs.ts has them */
    if (n->op == OP_CLIP && n->a.lo > n->a.hi && !attr_err) attr_err = "clip min is above max";
    return 0;
}

static int read_graph(fl_src *s, uint32_t nnodes_hint) {
    mp_item m, k;
    uint32_t i, seen = 0;
    (void)nnodes_hint;
    if (mp_head(s, &m) || m.type != MP_MAP) return schema("graph is not a map");
    for (i = 0; i < m.u; i++) {
        if (key(s, &k)) return schema("graph key");
        if (mp_str_eq(s, &k, "inputs")) {
            mp_item a;
            uint32_t j;
            if (mp_head(s, &a) || a.type != MP_ARRAY) return schema("graph inputs");
            if (a.u != 1) return fl_fail("MODEL_INVALID", "the device runs graphs with exactly one input");
            for (j = 0; j < a.u; j++) {
                mp_item e, ek;
                uint32_t x, es = 0;
                fl_value *val = &fl_m.values[0];
                if (mp_head(s, &e) || e.type != MP_MAP) return schema("graph input entry");
                for (x = 0; x < e.u; x++) {
                    if (key(s, &ek)) return schema("graph input key");
                    if (mp_str_eq(s, &ek, "name")) {
                        if (rd_name(s, &val->name_at, &val->name_len)) return schema("graph input name");
                        val->hash = name_hash(val->name_at, val->name_len);
                        es |= 1;
                    } else if (mp_str_eq(s, &ek, "shape")) {
                        mp_item sh;
                        uint32_t d;
                        double dv;
                        if (mp_head(s, &sh) || sh.type != MP_ARRAY) return schema("graph input shape");
                        if (sh.u > 8) return fl_fail("FLM_BAD_SHAPE", "graph input rank over 8");
                        if (sh.u > FL_MAX_RANK) return fl_fail("MODEL_INVALID", "graph input rank over the device's limit");
                        val->rank = (uint8_t)sh.u;
                        for (d = 0; d < sh.u; d++) {
                            if (rd_int(s, -MAX_SAFE, MAX_SAFE, &dv) || dv < -1 || dv > 2147483647.0) return fl_fail("FLM_BAD_SHAPE", "graph input dim out of range");
                            val->dims[d] = dv < 0 ? 1u : (uint32_t)dv; /* free dims run at 1 (batch 1) */
                        }
                        es |= 2;
                    } else return schema("unknown key in graph input");
                }
                if (es != 3) return schema("graph input misses a key");
                val->first = -1;
            }
            seen |= 1;
        } else if (mp_str_eq(s, &k, "outputs")) {
            mp_item a;
            uint32_t j;
            if (mp_head(s, &a) || a.type != MP_ARRAY) return schema("graph outputs");
            if (a.u != 1) return fl_fail("MODEL_INVALID", "the device runs graphs with exactly one output");
            for (j = 0; j < a.u; j++) if (rd_name(s, &out_at, &out_at_len)) return schema("graph output name");
            seen |= 2;
        } else if (mp_str_eq(s, &k, "nodes")) {
            mp_item a;
            uint32_t j;
            if (mp_head(s, &a) || a.type != MP_ARRAY) return schema("graph nodes");
            if (a.u != fl_m.nnodes) return schema("graph nodes");
            for (j = 0; j < a.u; j++) if (read_node(s, (uint16_t)j)) return -1;
            seen |= 4;
        } else return schema("unknown key in graph");
    }
    if (seen != 7) return schema("graph misses a key");
    return 0;
}

/* count the nodes before reading them (to size the tables) */
static int count_nodes(fl_src s, uint32_t *count) {
    mp_item m, k;
    uint32_t i;
    if (mp_head(&s, &m) || m.type != MP_MAP) return schema("graph is not a map");
    for (i = 0; i < m.u; i++) {
        if (key(&s, &k)) return schema("graph key");
        if (mp_str_eq(&s, &k, "nodes")) {
            mp_item a;
            if (mp_head(&s, &a) || a.type != MP_ARRAY) return schema("graph nodes");
            *count = (uint32_t)a.u;
            return 0;
        }
        if (mp_skip(&s, 0, 1)) return schema("graph");
    }
    return schema("graph misses a key");
}

/* ---- metadata keys: ^[a-z][a-z0-9_]*(\.[a-z0-9][a-z0-9_]*)*$ ---------------------------------- */
static int meta_key_ok(fl_src *s, const mp_item *k) {
    uint32_t i;
    int prev_dot = 1, first = 1;
    if (k->u == 0) return 0;
    for (i = 0; i < k->u; i++) {
        uint8_t c = s->mem ? s->mem[k->at + i] : fl_model_byte(k->at + i);
        int lower = c >= 'a' && c <= 'z', digit = c >= '0' && c <= '9';
        if (c == '.') { if (prev_dot) return 0; prev_dot = 1; continue; }
        if (prev_dot) {
            if (first ? !lower : !(lower || digit)) return 0;
        } else if (!(lower || digit || c == '_')) return 0;
        prev_dot = 0;
        first = 0;
    }
    return !prev_dot;
}

/* ---- plan ------------------------------------------------------------------------------------ */
static int plan_fail(const char *msg) { return fl_fail("FLM_MEMORY_PLAN", msg); }

static int inplace_op(uint8_t op) {
    return op == OP_RELU || op == OP_LEAKY_RELU || op == OP_SIGMOID || op == OP_TANH || op == OP_CLIP ||
           op == OP_FLATTEN || op == OP_RESHAPE || op == OP_IDENTITY;
}

static int read_plan_entries(fl_src *s, int scratch, uint32_t align) {
    mp_item a;
    uint32_t j;
    if (mp_head(s, &a) || a.type != MP_ARRAY) return plan_fail("plan entries are not a list");
    for (j = 0; j < a.u; j++) {
        mp_item e, k;
        uint32_t x, seen = 0, at = 0, off = 0, bytes = 0, node = 0;
        uint16_t len = 0;
        double v, first = 0, last = 0;
        int external = 0, fused = 0;
        if (mp_head(s, &e) || e.type != MP_MAP) return plan_fail("plan entry is not a map");
        for (x = 0; x < e.u; x++) {
            if (key(s, &k)) return plan_fail("plan entry key");
            if (!scratch && mp_str_eq(s, &k, "name")) { if (rd_name(s, &at, &len)) return plan_fail("plan value name"); seen |= 1; }
            else if (scratch && mp_str_eq(s, &k, "node")) { if (rd_int(s, 0, 65535, &v)) return plan_fail("plan scratch node"); node = (uint32_t)v; seen |= 1; }
            else if (mp_str_eq(s, &k, "offset")) { if (rd_int(s, 0, 4294967295.0, &v)) return plan_fail("plan offset"); off = (uint32_t)v; seen |= 2; }
            else if (mp_str_eq(s, &k, "bytes")) { if (rd_int(s, 0, 4294967295.0, &v)) return plan_fail("plan bytes"); bytes = (uint32_t)v; seen |= 4; }
            else if (!scratch && mp_str_eq(s, &k, "first")) { if (rd_int(s, -1, 65535, &first)) return plan_fail("plan first"); seen |= 8; }
            else if (!scratch && mp_str_eq(s, &k, "last")) { if (rd_int(s, -1, 65535, &last)) return plan_fail("plan last"); seen |= 16; }
            else if (!scratch && mp_str_eq(s, &k, "external")) {
                mp_item b;
                if (mp_head(s, &b) || b.type != MP_BOOL) return plan_fail("plan external");
                external = (int)b.u;
            } else if (!scratch && mp_str_eq(s, &k, "fused")) {
                mp_item b;
                if (mp_head(s, &b) || b.type != MP_BOOL) return plan_fail("plan fused");
                fused = (int)b.u;
            } else if (mp_skip(s, 0, 3)) return plan_fail("plan entry");
        }
        if (scratch) {
            fl_node *n;
            if (seen != 7) return plan_fail("scratch entry misses a key");
            if (node >= fl_m.nnodes) return plan_fail("scratch entry names no node");
            n = &fl_m.nodes[node];
            if (n->scratch_bytes || n->scratch_off == 0xFFFFFFFFu) return plan_fail("two scratch entries for one node");
            if (off % align) return plan_fail("scratch offset not aligned");
            if ((uint64_t)off + bytes > fl_m.plan_arena) return plan_fail("scratch entry ends outside the arena");
            n->scratch_off = off;
            n->scratch_bytes = bytes;
            if (!bytes) n->scratch_off = 0xFFFFFFFFu; /* mark seen */
        } else {
            int vi;
            fl_value *val;
            if (seen != 31) return plan_fail("value entry misses a key");
            vi = find_value(at, len, name_hash(at, len), fl_m.nvalues);
            if (vi < 0) return fail_name("FLM_MEMORY_PLAN", "plan names an unknown value", at, len);
            val = &fl_m.values[vi];
            if (val->have_plan) return fail_name("FLM_MEMORY_PLAN", "two plan entries for one value", at, len);
            val->have_plan = 1;
            if ((int)first != val->first || (int)last != val->last) return fail_name("FLM_MEMORY_PLAN", "wrong lifetime for", at, len);
            if (fused) {
                /* an intermediate of a streamed chain: checked as a chain in check_plan */
                if (external) return fail_name("FLM_MEMORY_PLAN", "a value cannot be both external and fused", at, len);
                if (off || bytes) return fail_name("FLM_MEMORY_PLAN", "a fused value has offset 0 and 0 bytes", at, len);
                val->fused = 1;
            } else if (external) {
                /* the graph input, or (checked below) a pure reshape of an external value */
                if (off || bytes) return fail_name("FLM_MEMORY_PLAN", "an external value has offset 0 and 0 bytes", at, len);
                val->external = 1;
            } else {
                if ((uint16_t)vi == fl_m.input) return plan_fail("the graph input must be external in an mcu plan");
                if (off % align) return fail_name("FLM_MEMORY_PLAN", "offset not aligned", at, len);
                if ((uint64_t)bytes < (uint64_t)val->numel * 4u) return fail_name("FLM_MEMORY_PLAN", "too few bytes for", at, len);
                if ((uint64_t)off + bytes > fl_m.plan_arena) return fail_name("FLM_MEMORY_PLAN", "value ends outside the arena", at, len);
            }
            val->off = off;
            val->bytes = bytes;
        }
    }
    return 0;
}

/* The structure of the whole memory_plan (every plan, not only "mcu"), as the workstation's
 * reader checks it: required and allowed keys, types, ranges. */
static int plan_int(fl_src *s, double min) { double v; return rd_int(s, min, MAX_SAFE, &v); }

/* keys: a string of '\0'-separated names; required bit i for names[i] in req */
static int plan_map(fl_src *s, const char *const *names, int n, uint32_t req, int (*val)(fl_src *, int)) {
    mp_item m, k;
    uint32_t i, seen = 0;
    if (mp_head(s, &m) || m.type != MP_MAP) return plan_fail("plan entry must be a map");
    for (i = 0; i < m.u; i++) {
        int j;
        if (key(s, &k)) return plan_fail("plan key");
        for (j = 0; j < n; j++) if (mp_str_eq(s, &k, names[j])) break;
        if (j == n) return plan_fail("unknown key in memory_plan");
        if (seen & (1u << j)) return plan_fail("duplicate key in memory_plan");
        seen |= 1u << j;
        if (val(s, j)) return -1;
    }
    if ((seen & req) != req) return plan_fail("missing key in memory_plan");
    return 0;
}

static int plan_list(fl_src *s, uint32_t max, const char *const *names, int n, uint32_t req, int (*val)(fl_src *, int)) {
    mp_item a;
    uint32_t i;
    if (mp_head(s, &a) || a.type != MP_ARRAY) return plan_fail("memory_plan list must be an array");
    if (a.u > max) return plan_fail("memory_plan list too long");
    for (i = 0; i < a.u; i++) if (plan_map(s, names, n, req, val)) return -1;
    return 0;
}

static const char *const pv_names[] = { "name", "offset", "bytes", "first", "last", "external", "fused" };
static int pv_val(fl_src *s, int j) {
    if (j == 0) { uint32_t at; uint16_t len; return rd_name(s, &at, &len) ? plan_fail("plan value name") : 0; }
    if (j == 5) { mp_item b; return mp_head(s, &b) || b.type != MP_BOOL ? plan_fail("plan external must be a boolean") : 0; }
    if (j == 6) { mp_item b; return mp_head(s, &b) || b.type != MP_BOOL ? plan_fail("plan fused must be a boolean") : 0; }
    return plan_int(s, j >= 3 ? -1 : 0) ? plan_fail("plan value field must be an integer in range") : 0;
}
static const char *const ps_names[] = { "node", "offset", "bytes" };
static int ps_val(fl_src *s, int j) { (void)j; return plan_int(s, 0) ? plan_fail("plan scratch field must be an integer >= 0") : 0; }
static const char *const pst_names[] = { "node", "use", "rows" };
static int pst_val(fl_src *s, int j) {
    if (j == 1) {
        mp_item u;
        fl_src t = *s;
        if (mp_head(&t, &u) || u.type != MP_STR || !(mp_str_eq(s, &u, "contract") || mp_str_eq(s, &u, "rebuild"))) return plan_fail("plan strategy use must be contract or rebuild");
        *s = t;
        return 0;
    }
    return plan_int(s, 0) ? plan_fail("plan strategy field must be an integer >= 0") : 0;
}
static const char *const pp_names[] = { "profile", "batch", "align", "arena", "values", "scratch", "peak_scratch", "strategy" };
static int pp_val(fl_src *s, int j) {
    double v;
    switch (j) {
    case 0: { uint32_t at; uint16_t len; return rd_name(s, &at, &len) ? plan_fail("plan profile must be a non-empty string") : 0; }
    case 1: return plan_int(s, 1) ? plan_fail("plan batch must be an integer >= 1") : 0;
    case 2:
        if (rd_int(s, 4, MAX_SAFE, &v)) return plan_fail("plan align must be an integer >= 4");
        if (v > 4294967295.0 || ((uint32_t)v & ((uint32_t)v - 1))) return plan_fail("plan align is not a power of two");
        return 0;
    case 3: case 6: return plan_int(s, 0) ? plan_fail("plan size must be an integer >= 0") : 0;
    case 4: return plan_list(s, 65536, pv_names, 7, 31, pv_val);
    case 5: return plan_list(s, 65536, ps_names, 3, 7, ps_val);
    default: return plan_list(s, 65536, pst_names, 3, 7, pst_val);
    }
}
static const char *const mp_names[] = { "version", "plans" };
static int mp_val(fl_src *s, int j) {
    if (j == 0) { double v; return rd_int(s, -MAX_SAFE, MAX_SAFE, &v) || v != 1 ? plan_fail("memory_plan version is not 1") : 0; }
    return plan_list(s, 8, pp_names, 8, 127, pp_val);
}

static int plan_structure(fl_src s) { return plan_map(&s, mp_names, 2, 3, mp_val); }

/* Fused values (docs/FORMAT.md section 7): each is read by one node only, the next one, as its
 * only input; the chains they make are producer -> [activation] -> consumer with a producer and
 * consumer this firmware streams (fl_chain_supported). Sets every node's span (the chain's first
 * and last node) for the overlap rule and for eval. */
/* lifetimes widened over fused chains: a chain runs as one step */
static int span_first(int first) { return first < 0 ? first : fl_m.nodes[first].span_lo; }
static int span_last(int last) { return last >= (int)fl_m.nnodes ? last : fl_m.nodes[last].span_hi; }

static int check_chains(void) {
    uint32_t i;
    for (i = 0; i < fl_m.nnodes; i++) { fl_m.nodes[i].span_lo = (uint16_t)i; fl_m.nodes[i].span_hi = (uint16_t)i; }
    for (i = 0; i < fl_m.nvalues; i++) {
        fl_value *v = &fl_m.values[i];
        uint32_t k, j, readers = 0;
        if (!v->fused) continue;
        if (i == fl_m.input || v->is_output || v->first < 0) return fail_name("FLM_MEMORY_PLAN", "a graph input or output cannot be fused", v->name_at, v->name_len);
        for (k = 0; k < fl_m.nnodes; k++)
            for (j = 0; j < fl_m.nodes[k].nin && j < FL_MAX_IN; j++) if (fl_m.nodes[k].in[j] == (uint16_t)i) readers++;
        if (readers != 1 || v->last != v->first + 1 || fl_m.nodes[v->last].nin != 1)
            return fail_name("FLM_MEMORY_PLAN", "a fused value must be the only input of the next node and read by it alone", v->name_at, v->name_len);
    }
    for (i = 0; i < fl_m.nnodes; i++) {
        fl_node *c = &fl_m.nodes[i], *p;
        uint32_t lo, k;
        if (fl_m.values[c->out].fused || (c->in[0] & FL_REF_TENSOR) || !fl_m.values[c->in[0]].fused) continue;
        /* c consumes a chain: walk back over at most one activation to the producer */
        lo = i - 1;
        p = &fl_m.nodes[lo];
        if (fl_chain_act(p->op) && !(p->in[0] & FL_REF_TENSOR) && fl_m.values[p->in[0]].fused) p = &fl_m.nodes[--lo];
        if (p->nin != 1 || (!(p->in[0] & FL_REF_TENSOR) && fl_m.values[p->in[0]].fused))
            return fail_name("FLM_MEMORY_PLAN", "a fused chain is producer, at most one activation, consumer", c->name_at, c->name_len);
        if (!fl_chain_supported(p->op, c->op))
            return fail_name("FLM_MEMORY_PLAN", "this firmware does not stream the fused chain ending at", c->name_at, c->name_len);
        if (fl_chain_work(p, c)) return -1;
        for (k = lo; k <= i; k++) { fl_m.nodes[k].span_lo = (uint16_t)lo; fl_m.nodes[k].span_hi = (uint16_t)i; }
    }
    /* every fused value lies inside a chain (an activation with a fused output that no consumer
     * reached, or a fused value read by a node of another kind, is not one) */
    for (i = 0; i < fl_m.nvalues; i++) {
        fl_value *v = &fl_m.values[i];
        if (v->fused && fl_m.nodes[v->first].span_hi == (uint16_t)v->first)
            return fail_name("FLM_MEMORY_PLAN", "a fused value outside a chain this firmware streams", v->name_at, v->name_len);
    }
    return 0;
}

static int check_plan(fl_src *s) {
    mp_item m, k;
    uint32_t i;
    int found = 0;
    if (mp_head(s, &m) || m.type != MP_MAP) return plan_fail("memory_plan is not a map");
    for (i = 0; i < m.u; i++) {
        if (key(s, &k)) return plan_fail("memory_plan key");
        if (mp_str_eq(s, &k, "plans")) {
            mp_item a;
            uint32_t j;
            if (mp_head(s, &a) || a.type != MP_ARRAY) return plan_fail("plans is not a list");
            for (j = 0; j < a.u; j++) {
                /* find profile first: scan the plan map once for profile/batch/align/arena */
                fl_src probe = *s;
                mp_item pm, pk;
                uint32_t x, align = 0, arena = 0, seen = 0;
                double v;
                int mcu = 0;
                if (mp_head(&probe, &pm) || pm.type != MP_MAP) return plan_fail("plan is not a map");
                for (x = 0; x < pm.u; x++) {
                    if (key(&probe, &pk)) return plan_fail("plan key");
                    if (mp_str_eq(&probe, &pk, "profile")) {
                        mp_item pv;
                        fl_src t = probe;
                        if (mp_head(&t, &pv)) return plan_fail("plan profile");
                        mcu = mp_str_eq(&probe, &pv, "mcu");
                        probe = t;
                    } else if (mp_str_eq(&probe, &pk, "batch")) {
                        if (rd_int(&probe, 0, MAX_SAFE, &v)) return plan_fail("plan batch");
                        if (v != 1) seen |= 0x100;
                        seen |= 1;
                    } else if (mp_str_eq(&probe, &pk, "align")) {
                        if (rd_int(&probe, 0, 65536, &v)) return plan_fail("plan align");
                        align = (uint32_t)v; seen |= 2;
                    } else if (mp_str_eq(&probe, &pk, "arena")) {
                        if (rd_int(&probe, 0, 4294967295.0, &v)) return plan_fail("plan arena");
                        arena = (uint32_t)v; seen |= 4;
                    } else if (mp_skip(&probe, 0, 3)) return plan_fail("plan");
                }
                if (!mcu || found) { if (mp_skip(s, 0, 2)) return plan_fail("plan"); continue; }
                found = 1;
                if ((seen & 7) != 7) return plan_fail("mcu plan misses batch, align or arena");
                if (seen & 0x100) return plan_fail("mcu plan batch is not 1");
                if (align < 4 || (align & (align - 1))) return plan_fail("plan align is not a power of two >= 4");
                fl_m.plan_arena = arena;
                if ((uint64_t)arena + fl_m.tables_bytes > FL_ARENA_BYTES) {
                    fl_fail("TOO_LARGE", "plan arena ");
                    fl_msg_uint(arena); fl_msg_cat(" + tables "); fl_msg_uint(fl_m.tables_bytes);
                    fl_msg_cat(" > arena "); fl_msg_uint(FL_ARENA_BYTES);
                    return -1;
                }
                /* now read the entries */
                if (mp_head(s, &pm)) return plan_fail("plan");
                for (x = 0; x < pm.u; x++) {
                    if (key(s, &pk)) return plan_fail("plan key");
                    if (mp_str_eq(s, &pk, "values")) { if (read_plan_entries(s, 0, align)) return -1; }
                    else if (mp_str_eq(s, &pk, "scratch")) { if (read_plan_entries(s, 1, align)) return -1; }
                    else if (mp_str_eq(s, &pk, "strategy")) {
                        /* the firmware's kernels contract through the factors; a plan sized for
                         * rebuilt weight tiles is not for them */
                        mp_item sa, e, ek;
                        uint32_t x2, y2;
                        if (mp_head(s, &sa)) return plan_fail("plan strategy");
                        for (x2 = 0; x2 < sa.u; x2++) {
                            if (mp_head(s, &e)) return plan_fail("plan strategy");
                            for (y2 = 0; y2 < e.u; y2++) {
                                if (key(s, &ek)) return plan_fail("plan strategy");
                                if (mp_str_eq(s, &ek, "use")) {
                                    mp_item u;
                                    fl_src t2 = *s;
                                    if (mp_head(&t2, &u)) return plan_fail("plan strategy");
                                    if (!mp_str_eq(s, &u, "contract")) return plan_fail("the firmware runs only the contract strategy");
                                    *s = t2;
                                } else if (mp_skip(s, 0, 4)) return plan_fail("plan strategy");
                            }
                        }
                    }
                    else if (mp_skip(s, 0, 3)) return plan_fail("plan");
                }
            }
        } else if (mp_skip(s, 0, 2)) return plan_fail("memory_plan");
    }
    if (!found) return plan_fail("no mcu plan in the model (convert it again with a converter that writes one)");
    /* coverage, external values, scratch sizes, overlap */
    for (i = 0; i < fl_m.nvalues; i++) {
        fl_value *v = &fl_m.values[i];
        if (!v->have_plan) return fail_name("FLM_MEMORY_PLAN", "no plan entry for", v->name_at, v->name_len);
        if (v->external && i != fl_m.input) {
            /* values are in definition order, so the producer's input is already known */
            fl_node *n = &fl_m.nodes[v->first];
            if (!(n->op == OP_FLATTEN || n->op == OP_RESHAPE || n->op == OP_IDENTITY) || (n->in[0] & FL_REF_TENSOR) || !fl_m.values[n->in[0]].external)
                return fail_name("FLM_MEMORY_PLAN", "only the graph input and pure reshapes of it may be external", v->name_at, v->name_len);
        }
        if (v->is_output && v->external) return plan_fail("the graph output cannot be external");
    }
    if (check_chains()) return -1;
    /* u8 input read in place: every reader of an external value can take u8 pixels */
    fl_m.u8_inplace = 1;
    for (i = 0; i < fl_m.nnodes; i++) {
        fl_node *n = &fl_m.nodes[i];
        uint32_t j;
        for (j = 0; j < n->nin && j < FL_MAX_IN; j++) {
            if ((n->in[j] & FL_REF_TENSOR) || !fl_m.values[n->in[j]].external) continue;
            if (!(n->op == OP_DENSE || n->op == OP_SVD_DENSE || n->op == OP_FLATTEN || n->op == OP_RESHAPE || n->op == OP_IDENTITY)) fl_m.u8_inplace = 0;
        }
    }
    fl_m.peak_scratch = 0;
    for (i = 0; i < fl_m.nnodes; i++) {
        fl_node *n = &fl_m.nodes[i];
        if (n->scratch_off == 0xFFFFFFFFu) { n->scratch_off = 0; n->scratch_bytes = 0; }
        if (n->scratch_bytes < n->scratch_need) {
            fail_name("FLM_MEMORY_PLAN", "scratch too small for node", n->name_at, n->name_len);
            fl_msg_cat(" need "); fl_msg_uint(n->scratch_need);
            return -1;
        }
        if (n->scratch_bytes > fl_m.peak_scratch) fl_m.peak_scratch = n->scratch_bytes;
    }
    /* pairwise overlap of live buffers: values (not external) and scratch */
    {
        uint32_t nb = (uint32_t)fl_m.nvalues + fl_m.nnodes, a, b;
        for (a = 0; a < nb; a++) {
            uint32_t ao, ab; int af, al;
            if (a < fl_m.nvalues) { fl_value *v = &fl_m.values[a]; if (v->external || !v->bytes) continue; ao = v->off; ab = v->bytes; af = span_first(v->first); al = span_last(v->last); }
            else { fl_node *n = &fl_m.nodes[a - fl_m.nvalues]; if (!n->scratch_bytes) continue; ao = n->scratch_off; ab = n->scratch_bytes; af = n->span_lo; al = n->span_hi; }
            for (b = a + 1; b < nb; b++) {
                uint32_t bo, bb; int bf, bl;
                if (b < fl_m.nvalues) { fl_value *v = &fl_m.values[b]; if (v->external || !v->bytes) continue; bo = v->off; bb = v->bytes; bf = span_first(v->first); bl = span_last(v->last); }
                else { fl_node *n = &fl_m.nodes[b - fl_m.nvalues]; if (!n->scratch_bytes) continue; bo = n->scratch_off; bb = n->scratch_bytes; bf = n->span_lo; bl = n->span_hi; }
                if (af > bl || bf > al) continue;                 /* lifetimes disjoint */
                if (ao >= bo + bb || bo >= ao + ab) continue;     /* bytes disjoint */
                /* in place: b (or a) is the output of node n, the other its input read last there */
                if (a < fl_m.nvalues && b < fl_m.nvalues) {
                    fl_value *va = &fl_m.values[a], *vb = &fl_m.values[b];
                    fl_value *in = va->first < vb->first ? va : vb, *out = va->first < vb->first ? vb : va;
                    if (out->first >= 0 && in->last == out->first && in->off == out->off && out->bytes <= in->bytes) {
                        fl_node *n = &fl_m.nodes[out->first];
                        if (inplace_op(n->op) && n->span_lo == n->span_hi && n->nin >= 1 && !(n->in[0] & FL_REF_TENSOR) && &fl_m.values[n->in[0]] == in &&
                            in->first <= out->first && out->last >= in->last) continue;
                    }
                }
                if (a < fl_m.nvalues) return fail_name("FLM_MEMORY_PLAN", "live buffers overlap at", fl_m.values[a].name_at, fl_m.values[a].name_len);
                return plan_fail("live buffers overlap");
            }
        }
    }
    return 0;
}

/* ---- prepare --------------------------------------------------------------------------------- */
static uint32_t rd32(uint32_t off) {
    uint8_t b[4];
    uint32_t i;
    for (i = 0; i < 4; i++) b[i] = fl_model_byte(off + i);
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

void fl_unprepare(void) {
    memset(&fl_m, 0, sizeof fl_m);
}

float fl_scale(const fl_tensor *t, uint32_t c) {
    fl_src s;
    mp_item it;
    if (t->scale) return t->scale[c];
    fl_src_model(&s, t->scale_at + 9u * c, t->scale_at + 9u * c + 9u);
    if (mp_head(&s, &it)) return 0; /* not reached: checked at prepare */
    return (float)it.f;
}

static int prepare_inner(uint32_t size) {
    fl_src s;
    mp_item top, k;
    uint32_t i, hlen, crc, pos_graph = 0, pos_tensors = 0, pos_meta = 0, pos_plan = 0, seen = 0;
    uint32_t nnodes = 0;
    uint64_t dlen;
    g_code = NULL;
    attr_err = NULL;
    memset(idx_kind, 0, sizeof idx_kind);
    fl_unprepare();
    fl_m.mp = port_model_ptr();
    tab_top = FL_ARENA_BYTES;
    file_size = size;
    /* 1. preamble */
    if (size < 24) return fl_fail("FLM_TOO_SHORT", "fewer than 24 bytes");
    if (fl_model_byte(0) != 'F' || fl_model_byte(1) != 'L' || fl_model_byte(2) != 'M' || fl_model_byte(3) != 0) return fl_fail("FLM_BAD_MAGIC", "not an .flm file");
    if ((fl_model_byte(4) | (fl_model_byte(5) << 8)) != 1) return fl_fail("FLM_UNSUPPORTED_VERSION", "version not supported (supported: 1)");
    if (fl_model_byte(6) | fl_model_byte(7)) return fl_fail("FLM_BAD_FLAGS", "reserved flags not 0");
    hlen = rd32(8);
    if (hlen > 16777216u) return fl_fail("FLM_HEADER_TOO_LARGE", "header over 16 MiB");
    crc = rd32(12);
    dlen = (uint64_t)rd32(16) | ((uint64_t)rd32(20) << 32);
    /* 2. sizes */
    hdr_end = 24 + hlen;
    data_off = (hdr_end + 63u) & ~63u;
    if (size < data_off) return fl_fail("FLM_HEADER_TRUNCATED", "the file ends before the header and its padding");
    if ((uint64_t)data_off + dlen != size) return fl_fail("FLM_FILE_SIZE_MISMATCH", "file length is not data_offset + data_len");
    data_len = (uint32_t)dlen;
    /* 3. CRC */
    {
        uint32_t c = 0xFFFFFFFFu, off = 24;
        if (fl_m.mp) c = fl_crc32_update(c, fl_m.mp + 24, size - 24);
        else {
            uint8_t buf[32];
            while (off < size) {
                uint32_t n = size - off;
                if (n > sizeof buf) n = sizeof buf;
                port_model_read(off, buf, (uint16_t)n);
                c = fl_crc32_update(c, buf, n);
                off += n;
            }
        }
        if ((c ^ 0xFFFFFFFFu) != crc) return fl_fail("FLM_CRC_MISMATCH", "CRC32 differs");
    }
    /* 4. header padding */
    for (i = hdr_end; i < data_off; i++) if (fl_model_byte(i)) return fl_fail("FLM_BAD_PADDING", "header padding not zero");
    /* 5. msgpack subset, then schema */
    fl_src_model(&s, 24, hdr_end);
    {
        fl_src t = s;
        mp_item h;
        fl_src t2 = s;
        if (mp_skip(&t, 1, 0) || t.pos != hdr_end) return fl_fail("FLM_HEADER_DECODE", "header is not one value of the msgpack subset");
        if (mp_head(&t2, &h) || h.type != MP_MAP) return schema("header is not a map");
    }
    if (mp_head(&s, &top)) return schema("header");
    for (i = 0; i < top.u; i++) {
        uint32_t bit = 0, *pos = NULL;
        if (key(&s, &k)) return fl_fail("FLM_HEADER_DECODE", "non-string key");
        if (mp_str_eq(&s, &k, "graph")) { bit = 1; pos = &pos_graph; }
        else if (mp_str_eq(&s, &k, "tensors")) { bit = 2; pos = &pos_tensors; }
        else if (mp_str_eq(&s, &k, "metadata")) { bit = 4; pos = &pos_meta; }
        else if (mp_str_eq(&s, &k, "memory_plan")) { bit = 8; pos = &pos_plan; }
        if (pos) {
            if (seen & bit) return fl_fail("FLM_HEADER_DECODE", "duplicate key");
            seen |= bit;
            *pos = s.pos;
        }
        if (mp_skip(&s, 0, 1)) return fl_fail("FLM_HEADER_DECODE", "header");
    }
    if ((seen & 7) != 7) return schema("header misses graph, tensors or metadata");
    /* tensors */
    {
        mp_item a;
        s.pos = pos_tensors;
        if (mp_head(&s, &a) || a.type != MP_ARRAY) return schema("tensors is not a list");
        if (a.u > 0x7FFF) return fl_fail("TOO_LARGE", "too many tensors");
        fl_m.ntensors = (uint16_t)a.u;
        fl_m.tensors = (fl_tensor *)tab_alloc((uint32_t)a.u * sizeof(fl_tensor));
        if (!fl_m.tensors && a.u) return fl_fail("TOO_LARGE", "model tables do not fit the arena");
        for (i = 0; i < a.u; i++) if (read_tensor(&s, &fl_m.tensors[i])) return -1;
    }
    /* graph */
    {
        fl_src g;
        fl_src_model(&g, 24, hdr_end);
        g.pos = pos_graph;
        if (count_nodes(g, &nnodes)) return -1;
        if (nnodes > 0x7FFF) return fl_fail("TOO_LARGE", "too many nodes");
        if (nnodes == 0) return fl_fail("MODEL_INVALID", "the graph has no nodes");
        fl_m.nnodes = (uint16_t)nnodes;
        fl_m.nodes = (fl_node *)tab_alloc(nnodes * sizeof(fl_node));
        fl_m.values = (fl_value *)tab_alloc((nnodes + 1) * sizeof(fl_value));
        if (!fl_m.nodes || !fl_m.values) return fl_fail("TOO_LARGE", "model tables do not fit the arena");
        fl_m.nvalues = 1; /* values[0] is the graph input */
        fl_m.input = 0;
        /* name hashes of tensors (needed by read_node) */
        for (i = 0; i < fl_m.ntensors; i++) fl_m.tensors[i].hash = name_hash(fl_m.tensors[i].name_at, fl_m.tensors[i].name_len);
        if (read_graph(&g, nnodes)) return -1;
    }
    /* 6. metadata keys */
    {
        mp_item mm, mk;
        s.pos = pos_meta;
        if (mp_head(&s, &mm) || mm.type != MP_MAP) return schema("metadata is not a map");
        for (i = 0; i < mm.u; i++) {
            if (key(&s, &mk)) return fl_fail("FLM_BAD_METADATA", "metadata key");
            if (!meta_key_ok(&s, &mk)) return fl_fail("FLM_BAD_METADATA", "metadata key is not dotted lower_snake_case");
            if (mp_skip(&s, 0, 2)) return fl_fail("FLM_BAD_METADATA", "metadata value");
        }
    }
    /* 7. tensors in table order */
    {
        uint32_t expect = 0;
        for (i = 0; i < fl_m.ntensors; i++) {
            fl_tensor *t = &fl_m.tensors[i];
            uint32_t j, bytes;
            for (j = 0; j < i; j++)
                if (fl_m.tensors[j].hash == t->hash && name_eq(fl_m.tensors[j].name_at, fl_m.tensors[j].name_len, t->name_at, t->name_len))
                    return fail_name("FLM_DUPLICATE_TENSOR", "two tensors with one name", t->name_at, t->name_len);
            if (!t->inner) return fail_name("FLM_LENGTH_MISMATCH", "length is not numel x dtype size", t->name_at, t->name_len);
            bytes = t->numel * (t->dtype == DT_F32 ? 4u : t->dtype == DT_F16 ? 2u : 1u);
            if (t->dtype == DT_I8) {
                uint32_t want;
                if (!t->scale && !t->nscale) {
                    /* quant absent: nscale 0 and no table */
                    return fail_name("FLM_BAD_QUANT", "i8 tensor without scale", t->name_at, t->name_len);
                }
                if (t->axis == 0xFF) want = 1;
                else if (t->axis >= t->rank) return fail_name("FLM_BAD_QUANT", "quant axis out of range", t->name_at, t->name_len);
                else want = t->dims[t->axis];
                if (t->nscale != want) return fail_name("FLM_BAD_QUANT", "scale count does not match", t->name_at, t->name_len);
                for (j = 0; j < t->nscale; j++) {
                    float f = fl_scale(t, j);
                    if (!(f > 0) || f > 3.4028235e38f) return fail_name("FLM_BAD_QUANT", "scale not finite and > 0", t->name_at, t->name_len);
                }
            } else if (t->scale || t->nscale || t->axis != 0xFF) {
                return fail_name("FLM_BAD_QUANT", "float tensor with a scale", t->name_at, t->name_len);
            }
            if (t->data % 64) return fail_name("FLM_MISALIGNED", "tensor offset not a multiple of 64", t->name_at, t->name_len);
            if (t->data != expect) return fail_name("FLM_GAP_OR_OVERLAP", "tensor not at the aligned end of the previous one", t->name_at, t->name_len);
            if ((uint64_t)t->data + bytes > data_len) return fail_name("FLM_OUT_OF_BOUNDS", "tensor ends past the data section", t->name_at, t->name_len);
            /* padding between the previous tensor and this one was checked via expect below */
            expect = (t->data + bytes + 63u) & ~63u;
            /* per-channel geometry */
            if (t->axis != 0xFF) {
                uint32_t in = 1;
                for (j = (uint32_t)t->axis + 1; j < t->rank; j++) in *= t->dims[j];
                t->inner = in;
            } else t->inner = t->numel ? t->numel : 1;
            if (i + 1 == fl_m.ntensors && t->data + bytes != data_len) return fl_fail("FLM_TRAILING_BYTES", "data section continues after the last tensor");
            /* the tensor's file offset */
            t->data += data_off;
        }
        if (fl_m.ntensors == 0 && data_len != 0) return fl_fail("FLM_TRAILING_BYTES", "data section without tensors");
        /* padding between tensors is zero */
        for (i = 0; i + 1 < fl_m.ntensors; i++) {
            fl_tensor *t = &fl_m.tensors[i];
            uint32_t end = t->data + t->numel * (t->dtype == DT_F32 ? 4u : t->dtype == DT_F16 ? 2u : 1u), p;
            for (p = end; p < fl_m.tensors[i + 1].data; p++) if (fl_model_byte(p)) return fl_fail("FLM_BAD_PADDING", "padding between tensors not zero");
        }
    }
    /* 8. graph */
    {
        uint16_t vi;
        for (i = 0; i < fl_m.nnodes; i++) {
            uint32_t j;
            fl_node *n = &fl_m.nodes[i];
            for (j = 0; j < i; j++)
                if (fl_m.nodes[j].hash == n->hash && name_eq(fl_m.nodes[j].name_at, fl_m.nodes[j].name_len, n->name_at, n->name_len))
                    return fail_name("FLM_BAD_GRAPH", "duplicate node name", n->name_at, n->name_len);
        }
        for (vi = 0; vi < fl_m.nvalues; vi++) {
            fl_value *v = &fl_m.values[vi];
            if (find_value(v->name_at, v->name_len, v->hash, vi) >= 0) return fail_name("FLM_BAD_GRAPH", "value defined twice", v->name_at, v->name_len);
            if (find_tensor(v->name_at, v->name_len, v->hash) >= 0) return fail_name("FLM_BAD_GRAPH", "value named like a tensor", v->name_at, v->name_len);
        }
        for (i = 0; i < fl_m.nnodes; i++) {
            fl_node *n = &fl_m.nodes[i];
            uint32_t j;
            for (j = 0; j < n->nin && j < FL_MAX_IN; j++) {
                uint32_t h = name_hash(n->in_at[j], n->in_len[j]);
                int v = find_value(n->in_at[j], n->in_len[j], h, fl_m.nvalues);
                if (v >= 0 && fl_m.values[v].first < (int)i) n->in[j] = (uint16_t)v;
                else if (v < 0 && (v = find_tensor(n->in_at[j], n->in_len[j], h)) >= 0) n->in[j] = (uint16_t)(v | FL_REF_TENSOR);
                else return fail_name("FLM_BAD_GRAPH", "unresolved node input", n->in_at[j], n->in_len[j]);
            }
        }
        if (g_code) return fail_name(g_code, g_msg, g_at, g_len);
        for (i = 0; i < fl_m.nnodes; i++) {
            fl_node *n = &fl_m.nodes[i];
            if (n->op >= OP_SVD_DENSE && n->op <= OP_TTL_DENSE && n->w[ROLE_WEIGHT] != 0xFFFF)
                return fail_name("FLM_DENSE_WEIGHT_IN_FACTOR_LAYER", "factorised node with a weight role", n->name_at, n->name_len);
        }
        {
            int v = find_value(out_at, out_at_len, name_hash(out_at, out_at_len), fl_m.nvalues);
            if (v < 0) return fail_name("FLM_BAD_GRAPH", "unresolved graph output", out_at, out_at_len);
            fl_m.output = (uint16_t)v;
        }
    }
    /* device checks: limits, attributes, shapes (batch 1), scratch needs */
    if (attr_err) return fl_fail("MODEL_INVALID", attr_err);
    {
        fl_value *in = &fl_m.values[fl_m.input];
        uint32_t j;
        uint64_t ne = 1;
        for (j = 0; j < in->rank; j++) ne *= in->dims[j];
        /* u8 pixels up to max_frame bytes; f32 (max_frame / 4) unless read in place, after the plan */
        if (ne == 0 || ne > FL_MAX_FRAME) return fl_fail("TOO_LARGE", "model input larger than the frame buffer (max_frame bytes)");
        in->numel = (uint32_t)ne;
        fl_m.in_numel = in->numel;
    }
    for (i = 0; i < fl_m.nvalues; i++) fl_m.values[i].last = fl_m.values[i].first;
    for (i = 0; i < fl_m.nnodes; i++) {
        fl_node *n = &fl_m.nodes[i];
        uint32_t j;
        for (j = 0; j < n->nin && j < FL_MAX_IN; j++) if (!(n->in[j] & FL_REF_TENSOR)) fl_m.values[n->in[j]].last = (int16_t)i;
        if (fl_op_prepare(n)) {
            const char *code = fl_err_code;
            char m[96];
            memcpy(m, fl_err_msg, sizeof m);
            fl_fail(code, "node ");
            fl_msg_name(n->name_at, n->name_len);
            fl_msg_cat(": ");
            fl_msg_cat(m);
            return -1;
        }
    }
    fl_m.values[fl_m.output].last = (int16_t)fl_m.nnodes;
    fl_m.values[fl_m.output].is_output = 1;
    if (fl_m.output == fl_m.input) return fl_fail("MODEL_INVALID", "the graph output is its input");
    fl_m.out_numel = fl_m.values[fl_m.output].numel;
    if (fl_m.out_numel * 4u + 48u > FL_MAX_RESPONSE) return fl_fail("TOO_LARGE", "model output larger than the response buffer");
    fl_m.tables_bytes = FL_ARENA_BYTES - tab_top;
    /* the mcu plan */
    if (!pos_plan) return plan_fail("no memory_plan in the model (convert it again with a converter that writes an mcu plan)");
    s.pos = pos_plan;
    if (plan_structure(s)) return -1;
    for (i = 0; i < fl_m.nnodes; i++) { fl_m.nodes[i].scratch_off = 0; fl_m.nodes[i].scratch_bytes = 0; }
    if (check_plan(&s)) return -1;
    if (!fl_m.u8_inplace && fl_m.in_numel > FL_MAX_FRAME / 4u)
        return fl_fail("TOO_LARGE", "model input larger than the frame buffer (max_frame / 4 floats; its first layers cannot read u8 in place)");
    fl_m.size = size;
    fl_m.ready = 1;
    return 0;
}

int fl_prepare(uint32_t size) {
    int r = prepare_inner(size);
    if (r) fl_unprepare();
    return r;
}
