/* ops/adtn.c: adtn_dense (runtime/layers/adtnDense.ts), y = x W^T + b where W [out, in] is the
 * first out*in entries, row-major, of the state of a circuit on Q indices of dimension 2 (site 0
 * the most significant bit of the flat index): Q start vectors start [Q, 2], then the gates [G, D, D]
 * (D = 2^arity) layer by layer. W itself (2^Q floats, 3 MiB for FC-2's hidden layer) never exists.
 *
 * At load the circuit becomes, exactly, an MPS: core k is A_k [r_k, 2, r_(k+1)], r_0 = r_Q = 1. The
 * start is the MPS of bond 1; a gate on sites (p, p + 1) makes the bond between them
 *   n = min(2 r_p, 2 r_(p+2), 4 r_(p+1))
 * (runtime/layers/adtnDense.ts adtnBonds has the same rule): the two-site tensor
 * Th[l, g1, g2, r] = sum G[g1 g2, h1 h2] A_p[l, h1, j] A_(p+1)[j, h2, r] is kept whole in core p + 1
 * behind an identity in core p (n = 2 r_p), or whole in core p before an identity (n = 2 r_(p+2)),
 * or split by the gate's operator-Schmidt form G = sum_(a, h1) E[a, h1] (x) G[a ., h1 .] (n = 4 r_(p+1)).
 * No SVD: every step is exact. A gate on one index is applied to its core.
 * Then the low b sites are summed out once into a table R[s] = A_(Q-b)[., s_0, .] .. A_(Q-1)[., s_(b-1), .]
 * (2^b vectors of r_(Q-b) floats; b as large as FL_ADTN_TABLE_BYTES allows, at most 12).
 * Per inference the blocks of 2^b weights (flat index k = pre * 2^b + s) are walked in order: the left
 * vector L = A_0[.] .. A_(P-1)[.] of the block's top P = Q - b bits is kept on a stack (scratch: one
 * vector per cut, the sum of the bonds) and only the levels below the highest changed bit are
 * recomputed. Then either (per weight) W[k] = L . R[s] times x for every weight, r_(Q-b) + 1
 * multiply-adds each; or (by class, when 2^b <= in and it costs less) the input is first summed
 * into Z: a block starts at column off = k mod in, a multiple of g = gcd(in, 2^b), so there are
 * in / g classes, and Zlo[c] = sum over the block's columns in row o of R[s] x[off + s], Zhi[c]
 * over those that run into row o + 1; each block then costs two dot products of r floats:
 * y[o] += L . Zlo[c], y[o + 1] += L . Zhi[c]. b and the path are chosen by the same integer costs as
 * runtime/layers/adtnDense.ts adtnMcuPlan (the mcu plan's scratch must match: the stack, then Z).
 * Tables: the cores at their largest size, a work area, the R table (all in fl_op_params). */
#include "op.h"

/* the R table's budget: fixed, not per port, so that the mcu plan (adtnMcuPlan) knows b */
#define FL_ADTN_TABLE_BYTES 16384u
#define FL_ADTN_MAX_Q 26
#define FL_ADTN_MAX_B 12

typedef struct {
    uint32_t Q, out, in, rows, b, P, arity;
    uint32_t r[FL_ADTN_MAX_Q + 1];  /* bonds at the cuts, after all gates */
    uint32_t off[FL_ADTN_MAX_Q];    /* core k's floats in data[] */
    uint32_t tmp, tab;              /* the work area and the R table in data[] */
    uint32_t z, g, ncls, zoff;      /* by class: gcd(in, 2^b), in / g classes, Z's floats in scratch */
} fl_adtn;

/* multiply-adds of the stack over all blocks of 2^b: level lev changes every 2^(P-1-lev) blocks */
static uint64_t adtn_stack_cost(const uint32_t *r, uint32_t Q, uint32_t b, uint32_t total) {
    uint32_t P = Q - b, lev;
    uint64_t blocks = ((uint64_t)total + (1u << b) - 1u) >> b, c = 0;
    for (lev = 0; lev < P; lev++) {
        uint32_t sh = P - 1u - lev;
        c += (uint64_t)r[lev] * r[lev + 1] * ((blocks + ((uint64_t)1 << sh) - 1u) >> sh);
    }
    return c;
}

static float *adtn_data(const fl_adtn *p) { return (float *)(void *)((uint8_t *)(void *)(fl_adtn *)p + ((sizeof(fl_adtn) + 7u) & ~7u)); }

