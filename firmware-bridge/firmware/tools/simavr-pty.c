/*
 * simavr-pty: runs an AVR firmware (ELF) in libsimavr and bridges its UART0 to a pseudo-terminal.
 *
 *   simavr-pty [--mcu atmega2560] [--freq 16000000] [--xmem] [--quiet] firmware.elf
 *
 * --xmem adds 56 KB of external SRAM (data space up to 0xFFFF, as the XMEM interface maps it), for
 * the firmware-xmem.elf build that measures models too large for the internal 8 KB.
 *
 * stdout, one event per line (flushed at once):
 *   pty /dev/pts/N        first line: open this path with any serial library
 *   reset N CAUSE         the AVR was reset (CAUSE: watchdog or signal); N counts resets
 *   cycles C I            answer to SIGUSR2: C = CPU cycles since start (summed over resets),
 *                         I = instructions executed since start
 *   stack USED FREE       after each "cycles" line and before "exit": the deepest stack use
 *                         since the last boot and the SRAM never touched (from the port's paint)
 *   exit C I STATE        on the way out (SIGTERM / SIGINT / the core stopped or crashed)
 * stdin, one command per line (optional): "adc CH VALUE" sets analog channel CH (0..15) to a
 *   10-bit reading VALUE (0..1023, on a 5 V reference); "pin PORT BIT LEVEL" drives an input pin
 *   (PORT a letter A..L). Output pin changes on the GPIO port pins the firmware offers are printed
 *   as "pin PORT BIT LEVEL".
 * Environment (debugging): SIMAVR_PTY_PROFILE=FILE writes, at exit, how many instructions ran
 *   at each flash byte address ("ADDR COUNT" lines, hex address); SIMAVR_PTY_FLASH_DUMP=FILE
 *   writes the whole flash.
 * Signals: SIGTERM / SIGINT stop; SIGUSR1 resets the AVR (as the reset pin would: SRAM and flash
 *   are kept); SIGUSR2 prints the cycle counter.
 *
 * Why not simavr's own uart_pty part: it prints to stdout, makes a shared /tmp/simavr-uart0
 * symlink, and feeds the UART from a second thread while the core runs. Here everything runs on
 * one thread: between instructions the runner moves bytes from the pty to the UART only while the
 * UART's receive FIFO (64 entries in libsimavr) has room and the receiver is enabled. Bytes the
 * firmware has not taken yet stay in the runner's buffer and, behind it, in the kernel's pty
 * buffer, which blocks the writer: nothing is lost however fast the host writes. The firmware's
 * own ring buffer must not drop bytes either (ports/avr/port_avr.c stops taking bytes from the
 * UART when its ring is full, so they wait in the UART FIFO).
 *
 * The ELF is loaded here from its program headers (every PT_LOAD segment at its physical
 * address), not with libsimavr's loader, which only copies .text and .data: the boot-section code
 * (.bootloader, placed at the top of flash) must be loaded too.
 *
 * While the AVR sleeps (the firmware's idle loop) with no byte on its way in, the runner waits on
 * the pty for at most the emulated time to the next timer event, so an idle firmware costs no host
 * CPU and emulated time keeps pace with wall time; while it computes or receives, emulated time
 * runs as fast as the host allows (received bytes still arrive at the UART's baud rate in
 * emulated time).
 * Cycle counts are the emulator's own (exact).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "sim_avr.h"
#include "sim_io.h"
#include "sim_irq.h"
#include "avr_uart.h"
#include "avr_ioport.h"
#include "avr_adc.h"
#include "avr_eeprom.h"

/* The accessors of libsimavr's UART FIFO type (declared in avr_uart.h, defined per user). */
DEFINE_FIFO(uint16_t, uart_fifo);

static volatile sig_atomic_t g_stop, g_reset_req, g_report_req;

static void on_signal(int sig) {
    if (sig == SIGUSR1) g_reset_req = 1;
    else if (sig == SIGUSR2) g_report_req = 1;
    else g_stop = 1;
}

