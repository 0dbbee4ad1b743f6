/* error.c: the last error (a code and a one-line message) and the builders of its message. */
#include <string.h>
#include "fl.h"

/* ---- errors ------------------------------------------------------------------------------- */
const char *fl_err_code = "";
char fl_err_msg[96];

void fl_msg_cat(const char *s) {
    size_t l = strlen(fl_err_msg);
    char c;
    while ((c = FL_RD(s)) != 0 && l + 1 < sizeof fl_err_msg) { fl_err_msg[l++] = c; s++; }
    fl_err_msg[l] = 0;
}

void fl_msg_uint(uint32_t v) {
    char t[11];
    int i = 10;
    t[i] = 0;
    do { t[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    fl_msg_cat(t + i);
}

void fl_msg_name(uint32_t at, uint16_t len) {
    size_t l = strlen(fl_err_msg);
    uint16_t i;
    for (i = 0; i < len && l + 1 < sizeof fl_err_msg; i++) {
        uint8_t c = fl_model_byte(at + i);
        fl_err_msg[l++] = (c >= 32 && c < 127) ? (char)c : '?';
    }
    fl_err_msg[l] = 0;
}

int fl_fail(const char *code, const char *msg) {
    fl_err_code = code;
    fl_err_msg[0] = 0;
    fl_msg_cat(msg);
    return -1;
}
