/* model/plan.c: the stored "mcu" memory plan (docs/FORMAT.md 7) checked against the prepared
 * graph: placements, scratch, lifetimes and fused chains. */
#include <string.h>
#include "model.h"
#include "../ops.h"

/* ---- plan ------------------------------------------------------------------------------------ */
static int plan_fail(const char *msg) { return fl_fail("FLM_MEMORY_PLAN", msg); }

static int inplace_op(uint8_t op) {
    /* IN_PLACE_OPS of runtime/plan/types.ts */
    switch (op) {
    case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH: case OP_CLIP: case OP_FLATTEN: case OP_RESHAPE:
    case OP_IDENTITY: case OP_HARD_SIGMOID: case OP_HARD_SWISH: case OP_PRELU: case OP_GELU: case OP_ERF: case OP_SQRT:
    case OP_EXP: case OP_LOG: case OP_ABS: case OP_RECIPROCAL: case OP_POW: return 1;
    default: return 0;
    }
}

static int read_plan_entries(fl_src *s, int scratch, uint32_t align) {
    mp_item a;
    uint32_t j;
    if (mp_head(s, &a) || a.type != MP_ARRAY) return plan_fail("plan entries are not a list");
    for (j = 0; j < a.u; j++) {
        mp_item e, k;
        uint32_t x, seen = 0, at = 0, off = 0, bytes = 0, node = 0;
        uint16_t len = 0;
        double v, first = 0, last = 0;
        int external = 0, fused = 0;
        if (mp_head(s, &e) || e.type != MP_MAP) return plan_fail("plan entry is not a map");
        for (x = 0; x < e.u; x++) {
            if (fl_key(s, &k)) return plan_fail("plan entry key");
            if (!scratch && mp_str_eq(s, &k, "name")) { if (fl_rd_name(s, &at, &len)) return plan_fail("plan value name"); seen |= 1; }
            else if (scratch && mp_str_eq(s, &k, "node")) { if (fl_rd_int(s, 0, 65535, &v)) return plan_fail("plan scratch node"); node = (uint32_t)v; seen |= 1; }
            else if (mp_str_eq(s, &k, "offset")) { if (fl_rd_int(s, 0, 4294967295.0, &v)) return plan_fail("plan offset"); off = (uint32_t)v; seen |= 2; }
            else if (mp_str_eq(s, &k, "bytes")) { if (fl_rd_int(s, 0, 4294967295.0, &v)) return plan_fail("plan bytes"); bytes = (uint32_t)v; seen |= 4; }
            else if (!scratch && mp_str_eq(s, &k, "first")) { if (fl_rd_int(s, -1, 65535, &first)) return plan_fail("plan first"); seen |= 8; }
            else if (!scratch && mp_str_eq(s, &k, "last")) { if (fl_rd_int(s, -1, 65535, &last)) return plan_fail("plan last"); seen |= 16; }
            else if (!scratch && mp_str_eq(s, &k, "external")) {
                mp_item b;
                if (mp_head(s, &b) || b.type != MP_BOOL) return plan_fail("plan external");
                external = (int)b.u;
            } else if (!scratch && mp_str_eq(s, &k, "fused")) {
                mp_item b;
                if (mp_head(s, &b) || b.type != MP_BOOL) return plan_fail("plan fused");
                fused = (int)b.u;
            } else if (mp_skip(s, 0, 3)) return plan_fail("plan entry");
        }
        if (scratch) {
            fl_node *n;
            if (seen != 7) return plan_fail("scratch entry misses a key");
            if (node >= fl_m.nnodes) return plan_fail("scratch entry names no node");
            n = &fl_m.nodes[node];
            if (FL_NR(n)->scratch_bytes || n->scratch_off == 0xFFFFFFFFu) return plan_fail("two scratch entries for one node");
            if (off % align) return plan_fail("scratch offset not aligned");
            if ((uint64_t)off + bytes > fl_m.plan_arena) return plan_fail("scratch entry ends outside the arena");
            n->scratch_off = off;
            FL_NR(n)->scratch_bytes = bytes;
            if (!bytes) n->scratch_off = 0xFFFFFFFFu; /* mark seen */
        } else {
            int vi;
            fl_value *val;
            fl_value_rd *vr;
            if (seen != 31) return plan_fail("value entry misses a key");
            vi = fl_find_value(at, len, fl_name_hash(at, len), fl_m.nvalues);
            if (vi < 0) return fl_fail_name("FLM_MEMORY_PLAN", "plan names an unknown value", at, len);
            val = &fl_m.values[vi];
            vr = FL_VR(vi);
            if (vr->have_plan) return fl_fail_name("FLM_MEMORY_PLAN", "two plan entries for one value", at, len);
            vr->have_plan = 1;
            if ((int)first != vr->first || (int)last != vr->last) return fl_fail_name("FLM_MEMORY_PLAN", "wrong lifetime for", at, len);
            if (fused) {
                /* an intermediate of a streamed chain: checked as a chain in fl_check_plan */
                if (external) return fl_fail_name("FLM_MEMORY_PLAN", "a value cannot be both external and fused", at, len);
                if (off || bytes) return fl_fail_name("FLM_MEMORY_PLAN", "a fused value has offset 0 and 0 bytes", at, len);
                val->fused = 1;
            } else if (external) {
                /* the graph input, or (checked below) a pure reshape of an external value */
                if (off || bytes) return fl_fail_name("FLM_MEMORY_PLAN", "an external value has offset 0 and 0 bytes", at, len);
                val->external = 1;
            } else {
                if ((uint16_t)vi == fl_m.input) return plan_fail("the graph input must be external in an mcu plan");
                if (off % align) return fl_fail_name("FLM_MEMORY_PLAN", "offset not aligned", at, len);
                /* f32 activations; int8 on the int8-full path, but for the output (dequantised in place) */
                if ((uint64_t)bytes < (uint64_t)val->numel * (fl_m.int8_full && !val->is_output ? 1u : 4u)) return fl_fail_name("FLM_MEMORY_PLAN", "too few bytes for", at, len);
                if ((uint64_t)off + bytes > fl_m.plan_arena) return fl_fail_name("FLM_MEMORY_PLAN", "value ends outside the arena", at, len);
            }
            val->off = off;
            vr->bytes = bytes;
        }
    }
    return 0;
}

