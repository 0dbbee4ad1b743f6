# Build rules of the ATmega2560 port. Included by firmware-bridge/firmware/Makefile for the `avr`
# target; also usable alone, from firmware-bridge/firmware:
#
#   make -f ports/avr/port.mk avr        # build/avr/firmware.elf, simavr-pty, size.json
#   make -f ports/avr/port.mk avr-echo   # build/avr/echo.elf (port self-test, no core)
#
# Needs avr-gcc + avr-libc (the firmware) and gcc + libsimavr-dev (the runner).
# Tune SRAM with AVR_DEFS, e.g. make avr AVR_DEFS="-DFL_ARENA_BYTES=5000 -DFL_MAX_FRAME=900".

AVR_BUILD    ?= build/avr
AVR_CC       ?= avr-gcc
AVR_SIZE     ?= avr-size
AVR_NM       ?= avr-nm
AVR_MCU      := atmega2560
AVR_F_CPU    := 16000000UL
AVR_DEFS     ?=
AVR_OPT      ?= -Os
# Flash address of .bootloader (boot_spm.c): the 1 KB boot section, BOOTSZ = 11.
AVR_BOOT     := 0x3FC00
# The build fails when less SRAM than this is left for the stack (the core needs about 1.3 KB:
# prepare and an inference measured up to 1374 bytes through the runner's "stack" line).
AVR_MIN_STACK ?= 1536

AVR_CFLAGS := -mmcu=$(AVR_MCU) -DF_CPU=$(AVR_F_CPU) $(AVR_OPT) -std=gnu99 -Wall -Wextra \
	-ffunction-sections -fdata-sections -fno-strict-aliasing -I. -Icore -Iports/avr $(AVR_DEFS)
AVR_XMEM_LD ?=
AVR_LDFLAGS := -mmcu=$(AVR_MCU) -Wl,--gc-sections -Wl,--section-start=.bootloader=$(AVR_BOOT) $(AVR_XMEM_LD)
AVR_LDLIBS  := -lm

