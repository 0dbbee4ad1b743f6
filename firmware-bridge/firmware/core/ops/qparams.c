/* ops/qparams.c: prepare of the int8-full path. The map under metadata quant.int8_full
 * (docs/FORMAT.md 4.5) is untrusted input: every value's [scale, zero_point], every parametric
 * node's stages (weight role, in / out quantisation chained, Q31 multiplier and shift, int32 bias,
 * clamp) are read and checked here, as runtime/int8full/params.ts checks them, and kept in the
 * tables for the kernels (qkernels.c). */
#include "op.h"
#include "../model/model.h"
#if FL_INT8_FULL

static int qbad(const char *m) { return fl_fail("FLM_BAD_METADATA", m); }

/* [scale, zero_point]: scale finite and > 0, zero point an integer in [-128, 127] */
static int rd_pair(fl_src *s, double *scale, int32_t *zp) {
    mp_item it;
    double v;
    if (mp_head(s, &it) || it.type != MP_ARRAY || it.u != 2) return -1;
    if (mp_head(s, &it) || mp_num(&it, scale) || !(*scale > 0) || *scale - *scale != 0) return -1;
    if (fl_rd_int(s, -128, 127, &v)) return -1;
    *zp = (int32_t)v;
    return 0;
}

/* s placed at the value of key (at, len) of the map at map_at: 1, or 0 when absent, -1 bad bytes */
static int find_named(uint32_t map_at, uint32_t at, uint16_t len, fl_src *s) {
    mp_item m, k;
    uint32_t i;
    fl_src_model(s, map_at, fl_rd.hdr_end);
    if (mp_head(s, &m) || m.type != MP_MAP) return -1;
    for (i = 0; i < m.u; i++) {
        if (fl_key(s, &k)) return -1;
        if (k.u == len && fl_name_eq(k.at, len, at, len)) return 1;
        if (mp_skip(s, 0, 3)) return -1;
    }
    return 0;
}

static int value_quant(uint16_t vi, double *scale, int32_t *zp) {
    fl_src s;
    const fl_nm *v = &FL_VR(vi)->nm;
    int r = find_named(fl_m.q_values, v->at, v->len, &s);
    if (r < 0) return qbad("quant.int8_full: values is not a map of names");
    if (r == 0) return fl_fail_name("FLM_BAD_METADATA", "quant.int8_full: no quantisation for value", v->at, v->len);
    if (rd_pair(&s, scale, zp)) return fl_fail_name("FLM_BAD_METADATA", "quant.int8_full: not [scale, zero_point] for value", v->at, v->len);
    return 0;
}

/* The scale of value vi (already checked by value_quant) as binary64 bits, read from the stored
 * bytes: a float 64 as it is, a float 32 widened exactly, a positive integer below 2^53. */
static int scale_bits(uint16_t vi, uint64_t *bits) {
    fl_src s;
    mp_item a;
    uint32_t at, i;
    uint64_t v = 0;
    uint8_t tag;
    const fl_nm *val = &FL_VR(vi)->nm;
    if (find_named(fl_m.q_values, val->at, val->len, &s) != 1 || mp_head(&s, &a) || a.type != MP_ARRAY) return -1;
    at = s.pos;
    tag = fl_model_byte(at);
    if (tag == 0xcb) {
        for (i = 1; i <= 8; i++) v = (v << 8) | fl_model_byte(at + i);
        *bits = v;
        return 0;
    }
    if (tag == 0xca) {
        uint32_t e, m;
        for (i = 1; i <= 4; i++) v = (v << 8) | fl_model_byte(at + i);
        e = (uint32_t)(v >> 23) & 0xFFu; m = (uint32_t)v & 0x7FFFFFu;
        if (e == 0) { /* subnormal: normalise (value checked > 0, so m != 0) */
            int32_t ee = 1 - 127;
            while (!(m & 0x800000u)) { m <<= 1; ee--; }
            *bits = ((uint64_t)(uint32_t)(ee + 1023) << 52) | ((uint64_t)(m & 0x7FFFFFu) << 29);
        } else *bits = ((uint64_t)(e - 127 + 1023) << 52) | ((uint64_t)m << 29);
        return 0;
    }
    if (mp_head(&s, &a) || a.type != MP_INT || a.neg || !a.u || a.u >= ((uint64_t)1 << 53)) return -1;
    {
        int32_t e = 52;
        v = a.u;
        while (!(v >> 52)) { v <<= 1; e--; }
        *bits = ((uint64_t)(uint32_t)(e + 1023) << 52) | (v & 0xFFFFFFFFFFFFFull);
    }
    return 0;
}
#if FL_Q_STORE_LISTS

