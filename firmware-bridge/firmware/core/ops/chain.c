/* ops/chain.c: fused chains (docs/FORMAT.md 7, "Fused values"): producer -> [activation] -> consumer
 * run as one step at the consumer, the intermediates never stored, with the same values as the
 * unfused kernels. */
#include <math.h>
#include "op.h"

int fl_chain_act(uint8_t op) {
    return op == OP_RELU || op == OP_LEAKY_RELU || op == OP_CLIP || op == OP_SIGMOID || op == OP_TANH;
}

int fl_chain_supported(uint8_t producer, uint8_t consumer) {
    /* conv -> [act] -> pool: one pooled output at a time (run_conv_chain) */
    if (fl_conv_kind(producer) && (consumer == OP_MAX_POOL || consumer == OP_AVG_POOL)) return 1;
    /* dense | svd_dense -> [act] -> dense: one hidden unit at a time (run_dense_chain) */
    if ((producer == OP_DENSE || producer == OP_SVD_DENSE) && consumer == OP_DENSE) return 1;
    return 0;
}

int fl_chain_work(const fl_node *p, const fl_node *c) {
    /* run_conv_chain computes every pooled output's window anew: overlapping windows repeat conv
     * outputs, so its work is the pooled outputs x window positions x one conv output's terms */
    if (fl_conv_kind(p->op) && (c->op == OP_MAX_POOL || c->op == OP_AVG_POOL)) {
        const fl_tensor *w = p->op == OP_CONV2D ? T(p, ROLE_WEIGHT) : NULL;
        double per = w ? (double)w->dims[1] * w->dims[2] * w->dims[3] : (double)(p->op == OP_TUCKER2_CONV2D ? p->d[7] : p->d[6]);
        return fl_work((double)fl_m.values[c->out].numel * c->a->kernel[0] * c->a->kernel[1] * per);
    }
    return 0;
}

#define CHAIN_ACC 16 /* conv outputs of one pool window computed together (stack floats) */
/* An output channel's weights decoded once per channel when they are this few (stack floats);
 * the 8 KB part keeps its stack for the protocol. */
#ifndef FL_CHAIN_WCACHE
#define FL_CHAIN_WCACHE (FL_ARENA_BYTES >= 32768u ? 64u : 1u)
#endif

/* The weights of output channel o that chain_conv_at reads (conv2d: [Cg, KH, KW]; a factorised
 * conv's last 1x1: [K]): their count and first index. */
static uint32_t chain_row(const fl_node *pc, uint32_t o, const fl_tensor **w, uint32_t *first) {
    if (pc->op == OP_CONV2D) {
        uint32_t len;
        *w = T(pc, ROLE_WEIGHT);
        len = (*w)->dims[1] * (*w)->dims[2] * (*w)->dims[3];
        *first = o * len;
        return len;
    }
    {
        uint32_t K = pc->op == OP_TUCKER2_CONV2D ? pc->d[7] : pc->d[6];
        *w = pc->op == OP_SVD_CONV2D ? T(pc, ROLE_U) : pc->op == OP_TUCKER2_CONV2D ? T(pc, ROLE_U_OUT) : T(pc, ROLE_A_OUT);
        *first = o * K;
        return K;
    }
}

/* The conv outputs acc[j] = y[o, py[j], px[j]] (j < m) of the producer pc, with the terms summed
 * in the order of the unfused kernels (conv: c, ky, kx, zero weights skipped, then the bias; the
 * last 1x1 stage of a factorised conv: its inputs in order from the stage results in scratch z),
 * so the values equal what fl_conv()/fl_conv1x1() would have stored. wc: channel o's weights decoded
 * (chain_row), or NULL to decode each once per call. */