/* The structure of the whole memory_plan (every plan, not only "mcu"), as the workstation's
 * reader checks it: required and allowed keys, types, ranges. */
static int plan_int(fl_src *s, double min) { double v; return fl_rd_int(s, min, MAX_SAFE, &v); }

/* keys: a string of '\0'-separated names; required bit i for names[i] in req */
static int plan_map(fl_src *s, const char *const *names, int n, uint32_t req, int (*val)(fl_src *, int)) {
    mp_item m, k;
    uint32_t i, seen = 0;
    if (mp_head(s, &m) || m.type != MP_MAP) return plan_fail("plan entry must be a map");
    for (i = 0; i < m.u; i++) {
        int j;
        if (fl_key(s, &k)) return plan_fail("plan key");
        for (j = 0; j < n; j++) if (mp_str_eq(s, &k, names[j])) break;
        if (j == n) return plan_fail("unknown key in memory_plan");
        if (seen & (1u << j)) return plan_fail("duplicate key in memory_plan");
        seen |= 1u << j;
        if (val(s, j)) return -1;
    }
    if ((seen & req) != req) return plan_fail("missing key in memory_plan");
    return 0;
}

static int plan_list(fl_src *s, uint32_t max, const char *const *names, int n, uint32_t req, int (*val)(fl_src *, int)) {
    mp_item a;
    uint32_t i;
    if (mp_head(s, &a) || a.type != MP_ARRAY) return plan_fail("memory_plan list must be an array");
    if (a.u > max) return plan_fail("memory_plan list too long");
    for (i = 0; i < a.u; i++) if (plan_map(s, names, n, req, val)) return -1;
    return 0;
}

