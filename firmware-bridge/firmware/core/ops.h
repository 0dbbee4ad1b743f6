/* ops.h: the ops as the model reader and the protocol see them (ops/ holds one file per family
 * and the table, ops/table.c). */
#ifndef FL_OPS_H
#define FL_OPS_H
#include "fl.h"

#define INT32_MIN_SENTINEL (-2147483647 - 1)

/* Check node n against its inputs' shapes (already inferred), set its output value's shape and
 * n->scratch_need (bytes) and n->d[]. 0 or -1 with fl_err_* set. */
int fl_op_prepare(fl_node *n);

/* Fused chains (docs/FORMAT.md section 7, "Fused values"): producer -> [activation] -> consumer,
 * run as one step at the consumer with the intermediates never stored. Nonzero when this firmware
 * streams a chain of this producer and consumer op. */
int fl_chain_supported(uint8_t producer, uint8_t consumer);
/* 0, or -1 with TOO_LARGE set when the streamed chain p -> .. -> c needs more work than the
 * device allows (a fused kernel may recompute producer outputs). */
int fl_chain_work(const fl_node *p, const fl_node *c);
/* The unary activations a chain may apply between its producer and consumer. */
int fl_chain_act(uint8_t op);

/* The ops the firmware runs (ops/table.c; hello.ops lists them, the mcu plan profile mirrors them). */
int fl_op_supported(uint8_t op);
uint8_t fl_ops_count(void);

#endif
