/* proto.c: the device side of docs/PROTOCOL.md: dialect split, COBS frames with CRC32, msgpack
 * bodies, sequence numbers with stored-response idempotence, the commands, the model store. */
#include <string.h>
#include "fl.h"
#include "ops.h"

static union { uint32_t a; uint8_t b[FL_MAX_RESPONSE]; } resp_store;
static uint8_t *resp = resp_store.b;
static uint16_t resp_len;          /* raw bytes of the stored response (0: none) */
static uint8_t last_seq, last_kind, have_last;
static uint32_t last_crc;

static fl_store_meta meta;
static uint8_t meta_ok;

enum { ST_IDLE, ST_FRAME };
static uint8_t st;
static uint32_t rx_len;
static uint8_t rx_over;
static uint32_t last_byte_us;
static uint32_t boot_ms_base;

/* ---- frames out ------------------------------------------------------------------------------ */
static void cobs_send(const uint8_t *raw, uint32_t n) {
    uint8_t z = 0;
    uint32_t i = 0;
    port_write(&z, 1);
    for (;;) {
        uint32_t j = i;
        uint8_t code;
        while (j < n && raw[j] != 0 && j - i < 254) j++;
        code = (uint8_t)(j - i + 1);
        port_write(&code, 1);
        if (j > i) port_write(raw + i, (uint16_t)(j - i));
        if (j >= n) break;            /* last block: no implied zero */
        i = (j - i == 254) ? j : j + 1; /* a 0xFF block implies no zero */
    }
    port_write(&z, 1);
}

static void send_stored(void) { if (resp_len) cobs_send(resp, resp_len); }

/* finish the response in resp (seq, kind, body of blen bytes), store and send it */
static void finish(uint8_t seq, uint8_t kind, uint16_t blen) {
    uint32_t c;
    resp[0] = seq;
    resp[1] = kind;
    c = fl_crc32(resp, 2u + blen);
    resp[2 + blen] = (uint8_t)c; resp[3 + blen] = (uint8_t)(c >> 8);
    resp[4 + blen] = (uint8_t)(c >> 16); resp[5 + blen] = (uint8_t)(c >> 24);
    resp_len = (uint16_t)(6u + blen);
    send_stored();
}

static void begin(mp_writer *w) { mpw_init(w, resp + 2, (uint16_t)(FL_MAX_RESPONSE - 6u)); }

static void send_error(uint8_t seq, const char *code, const char *msg) {
    mp_writer w;
    begin(&w);
    mpw_map(&w, 2);
    mpw_str(&w, "code"); mpw_str(&w, code);
    mpw_str(&w, "msg"); mpw_str(&w, msg);
    finish(seq, 0xFF, w.len);
}

static void send_body(uint8_t seq, uint8_t kind, mp_writer *w) {
    if (w->err) { send_error(seq, "BAD_REQUEST", "response too large for the device's buffer"); return; }
    finish(seq, (uint8_t)(kind | 0x80), w->len);
}

/* ---- request bodies -------------------------------------------------------------------------- */
typedef struct {
    uint8_t has_size, has_crc, has_off, has_data, has_id, has_x, has_dtype, has_div, u8;
    uint32_t size, crc, off, id;
    uint32_t data_at, data_len;
    double div;
} req_t;

static int rd_uint(fl_src *s, uint32_t *v) {
    mp_item it;
    if (mp_head(s, &it)) return -1;
    /* integers from their exact magnitude: a double is only 32 bits wide on AVR */
    if (it.type == MP_INT) { if (it.neg || it.u > 0xFFFFFFFFu) return -1; *v = (uint32_t)it.u; return 0; }
    if (mp_num(&it, &it.f) || it.f < 0 || it.f > 4294967295.0 || it.f != (double)(uint32_t)it.f) return -1;
    *v = (uint32_t)it.f;
    return 0;
}

