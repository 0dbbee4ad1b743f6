/* ops/attrs.c: the attributes an op reads at prepare beyond those fl_attrs holds (pad's pads and
 * mode, slice's bounds, resize's scales, ...), typed as runtime/format/attrs.ts has them. A wrong
 * type or length is MODEL_INVALID naming the attribute. */
#include "op.h"
#include "../model/model.h"

static int attr_bad(const char *key, const char *what) {
    fl_fail("MODEL_INVALID", key);
    fl_msg_cat(what);
    return -1;
}

/* a number (int or float), or a list of them */
static int numbers(const fl_node *n, const char *key, double *v, uint8_t cap, uint8_t *len, int want_list) {
    fl_src s;
    mp_item it;
    uint32_t i;
    int r = fl_attr_find(n, key, &s, &it);
    *len = 0;
    if (r <= 0) return r < 0 ? attr_bad(key, ": unreadable") : 0;
    if (!want_list) {
        if (mp_num(&it, &v[0]) || v[0] != v[0]) return attr_bad(key, " must be a number");
        *len = 1;
        return 1;
    }
    if (it.type != MP_ARRAY) return attr_bad(key, " must be a list");
    if (it.u > cap) return attr_bad(key, ": more values than the device allows");
    for (i = 0; i < it.u; i++) {
        mp_item e;
        if (mp_head(&s, &e) || mp_num(&e, &v[i]) || v[i] != v[i]) return attr_bad(key, " must be a list of numbers");
    }
    *len = (uint8_t)it.u;
    return 1;
}

int fl_attr_ints(const fl_node *n, const char *key, int32_t *v, uint8_t cap, uint8_t *len) {
    double d[2 * FL_MAX_RANK];
    uint8_t i;
    int r;
    if (cap > 2 * FL_MAX_RANK) cap = 2 * FL_MAX_RANK;
    r = numbers(n, key, d, cap, len, 1);
    if (r <= 0) return r;
    for (i = 0; i < *len; i++) {
        if (d[i] != (double)(int64_t)d[i] || d[i] < -2147483648.0 || d[i] > 2147483647.0) return attr_bad(key, " must be a list of 32-bit integers");
        v[i] = (int32_t)d[i];
    }
    return 1;
}

int fl_attr_floats(const fl_node *n, const char *key, float *v, uint8_t cap, uint8_t *len) {
    double d[2 * FL_MAX_RANK];
    uint8_t i;
    int r;
    if (cap > 2 * FL_MAX_RANK) cap = 2 * FL_MAX_RANK;
    r = numbers(n, key, d, cap, len, 1);
    if (r <= 0) return r;
    for (i = 0; i < *len; i++) {
        if (!(d[i] <= 3.4028234663852886e38 && d[i] >= -3.4028234663852886e38)) return attr_bad(key, " must be finite");
        v[i] = (float)d[i];
    }
    return 1;
}

int fl_attr_nums(const fl_node *n, const char *key, double *v, uint8_t cap, uint8_t *len) {
    return numbers(n, key, v, cap, len, 1);
}

int fl_attr_num(const fl_node *n, const char *key, double *v) {
    uint8_t len;
    return numbers(n, key, v, 1, &len, 0);
}

int fl_attr_str(const fl_node *n, const char *key, const char *const *choices, uint8_t count, uint8_t *idx) {
    fl_src s;
    mp_item it;
    uint8_t i;
    int r = fl_attr_find(n, key, &s, &it);
    if (r <= 0) return r < 0 ? attr_bad(key, ": unreadable") : 0;
    if (it.type != MP_STR) return attr_bad(key, " must be a string");
    for (i = 0; i < count; i++) if (mp_str_eq(&s, &it, choices[i])) { *idx = i; return 1; }
    return attr_bad(key, ": a value the device does not know");
}

void *fl_op_params(fl_node *n, uint32_t bytes) {
    uint8_t *p = (uint8_t *)fl_tab_alloc(bytes);
    if (!p) { fl_fail("TOO_LARGE", "model tables do not fit the arena"); return NULL; }
    n->d[7] = (uint32_t)(p - fl_arena);
    return p;
}