static void chain_conv_at(const fl_node *pc, const float *x, const float *z, uint32_t o, const float *wc,
                          const int32_t *py, const int32_t *px, uint32_t m, float *acc) {
    const fl_attrs *a = pc->a;
    const fl_tensor *b = T(pc, ROLE_BIAS), *w;
    uint32_t j, w0, i = 0;
    (void)chain_row(pc, o, &w, &w0);
    for (j = 0; j < m; j++) acc[j] = 0;
    if (pc->op == OP_CONV2D) {
        uint32_t C = pc->d[0], H = pc->d[1], W = pc->d[2], O = pc->d[3], G = (uint32_t)a->group;
        uint32_t Og = O / G, Cg = C / G, g = o / Og, KH = w->dims[2], KW = w->dims[3], c, ky, kx;
        int32_t y0[CHAIN_ACC], x0[CHAIN_ACC], base[CHAIN_ACC];
        uint8_t inside[CHAIN_ACC], all = 1;
        /* windows whose every tap is inside the input skip the bounds checks */
        for (j = 0; j < m; j++) {
            y0[j] = py[j] * a->strides[0] - a->pads[0];
            x0[j] = px[j] * a->strides[1] - a->pads[1];
            inside[j] = y0[j] >= 0 && x0[j] >= 0 && y0[j] + (int32_t)(KH - 1) * a->dil[0] < (int32_t)H && x0[j] + (int32_t)(KW - 1) * a->dil[1] < (int32_t)W;
            base[j] = y0[j] * (int32_t)W + x0[j];
            all &= inside[j];
        }
        for (c = 0; c < Cg; c++) {
            const float *xc = x + (g * Cg + c) * H * W;
            for (ky = 0; ky < KH; ky++)
                for (kx = 0; kx < KW; kx++, i++) {
                    float wv = wc ? wc[i] : fl_wget(w, w0 + i);
                    int32_t dy = (int32_t)ky * a->dil[0], dx = (int32_t)kx * a->dil[1];
                    if (wv == 0) continue;
                    if (all) {
                        const float *xt = xc + dy * (int32_t)W + dx;
                        for (j = 0; j < m; j++) acc[j] += wv * xt[base[j]];
                        continue;
                    }
                    for (j = 0; j < m; j++) {
                        int32_t iy = y0[j] + dy, ix = x0[j] + dx;
                        if (!inside[j] && (iy < 0 || iy >= (int32_t)H || ix < 0 || ix >= (int32_t)W)) continue;
                        acc[j] += wv * xc[(uint32_t)iy * W + (uint32_t)ix];
                    }
                }
        }
    } else {
        /* the last stage: y[o, p] = sum_k M[o, k] z[k, p] */
        uint32_t K = pc->op == OP_TUCKER2_CONV2D ? pc->d[7] : pc->d[6], OW = pc->d[5], P = pc->d[4] * OW, k;
        uint32_t at[CHAIN_ACC];
        for (j = 0; j < m; j++) at[j] = (uint32_t)py[j] * OW + (uint32_t)px[j];
        for (k = 0; k < K; k++) {
            float wv = wc ? wc[k] : fl_wget(w, w0 + k);
            const float *zk = z + k * P;
            if (wv == 0) continue;
            for (j = 0; j < m; j++) acc[j] += wv * zk[at[j]];
        }
    }
    if (b) { float bv = fl_wget(b, o); for (j = 0; j < m; j++) acc[j] += bv; }
}

/* The stages of a factorised conv before its last 1x1, into the node's scratch (as run_node);
 * returns the last stage's input [K, OH, OW] there. */
