/* model/reader.c: the .flm header's sections as the device reads them (tensors, attributes,
 * weight roles, the graph, metadata keys), validated as untrusted input (docs/FORMAT.md 8). */
#include <string.h>
#include "model.h"
#include "../ops.h"

/* ---- tensors --------------------------------------------------------------------------------- */
int fl_read_tensor(fl_src *s, fl_tensor *t) {
    mp_item m, k;
    uint32_t i, seen = 0;
    double v;
    uint64_t numel = 1;
    uint8_t zero = 0;
    uint32_t offset = 0, length = 0;
    if (mp_head(s, &m) || m.type != MP_MAP) return fl_schema("tensor entry is not a map");
    t->axis = 0xFF;
    for (i = 0; i < m.u; i++) {
        if (fl_key(s, &k)) return fl_schema("tensor key");
        if (mp_str_eq(s, &k, "name")) {
            fl_nm *nm = FL_TN(t - fl_m.tensors);
            if (fl_rd_name(s, &nm->at, &nm->len)) return fl_schema("tensor name");
            seen |= 1;
        } else if (mp_str_eq(s, &k, "dtype")) {
            if (fl_rd_int(s, 0, MAX_SAFE, &v)) return fl_schema("tensor dtype");
            if (v > 2) return fl_fail("FLM_BAD_DTYPE", "unknown dtype id");
            t->dtype = (uint8_t)v;
            seen |= 2;
        } else if (mp_str_eq(s, &k, "shape")) {
            mp_item a;
            uint32_t j;
            if (mp_head(s, &a) || a.type != MP_ARRAY) return fl_schema("tensor shape");
            if (a.u > 8) return fl_fail("FLM_BAD_SHAPE", "tensor rank over 8");
            if (a.u > FL_MAX_RANK) return fl_fail("MODEL_INVALID", "tensor rank over the device's limit");
            if (fl_dims(&t->dims, t->rank, (uint8_t)a.u)) return -1;
            t->rank = (uint8_t)a.u;
            for (j = 0; j < a.u; j++) {
                if (fl_rd_int(s, -MAX_SAFE, MAX_SAFE, &v) || v < 0 || v > 2147483647.0) return fl_fail("FLM_BAD_SHAPE", "tensor dim out of range");
                t->dims[j] = (uint32_t)v;
            }
            seen |= 4;
        } else if (mp_str_eq(s, &k, "offset")) {
            if (fl_rd_int(s, 0, MAX_SAFE, &v)) return fl_schema("tensor offset");
            offset = v > 4294967295.0 ? 0xFFFFFFFFu : (uint32_t)v;
            seen |= 8;
        } else if (mp_str_eq(s, &k, "length")) {
            if (fl_rd_int(s, 0, MAX_SAFE, &v)) return fl_schema("tensor length");
            length = v > 4294967295.0 ? 0xFFFFFFFFu : (uint32_t)v;
            seen |= 16;
        } else if (mp_str_eq(s, &k, "quant")) {
            mp_item q, qk;
            uint32_t j, qs = 0;
            if (mp_head(s, &q) || q.type != MP_MAP) return fl_schema("tensor quant");
            for (j = 0; j < q.u; j++) {
                if (fl_key(s, &qk)) return fl_schema("quant key");
                if (mp_str_eq(s, &qk, "scale")) {
                    mp_item a;
                    uint32_t c;
                    if (mp_head(s, &a) || a.type != MP_ARRAY || a.u > 0xFFFF) return fl_schema("quant scale");
                    t->nscale = (uint16_t)a.u;
                    /* Where the store is not memory (AVR flash), per-channel scales that are all
                     * float64 stay in the header and are read when used: 1024 channels would
                     * otherwise take 4 KB of an 8 KB part's arena. So on the int8-full path,
                     * whose integer kernels never read them. */
                    if ((!fl_m.mp || (FL_INT8_FULL && fl_m.int8_full)) && a.u > 1) {
                        fl_src probe = *s;
                        uint32_t first = s->pos;
                        for (c = 0; c < a.u; c++) {
                            if (fl_src_byte(&probe) != 0xcb) break;
                            probe.pos += 8;
                        }
                        if (c == a.u && probe.pos <= s->end) {
                            for (c = 0; c < a.u; c++) {
                                mp_item e;
                                if (mp_head(s, &e) || mp_num(&e, &v)) return fl_schema("quant scale value");
                            }
                            t->scale = NULL;
                            t->scale_at = first;
                            qs |= 1;
                            continue;
                        }
                    }
                    t->scale = (float *)fl_tab_alloc(4u * (uint32_t)a.u);
                    if (!t->scale && a.u) return fl_fail("TOO_LARGE", "model tables do not fit the arena");
                    for (c = 0; c < a.u; c++) {
                        mp_item e;
                        if (mp_head(s, &e) || mp_num(&e, &v)) return fl_schema("quant scale value");
                        t->scale[c] = (float)v;
                    }
                    qs |= 1;
                } else if (mp_str_eq(s, &qk, "axis")) {
                    if (fl_rd_int(s, 0, MAX_SAFE, &v)) return fl_schema("quant axis");
                    t->axis = v > 254 ? 254 : (uint8_t)v;
                } else return fl_schema("unknown key in quant");
            }
            if (!(qs & 1)) return fl_schema("quant without scale");
            seen |= 32;
        } else return fl_schema("unknown key in tensor entry");
    }
    if ((seen & 31) != 31) return fl_schema("tensor entry misses a key");
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
void fl_attrs_default(fl_attrs *a) {
    memset(a, 0, sizeof *a);
    a->strides[0] = a->strides[1] = 1;
    a->dil[0] = a->dil[1] = 1;
    a->group = 1;
    a->kernel[0] = a->kernel[1] = -1;
    a->alpha = 0.01f;
    a->lo = -3.4028235e38f * 10.0f; /* -inf */
    a->hi = 3.4028235e38f * 10.0f;
    a->axis = INT32_MIN_SENTINEL;
}

/* read an attribute value: a number or a list of numbers (strings are skipped). Integers go to
 * ints (count in *n), the first number also to *num. Returns -1 on a fl_schema error. */
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

static int read_attrs(fl_src *s, fl_attrs *a) {
    mp_item m, k;
    uint32_t i;
    if (mp_head(s, &m) || m.type != MP_MAP) return fl_schema("attrs is not a map");
    for (i = 0; i < m.u; i++) {
        int32_t ints[8];
        uint8_t n, isint;
        double num;
        int list, str;
        if (fl_key(s, &k) || k.u == 0) return fl_schema("attribute name");
        list = rd_attr(s, ints, 8, &n, &num, &isint);
        if (list < 0) return fl_schema("attribute value");
        str = n == 0xFE; /* a string: wrong type for every attribute the device reads, ignored for others */
#define LISTN(name, dst, cnt) \
        if (mp_str_eq(s, &k, name)) { \
            uint8_t j; \
            if (list != 1 || n != (cnt) || !isint) { if (!fl_rd.attr_err) fl_rd.attr_err = name " must be a list of " #cnt " small integers"; continue; } \
            for (j = 0; j < (cnt); j++) (dst)[j] = ints[j]; \
            continue; \
        }
        LISTN("strides", a->strides, 2)
        /* the pad op's pads hold a begin and an end per axis: checked with the op known (read_node) */
        if (mp_str_eq(s, &k, "pads") && list == 1 && n != 4 && isint) { a->odd_pads = 1; continue; }
        LISTN("pads", a->pads, 4)
        LISTN("dilations", a->dil, 2)
        LISTN("kernel", a->kernel, 2)
#undef LISTN
#define SCALARI(name, dst) \
        if (mp_str_eq(s, &k, name)) { \
            if (list != 0 || !isint) { if (!fl_rd.attr_err) fl_rd.attr_err = name " must be a small integer"; continue; } \
            dst = ints[0]; \
            continue; \
        }
        SCALARI("group", a->group)
        /* flags are the integers 0 or 1, as the TypeScript reader wants (runtime/format/attrs.ts) */
        if (mp_str_eq(s, &k, "ceil_mode")) { if (list || str || (num != 0 && num != 1)) { if (!fl_rd.attr_err) fl_rd.attr_err = "ceil_mode must be 0 or 1"; } else a->ceil_mode = num != 0; continue; }
        if (mp_str_eq(s, &k, "count_include_pad")) { if (list || str || (num != 0 && num != 1)) { if (!fl_rd.attr_err) fl_rd.attr_err = "count_include_pad must be 0 or 1"; } else a->count_include_pad = num != 0; continue; }
        SCALARI("axis", a->axis)
#undef SCALARI
        if (mp_str_eq(s, &k, "alpha")) {
            if (list || str || !(num <= 3.4028234663852886e38 && num >= -3.4028234663852886e38)) { if (!fl_rd.attr_err) fl_rd.attr_err = "alpha must be a finite number"; }
            else a->alpha = (float)num;
            continue;
        }
        if (mp_str_eq(s, &k, "min")) { if (list || str) { if (!fl_rd.attr_err) fl_rd.attr_err = "min must be a number"; } else a->lo = (float)num; continue; }
        if (mp_str_eq(s, &k, "max")) { if (list || str) { if (!fl_rd.attr_err) fl_rd.attr_err = "max must be a number"; } else a->hi = (float)num; continue; }
        if (mp_str_eq(s, &k, "out_modes") || mp_str_eq(s, &k, "in_modes")) {
            uint8_t j;
            if (list != 1 || !isint || n > FL_MAX_MODES) { if (!fl_rd.attr_err) fl_rd.attr_err = "modes: too many, or not small integers"; continue; }
            for (j = 0; j < n; j++)
                if (ints[j] < 1) { if (!fl_rd.attr_err) fl_rd.attr_err = "modes must be >= 1"; }
            continue; /* kept by the op (ops/factor.c) */
        }
        if (mp_str_eq(s, &k, "shape")) {
            if (list != 1 || !isint || n > FL_MAX_RANK) { if (!fl_rd.attr_err) fl_rd.attr_err = "shape: rank over the device's limit, or not small integers"; continue; }
            continue; /* read again by reshape's prepare (ops/shape.c) */
        }
        /* other attributes (perm, ...) belong to ops the device does not run */
    }
    return 0;
}

/* ---- weights roles --------------------------------------------------------------------------- */
static int role_slot(fl_src *s, const mp_item *k) {
    static const char *const fixed[ROLE_IDX] = FL_ROLE_NAMES;
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


static int read_node(fl_src *s, uint16_t ni) {
    fl_node *n = &fl_m.nodes[ni];
    fl_node_rd *nr = &fl_rd.nr[ni];
    mp_item m, k;
    uint32_t i, seen = 0;
    double v;
    if (mp_head(s, &m) || m.type != MP_MAP) return fl_schema("node is not a map");
    n->nw = 0;
    n->a = &nr->a;
    fl_attrs_default(n->a);
    for (i = 0; i < m.u; i++) {
        if (fl_key(s, &k)) return fl_schema("node key");
        if (mp_str_eq(s, &k, "name")) {
            if (fl_rd_name(s, &nr->nm.at, &nr->nm.len)) return fl_schema("node name");
            nr->nm.hash = fl_name_hash(nr->nm.at, nr->nm.len);
            seen |= 1;
        } else if (mp_str_eq(s, &k, "op")) {
            if (fl_rd_int(s, 0, MAX_SAFE, &v)) return fl_schema("node op");
            if (v >= OP_COUNT) return fl_fail("FLM_UNKNOWN_OP", "unknown op id");
            n->op = (uint8_t)v;
            seen |= 2;
        } else if (mp_str_eq(s, &k, "inputs")) {
            mp_item a;
            uint32_t j;
            if (mp_head(s, &a) || a.type != MP_ARRAY) return fl_schema("node inputs");
            for (j = 0; j < a.u; j++) {
                uint32_t at; uint16_t len;
                if (fl_rd_name(s, &at, &len)) return fl_schema("node input name");
                if (j < FL_MAX_IN) { nr->in_at[j] = at; nr->in_len[j] = len; }
            }
            n->nin = a.u > 255 ? 255 : (uint8_t)a.u;
            seen |= 4;
        } else if (mp_str_eq(s, &k, "outputs")) {
            mp_item a;
            uint32_t j;
            if (mp_head(s, &a) || a.type != MP_ARRAY) return fl_schema("node outputs");
            if (a.u != 1) return fl_fail("MODEL_INVALID", "the device runs nodes with exactly one output");
            for (j = 0; j < a.u; j++) {
                fl_value_rd *val = FL_VR(fl_m.nvalues);
                if (fl_rd_name(s, &val->nm.at, &val->nm.len)) return fl_schema("node output name");
                val->nm.hash = fl_name_hash(val->nm.at, val->nm.len);
                val->first = (int16_t)ni;
                n->out = fl_m.nvalues++;
            }
            seen |= 8;
        } else if (mp_str_eq(s, &k, "attrs")) {
            nr->attrs_at = s->pos;
            if (read_attrs(s, n->a)) return -1;
            seen |= 16;
        } else if (mp_str_eq(s, &k, "weights")) {
            mp_item wm, rk;
            uint32_t j;
            if (mp_head(s, &wm) || wm.type != MP_MAP) return fl_schema("node weights");
            /* (slot, tensor) pairs, one per role the node names (at most FL_MAX_ROLES distinct) */
            n->nw = 0; /* a second weights key replaces the first, as a map decoded in TypeScript has it */
            if (wm.u > FL_MAX_ROLES) { if (!fl_rd.attr_err) fl_rd.attr_err = "more weight roles than the device allows"; }
            else if (wm.u) {
                uint16_t *p = (uint16_t *)fl_tab_alloc(4u * (uint32_t)wm.u);
                if (!p) return fl_fail("TOO_LARGE", "model tables do not fit the arena");
                n->w_at = (uint32_t)((uint8_t *)p - fl_arena);
            }
            for (j = 0; j < wm.u; j++) {
                uint32_t at; uint16_t len;
                int slot, ti;
                if (fl_key(s, &rk) || rk.u == 0) return fl_schema("weight role");
                slot = role_slot(s, &rk);
                if (fl_rd_name(s, &at, &len)) return fl_schema("weight tensor name");
                ti = fl_find_tensor(at, len, fl_name_hash(at, len));
                if (ti < 0) { fl_graph_err("FLM_MISSING_TENSOR", "a weight role names a tensor that is not stored", at, len); continue; }
                if (slot < 0) { if (!fl_rd.attr_err) fl_rd.attr_err = "a weight role the device does not know"; continue; }
                if (slot >= 0x100) {
                    if (ni < 256) { if (fl_rd.idx_kind[ni] == 1) { if (!fl_rd.attr_err) fl_rd.attr_err = "core.K and factor.K roles on one node"; } fl_rd.idx_kind[ni] = 2; }
                    slot -= 0x100;
                } else if (slot >= ROLE_IDX && ni < 256) {
                    if (fl_rd.idx_kind[ni] == 2) { if (!fl_rd.attr_err) fl_rd.attr_err = "core.K and factor.K roles on one node"; }
                    fl_rd.idx_kind[ni] = 1;
                }
                if (wm.u <= FL_MAX_ROLES) {
                    uint16_t *p = (uint16_t *)(void *)(fl_arena + n->w_at);
                    uint8_t e;
                    for (e = 0; e < n->nw && p[2 * e] != (uint16_t)slot; e++) {}
                    if (e == n->nw) n->nw++;
                    p[2 * e] = (uint16_t)slot; /* a role named twice: the last tensor, as before */
                    p[2 * e + 1] = (uint16_t)ti;
                }
            }
            seen |= 32;
        } else return fl_schema("unknown key in node");
    }
    if ((seen & 63) != 63) return fl_schema("node misses a key");
    /* rules between attributes, as runtime/format/attrs.ts has them */
    if (n->op == OP_CLIP && n->a->lo > n->a->hi && !fl_rd.attr_err) fl_rd.attr_err = "clip min is above max";
    if (n->a->odd_pads && n->op != OP_PAD && !fl_rd.attr_err) fl_rd.attr_err = "pads must be a list of 4 small integers";
    return 0;
}

int fl_read_graph(fl_src *s, uint32_t nnodes_hint) {
    mp_item m, k;
    uint32_t i, seen = 0;
    (void)nnodes_hint;
    if (mp_head(s, &m) || m.type != MP_MAP) return fl_schema("graph is not a map");
    for (i = 0; i < m.u; i++) {
        if (fl_key(s, &k)) return fl_schema("graph key");
        if (mp_str_eq(s, &k, "inputs")) {
            mp_item a;
            uint32_t j;
            if (mp_head(s, &a) || a.type != MP_ARRAY) return fl_schema("graph inputs");
            if (a.u != 1) return fl_fail("MODEL_INVALID", "the device runs graphs with exactly one input");
            for (j = 0; j < a.u; j++) {
                mp_item e, ek;
                uint32_t x, es = 0;
                fl_value *val = &fl_m.values[0];
                fl_value_rd *vr = FL_VR(0);
                if (mp_head(s, &e) || e.type != MP_MAP) return fl_schema("graph input entry");
                for (x = 0; x < e.u; x++) {
                    if (fl_key(s, &ek)) return fl_schema("graph input key");
                    if (mp_str_eq(s, &ek, "name")) {
                        if (fl_rd_name(s, &vr->nm.at, &vr->nm.len)) return fl_schema("graph input name");
                        vr->nm.hash = fl_name_hash(vr->nm.at, vr->nm.len);
                        es |= 1;
                    } else if (mp_str_eq(s, &ek, "shape")) {
                        mp_item sh;
                        uint32_t d;
                        double dv;
                        if (mp_head(s, &sh) || sh.type != MP_ARRAY) return fl_schema("graph input shape");
                        if (sh.u > 8) return fl_fail("FLM_BAD_SHAPE", "graph input rank over 8");
                        if (sh.u > FL_MAX_RANK) return fl_fail("MODEL_INVALID", "graph input rank over the device's limit");
                        if (fl_dims(&val->dims, val->rank, (uint8_t)sh.u)) return -1;
                        val->rank = (uint8_t)sh.u;
                        for (d = 0; d < sh.u; d++) {
                            if (fl_rd_int(s, -MAX_SAFE, MAX_SAFE, &dv) || dv < -1 || dv > 2147483647.0) return fl_fail("FLM_BAD_SHAPE", "graph input dim out of range");
                            val->dims[d] = dv < 0 ? 1u : (uint32_t)dv; /* free dims run at 1 (batch 1) */
                        }
                        es |= 2;
                    } else return fl_schema("unknown key in graph input");
                }
                if (es != 3) return fl_schema("graph input misses a key");
                vr->first = -1;
            }
            seen |= 1;
        } else if (mp_str_eq(s, &k, "outputs")) {
            mp_item a;
            uint32_t j;
            if (mp_head(s, &a) || a.type != MP_ARRAY) return fl_schema("graph outputs");
            if (a.u != 1) return fl_fail("MODEL_INVALID", "the device runs graphs with exactly one output");
            for (j = 0; j < a.u; j++) if (fl_rd_name(s, &fl_rd.out_at, &fl_rd.out_at_len)) return fl_schema("graph output name");
            seen |= 2;
        } else if (mp_str_eq(s, &k, "nodes")) {
            mp_item a;
            uint32_t j;
            if (mp_head(s, &a) || a.type != MP_ARRAY) return fl_schema("graph nodes");
            if (a.u != fl_m.nnodes) return fl_schema("graph nodes");
            for (j = 0; j < a.u; j++) if (read_node(s, (uint16_t)j)) return -1;
            seen |= 4;
        } else return fl_schema("unknown key in graph");
    }
    if (seen != 7) return fl_schema("graph misses a key");
    return 0;
}

/* count the nodes before reading them (to size the tables) */
int fl_count_nodes(fl_src s, uint32_t *count) {
    mp_item m, k;
    uint32_t i;
    if (mp_head(&s, &m) || m.type != MP_MAP) return fl_schema("graph is not a map");
    for (i = 0; i < m.u; i++) {
        if (fl_key(&s, &k)) return fl_schema("graph key");
        if (mp_str_eq(&s, &k, "nodes")) {
            mp_item a;
            if (mp_head(&s, &a) || a.type != MP_ARRAY) return fl_schema("graph nodes");
            *count = (uint32_t)a.u;
            return 0;
        }
        if (mp_skip(&s, 0, 1)) return fl_schema("graph");
    }
    return fl_schema("graph misses a key");
}

/* ---- metadata keys: ^[a-z][a-z0-9_]*(\.[a-z0-9][a-z0-9_]*)*$ ---------------------------------- */
int fl_meta_key_ok(fl_src *s, const mp_item *k) {
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

