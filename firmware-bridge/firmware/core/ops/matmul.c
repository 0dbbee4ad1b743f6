/* ops/matmul.c: matmul of two values (numpy matmul: a [..., M, K] @ b [..., K, N], the leading
 * axes broadcast, a 1-D a taken as [1, K] and a 1-D b as [K, 1] with that axis dropped from the
 * output), as runtime/layers/elementwise.ts computes it: row by row of a, k in order, skipping a
 * zero a[m, k] (the terms of the reference gemmNN, each rounded in f32 here). Either input may be
 * a stored tensor; at least one is an activation. No scratch. */
#include "op.h"

/* an input's rank and dims, as a matrix (1-D promoted); *vec = 1 when it was 1-D */
static void mm_dims(const fl_node *n, int i, uint32_t *r, uint32_t *d, int *vec) {
    uint8_t rank, k;
    const uint32_t *src;
    if (n->in[i] & FL_REF_TENSOR) { const fl_tensor *t = &fl_m.tensors[n->in[i] & 0x7FFF]; rank = t->rank; src = t->dims; }
    else { const fl_value *v = X(n, i); rank = v->rank; src = v->dims; }
    *vec = rank == 1;
    if (rank == 1) {
        if (i == 0) { d[0] = 1; d[1] = src[0]; } else { d[0] = src[0]; d[1] = 1; }
        *r = 2;
        return;
    }
    for (k = 0; k < rank; k++) d[k] = src[k];
    *r = rank;
}

int fl_matmul_prepare(fl_node *n) {
    uint32_t ra, rb, da[FL_MAX_RANK], db[FL_MAX_RANK], out[FL_MAX_RANK], M, K, N, L, i, lead = 1;
    int va, vb;
    uint8_t r = 0;
    if (n->nin != 2) return fl_bad("needs two inputs");
    CHECK(fl_only_roles(n, 0, 0));
    if ((n->in[0] & FL_REF_TENSOR) && (n->in[1] & FL_REF_TENSOR)) return fl_bad("an input must be an activation");
    for (i = 0; i < 2; i++) {
        uint8_t rk = (n->in[i] & FL_REF_TENSOR) ? fl_m.tensors[n->in[i] & 0x7FFF].rank : X(n, (int)i)->rank;
        if (rk < 1) return fl_bad("matmul of a scalar");
    }
    mm_dims(n, 0, &ra, da, &va); mm_dims(n, 1, &rb, db, &vb);
    M = da[ra - 2]; K = da[ra - 1]; N = db[rb - 1];
    if (db[rb - 2] != K) return fl_bad("matmul: inner dims differ");
    L = (ra > rb ? ra : rb) - 2;
    for (i = 0; i < L; i++) {
        uint32_t x = i + ra - 2 >= L ? da[i + ra - 2 - L] : 1, y = i + rb - 2 >= L ? db[i + rb - 2 - L] : 1;
        if (x != y && x != 1 && y != 1) return fl_bad("inputs cannot be broadcast");
        out[r++] = x == 1 ? y : x;
        lead *= out[r - 1];
    }
    if (!va) out[r++] = M;
    if (!vb) out[r++] = N;
    if (r == 0) out[r++] = 1; /* two vectors: a [1] here (the runtime's shape is [] at rank 0) */
    CHECK(fl_work((double)lead * M * N * K));
    n->d[0] = M; n->d[1] = K; n->d[2] = N; n->d[3] = lead; n->d[4] = L;
    return fl_set_out(n, r, out);
}

/* element i of input j: its activation's float, or the stored tensor's entry */
static float mm_get(const fl_tensor *t, const float *p, uint32_t i) { return t ? fl_wget(t, i) : p[i]; }

void fl_matmul_eval(const fl_node *n, const fl_ctx *cx) {
    float *y = fl_vp(n->out, cx);
    uint32_t M = n->d[0], K = n->d[1], N = n->d[2], lead = n->d[3], L = n->d[4];
    uint32_t ra, rb, da[FL_MAX_RANK], db[FL_MAX_RANK], sa[FL_MAX_RANK], sb[FL_MAX_RANK], idx[FL_MAX_RANK], ld[FL_MAX_RANK];
    uint32_t b, m, k, j, ia = 0, ib = 0, acc;
    int va, vb, q;
    const fl_tensor *ta = (n->in[0] & FL_REF_TENSOR) ? &fl_m.tensors[n->in[0] & 0x7FFF] : NULL;
    const fl_tensor *tb = (n->in[1] & FL_REF_TENSOR) ? &fl_m.tensors[n->in[1] & 0x7FFF] : NULL;
    const float *pa = ta ? NULL : fl_vp(n->in[0], cx), *pb = tb ? NULL : fl_vp(n->in[1], cx);
    mm_dims(n, 0, &ra, da, &va); mm_dims(n, 1, &rb, db, &vb);
    /* the leading axes' strides in matrices (0 where an input broadcasts) */
    acc = 1;
    for (q = (int)L - 1; q >= 0; q--) {
        uint32_t x = (uint32_t)q + ra - 2 >= L ? da[(uint32_t)q + ra - 2 - L] : 1, z = (uint32_t)q + rb - 2 >= L ? db[(uint32_t)q + rb - 2 - L] : 1;
        ld[q] = x == 1 ? z : x;
        sa[q] = x == 1 ? 0 : acc; acc *= x;
    }
    acc = 1;
    for (q = (int)L - 1; q >= 0; q--) {
        uint32_t z = (uint32_t)q + rb - 2 >= L ? db[(uint32_t)q + rb - 2 - L] : 1;
        sb[q] = z == 1 ? 0 : acc; acc *= z;
    }
    for (j = 0; j < L; j++) idx[j] = 0;
    for (b = 0; b < lead; b++) {
        float *yb = y + b * M * N;
        uint32_t ao = ia * M * K, bo = ib * K * N;
        for (m = 0; m < M; m++) {
            float *yr = yb + m * N;
            for (j = 0; j < N; j++) yr[j] = 0;
            for (k = 0; k < K; k++) {
                float av = mm_get(ta, pa, ao + m * K + k);
                uint32_t br = bo + k * N;
                if (av == 0) continue;
                if (tb) for (j = 0; j < N; j++) yr[j] += av * fl_wget(tb, br + j);
                else for (j = 0; j < N; j++) yr[j] += av * pb[br + j];
            }
        }
        for (q = (int)L - 1; q >= 0; q--) {
            idx[q]++; ia += sa[q]; ib += sb[q];
            if (idx[q] < ld[q]) break;
            ia -= sa[q] * ld[q]; ib -= sb[q] * ld[q]; idx[q] = 0;
        }
    }
}
