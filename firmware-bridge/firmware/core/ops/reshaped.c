/* ops/reshaped.c: the reshaped tensorial kinds rcp / rtk / rtt / rtr, dense and conv2d
 * (runtime/layers/reshapedNet.ts has the layouts). Output channel t at a time: its kernel row
 * W[t, :] (S*kh*kw floats) is formed in scratch from the factors, then applied (a dot product per
 * input row, or a direct convolution with group 1). Per input-channel index s the method's sum
 * runs once over the rank indices into a small vector, then over the kh*kw taps:
 *   rcp  v[r] = prod_m F_m[r, t_m, s_m];           W[t, s, k] = sum_r v[r] F_0[r, k]
 *   rtk  g_m[r] = F_m[r, t_m, s_m];  v[r0] = sum core[r0, r1..rM] prod g_m[r_m];  W = sum_r0 v F_0
 *   rtt  v = F_1[:, t_1, s_1] F_2[:, :, t_2, s_2] .. F_M[:, :, t_M, s_M];  W = sum_a v[a] F_0[a, k]
 *   rtr  per r0: v = F_1[r0, :, ..] .. F_M[:, :, ..];  W = sum_r0 sum_a v[a] F_0[a, r0, k]
 * Scratch (floats): S*kh*kw (the row) + 2 * (the sum of the stored ranks) (two rank vectors). */
#include "op.h"

enum { M_RCP, M_RTK, M_RTT, M_RTR };

typedef struct {
    uint8_t method, conv, M;
    uint32_t t[FL_MAX_MODES], s[FL_MAX_MODES];
    uint32_t r[FL_MAX_MODES + 1];  /* rcp r[0]; rtk r[0..M]; rtt r[1..M]; rtr r[0..M] */
    uint32_t T, S, K, KH, KW, rsum, rows, H, W, OH, OW;
} fl_rtn;

static int rtn_modes(const fl_node *n, const char *key, uint32_t *out, uint8_t *len) {
    int32_t v[FL_MAX_MODES];
    uint8_t i;
    int r = fl_attr_ints(n, key, v, FL_MAX_MODES, len);
    if (r < 0) return -1;
    if (r == 0 || *len < 1) return fl_bad("t_modes and s_modes are required");
    for (i = 0; i < *len; i++) {
        if (v[i] < 1) return fl_bad("a mode below 1");
        out[i] = (uint32_t)v[i];
    }
    return 0;
}

/* factor m's expected shape from the ranks (rank-major, then T_m, S_m) */
static int rtn_check(const fl_node *n, fl_rtn *p) {
    uint32_t m, M = p->M, dims[FL_MAX_MODES + 1];
    fl_tensor *f;
    for (m = 1; m <= M; m++) {
        uint8_t k = 0;
        CHECK(fl_need_role(n, ROLE_IDX + (int)m, &f));
        if (p->method == M_RCP) dims[k++] = p->r[0];
        else if (p->method == M_RTK) dims[k++] = p->r[m];
        else if (p->method == M_RTT && m == 1) dims[k++] = p->r[1];
        else { dims[k++] = p->r[m - 1]; dims[k++] = p->r[m]; }
        dims[k++] = p->t[m - 1]; dims[k++] = p->s[m - 1];
        if (!fl_shape_is(f, k, dims)) return fl_bad("a factor's shape does not match the ranks and modes");
    }
    return 0;
}

/* reads the ranks off factor.0 .. factor.M (and core), then checks every shape */
static int rtn_ranks(const fl_node *n, fl_rtn *p) {
    fl_tensor *f0, *f;
    uint32_t m, M = p->M, z;
    CHECK(fl_need_role(n, ROLE_IDX, &f0));
    z = p->method == M_RTR ? 4u : 3u;
    if (f0->rank != z) return fl_bad("factor.0 has the wrong rank");
    p->KH = f0->dims[z - 2]; p->KW = f0->dims[z - 1];
    memset(p->r, 0, sizeof p->r);
    if (p->method == M_RCP) p->r[0] = f0->dims[0];
    else if (p->method == M_RTK) {
        fl_tensor *core;
        CHECK(fl_need_role(n, ROLE_CORE, &core));
        if (core->rank != M + 1) return fl_bad("core must have M + 1 axes");
        for (m = 0; m <= M; m++) p->r[m] = core->dims[m];
        if (f0->dims[0] != p->r[0]) return fl_bad("factor.0 does not match the core");
    } else {
        for (m = 1; m <= M; m++) {
            CHECK(fl_need_role(n, ROLE_IDX + (int)m, &f));
            if (f->rank < 3) return fl_bad("a factor has too few axes");
            p->r[m] = (p->method == M_RTT && m == 1) ? f->dims[0] : f->dims[1];
        }
        if (p->method == M_RTR) {
            p->r[0] = f0->dims[1];
            if (f0->dims[0] != p->r[M]) return fl_bad("factor.0 does not close the ring");
        } else if (f0->dims[0] != p->r[M]) return fl_bad("factor.0 does not end the chain");
    }
    p->rsum = 0;
    for (m = 0; m <= M; m++) {
        if (p->method == M_RCP && m > 0) break;
        if (p->method == M_RTT && m == 0) continue;
        if (p->r[m] < 1 || p->r[m] > 0xFFFFu) return fl_bad("a rank out of range");
        p->rsum += p->r[m];
    }
    return rtn_check(n, p);
}

