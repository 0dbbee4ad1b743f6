/* firmata.c: the Firmata subset of docs/PROTOCOL.md section 6, enough for johnny-five's Board
 * (firmata.js) to become ready, read and write pins, and run the model through the factorlite
 * sysex 0x01. Pins are the port's (port_pin_*). */
#include <string.h>
#include "fl.h"

#define FM_PROTO_MAJOR 2
#define FM_PROTO_MINOR 5
#define FW_MAJOR 0
#define FW_MINOR 1

static uint8_t cmd;          /* current multi-byte command (0 none) */
static uint8_t need, got;    /* data bytes expected / received for a plain command */
static uint8_t data[4];
static uint8_t in_sysex, sx_cmd, sx_n;
static uint8_t sx_small[16];
static uint32_t sx_count;    /* data bytes of a factorlite sysex */
static uint8_t sx_lo, sx_half, sx_over;

static uint16_t report_analog;   /* bit per analog channel */
static uint16_t report_digital;  /* bit per 8-pin port */
static uint8_t last_port[16];
static uint8_t pin_mode[FL_PIN_COUNT ? FL_PIN_COUNT : 1];
static uint16_t pin_state[FL_PIN_COUNT ? FL_PIN_COUNT : 1];
static uint32_t sampling_us = 19000, last_sample;

static void out(const uint8_t *b, uint16_t n) { port_write(b, n); }
static void out1(uint8_t b) { port_write(&b, 1); }
static void out7(uint32_t v) { uint8_t b[2]; b[0] = (uint8_t)(v & 0x7F); b[1] = (uint8_t)((v >> 7) & 0x7F); out(b, 2); }

int fl_firmata_busy(void) { return cmd != 0 || in_sysex; }

/* drop a Firmata message cut short (the line was silent too long), keeping pin state */
void fl_firmata_abort(void) { cmd = 0; in_sysex = 0; }

void fl_firmata_reset(void) {
    uint8_t p;
    cmd = 0; in_sysex = 0; report_analog = 0; report_digital = 0;
    memset(last_port, 0, sizeof last_port);
    memset(pin_mode, 0, sizeof pin_mode);
    memset(pin_state, 0, sizeof pin_state);
    /* as in StandardFirmata, pins with an analog channel start in analog mode */
    for (p = 0; p < FL_PIN_COUNT; p++) if (port_pin_analog_channel(p) < 16 && (port_pin_caps(p) & FL_PIN_CAP_ANALOG)) pin_mode[p] = 0x02;
    sampling_us = 19000;
}

static void send_analog(uint8_t ch) {
    uint16_t v = port_analog_read(ch);
    uint8_t b[3];
    b[0] = (uint8_t)(0xE0 | ch); b[1] = v & 0x7F; b[2] = (uint8_t)((v >> 7) & 0x7F);
    out(b, 3);
}

static void report_version(void) { uint8_t b[3] = { 0xF9, FM_PROTO_MAJOR, FM_PROTO_MINOR }; out(b, 3); }

static void report_firmware(void) {
    const char *name = "factorlite";
    uint8_t b[4] = { 0xF0, 0x79, FW_MAJOR, FW_MINOR };
    out(b, 4);
    while (*name) out7((uint8_t)*name++);
    out1(0xF7);
}

static uint8_t port_bits(uint8_t port) {
    uint8_t v = 0, i;
    for (i = 0; i < 8; i++) {
        uint8_t p = (uint8_t)(port * 8 + i);
        if (p >= FL_PIN_COUNT) break;
        if (pin_mode[p] == 0x00 || pin_mode[p] == 0x0B) { if (port_pin_read(p)) v |= (uint8_t)(1u << i); }
        else if (pin_mode[p] == 0x01 && pin_state[p]) v |= (uint8_t)(1u << i);
    }
    return v;
}

static void send_port(uint8_t port) {
    uint8_t v = port_bits(port), b[3];
    b[0] = (uint8_t)(0x90 | port); b[1] = v & 0x7F; b[2] = (uint8_t)(v >> 7);
    out(b, 3);
    last_port[port] = v;
}

