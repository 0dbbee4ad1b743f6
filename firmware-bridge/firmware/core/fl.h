/* fl.h: the portable core's internal interface (model reader, kernels, protocol). */
#ifndef FL_CORE_H
#define FL_CORE_H

#include <stdint.h>
#include <stddef.h>
#include "../port.h"

#define FL_FW_VERSION "factorlite-fw 0.1"

/* Reads one char of a string literal through a pointer. A port whose literals are not plain data
 * (the AVR port keeps them in flash, ports/avr/flashstr.h) defines it in port_config.h. */
#ifndef FL_RD
#define FL_RD(p) (*(p))
#endif
#define FL_PROTO 1
/* Constant tables the core indexes at run time (the op table): a port whose const data would
 * take RAM (the AVR port keeps it in flash) defines FL_ROM and FL_ROM_COPY in port_config.h. */
#ifndef FL_ROM
#define FL_ROM
#define FL_ROM_COPY(dst, src, n) memcpy((dst), (src), (n))
#endif

/* ---- limits of the device-side reader (checked at prepare) ------------------------------- */
/* Ports may lower these (port_config.h) to shrink the tables on a small part; FORMAT.md allows 8. */
#ifndef FL_MAX_RANK
#define FL_MAX_RANK 8          /* tensor and activation rank */
#endif
#ifndef FL_MAX_IN
#define FL_MAX_IN 2            /* node inputs (add / mul take two, so does a concat) */
#endif
/* weight role slots: fixed names, then indexed roles core.K / factor.K */
enum { ROLE_WEIGHT, ROLE_BIAS, ROLE_U, ROLE_V, ROLE_U_IN, ROLE_CORE, ROLE_U_OUT, ROLE_A_IN, ROLE_K_H,
       ROLE_K_W, ROLE_A_OUT, ROLE_SLOPE, ROLE_SCALE, ROLE_W, ROLE_COEFFS, ROLE_RANGE, ROLE_START, ROLE_GATES, ROLE_IDX };
/* their names in the file, ROLE_IDX of them (model/reader.c) */
#define FL_ROLE_NAMES { "weight", "bias", "u", "v", "u_in", "core", "u_out", "a_in", "k_h", "k_w", "a_out", "slope", "scale", "w", "coeffs", "range", "start", "gates" }
#ifndef FL_MAX_INDEXED
#define FL_MAX_INDEXED 16      /* core.K / factor.K roles of one node */
#endif
#define FL_MAX_ROLES (ROLE_IDX + FL_MAX_INDEXED)
#ifndef FL_MAX_MODES
#define FL_MAX_MODES 8         /* tt/tr/ttl modes per side */
#endif
#if FL_MAX_RANK > 8 || FL_MAX_MODES > 8 || FL_MAX_RANK < 4 || FL_MAX_MODES < 1
#error "FL_MAX_RANK must be 4..8 and FL_MAX_MODES 1..8"
#endif
#define FL_MAX_DEPTH 32        /* msgpack nesting (FORMAT.md 3.1) */
#define FL_ATTR_MAX 65535      /* largest stride/pad/dilation/kernel the device accepts */

/* ---- ops and dtypes (runtime/ir.ts) ------------------------------------------------------ */
#ifndef FL_INT8_FULL
#define FL_INT8_FULL 1         /* 0: no int8-full path (ops/qparams.c, qkernels.c); such a model is refused */
#endif
/* 1: the int8-full path reads its weights and per-channel lists (mult, shift, bias) from the
 * model store as the kernels meet them, with no memory-mapped store and no copy in the tables;
 * the port supplies fl_q_eval / fl_q_input / fl_q_output (ports/avr/qavr.c), and the scales of
 * the graph's input and output are kept as binary64 bits (a port whose double is 32 bits) */
#ifndef FL_Q_STORE_LISTS
#define FL_Q_STORE_LISTS 0
#endif
/* 1: the int8-full kinds without weights beyond the pass-throughs (tables, add, concat, softmax:
 * ops/qmisc.c); 0 refuses them by name (the AVR, whose model store needs the 6 KB of flash) */
#ifndef FL_Q_MISC
#define FL_Q_MISC 1
#endif
#ifndef FL_OPS_EXTRA
#define FL_OPS_EXTRA 1         /* 0: the FL_OPX ops of ops.def are known by id only (saves flash) */
#endif
enum {
#define FL_OP(id, NAME, name, prepare, eval) OP_##NAME = id,
#define FL_ID(id, NAME, name) OP_##NAME = id,
#include "ops/ops.def"
#undef FL_OP
#undef FL_ID
    OP_COUNT /* ops.def lists the ids in order, so this is the last id + 1 */
};
enum { DT_F32 = 0, DT_F16 = 1, DT_I8 = 2 };