int fl_reshaped_prepare(fl_node *n) {
    fl_attrs *a = n->a;
    fl_rtn *p;
    uint8_t lt = 0, ls = 0;
    uint32_t out[4], m;
    uint64_t need;
    fl_rtn q;
    memset(&q, 0, sizeof q);
    q.method = (uint8_t)((n->op - OP_RCP_DENSE) / 2);
    q.conv = (uint8_t)((n->op - OP_RCP_DENSE) % 2);
    CHECK(fl_one_input(n));
    CHECK(rtn_modes(n, "t_modes", q.t, &lt));
    CHECK(rtn_modes(n, "s_modes", q.s, &ls));
    if (lt != ls) return fl_bad("t_modes and s_modes must have as many modes");
    q.M = lt;
    CHECK(fl_only_roles(n, 1u << ROLE_BIAS | (q.method == M_RTK ? 1u << ROLE_CORE : 0u), (uint32_t)q.M + 1u));
    CHECK(rtn_ranks(n, &q));
    q.T = fl_prod(q.t, 0, q.M);
    q.S = fl_prod(q.s, 0, q.M);
    q.K = q.KH * q.KW;
    if ((uint64_t)q.T * 4u > FL_ARENA_BYTES || (uint64_t)q.S * q.K * 4u > FL_ARENA_BYTES) return fl_fail("TOO_LARGE", "modes larger than the arena");
    CHECK(fl_bias_ok(n, q.T));
    if (q.conv) {
        CHECK(fl_conv_attrs_ok(a));
        if (a->group != 1) return fl_bad("a grouped conv cannot be a reshaped tensor network");
        if (q.KH > FL_ATTR_MAX || q.KW > FL_ATTR_MAX) return fl_bad("kernel too large");
        CHECK(fl_nchw(n, q.S, &q.H, &q.W));
        CHECK(fl_conv_out((int32_t)q.H, (int32_t)q.KH, a->strides[0], a->pads[0], a->pads[2], a->dil[0], &q.OH));
        CHECK(fl_conv_out((int32_t)q.W, (int32_t)q.KW, a->strides[1], a->pads[1], a->pads[3], a->dil[1], &q.OW));
        out[0] = 1; out[1] = q.T; out[2] = q.OH; out[3] = q.OW;
        CHECK(fl_set_out(n, 4, out));
        q.rows = 1;
    } else {
        if (q.K != 1) return fl_bad("a dense kind has factor.0 ending in [1, 1]");
        CHECK(fl_dense_shape(n, q.S, q.T, &q.rows));
    }
    {
        /* per row t and channel s: the rank sum; then the taps; then applying the row */
        double per = q.method == M_RCP ? (double)q.r[0] * (q.M + q.K)
            : q.method == M_RTK ? (double)fl_prod(q.r, 0, q.M + 1) * (q.M + 1) + (double)q.r[0] * q.K
            : 0;
        if (q.method == M_RTT || q.method == M_RTR) {
            double c = 0;
            for (m = 2; m <= q.M; m++) c += (double)q.r[m - 1] * q.r[m];
            per = (q.method == M_RTR ? (double)q.r[0] : 1.0) * (c + (double)q.r[q.M] * q.K + q.r[1]);
        }
        CHECK(fl_work((double)q.T * q.S * per + (double)q.T * q.S * q.K * (q.conv ? (double)q.OH * q.OW : (double)q.rows)));
    }
    need = (uint64_t)q.S * q.K + 2u * (uint64_t)q.rsum;
    if (need * 4u > FL_ARENA_BYTES) return fl_fail("TOO_LARGE", "scratch larger than the arena");
    p = (fl_rtn *)fl_op_params(n, sizeof q);
    if (!p) return -1;
    memcpy(p, &q, sizeof q);
    n->scratch_need = (uint32_t)need * 4u;
    return 0;
}

