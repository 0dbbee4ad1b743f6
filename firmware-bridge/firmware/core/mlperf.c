/* mlperf.c: the MLPerf Tiny / EEMBC text dialect (docs/PROTOCOL.md section 5). Commands end in
 * '%'; every answer is lines ending "\r\n", the last one "m-ready". The input buffer ("db") is the
 * frame buffer; "db <hex>" lines are decoded as they arrive, so they may be any length. */
#include <string.h>
#include "fl.h"

static char line[FL_TEXT_LINE];
static uint16_t llen;
static uint8_t overflow;
static uint8_t hex_mode, hex_bad, nib_have, nib;
static uint32_t db_len, db_have;
static uint8_t db_f32;      /* the buffer already holds the f32 input (u8 pixels were expanded) */
static uint8_t have_results;

void fl_text_reset(void) { llen = 0; overflow = 0; hex_mode = 0; nib_have = 0; }

static void ln(const char *s) { fl_puts(s); fl_puts("\r\n"); }
static void ready(void) { ln("m-ready"); }

static int hexv(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int parse_uint(const char **p, uint32_t *v) {
    uint32_t x = 0;
    int any = 0;
    while (**p == ' ') (*p)++;
    while (**p >= '0' && **p <= '9') {
        if (x > 429496728u) return -1;
        x = x * 10 + (uint32_t)(**p - '0');
        (*p)++;
        any = 1;
    }
    *v = x;
    return any ? 0 : -1;
}

static void print_results(void) {
    uint32_t i;
    const float *y = fl_output();
    fl_puts("m-results-[");
    for (i = 0; i < fl_m.out_numel; i++) {
        if (i) fl_puts(",");
        fl_put_float(y[i]);
    }
    ln("]");
}

/* one inference on the db buffer: u8 pixels (div 255) read in place or widened once to f32 at the
 * buffer's start (then kept as f32 for the next runs), or f32 LE as loaded */
static int run_once(uint32_t *us, uint32_t *cyc) {
    int r;
    if (db_f32) { fl_infer_timed((const float *)(const void *)fl_frame, us, cyc); return 0; }
    r = fl_infer_input(fl_frame, db_len, db_len == fl_m.in_numel, 255.0f, us, cyc);
    if (r) { fl_puts("e-["); fl_puts(fl_err_msg); ln("]"); return -1; }
    if (db_len == fl_m.in_numel && !fl_m.u8_inplace) db_f32 = 1;
    return 0;
}

static void cmd_infer(const char *p) {
    uint32_t n = 1, w = 0, i, t0, t1, us, cyc;
    if (parse_uint(&p, &n)) n = 1;
    if (parse_uint(&p, &w)) w = 0;
    if (!fl_m.ready) { ln("e-[no model: upload one first]"); return; }
    if (db_have != db_len || db_len == 0) { ln("e-[input buffer not loaded]"); return; }
    if (db_len != fl_m.in_numel && db_len != fl_m.in_numel * 4u) { ln("e-[input size is neither the model input's element count nor 4 times it]"); return; }
    if (w) {
        fl_puts("m-warmup-start-"); fl_put_uint(w); fl_puts("\r\n");
        for (i = 0; i < w; i++) if (run_once(&us, &cyc)) return;
        ln("m-warmup-done");
    }
    fl_puts("m-infer-start-"); fl_put_uint(n); fl_puts("\r\n");
    t0 = port_micros();
    fl_puts("m-lap-us-"); fl_put_uint(t0); fl_puts("\r\n");
    cyc = 0;
    for (i = 0; i < n; i++) { uint32_t c1; if (run_once(&us, &c1)) return; cyc += c1; }
    t1 = port_micros();
    fl_puts("m-lap-us-"); fl_put_uint(t1); fl_puts("\r\n");
    if (FL_PORT_HAS_CYCLES) { fl_puts("m-cycles-"); fl_put_uint(cyc); fl_puts("\r\n"); }
    ln("m-infer-done");
    have_results = 1;
    print_results();
}

static void run_line(void) {
    const char *p = line;
    line[llen] = 0;
    if (overflow) { ln("e-[command too long]"); ready(); return; }
    if (!strcmp(p, "name")) ln("m-name-dut-[factorlite]");
    else if (!strcmp(p, "profile")) {
        ln("m-profile-[factorlite " FL_FW_VERSION " " FL_BOARD_NAME "]");
        fl_puts("m-model-[");
        if (fl_m.ready) { fl_puts("flm-"); fl_put_uint(fl_m.size); fl_puts("-"); fl_put_uint(fl_m.in_numel); fl_puts("-"); fl_put_uint(fl_m.out_numel); }
        else fl_puts("none");
        ln("]");
    } else if (!strcmp(p, "timestamp")) { fl_puts("m-lap-us-"); fl_put_uint(port_micros()); fl_puts("\r\n"); }
    else if (!strncmp(p, "db load", 7)) {
        uint32_t n;
        p += 7;
        if (parse_uint(&p, &n) || n == 0) ln("e-[db load needs a byte count]");
        else if (n > FL_MAX_FRAME) {
            fl_puts("e-[db load "); fl_put_uint(n); fl_puts(" exceeds the buffer of "); fl_put_uint(FL_MAX_FRAME); ln(" bytes]");
        } else {
            db_len = n; db_have = 0; db_f32 = 0; have_results = 0;
            fl_puts("m-[Expecting "); fl_put_uint(n); ln(" bytes]");
        }
    } else if (!strcmp(p, "db print")) {
        uint32_t i;
        if (db_f32 && db_len == fl_m.in_numel) ln("e-[buffer was converted to f32 by infer; load it again]");
        else {
            fl_puts("m-buffer-");
            for (i = 0; i < db_have; i++) {
                static const char hx[] = "0123456789abcdef";
                char t[2];
                t[0] = hx[fl_frame[i] >> 4]; t[1] = hx[fl_frame[i] & 15];
                port_write((const uint8_t *)t, 2);
            }
            fl_puts("\r\n");
        }
    } else if (!strncmp(p, "db", 2) && hex_mode) {
        if (hex_bad) ln("e-[db data is not hex, or beyond the loaded size]");
        else if (db_have == db_len) ln("m-load-done");
    } else if (!strncmp(p, "infer", 5)) cmd_infer(p + 5);
    else if (!strcmp(p, "results")) {
        if (!have_results || !fl_m.ready) ln("e-[no results yet]");
        else print_results();
    } else {
        fl_puts("e-[Unknown command: "); fl_puts(p); ln("]");
    }
    ready();
}

void fl_text_byte(uint8_t c) {
    if (c == '%') {
        if (hex_mode && nib_have) hex_bad = 1;
        if (llen || hex_mode) run_line();
        fl_text_reset();
        return;
    }
    if (c == '\r' || c == '\n') { if (!llen && !hex_mode) return; }
    if (hex_mode) {
        int v = hexv((char)c);
        if (c == ' ' || c == '\r' || c == '\n') return;
        if (v < 0 || db_have >= db_len) { hex_bad = 1; return; }
        if (!nib_have) { nib = (uint8_t)v; nib_have = 1; }
        else { fl_frame[db_have++] = (uint8_t)(nib << 4 | v); nib_have = 0; db_f32 = 0; }
        return;
    }
    if ((size_t)llen + 1 >= sizeof line) { overflow = 1; return; }
    line[llen++] = (char)c;
    if (llen == 4 && !memcmp(line, "db ", 3) && hexv(line[3]) >= 0) {
        /* "db <hex>": decode as the bytes arrive */
        hex_mode = 1; hex_bad = 0; nib_have = 0;
        llen = 2;
        line[2] = 0;
        fl_text_byte((uint8_t)line[3]);
    }
}
