/*
 * The C library's string and memory functions for the AVR build, as seen through the linker's
 * --wrap (port.mk): each one reads its source operands with fl_avr_rd(), so a string literal in
 * flash (flashstr.h) works wherever the core passes one. Pointers into SRAM go to the library's
 * own code (__real_*), unchanged.
 */
#include <stddef.h>
#include <stdint.h>

#include "flashstr.h"

#define IN_FLASH(p) ((uint16_t)(p) >= FL_AVR_FLASHSTR_VMA)

size_t __real_strlen(const char *s);
int __real_strcmp(const char *a, const char *b);
int __real_strncmp(const char *a, const char *b, size_t n);
int __real_memcmp(const void *a, const void *b, size_t n);
void *__real_memcpy(void *d, const void *s, size_t n);
void *__real_memmove(void *d, const void *s, size_t n);
char *__real_strcat(char *d, const char *s);
char *__real_strncat(char *d, const char *s, size_t n);

size_t __wrap_strlen(const char *s) {
    if (!IN_FLASH(s)) return __real_strlen(s);
    size_t n = 0;
    while (fl_avr_rd(s + n)) n++;
    return n;
}

int __wrap_strncmp(const char *a, const char *b, size_t n) {
    if (!IN_FLASH(a) && !IN_FLASH(b)) return __real_strncmp(a, b, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)fl_avr_rd(a + i), y = (unsigned char)fl_avr_rd(b + i);
        if (x != y) return x < y ? -1 : 1;
        if (!x) return 0;
    }
    return 0;
}

int __wrap_strcmp(const char *a, const char *b) {
    if (!IN_FLASH(a) && !IN_FLASH(b)) return __real_strcmp(a, b);
    return __wrap_strncmp(a, b, (size_t)-1);
}

int __wrap_memcmp(const void *a, const void *b, size_t n) {
    if (!IN_FLASH(a) && !IN_FLASH(b)) return __real_memcmp(a, b, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)fl_avr_rd((const char *)a + i), y = (unsigned char)fl_avr_rd((const char *)b + i);
        if (x != y) return x < y ? -1 : 1;
    }
    return 0;
}

void *__wrap_memcpy(void *d, const void *s, size_t n) {
    if (!IN_FLASH(s)) return __real_memcpy(d, s, n);
    for (size_t i = 0; i < n; i++) ((char *)d)[i] = fl_avr_rd((const char *)s + i);
    return d;
}

void *__wrap_memmove(void *d, const void *s, size_t n) {
    if (!IN_FLASH(s)) return __real_memmove(d, s, n);
    return __wrap_memcpy(d, s, n); /* a flash source never overlaps an SRAM destination */
}

char *__wrap_strncat(char *d, const char *s, size_t n) {
    if (!IN_FLASH(s)) return __real_strncat(d, s, n);
    char *e = d + __real_strlen(d);
    size_t i = 0;
    char c;
    while (i < n && (c = fl_avr_rd(s + i)) != 0) e[i++] = c;
    e[i] = 0;
    return d;
}

char *__wrap_strcat(char *d, const char *s) {
    if (!IN_FLASH(s)) return __real_strcat(d, s);
    return __wrap_strncat(d, s, (size_t)-1);
}
