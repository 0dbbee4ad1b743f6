/* model/prepare.c: prepare a stored model: the preamble, sizes, CRC and padding, then the
 * reader's sections, the device's limits and each node's op prepare, then the mcu plan. Reads the
 * store through the port (never assumes flash is memory). Whatever it accepts, fl_eval runs safely. */
#include <string.h>
#include "model.h"
#include "../ops.h"

static uint32_t file_size, hdr_end, data_off, data_len;

/* ---- the attributes kept for eval ------------------------------------------------------------ */
/* After every op's prepare: the nodes whose kernels read attributes when they run keep those
 * (conv kinds: strides, pads, dilations, group; pools: also kernel, ceil_mode, count_include_pad;
 * leaky_relu: alpha; clip: min, max) in one fl_attrs in the tables, the others' left as defaults so
 * that nodes with the same ones share it (runtime/plan/mcuTables.ts counts the same); the rest
 * point nowhere. */
static int attrs_class(uint8_t op) {
    switch (op) {
    case OP_CONV2D: case OP_SVD_CONV2D: case OP_TUCKER2_CONV2D: case OP_CP_CONV2D: case OP_CONV_TRANSPOSE2D:
    case OP_RCP_CONV2D: case OP_RTK_CONV2D: case OP_RTT_CONV2D: case OP_RTR_CONV2D: case OP_DWLR_CONV2D:
    case OP_ADTN_CONV2D: return 1;
    case OP_MAX_POOL: case OP_AVG_POOL: return 2;
    case OP_LEAKY_RELU: return 3;
    case OP_CLIP: return 4;
    default: return 0;
    }
}

static int keep_attrs(void) {
    uint32_t i, j;
    for (i = 0; i < fl_m.nnodes; i++) {
        fl_node *n = &fl_m.nodes[i];
        const fl_attrs *a = n->a;
        fl_attrs r;
        int c = attrs_class(n->op);
        n->a = NULL;
        if (!c) continue;
        fl_attrs_default(&r);
        if (c <= 2) {
            memcpy(r.strides, a->strides, sizeof r.strides);
            memcpy(r.pads, a->pads, sizeof r.pads);
            memcpy(r.dil, a->dil, sizeof r.dil);
            r.group = a->group;
        }
        if (c == 2) {
            memcpy(r.kernel, a->kernel, sizeof r.kernel);
            r.ceil_mode = a->ceil_mode;
            r.count_include_pad = a->count_include_pad;
        }
        if (c == 3) r.alpha = a->alpha;
        if (c == 4) { r.lo = a->lo; r.hi = a->hi; }
        for (j = 0; j < i && !n->a; j++)
            if (fl_m.nodes[j].a && !memcmp(fl_m.nodes[j].a, &r, sizeof r)) n->a = fl_m.nodes[j].a;
        if (!n->a) {
            if (!(n->a = (fl_attrs *)fl_tab_alloc((uint32_t)sizeof r))) return fl_fail("TOO_LARGE", "model tables do not fit the arena");
            memcpy(n->a, &r, sizeof r);
        }
    }
    return 0;
}