static const char *const pv_names[] = { "name", "offset", "bytes", "first", "last", "external", "fused" };
static int pv_val(fl_src *s, int j) {
    if (j == 0) { uint32_t at; uint16_t len; return fl_rd_name(s, &at, &len) ? plan_fail("plan value name") : 0; }
    if (j == 5) { mp_item b; return mp_head(s, &b) || b.type != MP_BOOL ? plan_fail("plan external must be a boolean") : 0; }
    if (j == 6) { mp_item b; return mp_head(s, &b) || b.type != MP_BOOL ? plan_fail("plan fused must be a boolean") : 0; }
    return plan_int(s, j >= 3 ? -1 : 0) ? plan_fail("plan value field must be an integer in range") : 0;
}
static const char *const ps_names[] = { "node", "offset", "bytes" };
static int ps_val(fl_src *s, int j) { (void)j; return plan_int(s, 0) ? plan_fail("plan scratch field must be an integer >= 0") : 0; }
static const char *const pst_names[] = { "node", "use", "rows" };
static int pst_val(fl_src *s, int j) {
    if (j == 1) {
        mp_item u;
        fl_src t = *s;
        if (mp_head(&t, &u) || u.type != MP_STR || !(mp_str_eq(s, &u, "contract") || mp_str_eq(s, &u, "rebuild"))) return plan_fail("plan strategy use must be contract or rebuild");
        *s = t;
        return 0;
    }
    return plan_int(s, 0) ? plan_fail("plan strategy field must be an integer >= 0") : 0;
}
static const char *const pp_names[] = { "profile", "batch", "align", "arena", "values", "scratch", "peak_scratch", "strategy" };
static int pp_val(fl_src *s, int j) {
    double v;
    switch (j) {
    case 0: { uint32_t at; uint16_t len; return fl_rd_name(s, &at, &len) ? plan_fail("plan profile must be a non-empty string") : 0; }
    case 1: return plan_int(s, 1) ? plan_fail("plan batch must be an integer >= 1") : 0;
    case 2:
        if (fl_rd_int(s, 4, MAX_SAFE, &v)) return plan_fail("plan align must be an integer >= 4");
        if (v > 4294967295.0 || ((uint32_t)v & ((uint32_t)v - 1))) return plan_fail("plan align is not a power of two");
        return 0;
    case 3: case 6: return plan_int(s, 0) ? plan_fail("plan size must be an integer >= 0") : 0;
    case 4: return plan_list(s, 65536, pv_names, 7, 31, pv_val);
    case 5: return plan_list(s, 65536, ps_names, 3, 7, ps_val);
    default: return plan_list(s, 65536, pst_names, 3, 7, pst_val);
    }
}
static const char *const mp_names[] = { "version", "plans" };
static int mp_val(fl_src *s, int j) {
    if (j == 0) { double v; return fl_rd_int(s, -MAX_SAFE, MAX_SAFE, &v) || v != 1 ? plan_fail("memory_plan version is not 1") : 0; }
    return plan_list(s, 8, pp_names, 8, 127, pp_val);
}

int fl_plan_structure(fl_src s) { return plan_map(&s, mp_names, 2, 3, mp_val); }

/* Fused values (docs/FORMAT.md section 7): each is read by one node only, the next one, as its
 * only input; the chains they make are producer -> [activation] -> consumer with a producer and
 * consumer this firmware streams (fl_chain_supported). Sets every node's span (the chain's first
 * and last node) for the overlap rule and for eval. */
/* lifetimes widened over fused chains: a chain runs as one step */
static int span_first(int first) { return first < 0 ? first : (int)fl_m.nodes[first].span_lo; }
static int span_last(int last) { return last >= (int)fl_m.nnodes ? last : (int)fl_rd.nr[last].span_hi; }