static int parse_body(const uint8_t *b, uint32_t n, req_t *r) {
    fl_src s;
    mp_item m, k;
    uint32_t i;
    memset(r, 0, sizeof *r);
    if (n == 0) return 0;
    fl_src_mem(&s, b, n);
    if (mp_head(&s, &m)) return -1;
    if (m.type == MP_NIL) return s.pos == n ? 0 : -1;
    if (m.type != MP_MAP) return -1;
    for (i = 0; i < m.u; i++) {
        if (mp_head(&s, &k) || k.type != MP_STR) return -1;
        if (mp_str_eq(&s, &k, "size")) { if (rd_uint(&s, &r->size)) return -1; r->has_size = 1; }
        else if (mp_str_eq(&s, &k, "crc")) { if (rd_uint(&s, &r->crc)) return -1; r->has_crc = 1; }
        else if (mp_str_eq(&s, &k, "off")) { if (rd_uint(&s, &r->off)) return -1; r->has_off = 1; }
        else if (mp_str_eq(&s, &k, "id")) { if (rd_uint(&s, &r->id)) return -1; r->has_id = 1; }
        else if (mp_str_eq(&s, &k, "data") || mp_str_eq(&s, &k, "x")) {
            mp_item bin;
            int isx = mp_str_eq(&s, &k, "x");
            if (mp_head(&s, &bin) || bin.type != MP_BIN) return -1;
            r->data_at = bin.at; r->data_len = (uint32_t)bin.u;
            if (isx) r->has_x = 1; else r->has_data = 1;
        } else if (mp_str_eq(&s, &k, "dtype")) {
            mp_item t;
            if (mp_head(&s, &t) || t.type != MP_STR) return -1;
            if (mp_str_eq(&s, &t, "u8")) r->u8 = 1;
            else if (!mp_str_eq(&s, &t, "f32")) return -1;
            r->has_dtype = 1;
        } else if (mp_str_eq(&s, &k, "div")) {
            mp_item t;
            if (mp_head(&s, &t) || mp_num(&t, &r->div)) return -1;
            r->has_div = 1;
        } else if (mp_skip(&s, 0, 1)) return -1;
    }
    return s.pos == n ? 0 : -1;
}

/* ---- model store ------------------------------------------------------------------------------ */
static uint32_t store_crc(uint32_t size) {
    const uint8_t *p = port_model_ptr();
    uint32_t c = 0xFFFFFFFFu, off = 0;
    if (p) return fl_crc32_update(c, p, size) ^ 0xFFFFFFFFu;
    while (off < size) {
        uint8_t buf[32];
        uint32_t n = size - off > sizeof buf ? sizeof buf : size - off;
        port_model_read(off, buf, (uint16_t)n);
        c = fl_crc32_update(c, buf, n);
        off += n;
    }
    return c ^ 0xFFFFFFFFu;
}

static void save_meta(void) { meta.magic = FL_STORE_MAGIC; port_meta_save(&meta); meta_ok = 1; }


/* ---- commands ------------------------------------------------------------------------------- */
static void put_dims(mp_writer *w, const fl_value *v) {
    uint8_t i;
    mpw_array(w, v->rank);
    for (i = 0; i < v->rank; i++) mpw_uint(w, v->dims[i]);
}

static void cmd_hello(uint8_t seq) {
    mp_writer w;
    uint8_t i;
    begin(&w);
    mpw_map(&w, 12);
    mpw_str(&w, "proto"); mpw_uint(&w, FL_PROTO);
    mpw_str(&w, "fw"); mpw_str(&w, FL_FW_VERSION);
    mpw_str(&w, "board"); mpw_str(&w, FL_BOARD_NAME);
    mpw_str(&w, "boot"); mpw_uint(&w, port_boot_count());
    mpw_str(&w, "arena"); mpw_uint(&w, FL_ARENA_BYTES);
    mpw_str(&w, "flash"); mpw_uint(&w, port_model_capacity());
    mpw_str(&w, "max_frame"); mpw_uint(&w, FL_MAX_FRAME);
    mpw_str(&w, "clock_hz"); mpw_uint(&w, port_clock_hz());
    mpw_str(&w, "ops"); mpw_array(&w, fl_ops_count());
    for (i = 0; i < OP_COUNT; i++) if (fl_op_supported((uint8_t)i)) mpw_uint(&w, i);
    mpw_str(&w, "dtypes"); mpw_array(&w, 3); mpw_uint(&w, 0); mpw_uint(&w, 1); mpw_uint(&w, 2);
    mpw_str(&w, "model");
    if (meta_ok && meta.size) {
        mpw_map(&w, 3);
        mpw_str(&w, "size"); mpw_uint(&w, meta.size);
        mpw_str(&w, "crc"); mpw_uint(&w, meta.crc);
        mpw_str(&w, "ready"); mpw_bool(&w, meta.ready && fl_m.ready);
    } else mpw_nil(&w);
    mpw_str(&w, "cycles"); mpw_bool(&w, FL_PORT_HAS_CYCLES);
    send_body(seq, 0x01, &w);
}

