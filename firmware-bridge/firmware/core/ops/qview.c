/* ops/qview.c: the int8-full path's per-channel lists (multiplier, shift, bias) stay in the model
 * store; fl_q_view decodes one block of a stage's channels into the node's scratch while it runs
 * (qparams.c checked every element at prepare). */
#include "op.h"
#include "../model/model.h"
#include "qkern.h"
#if FL_INT8_FULL
#if !FL_Q_STORE_LISTS /* else the port's kernels decode the lists from the store in order */
/* one list element checked at prepare (an integer in int32 range; q_par, qkern.h, reads the common
 * forms inline and calls this for the rest): msgpack int, or a float with
 * an integral value (FORMAT.md 3.1) */
int32_t fl_q_par_int(const uint8_t *p, uint32_t *at) {
    uint8_t b = p[0];
    uint32_t u;
    if (b <= 0x7f) { *at += 1; return b; }
    if (b >= 0xe0) { *at += 1; return (int32_t)b - 256; }
    switch (b) {
    case 0xcc: *at += 2; return p[1];
    case 0xd0: *at += 2; return (int8_t)p[1];
    case 0xcd: *at += 3; return (int32_t)((uint32_t)p[1] << 8 | p[2]);
    case 0xd1: *at += 3; return (int16_t)((uint16_t)(p[1] << 8 | p[2]));
    case 0xce: case 0xd2:
        *at += 5;
        u = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
        return (int32_t)u;
    case 0xcf: case 0xd3: /* in int32 range: the low four bytes */
        *at += 9;
        u = (uint32_t)p[5] << 24 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 8 | p[8];
        return (int32_t)u;
    default: { /* float32 / float64 */
        fl_src s;
        mp_item it;
        double v = 0;
        fl_src_model(&s, *at, fl_rd.hdr_end);
        if (!mp_head(&s, &it)) mp_num(&it, &v);
        *at = s.pos;
        return (int32_t)v;
    }
    }
}

/* Where the next channel's multiplier, shift and bias are in the store, for the stage viewed last:
 * the blocks of a stage come in order, one stage after the other (a chain's bands go through the
 * last stage's blocks again from channel 0), so one cursor serves the model, outside the tables. */
static struct {
    const fl_qst *st;
    uint32_t next_c, mult_cur, shift_cur, bias_cur;
} cur;

void fl_q_view_reset(void) { cur.st = NULL; }

void fl_q_view(const fl_node *n, uint32_t k, uint32_t c0, fl_qstage *v) {
    const fl_qst *st = &fl_qn(n)->st[k];
    uint8_t *p = fl_arena + n->scratch_off + fl_qn(n)->par_off;
    uint32_t blk = st->block ? st->block : st->C, b = st->C - c0 < blk ? st->C - c0 : blk, c;
    int32_t *m = (int32_t *)(void *)p, *bs = NULL;
    int8_t *sh;
    if (cur.st != st || c0 < cur.next_c) { /* back to the lists' starts */
        cur.st = st;
        cur.next_c = 0;
        cur.mult_cur = st->mult_at; cur.shift_cur = st->shift_at; cur.bias_cur = st->bias_at;
    }
    for (; cur.next_c < c0; cur.next_c++) { /* skip to channel c0 (blocks come in order: rarely) */
        (void)fl_q_par_int(fl_m.mp + cur.mult_cur, &cur.mult_cur);
        (void)fl_q_par_int(fl_m.mp + cur.shift_cur, &cur.shift_cur);
        if (st->bias_at) (void)fl_q_par_int(fl_m.mp + cur.bias_cur, &cur.bias_cur);
    }
    p += 4u * b;
    if (st->bias_at) { bs = (int32_t *)(void *)p; p += 4u * b; }
    sh = (int8_t *)p;
    for (c = 0; c < b; c++) {
        m[c] = q_par(fl_m.mp, &cur.mult_cur);
        sh[c] = (int8_t)q_par(fl_m.mp, &cur.shift_cur);
        if (bs) bs[c] = q_par(fl_m.mp, &cur.bias_cur);
    }
    cur.next_c = c0 + b;
    memset(v, 0, sizeof *v);
    v->w = st->w + c0 * st->K;
    v->mult = m;
    v->bias = bs;
    v->shift = sh;
    v->mult_at = st->mult_at; v->shift_at = st->shift_at; v->bias_at = st->bias_at;
    v->C = b;
    v->K = st->K;
    v->in_zp = st->in_zp; v->out_zp = st->out_zp; v->min = st->min; v->max = st->max;
    v->geom = st->geom;
    v->block = blk;
}
#endif /* !FL_Q_STORE_LISTS */
#endif