static int check_chains(void) {
    uint32_t i;
    for (i = 0; i < fl_m.nnodes; i++) { fl_m.nodes[i].span_lo = (uint16_t)i; fl_rd.nr[i].span_hi = (uint16_t)i; }
    for (i = 0; i < fl_m.nvalues; i++) {
        const fl_value *v = &fl_m.values[i];
        const fl_value_rd *vr = FL_VR(i);
        uint32_t k, j, readers = 0;
        if (!v->fused) continue;
        if (i == fl_m.input || v->is_output || vr->first < 0) return fl_fail_name("FLM_MEMORY_PLAN", "a graph input or output cannot be fused", vr->nm.at, vr->nm.len);
        for (k = 0; k < fl_m.nnodes; k++)
            for (j = 0; j < fl_m.nodes[k].nin && j < FL_MAX_IN; j++) if (fl_m.nodes[k].in[j] == (uint16_t)i) readers++;
        if (readers != 1 || vr->last != vr->first + 1 || fl_m.nodes[vr->last].nin != 1)
            return fl_fail_name("FLM_MEMORY_PLAN", "a fused value must be the only input of the next node and read by it alone", vr->nm.at, vr->nm.len);
    }
    for (i = 0; i < fl_m.nnodes; i++) {
        fl_node *c = &fl_m.nodes[i], *p;
        uint32_t lo, k;
        if (fl_m.values[c->out].fused || (c->in[0] & FL_REF_TENSOR) || !fl_m.values[c->in[0]].fused) continue;
        /* c consumes a chain: walk back over at most one activation to the producer */
        lo = i - 1;
        p = &fl_m.nodes[lo];
        if (fl_chain_act(p->op) && !(p->in[0] & FL_REF_TENSOR) && fl_m.values[p->in[0]].fused) p = &fl_m.nodes[--lo];
        if (p->nin != 1 || (!(p->in[0] & FL_REF_TENSOR) && fl_m.values[p->in[0]].fused))
            return fl_fail_name("FLM_MEMORY_PLAN", "a fused chain is producer, at most one activation, consumer", FL_NR(c)->nm.at, FL_NR(c)->nm.len);
        if (!fl_chain_supported(p->op, c->op) || (FL_INT8_FULL && fl_m.int8_full && (c->op == OP_DENSE || (lo + 1 < i && fl_m.nodes[lo + 1].op != OP_RELU))))
            return fl_fail_name("FLM_MEMORY_PLAN", "this firmware does not stream the fused chain ending at", FL_NR(c)->nm.at, FL_NR(c)->nm.len);
        /* the int8-full chain computes each conv output once (fl_q_chain): no work to bound */
        if (!(FL_INT8_FULL && fl_m.int8_full) && fl_chain_work(p, c)) return -1;
        for (k = lo; k <= i; k++) { fl_m.nodes[k].span_lo = (uint16_t)lo; fl_rd.nr[k].span_hi = (uint16_t)i; }
    }
    /* every fused value lies inside a chain (an activation with a fused output that no consumer
     * reached, or a fused value read by a node of another kind, is not one) */
    for (i = 0; i < fl_m.nvalues; i++) {
        const fl_value_rd *vr = FL_VR(i);
        if (fl_m.values[i].fused && fl_rd.nr[vr->first].span_hi == (uint16_t)vr->first)
            return fl_fail_name("FLM_MEMORY_PLAN", "a fused value outside a chain this firmware streams", vr->nm.at, vr->nm.len);
    }
    return 0;
}