static void reply_have(uint8_t seq, uint8_t kind) {
    mp_writer w;
    begin(&w);
    mpw_map(&w, 1);
    mpw_str(&w, "have"); mpw_uint(&w, meta.have);
    send_body(seq, kind, &w);
}

static void cmd_upload_begin(uint8_t seq, const req_t *r) {
    if (!r->has_size || !r->has_crc) { send_error(seq, "BAD_REQUEST", "upload_begin needs size and crc"); return; }
    if (r->size > port_model_capacity()) {
        char m[64];
        fl_err_msg[0] = 0;
        fl_msg_cat("model of "); fl_msg_uint(r->size); fl_msg_cat(" bytes > flash "); fl_msg_uint(port_model_capacity());
        memcpy(m, fl_err_msg, sizeof m); m[63] = 0;
        send_error(seq, "TOO_LARGE", m);
        return;
    }
    if (!(meta_ok && meta.size == r->size && meta.crc == r->crc)) {
        fl_unprepare();
        meta.size = r->size; meta.crc = r->crc; meta.have = 0; meta.ready = 0;
        save_meta();
    }
    reply_have(seq, 0x02);
}

static void cmd_upload_chunk(uint8_t seq, const req_t *r) {
    uint32_t end, i;
    const uint8_t *d = fl_frame + 2 + r->data_at;
    if (!r->has_off || !r->has_data) { send_error(seq, "BAD_REQUEST", "upload_chunk needs off and data"); return; }
    if (!meta_ok || !meta.size) { send_error(seq, "BAD_REQUEST", "no upload in progress"); return; }
    if (r->off > meta.have) {
        fl_err_msg[0] = 0; fl_msg_uint(meta.have);
        send_error(seq, "BAD_OFFSET", fl_err_msg);
        return;
    }
    end = r->off + r->data_len;
    if (end > meta.size || end < r->off) { send_error(seq, "BAD_OFFSET", "chunk ends past the model size"); return; }
    for (i = r->off; i < end && i < meta.have; i++) {
        uint8_t b;
        port_model_read(i, &b, 1);
        if (b != d[i - r->off]) { send_error(seq, "BAD_REQUEST", "chunk differs from the bytes already stored"); return; }
    }
    if (end > meta.have) {
        uint32_t from = meta.have;
        if (port_model_write(from, d + (from - r->off), (uint16_t)(end - from))) { send_error(seq, "BAD_REQUEST", "flash write failed"); return; }
        port_model_sync();
        if (meta.ready || fl_m.ready) fl_unprepare();
        meta.ready = 0;
        meta.have = end;
        save_meta();
    }
    reply_have(seq, 0x03);
}

static void cmd_upload_end(uint8_t seq) {
    mp_writer w;
    if (!meta_ok || !meta.size) { send_error(seq, "BAD_REQUEST", "no upload in progress"); return; }
    if (meta.have != meta.size) {
        fl_err_msg[0] = 0; fl_msg_cat("have "); fl_msg_uint(meta.have); fl_msg_cat(" of "); fl_msg_uint(meta.size);
        send_error(seq, "BAD_REQUEST", fl_err_msg);
        return;
    }
    if (store_crc(meta.size) != meta.crc) {
        /* start over: the stored bytes are not the model the host named */
        meta.have = 0; meta.ready = 0; save_meta();
        send_error(seq, "BAD_CRC", "CRC32 of the uploaded bytes differs from upload_begin's");
        return;
    }
    if (fl_prepare(meta.size)) {
        char m[112];
        const char *code = fl_err_code;
        size_t l = strlen(code);
        if (l > 40) l = 40;
        memcpy(m, code, l); m[l] = 0;
        strcat(m, ": ");
        strncat(m, fl_err_msg, sizeof m - strlen(m) - 1);
        meta.ready = 0; save_meta();
        send_error(seq, strcmp(code, "TOO_LARGE") == 0 ? "TOO_LARGE" : "MODEL_INVALID", m);
        return;
    }
    meta.ready = 1;
    save_meta();
    begin(&w);
    mpw_map(&w, 7);
    mpw_str(&w, "ready"); mpw_bool(&w, 1);
    mpw_str(&w, "arena_used"); mpw_uint(&w, fl_arena_used());
    mpw_str(&w, "plan_arena"); mpw_uint(&w, fl_m.plan_arena);
    mpw_str(&w, "tables"); mpw_uint(&w, fl_m.tables_bytes);
    mpw_str(&w, "peak_scratch"); mpw_uint(&w, fl_m.peak_scratch);
    mpw_str(&w, "in"); put_dims(&w, &fl_m.values[fl_m.input]);
    mpw_str(&w, "out"); put_dims(&w, &fl_m.values[fl_m.output]);
    send_body(seq, 0x04, &w);
}

