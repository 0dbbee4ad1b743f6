/* ops/table.c: the op table (op id -> prepare, eval, name) and the loop that runs the prepared
 * graph through it. A new op: its family's file (or a new one) defines its prepare and eval, and
 * one line here lists it; test/firmware-bridge/firmware/structure.test.ts fails while an op the
 * mcu plan accepts has no entry. */
#include "op.h"

/* The AVR port keeps the table in flash (FL_ROM, FL_ROM_COPY in port_config.h). */
static const fl_op table[OP_COUNT] FL_ROM = {
    [OP_DENSE] = { fl_dense_prepare, fl_dense_eval, "dense" },
    [OP_CONV2D] = { fl_conv_prepare, fl_conv2d_eval, "conv2d" },
    [OP_SVD_DENSE] = { fl_svd_dense_prepare, fl_svd_dense_eval, "svd_dense" },
    [OP_SVD_CONV2D] = { fl_conv_prepare, fl_svd_conv2d_eval, "svd_conv2d" },
    [OP_TUCKER2_CONV2D] = { fl_conv_prepare, fl_tucker2_conv2d_eval, "tucker2_conv2d" },
    [OP_CP_CONV2D] = { fl_conv_prepare, fl_cp_conv2d_eval, "cp_conv2d" },
    [OP_TT_DENSE] = { fl_tt_prepare, fl_tt_eval, "tt_dense" },
    [OP_TR_DENSE] = { fl_tt_prepare, fl_tt_eval, "tr_dense" },
    [OP_TTL_DENSE] = { fl_ttl_prepare, fl_ttl_eval, "ttl_dense" },
    [OP_RELU] = { fl_same_shape_prepare, fl_relu_eval, "relu" },
    [OP_LEAKY_RELU] = { fl_same_shape_prepare, fl_leaky_relu_eval, "leaky_relu" },
    [OP_SIGMOID] = { fl_same_shape_prepare, fl_sigmoid_eval, "sigmoid" },
    [OP_TANH] = { fl_same_shape_prepare, fl_tanh_eval, "tanh" },
    [OP_CLIP] = { fl_same_shape_prepare, fl_clip_eval, "clip" },
    [OP_MAX_POOL] = { fl_pool_prepare, fl_pool_eval, "max_pool" },
    [OP_AVG_POOL] = { fl_pool_prepare, fl_pool_eval, "avg_pool" },
    [OP_GLOBAL_AVG_POOL] = { fl_gap_prepare, fl_gap_eval, "global_avg_pool" },
    [OP_FLATTEN] = { fl_flatten_prepare, fl_copy_eval, "flatten" },
    [OP_RESHAPE] = { fl_reshape_prepare, fl_copy_eval, "reshape" },
    [OP_SOFTMAX] = { fl_softmax_prepare, fl_softmax_eval, "softmax" },
    [OP_ADD] = { fl_binary_prepare, fl_binary_eval, "add" },
    [OP_MUL] = { fl_binary_prepare, fl_binary_eval, "mul" },
    [OP_IDENTITY] = { fl_same_shape_prepare, fl_copy_eval, "identity" },
    [OP_PAD] = { fl_pad_prepare, fl_pad_eval, "pad" },
    [OP_CONCAT] = { fl_concat_prepare, fl_concat_eval, "concat" },
    [OP_SLICE] = { fl_slice_prepare, fl_slice_eval, "slice" },
    [OP_RESIZE] = { fl_resize_prepare, fl_resize_eval, "resize" },
    [OP_CONV_TRANSPOSE2D] = { fl_conv_transpose_prepare, fl_conv_transpose_eval, "conv_transpose2d" },
    [OP_PRELU] = { fl_prelu_prepare, fl_prelu_eval, "prelu" },
    [OP_HARD_SIGMOID] = { fl_hard_sigmoid_prepare, fl_hard_sigmoid_eval, "hard_sigmoid" },
    [OP_HARD_SWISH] = { fl_same_shape_prepare, fl_hard_swish_eval, "hard_swish" },
    [OP_LOG_SOFTMAX] = { fl_softmax_prepare, fl_softmax_eval, "log_softmax" },
    [OP_GELU] = { fl_gelu_prepare, fl_gelu_eval, "gelu" },
    [OP_LAYER_NORM] = { fl_layer_norm_prepare, fl_layer_norm_eval, "layer_norm" },
    [OP_ERF] = { fl_same_shape_prepare, fl_erf_eval, "erf" },
    [OP_SQRT] = { fl_same_shape_prepare, fl_sqrt_eval, "sqrt" },
    [OP_EXP] = { fl_same_shape_prepare, fl_exp_eval, "exp" },
    [OP_LOG] = { fl_same_shape_prepare, fl_log_eval, "log" },
    [OP_ABS] = { fl_same_shape_prepare, fl_abs_eval, "abs" },
    [OP_RECIPROCAL] = { fl_same_shape_prepare, fl_reciprocal_eval, "reciprocal" },
    [OP_POW] = { fl_pow_prepare, fl_pow_eval, "pow" },
    [OP_REDUCE] = { fl_reduce_prepare, fl_reduce_eval, "reduce" },
    [OP_RCP_DENSE] = { fl_reshaped_prepare, fl_reshaped_eval, "rcp_dense" },
    [OP_RCP_CONV2D] = { fl_reshaped_prepare, fl_reshaped_eval, "rcp_conv2d" },
    [OP_RTK_DENSE] = { fl_reshaped_prepare, fl_reshaped_eval, "rtk_dense" },
    [OP_RTK_CONV2D] = { fl_reshaped_prepare, fl_reshaped_eval, "rtk_conv2d" },
    [OP_RTT_DENSE] = { fl_reshaped_prepare, fl_reshaped_eval, "rtt_dense" },
    [OP_RTT_CONV2D] = { fl_reshaped_prepare, fl_reshaped_eval, "rtt_conv2d" },
    [OP_RTR_DENSE] = { fl_reshaped_prepare, fl_reshaped_eval, "rtr_dense" },
    [OP_RTR_CONV2D] = { fl_reshaped_prepare, fl_reshaped_eval, "rtr_conv2d" },
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
    return e.prepare(n);
}

static void run_node(const fl_node *n, const fl_ctx *c) {
    fl_op e;
    if (n->span_lo != (uint16_t)(n - fl_m.nodes)) {
        /* the consumer of a fused chain (prepare accepted only chains fl_chain_supported names) */
        fl_chain_eval(n, c);
        return;
    }
    if (entry(n->op, &e)) e.eval(n, c); /* prepare refused other ops */
}

void fl_eval(const float *x) {
    uint16_t i;
    fl_ctx c;
    if (!fl_m.ready) return;
    c.x = x; c.u8 = NULL; c.div = 1;
    for (i = 0; i < fl_m.nnodes; i++) if (!fl_m.values[fl_m.nodes[i].out].fused) run_node(&fl_m.nodes[i], &c);
}

void fl_eval_u8(const uint8_t *u8, float div) {
    uint16_t i;
    fl_ctx c;
    if (!fl_m.ready || !fl_m.u8_inplace) return;
    c.x = NULL; c.u8 = u8; c.div = div;
    for (i = 0; i < fl_m.nnodes; i++) if (!fl_m.values[fl_m.nodes[i].out].fused) run_node(&fl_m.nodes[i], &c);
}

const float *fl_output(void) {
    fl_value *v = &fl_m.values[fl_m.output];
    return (const float *)(const void *)(fl_arena + v->off);
}