static const float *chain_stages(const fl_node *n, const float *x) {
    const fl_attrs *a = n->a;
    float *scr = (float *)(void *)(fl_arena + n->scratch_off);
    if (n->op == OP_SVD_CONV2D) {
        const fl_tensor *v = T(n, ROLE_V);
        fl_conv(x, n->d[0], n->d[1], n->d[2], v, 0, n->d[6], 1, v->dims[2], v->dims[3], a, a->strides, a->pads, a->dil, n->d[4], n->d[5], NULL, scr);
        return scr;
    }
    if (n->op == OP_TUCKER2_CONV2D) {
        const fl_tensor *ui = T(n, ROLE_U_IN), *core = T(n, ROLE_CORE);
        uint32_t r1 = n->d[6], r2 = n->d[7], HW = n->d[1] * n->d[2];
        float *s2 = scr + r1 * HW;
        fl_conv1x1(x, n->d[0], HW, ui, r1, NULL, scr);
        fl_conv(scr, r1, n->d[1], n->d[2], core, 0, r2, 1, core->dims[2], core->dims[3], a, a->strides, a->pads, a->dil, n->d[4], n->d[5], NULL, s2);
        return s2;
    }
    {
        const fl_tensor *ai = T(n, ROLE_A_IN), *kh = T(n, ROLE_K_H), *kw = T(n, ROLE_K_W);
        uint32_t R = n->d[6], H = n->d[1], W = n->d[2], OH = n->d[4], OW = n->d[5], HW = H * W, P = OH * OW;
        uint32_t big = HW > P ? HW : P;
        float *sa = scr, *sv = scr + R * big;
        int32_t sv_str[2], sv_pad[4], sv_dil[2], sh_str[2], sh_pad[4], sh_dil[2];
        sv_str[0] = a->strides[0]; sv_str[1] = 1; sv_pad[0] = a->pads[0]; sv_pad[1] = 0; sv_pad[2] = a->pads[2]; sv_pad[3] = 0; sv_dil[0] = a->dil[0]; sv_dil[1] = 1;
        sh_str[0] = 1; sh_str[1] = a->strides[1]; sh_pad[0] = 0; sh_pad[1] = a->pads[1]; sh_pad[2] = 0; sh_pad[3] = a->pads[3]; sh_dil[0] = 1; sh_dil[1] = a->dil[1];
        fl_conv1x1(x, n->d[0], HW, ai, R, NULL, sa);
        fl_conv(sa, R, H, W, kh, 0, R, R, kh->dims[1], 1, a, sv_str, sv_pad, sv_dil, OH, W, NULL, sv);
        fl_conv(sv, R, OH, W, kw, 0, R, R, 1, kw->dims[1], a, sh_str, sh_pad, sh_dil, OH, OW, NULL, sa);
        return sa;
    }
}

/* Consumer pn (max_pool / avg_pool) of the chain nodes[pn->span_lo ..]: each pooled output from
 * the conv outputs of its window, activated; the conv's and the activation's outputs are never
 * stored. Same values as the unfused nodes. */
/* A block of whole pool windows: their conv outputs (py, px; m of them) computed in one
 * chain_conv_at call, window w's at [wst[w], wst[w] + wn[w]), reduced into y[wout[w]] (avg_pool
 * divides by wdiv[w]). */
typedef struct {
    uint32_t m, nw, wst[CHAIN_ACC], wn[CHAIN_ACC], wout[CHAIN_ACC];
    int32_t py[CHAIN_ACC], px[CHAIN_ACC], wdiv[CHAIN_ACC];
} chain_block;

static void chain_flush(const fl_node *pn, const fl_node *an, const fl_node *pc, const float *x, const float *z,
                        uint32_t o, const float *wc, chain_block *b, float *y) {
    float acc[CHAIN_ACC];
    uint32_t w, j;
    if (b->m) chain_conv_at(pc, x, z, o, wc, b->py, b->px, b->m, acc);
    for (w = 0; w < b->nw; w++) {
        float r = -INFINITY, sum = 0;
        for (j = b->wst[w]; j < b->wst[w] + b->wn[w]; j++) {
            float v = fl_act_apply(an, acc[j]);
            if (pn->op == OP_MAX_POOL) { if (v > r) r = v; }
            else sum += v;
        }
        y[b->wout[w]] = pn->op == OP_MAX_POOL ? r : b->wdiv[w] > 0 ? sum / (float)b->wdiv[w] : 0;
    }
    b->m = b->nw = 0;
}

#if FL_FAST_KERNELS
#define CHAIN_ROWS 256 /* floats of conv output rows one pooled row is made from (stack) */
/* The conv-pool chain a pooled row at a time: the conv output rows its windows read, whole, by the
 * fast row kernels (rows.c) into a stack buffer, each activated once; then the windows reduced as
 * run_conv_chain reduces them. Each conv output takes its terms in chain_conv_at's order, so the
 * values are the same. 0 when the rows do not fit the buffer (run_conv_chain then runs). */