static int g_quiet;
static void logger(avr_t *avr, const int level, const char *fmt, va_list ap) {
    (void)avr;
    if (level > LOG_WARNING && !(level == LOG_ERROR)) return;
    if (g_quiet && level != LOG_ERROR) return;
    fputs("simavr: ", stderr);
    vfprintf(stderr, fmt, ap);
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("simavr-pty: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* ---- ELF loading ------------------------------------------------------------------------- */

static uint16_t g_heap_start; /* 0 when the ELF has no __heap_start symbol */
static uint16_t g_stack_top;  /* __stack: the initial stack pointer (RAMEND unless linked otherwise) */

static void load_elf(avr_t *avr, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open %s: %s", path, strerror(errno));
    Elf32_Ehdr eh;
    if (fread(&eh, sizeof eh, 1, f) != 1 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS32 || eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_AVR)
        die("%s is not a 32-bit little-endian AVR ELF file", path);
    if (eh.e_phentsize != sizeof(Elf32_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64)
        die("%s: bad program header table", path);
    uint8_t *ee = NULL;
    uint32_t ee_size = 0;
    uint32_t flash_top = 0;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf32_Phdr ph;
        if (fseek(f, (long)(eh.e_phoff + i * sizeof ph), SEEK_SET) != 0 || fread(&ph, sizeof ph, 1, f) != 1)
            die("%s: truncated program header", path);
        if (ph.p_type != PT_LOAD || ph.p_filesz == 0) continue;
        uint8_t *buf = malloc(ph.p_filesz);
        if (!buf) die("out of memory");
        if (fseek(f, (long)ph.p_offset, SEEK_SET) != 0 || fread(buf, 1, ph.p_filesz, f) != ph.p_filesz)
            die("%s: truncated segment", path);
        uint32_t a = ph.p_paddr;
        if (a < 0x800000u) {                       /* program flash */
            if ((uint64_t)a + ph.p_filesz > (uint64_t)avr->flashend + 1)
                die("%s: segment at 0x%x (%u bytes) does not fit the %u-byte flash", path, a,
                    ph.p_filesz, avr->flashend + 1);
            memcpy(avr->flash + a, buf, ph.p_filesz);
            if (a + ph.p_filesz > flash_top) flash_top = a + ph.p_filesz;
            free(buf);
        } else if (a >= 0x810000u && a < 0x820000u) { /* EEPROM image */
            uint32_t off = a - 0x810000u;
            uint32_t end = off + ph.p_filesz;
            if (end > avr->e2end + 1) die("%s: EEPROM segment does not fit", path);
            uint8_t *n = realloc(ee, end > ee_size ? end : ee_size);
            if (!n) die("out of memory");
            if (end > ee_size) { memset(n + ee_size, 0xff, end - ee_size); ee_size = end; }
            ee = n;
            memcpy(ee + off, buf, ph.p_filesz);
            free(buf);
        } else {
            free(buf);                             /* fuses, lock bits, signature: ignored */
        }
    }
    /* __heap_start (the first SRAM byte after .noinit): where the stack's paint begins. */
    if (eh.e_shentsize == sizeof(Elf32_Shdr) && eh.e_shnum > 0 && eh.e_shnum < 1024) {
        for (unsigned i = 0; i < eh.e_shnum; i++) {
            Elf32_Shdr sh, strh;
            if (fseek(f, (long)(eh.e_shoff + i * sizeof sh), SEEK_SET) != 0 || fread(&sh, sizeof sh, 1, f) != 1) break;
            if (sh.sh_type != SHT_SYMTAB || sh.sh_entsize != sizeof(Elf32_Sym) || sh.sh_link >= eh.e_shnum) continue;
            if (fseek(f, (long)(eh.e_shoff + sh.sh_link * sizeof strh), SEEK_SET) != 0 || fread(&strh, sizeof strh, 1, f) != 1) break;
            for (uint32_t k = 0; k < sh.sh_size / sizeof(Elf32_Sym); k++) {
                Elf32_Sym sym;
                char name[16];
                if (fseek(f, (long)(sh.sh_offset + k * sizeof sym), SEEK_SET) != 0 || fread(&sym, sizeof sym, 1, f) != 1) break;
                if (sym.st_name >= strh.sh_size) continue;
                if (fseek(f, (long)(strh.sh_offset + sym.st_name), SEEK_SET) != 0) break;
                size_t got = fread(name, 1, sizeof name - 1, f);
                name[got] = 0;
                if (!strcmp(name, "__heap_start")) g_heap_start = (uint16_t)(sym.st_value & 0xFFFF);
                if (!strcmp(name, "__stack")) g_stack_top = (uint16_t)(sym.st_value & 0xFFFF);
            }
        }
    }
    fclose(f);
    if (flash_top == 0) die("%s: no program segment", path);
    /* Any address in flash may be executed (the boot section lies far above .text). */
    avr->codeend = avr->flashend;
    if (ee) {
        avr_eeprom_desc_t d = { .ee = ee, .offset = 0, .size = ee_size };
        avr_ioctl(avr, AVR_IOCTL_EEPROM_SET, &d);
        free(ee);
    }
}

/* ---- the pty bridge ---------------------------------------------------------------------- */

static int g_master = -1, g_slave = -1;
static avr_t *g_avr;
static avr_uart_t *g_uart;            /* UART0's state inside libsimavr (for its FIFO level) */
static avr_irq_t *g_uart_in;          /* the IRQ that hands the UART one received byte */

static uint8_t g_rx[4096];            /* read from the pty, not yet given to the UART */
static size_t g_rx_len, g_rx_off;
static uint8_t *g_tx;                 /* written by the AVR, not yet taken by the pty */
static size_t g_tx_len, g_tx_cap, g_tx_dropped;

static void on_uart_out(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq; (void)param;
    if (g_tx_len == g_tx_cap) {
        if (g_tx_cap >= (1u << 24)) { g_tx_dropped++; return; } /* nobody reads: keep 16 MiB */
        size_t cap = g_tx_cap ? g_tx_cap * 2 : 4096;
        uint8_t *n = realloc(g_tx, cap);
        if (!n) { g_tx_dropped++; return; }
        g_tx = n;
        g_tx_cap = cap;
    }
    g_tx[g_tx_len++] = (uint8_t)value;
}

static void tx_flush(void) {
    while (g_tx_len > 0) {
        ssize_t w = write(g_master, g_tx, g_tx_len);
        if (w <= 0) return;                    /* EAGAIN: the pty is full, try again later */
        memmove(g_tx, g_tx + w, g_tx_len - (size_t)w);
        g_tx_len -= (size_t)w;
    }
}

static int uart_can_take(void) {
    /* The receiver must be enabled (a byte given to a disabled UART is dropped) and the UART's
     * FIFO must have room (a byte given to a full FIFO is an overrun, also dropped). */
    if (!avr_regbit_get(g_avr, g_uart->rxen)) return 0;
    return !uart_fifo_isfull(&g_uart->input);
}

static void rx_pump(void) {
    if (g_rx_off == g_rx_len) {
        ssize_t r = read(g_master, g_rx, sizeof g_rx);
        if (r > 0) { g_rx_len = (size_t)r; g_rx_off = 0; }
    }
    while (g_rx_off < g_rx_len && uart_can_take())
        avr_raise_irq(g_uart_in, g_rx[g_rx_off++]);
}

/* ---- GPIO and ADC over stdin/stdout ------------------------------------------------------ */

static char g_line[256];
static size_t g_line_len;
static int g_stdin_open = 1;

/* Output pins only (DDR bit set: the firmware drives it), and only real changes. */
static int8_t g_pin_last[2][8] = { { -1, -1, -1, -1, -1, -1, -1, -1 }, { -1, -1, -1, -1, -1, -1, -1, -1 } };
static void on_pin_change(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq;
    uintptr_t code = (uintptr_t)param;
    char port = (char)(code >> 8);
    unsigned bit = (unsigned)(code & 0xff);
    uint16_t ddr = port == 'A' ? 0x21 : 0x24; /* DDRA, DDRB (data-space addresses) */
    if (!(g_avr->data[ddr] & (1u << bit))) return;
    int8_t *last = &g_pin_last[port == 'A' ? 0 : 1][bit];
    int8_t v = value ? 1 : 0;
    if (*last == v) return;
    *last = v;
    printf("pin %c %u %d\n", port, bit, v);
    fflush(stdout);
}

static void stdin_command(const char *s) {
    unsigned ch, v, bit;
    char port;
    if (sscanf(s, "adc %u %u", &ch, &v) == 2 && ch < 16 && v < 1024) {
        avr_irq_t *irq = avr_io_getirq(g_avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0 + ch);
        if (irq) avr_raise_irq(irq, (v * 5000u + 1022u) / 1023u); /* millivolts, AVCC = 5 V, rounded up */
    } else if (sscanf(s, "pin %c %u %u", &port, &bit, &v) == 3 && port >= 'A' && port <= 'L' && bit < 8) {
        avr_irq_t *irq = avr_io_getirq(g_avr, AVR_IOCTL_IOPORT_GETIRQ(port), bit);
        if (irq) avr_raise_irq(irq, v ? 1 : 0);
    } else if (*s) {
        fprintf(stderr, "simavr-pty: unknown stdin command: %s\n", s);
    }
}

static void stdin_pump(void) {
    if (!g_stdin_open) return;
    /* poll first: stdin stays blocking (it may be the caller's terminal) */
    struct pollfd p = { .fd = 0, .events = POLLIN };
    if (poll(&p, 1, 0) <= 0) return;
    if (p.revents & (POLLERR | POLLNVAL)) { g_stdin_open = 0; return; }
    char buf[256];
    ssize_t r = read(0, buf, sizeof buf);
    if (r == 0) { g_stdin_open = 0; return; }
    if (r < 0) return;
    for (ssize_t i = 0; i < r; i++) {
        if (buf[i] == '\n' || buf[i] == '\r') {
            g_line[g_line_len] = 0;
            stdin_command(g_line);
            g_line_len = 0;
        } else if (g_line_len + 1 < sizeof g_line) {
            g_line[g_line_len++] = buf[i];
        }
    }
}

/* ---- cycle accounting, resets ------------------------------------------------------------ */

static uint64_t g_cycle_base;          /* cycles of the runs before the last reset */
static avr_cycle_count_t g_last_cycle;
static uint64_t g_resets;
static uint64_t g_instructions;
static uint32_t *g_profile;     /* SIMAVR_PTY_PROFILE: instructions executed per flash word */

static uint64_t total_cycles(void) { return g_cycle_base + g_avr->cycle; }

static void note_reset(const char *cause) {
    g_resets++;
    printf("reset %llu %s\n", (unsigned long long)g_resets, cause);
    fflush(stdout);
}

/* Every reset (the watchdog's, or ours on SIGUSR1) goes through avr_reset, which calls the
 * core's reset hook: chain ours behind it. Some libsimavr versions also set the cycle counter
 * back to 0 there; the base keeps the total running either way. */
static void (*g_core_reset)(avr_t *avr);
static int g_resetting_by_signal;
static void on_avr_reset(avr_t *avr) {
    if (g_core_reset) g_core_reset(avr);
    note_reset(g_resetting_by_signal ? "signal" : "watchdog");
}

static void check_reset(void) {
    if (g_avr->cycle < g_last_cycle) g_cycle_base += g_last_cycle;
    g_last_cycle = g_avr->cycle;
}

/* Deepest stack use since the last boot, from the port's 0xA5 paint (port_avr.c). */
static void report_stack(void) {
    unsigned top = g_stack_top ? g_stack_top : g_avr->ramend;
    if (!g_heap_start || g_heap_start > top || top > g_avr->ramend) return;
    unsigned a = g_heap_start;
    while (a <= top && g_avr->data[a] == 0xA5) a++;
    printf("stack %u %u\n", top + 1 - a, a - g_heap_start);
    fflush(stdout);
}

static void pump(void) {
    check_reset();
    tx_flush();
    rx_pump();
    stdin_pump();
}

/* While the AVR sleeps: wait on the pty (and stdin) for at most the emulated time to the next
 * timer event, then let the core add that time to its cycle counter. */
static void sleep_cb(avr_t *avr, avr_cycle_count_t how_long) {
    pump();
    /* Bytes on their way in (in the UART's FIFO or ours): the AVR wakes when the next one is
     * "received"; let emulated time jump there instead of waiting for it in real time. */
    if (!uart_fifo_isempty(&g_uart->input) || g_rx_off < g_rx_len) return;
    uint64_t us = (uint64_t)how_long * 1000000u / avr->frequency;
    if (us > 20000) us = 20000;
    if (us == 0) return;
    struct pollfd p[3];
    int n = 0;
    int want_rx = g_rx_off == g_rx_len;        /* buffer empty: new bytes can be read */
    if (want_rx) p[n++] = (struct pollfd){ .fd = g_master, .events = POLLIN };
    if (g_tx_len) p[n++] = (struct pollfd){ .fd = g_master, .events = POLLOUT };
    if (g_stdin_open) p[n++] = (struct pollfd){ .fd = 0, .events = POLLIN };
    struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)us * 1000 };
    ppoll(p, (nfds_t)n, &ts, NULL);
    pump();
}

