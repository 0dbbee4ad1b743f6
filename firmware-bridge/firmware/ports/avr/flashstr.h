/*
 * String literals of the core kept in flash on the ATmega2560.
 *
 * avr-gcc copies every string literal into SRAM at start-up; the core's literals (error
 * messages, msgpack keys, text answers) are about 8 KB, the whole SRAM. So the AVR build moves
 * them out (port.mk): each core object's merged-string section .rodata.str1.1 is renamed
 * .flashstr, linked at data address FL_AVR_FLASHSTR_VMA (above any SRAM address: a pointer to a
 * literal is >= 0x8000, a pointer into SRAM is < 0x2200) and loaded into flash at
 * FL_AVR_FLASHSTR_LMA, never copied to SRAM. Whoever reads a literal through a pointer reads it
 * with fl_avr_rd(): the core through its FL_RD() hook, the C library's string functions through
 * the linker's --wrap (flashstr.c), the port's UART writer directly.
 */
#ifndef FL_AVR_FLASHSTR_H
#define FL_AVR_FLASHSTR_H

#include <avr/pgmspace.h>
#include <stdint.h>

#define FL_AVR_FLASHSTR_VMA 0x8000u       /* 16-bit data address of .flashstr (0x808000 in the ELF) */
#define FL_AVR_FLASHSTR_LMA 0x3A000ul     /* its flash address: 16 KB below the NRWW section */
#define FL_AVR_FLASHSTR_MAX 0x4000u       /* port.mk fails the build beyond this */

static inline char fl_avr_rd(const char *p) {
    uint16_t a = (uint16_t)p;
    if (a >= FL_AVR_FLASHSTR_VMA) return (char)pgm_read_byte_far(FL_AVR_FLASHSTR_LMA + (uint16_t)(a - FL_AVR_FLASHSTR_VMA));
    return *p;
}

#endif
