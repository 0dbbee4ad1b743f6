/* ops/op.h: what the op files share: one record per op (its prepare and its eval), the context
 * of one inference, and the helpers of prepare (check.c) and of the kernels (weights.c). */
#ifndef FL_OP_H
#define FL_OP_H
#include <string.h>
#include "../fl.h"
#include "../ops.h"

/* One inference: the graph input as f32 (x), or u8 pixels read in place (u8 != NULL, x[i] = u8[i] / div). */
typedef struct {
    const float *x;
    const uint8_t *u8;
    float div;
} fl_ctx;

/* An op: prepare checks node n against its inputs' shapes (already inferred), sets its output
 * value's shape, n->scratch_need (bytes) and n->d[]; 0, or -1 with fl_err_* set. eval runs it on
 * its inputs into its output and scratch: no allocation, no strings, bounded loops. */
typedef struct {
    int (*prepare)(fl_node *n);
    void (*eval)(const fl_node *n, const fl_ctx *cx);
    const char *name;           /* runtime/ir.ts's name of the op */
} fl_op;

#define CHECK(x) do { if (x) return -1; } while (0)
#define F4 4u

/* ---- shared reads -------------------------------------------------------------------------- */
static inline fl_tensor *T(const fl_node *n, int slot) { uint16_t t = fl_role(n, slot); return t == 0xFFFF ? NULL : &fl_m.tensors[t]; }
static inline fl_value *X(const fl_node *n, int i) { return &fl_m.values[n->in[i]]; }
static inline int fl_is_ext(uint16_t ref) { return !(ref & FL_REF_TENSOR) && fl_m.values[ref].external; }
/* a value's floats: the external graph input, or its place in the arena */
static inline float *fl_vp(uint16_t vi, const fl_ctx *c) {
    fl_value *v = &fl_m.values[vi];
    return v->external ? (float *)c->x : (float *)(void *)(fl_arena + v->off);
}
/* the first input's floats (NULL when it is a stored tensor) */
static inline const float *fl_x(const fl_node *n, const fl_ctx *c) { return (n->in[0] & FL_REF_TENSOR) ? NULL : fl_vp(n->in[0], c); }
static inline float *fl_scratch(const fl_node *n) { return (float *)(void *)(fl_arena + n->scratch_off); }
/* a number prepare keeps in d[i] for the kernel */
static inline void fl_setf(fl_node *n, int i, float v) { memcpy(&n->d[i], &v, 4); }
static inline float fl_getf(const fl_node *n, int i) { float v; memcpy(&v, &n->d[i], 4); return v; }
/* per-op data fl_op_params put in the tables (its offset in the arena kept in d[7]) */
static inline void *fl_params(const fl_node *n) { return fl_arena + n->d[7]; }

/* ---- prepare helpers (check.c) ------------------------------------------------------------- */
int fl_bad(const char *m);                                     /* MODEL_INVALID */
int fl_need_role(const fl_node *n, int slot, fl_tensor **t);
int fl_only_roles(const fl_node *n, uint32_t mask, uint32_t nidx); /* roles in mask, indexed < nidx */
int fl_shape_is(const fl_tensor *t, uint8_t rank, const uint32_t *dims);
int fl_bias_ok(const fl_node *n, uint32_t O);
int fl_set_out(fl_node *n, uint8_t rank, const uint32_t *dims);
int fl_one_input(const fl_node *n);
int fl_conv_out(int32_t in, int32_t k, int32_t s, int32_t p0, int32_t p1, int32_t d, uint32_t *out);
int fl_conv_attrs_ok(const fl_attrs *a);
int fl_nchw(const fl_node *n, uint32_t C, uint32_t *H, uint32_t *W); /* x is [1, C, H, W] */
int fl_dense_shape(fl_node *n, uint32_t inF, uint32_t outF, uint32_t *rows);
uint32_t fl_prod(const uint32_t *d, int from, int to);
int fl_work(double w);                                         /* TOO_LARGE past FL_MAX_WORK */
int fl_same_shape_prepare(fl_node *n);                         /* one activation in, its shape out */

/* ---- attributes beyond fl_attrs (attrs.c): 1 found, 0 absent, -1 with MODEL_INVALID set ---- */
int fl_attr_ints(const fl_node *n, const char *key, int32_t *v, uint8_t cap, uint8_t *len);
int fl_attr_floats(const fl_node *n, const char *key, float *v, uint8_t cap, uint8_t *len);
int fl_attr_nums(const fl_node *n, const char *key, double *v, uint8_t cap, uint8_t *len);
int fl_attr_num(const fl_node *n, const char *key, double *v);
int fl_attr_str(const fl_node *n, const char *key, const char *const *choices, uint8_t count, uint8_t *idx);
/* per-op data in the tables for the life of the prepared model, its offset in n->d[7] (TOO_LARGE
 * when the tables are full) */