/* ---- prepare --------------------------------------------------------------------------------- */
static uint32_t rd32(uint32_t off) {
    uint8_t b[4];
    uint32_t i;
    for (i = 0; i < 4; i++) b[i] = fl_model_byte(off + i);
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

void fl_unprepare(void) {
    memset(&fl_m, 0, sizeof fl_m);
#if FL_PROFILE_STEPS > 0
    fl_prof_n = 0; fl_prof_lost = 0; /* the last inference's per-layer counts belonged to that model */
#endif
}

static int prepare_inner(uint32_t size) {
    fl_src s;
    mp_item top, k;
    uint32_t i, hlen, crc, pos_graph = 0, pos_tensors = 0, pos_meta = 0, pos_plan = 0, seen = 0;
    uint32_t nnodes = 0;
    uint64_t dlen;
    fl_rd.g_code = NULL;
    fl_rd.attr_err = NULL;
    memset(fl_rd.idx_kind, 0, sizeof fl_rd.idx_kind);
    fl_unprepare();
    fl_m.mp = port_model_ptr();
    fl_rd.tab_top = FL_ARENA_BYTES;
    fl_rd.prep_top = 0;
    file_size = size;
    /* 1. preamble */
    if (size < 24) return fl_fail("FLM_TOO_SHORT", "fewer than 24 bytes");
    if (fl_model_byte(0) != 'F' || fl_model_byte(1) != 'L' || fl_model_byte(2) != 'M' || fl_model_byte(3) != 0) return fl_fail("FLM_BAD_MAGIC", "not an .flm file");
    if ((fl_model_byte(4) | (fl_model_byte(5) << 8)) != 1) return fl_fail("FLM_UNSUPPORTED_VERSION", "version not supported (supported: 1)");
    if (fl_model_byte(6) | fl_model_byte(7)) return fl_fail("FLM_BAD_FLAGS", "reserved flags not 0");
    hlen = rd32(8);
    if (hlen > 16777216u) return fl_fail("FLM_HEADER_TOO_LARGE", "header over 16 MiB");
    crc = rd32(12);
    dlen = (uint64_t)rd32(16) | ((uint64_t)rd32(20) << 32);
    /* 2. sizes */
    hdr_end = 24 + hlen;
    fl_rd.hdr_end = hdr_end;
    data_off = (hdr_end + 63u) & ~63u;
    if (size < data_off) return fl_fail("FLM_HEADER_TRUNCATED", "the file ends before the header and its padding");
    if ((uint64_t)data_off + dlen != size) return fl_fail("FLM_FILE_SIZE_MISMATCH", "file length is not data_offset + data_len");
    data_len = (uint32_t)dlen;
    /* 3. CRC */
    {
        uint32_t c = 0xFFFFFFFFu, off = 24;
        if (fl_m.mp) c = fl_crc32_update(c, fl_m.mp + 24, size - 24);
        else {
            uint8_t buf[32];
            while (off < size) {
                uint32_t n = size - off;
                if (n > sizeof buf) n = sizeof buf;
                port_model_read(off, buf, (uint16_t)n);
                c = fl_crc32_update(c, buf, n);
                off += n;
            }
        }
        if ((c ^ 0xFFFFFFFFu) != crc) return fl_fail("FLM_CRC_MISMATCH", "CRC32 differs");
    }
    /* 4. header padding */
    for (i = hdr_end; i < data_off; i++) if (fl_model_byte(i)) return fl_fail("FLM_BAD_PADDING", "header padding not zero");
    /* 5. msgpack subset, then fl_schema */
    fl_src_model(&s, 24, hdr_end);
    {
        fl_src t = s;
        mp_item h;
        fl_src t2 = s;
        if (mp_skip(&t, 1, 0) || t.pos != hdr_end) return fl_fail("FLM_HEADER_DECODE", "header is not one value of the msgpack subset");
        if (mp_head(&t2, &h) || h.type != MP_MAP) return fl_schema("header is not a map");
    }
    if (mp_head(&s, &top)) return fl_schema("header");
    for (i = 0; i < top.u; i++) {
        uint32_t bit = 0, *pos = NULL;
        if (fl_key(&s, &k)) return fl_fail("FLM_HEADER_DECODE", "non-string key");
        if (mp_str_eq(&s, &k, "graph")) { bit = 1; pos = &pos_graph; }
        else if (mp_str_eq(&s, &k, "tensors")) { bit = 2; pos = &pos_tensors; }
        else if (mp_str_eq(&s, &k, "metadata")) { bit = 4; pos = &pos_meta; }
        else if (mp_str_eq(&s, &k, "memory_plan")) { bit = 8; pos = &pos_plan; }
        if (pos) {
            if (seen & bit) return fl_fail("FLM_HEADER_DECODE", "duplicate key");
            seen |= bit;
            *pos = s.pos;
        }
        if (mp_skip(&s, 0, 1)) return fl_fail("FLM_HEADER_DECODE", "header");
    }
    if ((seen & 7) != 7) return fl_schema("header misses graph, tensors or metadata");
    /* an int8-full model (metadata quant.int8_full) known before the tensors: its weights'
     * per-channel f32 scales are not kept in the tables (its kernels use the integer multipliers);
     * the metadata is checked in step 6, a malformed map here only leaves the flag unset */
#if FL_INT8_FULL
    {
        mp_item mm, mk;
        s.pos = pos_meta;
        if (!mp_head(&s, &mm) && mm.type == MP_MAP)
            for (i = 0; i < mm.u; i++) {
                if (fl_key(&s, &mk)) break;
                if (mp_str_eq(&s, &mk, "quant.int8_full")) { fl_m.int8_full = 1; break; }
                if (mp_skip(&s, 0, 2)) break;
            }
    }
#endif
    /* tensors */
    {
        mp_item a;
        s.pos = pos_tensors;
        if (mp_head(&s, &a) || a.type != MP_ARRAY) return fl_schema("tensors is not a list");
        if (a.u > 0x7FFF) return fl_fail("TOO_LARGE", "too many tensors");
        fl_m.ntensors = (uint16_t)a.u;
        fl_m.tensors = (fl_tensor *)fl_tab_alloc((uint32_t)a.u * sizeof(fl_tensor));
        fl_rd.tn = (fl_nm *)fl_prep_alloc((uint32_t)a.u * sizeof(fl_nm));
        if ((!fl_m.tensors || !fl_rd.tn) && a.u) return fl_fail("TOO_LARGE", "model tables do not fit the arena");
        for (i = 0; i < a.u; i++) if (fl_read_tensor(&s, &fl_m.tensors[i])) return -1;
    }
    /* graph */
    {
        fl_src g;
        fl_src_model(&g, 24, hdr_end);
        g.pos = pos_graph;
        if (fl_count_nodes(g, &nnodes)) return -1;
        if (nnodes > 0x7FFF) return fl_fail("TOO_LARGE", "too many nodes");
        if (nnodes == 0) return fl_fail("MODEL_INVALID", "the graph has no nodes");
        fl_m.nnodes = (uint16_t)nnodes;
        fl_m.nodes = (fl_node *)fl_tab_alloc(nnodes * sizeof(fl_node));
        fl_m.values = (fl_value *)fl_tab_alloc((nnodes + 1) * sizeof(fl_value));
        fl_rd.nr = (fl_node_rd *)fl_prep_alloc(nnodes * sizeof(fl_node_rd));
        fl_rd.vr = (fl_value_rd *)fl_prep_alloc((nnodes + 1) * sizeof(fl_value_rd));
        if (!fl_m.nodes || !fl_m.values || !fl_rd.nr || !fl_rd.vr) return fl_fail("TOO_LARGE", "model tables do not fit the arena");
        fl_m.nvalues = 1; /* values[0] is the graph input */
        fl_m.input = 0;
        /* name hashes of tensors (needed by read_node) */
        for (i = 0; i < fl_m.ntensors; i++) FL_TN(i)->hash = fl_name_hash(FL_TN(i)->at, FL_TN(i)->len);
        if (fl_read_graph(&g, nnodes)) return -1;
    }
    /* 6. metadata keys */
    {
        mp_item mm, mk;
        s.pos = pos_meta;
        if (mp_head(&s, &mm) || mm.type != MP_MAP) return fl_schema("metadata is not a map");
        for (i = 0; i < mm.u; i++) {
            if (fl_key(&s, &mk)) return fl_fail("FLM_BAD_METADATA", "metadata key");
            if (!fl_meta_key_ok(&s, &mk)) return fl_fail("FLM_BAD_METADATA", "metadata key is not dotted lower_snake_case");
            if (mp_str_eq(&s, &mk, "quant.int8_full")) { fl_m.q_meta = s.pos; fl_m.int8_full = 1; }
            if (mp_skip(&s, 0, 2)) return fl_fail("FLM_BAD_METADATA", "metadata value");
        }
    }
    /* 7. tensors in table order */
    {
        uint32_t expect = 0;
        for (i = 0; i < fl_m.ntensors; i++) {
            fl_tensor *t = &fl_m.tensors[i];
            const fl_nm *nm = FL_TN(i);
            uint32_t j, bytes;
            for (j = 0; j < i; j++)
                if (FL_TN(j)->hash == nm->hash && fl_name_eq(FL_TN(j)->at, FL_TN(j)->len, nm->at, nm->len))
                    return fl_fail_name("FLM_DUPLICATE_TENSOR", "two tensors with one name", nm->at, nm->len);
            if (!t->inner) return fl_fail_name("FLM_LENGTH_MISMATCH", "length is not numel x dtype size", nm->at, nm->len);
            bytes = t->numel * (t->dtype == DT_F32 ? 4u : t->dtype == DT_F16 ? 2u : 1u);
            if (t->dtype == DT_I8) {
                uint32_t want;
                if (!t->scale && !t->nscale) {
                    /* quant absent: nscale 0 and no table */
                    return fl_fail_name("FLM_BAD_QUANT", "i8 tensor without scale", nm->at, nm->len);
                }
                if (t->axis == 0xFF) want = 1;
                else if (t->axis >= t->rank) return fl_fail_name("FLM_BAD_QUANT", "quant axis out of range", nm->at, nm->len);
                else want = t->dims[t->axis];
                if (t->nscale != want) return fl_fail_name("FLM_BAD_QUANT", "scale count does not match", nm->at, nm->len);
                for (j = 0; j < t->nscale; j++) {
                    float f = fl_scale(t, j);
                    if (!(f > 0) || f > 3.4028235e38f) return fl_fail_name("FLM_BAD_QUANT", "scale not finite and > 0", nm->at, nm->len);
                }
            } else if (t->scale || t->nscale || t->axis != 0xFF) {
                return fl_fail_name("FLM_BAD_QUANT", "float tensor with a scale", nm->at, nm->len);
            }
            if (t->data % 64) return fl_fail_name("FLM_MISALIGNED", "tensor offset not a multiple of 64", nm->at, nm->len);
            if (t->data != expect) return fl_fail_name("FLM_GAP_OR_OVERLAP", "tensor not at the aligned end of the previous one", nm->at, nm->len);
            if ((uint64_t)t->data + bytes > data_len) return fl_fail_name("FLM_OUT_OF_BOUNDS", "tensor ends past the data section", nm->at, nm->len);
            /* padding between the previous tensor and this one was checked via expect below */
            expect = (t->data + bytes + 63u) & ~63u;
            /* per-channel geometry */
            if (t->axis != 0xFF) {
                uint32_t in = 1;
                for (j = (uint32_t)t->axis + 1; j < t->rank; j++) in *= t->dims[j];
                t->inner = in;
            } else t->inner = t->numel ? t->numel : 1;
            if (i + 1 == fl_m.ntensors && t->data + bytes != data_len) return fl_fail("FLM_TRAILING_BYTES", "data section continues after the last tensor");
            /* the tensor's file offset */
            t->data += data_off;
        }
        if (fl_m.ntensors == 0 && data_len != 0) return fl_fail("FLM_TRAILING_BYTES", "data section without tensors");
        /* padding between tensors is zero */
        for (i = 0; i + 1 < fl_m.ntensors; i++) {
            fl_tensor *t = &fl_m.tensors[i];
            uint32_t end = t->data + t->numel * (t->dtype == DT_F32 ? 4u : t->dtype == DT_F16 ? 2u : 1u), p;
            for (p = end; p < fl_m.tensors[i + 1].data; p++) if (fl_model_byte(p)) return fl_fail("FLM_BAD_PADDING", "padding between tensors not zero");
        }
    }
    /* 8. graph */
    {
        uint16_t vi;
        for (i = 0; i < fl_m.nnodes; i++) {
            uint32_t j;
            const fl_nm *a = &fl_rd.nr[i].nm;
            for (j = 0; j < i; j++)
                if (fl_rd.nr[j].nm.hash == a->hash && fl_name_eq(fl_rd.nr[j].nm.at, fl_rd.nr[j].nm.len, a->at, a->len))
                    return fl_fail_name("FLM_BAD_GRAPH", "duplicate node name", a->at, a->len);
        }
        for (vi = 0; vi < fl_m.nvalues; vi++) {
            const fl_nm *v = &FL_VR(vi)->nm;
            if (fl_find_value(v->at, v->len, v->hash, vi) >= 0) return fl_fail_name("FLM_BAD_GRAPH", "value defined twice", v->at, v->len);
            if (fl_find_tensor(v->at, v->len, v->hash) >= 0) return fl_fail_name("FLM_BAD_GRAPH", "value named like a tensor", v->at, v->len);
        }
        for (i = 0; i < fl_m.nnodes; i++) {
            fl_node *n = &fl_m.nodes[i];
            const fl_node_rd *nr = &fl_rd.nr[i];
            uint32_t j;
            for (j = 0; j < n->nin && j < FL_MAX_IN; j++) {
                uint32_t h = fl_name_hash(nr->in_at[j], nr->in_len[j]);
                int v = fl_find_value(nr->in_at[j], nr->in_len[j], h, fl_m.nvalues);
                if (v >= 0 && FL_VR(v)->first < (int)i) n->in[j] = (uint16_t)v;
                else if (v < 0 && (v = fl_find_tensor(nr->in_at[j], nr->in_len[j], h)) >= 0) n->in[j] = (uint16_t)(v | FL_REF_TENSOR);
                else return fl_fail_name("FLM_BAD_GRAPH", "unresolved node input", nr->in_at[j], nr->in_len[j]);
            }
        }
        if (fl_rd.g_code) return fl_fail_name(fl_rd.g_code, fl_rd.g_msg, fl_rd.g_at, fl_rd.g_len);
        for (i = 0; i < fl_m.nnodes; i++) {
            fl_node *n = &fl_m.nodes[i];
            if (n->op >= OP_SVD_DENSE && n->op <= OP_TTL_DENSE && fl_role(n, ROLE_WEIGHT) != 0xFFFF)
                return fl_fail_name("FLM_DENSE_WEIGHT_IN_FACTOR_LAYER", "factorised node with a weight role", fl_rd.nr[i].nm.at, fl_rd.nr[i].nm.len);
        }
        {
            int v = fl_find_value(fl_rd.out_at, fl_rd.out_at_len, fl_name_hash(fl_rd.out_at, fl_rd.out_at_len), fl_m.nvalues);
            if (v < 0) return fl_fail_name("FLM_BAD_GRAPH", "unresolved graph output", fl_rd.out_at, fl_rd.out_at_len);
            fl_m.output = (uint16_t)v;
        }
    }
    /* device checks: limits, attributes, shapes (batch 1), scratch needs */
    if (fl_rd.attr_err) return fl_fail("MODEL_INVALID", fl_rd.attr_err);
    {
        fl_value *in = &fl_m.values[fl_m.input];
        uint32_t j;
        uint64_t ne = 1;
        for (j = 0; j < in->rank; j++) ne *= in->dims[j];
        /* u8 pixels up to max_frame bytes; f32 (max_frame / 4) unless read in place, after the plan */
        if (ne == 0 || ne > FL_MAX_FRAME) return fl_fail("TOO_LARGE", "model input larger than the frame buffer (max_frame bytes)");
        in->numel = (uint32_t)ne;
        fl_m.in_numel = in->numel;
    }
    for (i = 0; i < fl_m.nvalues; i++) FL_VR(i)->last = FL_VR(i)->first;
    for (i = 0; i < fl_m.nnodes; i++) {
        fl_node *n = &fl_m.nodes[i];
        uint32_t j;
        for (j = 0; j < n->nin && j < FL_MAX_IN; j++) if (!(n->in[j] & FL_REF_TENSOR)) FL_VR(n->in[j])->last = (int16_t)i;
        if (fl_op_prepare(n)) {
            const char *code = fl_err_code;
            char m[96];
            memcpy(m, fl_err_msg, sizeof m);
            fl_fail(code, "node ");
            fl_msg_name(fl_rd.nr[i].nm.at, fl_rd.nr[i].nm.len);
            fl_msg_cat(": ");
            fl_msg_cat(m);
            return -1;
        }
    }
    FL_VR(fl_m.output)->last = (int16_t)fl_m.nnodes;
    fl_m.values[fl_m.output].is_output = 1;
    if (fl_m.output == fl_m.input) return fl_fail("MODEL_INVALID", "the graph output is its input");
    fl_m.out_numel = fl_m.values[fl_m.output].numel;
    if (fl_m.out_numel * 4u + 48u > FL_MAX_RESPONSE) return fl_fail("TOO_LARGE", "model output larger than the response buffer");
    if (keep_attrs()) return -1;
    fl_m.tables_bytes = FL_ARENA_BYTES - fl_rd.tab_top;
    fl_m.prep_bytes = fl_rd.prep_top;
    /* the mcu plan */
    if (!pos_plan) return fl_fail("FLM_MEMORY_PLAN", "no memory_plan in the model (convert it again with a converter that writes an mcu plan)");
    s.pos = pos_plan;
    if (fl_plan_structure(s)) return -1;
    for (i = 0; i < fl_m.nnodes; i++) { fl_m.nodes[i].scratch_off = 0; fl_rd.nr[i].scratch_bytes = 0; }
    if (fl_check_plan(&s)) return -1;
    if (!fl_m.u8_inplace && fl_m.in_numel > FL_MAX_FRAME / 4u)
        return fl_fail("TOO_LARGE", "model input larger than the frame buffer (max_frame / 4 floats; its first layers cannot read u8 in place)");
    fl_m.size = size;
    fl_m.ready = 1;
    return 0;
}

int fl_prepare(uint32_t size) {
    int r = prepare_inner(size);
    if (r) fl_unprepare();
    return r;
}

