/* ops/factor.c: tensorised dense layers: tt_dense and tr_dense (a train or ring of 4-D cores
 * contracted one mode at a time) and ttl_dense (a Tucker core between per-mode factors). */
#include "op.h"

/* mode product: y[pre, rows, post] = sum_c M(r, c) x[pre, c, post]; M [rows, dk] or [dk, rows] (tr) */
static void fl_mode_product(const float *x, uint32_t pre, uint32_t dk, uint32_t post, const fl_tensor *m, uint32_t rows, int tr, float *y) {
    uint32_t aa, r, c, q;
    for (q = 0; q < pre * rows * post; q++) y[q] = 0;
    /* each factor element decoded once, applied to every aa; per output the terms arrive in c order */
    for (r = 0; r < rows; r++)
        for (c = 0; c < dk; c++) {
            float mv = fl_wget(m, tr ? c * rows + r : r * dk + c);
            if (mv == 0) continue;
            for (aa = 0; aa < pre; aa++) {
                const float *xr = x + (aa * dk + c) * post;
                float *yr = y + (aa * rows + r) * post;
                for (q = 0; q < post; q++) yr[q] += mv * xr[q];
            }
        }
}

/* a node's out_modes and in_modes (checked by the reader: each >= 1, at most FL_MAX_MODES), kept
 * in its op params for prepare and eval (fl_attrs does not carry them: other nodes would) */
typedef struct {
    uint8_t nout, nin;
    uint32_t out[FL_MAX_MODES], in[FL_MAX_MODES];
} fl_modes;

static int read_modes(fl_node *n, fl_modes **m) {
    int32_t v[FL_MAX_MODES];
    uint8_t len, k;
    fl_modes *p = (fl_modes *)fl_op_params(n, (uint32_t)sizeof(fl_modes));
    if (!p) return -1;
    memset(p, 0, sizeof *p);
    if (fl_attr_ints(n, "out_modes", v, FL_MAX_MODES, &len) < 0) return -1;
    for (k = 0; k < len; k++) p->out[k] = (uint32_t)v[k];
    p->nout = len;
    if (fl_attr_ints(n, "in_modes", v, FL_MAX_MODES, &len) < 0) return -1;
    for (k = 0; k < len; k++) p->in[k] = (uint32_t)v[k];
    p->nin = len;
    *m = p;
    return 0;
}

int fl_tt_prepare(fl_node *n) {
    fl_modes *a;
    uint32_t rows;
    int ring = n->op == OP_TR_DENSE;
    uint32_t d, k, r0 = 0, rprev = 0, inF, outF, P, Q, S = 0, count = 0;
    CHECK(read_modes(n, &a));
    d = a->nout;
    if (d < 1 || a->nin != d) return fl_bad("out_modes and in_modes must have the same length >= 1");
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 1u << ROLE_BIAS, d));
    inF = fl_prod(a->in, 0, (int)d);
    outF = fl_prod(a->out, 0, (int)d);
    if ((uint64_t)inF > FL_ARENA_BYTES || (uint64_t)outF > FL_ARENA_BYTES) return fl_fail("TOO_LARGE", "modes larger than the arena");
    for (k = 0; k < d; k++) {
        fl_tensor *c;
        CHECK(fl_need_role(n, ROLE_IDX + (int)k, &c));
        if (c->rank != 4) return fl_bad("cores must be 4-D");
        if (c->dims[1] != a->out[k] || c->dims[2] != a->in[k]) return fl_bad("core modes do not match the attributes");
        if (k == 0) r0 = c->dims[0];
        else if (c->dims[0] != rprev) return fl_bad("core ranks do not chain");
        rprev = c->dims[3];
    }
    if (rprev != r0) return fl_bad("first and last ranks differ");
    if (!ring && r0 != 1) return fl_bad("a tensor train has boundary ranks 1");
    if (r0 < 1) return fl_bad("zero rank");
    CHECK(fl_bias_ok(n, outF));
    CHECK(fl_dense_shape(n, inF, outF, &rows));
    {
        double wk = 0, p2 = rows, q2 = (double)inF / a->in[0];
        for (k = 0; k < d; k++) {
            fl_tensor *c = T(n, ROLE_IDX + (int)k);
            wk += (double)c->numel * p2 * q2;
            p2 *= (ring && k == 0 ? (double)r0 : 1.0) * a->out[k];
            q2 = k + 1 < d ? q2 / a->in[k + 1] : 1.0;
        }
        CHECK(fl_work(wk));
    }
    P = rows; Q = inF / a->in[0];
    for (k = 0; k < d; k++) {
        fl_tensor *c = T(n, ROLE_IDX + (int)k);
        int rf = ring && k == 0;
        uint64_t cols = rf ? (uint64_t)c->dims[0] * c->dims[1] * c->dims[3] : (uint64_t)c->dims[1] * c->dims[3];
        uint64_t sz = (uint64_t)P * cols * Q;
        if (sz * 4u > FL_ARENA_BYTES) return fl_fail("TOO_LARGE", "intermediate larger than the arena");
        if (ring || k + 1 < d) { if (sz > S) S = (uint32_t)sz; count++; }
        P *= (rf ? r0 : 1u) * a->out[k];
        Q = k + 1 < d ? Q / a->in[k + 1] : 1u;
    }
    n->d[0] = rows; n->d[1] = S; n->d[2] = inF; n->d[3] = outF;
    n->scratch_need = (count >= 2 ? 2u : count) * S * 4u;
    return 0;
}