/* the gates of layer m start at index m mod arity (brickwall) or 0 (fixed), arity apart */
static uint32_t adtn_first(uint8_t pairing, uint32_t m, uint32_t arity) { return pairing == 0 ? m % arity : 0u; }

/* t[] = g (D x D, row-major: new = G . old) read widened from the gates tensor */
static void adtn_gate(const fl_tensor *gates, uint32_t gi, uint32_t D, float *g) {
    uint32_t i;
    for (i = 0; i < D * D; i++) g[i] = fl_wget(gates, gi * D * D + i);
}

/* one gate on sites (p, p + 1); r holds the bonds, updated */
static void adtn_apply2(float *d, uint32_t *r, const uint32_t *off, uint32_t p, const float *g, float *tmp) {
    uint32_t rl = r[p], m = r[p + 1], rr = r[p + 2], l, j, h1, h2, g1, g2, x, a, n;
    float *A = d + off[p], *B = d + off[p + 1];
    n = 2u * rl;
    if (2u * rr < n) n = 2u * rr;
    if (4u * m < n) n = 4u * m;
    if (n == 2u * rl || n == 2u * rr) {
        /* tmp = Th[l, g1, g2, x] (rl * 4 * rr floats), through t[h1, h2, x] at its end */
        float *t = tmp + rl * 4u * rr;
        for (l = 0; l < rl; l++) {
            for (h1 = 0; h1 < 2; h1++)
                for (h2 = 0; h2 < 2; h2++)
                    for (x = 0; x < rr; x++) {
                        float s = 0.0f;
                        for (j = 0; j < m; j++) s += A[(l * 2u + h1) * m + j] * B[(j * 2u + h2) * rr + x];
                        t[(h1 * 2u + h2) * rr + x] = s;
                    }
            for (g1 = 0; g1 < 2; g1++)
                for (g2 = 0; g2 < 2; g2++)
                    for (x = 0; x < rr; x++) {
                        float s = 0.0f;
                        for (a = 0; a < 4; a++) s += g[(g1 * 2u + g2) * 4u + a] * t[a * rr + x];
                        tmp[((l * 2u + g1) * 2u + g2) * rr + x] = s;
                    }
        }
        if (n == 2u * rl) {
            /* core p = identity [rl, 2, 2 rl], core p + 1 = Th as [2 rl, 2, rr] */
            memset(A, 0, (size_t)rl * 2u * n * sizeof(float));
            for (l = 0; l < rl; l++)
                for (g1 = 0; g1 < 2; g1++) A[(l * 2u + g1) * n + l * 2u + g1] = 1.0f;
            memcpy(B, tmp, (size_t)rl * 4u * rr * sizeof(float));
        } else {
            /* core p = Th as [rl, 2, 2 rr], core p + 1 = identity [2 rr, 2, rr] */
            memcpy(A, tmp, (size_t)rl * 4u * rr * sizeof(float));
            memset(B, 0, (size_t)n * 2u * rr * sizeof(float));
            for (g2 = 0; g2 < 2; g2++)
                for (x = 0; x < rr; x++) B[((g2 * rr + x) * 2u + g2) * rr + x] = 1.0f;
        }
    } else {
        /* operator-Schmidt: bond (j, a, h1); core p + 1 first (it reads B), then core p (reads A) */
        for (j = 0; j < m; j++)
            for (a = 0; a < 2; a++)
                for (h1 = 0; h1 < 2; h1++)
                    for (g2 = 0; g2 < 2; g2++)
                        for (x = 0; x < rr; x++) {
                            float s = 0.0f;
                            for (h2 = 0; h2 < 2; h2++) s += g[(a * 2u + g2) * 4u + h1 * 2u + h2] * B[(j * 2u + h2) * rr + x];
                            tmp[(((j * 2u + a) * 2u + h1) * 2u + g2) * rr + x] = s;
                        }
        memcpy(B, tmp, (size_t)n * 2u * rr * sizeof(float));
        for (l = 0; l < rl; l++)
            for (g1 = 0; g1 < 2; g1++)
                for (j = 0; j < m; j++)
                    for (a = 0; a < 2; a++)
                        for (h1 = 0; h1 < 2; h1++)
                            tmp[(l * 2u + g1) * n + (j * 2u + a) * 2u + h1] = a == g1 ? A[(l * 2u + h1) * m + j] : 0.0f;
        memcpy(A, tmp, (size_t)rl * 2u * n * sizeof(float));
    }
    r[p + 1] = n;
}