/* n integers in [lo, hi] (msgpack ints, exactly: no double, which is 32 bits on some ports);
 * *at = the first one's position */
static int chk_list(fl_src *s, uint32_t n, int64_t lo, int64_t hi, uint32_t *at) {
    mp_item a;
    uint32_t i;
    if (mp_head(s, &a) || a.type != MP_ARRAY || a.u != n) return -1;
    *at = s->pos;
    for (i = 0; i < n; i++) {
        int64_t v;
        if (mp_head(s, &a) || a.type != MP_INT || a.u > ((uint64_t)1 << 32)) return -1;
        v = a.neg ? -(int64_t)a.u : (int64_t)a.u;
        if (v < lo || v > hi) return -1;
    }
    return 0;
}
#endif

/* file offsets of the optional maps lut, add, concat, softmax (0: absent) */
static uint32_t q_lut, q_add, q_concat, q_softmax;

/* the map's top level, the graph input's and output's quantisation, the quantised input's bytes */
static int q_begin(void) {
    fl_src s;
    mp_item m, k;
    uint32_t i;
    double v;
    int32_t zp;
    int version = 0;
    q_lut = q_add = q_concat = q_softmax = 0;
    fl_src_model(&s, fl_m.q_meta, fl_rd.hdr_end);
    if (mp_head(&s, &m) || m.type != MP_MAP) return qbad("quant.int8_full: expected a map");
    for (i = 0; i < m.u; i++) {
        if (fl_key(&s, &k)) return qbad("quant.int8_full: a key is not a string");
        if (mp_str_eq(&s, &k, "version")) {
            if (fl_rd_int(&s, 1, 1, &v)) return qbad("quant.int8_full: version is not 1 (what this firmware knows)");
            version = 1;
            continue;
        }
        if (mp_str_eq(&s, &k, "values")) fl_m.q_values = s.pos;
        else if (mp_str_eq(&s, &k, "nodes")) fl_m.q_nodes = s.pos;
        else if (mp_str_eq(&s, &k, "lut")) q_lut = s.pos;
        else if (mp_str_eq(&s, &k, "add")) q_add = s.pos;
        else if (mp_str_eq(&s, &k, "concat")) q_concat = s.pos;
        else if (mp_str_eq(&s, &k, "softmax")) q_softmax = s.pos;
        if (mp_skip(&s, 0, 2)) return qbad("quant.int8_full: bad value");
    }
    if (!version || !fl_m.q_values || !fl_m.q_nodes) return qbad("quant.int8_full: needs version, values and nodes");
#if !FL_Q_STORE_LISTS
    if (!fl_m.mp) return fl_fail("MODEL_INVALID", "the int8-full path needs a memory-mapped model store");
#endif
    CHECK(value_quant(fl_m.input, &fl_m.in_scale, &zp));
    fl_m.in_zp = (int8_t)zp;
    CHECK(value_quant(fl_m.output, &fl_m.out_scale, &zp));
    fl_m.out_zp = (int8_t)zp;
    if (scale_bits(fl_m.input, &fl_m.in_scale64) || scale_bits(fl_m.output, &fl_m.out_scale64))
        return qbad("quant.int8_full: the graph input's or output's scale is not a float or an integer below 2^53");
    /* the input's quantisation estimates in binary32 first (ops/qexact.c) */
    if (!((float)fl_m.in_scale >= 1.17549435e-38f && (float)fl_m.in_scale <= 3.40282347e38f))
        return qbad("quant.int8_full: the graph input's scale is outside binary32's normal range");
    /* the quantised input: the frame buffer's last in_numel bytes, past an f32 input at its
     * start (4 in_numel bytes), where the frame leaves room; else in the tables */
#if !FL_Q_STORE_LISTS
    if (5u * (uint64_t)fl_m.in_numel <= FL_FRAME_BUF) {
        fl_m.qin = (int8_t *)(void *)(fl_frame + FL_FRAME_BUF - fl_m.in_numel);
        return 0;
    }
#endif
    fl_m.qin = (int8_t *)fl_tab_alloc(fl_m.in_numel);
    if (!fl_m.qin) return fl_fail("TOO_LARGE", "model tables do not fit the arena");
    return 0;
}