static int chain_rows(const fl_node *pn, const fl_node *an, const fl_node *pc, const float *x, const float *z, float *y) {
    const fl_attrs *a = pn->a, *ca = pc->a;
    const fl_tensor *b = T(pc, ROLE_BIAS), *w;
    uint32_t O = pn->d[0], H = pn->d[1], W = pn->d[2], OH = pn->d[3], OW = pn->d[4], o, oy, ox, i;
    int32_t KH = a->kernel[0], KW = a->kernel[1], mx = pn->op == OP_MAX_POOL;
    int32_t rdil = mx ? a->dil[0] : 1, cdil = mx ? a->dil[1] : 1;
    float buf[CHAIN_ROWS], wk[FL_FAST_TAPS];
    uint32_t K = 0, w0, len;
    int pw = 0;
    if ((uint32_t)KH * W > CHAIN_ROWS) return 0;
    if (pc->op == OP_CONV2D) {
        w = T(pc, ROLE_WEIGHT);
        /* a pointwise conv (1x1, stride 1, no pads): each conv output row is a run of input
         * columns, so the 1x1 column loop (fl_mac_cols) below; other convs need rows wide enough
         * for the row kernels' blocks (else run_conv_chain) */
        pw = w->dims[2] == 1 && w->dims[3] == 1 && ca->strides[0] == 1 && ca->strides[1] == 1 && ca->pads[0] == 0 && ca->pads[1] == 0 && pc->d[1] == H && pc->d[2] == W;
        if (!pw && (w->dims[2] * w->dims[3] > FL_FAST_TAPS || W < FL_FAST_MIN_OW)) return 0;
    } else K = pc->op == OP_TUCKER2_CONV2D ? pc->d[7] : pc->d[6];
    for (o = 0; o < O; o++) {
        float bv = b ? fl_wget(b, o) : 0;
        len = chain_row(pc, o, &w, &w0);
        /* channel o's weights widened once when they fit: the last 1x1's row, or the conv's planes */
        if (len <= FL_FAST_TAPS) fl_wrow(w, w0, len, wk);
        for (oy = 0; oy < OH; oy++) {
            int32_t ky, kx, y0 = (int32_t)oy * a->strides[0] - a->pads[0];
            int32_t y1 = y0 + KH < (int32_t)H + a->pads[2] ? y0 + KH : (int32_t)H + a->pads[2];
            for (ky = 0; ky < KH; ky++) {
                int32_t iy = y0 + ky * rdil;
                float *row = buf + (uint32_t)ky * W;
                if (iy < 0 || iy >= (int32_t)H) continue;
                for (i = 0; i < W; i++) row[i] = 0;
                if (pw) {
                    /* row iy of channel o: sum over c of w[o, c] x[g * Cg + c, iy, :], c in order */
                    uint32_t C = pc->d[0], HWc = pc->d[1] * pc->d[2], G = (uint32_t)ca->group, Cg = C / G, g = o / (pc->d[3] / G), c, k;
                    const float *xr = x + g * Cg * HWc + (uint32_t)iy * W;
                    for (c = 0; c < Cg; c += FL_FAST_TAPS) {
                        k = Cg - c < FL_FAST_TAPS ? Cg - c : FL_FAST_TAPS;
                        if (len > FL_FAST_TAPS) fl_wrow(w, w0 + c, k, wk);
                        fl_mac_cols(len > FL_FAST_TAPS ? wk : wk + c, k, xr + c * HWc, HWc, W, row);
                    }
                } else if (pc->op == OP_CONV2D) {
                    uint32_t C = pc->d[0], Hc = pc->d[1], Wc = pc->d[2], G = (uint32_t)ca->group, Cg = C / G, g = o / (pc->d[3] / G);
                    uint32_t kk = w->dims[2] * w->dims[3], c;
                    for (c = 0; c < Cg; c++) {
                        const float *wp = wk + c * kk;
                        if (len > FL_FAST_TAPS) { fl_wrow(w, w0 + c * kk, kk, wk); wp = wk; }
                        fl_conv_rows(x + (g * Cg + c) * Hc * Wc, Hc, Wc, wp, w->dims[2], w->dims[3], ca->strides, ca->pads, ca->dil, (uint32_t)iy, (uint32_t)iy + 1u, W, row);
                    }
                } else if (K <= FL_FAST_TAPS) fl_mac_cols(wk, K, z + (uint32_t)iy * W, H * W, W, row);
                else {
                    uint32_t k0, k;
                    for (k0 = 0; k0 < K; k0 += FL_FAST_TAPS) {
                        k = K - k0 < FL_FAST_TAPS ? K - k0 : FL_FAST_TAPS;
                        fl_wrow(w, w0 + k0, k, wk);
                        fl_mac_cols(wk, k, z + k0 * H * W + (uint32_t)iy * W, H * W, W, row);
                    }
                }
                /* the bias, then the activation (relu inline: the common case) */
                if (!an) { if (b) for (i = 0; i < W; i++) row[i] += bv; }
                else if (an->op == OP_RELU) for (i = 0; i < W; i++) { float v = b ? row[i] + bv : row[i]; row[i] = v > 0 ? v : 0; }
                else for (i = 0; i < W; i++) row[i] = fl_act_apply(an, b ? row[i] + bv : row[i]);
            }
            for (ox = 0; ox < OW; ox++) {
                int32_t x0 = (int32_t)ox * a->strides[1] - a->pads[1], cnt = 0;
                int32_t x1 = x0 + KW < (int32_t)W + a->pads[3] ? x0 + KW : (int32_t)W + a->pads[3];
                float r = -INFINITY, sum = 0;
                if (y0 >= 0 && y0 + (KH - 1) * rdil < (int32_t)H && x0 >= 0 && x0 + (KW - 1) * cdil < (int32_t)W) {
                    /* the whole window inside: no checks, the same positions in the same order */
                    for (ky = 0; ky < KH; ky++) {
                        const float *v = buf + (uint32_t)ky * W + (uint32_t)x0;
                        for (kx = 0; kx < KW; kx++, v += cdil) {
                            if (mx) { if (*v > r) r = *v; }
                            else sum += *v;
                        }
                    }
                    cnt = KH * KW;
                } else
                /* the in-range window positions, row by row as the pool kernel visits them */
                for (ky = 0; ky < KH; ky++) {
                    int32_t iy = y0 + ky * rdil;
                    const float *row = buf + (uint32_t)ky * W;
                    if (iy < 0 || iy >= (int32_t)H || (!mx && iy >= y1)) continue;
                    for (kx = 0; kx < KW; kx++) {
                        int32_t ix = x0 + kx * cdil;
                        float v;
                        if (ix < 0 || ix >= (int32_t)W || (!mx && ix >= x1)) continue;
                        v = row[ix];
                        if (mx) { if (v > r) r = v; }
                        else sum += v;
                        cnt++;
                    }
                }
                if (!mx) {
                    int32_t dv = a->count_include_pad ? (y1 - y0) * (x1 - x0) : cnt;
                    r = dv > 0 ? sum / (float)dv : 0;
                }
                y[(o * OH + oy) * OW + ox] = r;
            }
        }
    }
    return 1;
}
#endif

