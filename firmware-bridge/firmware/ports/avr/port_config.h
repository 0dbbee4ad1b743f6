/*
 * Size macros of the ATmega2560 port (8 KB SRAM, 256 KB flash, 16 MHz).
 *
 * SRAM budget (8192 bytes): the arena, the frame buffer (one decoded request; an infer request
 * with 784 u8 pixels is 784 + ~30 bytes), the stored response, the text line, the port's 128-byte
 * receive ring, the core's few statics, and the stack: prepare (the msgpack reader recurses) and
 * an inference went up to 1374 bytes deep (FC-2 on the xmem build; 1367 for the test's model),
 * read from the port's stack paint by the runner's "stack" line. build/avr/size.json reports what
 * the linker placed; the stack gets what is left (port.mk fails the build below AVR_MIN_STACK =
 * 1536 bytes).
 * Every macro can be overridden from the make command line (AVR_DEFS="-DFL_ARENA_BYTES=5000").
 */
#ifndef FL_PORT_CONFIG_H
#define FL_PORT_CONFIG_H

#ifndef FL_ARENA_BYTES
#define FL_ARENA_BYTES 4096u
#endif
#ifndef FL_MAX_FRAME
#define FL_MAX_FRAME 900u
#endif
#ifndef FL_MAX_RESPONSE
#define FL_MAX_RESPONSE 224u        /* hello lists 43 op ids */
#endif
#ifndef FL_TEXT_LINE
#define FL_TEXT_LINE 100u
#endif
/* Smaller model tables (each node, value and tensor keeps arrays of these lengths in the arena):
 * activations and tensors up to rank 4 ([1,1,28,28]), TT/TR/TTL up to 4 modes a side. A node
 * costs 238 bytes instead of 302, a value 47 instead of 63, a tensor 49 instead of 65. */
#ifndef FL_MAX_RANK
#define FL_MAX_RANK 4
#endif
#ifndef FL_MAX_MODES
#define FL_MAX_MODES 4
#endif
#ifndef FL_MAX_INDEXED
#define FL_MAX_INDEXED 8
#endif
/* The FL_OPX ops of core/ops/ops.def (flexact, the reshaped tensorial kinds) are left out: their
 * code would take about 13 KB of the model store, which FC-2 svd x10 int8 (91,200 B) needs. */
/* The int8-full path: its code takes 26.6 KB of flash (store 96,512 -> 70,912 B), which FC-2 svd
 * x10 int8 (91,200 B) needs, so firmware.elf leaves it out (such a model is refused by name) and
 * firmware-int8.elf (`make avr-int8`, FL_INT8_FULL=1) has it, with the port's own kernels
 * (qavr.c: weights and per-channel lists read from the flash store) and the input's quantisation
 * and output's dequantisation binary64-exact in binary32 and integers (qexact.c). */
#ifndef FL_INT8_FULL
#define FL_INT8_FULL 0
#endif
#ifndef FL_Q_STORE_LISTS
#define FL_Q_STORE_LISTS 1
#endif
/* no int8 tables, add, concat or softmax (core/ops/qmisc.c, about 6 KB of flash): with them the
 * int8-full image's model store (64,512 B) would no longer hold FC-2 svd x20 int8-full (64,640 B);
 * the 4 KB arena holds none of the models that use them */
#ifndef FL_Q_MISC
#define FL_Q_MISC 0
#endif
#ifndef FL_OPS_EXTRA
#define FL_OPS_EXTRA 0
#endif
#define FL_MODEL_PAGE 256u          /* SPM_PAGESIZE of the ATmega2560 */
#define FL_BOARD_NAME "atmega2560"
#define FL_PORT_HAS_CYCLES 1        /* port_cycles(): CPU cycles from Timer1, exact in simavr */
#define FL_PIN_COUNT 13u            /* 0-7: PA0-PA7 (D22-D29), 8-11: ADC0-3 (A0-A3), 12: PB7 (D13, PWM) */

/* Port-only settings. FL_AVR_XMEM = 1: the firmware-xmem.elf build, with .data/.bss in external
 * SRAM (port.mk avr-xmem), for measurements only. */
#ifndef FL_AVR_XMEM
#define FL_AVR_XMEM 0
#endif
#ifndef FL_AVR_BAUD
#define FL_AVR_BAUD 115200ul
#endif
#define FL_AVR_RX_RING 128u         /* power of two, <= 256 */
#define FL_AVR_STORE_END 0x3A000ul  /* the store ends where the flash strings begin (flashstr.h) */
#define FL_AVR_BOOT_START 0x3FC00ul /* .bootloader: the smallest boot section (BOOTSZ = 11, 1 KB) */

/* The core reads string literals through FL_RD(p): on this port they live in flash. */
#include "flashstr.h"
#define FL_RD(p) fl_avr_rd(p)
/* The op table stays in flash too, copied out an entry at a time. */
#include <avr/pgmspace.h>
#define FL_ROM __attribute__((__progmem__))
#define FL_ROM_COPY(dst, src, n) memcpy_P((dst), (src), (n))

#endif /* FL_PORT_CONFIG_H */
