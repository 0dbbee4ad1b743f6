/*
 * port.h: everything the portable core (core/) needs from a board.
 *
 * A port is a few small C files under ports/<name>/ that implement the functions below, plus a
 * header ports/<name>/port_config.h (found on the include path; the build passes
 * -Iports/<name>) that sets the size macros. The core never calls malloc and keeps no big static
 * buffer apart from the arena and the frame buffer, both sized by these macros, so it fits an
 * 8 KB-SRAM part (ATmega2560) as well as a Cortex-M4 or a Linux process.
 *
 * Conventions: all functions are called from one thread of control (the main loop); nothing here
 * is called from an interrupt. Integers crossing this interface are fixed-width.
 */
#ifndef FL_PORT_H
#define FL_PORT_H

#include <stdint.h>
#include <stddef.h>

#include "port_config.h"

/* ---- size macros a port sets in port_config.h (defaults are for a small part) ------------ */

/* Bytes of the one static arena: activations and kernel scratch (the model's "mcu" memory plan)
 * plus the model's parsed tables (nodes, tensors, scales), which take the arena's top end. */
#ifndef FL_ARENA_BYTES
#define FL_ARENA_BYTES 4096u
#endif
/* Largest raw frame (seq|kind|body|crc, before COBS) the device accepts. The frame buffer holds
 * one decoded request; the infer input is read in place from it, so it bounds the input size. */
#ifndef FL_MAX_FRAME
#define FL_MAX_FRAME 1024u
#endif
/* Bytes of the encoded-response buffer (the stored response of the idempotence rule). It must
 * hold the largest response: an infer answer carries the output tensor (outputs x 4 + ~40). */
#ifndef FL_MAX_RESPONSE
#define FL_MAX_RESPONSE 256u
#endif
/* Longest MLPerf Tiny text command kept (section 5 of PROTOCOL.md), "db <hex>%" chunks included.
 * The text dialect's input buffer ("db load N%") and the Firmata model sysex reuse the frame
 * buffer, so their inputs are bounded by FL_MAX_FRAME too. */
#ifndef FL_TEXT_LINE
#define FL_TEXT_LINE 128u
#endif
/* Flash page size for ports that program pages (informative for the core; 0 = byte-writable). */
#ifndef FL_MODEL_PAGE
#define FL_MODEL_PAGE 0u
#endif
/* Name of the board in hello and the Firmata firmware report. */
#ifndef FL_BOARD_NAME
#define FL_BOARD_NAME "unknown"
#endif
/* 1 when port_cycles() counts something meaningful (CPU cycles or emulated instructions). */
#ifndef FL_PORT_HAS_CYCLES
#define FL_PORT_HAS_CYCLES 0
#endif
/* Per-layer counts (stats.layers): the port_cycles() spent by each step of the last inference (a
 * node, or a fused chain run as one), for up to this many steps; 0 records none. Only where
 * FL_PORT_HAS_CYCLES is 1. */
#ifndef FL_PROFILE_STEPS
#define FL_PROFILE_STEPS 0u
#endif
/* 1: the convolution and 1x1 kernels take their inner loops from core/ops/rows.c (a block of
 * outputs kept in registers, each weight widened once per output channel; on an Arm FPU one VMLA
 * per multiply-add), for a part with an FPU and stack to spare; 0: the portable loops of conv.c and
 * chain.c, the definition, for a small part (AVR) where code size counts. Each output takes the
 * same terms in the same order either way (the fast loops do not skip zero weights). */
#ifndef FL_FAST_KERNELS
#define FL_FAST_KERNELS 0
#endif
/* Number of virtual or real GPIO pins offered to Firmata (0..127). */
#ifndef FL_PIN_COUNT
#define FL_PIN_COUNT 0u
#endif

/* ---- setup, clock, reset ----------------------------------------------------------------- */

/* Called once at boot, before anything else: clocks, UART, timers, the model store. */
void port_init(void);

/* Free-running microsecond counter; wraps at 2^32 (differences are taken modulo 2^32). */
uint32_t port_micros(void);

/* Free-running cycle counter (or emulated instruction count); wraps at 2^32. Only meaningful
 * when FL_PORT_HAS_CYCLES is 1; may return 0 otherwise. */
uint32_t port_cycles(void);

/* Nominal CPU clock in Hz (reported by hello). */
uint32_t port_clock_hz(void);

/* Boots since power-on of the board / emulator / host process, counting this one (so >= 1).
 * A reset (port_reset, SIGUSR1 on the host, a watchdog) increments it; it is kept across resets
 * in memory that survives them (.noinit RAM, EEPROM, a file). */
