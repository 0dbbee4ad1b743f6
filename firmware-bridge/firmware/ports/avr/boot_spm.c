/*
 * Self-programming of the model store. The SPM instruction only works from the boot loader
 * section, so these three functions live in .bootloader, which port.mk places at
 * FL_AVR_BOOT_START (the 1 KB boot section at the top of flash, BOOTSZ = 11). They call nothing
 * outside themselves (avr-libc's boot.h macros expand inline), and run with interrupts off: the
 * vectors live in the read-while-write section, which is busy while a page is erased or written.
 *
 * The page's bytes go straight into the AVR's temporary page buffer (boot_page_fill), so the
 * port needs no page-sized buffer of its own in SRAM.
 */
#include <avr/boot.h>
#include <avr/eeprom.h>
#include <avr/io.h>
#include <stdint.h>

#include "boot_spm.h"

#define FL_BOOT __attribute__((section(".bootloader"), noinline, used))

FL_BOOT void fl_spm_fill(uint32_t addr, uint16_t word) {
    uint8_t sreg = SREG;
    __asm__ volatile("cli" ::: "memory");
    boot_spm_busy_wait();
    boot_page_fill(addr, word);
    SREG = sreg;
}

FL_BOOT void fl_spm_program(uint32_t page_addr) {
    uint8_t sreg = SREG;
    __asm__ volatile("cli" ::: "memory");
    eeprom_busy_wait();               /* SPM and an EEPROM write may not overlap */
    boot_spm_busy_wait();
    boot_page_erase(page_addr);
    boot_spm_busy_wait();
    boot_page_write(page_addr);
    boot_spm_busy_wait();
    boot_rww_enable();                /* reading the store again needs the RWW section back */
    SREG = sreg;
}

FL_BOOT void fl_spm_discard(void) {
    uint8_t sreg = SREG;
    __asm__ volatile("cli" ::: "memory");
    boot_spm_busy_wait();
    boot_rww_enable();                /* also clears the temporary page buffer */
    SREG = sreg;
}
