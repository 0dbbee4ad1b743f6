/*
 * avr-echo: a self-test firmware for the AVR port (no core needed): echoes every byte it receives,
 * except lines that start with '!', which are commands answered with one line "= ...\n":
 *   !b              boot count                      !x          reset through the watchdog
 *   !k              store capacity and flash base   !t          micros and cycles now
 *   !d N            cycles taken by a 4*N-cycle delay loop (checks the cycle counter)
 *   !z MS           do not read the UART for MS ms of busy work (checks that nothing is lost)
 *   !w OFF HEX      port_model_write at OFF          !s          port_model_sync
 *   !r OFF N        port_model_read, answered in hex
 *   !m              port_meta_load                   !M S C H R  port_meta_save
 *   !a CH           port_analog_read(CH)             !o P V      pin P as output, write V
 *   !i P            pin P as input, read it
 * Numbers are decimal.
 */
#include <avr/pgmspace.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <util/delay_basic.h>

#include "port.h"


static char line[FL_TEXT_LINE + 2];
static uint8_t line_len;
static uint8_t in_cmd, at_start = 1;
static uint8_t iobuf[64];

static void puts_ram(const char *s) { port_write((const uint8_t *)s, (uint16_t)strlen(s)); }

static void answer(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void answer(const char *fmt, ...) {
    char out[96];
    va_list ap;
    va_start(ap, fmt);
    out[0] = '=';
    out[1] = ' ';
    vsnprintf(out + 2, sizeof out - 3, fmt, ap);
    va_end(ap);
    strcat(out, "\n");
    puts_ram(out);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void command(char *s) {
    char *end;
    switch (s[0]) {
    case 'b': answer("boot %lu", (unsigned long)port_boot_count()); break;
    case 'x': answer("reset"); port_flush(); port_reset(); break;
    case 'k': answer("cap %lu", (unsigned long)port_model_capacity()); break;
    case 't': {
        uint32_t us = port_micros(), cy = port_cycles();
        answer("us %lu cy %lu", (unsigned long)us, (unsigned long)cy);
        break;
    }
    case 'd': {
        uint16_t n = (uint16_t)strtoul(s + 1, NULL, 10);
        uint32_t a = port_cycles();
        _delay_loop_2(n);
        uint32_t b = port_cycles();
        answer("cyc %lu", (unsigned long)(b - a));
        break;
    }
    case 'z': {
        uint32_t ms = strtoul(s + 1, NULL, 10);
        uint32_t t0 = port_micros();
        while (port_micros() - t0 < ms * 1000ul) {
        }
        answer("woke");
        break;
    }
    case 'w': {
        uint32_t off = strtoul(s + 1, &end, 10);
        while (*end == ' ') end++;
        uint16_t n = 0;
        while (hexval(end[0]) >= 0 && hexval(end[1]) >= 0 && n < sizeof iobuf) {
            iobuf[n++] = (uint8_t)(hexval(end[0]) << 4 | hexval(end[1]));
            end += 2;
        }
        int r = port_model_write(off, iobuf, n);
        answer("w %d %u", r, n);
        break;
    }
    case 's': port_model_sync(); answer("synced"); break;
    case 'r': {
        uint32_t off = strtoul(s + 1, &end, 10);
        uint16_t n = (uint16_t)strtoul(end, NULL, 10);
        if (n > 32) n = 32;
        port_model_read(off, iobuf, n);
        char hex[70];
        for (uint16_t i = 0; i < n; i++) sprintf(hex + 2 * i, "%02x", iobuf[i]);
        hex[2 * n] = 0;
        answer("r %s", hex);
        break;
    }
    case 'm': {
        fl_store_meta m;
        if (port_meta_load(&m) != 0) { answer("meta none"); break; }
        answer("meta %lu %lu %lu %lu", (unsigned long)m.size, (unsigned long)m.crc, (unsigned long)m.have,
               (unsigned long)m.ready);
        break;
    }
    case 'M': {
        fl_store_meta m;
        m.magic = FL_STORE_MAGIC;
        m.size = strtoul(s + 1, &end, 10);
        m.crc = strtoul(end, &end, 10);
        m.have = strtoul(end, &end, 10);
        m.ready = strtoul(end, &end, 10);
        port_meta_save(&m);
        answer("saved");
        break;
    }
    case 'a': answer("a %u", port_analog_read((uint8_t)strtoul(s + 1, NULL, 10))); break;
    case 'o': {
        uint8_t p = (uint8_t)strtoul(s + 1, &end, 10);
        uint16_t v = (uint16_t)strtoul(end, NULL, 10);
        port_pin_mode(p, 0x01);
        port_pin_write(p, v);
        answer("o");
        break;
    }
    case 'i': {
        uint8_t p = (uint8_t)strtoul(s + 1, NULL, 10);
        port_pin_mode(p, 0x00);
        answer("i %u", port_pin_read(p));
        break;
    }
    default: answer("unknown"); break;
    }
}

int main(void) {
    port_init();
    for (;;) {
        int c = port_getc();
        if (c < 0) {
            port_idle();
            continue;
        }
        if (at_start && c == '!') {
            in_cmd = 1;
            line_len = 0;
            at_start = 0;
            continue;
        }
        if (in_cmd) {
            if (c == '\n' || c == '\r') {
                line[line_len] = 0;
                in_cmd = 0;
                at_start = 1;
                command(line);
            } else if (line_len < FL_TEXT_LINE) {
                line[line_len++] = (char)c;
            }
            continue;
        }
        uint8_t b = (uint8_t)c;
        port_write(&b, 1);
        at_start = (c == '\n');
    }
}
