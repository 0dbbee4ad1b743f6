/* ops/table.c: the op table (op id -> prepare, eval, name), made from ops/ops.def, and the loop
 * that runs the prepared graph through it. A new op is a line in ops.def and its prepare and eval in
 * its family's file; test/firmware-bridge/firmware/structure.test.ts fails while an op the mcu plan
 * accepts has no entry. */
#include "op.h"

/* The AVR port keeps the table in flash (FL_ROM, FL_ROM_COPY in port_config.h). An FL_ID op has
 * no entry (prepare NULL: not supported), nor has an FL_OPX op on a port that sets FL_OPS_EXTRA 0. */
static const fl_op table[OP_COUNT] FL_ROM = {
#define FL_OP(id, NAME, name, prepare, eval) [OP_##NAME] = { prepare, eval, name },
#define FL_ID(id, NAME, name)
#if FL_OPS_EXTRA
#define FL_OPX FL_OP
#else
#define FL_OPX(id, NAME, name, prepare, eval)
#endif
#include "ops.def"
#undef FL_OP
#undef FL_OPX
#undef FL_ID
};

static int entry(uint8_t op, fl_op *e) {
    if (op >= OP_COUNT) return 0;
    FL_ROM_COPY(e, &table[op], sizeof *e);
    return e->prepare != NULL;
}

int fl_op_supported(uint8_t op) { fl_op e; return entry(op, &e); }

uint8_t fl_ops_count(void) {
    uint8_t op, k = 0;
    for (op = 0; op < OP_COUNT; op++) k += fl_op_supported(op) ? 1u : 0u;
    return k;
}

int fl_op_prepare(fl_node *n) {
    fl_op e;
    n->scratch_need = 0;
    if (!entry(n->op, &e)) return fl_bad("op not supported by the firmware");
    if (e.prepare(n)) return -1;
    if (!fl_m.int8_full) return 0;
#if FL_INT8_FULL
    return fl_q_prepare(n);
#else
    return fl_bad("this firmware has no int8-full path (FL_INT8_FULL 0)");
#endif
}

static void run_node(const fl_node *n, const fl_ctx *c) {
    fl_op e;
#if FL_INT8_FULL
    if (fl_m.int8_full) {
        if (n->span_lo != (uint16_t)(n - fl_m.nodes)) fl_q_chain(n); /* conv kind -> [relu] -> pool */
        else fl_q_eval(n);
        return;
    }
#endif
    if (n->span_lo != (uint16_t)(n - fl_m.nodes)) {
        /* the consumer of a fused chain (prepare accepted only chains fl_chain_supported names) */
        fl_chain_eval(n, c);
        return;
    }
    if (entry(n->op, &e)) e.eval(n, c); /* prepare refused other ops */
}

#if FL_PROFILE_STEPS > 0
fl_step_count fl_prof[FL_PROFILE_STEPS];
uint16_t fl_prof_n, fl_prof_lost;
#endif

/* every node whose output is stored, in order (a fused chain runs at its consumer); with
 * FL_PROFILE_STEPS, each step's port_cycles() recorded */
static void run_graph(const fl_ctx *c) {
    uint16_t i;
#if FL_PROFILE_STEPS > 0
    fl_prof_n = 0; fl_prof_lost = 0;
#endif
#if FL_INT8_FULL
    if (fl_m.int8_full) fl_q_input(c);
#endif
    for (i = 0; i < fl_m.nnodes; i++) {
        const fl_node *n = &fl_m.nodes[i];
        if (fl_m.values[n->out].fused) continue;
#if FL_PROFILE_STEPS > 0 && FL_PORT_HAS_CYCLES
        {
            uint32_t c0 = port_cycles();
            run_node(n, c);
            c0 = port_cycles() - c0;
            if (fl_prof_n < FL_PROFILE_STEPS) {
                fl_prof[fl_prof_n].lo = n->span_lo; fl_prof[fl_prof_n].hi = i; fl_prof[fl_prof_n].cycles = c0;
                fl_prof_n++;
            } else fl_prof_lost++;
        }
#else
        run_node(n, c);
#endif
    }
#if FL_INT8_FULL
    if (fl_m.int8_full) fl_q_output();
#endif
}

void fl_eval(const float *x) {
    fl_ctx c;
    if (!fl_m.ready) return;
    c.x = x; c.u8 = NULL; c.div = 1;
    run_graph(&c);
}

void fl_eval_u8(const uint8_t *u8, float div) {
    fl_ctx c;
    if (!fl_m.ready || !fl_m.u8_inplace) return;
    c.x = NULL; c.u8 = u8; c.div = div;
    run_graph(&c);
}

const float *fl_output(void) {
    fl_value *v = &fl_m.values[fl_m.output];
    return (const float *)(const void *)(fl_arena + v->off);
}