/* one gate on site p */
static void adtn_apply1(float *d, const uint32_t *r, const uint32_t *off, uint32_t p, const float *g, float *tmp) {
    uint32_t l, x, gg, rl = r[p], rr = r[p + 1];
    float *A = d + off[p];
    for (l = 0; l < rl; l++)
        for (gg = 0; gg < 2; gg++)
            for (x = 0; x < rr; x++) tmp[(l * 2u + gg) * rr + x] = g[gg * 2u] * A[l * 2u * rr + x] + g[gg * 2u + 1u] * A[(l * 2u + 1u) * rr + x];
    memcpy(A, tmp, (size_t)rl * 2u * rr * sizeof(float));
}

int fl_adtn_prepare(fl_node *n) {
    static const char *const pairings[] = { "brickwall", "fixed" };
    fl_adtn q, *p;
    fl_tensor *st, *gt;
    int32_t feat[2];
    uint8_t len = 0, pairing = 0;
    double depth = 0, arity = 0;
    uint32_t k, m, i, G = 0, D, dims[3], coreMax[FL_ADTN_MAX_Q], r[FL_ADTN_MAX_Q + 1], tmpF = 0, rmax = 1, sumR = 0, total;
    uint64_t floats, bytes;
    float g[16], *d;
    memset(&q, 0, sizeof q);
    CHECK(fl_one_input(n));
    CHECK(fl_only_roles(n, (uint32_t)1 << ROLE_START | (uint32_t)1 << ROLE_GATES | (uint32_t)1 << ROLE_BIAS, 0));
    CHECK(fl_need_role(n, ROLE_START, &st)); CHECK(fl_need_role(n, ROLE_GATES, &gt));
    if (fl_attr_ints(n, "features", feat, 2, &len) != 1 || len != 2 || feat[0] < 1 || feat[1] < 1) return fl_bad("adtn features [out, in] missing");
    if (fl_attr_num(n, "depth", &depth) != 1 || depth < 1 || depth > 4096) return fl_bad("adtn depth missing or out of range");
    if (fl_attr_num(n, "arity", &arity) != 1 || arity < 1) return fl_bad("adtn arity missing");
    if (arity > 2) return fl_fail("UNSUPPORTED", "adtn_dense: the device runs gates on 1 or 2 indices (arity 1, 2)");
    if (fl_attr_str(n, "pairing", pairings, 2, &pairing) != 1) return fl_bad("adtn pairing missing");
    q.out = (uint32_t)feat[0]; q.in = (uint32_t)feat[1]; q.arity = (uint32_t)arity;
    if ((uint64_t)q.out * q.in > ((uint32_t)1 << FL_ADTN_MAX_Q)) return fl_bad("adtn features: more than 2^26 weights");
    total = q.out * q.in;
    while (((uint32_t)1 << q.Q) < total) q.Q++;
    if (q.Q < q.arity) q.Q = q.arity;
    D = 1u << q.arity;
    for (m = 0; m < (uint32_t)depth; m++)
        for (k = adtn_first(pairing, m, q.arity); k + q.arity <= q.Q; k += q.arity) G++;
    dims[0] = q.Q; dims[1] = 2;
    if (!fl_shape_is(st, 2, dims)) return fl_bad("adtn start must be [Q, 2]");
    dims[0] = G; dims[1] = D; dims[2] = D;
    if (!fl_shape_is(gt, 3, dims)) return fl_bad("adtn gates must be [G, 2^arity, 2^arity] for its depth and pairing");
    CHECK(fl_bias_ok(n, q.out));
    CHECK(fl_dense_shape(n, q.in, q.out, &q.rows));
    /* the bonds as the gates are applied (adtnBonds), the cores' largest sizes, the work area */
    for (k = 0; k <= q.Q; k++) r[k] = 1;
    for (k = 0; k < q.Q; k++) coreMax[k] = 2;
    if (q.arity == 2)
        for (m = 0; m < (uint32_t)depth; m++)
            for (k = adtn_first(pairing, m, 2); k + 2 <= q.Q; k += 2) {
                uint32_t nb = 2u * r[k];
                if (2u * r[k + 2] < nb) nb = 2u * r[k + 2];
                if (4u * r[k + 1] < nb) nb = 4u * r[k + 1];
                if (nb > 4096u) return fl_fail("TOO_LARGE", "adtn_dense: an MPS bond past 4096 (too deep for the device)");
                if ((uint64_t)r[k] * 4u * r[k + 2] + 4u * (uint64_t)r[k + 2] > tmpF) tmpF = r[k] * 4u * r[k + 2] + 4u * r[k + 2];
                r[k + 1] = nb;
                if (r[k] * 2u * nb > coreMax[k]) coreMax[k] = r[k] * 2u * nb;
                if (nb * 2u * r[k + 2] > coreMax[k + 1]) coreMax[k + 1] = nb * 2u * r[k + 2];
            }
    floats = 0;
    for (k = 0; k < q.Q; k++) {
        q.off[k] = (uint32_t)floats;
        floats += coreMax[k];
        if (coreMax[k] > tmpF) tmpF = coreMax[k];
    }
    for (k = 0; k <= q.Q; k++) { q.r[k] = r[k]; sumR += r[k]; if (r[k] > rmax) rmax = r[k]; }
    if (2u * rmax > tmpF) tmpF = 2u * rmax;
    q.tmp = (uint32_t)floats;
    floats += tmpF;
    {
        uint32_t bt, bz;
        uint64_t costW, costZ, blocksZ;
        for (bt = (q.Q - 1u < FL_ADTN_MAX_B ? q.Q - 1u : FL_ADTN_MAX_B); bt > 0; bt--)
            if (((uint64_t)r[q.Q - bt] << bt) * 4u <= FL_ADTN_TABLE_BYTES) break;
        for (bz = bt; bz > 0 && (1u << bz) > q.in; bz--) {}
        for (q.g = 1; q.g < (1u << bz) && q.in % (2u * q.g) == 0; q.g *= 2u) {}
        q.ncls = q.in / q.g;
        blocksZ = ((uint64_t)total + (1u << bz) - 1u) >> bz;
        costW = (uint64_t)total * (r[q.Q - bt] + 1u) + adtn_stack_cost(r, q.Q, bt, total);
        costZ = (uint64_t)q.ncls * (1u << bz) * r[q.Q - bz] + blocksZ * 2u * r[q.Q - bz] + adtn_stack_cost(r, q.Q, bz, total);
        q.z = costZ < costW;
        q.b = q.z ? bz : bt;
        CHECK(fl_work((double)q.rows * (double)(q.z ? costZ : costW)));
    }
    q.P = q.Q - q.b;
    q.tab = (uint32_t)floats;
    floats += (uint64_t)r[q.P] << q.b;
    bytes = ((sizeof(fl_adtn) + 7u) & ~7u) + floats * 4u;
    if (bytes > FL_ARENA_BYTES) return fl_fail("TOO_LARGE", "adtn_dense: its MPS does not fit the arena");
    p = (fl_adtn *)fl_op_params(n, (uint32_t)bytes);
    if (!p) return -1;
    memcpy(p, &q, sizeof q);
    d = adtn_data(p);
    /* the product state, then the gates */
    for (k = 0; k <= q.Q; k++) r[k] = 1;
    for (k = 0; k < q.Q; k++) { d[q.off[k]] = fl_wget(st, 2u * k); d[q.off[k] + 1u] = fl_wget(st, 2u * k + 1u); }
    i = 0;
    for (m = 0; m < (uint32_t)depth; m++)
        for (k = adtn_first(pairing, m, q.arity); k + q.arity <= q.Q; k += q.arity) {
            adtn_gate(gt, i++, D, g);
            if (q.arity == 2) adtn_apply2(d, r, q.off, k, g, d + q.tmp);
            else adtn_apply1(d, r, q.off, k, g, d + q.tmp);
        }
    /* R[s] for the low b sites, right to left, through two vectors in the work area */
    {
        float *va = d + q.tmp, *vb = va + rmax, *R = d + q.tab;
        uint32_t s, x, l, rp = q.r[q.P];
        for (s = 0; s < (1u << q.b); s++) {
            va[0] = 1.0f;
            for (k = q.Q; k-- > q.P;) {
                uint32_t bit = (s >> (q.Q - 1u - k)) & 1u, rl = q.r[k], rr = q.r[k + 1];
                const float *A = d + q.off[k];
                for (l = 0; l < rl; l++) {
                    float acc = 0.0f;
                    for (x = 0; x < rr; x++) acc += A[(l * 2u + bit) * rr + x] * va[x];
                    vb[l] = acc;
                }
                memcpy(va, vb, rl * sizeof(float));
            }
            for (x = 0; x < rp; x++) R[s * rp + x] = va[x];
        }
    }
    p->zoff = sumR;
    if ((uint64_t)sumR + (p->z ? (uint64_t)p->ncls * 2u * q.r[q.P] : 0u) > FL_ARENA_BYTES / 4u) return fl_fail("TOO_LARGE", "adtn_dense: scratch larger than the arena");
    n->scratch_need = (sumR + (p->z ? p->ncls * 2u * q.r[q.P] : 0u)) * 4u;
    return 0;
}

