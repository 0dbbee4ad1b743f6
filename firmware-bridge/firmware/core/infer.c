/* infer.c: one inference on the input in the shared frame buffer, timed and counted; used by the
 * binary protocol (proto.c), the text dialect (mlperf.c) and Firmata (firmata.c). */
#include <string.h>
#include "fl.h"

fl_stats_t fl_stats;

void fl_expand_u8(const uint8_t *src, uint32_t n, float div) {
    float *x = (float *)(void *)fl_frame;
    uint8_t *tail = fl_frame + FL_MAX_FRAME - n;
    uint32_t i;
    memmove(tail, src, n);
    for (i = 0; i < n; i++) x[i] = (float)tail[i] / div;
}

static void timed_u8(const uint8_t *u8, float div, uint32_t *us, uint32_t *cycles) {
    uint32_t t0 = port_micros(), c0 = port_cycles(), used;
    fl_eval_u8(u8, div);
    *cycles = port_cycles() - c0;
    *us = port_micros() - t0;
    fl_stats.infers++;
    used = fl_arena_used();
    if (used > fl_stats.arena_peak) fl_stats.arena_peak = used;
}

int fl_infer_input(const uint8_t *src, uint32_t n, int is_u8, float div, uint32_t *us, uint32_t *cycles) {
    if (!fl_m.ready) { fl_fail("NO_MODEL", "no prepared model"); return -1; }
    if (is_u8) {
        if (n != fl_m.in_numel) { fl_fail("BAD_INPUT", "u8 input size differs from the model input"); return -1; }
        if (fl_m.u8_inplace) {
            if (src != fl_frame) memmove(fl_frame, src, n);
            timed_u8(fl_frame, div, us, cycles);
            return 0;
        }
        if (n * 4u > FL_MAX_FRAME) { fl_fail("BAD_INPUT", "this model needs the u8 input widened to f32: larger than max_frame"); return -1; }
        fl_expand_u8(src, n, div);
    } else {
        if (n != fl_m.in_numel * 4u) { fl_fail("BAD_INPUT", "f32 input size differs from the model input"); return -1; }
        if (src != fl_frame) memmove(fl_frame, src, n);
    }
    fl_infer_timed((const float *)(const void *)fl_frame, us, cycles);
    return 0;
}

void fl_infer_timed(const float *x, uint32_t *us, uint32_t *cycles) {
    uint32_t t0 = port_micros(), c0 = port_cycles(), used;
    fl_eval(x);
    *cycles = port_cycles() - c0;
    *us = port_micros() - t0;
    fl_stats.infers++;
    used = fl_arena_used();
    if (used > fl_stats.arena_peak) fl_stats.arena_peak = used;
}