/* ---- CRC32 -------------------------------------------------------------------------------- */
uint32_t fl_crc32_update(uint32_t state, const uint8_t *p, uint32_t n); /* state starts 0xFFFFFFFF */
uint32_t fl_crc32(const uint8_t *p, uint32_t n);

/* ---- byte source: plain memory, or the model store through port_model_read ---------------- */
typedef struct {
    const uint8_t *mem; /* NULL: read through port_model_read */
    uint32_t pos, end;  /* absolute positions (file offsets for the model store) */
    uint8_t err;        /* sticky: a read past end */
    uint8_t cache[16];
    uint32_t cache_at;  /* file offset of cache[0]; UINT32_MAX when empty */
} fl_src;

void fl_src_mem(fl_src *s, const uint8_t *p, uint32_t n);
void fl_src_model(fl_src *s, uint32_t start, uint32_t end);
int fl_src_byte(fl_src *s);          /* -1 past end (sets err) */
uint8_t fl_model_byte(uint32_t off); /* model store byte */

/* ---- msgpack ------------------------------------------------------------------------------ */
enum { MP_NIL, MP_BOOL, MP_INT, MP_FLOAT, MP_STR, MP_BIN, MP_ARRAY, MP_MAP, MP_BAD };
typedef struct {
    uint8_t type;
    uint8_t neg;       /* MP_INT: negative */
    uint64_t u;        /* MP_INT magnitude; MP_BOOL value; MP_STR/BIN/ARRAY/MAP length/count */
    double f;          /* MP_FLOAT value (and MP_INT as double) */
    uint32_t at;       /* MP_STR/MP_BIN: position of the payload */
} mp_item;

/* Read one item head. Returns 0, or -1 on bad bytes / truncation. Strings and bins: the payload is
 * skipped too (at = its position). Arrays and maps: only the head. Counts beyond the bytes left
 * are errors (each element takes at least one byte; a map pair two). */
int mp_head(fl_src *s, mp_item *it);
/* Skip one complete value (validating the subset: no bin/ext when strict, UTF-8, depth). */
int mp_skip(fl_src *s, int strict, int depth);
/* Compare a string payload with a C string. */
int mp_str_eq(fl_src *s, const mp_item *it, const char *lit);
/* A number item as double (int or float); returns -1 when not a number. */
int mp_num(const mp_item *it, double *v);

typedef struct {
    uint8_t *buf;
    uint16_t cap, len;
    uint8_t err;
} mp_writer;
void mpw_init(mp_writer *w, uint8_t *buf, uint16_t cap);
void mpw_map(mp_writer *w, uint32_t n);
void mpw_array(mp_writer *w, uint32_t n);
void mpw_str(mp_writer *w, const char *s);
void mpw_strn(mp_writer *w, const char *s, uint32_t n);
void mpw_uint(mp_writer *w, uint32_t v);
void mpw_bool(mp_writer *w, int v);
void mpw_nil(mp_writer *w);
void mpw_bin_head(mp_writer *w, uint32_t n);
void mpw_raw(mp_writer *w, const void *p, uint32_t n);

/* ---- the prepared model ------------------------------------------------------------------ */
/* The records below stay in the tables (the arena's end) for the life of the prepared model and
 * hold what eval reads; names, hashes, lifetimes and the like are only needed while preparing and
 * sit in the prepare area at the arena's start (model/model.h), which the plan's activations take
 * over once prepare is done. */
typedef struct {
    uint32_t data;      /* file offset of the tensor's bytes */
    uint32_t numel;
    float *scale;       /* nscale entries, in the arena's table area; NULL: read from the store */
    uint32_t scale_at;  /* with scale NULL: file offset of the first float64 (9-byte) scale */
    uint32_t inner;     /* product of dims after axis (per-channel), else numel */
    uint16_t nscale;
    uint8_t dtype, rank;
    uint8_t axis;       /* quant axis, 0xFF = per-tensor */
    uint32_t *dims;     /* rank of them in the tables (fl_dims) */
} fl_tensor;