/* the stack's levels from the highest bit of pre that changed (all of them at block 0) */
static void adtn_push(const fl_adtn *p, const float *d, float *stk, const uint32_t *so, uint32_t pre) {
    uint32_t P = p->P, from = 0, lev, c, l;
    if (pre > 0) {
        uint32_t diff = pre ^ (pre - 1u);
        from = P;
        while (diff) { from--; diff >>= 1; }
    }
    for (lev = from; lev < P; lev++) {
        uint32_t bit = (pre >> (P - 1u - lev)) & 1u, rl = p->r[lev], rr = p->r[lev + 1];
        const float *A = d + p->off[lev], *Lin = stk + so[lev];
        float *Lout = stk + so[lev + 1];
        for (c = 0; c < rr; c++) {
            float acc = 0.0f;
            for (l = 0; l < rl; l++) acc += Lin[l] * A[(l * 2u + bit) * rr + c];
            Lout[c] = acc;
        }
    }
}

static float adtn_dot(const float *a, const float *b, uint32_t n) {
    float s = 0.0f;
    uint32_t e;
    for (e = 0; e < n; e++) s += a[e] * b[e];
    return s;
}

void fl_adtn_eval(const fl_node *n, const fl_ctx *cx) {
    const fl_adtn *p = (const fl_adtn *)fl_params(n);
    const float *d = adtn_data(p), *R = d + p->tab;
    float *y = fl_vp(n->out, cx), *stk = fl_scratch(n), *Z = stk + p->zoff;
    const float *x = fl_x(n, cx);
    const uint8_t *u8 = cx->u8 && fl_is_ext(n->in[0]) ? cx->u8 : NULL;
    uint32_t so[FL_ADTN_MAX_Q + 1], lev, row, P = p->P, B = 1u << p->b, rp = p->r[P], total = p->out * p->in;
    uint32_t blocks = ((total - 1u) >> p->b) + 1u, pre, s, o, i, c, e;
    so[0] = 0;
    for (lev = 0; lev < P; lev++) so[lev + 1] = so[lev] + p->r[lev];
    stk[0] = 1.0f;
#define ADTN_X(j) (ur ? (float)ur[j] / cx->div : xr[j])
    for (row = 0; row < p->rows; row++) {
        float *yr = y + row * p->out;
        const float *xr = x ? x + row * p->in : NULL;
        const uint8_t *ur = u8 ? u8 + row * p->in : NULL;
        for (o = 0; o < p->out; o++) yr[o] = 0.0f;
        if (p->z) {
            uint32_t off = 0;
            for (c = 0; c < p->ncls; c++) {
                uint32_t start = c * p->g, split = p->in - start < B ? p->in - start : B;
                float *zl = Z + c * 2u * rp, *zh = zl + rp;
                for (e = 0; e < 2u * rp; e++) zl[e] = 0.0f;
                for (s = 0; s < B; s++) {
                    float xv = s < split ? ADTN_X(start + s) : ADTN_X(s - split), *zz = s < split ? zl : zh;
                    const float *Rs = R + s * rp;
                    for (e = 0; e < rp; e++) zz[e] += Rs[e] * xv;
                }
            }
            o = 0;
            for (pre = 0; pre < blocks; pre++) {
                const float *zl = Z + (off / p->g) * 2u * rp;
                adtn_push(p, d, stk, so, pre);
                yr[o] += adtn_dot(stk + so[P], zl, rp);
                if (off + B > p->in && o + 1u < p->out) yr[o + 1u] += adtn_dot(stk + so[P], zl + rp, rp);
                off += B;
                if (off >= p->in) { off -= p->in; o++; }
            }
            continue;
        }
        o = 0; i = 0;
        for (pre = 0; pre < blocks; pre++) {
            uint32_t end = total - (pre << p->b) < B ? total - (pre << p->b) : B;
            adtn_push(p, d, stk, so, pre);
            for (s = 0; s < end; s++) {
                yr[o] += adtn_dot(stk + so[P], R + s * rp, rp) * ADTN_X(i);
                if (++i == p->in) { i = 0; o++; }
            }
        }
    }
#undef ADTN_X
    fl_add_bias(y, p->rows, p->out, T(n, ROLE_BIAS));
}
