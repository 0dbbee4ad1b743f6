/* ops/weights.c: weights read as f32 as the kernels meet them: f32, f16, or int8 with a per-tensor
 * or per-channel scale, w = f32(q * scale), the value the workstation's reader widens them to. */
#include <math.h>
#include "op.h"

static float fl_f16(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, u;
    union { uint32_t u; float f; } c;
    if (e == 0) {
        if (m == 0) u = s;
        else { /* subnormal: m * 2^-24 exactly */
            c.f = (float)m * 5.9604644775390625e-8f;
            return s ? -c.f : c.f;
        }
    } else if (e == 31) u = s | 0x7F800000u | (m << 13);
    else u = s | ((e + 112) << 23) | (m << 13);
    c.u = u;
    return c.f;
}

float fl_wget(const fl_tensor *t, uint32_t i) {
    const uint8_t *mp = fl_m.mp;
    uint8_t b[4];
    switch (t->dtype) {
    case DT_F32: {
        float f;
        if (mp) memcpy(&f, mp + t->data + 4u * i, 4);
        else { port_model_read(t->data + 4u * i, b, 4); memcpy(&f, b, 4); }
        return f;
    }
    case DT_F16:
        if (mp) return fl_f16((uint16_t)(mp[t->data + 2u * i] | (mp[t->data + 2u * i + 1] << 8)));
        port_model_read(t->data + 2u * i, b, 2);
        return fl_f16((uint16_t)(b[0] | (b[1] << 8)));
    default: {
        int8_t q = mp ? (int8_t)mp[t->data + i] : (int8_t)fl_model_byte(t->data + i);
        float sc = fl_scale(t, t->axis == 0xFF ? 0u : (i / t->inner) % t->dims[t->axis]);
        return (float)q * sc;
    }
    }
}

/* The scale of int8 entry i and the end (<= end) of the run of entries that share it. */
static float scale_run(const fl_tensor *t, uint32_t i, uint32_t end, uint32_t *stop) {
    uint32_t blk;
    *stop = end;
    if (t->axis == 0xFF) return fl_scale(t, 0);
    blk = i / t->inner;
    if ((blk + 1) * t->inner < end) *stop = (blk + 1) * t->inner;
    return fl_scale(t, blk % t->dims[t->axis]);
}

/* sum_k w[off + k] * x[k], k < n */
float fl_wdot(const fl_tensor *t, uint32_t off, const float *x, uint32_t n) {
    const uint8_t *mp = fl_m.mp;
    float s = 0;
    uint32_t k;
    if (mp && t->dtype == DT_F32) {
        const uint8_t *p = mp + t->data + 4u * off;
        for (k = 0; k < n; k++) { float w; memcpy(&w, p + 4u * k, 4); s += w * x[k]; }
    } else if (t->dtype == DT_I8) {
        /* one scale per run of a channel; the bytes straight from memory or through the port */
        const int8_t *p = mp ? (const int8_t *)(mp + t->data) : NULL;
        uint32_t i = off, end = off + n;
        while (i < end) {
            uint32_t stop;
            float sc = scale_run(t, i, end, &stop);
            if (p) for (; i < stop; i++) s += ((float)p[i] * sc) * x[i - off];
            else for (; i < stop; i++) s += ((float)(int8_t)fl_model_byte(t->data + i) * sc) * x[i - off];
        }
    } else {
        for (k = 0; k < n; k++) s += fl_wget(t, off + k) * x[k];
    }
    return s;
}

/* sum_k w[off + k] * (u8[k] / div) */
float fl_wdot_u8(const fl_tensor *t, uint32_t off, const uint8_t *u8, uint32_t n, float div) {
    float s = 0;
    uint32_t k;
    if (t->dtype == DT_I8) {
        uint32_t i = off, end = off + n;
        while (i < end) {
            uint32_t stop;
            float sc = scale_run(t, i, end, &stop);
            for (; i < stop; i++) {
                int8_t q = fl_m.mp ? (int8_t)fl_m.mp[t->data + i] : (int8_t)fl_model_byte(t->data + i);
                s += ((float)q * sc) * ((float)u8[i - off] / div);
            }
        }
        return s;
    }
    for (k = 0; k < n; k++) s += fl_wget(t, off + k) * ((float)u8[k] / div);
    return s;
}

void fl_wrow(const fl_tensor *t, uint32_t first, uint32_t n, float *out) {
    const uint8_t *mp = fl_m.mp;
    uint32_t k;
    if (mp && t->dtype == DT_I8) {
        /* one scale per run of a channel, as fl_wdot */
        const int8_t *p = (const int8_t *)(mp + t->data);
        uint32_t i = first, end = first + n;
        while (i < end) {
            uint32_t stop;
            float sc = scale_run(t, i, end, &stop);
            for (; i < stop; i++) *out++ = (float)p[i] * sc;
        }
        return;
    }
    if (mp && t->dtype == DT_F32) { memcpy(out, mp + t->data + 4u * first, 4u * n); return; }
    for (k = 0; k < n; k++) out[k] = fl_wget(t, first + k);
}

void fl_add_bias(float *y, uint32_t rows, uint32_t outF, const fl_tensor *b) {
    uint32_t r, o;
    if (!b) return;
    for (o = 0; o < outF; o++) { float bv = fl_wget(b, o); for (r = 0; r < rows; r++) y[r * outF + o] += bv; }
}

/* Scale c of an int8 tensor (from the tables, or parsed from the header in the store). */
float fl_scale(const fl_tensor *t, uint32_t c) {
    fl_src s;
    mp_item it;
    if (t->scale) return t->scale[c];
    fl_src_model(&s, t->scale_at + 9u * c, t->scale_at + 9u * c + 9u);
    if (mp_head(&s, &it)) return 0; /* not reached: checked at prepare */
    return (float)it.f;
}