static void cmd_infer(uint8_t seq, const req_t *r) {
    mp_writer w;
    uint32_t us, cyc, id = r->id, n = fl_m.in_numel;
    if (!fl_m.ready) { send_error(seq, "NO_MODEL", "no prepared model"); return; }
    if (!r->has_x || !r->has_id) { send_error(seq, "BAD_REQUEST", "infer needs id and x"); return; }
    {
        float div = r->has_div ? (float)r->div : 1.0f;
        if (r->u8 && !(div > 0) && !(div < 0)) { send_error(seq, "BAD_INPUT", "div must be a non-zero number"); return; }
        if (fl_infer_input(fl_frame + 2 + r->data_at, r->data_len, r->u8, div, &us, &cyc)) { send_error(seq, fl_err_code, fl_err_msg); return; }
    }
    (void)n;
    begin(&w);
    mpw_map(&w, FL_PORT_HAS_CYCLES ? 4 : 3);
    mpw_str(&w, "id"); mpw_uint(&w, id);
    mpw_str(&w, "y"); mpw_bin_head(&w, fl_m.out_numel * 4u); mpw_raw(&w, fl_output(), fl_m.out_numel * 4u);
    mpw_str(&w, "us"); mpw_uint(&w, us);
    if (FL_PORT_HAS_CYCLES) { mpw_str(&w, "cycles"); mpw_uint(&w, cyc); }
    send_body(seq, 0x05, &w);
}

static void cmd_stats(uint8_t seq) {
    mp_writer w;
    begin(&w);
    mpw_map(&w, FL_PROFILE_STEPS > 0 && FL_PORT_HAS_CYCLES ? 9 : 7);
    mpw_str(&w, "frames"); mpw_uint(&w, fl_stats.frames);
    mpw_str(&w, "bad_frames"); mpw_uint(&w, fl_stats.bad_frames);
    mpw_str(&w, "retries_served"); mpw_uint(&w, fl_stats.retries_served);
    mpw_str(&w, "infers"); mpw_uint(&w, fl_stats.infers);
    mpw_str(&w, "boot"); mpw_uint(&w, port_boot_count());
    mpw_str(&w, "uptime_ms"); mpw_uint(&w, port_micros() / 1000u - boot_ms_base);
    mpw_str(&w, "arena_peak"); mpw_uint(&w, fl_stats.arena_peak);
#if FL_PROFILE_STEPS > 0 && FL_PORT_HAS_CYCLES
    {
        /* the last inference, step by step: [first node, last node, cycles] */
        uint16_t k;
        mpw_str(&w, "layers"); mpw_array(&w, fl_prof_n);
        for (k = 0; k < fl_prof_n; k++) {
            mpw_array(&w, 3); mpw_uint(&w, fl_prof[k].lo); mpw_uint(&w, fl_prof[k].hi); mpw_uint(&w, fl_prof[k].cycles);
        }
        mpw_str(&w, "layers_lost"); mpw_uint(&w, fl_prof_lost);
    }
#endif
    send_body(seq, 0x06, &w);
}