static void run_conv_chain(const fl_node *pn, const fl_ctx *cx) {
    const fl_node *pc = &fl_m.nodes[pn->span_lo];
    const fl_node *an = pn->span_lo + 1u < (uint32_t)(pn - fl_m.nodes) ? pc + 1 : NULL;
    const fl_attrs *a = pn->a;
    const float *x = fl_vp(pc->in[0], cx);
    const float *z = pc->op == OP_CONV2D ? NULL : chain_stages(pc, x);
    float *y = fl_vp(pn->out, cx);
    uint32_t O = pn->d[0], H = pn->d[1], W = pn->d[2], OH = pn->d[3], OW = pn->d[4], o, oy, ox;
    int32_t KH = a->kernel[0], KW = a->kernel[1];
    int32_t py[CHAIN_ACC], px[CHAIN_ACC];
    float acc[CHAIN_ACC], wcache[FL_CHAIN_WCACHE];
#if FL_FAST_KERNELS
    if (chain_rows(pn, an, pc, x, z, y)) return;
#endif
    for (o = 0; o < O; o++) {
        const fl_tensor *w;
        uint32_t w0, len = chain_row(pc, o, &w, &w0), i;
        const float *wc = NULL;
        if (len <= FL_CHAIN_WCACHE) {
            for (i = 0; i < len; i++) wcache[i] = fl_wget(w, w0 + i);
            wc = wcache;
        }
        if ((uint32_t)KH * (uint32_t)KW <= CHAIN_ACC) {
            /* whole windows, as many as fit a block, per chain_conv_at call */
            chain_block b;
            b.m = b.nw = 0;
            for (oy = 0; oy < OH; oy++)
                for (ox = 0; ox < OW; ox++) {
                    int32_t ky, kx, y0 = (int32_t)oy * a->strides[0] - a->pads[0], x0 = (int32_t)ox * a->strides[1] - a->pads[1];
                    int32_t y1 = y0 + KH < (int32_t)H + a->pads[2] ? y0 + KH : (int32_t)H + a->pads[2];
                    int32_t x1 = x0 + KW < (int32_t)W + a->pads[3] ? x0 + KW : (int32_t)W + a->pads[3];
                    uint32_t c = 0;
                    if (b.m + (uint32_t)(KH * KW) > CHAIN_ACC || b.nw == CHAIN_ACC) chain_flush(pn, an, pc, x, z, o, wc, &b, y);
                    /* the in-range window positions, row by row as the pool kernel visits them */
                    for (ky = 0; ky < KH; ky++)
                        for (kx = 0; kx < KW; kx++) {
                            int32_t iy = pn->op == OP_MAX_POOL ? y0 + ky * a->dil[0] : y0 + ky;
                            int32_t ix = pn->op == OP_MAX_POOL ? x0 + kx * a->dil[1] : x0 + kx;
                            if (iy >= 0 && iy < (int32_t)H && ix >= 0 && ix < (int32_t)W && (pn->op == OP_MAX_POOL || (iy < y1 && ix < x1))) {
                                b.py[b.m + c] = iy; b.px[b.m + c] = ix; c++;
                            }
                        }
                    b.wst[b.nw] = b.m; b.wn[b.nw] = c; b.wout[b.nw] = (o * OH + oy) * OW + ox;
                    b.wdiv[b.nw] = a->count_include_pad ? (y1 - y0) * (x1 - x0) : (int32_t)c;
                    b.nw++;
                    b.m += c;
                }
            chain_flush(pn, an, pc, x, z, o, wc, &b, y);
            continue;
        }
        for (oy = 0; oy < OH; oy++)
            for (ox = 0; ox < OW; ox++) {
                /* the in-range window positions, row by row as the pool kernel visits them */
                int32_t ky = 0, kx = 0, y0, x0, y1 = 0, x1 = 0, cnt;
                uint32_t m, j;
                int done = 0;
                float r = pn->op == OP_MAX_POOL ? -INFINITY : 0, s = 0;
                if (pn->op == OP_MAX_POOL) { y0 = (int32_t)oy * a->strides[0] - a->pads[0]; x0 = (int32_t)ox * a->strides[1] - a->pads[1]; }
                else {
                    y0 = (int32_t)oy * a->strides[0] - a->pads[0]; x0 = (int32_t)ox * a->strides[1] - a->pads[1];
                    y1 = y0 + KH < (int32_t)H + a->pads[2] ? y0 + KH : (int32_t)H + a->pads[2];
                    x1 = x0 + KW < (int32_t)W + a->pads[3] ? x0 + KW : (int32_t)W + a->pads[3];
                }
                cnt = 0;
                while (!done) {
                    m = 0;
                    while (m < CHAIN_ACC && !done) {
                        int32_t iy, ix;
                        if (pn->op == OP_MAX_POOL) { iy = y0 + ky * a->dil[0]; ix = x0 + kx * a->dil[1]; }
                        else { iy = y0 + ky; ix = x0 + kx; }
                        if (iy >= 0 && iy < (int32_t)H && ix >= 0 && ix < (int32_t)W && (pn->op == OP_MAX_POOL || (iy < y1 && ix < x1))) {
                            py[m] = iy; px[m] = ix; m++;
                        }
                        if (++kx == KW) { kx = 0; if (++ky == KH) done = 1; }
                    }
                    if (!m) continue;
                    chain_conv_at(pc, x, z, o, wc, py, px, m, acc);
                    for (j = 0; j < m; j++) {
                        float v = fl_act_apply(an, acc[j]);
                        if (pn->op == OP_MAX_POOL) { if (v > r) r = v; }
                        else s += v;
                    }
                    cnt += (int32_t)m;
                }
                if (pn->op == OP_AVG_POOL) {
                    if (a->count_include_pad) cnt = (y1 - y0) * (x1 - x0);
                    r = cnt > 0 ? s / (float)cnt : 0;
                }
                y[(o * OH + oy) * OW + ox] = r;
            }
    }
}