AVR_PORT_SRCS := ports/avr/port_avr.c ports/avr/boot_spm.c ports/avr/qavr.c core/ops/qexact.c
AVR_MAIN      := ports/avr/main.c
AVR_CORE_SRCS ?= $(filter-out core/ops/qexact.c,$(if $(CORE),$(CORE),$(sort $(wildcard core/*.c core/*/*.c))))
AVR_HDRS      := port.h $(wildcard core/*.h core/*/*.h core/*/*.def) $(wildcard ports/avr/*.h)

SIMAVR_CC     ?= gcc
SIMAVR_CFLAGS ?= -O2 -Wall -Wextra -I/usr/include/simavr
SIMAVR_LIBS   ?= -lsimavr

.PHONY: avr avr-echo avr-runner avr-xmem avr-int8 avr-clean

avr: $(AVR_BUILD)/firmware.elf $(AVR_BUILD)/simavr-pty $(AVR_BUILD)/size.json
avr-echo: $(AVR_BUILD)/echo.elf $(AVR_BUILD)/simavr-pty
avr-runner: $(AVR_BUILD)/simavr-pty

# The core's string literals stay in flash (flashstr.h): each core object's merged-string section
# is renamed .flashstr, linked at data address 0x8000 (no SRAM there) and moved to its flash load
# address after linking; the C library's string functions are wrapped to read it (flashstr.c).
# -fno-builtin keeps every string function a call that the wrap can catch.
AVR_OBJCOPY   ?= avr-objcopy
AVR_STR_VMA   := 0x808000
AVR_STR_LMA   := 0x3A000
AVR_WRAPS     := strlen strcmp strncmp memcmp memcpy memmove strcat strncat
AVR_STR_OBJS  := $(patsubst %.c,$(AVR_BUILD)/obj/%.o,$(AVR_CORE_SRCS) $(AVR_MAIN))

$(AVR_BUILD)/obj/%.o: %.c $(AVR_HDRS) ports/avr/port.mk
	@mkdir -p $(dir $@)
	$(AVR_CC) $(AVR_CFLAGS) -fno-builtin -c -o $@.raw $<
	$(AVR_OBJCOPY) --rename-section .rodata.str1.1=.flashstr $@.raw $@
	@rm -f $@.raw

$(AVR_BUILD)/firmware.elf: $(AVR_STR_OBJS) $(AVR_PORT_SRCS) ports/avr/flashstr.c $(AVR_HDRS) ports/avr/port.mk
	@mkdir -p $(AVR_BUILD)
	$(AVR_CC) $(AVR_CFLAGS) $(AVR_LDFLAGS) -Wl,--section-start=.flashstr=$(AVR_STR_VMA) \
	  $(foreach f,$(AVR_WRAPS),-Wl,--wrap=$(f)) -o $@.linked $(AVR_STR_OBJS) $(AVR_PORT_SRCS) ports/avr/flashstr.c $(AVR_LDLIBS)
	$(AVR_OBJCOPY) --change-section-lma .flashstr=$(AVR_STR_LMA) $@.linked $@
	@rm -f $@.linked

$(AVR_BUILD)/echo.elf: tools/avr-echo.c $(AVR_PORT_SRCS) $(AVR_HDRS) ports/avr/port.mk
	@mkdir -p $(AVR_BUILD)
	$(AVR_CC) $(AVR_CFLAGS) $(AVR_LDFLAGS) -o $@ tools/avr-echo.c $(AVR_PORT_SRCS) $(AVR_LDLIBS)

# A measurement build for models too large for the internal 8 KB: .data, .bss and the stack in
# 32 KB of data space, internal SRAM + external SRAM on the ATmega2560's XMEM interface (run it
# with simavr-pty --xmem). It stops below 0x8000, where the flash strings' addresses begin
# (flashstr.h). A 16 KB arena and a frame buffer that takes a 784-pixel image as f32.
AVR_XMEM_DEFS := -DFL_AVR_XMEM=1 -DFL_ARENA_BYTES=16384u -DFL_MAX_FRAME=3300u -DFL_MAX_RESPONSE=256u
avr-xmem: $(AVR_BUILD)/firmware-xmem.elf $(AVR_BUILD)/simavr-pty
$(AVR_BUILD)/firmware-xmem.elf: $(AVR_CORE_SRCS) $(AVR_PORT_SRCS) $(AVR_MAIN) ports/avr/flashstr.c $(AVR_HDRS) ports/avr/port.mk
	@mkdir -p $(AVR_BUILD)/xmem
	$(MAKE) -f ports/avr/port.mk AVR_BUILD=$(AVR_BUILD)/xmem AVR_DEFS="$(AVR_DEFS) $(AVR_XMEM_DEFS)" \
	  AVR_XMEM_LD="-Wl,--defsym=__DATA_REGION_LENGTH__=0x7e00 -Wl,--defsym=__stack=0x7fff" $(AVR_BUILD)/xmem/firmware.elf
	cp $(AVR_BUILD)/xmem/firmware.elf $@

# The int8-full image (port_config.h): the same firmware with FL_INT8_FULL=1 and per-layer cycles
# of the last inference (FL_PROFILE_STEPS, stats.layers) for 8 steps, its size report in
# build/avr/int8/size.json. `hil --emulate avr` runs an int8-full model on it.
avr-int8: $(AVR_BUILD)/firmware-int8.elf $(AVR_BUILD)/simavr-pty
$(AVR_BUILD)/firmware-int8.elf: $(AVR_CORE_SRCS) $(AVR_PORT_SRCS) $(AVR_MAIN) ports/avr/flashstr.c $(AVR_HDRS) ports/avr/port.mk ports/avr/size.sh
	@mkdir -p $(AVR_BUILD)/int8
	$(MAKE) -f ports/avr/port.mk AVR_BUILD=$(AVR_BUILD)/int8 AVR_DEFS="$(AVR_DEFS) -DFL_INT8_FULL=1 -DFL_PROFILE_STEPS=8u" $(AVR_BUILD)/int8/firmware.elf $(AVR_BUILD)/int8/size.json
	cp $(AVR_BUILD)/int8/firmware.elf $@

$(AVR_BUILD)/simavr-pty: tools/simavr-pty.c ports/avr/port.mk
	@mkdir -p $(AVR_BUILD)
	$(SIMAVR_CC) $(SIMAVR_CFLAGS) -o $@ tools/simavr-pty.c $(SIMAVR_LIBS)

# Flash = .text + .data (initialisers) + .bootloader + .flashstr; SRAM = .data + .bss + .noinit;
# the stack gets the rest of the 8 KB. The keys of the other ports' size-report.sh (port, text,
# data, bss, flash, ram, model_store) plus the AVR's own (sram = ram, stack_left, arena,
# flash_strings, ...). The store takes the flash from the first page after the image up to the
# flash strings (0x3A000).
$(AVR_BUILD)/size.json: $(AVR_BUILD)/firmware.elf ports/avr/size.sh
	sh ports/avr/size.sh $< $(AVR_MIN_STACK) "$(AVR_SIZE)" "$(AVR_NM)" > $@.tmp && mv $@.tmp $@
	@cat $@

avr-clean:
	rm -rf $(AVR_BUILD)