#if !FL_Q_STORE_LISTS
/* n integers in [lo, hi]: checked, and *at set to the first one's offset in the store; the list
 * stays there (fl_q_view decodes it, a block at a time, into the node's scratch when the node runs) */
static int rd_list(fl_src *s, uint32_t n, double lo, double hi, uint32_t *at) {
    mp_item a;
    uint32_t i;
    double v;
    if (mp_head(s, &a) || a.type != MP_ARRAY || a.u != n) return -1;
    *at = s->pos;
    for (i = 0; i < n; i++) if (fl_rd_int(s, lo, hi, &v)) return -1;
    return 0;
}
#endif

/* Output channels whose lists are decoded at a time (runtime/plan/mcu.ts MCU_INT8_PAR_BLOCK) */
#define FL_Q_PAR_BLOCK 64u

/* channels per block of stage k of n: FL_Q_PAR_BLOCK, or all where the kernel cannot be split by
 * output channel (a dense stage over more than one row, a conv2d whose groups have several outputs) */
static uint32_t stage_block(const fl_node *n, const fl_qst *st) {
    uint32_t G = (uint32_t)n->a->group;
    if ((n->op == OP_DENSE || n->op == OP_SVD_DENSE) && n->d[0] != 1) return st->C;
    if (n->op == OP_CONV2D && G > 1 && st->C / G > 1) return st->C;
    return st->C < FL_Q_PAR_BLOCK ? st->C : FL_Q_PAR_BLOCK;
}

/* one block's lists in the node's scratch: b int32 multipliers, b int32 biases (if any), b shifts */
static uint32_t stage_par_bytes(const fl_qst *st, uint32_t b) {
    return 4u * b + (st->bias_at ? 4u * b : 0u) + ((b + 3u) & ~3u);
}

static const char *const role_names[] = FL_ROLE_NAMES;