uint32_t port_boot_count(void);

/* Reset the device as a power glitch or a reset button would: volatile state is lost, the model
 * store is kept, the boot count grows. Never returns. The core calls it after the reset
 * response has been written and flushed (port_flush). */
void port_reset(void);

/* Called by the main loop when it has nothing to do (no byte waiting). A port may sleep until
 * the next interrupt, poll a signal, or do nothing. */
void port_idle(void);

/* ---- UART -------------------------------------------------------------------------------- */

/* Next received byte 0..255, or -1 when none is waiting. Never blocks. */
int port_getc(void);

/* Send n bytes; may block until they are queued. */
void port_write(const uint8_t *buf, uint16_t n);

/* Wait until every byte written so far has left (or been handed to the OS). */
void port_flush(void);

/* ---- model store ("flash") --------------------------------------------------------------- */

/* Bytes available to store one model file (hello.flash). An upload larger than this is refused
 * with TOO_LARGE. */
uint32_t port_model_capacity(void);

/* The stored model as plain memory, or NULL when the store is not memory-mapped (AVR program
 * flash read with LPM, an external SPI flash). When non-NULL, kernels read weights through it
 * directly; when NULL, every read goes through port_model_read. */
const uint8_t *port_model_ptr(void);

/* Copy n bytes of the stored model at offset off into buf. off + n <= capacity (the core checks
 * before calling). */
void port_model_read(uint32_t off, uint8_t *buf, uint16_t n);

/* Write n bytes at offset off. The core writes strictly sequentially during an upload: the first
 * call of an upload has off = 0 (or the resume point), each next call starts where the previous
 * one ended, and n <= FL_MAX_FRAME. A port with page-wise flash keeps the partial last page in
 * its own page buffer (FL_MODEL_PAGE bytes) and programs full pages as they complete.
 * Returns 0 on success, -1 on a write failure (reported to the host as BAD_REQUEST). */
int port_model_write(uint32_t off, const uint8_t *buf, uint16_t n);

/* Program the partial page, if any, so that every byte written so far is durable and readable
 * through port_model_read / port_model_ptr. Called before each upload_chunk answer and at
 * upload_end, so a reset after an answered chunk never loses acknowledged bytes. */
void port_model_sync(void);

/* Persistent description of the stored model: kept across resets together with the store. The
 * core owns the contents; the port only keeps the bytes (EEPROM, a reserved flash page, a file,
 * .noinit RAM). */
typedef struct {
    uint32_t magic;   /* FL_STORE_MAGIC when valid */
    uint32_t size;    /* total size named by upload_begin */
    uint32_t crc;     /* CRC32 of the whole file named by upload_begin */
    uint32_t have;    /* bytes received and durable */
    uint32_t ready;   /* 1 once upload_end accepted the model */
} fl_store_meta;
#define FL_STORE_MAGIC 0x464c5331u /* "FLS1" */

/* Fill *m with the saved description; returns 0 when one was saved, -1 otherwise. */
int port_meta_load(fl_store_meta *m);
/* Save *m durably. */
void port_meta_save(const fl_store_meta *m);

/* ---- GPIO for Firmata -------------------------------------------------------------------- */

/* Pin capabilities (bit set = supported), Firmata pin mode numbers. */
#define FL_PIN_CAP_INPUT   (1u << 0)   /* mode 0x00 digital input */
#define FL_PIN_CAP_OUTPUT  (1u << 1)   /* mode 0x01 digital output */
#define FL_PIN_CAP_ANALOG  (1u << 2)   /* mode 0x02 analog input */
#define FL_PIN_CAP_PWM     (1u << 3)   /* mode 0x03 PWM output */
#define FL_PIN_CAP_PULLUP  (1u << 11)  /* mode 0x0B input with pull-up */

/* Capabilities of pin p (< FL_PIN_COUNT); 0 = pin not usable. */
uint16_t port_pin_caps(uint8_t p);
/* Analog channel of pin p (0..15), or 127 when it has none. */
uint8_t port_pin_analog_channel(uint8_t p);
/* Set pin p's mode (a Firmata mode number the pin supports). */
void port_pin_mode(uint8_t p, uint8_t mode);
/* Digital write (value 0/1) or PWM write (0..255 or more, by mode) to pin p. */
void port_pin_write(uint8_t p, uint16_t value);
/* Digital level of pin p (0/1). */
uint8_t port_pin_read(uint8_t p);
/* Analog reading of channel ch, 10-bit (0..1023). */
uint16_t port_analog_read(uint8_t ch);

#endif /* FL_PORT_H */