void *fl_op_params(fl_node *n, uint32_t bytes);

/* ---- weights (weights.c) ------------------------------------------------------------------- */
float fl_wget(const fl_tensor *t, uint32_t i);                 /* element i as f32 (f16 / int8 widened) */
float fl_wdot(const fl_tensor *t, uint32_t off, const float *x, uint32_t n);
float fl_wdot_u8(const fl_tensor *t, uint32_t off, const uint8_t *u8, uint32_t n, float div);
void fl_add_bias(float *y, uint32_t rows, uint32_t outF, const fl_tensor *b);
void fl_wrow(const fl_tensor *t, uint32_t first, uint32_t n, float *out); /* out[k] = fl_wget(t, first + k) */

/* ---- the fast inner loops (rows.c, FL_FAST_KERNELS) ------------------------------------------ */
/* Weights a fast kernel widens at a time into a stack buffer (a conv's kernel plane KH x KW, a
 * run of a 1x1's input channels); a conv with a larger plane takes the portable loop. */
#define FL_FAST_TAPS 64u
/* The narrowest output rows a conv (or a conv -> pool chain) takes the row kernels for */
#define FL_FAST_MIN_OW 8u
#if FL_FAST_KERNELS
/* y[oy - oy0, ox] += sum over the in-range taps (ky, kx) of wk[ky, kx] x[oy*sy - py + ky*dy, ox*sx - px + kx*dx],
 * oy0 <= oy < oy1, ox < OW: one input channel xc [H, W] of a conv into its output rows */
void fl_conv_rows(const float *xc, uint32_t H, uint32_t W, const float *wk, uint32_t KH, uint32_t KW,
                  const int32_t *st, const int32_t *pd, const int32_t *dl, uint32_t oy0, uint32_t oy1, uint32_t OW, float *y);
/* y[j] += sum_k w[k] x[k * xs + j], j < n, k in order */
void fl_mac_cols(const float *w, uint32_t K, const float *x, uint32_t xs, uint32_t n, float *y);
#endif

/* ---- kernels other files reuse ------------------------------------------------------------- */
/* conv.c: y[O, OH, OW] = conv(x[C, H, W], w[O, C/G, KH, KW]) (+ bias); y[O, HW] = w[O, C] x[C, HW] (+ bias) */
void fl_conv(const float *x, uint32_t C, uint32_t H, uint32_t W, const fl_tensor *w, uint32_t wbase,
             uint32_t O, uint32_t G, uint32_t KH, uint32_t KW, const fl_attrs *a, const int32_t *strides,
             const int32_t *pads, const int32_t *dil, uint32_t OH, uint32_t OW, const fl_tensor *bias, float *y);
void fl_conv1x1(const float *x, uint32_t C, uint32_t HW, const fl_tensor *w, uint32_t O, const fl_tensor *bias, float *y);
int fl_conv_kind(uint8_t op);
/* activation.c: a chain's activation node applied to one value (an = NULL: none) */
float fl_act_apply(const fl_node *an, float v);
/* chain.c: the consumer of a fused chain */
void fl_chain_eval(const fl_node *n, const fl_ctx *cx);

/* ---- the int8-full path (qparams.c: prepare; qkernels.c: the integer kernels) --------------- */
/* A model with metadata quant.int8_full (docs/FORMAT.md 4.5) runs on int8 activations: each
 * parametric node as its stages (an int8 weight, int32 accumulators, a Q31 multiplier and shift
 * per output channel), bit for bit as runtime/int8full/ (Int8Session.runInt8). */