typedef struct {
    uint32_t off;          /* plan placement */
    uint32_t numel;
    uint8_t rank, external, is_output;
    uint8_t fused;         /* plan: an intermediate of a streamed chain, never stored (FORMAT 7) */
    uint32_t *dims;        /* rank of them in the tables (fl_dims) */
} fl_value;

typedef struct {
    int32_t strides[2], pads[4], dil[2], group;
    int32_t kernel[2];
    uint8_t ceil_mode, count_include_pad;
    uint8_t odd_pads;           /* "pads" is a list of other than 4 (only the pad op takes that) */
    float alpha, lo, hi;
    int32_t axis;
    /* out_modes / in_modes (tt, tr, ttl) and shape (reshape) are checked by the reader and read
     * again by their ops' prepare (ops/factor.c keeps the modes in its op params), so that the
     * other nodes' records do not carry them */
} fl_attrs;

/* Input reference: a value index, or a stored tensor (index | FL_REF_TENSOR). */
#define FL_REF_TENSOR 0x8000u
typedef struct {
    uint8_t op, nin;
    uint8_t nw;                 /* the node's weights: nw pairs (role slot ROLE_*, tensor index) of */
    uint16_t in[FL_MAX_IN];
    uint16_t out;               /* value index */
    uint16_t span_lo;           /* the fused chain holding this node runs as one step: its first node */
    uint32_t w_at;              /* uint16 in the tables at w_at (fl_role) */
    uint32_t scratch_off, scratch_need;
    fl_attrs *a;                /* while preparing: every attribute fl_attrs holds; then the ops that
                                 * read them when they run keep theirs in the tables (shared between
                                 * nodes with the same ones), the others NULL (model/prepare.c) */
    uint32_t d[8];              /* derived sizes (and numbers: fl_getf) the kernel uses, set at prepare */
    uint32_t q_at;              /* int8-full models: the node's integer parameters in the tables (ops/qparams.c) */
} fl_node;

typedef struct {
    uint8_t ready;
    uint32_t size, crc;
    uint16_t ntensors, nvalues, nnodes;
    fl_tensor *tensors;
    fl_value *values;
    fl_node *nodes;
    uint16_t input;             /* value index of the single graph input */
    uint16_t output;            /* value index of the single graph output */
    uint32_t in_numel, out_numel;
    uint32_t plan_arena;        /* bytes at the arena's start used by the plan */
    uint32_t peak_scratch;
    uint32_t tables_bytes;      /* bytes at the arena's end used by the tables */
    uint32_t prep_bytes;        /* bytes at the arena's start the prepare area took (names, lifetimes) */
    uint8_t u8_inplace;         /* every reader of the (external) input takes u8 pixels as they are */
    const uint8_t *mp;          /* port_model_ptr() at prepare, or NULL */
    /* the int8-full path (metadata quant.int8_full, FORMAT.md 4.5; ops/qparams.c, ops/qkernels.c):
     * int8 activations; the f32 input is quantised into qin, the output dequantised in place */
    uint8_t int8_full;
    int8_t in_zp, out_zp;
    double in_scale, out_scale;
    uint32_t q_meta;            /* file offset of the quant.int8_full map (0: none) */
    uint32_t q_values, q_nodes; /* file offsets of its values and nodes maps */
    int8_t *qin;                /* the quantised input (in_numel bytes): the frame buffer's tail
                                 * where an f32 input leaves room for it (not on FL_Q_STORE_LISTS
                                 * ports), else in the tables */
    uint64_t in_scale64, out_scale64; /* the same scales as binary64 bits (ops/qexact.c) */
} fl_model;

extern fl_model fl_m;
/* the arena the prepared model takes: its tables and, before them, the plan's activations and
 * scratch, or the prepare area where that was larger */
static inline uint32_t fl_arena_used(void) { return (fl_m.plan_arena > fl_m.prep_bytes ? fl_m.plan_arena : fl_m.prep_bytes) + fl_m.tables_bytes; }
extern uint8_t *fl_arena;       /* FL_ARENA_BYTES, 8-aligned */
/* *dims = room for rank dims in the tables (a rank-0 item shares zeros), kept when it has room
 * already; 0, or -1 with TOO_LARGE set (model/schema.c) */
int fl_dims(uint32_t **dims, uint8_t have, uint8_t rank);
/* the tensor index node n has in role slot (ROLE_*), 0xFFFF none */
static inline uint16_t fl_role(const fl_node *n, int slot) {
    const uint16_t *p = (const uint16_t *)(const void *)(fl_arena + n->w_at);
    uint8_t i;
    for (i = 0; i < n->nw; i++) if (p[2 * i] == (uint16_t)slot) return p[2 * i + 1];
    return 0xFFFF;
}