int fl_ttl_prepare(fl_node *n) {
    fl_modes *a;
    uint32_t rows;
    uint32_t p, q, k, inF, outF, R, Sx, S = 0;
    uint32_t cur[FL_MAX_MODES];
    fl_tensor *core;
    CHECK(read_modes(n, &a));
    p = a->nout; q = a->nin;
    if (p < 1 || q < 1 || p + q > FL_MAX_INDEXED || p + q > FL_MAX_RANK) return fl_bad("ttl modes: none, or more than the device allows");
    CHECK(fl_one_input(n)); CHECK(fl_only_roles(n, 1u << ROLE_CORE | 1u << ROLE_BIAS, p + q));
    CHECK(fl_need_role(n, ROLE_CORE, &core));
    if (core->rank != p + q) return fl_bad("core must have p + q modes");
    for (k = 0; k < p + q; k++) {
        fl_tensor *f;
        uint32_t dims[2];
        CHECK(fl_need_role(n, ROLE_IDX + (int)k, &f));
        dims[0] = k < p ? a->out[k] : a->in[k - p];
        dims[1] = core->dims[k];
        if (!fl_shape_is(f, 2, dims)) return fl_bad("factor shape does not match");
    }
    inF = fl_prod(a->in, 0, (int)q);
    outF = fl_prod(a->out, 0, (int)p);
    if ((uint64_t)inF > FL_ARENA_BYTES || (uint64_t)outF > FL_ARENA_BYTES) return fl_fail("TOO_LARGE", "modes larger than the arena");
    R = fl_prod(core->dims, 0, (int)p);
    Sx = fl_prod(core->dims, (int)p, (int)(p + q));
    CHECK(fl_bias_ok(n, outF));
    CHECK(fl_dense_shape(n, inF, outF, &rows));
    {
        /* each factor element meets every other index of its stage once: bounded by the
         * factor's size times the largest intermediate, plus the core product */
        double wk = (double)rows * core->numel, big = (double)rows * inF + (double)rows * outF + (double)rows * R + (double)rows * Sx;
        for (k = 0; k < p + q; k++) wk += (double)T(n, ROLE_IDX + (int)k)->numel * big;
        CHECK(fl_work(wk));
    }
    /* intermediates: after each input projection, the core product, each expansion but the last */
    memcpy(cur, a->in, sizeof cur);
    for (k = 0; k < q; k++) {
        uint64_t sz;
        cur[k] = core->dims[p + k];
        sz = (uint64_t)rows * fl_prod(cur, 0, (int)q);
        if (sz * 4u > FL_ARENA_BYTES) return fl_fail("TOO_LARGE", "intermediate larger than the arena");
        if (sz > S) S = (uint32_t)sz;
    }
    if ((uint64_t)rows * R > S) S = rows * R;
    memcpy(cur, core->dims, sizeof(uint32_t) * p);
    for (k = 0; k + 1 < p; k++) {
        uint64_t sz;
        cur[k] = a->out[k];
        sz = (uint64_t)rows * fl_prod(cur, 0, (int)p);
        if (sz * 4u > FL_ARENA_BYTES) return fl_fail("TOO_LARGE", "intermediate larger than the arena");
        if (sz > S) S = (uint32_t)sz;
    }
    n->d[0] = rows; n->d[1] = S; n->d[2] = inF; n->d[3] = outF;
    n->scratch_need = 2u * S * 4u;
    return 0;
}