/* ---- main -------------------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr, "usage: simavr-pty [--mcu NAME] [--freq HZ] [--xmem] [--quiet] firmware.elf\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *mcu = "atmega2560";
    unsigned long freq = 16000000ul;
    const char *elf = NULL;
    int xmem = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mcu") && i + 1 < argc) mcu = argv[++i];
        else if (!strcmp(argv[i], "--freq") && i + 1 < argc) freq = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--quiet")) g_quiet = 1;
        else if (!strcmp(argv[i], "--xmem")) xmem = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) usage();
        else if (argv[i][0] == '-') { fprintf(stderr, "simavr-pty: unknown option %s\n", argv[i]); usage(); }
        else if (!elf) elf = argv[i];
        else usage();
    }
    if (!elf) usage();
    if (freq < 1000 || freq > 100000000ul) die("bad --freq %lu", freq);

    avr_global_logger_set(logger);
    avr_t *avr = avr_make_mcu_by_name(mcu);
    if (!avr) die("unknown mcu %s", mcu);
    /* --xmem: external SRAM on the ATmega2560's XMEM interface, data space up to 0xFFFF (for
     * measuring models that do not fit the internal 8 KB; see README.md). */
    if (xmem) avr->ramend = 0xFFFF;
    if (avr_init(avr) != 0) die("cannot initialise %s", mcu);
    avr->frequency = (uint32_t)freq;
    avr->vcc = avr->avcc = avr->aref = 5000;   /* millivolts: the ADC's reference is AVCC */
    avr->log = LOG_ERROR;
    g_avr = avr;
    load_elf(avr, elf);

    /* UART0: stop libsimavr printing its output, take the bytes it sends, find its FIFO. */
    uint32_t flags = 0;
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~(uint32_t)(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    for (avr_io_t *io = avr->io_port; io; io = io->next)
        if (io->kind && !strcmp(io->kind, "uart") && ((avr_uart_t *)io)->name == '0') g_uart = (avr_uart_t *)io;
    if (!g_uart) die("%s has no UART0", mcu);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), on_uart_out, NULL);
    g_uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);

    /* GPIO pins the firmware drives (ports/avr/port_avr.c: port A and PB7). */
    for (int b = 0; b < 8; b++)
        avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('A'), b), on_pin_change,
                                (void *)(uintptr_t)(('A' << 8) | b));
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('B'), 7), on_pin_change,
                            (void *)(uintptr_t)(('B' << 8) | 7));

    /* The pty, raw in both directions. The runner keeps the slave end open too, so that the
     * master never reports a hang-up between two clients and no byte is echoed back. */
    g_master = posix_openpt(O_RDWR | O_NOCTTY);
    if (g_master < 0 || grantpt(g_master) != 0 || unlockpt(g_master) != 0) die("cannot create a pty: %s", strerror(errno));
    const char *slave = ptsname(g_master);
    if (!slave) die("ptsname failed");
    g_slave = open(slave, O_RDWR | O_NOCTTY);
    if (g_slave < 0) die("cannot open %s: %s", slave, strerror(errno));
    struct termios tio;
    if (tcgetattr(g_slave, &tio) == 0) { cfmakeraw(&tio); tcsetattr(g_slave, TCSANOW, &tio); }
    if (tcgetattr(g_master, &tio) == 0) { cfmakeraw(&tio); tcsetattr(g_master, TCSANOW, &tio); }
    fcntl(g_master, F_SETFL, fcntl(g_master, F_GETFL) | O_NONBLOCK);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    printf("pty %s\n", slave);
    fflush(stdout);

    const char *prof = getenv("SIMAVR_PTY_PROFILE");
    if (prof) g_profile = calloc(0x20000, sizeof *g_profile);
    prctl(PR_SET_TIMERSLACK, 1UL);  /* the idle waits are short: keep them close to asked */
    avr->sleep = sleep_cb;
    g_core_reset = avr->reset;
    avr->reset = on_avr_reset;
    int state = cpu_Running;
    uint32_t tick = 0;
    while (!g_stop) {
        if (avr->state == cpu_Running) {
            g_instructions++;
            if (g_profile) g_profile[(avr->pc >> 1) & 0x1FFFF]++;
        }
        state = avr_run(avr);
        if (state == cpu_Done || state == cpu_Crashed) break;
        /* Every 512 instructions (about 40 us of emulated time): move bytes, look for resets. */
        if ((++tick & 511u) == 0) {
            pump();
            if (g_reset_req) {
                g_reset_req = 0;
                check_reset();
                g_resetting_by_signal = 1;
                avr_reset(avr);
                g_resetting_by_signal = 0;
                check_reset();
            }
            if (g_report_req) {
                g_report_req = 0;
                printf("cycles %llu %llu\n", (unsigned long long)total_cycles(), (unsigned long long)g_instructions);
                fflush(stdout);
                report_stack();
            }
        }
    }
    check_reset();
    tx_flush();
    report_stack();
    const char *how = state == cpu_Crashed ? "crashed" : state == cpu_Done ? "done" : "stopped";
    printf("exit %llu %llu %s\n", (unsigned long long)total_cycles(), (unsigned long long)g_instructions, how);
    fflush(stdout);
    if (g_profile) {              /* "word-address count" lines, for avr-addr2line / avr-nm */
        FILE *f = fopen(prof, "w");
        if (f) {
            for (uint32_t i = 0; i < 0x20000; i++)
                if (g_profile[i]) fprintf(f, "%05x %u\n", i << 1, g_profile[i]);
            fclose(f);
        }
    }
    const char *dump = getenv("SIMAVR_PTY_FLASH_DUMP"); /* debugging: the whole flash at exit */
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (f) { fwrite(avr->flash, 1, avr->flashend + 1, f); fclose(f); }
    }
    if (g_tx_dropped) fprintf(stderr, "simavr-pty: %zu output bytes dropped (nobody read the pty)\n", g_tx_dropped);
    avr_terminate(avr);
    return state == cpu_Crashed ? 1 : 0;
}