static void capability(void) {
    uint8_t p;
    out1(0xF0); out1(0x6C);
    for (p = 0; p < FL_PIN_COUNT; p++) {
        uint16_t c = port_pin_caps(p);
        if (c & FL_PIN_CAP_INPUT) { out1(0x00); out1(1); }
        if (c & FL_PIN_CAP_OUTPUT) { out1(0x01); out1(1); }
        if (c & FL_PIN_CAP_ANALOG) { out1(0x02); out1(10); }
        if (c & FL_PIN_CAP_PWM) { out1(0x03); out1(8); }
        if (c & FL_PIN_CAP_PULLUP) { out1(0x0B); out1(1); }
        out1(0x7F);
    }
    out1(0xF7);
}

static void analog_mapping(void) {
    uint8_t p;
    out1(0xF0); out1(0x6A);
    for (p = 0; p < FL_PIN_COUNT; p++) out1(port_pin_analog_channel(p) & 0x7F);
    out1(0xF7);
}

static void pin_state_reply(uint8_t p) {
    if (p >= FL_PIN_COUNT) return;
    out1(0xF0); out1(0x6E); out1(p); out1(pin_mode[p]);
    {
        uint16_t v = pin_mode[p] == 0x00 || pin_mode[p] == 0x0B ? port_pin_read(p) : pin_state[p];
        out1(v & 0x7F);
        if (v > 0x7F) out1((uint8_t)((v >> 7) & 0x7F));
    }
    out1(0xF7);
}

static int mode_ok(uint8_t p, uint8_t mode) {
    uint16_t c;
    if (p >= FL_PIN_COUNT) return 0;
    c = port_pin_caps(p);
    switch (mode) {
    case 0x00: return (c & FL_PIN_CAP_INPUT) != 0;
    case 0x01: return (c & FL_PIN_CAP_OUTPUT) != 0;
    case 0x02: return (c & FL_PIN_CAP_ANALOG) != 0;
    case 0x03: return (c & FL_PIN_CAP_PWM) != 0;
    case 0x0B: return (c & FL_PIN_CAP_PULLUP) != 0;
    default: return 0;
    }
}

/* factorlite sysex: u8 pixels in the frame buffer -> top-1 and logits */
static void run_model(void) {
    uint32_t us, cyc, i, best = 0;
    const float *y;
    out1(0xF0); out1(0x01);
    if (sx_over || fl_infer_input(fl_frame, sx_count, 1, 255.0f, &us, &cyc)) {
        out1(0x7F); /* no class: no model or a wrong input size */
        out1(0xF7);
        return;
    }
    y = fl_output();
    for (i = 1; i < fl_m.out_numel; i++) if (y[i] > y[best]) best = i;
    out1((uint8_t)(best & 0x7F));
    for (i = 0; i < fl_m.out_numel; i++) {
        uint8_t b[4], k;
        memcpy(b, &y[i], 4);
        for (k = 0; k < 4; k++) out7(b[k]);
    }
    out1(0xF7);
}

static void sysex_end(void) {
    switch (sx_cmd) {
    case 0x79: report_firmware(); break;
    case 0x6B: capability(); break;
    case 0x69: analog_mapping(); break;
    case 0x6D: if (sx_n >= 1) pin_state_reply(sx_small[0]); break;
    case 0x7A: if (sx_n >= 2) { uint32_t ms = (uint32_t)sx_small[0] | ((uint32_t)sx_small[1] << 7); if (ms < 1) ms = 1; sampling_us = ms * 1000u; } break;
    case 0x01: run_model(); break;
    default: break; /* other sysex commands are ignored */
    }
}