void fl_tt_eval(const fl_node *n, const fl_ctx *cx) {
    const fl_modes *a = (const fl_modes *)fl_params(n);
    float *y = fl_vp(n->out, cx);
    const float *x = fl_x(n, cx);
    float *scr = fl_scratch(n);
    uint32_t i;
    int ring = n->op == OP_TR_DENSE;
    uint32_t d = a->nout, k, rows = n->d[0], S = n->d[1], inF = n->d[2], outF = n->d[3];
    uint32_t P = rows, Q = inF / a->in[0], r0 = T(n, ROLE_IDX)->dims[0], nb = 0;
    const float *z = x;
    for (k = 0; k < d; k++) {
        fl_tensor *c = T(n, ROLE_IDX + (int)k);
        uint32_t ra = c->dims[0], m = c->dims[1], nn = c->dims[2], rb = c->dims[3];
        int rf = ring && k == 0;
        uint32_t rws = rf ? nn : ra * nn, cols = rf ? ra * m * rb : m * rb, p, aa, ii, j, bb, q;
        float *dst = (!ring && k + 1 == d) ? y : scr + (nb++ % 2) * S;
        for (i = 0; i < P * cols * Q; i++) dst[i] = 0;
        /* each core element is decoded once and applied to every p; for a given output the
         * terms still arrive in row order (aa, j), as in the reference */
        for (aa = 0; aa < ra; aa++)
            for (ii = 0; ii < m; ii++)
                for (j = 0; j < nn; j++)
                    for (bb = 0; bb < rb; bb++) {
                        float wv = fl_wget(c, ((aa * m + ii) * nn + j) * rb + bb);
                        uint32_t row = rf ? j : aa * nn + j, col = rf ? (aa * m + ii) * rb + bb : ii * rb + bb;
                        if (wv == 0) continue;
                        for (p = 0; p < P; p++) {
                            const float *zr = z + (p * rws + row) * Q;
                            float *dr = dst + (p * cols + col) * Q;
                            for (q = 0; q < Q; q++) dr[q] += wv * zr[q];
                        }
                    }
        z = dst;
        P *= (rf ? r0 : 1u) * m;
        Q = k + 1 < d ? Q / a->in[k + 1] : 1u;
    }
    if (ring) {
        uint32_t bi, aa, o;
        for (i = 0; i < rows * outF; i++) y[i] = 0;
        for (bi = 0; bi < rows; bi++)
            for (aa = 0; aa < r0; aa++)
                for (o = 0; o < outF; o++) y[bi * outF + o] += z[((bi * r0 + aa) * outF + o) * r0 + aa];
    }
    fl_add_bias(y, rows, outF, T(n, ROLE_BIAS));
}

void fl_ttl_eval(const fl_node *n, const fl_ctx *cx) {
    const fl_modes *a = (const fl_modes *)fl_params(n);
    float *y = fl_vp(n->out, cx);
    const float *x = fl_x(n, cx);
    float *scr = fl_scratch(n);
    uint32_t p = a->nout, q = a->nin, k, rows = n->d[0], S = n->d[1], outF = n->d[3], nb = 0;
    uint32_t cur[FL_MAX_MODES];
    fl_tensor *core = T(n, ROLE_CORE);
    const float *z = x;
    float *dst;
    uint32_t R = fl_prod(core->dims, 0, (int)p), Sx = fl_prod(core->dims, (int)p, (int)(p + q)), r;
    memcpy(cur, a->in, sizeof cur);
    for (k = 0; k < q; k++) {
        uint32_t pre = rows * fl_prod(cur, 0, (int)k), post = fl_prod(cur, (int)k + 1, (int)q);
        dst = scr + (nb++ % 2) * S;
        fl_mode_product(z, pre, cur[k], post, T(n, ROLE_IDX + (int)(p + k)), core->dims[p + k], 1, dst);
        cur[k] = core->dims[p + k];
        z = dst;
    }
    dst = scr + (nb++ % 2) * S;
    for (r = 0; r < rows; r++)
        for (k = 0; k < R; k++) dst[r * R + k] = fl_wdot(core, k * Sx, z + r * Sx, Sx);
    z = dst;
    memcpy(cur, core->dims, sizeof(uint32_t) * p);
    for (k = 0; k < p; k++) {
        uint32_t pre = rows * fl_prod(cur, 0, (int)k), post = fl_prod(cur, (int)k + 1, (int)p);
        dst = k + 1 == p ? y : scr + (nb++ % 2) * S;
        fl_mode_product(z, pre, cur[k], post, T(n, ROLE_IDX + (int)k), a->out[k], 0, dst);
        cur[k] = a->out[k];
        z = dst;
    }
    fl_add_bias(y, rows, outF, T(n, ROLE_BIAS));
}