/* stage k of n from the map at s: weight role slot `slot`, its input quantisation (pscale, pzp) */
static int rd_stage(fl_src *s, const fl_node *n, int slot, uint8_t geom, double *pscale, int32_t *pzp, fl_qst *st) {
    mp_item m, k;
    uint32_t i, seen = 0;
    double v, sc, osc = 0;
    int32_t zp;
    const fl_tensor *t = T(n, slot);
    if (!t || t->dtype != DT_I8 || (t->axis != 0 && t->axis != 0xFF) || !t->rank || !t->dims[0])
        return fl_bad("int8-full: a stage's weight is not an int8 tensor with scales along axis 0");
    st->C = t->dims[0];
    st->K = t->numel / st->C;
#if FL_Q_STORE_LISTS
    st->w_at = t->data;
#else
    st->w = (const int8_t *)(const void *)(fl_m.mp + t->data);
#endif
    st->geom = geom;
    st->bias_at = 0;
#if !FL_Q_STORE_LISTS
    st->form = 0;
#endif
    if (mp_head(s, &m) || m.type != MP_MAP) return qbad("quant.int8_full: a stage is not a map");
    for (i = 0; i < m.u; i++) {
        if (fl_key(s, &k)) return qbad("quant.int8_full: a stage key is not a string");
        if (mp_str_eq(s, &k, "w")) {
            mp_item r;
            if (mp_head(s, &r) || !mp_str_eq(s, &r, role_names[slot])) return qbad("quant.int8_full: a stage names another weight role");
            seen |= 1;
        } else if (mp_str_eq(s, &k, "in")) {
            if (rd_pair(s, &sc, &zp) || sc != *pscale || zp != *pzp) return qbad("quant.int8_full: a stage's input quantisation does not match what precedes it");
            st->in_zp = (int8_t)zp; seen |= 2;
        } else if (mp_str_eq(s, &k, "out")) {
            if (rd_pair(s, &osc, &zp)) return qbad("quant.int8_full: a stage's out is not [scale, zero_point]");
            st->out_zp = (int8_t)zp; seen |= 4;
#if FL_Q_STORE_LISTS
        } else if (mp_str_eq(s, &k, "mult")) {
            if (chk_list(s, st->C, 0, 2147483647, &st->mult_at)) return qbad("quant.int8_full: mult is not C integers in [0, 2^31)");
            seen |= 8;
        } else if (mp_str_eq(s, &k, "shift")) {
            if (chk_list(s, st->C, -31, 30, &st->shift_at)) return qbad("quant.int8_full: shift is not C integers in [-31, 30]");
            seen |= 16;
        } else if (mp_str_eq(s, &k, "bias")) {
            if (chk_list(s, st->C, -(int64_t)2147483648u, 2147483647, &st->bias_at)) return qbad("quant.int8_full: bias is not C int32");
        }
#else
        } else if (mp_str_eq(s, &k, "mult")) {
            if (rd_list(s, st->C, 0, 2147483647.0, &st->mult_at)) return qbad("quant.int8_full: mult is not C integers in [0, 2^31)");
            if (s->pos - st->mult_at == 5u * st->C) { /* five bytes each: all uint32 (not an int32 or float32)? */
                uint32_t c;
                for (c = 0; c < st->C && fl_m.mp[st->mult_at + 5u * c] == 0xce; c++) {}
                if (c == st->C) st->form |= QF_M32;
            }
            seen |= 8;
        } else if (mp_str_eq(s, &k, "shift")) {
            if (rd_list(s, st->C, -31, 30, &st->shift_at)) return qbad("quant.int8_full: shift is not C integers in [-31, 30]");
            if (s->pos - st->shift_at == st->C) st->form |= QF_S8; /* one byte each: fixints */
            seen |= 16;
        } else if (mp_str_eq(s, &k, "bias")) {
            if (rd_list(s, st->C, -2147483648.0, 2147483647.0, &st->bias_at)) return qbad("quant.int8_full: bias is not C int32");
        }
#endif
        else if (mp_str_eq(s, &k, "min") || mp_str_eq(s, &k, "max")) {
            int mx = mp_str_eq(s, &k, "max");
            if (fl_rd_int(s, -128, 127, &v)) return qbad("quant.int8_full: a clamp is not an int8");
            if (mx) { st->max = (int8_t)v; seen |= 64; } else { st->min = (int8_t)v; seen |= 32; }
        } else if (mp_skip(s, 0, 4)) return qbad("quant.int8_full: bad stage value");
    }
    if (seen != 127) return qbad("quant.int8_full: a stage needs w, in, out, mult, shift, min and max");
    if (st->min > st->max) return qbad("quant.int8_full: clamp min > max");
    *pscale = osc;
    *pzp = st->out_zp;
    return 0;
}

#if FL_Q_MISC
/* one integer in [lo, hi] into *v: where double is 32 bits (FL_Q_STORE_LISTS, the AVR) a msgpack
 * int read exactly (a Q31 multiplier does not fit binary32), elsewhere any integral number */
static int rd_i32(fl_src *s, int64_t lo, int64_t hi, int32_t *v) {
#if FL_Q_STORE_LISTS
    mp_item a;
    int64_t x;
    if (mp_head(s, &a) || a.type != MP_INT || a.u > ((uint64_t)1 << 32)) return -1;
    x = a.neg ? -(int64_t)a.u : (int64_t)a.u;
    if (x < lo || x > hi) return -1;
    *v = (int32_t)x;
#else
    double x;
    if (fl_rd_int(s, (double)lo, (double)hi, &x)) return -1;
    *v = (int32_t)x;
#endif
    return 0;
}