static void sysex_byte(uint8_t c) {
    if (c == 0xF7) { in_sysex = 0; sysex_end(); return; }
    if (c & 0x80) { in_sysex = 0; return; } /* a command byte aborts the sysex */
    if (sx_n == 0 && sx_cmd == 0xFF) { sx_cmd = c; sx_count = 0; sx_half = 0; sx_over = 0; return; }
    if (sx_cmd == 0x01) {
        if (!sx_half) { sx_lo = c; sx_half = 1; }
        else {
            sx_half = 0;
            if (sx_count < FL_MAX_FRAME) fl_frame[sx_count] = (uint8_t)(sx_lo | (c << 7));
            else sx_over = 1;
            sx_count++;
        }
        return;
    }
    if (sx_n < sizeof sx_small) sx_small[sx_n++] = c;
}

static void plain_end(void) {
    uint8_t ch = cmd & 0x0F;
    switch (cmd & 0xF0) {
    case 0x90: { /* digital port write */
        uint8_t v = (uint8_t)(data[0] | (data[1] << 7)), i;
        for (i = 0; i < 8; i++) {
            uint8_t p = (uint8_t)(ch * 8 + i);
            if (p < FL_PIN_COUNT && pin_mode[p] == 0x01) {
                uint16_t bit = (v >> i) & 1;
                if (pin_state[p] != bit) { pin_state[p] = bit; port_pin_write(p, bit); }
            }
        }
        break;
    }
    case 0xE0: { /* analog (PWM) write */
        uint16_t v = (uint16_t)(data[0] | (data[1] << 7));
        if (ch < FL_PIN_COUNT) { pin_state[ch] = v; port_pin_write(ch, v); }
        break;
    }
    case 0xC0: /* report analog: enabling sends the current value at once */
        if (data[0]) { report_analog |= (uint16_t)(1u << ch); send_analog(ch); } else report_analog &= (uint16_t)~(1u << ch);
        break;
    case 0xD0: /* report digital */
        if (data[0]) { report_digital |= (uint16_t)(1u << ch); send_port(ch); } else report_digital &= (uint16_t)~(1u << ch);
        break;
    default:
        if (cmd == 0xF4) { /* set pin mode */
            uint8_t p = data[0], m = data[1];
            if (mode_ok(p, m)) {
                pin_mode[p] = m;
                port_pin_mode(p, m);
                if (m == 0x01 || m == 0x03) { pin_state[p] = 0; port_pin_write(p, 0); }
            }
        } else if (cmd == 0xF5) { /* set digital pin value */
            uint8_t p = data[0];
            if (p < FL_PIN_COUNT && (pin_mode[p] == 0x01)) { pin_state[p] = data[1] ? 1 : 0; port_pin_write(p, pin_state[p]); }
        }
    }
    cmd = 0;
}

void fl_firmata_byte(uint8_t c) {
    if (in_sysex) { sysex_byte(c); return; }
    if (c < 0x80) {
        if (!cmd) return;
        data[got++] = c;
        if (got >= need) plain_end();
        return;
    }
    cmd = 0;
    if (c == 0xF0) { in_sysex = 1; sx_cmd = 0xFF; sx_n = 0; return; }
    if (c == 0xF9) { report_version(); return; }
    if (c == 0xFF) { fl_firmata_reset(); return; }
    if (c == 0xF4 || c == 0xF5 || (c & 0xF0) == 0x90 || (c & 0xF0) == 0xE0) { cmd = c; need = 2; got = 0; return; }
    if ((c & 0xF0) == 0xC0 || (c & 0xF0) == 0xD0) { cmd = c; need = 1; got = 0; return; }
    /* anything else: ignored */
}

void fl_firmata_tick(void) {
    uint32_t now = port_micros();
    uint8_t p;
    if (!report_analog && !report_digital) return;
    /* digital: report ports whose inputs changed */
    for (p = 0; p < 16 && p * 8 < FL_PIN_COUNT; p++)
        if ((report_digital >> p) & 1) { if (port_bits(p) != last_port[p]) send_port(p); }
    if (report_analog && now - last_sample >= sampling_us) {
        last_sample = now;
        for (p = 0; p < FL_PIN_COUNT; p++) {
            uint8_t ch = port_pin_analog_channel(p);
            if (ch < 16 && ((report_analog >> ch) & 1) && pin_mode[p] == 0x02) send_analog(ch);
        }
    }
}