/* ---- fused dense | svd_dense -> [activation] -> dense ----------------------------------------- */
#define CHAIN_SC 16 /* consumer scales per output row kept on the stack (more: read per weight) */

/* Consumer c (dense) of the chain nodes[c->span_lo ..], row by row: each hidden unit of the
 * producer, h_j = act(row_j . x + b_j) (svd_dense: row_j of u times t = v x, kept in the
 * producer's scratch), is formed and at once added into every output, y[o] += W2[o, j] h_j; the
 * hidden vector is never stored. Each sum takes its terms in the unfused kernels' order with the
 * same products (wdot: 0 + w0 h0 + w1 h1 + ..., then the bias), so the outputs equal theirs. */
static void run_dense_chain(const fl_node *c, const fl_ctx *cx) {
    const fl_node *p = &fl_m.nodes[c->span_lo];
    const fl_node *an = c->span_lo + 1u < (uint32_t)(c - fl_m.nodes) ? p + 1 : NULL;
    const fl_tensor *w2 = T(c, ROLE_WEIGHT), *b2 = T(c, ROLE_BIAS), *b1 = T(p, ROLE_BIAS);
    const fl_tensor *w1 = p->op == OP_DENSE ? T(p, ROLE_WEIGHT) : T(p, ROLE_U), *v = T(p, ROLE_V);
    const float *x = fl_vp(p->in[0], cx);
    const uint8_t *mp = fl_m.mp;
    int u8 = cx->u8 && fl_is_ext(p->in[0]);
    float *t = (float *)(void *)(fl_arena + p->scratch_off);
    float *y = fl_vp(c->out, cx);
    uint32_t rows = c->d[0], H = c->d[1], outF = c->d[2], inF = p->d[1];
    uint32_t K = p->op == OP_DENSE ? inF : p->d[2]; /* producer row length: in, or the rank */
    uint32_t r, j, o;
    float sc[CHAIN_SC];
    int q8 = w2->dtype == DT_I8, cached = q8 && (w2->axis == 0xFF || (w2->axis == 0 && outF <= CHAIN_SC));
    if (cached) for (o = 0; o < outF && o < CHAIN_SC; o++) sc[o] = fl_scale(w2, w2->axis == 0xFF ? 0u : o);
    for (r = 0; r < rows; r++) {
        const float *xr = x + r * inF;
        const uint8_t *ur = u8 ? cx->u8 + r * inF : NULL;
        float *tr = t + r * K, *yr = y + r * outF;
        if (p->op == OP_SVD_DENSE)
            for (o = 0; o < K; o++) tr[o] = ur ? fl_wdot_u8(v, o * inF, ur, inF, cx->div) : fl_wdot(v, o * inF, xr, inF);
        for (o = 0; o < outF; o++) yr[o] = 0;
        for (j = 0; j < H; j++) {
            float h = p->op == OP_SVD_DENSE ? fl_wdot(w1, j * K, tr, K) : ur ? fl_wdot_u8(w1, j * inF, ur, inF, cx->div) : fl_wdot(w1, j * inF, xr, inF);
            if (b1) h += fl_wget(b1, j);
            h = fl_act_apply(an, h);
            for (o = 0; o < outF; o++) {
                uint32_t i = o * H + j;
                float w;
                if (q8) {
                    int8_t q = mp ? (int8_t)mp[w2->data + i] : (int8_t)fl_model_byte(w2->data + i);
                    w = (float)q * (cached ? sc[w2->axis == 0xFF ? 0u : o] : fl_scale(w2, w2->axis == 0 ? o : j));
                } else w = fl_wget(w2, i);
                yr[o] += w * h;
            }
        }
    }
    fl_add_bias(y, rows, outF, b2);
}

void fl_chain_eval(const fl_node *n, const fl_ctx *cx) {
    if (n->op == OP_MAX_POOL || n->op == OP_AVG_POOL) run_conv_chain(n, cx);
    else if (n->op == OP_DENSE) run_dense_chain(n, cx);
}