/* n integers in [lo, hi] into v (int32) */
static int rd_ints(fl_src *s, uint32_t n, int64_t lo, int64_t hi, int32_t *v) {
    mp_item a;
    uint32_t i;
    if (mp_head(s, &a) || a.type != MP_ARRAY || a.u != n) return -1;
    for (i = 0; i < n; i++) if (rd_i32(s, lo, hi, &v[i])) return -1;
    return 0;
}

/* a table, add, concat or softmax node (runtime/int8full/params.ts readInt8Full checks the same) */
static int q_prepare_misc(fl_node *n, uint8_t kind) {
    static const uint32_t *const maps[] = { NULL, &q_lut, &q_add, &q_concat, &q_softmax };
    uint32_t j, acts = 0, extra = kind == QK_LUT ? 256u : kind == QK_SOFTMAX ? 1024u : 0u;
    double sc, os;
    int32_t zp, oz;
    fl_qnode *q;
    fl_qmisc *p;
    fl_src s;
    int r;
    if (!(q = (fl_qnode *)fl_tab_alloc((uint32_t)sizeof *q)) || !(p = (fl_qmisc *)fl_tab_alloc((uint32_t)sizeof *p + extra)))
        return fl_fail("TOO_LARGE", "model tables do not fit the arena");
    n->q_at = (uint32_t)((uint8_t *)q - fl_arena);
    q->kind = kind;
    q->misc_at = (uint32_t)((uint8_t *)p - fl_arena);
    n->scratch_need /= 4u;
    for (j = 0; j < n->nin && j < FL_MAX_IN; j++) {
        if (n->in[j] & FL_REF_TENSOR) continue;
        CHECK(value_quant(n->in[j], &sc, &zp));
        p->zp[acts] = zp;
        if (!acts) { q->act = (uint8_t)j; q->in_zp = (int8_t)zp; }
        acts++;
    }
    if (!acts || (kind != QK_CONCAT && kind != QK_ADD && acts != 1)) return fl_bad("the int8-full path takes one activation input for this kind (the other a stored scalar)");
    if (kind == QK_LUT && n->nin > 1) {
        const fl_tensor *c = &fl_m.tensors[n->in[1 - q->act] & (uint16_t)~FL_REF_TENSOR];
        if (c->numel != 1) return fl_bad("the int8-full path takes a stored scalar here");
    }
    if (kind == QK_ADD && (fl_m.values[n->in[0]].numel != fl_m.values[n->out].numel || fl_m.values[n->in[1]].numel != fl_m.values[n->out].numel))
        return fl_bad("the int8-full add takes two inputs of the output's shape");
    CHECK(value_quant(n->out, &os, &oz));
    p->out_zp = oz;
    r = *maps[kind] ? find_named(*maps[kind], FL_NR(n)->nm.at, FL_NR(n)->nm.len, &s) : 0;
    if (r < 0) return qbad("quant.int8_full: lut, add, concat or softmax is not a map of names");
    if (r == 0) return qbad("quant.int8_full: no table or parameters for this node");
    if (kind == QK_LUT) {
        mp_item a;
        double v;
        if (mp_head(&s, &a) || a.type != MP_ARRAY || a.u != 256) return qbad("quant.int8_full: lut is not 256 integers in [-128, 127]");
        for (j = 0; j < 256; j++) {
            if (fl_rd_int(&s, -128, 127, &v)) return qbad("quant.int8_full: lut is not 256 integers in [-128, 127]");
            ((int8_t *)p->tab)[j] = (int8_t)v;
        }
        return 0;
    }
    if (kind == QK_SOFTMAX) {
        if (os != 1.0 / 256.0 || oz != -128) return qbad("quant.int8_full: softmax output quantisation is not [1/256, -128]");
        if (rd_ints(&s, 256, 0, 65536, (int32_t *)p->tab) || p->tab[0] != 65536u) return qbad("quant.int8_full: softmax exp table is not 256 integers in [0, 65536] from 65536");
        return 0;
    }
    {
        mp_item m, k;
        uint32_t i, seen = 0;
        double v;
        if (mp_head(&s, &m) || m.type != MP_MAP) return qbad("quant.int8_full: add / concat parameters are not a map");
        for (i = 0; i < m.u; i++) {
            if (fl_key(&s, &k)) return qbad("quant.int8_full: a key is not a string");
            if (mp_str_eq(&s, &k, "mult")) { if (rd_ints(&s, acts, 0, 2147483647, p->mult)) return qbad("quant.int8_full: mult is not one integer in [0, 2^31) per input"); seen |= 1; }
            else if (mp_str_eq(&s, &k, "shift")) { if (rd_ints(&s, acts, -31, 30, p->shift)) return qbad("quant.int8_full: shift is not one integer in [-31, 30] per input"); seen |= 2; }
            else if (kind == QK_ADD && mp_str_eq(&s, &k, "outMult")) { if (rd_i32(&s, 0, 2147483647, &p->out_mult)) return qbad("quant.int8_full: add outMult"); seen |= 4; }
            else if (kind == QK_ADD && mp_str_eq(&s, &k, "outShift")) { if (fl_rd_int(&s, -31, 30, &v)) return qbad("quant.int8_full: add outShift"); p->out_shift = (int32_t)v; seen |= 8; }
            else if (kind == QK_ADD && mp_str_eq(&s, &k, "min")) { if (fl_rd_int(&s, -128, 127, &v)) return qbad("quant.int8_full: add min"); p->min = (int32_t)v; seen |= 16; }
            else if (kind == QK_ADD && mp_str_eq(&s, &k, "max")) { if (fl_rd_int(&s, -128, 127, &v)) return qbad("quant.int8_full: add max"); p->max = (int32_t)v; seen |= 32; }
            else if (mp_skip(&s, 0, 4)) return qbad("quant.int8_full: bad add / concat value");
        }
        if (seen != (kind == QK_ADD ? 63u : 3u)) return qbad("quant.int8_full: add needs mult, shift, outMult, outShift, min, max; concat mult, shift");
        if (kind == QK_ADD && p->min > p->max) return qbad("quant.int8_full: clamp min > max");
    }
    return 0;
}