int fl_check_plan(fl_src *s) {
    mp_item m, k;
    uint32_t i;
    int found = 0;
    if (mp_head(s, &m) || m.type != MP_MAP) return plan_fail("memory_plan is not a map");
    for (i = 0; i < m.u; i++) {
        if (fl_key(s, &k)) return plan_fail("memory_plan key");
        if (mp_str_eq(s, &k, "plans")) {
            mp_item a;
            uint32_t j;
            if (mp_head(s, &a) || a.type != MP_ARRAY) return plan_fail("plans is not a list");
            for (j = 0; j < a.u; j++) {
                /* find profile first: scan the plan map once for profile/batch/align/arena */
                fl_src probe = *s;
                mp_item pm, pk;
                uint32_t x, align = 0, arena = 0, seen = 0;
                double v;
                int mcu = 0;
                if (mp_head(&probe, &pm) || pm.type != MP_MAP) return plan_fail("plan is not a map");
                for (x = 0; x < pm.u; x++) {
                    if (fl_key(&probe, &pk)) return plan_fail("plan key");
                    if (mp_str_eq(&probe, &pk, "profile")) {
                        mp_item pv;
                        fl_src t = probe;
                        if (mp_head(&t, &pv)) return plan_fail("plan profile");
                        mcu = mp_str_eq(&probe, &pv, "mcu");
                        probe = t;
                    } else if (mp_str_eq(&probe, &pk, "batch")) {
                        if (fl_rd_int(&probe, 0, MAX_SAFE, &v)) return plan_fail("plan batch");
                        if (v != 1) seen |= 0x100;
                        seen |= 1;
                    } else if (mp_str_eq(&probe, &pk, "align")) {
                        if (fl_rd_int(&probe, 0, 65536, &v)) return plan_fail("plan align");
                        align = (uint32_t)v; seen |= 2;
                    } else if (mp_str_eq(&probe, &pk, "arena")) {
                        if (fl_rd_int(&probe, 0, 4294967295.0, &v)) return plan_fail("plan arena");
                        arena = (uint32_t)v; seen |= 4;
                    } else if (mp_skip(&probe, 0, 3)) return plan_fail("plan");
                }
                if (!mcu || found) { if (mp_skip(s, 0, 2)) return plan_fail("plan"); continue; }
                found = 1;
                if ((seen & 7) != 7) return plan_fail("mcu plan misses batch, align or arena");
                if (seen & 0x100) return plan_fail("mcu plan batch is not 1");
                if (align < 4 || (align & (align - 1))) return plan_fail("plan align is not a power of two >= 4");
                fl_m.plan_arena = arena;
                if ((uint64_t)arena + fl_m.tables_bytes > FL_ARENA_BYTES) {
                    fl_fail("TOO_LARGE", "plan arena ");
                    fl_msg_uint(arena); fl_msg_cat(" + tables "); fl_msg_uint(fl_m.tables_bytes);
                    fl_msg_cat(" > arena "); fl_msg_uint(FL_ARENA_BYTES);
                    return -1;
                }
                /* now read the entries */
                if (mp_head(s, &pm)) return plan_fail("plan");
                for (x = 0; x < pm.u; x++) {
                    if (fl_key(s, &pk)) return plan_fail("plan key");
                    if (mp_str_eq(s, &pk, "values")) { if (read_plan_entries(s, 0, align)) return -1; }
                    else if (mp_str_eq(s, &pk, "scratch")) { if (read_plan_entries(s, 1, align)) return -1; }
                    else if (mp_str_eq(s, &pk, "strategy")) {
                        /* the firmware's kernels contract through the factors; a plan sized for
                         * rebuilt weight tiles is not for them */
                        mp_item sa, e, ek;
                        uint32_t x2, y2;
                        if (mp_head(s, &sa)) return plan_fail("plan strategy");
                        for (x2 = 0; x2 < sa.u; x2++) {
                            if (mp_head(s, &e)) return plan_fail("plan strategy");
                            for (y2 = 0; y2 < e.u; y2++) {
                                if (fl_key(s, &ek)) return plan_fail("plan strategy");
                                if (mp_str_eq(s, &ek, "use")) {
                                    mp_item u;
                                    fl_src t2 = *s;
                                    if (mp_head(&t2, &u)) return plan_fail("plan strategy");
                                    if (!mp_str_eq(s, &u, "contract")) return plan_fail("the firmware runs only the contract strategy");
                                    *s = t2;
                                } else if (mp_skip(s, 0, 4)) return plan_fail("plan strategy");
                            }
                        }
                    }
                    else if (mp_skip(s, 0, 3)) return plan_fail("plan");
                }
            }
        } else if (mp_skip(s, 0, 2)) return plan_fail("memory_plan");
    }
    if (!found) return plan_fail("no mcu plan in the model (convert it again with a converter that writes one)");
    /* coverage, external values, scratch sizes, overlap */
    for (i = 0; i < fl_m.nvalues; i++) {
        fl_value *v = &fl_m.values[i];
        const fl_value_rd *vr = FL_VR(i);
        if (!vr->have_plan) return fl_fail_name("FLM_MEMORY_PLAN", "no plan entry for", vr->nm.at, vr->nm.len);
        if (v->external && i != fl_m.input) {
            /* values are in definition order, so the producer's input is already known */
            fl_node *n = &fl_m.nodes[vr->first];
            if (!(n->op == OP_FLATTEN || n->op == OP_RESHAPE || n->op == OP_IDENTITY) || (n->in[0] & FL_REF_TENSOR) || !fl_m.values[n->in[0]].external)
                return fl_fail_name("FLM_MEMORY_PLAN", "only the graph input and pure reshapes of it may be external", vr->nm.at, vr->nm.len);
        }
        if (v->is_output && v->external) return plan_fail("the graph output cannot be external");
    }
    if (check_chains()) return -1;
    /* u8 input read in place: every reader of an external value can take u8 pixels */
    fl_m.u8_inplace = 1;
    for (i = 0; i < fl_m.nnodes; i++) {
        fl_node *n = &fl_m.nodes[i];
        uint32_t j;
        for (j = 0; j < n->nin && j < FL_MAX_IN; j++) {
            if ((n->in[j] & FL_REF_TENSOR) || !fl_m.values[n->in[j]].external) continue;
            if (!(n->op == OP_DENSE || n->op == OP_SVD_DENSE || n->op == OP_FLEXACT || n->op == OP_FLATTEN || n->op == OP_RESHAPE || n->op == OP_IDENTITY)) fl_m.u8_inplace = 0;
        }
    }
#if FL_INT8_FULL
    /* the int8-full path quantises u8 pixels straight into its int8 input (fl_q_input): any first layer */
    if (fl_m.int8_full) fl_m.u8_inplace = 1;
#endif
    fl_m.peak_scratch = 0;
    for (i = 0; i < fl_m.nnodes; i++) {
        fl_node *n = &fl_m.nodes[i];
        fl_node_rd *nr = &fl_rd.nr[i];
        if (n->scratch_off == 0xFFFFFFFFu) { n->scratch_off = 0; nr->scratch_bytes = 0; }
        if (nr->scratch_bytes < n->scratch_need) {
            fl_fail_name("FLM_MEMORY_PLAN", "scratch too small for node", nr->nm.at, nr->nm.len);
            fl_msg_cat(" need "); fl_msg_uint(n->scratch_need);
            return -1;
        }
        if (nr->scratch_bytes > fl_m.peak_scratch) fl_m.peak_scratch = nr->scratch_bytes;
    }
    /* pairwise overlap of live buffers: values (not external) and scratch */
    {
        uint32_t nb = (uint32_t)fl_m.nvalues + fl_m.nnodes, a, b;
        for (a = 0; a < nb; a++) {
            uint32_t ao, ab; int af, al;
            if (a < fl_m.nvalues) { fl_value *v = &fl_m.values[a]; fl_value_rd *vr = FL_VR(a); if (v->external || !vr->bytes) continue; ao = v->off; ab = vr->bytes; af = span_first(vr->first); al = span_last(vr->last); }
            else { fl_node *n = &fl_m.nodes[a - fl_m.nvalues]; fl_node_rd *nr = FL_NR(n); if (!nr->scratch_bytes) continue; ao = n->scratch_off; ab = nr->scratch_bytes; af = n->span_lo; al = nr->span_hi; }
            for (b = a + 1; b < nb; b++) {
                uint32_t bo, bb; int bf, bl;
                if (b < fl_m.nvalues) { fl_value *v = &fl_m.values[b]; fl_value_rd *vr = FL_VR(b); if (v->external || !vr->bytes) continue; bo = v->off; bb = vr->bytes; bf = span_first(vr->first); bl = span_last(vr->last); }
                else { fl_node *n = &fl_m.nodes[b - fl_m.nvalues]; fl_node_rd *nr = FL_NR(n); if (!nr->scratch_bytes) continue; bo = n->scratch_off; bb = nr->scratch_bytes; bf = n->span_lo; bl = nr->span_hi; }
                if (af > bl || bf > al) continue;                 /* lifetimes disjoint */
                if (ao >= bo + bb || bo >= ao + ab) continue;     /* bytes disjoint */
                /* in place: b (or a) is the output of node n, the other its input read last there */
                if (a < fl_m.nvalues && b < fl_m.nvalues) {
                    fl_value_rd *ra = FL_VR(a), *rb = FL_VR(b);
                    uint32_t ii = ra->first < rb->first ? a : b, oi = ra->first < rb->first ? b : a;
                    fl_value_rd *in = FL_VR(ii), *out = FL_VR(oi);
                    if (out->first >= 0 && in->last == out->first && fl_m.values[ii].off == fl_m.values[oi].off && out->bytes <= in->bytes) {
                        fl_node *n = &fl_m.nodes[out->first];
                        if (inplace_op(n->op) && n->span_lo == fl_rd.nr[out->first].span_hi && n->nin >= 1 && !(n->in[0] & FL_REF_TENSOR) && n->in[0] == ii &&
                            in->first <= out->first && out->last >= in->last) continue;
                    }
                }
                if (a < fl_m.nvalues) return fl_fail_name("FLM_MEMORY_PLAN", "live buffers overlap at", FL_VR(a)->nm.at, FL_VR(a)->nm.len);
                return plan_fail("live buffers overlap");
            }
        }
    }
    return 0;
}

