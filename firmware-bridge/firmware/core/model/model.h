/* model/model.h: what the model reader's files share (schema.c, reader.c, plan.c, prepare.c). */
#ifndef FL_MODEL_H
#define FL_MODEL_H
#include "../fl.h"

#define MAX_SAFE 9007199254740991.0 /* 2^53 - 1 */

/* What prepare alone needs of each tensor, value and node: the prepare area, a record per item
 * from the arena's start up (fl_prep_alloc), while the tables grow down from its end. */
typedef struct {
    uint32_t at;                /* file offset of the name bytes */
    uint16_t len;
    uint32_t hash;
} fl_nm;
typedef struct {
    fl_nm nm;
    uint32_t bytes;             /* plan placement's size */
    int16_t first, last;        /* defining node (-1 graph input), last reader (nodes = graph output) */
    uint8_t have_plan;
} fl_value_rd;
typedef struct {
    fl_nm nm;
    uint32_t in_at[FL_MAX_IN];  /* input names (file offsets), resolved after the graph is read */
    uint16_t in_len[FL_MAX_IN];
    uint16_t span_hi;           /* the fused chain's last node */
    uint32_t attrs_at;          /* file offset of the attrs map: the ops that read more attributes
                                 * than fl_attrs holds read them at prepare (ops/attrs.c) */
    uint32_t scratch_bytes;     /* the plan's scratch for the node */
    fl_attrs a;                 /* the node's attributes (n->a points here while preparing) */
} fl_node_rd;

/* The reading state of one prepare (reset by it). */
typedef struct {
    uint32_t tab_top;           /* tables grow down from FL_ARENA_BYTES */
    uint32_t prep_top;          /* the prepare area grows up from 0 */
    fl_nm *tn;                  /* per tensor */
    fl_value_rd *vr;            /* per value */
    fl_node_rd *nr;             /* per node */
    uint32_t hdr_end;           /* the header's end in the store */
    /* deferred graph errors (step 8 of FORMAT.md section 8, found while reading the schema) */
    const char *g_code, *g_msg;
    uint32_t g_at;
    uint16_t g_len;
    const char *attr_err;       /* attribute problems are device errors, reported after the format checks */
    uint32_t out_at;            /* the graph output's name */
    uint16_t out_at_len;
    uint8_t idx_kind[256];      /* per node: 0 none, 1 core.K seen, 2 factor.K seen (nodes <= 256 tracked) */
} fl_reader_state;
extern fl_reader_state fl_rd;

/* schema.c */
void fl_graph_err(const char *code, const char *msg, uint32_t at, uint16_t len);
int fl_fail_name(const char *code, const char *msg, uint32_t at, uint16_t len);
void *fl_tab_alloc(uint32_t n);
void *fl_prep_alloc(uint32_t n);  /* in the prepare area (zeroed); NULL when the arena is full */
#define FL_NR(n) (&fl_rd.nr[(n) - fl_m.nodes])   /* node n's prepare record */
#define FL_VR(i) (&fl_rd.vr[i])
#define FL_TN(i) (&fl_rd.tn[i])
uint32_t fl_name_hash(uint32_t at, uint16_t len);
int fl_name_eq(uint32_t a, uint16_t al, uint32_t b, uint16_t bl);
int fl_find_tensor(uint32_t at, uint16_t len, uint32_t h);
int fl_find_value(uint32_t at, uint16_t len, uint32_t h, uint16_t upto);
int fl_schema(const char *what);
int fl_rd_int(fl_src *s, double lo, double hi, double *out); /* an integral number within [lo, hi] */
int fl_rd_name(fl_src *s, uint32_t *at, uint16_t *len);
int fl_key(fl_src *s, mp_item *k);
/* The value of attribute key of node n: 1 with it's head in *it and s placed after it (a list's
 * elements follow), 0 when n has no such attribute, -1 on bad bytes. */
int fl_attr_find(const fl_node *n, const char *key, fl_src *s, mp_item *it);

/* reader.c */
int fl_read_tensor(fl_src *s, fl_tensor *t);
void fl_attrs_default(fl_attrs *a);   /* the defaults of what read_attrs reads */
int fl_read_graph(fl_src *s, uint32_t nnodes_hint);
int fl_count_nodes(fl_src s, uint32_t *count);  /* the nodes before reading them (to size the tables) */
int fl_meta_key_ok(fl_src *s, const mp_item *k);

/* plan.c */
int fl_plan_structure(fl_src s);
int fl_check_plan(fl_src *s);

#endif