#endif

int fl_q_prepare(fl_node *n) {
    static const uint8_t dense[] = { ROLE_WEIGHT, QG_DENSE }, conv[] = { ROLE_WEIGHT, QG_CONV },
        svdd[] = { ROLE_V, QG_DENSE, ROLE_U, QG_DENSE }, svdc[] = { ROLE_V, QG_CONV, ROLE_U, QG_1X1 },
        tk[] = { ROLE_U_IN, QG_1X1, ROLE_CORE, QG_CONV, ROLE_U_OUT, QG_1X1 },
        cp[] = { ROLE_A_IN, QG_1X1, ROLE_K_H, QG_V, ROLE_K_W, QG_H, ROLE_A_OUT, QG_1X1 }, dw[] = { ROLE_U, QG_DW };
    const uint8_t *plan = NULL;
    uint8_t nst = 0, k;
    double is, os;
    int32_t iz, oz;
    fl_qnode *q;
    fl_src s;
    mp_item a;
    if (n == &fl_m.nodes[0]) {
#if !FL_Q_STORE_LISTS
        fl_q_view_reset();
#endif
        if (q_begin()) return -1;
    }
    switch (n->op) {
#if FL_Q_MISC
    case OP_ADD: return q_prepare_misc(n, n->nin == 2 && !(n->in[0] & FL_REF_TENSOR) && !(n->in[1] & FL_REF_TENSOR) ? QK_ADD : QK_LUT);
    case OP_MUL: case OP_SIGMOID: case OP_TANH: case OP_HARD_SIGMOID: case OP_HARD_SWISH: case OP_LEAKY_RELU: case OP_CLIP:
        return q_prepare_misc(n, QK_LUT);
    case OP_CONCAT: return q_prepare_misc(n, QK_CONCAT);
    case OP_SOFTMAX: return q_prepare_misc(n, QK_SOFTMAX);
#else
    case OP_ADD: case OP_MUL: case OP_SIGMOID: case OP_TANH: case OP_HARD_SIGMOID: case OP_HARD_SWISH: case OP_LEAKY_RELU: case OP_CLIP:
    case OP_CONCAT: case OP_SOFTMAX:
        return fl_bad("this firmware has no int8-full tables, add, concat or softmax (FL_Q_MISC 0)");
#endif
    default: break;
    }
    if (n->nin != 1 || (n->in[0] & FL_REF_TENSOR)) return fl_bad("the int8-full path takes one activation input per node");
    CHECK(value_quant(n->in[0], &is, &iz));
    CHECK(value_quant(n->out, &os, &oz));
    switch (n->op) {
    case OP_DENSE: plan = dense; nst = 1; break;
    case OP_CONV2D: plan = conv; nst = 1; break;
    case OP_SVD_DENSE: plan = svdd; nst = 2; break;
    case OP_SVD_CONV2D: plan = svdc; nst = 2; break;
    case OP_TUCKER2_CONV2D: plan = tk; nst = 3; break;
    case OP_CP_CONV2D: plan = cp; nst = 4; break;
    case OP_DWLR_CONV2D: plan = dw; nst = 1; break; /* qdwlr.c */
    case OP_RELU: case OP_MAX_POOL: case OP_AVG_POOL: case OP_GLOBAL_AVG_POOL: case OP_FLATTEN: case OP_RESHAPE: case OP_IDENTITY: break;
    default: return fl_bad("op not on the int8-full path");
    }
#if FL_Q_STORE_LISTS
    if (!fl_q_port_has(n->op)) return fl_bad("op not on this port's int8-full path");
#endif
    if (!(q = (fl_qnode *)fl_tab_alloc((uint32_t)(sizeof *q + nst * sizeof(fl_qst))))) return fl_fail("TOO_LARGE", "model tables do not fit the arena");
    n->q_at = (uint32_t)((uint8_t *)q - fl_arena);
    q->in_zp = (int8_t)iz;
    q->nst = nst;
    n->scratch_need /= 4u; /* the same intermediates as the f32 kernels', int8 */
    if (!nst) {
        if (is != os || iz != oz) return qbad("quant.int8_full: a kind without weights changes the quantisation");
        return 0;
    }
    {
        int r = find_named(fl_m.q_nodes, FL_NR(n)->nm.at, FL_NR(n)->nm.len, &s);
        if (r < 0) return qbad("quant.int8_full: nodes is not a map of names");
        if (r == 0) return qbad("quant.int8_full: no stages for this node");
    }
    if (mp_head(&s, &a) || a.type != MP_ARRAY || a.u != nst) return qbad("quant.int8_full: wrong number of stages for the node's kind");
    for (k = 0; k < nst; k++) CHECK(rd_stage(&s, n, plan[2 * k], plan[2 * k + 1], &is, &iz, &q->st[k]));
    if (is != os || iz != oz) return qbad("quant.int8_full: the last stage's output quantisation differs from the node's output value");
#if !FL_Q_STORE_LISTS
    if (n->op == OP_DWLR_CONV2D) CHECK(fl_q_dwlr_check(n, &q->st[0]));
#endif
    /* after the int8 intermediates: a conv kind's OH x OW plane space (row bands of a fused conv -> pool),
     * then, 4-aligned, a block of the lists (runtime/plan/mcu.ts sizes the same) */
    q->plane_off = n->scratch_need;
    if (fl_conv_kind(n->op)) n->scratch_need += n->d[4] * n->d[5];
    {   /* (reserved on every port, as the planner does; the AVR's kernels read the lists in place);
         * a dense kind over one row reads its lists in channel order as it runs (qdense.c): none */
        uint32_t most = 0, b;
        int inorder = (n->op == OP_DENSE || n->op == OP_SVD_DENSE) && n->d[0] == 1;
        for (k = 0; k < nst; k++) {
            b = stage_block(n, &q->st[k]);
#if !FL_Q_STORE_LISTS
            q->st[k].block = b == q->st[k].C ? 0 : (uint8_t)b; /* (b < C only when b is FL_Q_PAR_BLOCK) */
#endif
            b = stage_par_bytes(&q->st[k], b);
            if (!inorder && b > most) most = b;
        }
        if (most) {
            n->scratch_need = (n->scratch_need + 3u) & ~3u;
#if !FL_Q_STORE_LISTS
            q->par_off = n->scratch_need;
#endif
            n->scratch_need += most;
        }
    }
    return 0;
}

#endif
