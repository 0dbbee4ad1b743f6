/* Boot-section self-programming helpers (boot_spm.c). Addresses are flash byte addresses. */
#ifndef FL_AVR_BOOT_SPM_H
#define FL_AVR_BOOT_SPM_H
#include <stdint.h>

/* Put one little-endian word into the temporary page buffer at addr (even). */
void fl_spm_fill(uint32_t addr, uint16_t word);
/* Erase the page at page_addr and write the temporary page buffer into it (unfilled words read
 * 0xFFFF), then re-enable the read-while-write section. */
void fl_spm_program(uint32_t page_addr);
/* Drop whatever the temporary page buffer holds. */
void fl_spm_discard(void);

#endif