/* Error of the last failed operation: a code ("FLM_BAD_GRAPH", "MODEL_INVALID", ...) and a
 * one-line message. */
extern const char *fl_err_code;
extern char fl_err_msg[96];
int fl_fail(const char *code, const char *msg);           /* sets both; returns -1 */
void fl_msg_cat(const char *s);
void fl_msg_uint(uint32_t v);
void fl_msg_name(uint32_t at, uint16_t len);               /* a name from the model store */

/* Prepare the model in the store (size bytes). 0 on success; -1 with fl_err_* set
 * (fl_err_code is an FLM_* code, "TOO_LARGE" or "MODEL_INVALID"). */
int fl_prepare(uint32_t size);
/* Scale c of an int8 tensor (from the tables, or parsed from the header in the store). */
float fl_scale(const fl_tensor *t, uint32_t c);
void fl_unprepare(void);
/* Run one inference. x: the input as f32 (in_numel), 4-aligned. y: receives out_numel floats
 * (may be NULL: the output stays in the arena, see fl_output()). An int8-full model may
 * quantise its input into the frame buffer's tail (fl_m.qin): x must not lie there. */
void fl_eval(const float *x);
/* The same on u8 pixels read in place, x[i] = u8[i] / div (only when fl_m.u8_inplace). */
void fl_eval_u8(const uint8_t *u8, float div);
const float *fl_output(void);
/* Per-layer counts of the last inference (FL_PROFILE_STEPS > 0): step k ran nodes lo..hi (a node,
 * or a fused chain whose consumer is hi) in `cycles` of port_cycles(); steps past the table are
 * counted in fl_prof_lost. Cleared when a model is prepared or dropped. */
typedef struct {
    uint16_t lo, hi;
    uint32_t cycles;
} fl_step_count;
#if FL_PROFILE_STEPS > 0
extern fl_step_count fl_prof[FL_PROFILE_STEPS];
extern uint16_t fl_prof_n, fl_prof_lost;
#endif

/* ---- protocol ------------------------------------------------------------------------------ */
void fl_boot(void);             /* initialise after port_init (loads the stored model) */
void fl_poll(void);             /* handle the bytes waiting; returns when port_getc gives -1 */
void fl_rx_byte(uint8_t c);     /* feed one received byte */
void fl_run(void);              /* fl_boot + loop forever */

/* The shared input buffer (the frame buffer, infer.c), 4-aligned: FL_MAX_FRAME bytes of payload
 * and room for its COBS encoding. */
#define FL_FRAME_BUF (FL_MAX_FRAME + FL_MAX_FRAME / 254u + 2u)
extern uint8_t *fl_frame;
/* Expand n u8 pixels at src (inside the frame buffer or not) into f32 x[i] = u8[i] / div at the
 * frame buffer's start; needs 4n <= FL_MAX_FRAME. */
void fl_expand_u8(const uint8_t *src, uint32_t n, float div);

/* text dialect and Firmata (mlperf.c, firmata.c) */
void fl_text_byte(uint8_t c);
void fl_text_reset(void);
void fl_firmata_byte(uint8_t c);
void fl_firmata_reset(void);
int fl_firmata_busy(void);      /* inside a Firmata message: data bytes (< 0x80) go there */
void fl_firmata_abort(void);    /* forget a message cut short */
void fl_firmata_tick(void);     /* periodic reporting of analog/digital inputs */

/* counters shared with stats */
typedef struct {
    uint32_t frames, bad_frames, retries_served, infers, arena_peak;
} fl_stats_t;
extern fl_stats_t fl_stats;

/* infer on the prepared model with input already f32 at x; fills us/cycles */
void fl_infer_timed(const float *x, uint32_t *us, uint32_t *cycles);
/* Run the model on n input bytes at src (f32 LE, or u8 pixels divided by div), the way the port's
 * buffer allows: u8 read in place when the model permits, else widened to f32 at the frame
 * buffer's start. src may lie in the frame buffer. Returns 0, or -1 (fl_err_msg says why). */
int fl_infer_input(const uint8_t *src, uint32_t n, int is_u8, float div, uint32_t *us, uint32_t *cycles);

/* tiny output helpers for the text dialects */
void fl_puts(const char *s);
void fl_put_uint(uint32_t v);
void fl_put_float(float v);

#endif