enum { QG_DENSE, QG_CONV, QG_1X1, QG_V, QG_H, QG_DW };
typedef struct {
#if FL_Q_STORE_LISTS
    uint32_t w_at;              /* the weight's bytes: their store offset (the port's kernels read them) */
#else
    const int8_t *w;            /* the weight's bytes in the (memory-mapped) model store */
    const int32_t *mult, *bias; /* per output channel (bias NULL: none); set in a view (fl_q_view) */
    const int8_t *shift;
    uint32_t mult_cur, shift_cur, bias_cur, next_c; /* fl_q_view: where channel next_c's are */
    uint32_t block;             /* output channels per fl_q_view */
#endif
    /* the lists' first elements in the store (bias_at 0: none), checked at prepare; on every port
     * they stay there: fl_q_view decodes a block into the node's scratch, or, where the store is
     * not memory (FL_Q_STORE_LISTS), the port's kernels decode them in order as they run (the
     * fields fl_q_view needs are left out there: the AVR's tables have 4 KB for everything) */
    uint32_t mult_at, shift_at, bias_at;
    uint32_t C, K;              /* output channels, weights per channel */
    int32_t in_zp, out_zp, min, max;
    uint8_t geom;               /* QG_* */
} fl_qstage;
#if FL_Q_STORE_LISTS
typedef fl_qstage fl_qst;       /* the port's kernels run on the stages as the tables keep them */
#else
/* a stage as the tables keep it; fl_q_view makes the kernels' fl_qstage of one block from it */
typedef struct {
    const int8_t *w;            /* the weight's bytes in the (memory-mapped) model store */
    uint32_t mult_at, shift_at, bias_at; /* the lists' first elements in the store (bias_at 0: none) */
    uint32_t C, K;              /* output channels, weights per channel */
    int8_t in_zp, out_zp, min, max;
    uint8_t geom;               /* QG_* */
    uint8_t block;              /* output channels per fl_q_view, 0: all C */
    uint8_t form;               /* QF_*: lists of one msgpack form each, read at a fixed stride (qdense.c) */
} fl_qst;
enum { QF_M32 = 1, QF_S8 = 2 }; /* every mult a uint32 (0xce, 5 bytes); every shift a fixint (1 byte) */
#endif
enum { QK_STAGES, QK_LUT, QK_ADD, QK_CONCAT, QK_SOFTMAX }; /* how a node runs (QK_STAGES: nst stages, 0 a pass-through) */
typedef struct {
    uint8_t nst;                /* stages (0: a kind without weights) */
    uint8_t kind;               /* QK_* */
#if FL_Q_MISC
    uint8_t act;                /* a table's activation input (the other is a stored scalar) */
#endif
    int8_t in_zp;               /* the input value's zero point */
#if FL_Q_MISC
    uint32_t misc_at;           /* QK_LUT .. QK_SOFTMAX: its fl_qmisc in the tables */
#endif
    uint32_t plane_off;         /* conv kinds: OH x OW bytes of plane space in the node's scratch (fl_q_chain's row bands) */
#if !FL_Q_STORE_LISTS
    uint32_t par_off;           /* where in the node's scratch fl_q_view decodes a block of a stage's lists */
#endif
    fl_qst st[];                /* nst of them (at most 4) */
} fl_qnode;
/* the parameters of the kinds in qmisc.c (FORMAT.md 4.5: lut, add, concat, softmax) */
typedef struct {
    int32_t zp[FL_MAX_IN], mult[FL_MAX_IN], shift[FL_MAX_IN]; /* per activation input */
    int32_t out_mult, out_shift, out_zp, min, max;           /* add: output multiplier, clamp */
    uint32_t tab[];             /* lut: 256 int8 (as bytes); softmax: the 256-entry exp table */
} fl_qmisc;
int32_t fl_q_mbqm(int32_t x, int32_t mult, int32_t shift); /* TFLM MultiplyByQuantizedMultiplier */
void fl_q_misc(const fl_node *n);  /* a table, add, concat or softmax node on int8 activations */

/* after the op's own prepare (shapes, roles): the node's integer parameters from the metadata,
 * its int8 scratch; 0, or -1 with fl_err_* set */
int fl_q_prepare(fl_node *n);
static inline const fl_qnode *fl_qn(const fl_node *n) { return (const fl_qnode *)(const void *)(fl_arena + n->q_at); }
/* *v = stage k of n for its output channels c0 .. c0 + block - 1 (fewer at the end): their
 * multipliers, shifts and biases decoded from the store into the node's scratch (the lists are not
 * kept in the tables: a node needs one block of them only while it runs), the weights offset */
void fl_q_view(const fl_node *n, uint32_t k, uint32_t c0, fl_qstage *v);
void fl_q_view_reset(void);         /* a model prepared: the views start over */
void fl_q_input(const fl_ctx *cx);  /* the f32 (or u8) input quantised into fl_m.qin */
void fl_q_eval(const fl_node *n);   /* one node on int8 activations */
void fl_q_chain(const fl_node *pn); /* a fused conv kind -> [relu] -> pool at its consumer pn */
void fl_q_output(void);             /* the int8 output dequantised to f32 in place */
#if !FL_Q_STORE_LISTS /* qdwlr.c: dwlr_conv2d's stage (v checked, no int32 overflow), and its kernel */
int fl_q_dwlr_check(const fl_node *n, const fl_qst *st);
void fl_q_dwlr(const fl_node *n, const int8_t *x, const fl_qstage *v, uint32_t c0, int8_t *y);
#endif
#if FL_Q_STORE_LISTS
int fl_q_port_has(uint8_t op);      /* the port's kernels (FL_Q_STORE_LISTS) run this kind */
#endif

/* ---- the ops (ops.def lists them with their family's file) --------------------------------- */
#define FL_OP(id, NAME, name, prepare, eval) int prepare(fl_node *n); void eval(const fl_node *n, const fl_ctx *cx);
#define FL_ID(id, NAME, name)
#include "ops.def"
#undef FL_OP
#undef FL_ID

#endif