static void handle_frame(uint32_t n) {
    uint8_t *raw = fl_frame;
    uint32_t c, got;
    uint8_t seq, kind;
    req_t r;
    if (n < 6 || n > FL_MAX_FRAME) { fl_stats.bad_frames++; return; }
    c = fl_crc32(raw, n - 4);
    got = (uint32_t)raw[n - 4] | ((uint32_t)raw[n - 3] << 8) | ((uint32_t)raw[n - 2] << 16) | ((uint32_t)raw[n - 1] << 24);
    if (c != got) { fl_stats.bad_frames++; return; }
    fl_stats.frames++;
    seq = raw[0];
    kind = raw[1];
    if (have_last && seq == last_seq && kind == last_kind && c == last_crc && resp_len) {
        fl_stats.retries_served++;
        send_stored();
        return;
    }
    have_last = 1; last_seq = seq; last_kind = kind; last_crc = c;
    resp_len = 0;
    if (parse_body(raw + 2, n - 6, &r)) { send_error(seq, "BAD_REQUEST", "body is not a msgpack map of the expected fields"); return; }
    switch (kind) {
    case 0x01: cmd_hello(seq); break;
    case 0x02: cmd_upload_begin(seq, &r); break;
    case 0x03: cmd_upload_chunk(seq, &r); break;
    case 0x04: cmd_upload_end(seq); break;
    case 0x05: cmd_infer(seq, &r); break;
    case 0x06: cmd_stats(seq); break;
    case 0x07: {
        mp_writer w;
        begin(&w);
        mpw_map(&w, 1);
        mpw_str(&w, "ok"); mpw_bool(&w, 1);
        send_body(seq, 0x07, &w);
        port_flush();
        port_reset();
        break;
    }
    default: send_error(seq, "BAD_REQUEST", "unknown command kind");
    }
}

/* decode the COBS bytes in fl_frame[0..n) in place; returns the raw length or -1 */
static int32_t cobs_decode(uint32_t n) {
    uint32_t i = 0, o = 0;
    while (i < n) {
        uint8_t code = fl_frame[i++], k;
        if (code == 0) return -1;
        for (k = 1; k < code; k++) {
            if (i >= n) return -1;
            fl_frame[o++] = fl_frame[i++];
        }
        if (code < 0xFF && i < n) fl_frame[o++] = 0;
    }
    return (int32_t)o;
}

void fl_rx_byte(uint8_t c) {
    uint32_t now = port_micros();
    if (st == ST_FRAME && now - last_byte_us > 200000u) {
        if (rx_len) fl_stats.bad_frames++;
        st = ST_IDLE;
        rx_len = 0;
        rx_over = 0;
    }
    if (st == ST_IDLE && fl_firmata_busy() && now - last_byte_us > 200000u) fl_firmata_abort();
    last_byte_us = now;
    if (st == ST_IDLE) {
        if (c < 0x80 && fl_firmata_busy()) { fl_firmata_byte(c); return; }
        if (c == 0) { st = ST_FRAME; rx_len = 0; rx_over = 0; fl_text_reset(); return; }
        if (c >= 0x80) { fl_firmata_byte(c); return; }
        fl_text_byte(c);
        return;
    }
    /* in frame */
    if (c == 0) {
        if (rx_len == 0 && !rx_over) return; /* idle fill */
        if (rx_over) fl_stats.bad_frames++;
        else {
            int32_t n = cobs_decode(rx_len);
            if (n < 0) fl_stats.bad_frames++;
            else handle_frame((uint32_t)n);
        }
        rx_len = 0;
        rx_over = 0;
        return;
    }
    if (rx_len >= FL_FRAME_BUF) { rx_over = 1; return; }
    fl_frame[rx_len++] = c;
}

void fl_poll(void) {
    int c;
    while ((c = port_getc()) >= 0) fl_rx_byte((uint8_t)c);
}

void fl_boot(void) {
    fl_unprepare();
    memset(&fl_stats, 0, sizeof fl_stats);
    boot_ms_base = port_micros() / 1000u;
    st = ST_IDLE;
    rx_len = 0;
    have_last = 0;
    resp_len = 0;
    meta_ok = port_meta_load(&meta) == 0 && meta.magic == FL_STORE_MAGIC && meta.size <= port_model_capacity() && meta.have <= meta.size;
    if (!meta_ok) memset(&meta, 0, sizeof meta);
    if (meta_ok && meta.ready) {
        if (meta.have != meta.size || fl_prepare(meta.size)) { meta.ready = 0; save_meta(); }
    }
    fl_text_reset();
    fl_firmata_reset();
}

void fl_run(void) {
    port_init();
    fl_boot();
    for (;;) {
        int c = port_getc();
        if (c < 0) { fl_firmata_tick(); port_idle(); continue; }
        fl_rx_byte((uint8_t)c);
    }
}