/* W[t, :] into row; va and vb hold rsum floats each */
static void rtn_row(const fl_node *n, const fl_rtn *p, uint32_t t, float *row, float *va, float *vb) {
    uint32_t td[FL_MAX_MODES], sd[FL_MAX_MODES], si, k, m, a, b, M = p->M, K = p->K;
    const fl_tensor *f0 = T(n, ROLE_IDX);
    uint32_t rest = t;
    for (m = M; m-- > 0;) { td[m] = rest % p->t[m]; rest /= p->t[m]; sd[m] = 0; }
#define FM(mm, ridx) fl_wget(T(n, ROLE_IDX + (int)(mm)), ((ridx) * p->t[(mm) - 1] + td[(mm) - 1]) * p->s[(mm) - 1] + sd[(mm) - 1])
    for (si = 0; si < p->S; si++) {
        float *w = row + si * K;
        for (k = 0; k < K; k++) w[k] = 0;
        if (p->method == M_RCP) {
            uint32_t R = p->r[0];
            for (a = 0; a < R; a++) {
                float v = 1;
                for (m = 1; m <= M; m++) v *= FM(m, a);
                va[a] = v;
            }
            for (a = 0; a < R; a++) for (k = 0; k < K; k++) w[k] += va[a] * fl_wget(f0, a * K + k);
        } else if (p->method == M_RTK) {
            const fl_tensor *core = T(n, ROLE_CORE);
            uint32_t off[FL_MAX_MODES + 1], idx[FL_MAX_MODES + 1], c, inner = fl_prod(p->r, 1, M + 1);
            off[1] = 0;
            for (m = 1; m <= M; m++) {
                for (a = 0; a < p->r[m]; a++) va[off[m] + a] = FM(m, a);
                if (m < M) off[m + 1] = off[m] + p->r[m];
            }
            for (a = 0; a < p->r[0]; a++) {
                float acc = 0;
                for (m = 1; m <= M; m++) idx[m] = 0;
                for (c = 0; c < inner; c++) {
                    float v = fl_wget(core, a * inner + c);
                    for (m = 1; m <= M; m++) v *= va[off[m] + idx[m]];
                    acc += v;
                    for (m = M; m >= 1; m--) { if (++idx[m] < p->r[m]) break; idx[m] = 0; }
                }
                vb[a] = acc;
            }
            for (a = 0; a < p->r[0]; a++) for (k = 0; k < K; k++) w[k] += vb[a] * fl_wget(f0, a * K + k);
        } else {
            uint32_t ring = p->method == M_RTR, R0 = ring ? p->r[0] : 1u, r0;
            for (r0 = 0; r0 < R0; r0++) {
                float *x = va, *y = vb, *sw;
                for (b = 0; b < p->r[1]; b++) x[b] = FM(1, ring ? r0 * p->r[1] + b : b);
                for (m = 2; m <= M; m++) {
                    for (b = 0; b < p->r[m]; b++) {
                        float acc = 0;
                        for (a = 0; a < p->r[m - 1]; a++) acc += x[a] * FM(m, a * p->r[m] + b);
                        y[b] = acc;
                    }
                    sw = x; x = y; y = sw;
                }
                for (a = 0; a < p->r[M]; a++)
                    for (k = 0; k < K; k++) w[k] += x[a] * fl_wget(f0, (ring ? a * R0 + r0 : a) * K + k);
            }
        }
        for (m = M; m-- > 0;) { if (++sd[m] < p->s[m]) break; sd[m] = 0; }
    }
#undef FM
}

void fl_reshaped_eval(const fl_node *n, const fl_ctx *cx) {
    const fl_rtn *p = (const fl_rtn *)fl_params(n);
    const fl_attrs *a = n->a;
    float *y = fl_vp(n->out, cx);
    const float *x = fl_x(n, cx);
    float *row = fl_scratch(n), *va = row + p->S * p->K, *vb = va + p->rsum;
    const fl_tensor *bias = T(n, ROLE_BIAS);
    uint32_t t, i, SK = p->S * p->K;
    for (t = 0; t < p->T; t++) {
        float bv = bias ? fl_wget(bias, t) : 0.0f;
        rtn_row(n, p, t, row, va, vb);
        if (!p->conv) {
            for (i = 0; i < p->rows; i++) {
                const float *xr = x + i * p->S;
                float acc = 0;
                uint32_t j;
                for (j = 0; j < SK; j++) acc += row[j] * xr[j];
                y[i * p->T + t] = acc + bv;
            }
        } else {
            uint32_t oy, ox, s, ky, kx;
            float *yt = y + t * p->OH * p->OW;
            for (oy = 0; oy < p->OH; oy++)
                for (ox = 0; ox < p->OW; ox++) {
                    float acc = 0;
                    for (s = 0; s < p->S; s++)
                        for (ky = 0; ky < p->KH; ky++) {
                            int32_t iy = (int32_t)(oy * (uint32_t)a->strides[0]) - a->pads[0] + (int32_t)(ky * (uint32_t)a->dil[0]);
                            if (iy < 0 || iy >= (int32_t)p->H) continue;
                            for (kx = 0; kx < p->KW; kx++) {
                                int32_t ix = (int32_t)(ox * (uint32_t)a->strides[1]) - a->pads[1] + (int32_t)(kx * (uint32_t)a->dil[1]);
                                if (ix < 0 || ix >= (int32_t)p->W) continue;
                                acc += row[(s * p->KH + ky) * p->KW + kx] * x[(s * p->H + (uint32_t)iy) * p->W + (uint32_t)ix];
                            }
                        }
                    yt[oy * p->OW + ox] = acc + bv;
                }
        }
    }
}
