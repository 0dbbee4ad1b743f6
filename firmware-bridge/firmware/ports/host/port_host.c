/* port_host.c: the host port. The core runs as a Linux process; its "UART" is the master side of a
 * pseudo-terminal whose slave path is printed as the first stdout line ("pty /dev/pts/N").
 *
 *   fl-host [--flash BYTES] [--store FILE] [--model MODEL.flm]
 *                                                 serve the protocol on a new pty; --model puts
 *                                                 a model in the store as if it had been uploaded
 *   fl-host --run MODEL.flm IN.bin OUT.bin        direct mode: f32 LE in, f32 LE out
 *   fl-host --check MODEL.flm                     prepare only (and one inference on zeros)
 *
 * FL_HOST_NOMAP=1 makes the store look like flash that is not memory-mapped (port_model_ptr NULL).
 * SIGUSR1 resets the device as a power glitch would: the boot count grows, volatile state (the
 * prepared model, counters, partial frames, pending input) is lost, the model store is kept.
 * Virtual pins for Firmata: FL_HOST_PINS names a text file of input levels ("A0 512", "D2 1"
 * lines, re-read when it changes); FL_HOST_PINS_OUT names a file the port rewrites on every pin
 * write with one "PIN MODE VALUE" line per pin set as output or PWM. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "../../core/fl.h"

static int master_fd = -1, slave_fd = -1;
static uint8_t inbuf[4096];
static size_t in_len, in_pos;
static uint32_t boots = 1;
static volatile sig_atomic_t glitch;
static jmp_buf reset_jmp;
static int jmp_ready;

static uint8_t store[FL_HOST_STORE_MAX];
static uint32_t capacity = 4u * 1024u * 1024u;
static const char *store_path;
static fl_store_meta saved_meta;
static int have_meta;

/* ---- clock ------------------------------------------------------------------------------------ */
uint32_t port_micros(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint32_t)((uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u);
}
uint32_t port_cycles(void) { return 0; }
uint32_t port_clock_hz(void) { return 0; }
uint32_t port_boot_count(void) { return boots; }

void port_init(void) {}

void port_reset(void) {
    boots++;
    if (jmp_ready) longjmp(reset_jmp, 1);
    exit(3);
}

/* ---- UART on the pty master -------------------------------------------------------------------- */
int port_getc(void) {
    if (in_pos < in_len) return inbuf[in_pos++];
    if (master_fd < 0) return -1;
    {
        ssize_t n = read(master_fd, inbuf, sizeof inbuf);
        if (n <= 0) return -1;
        in_len = (size_t)n;
        in_pos = 0;
    }
    return inbuf[in_pos++];
}

void port_write(const uint8_t *buf, uint16_t n) {
    uint32_t start = port_micros();
    if (master_fd < 0) { fwrite(buf, 1, n, stdout); return; }
    while (n) {
        ssize_t w = write(master_fd, buf, n);
        if (w > 0) { buf += w; n = (uint16_t)(n - w); continue; }
        if (w < 0 && errno != EAGAIN && errno != EINTR) return;
        /* nobody reads the line: a UART does not wait forever, drop after 2 s */
        if (port_micros() - start > 2000000u) return;
        {
            struct pollfd p = { master_fd, POLLOUT, 0 };
            poll(&p, 1, 10);
        }
    }
}

void port_flush(void) { if (master_fd >= 0) tcdrain(master_fd); else fflush(stdout); }

void port_idle(void) {
    struct pollfd p = { master_fd, POLLIN, 0 };
    if (master_fd >= 0) poll(&p, 1, 5);
}

/* ---- model store ------------------------------------------------------------------------------ */
uint32_t port_model_capacity(void) { return capacity; }
/* FL_HOST_NOMAP=1: behave like a store that is not memory-mapped (AVR flash), so every read
 * goes through port_model_read; the tests run the kernels both ways */
static int nomap;
const uint8_t *port_model_ptr(void) { return nomap ? NULL : store; }
void port_model_read(uint32_t off, uint8_t *buf, uint16_t n) {
    if (off >= capacity || n > capacity - off) { memset(buf, 0xFF, n); return; }
    memcpy(buf, store + off, n);
}
int port_model_write(uint32_t off, const uint8_t *buf, uint16_t n) {
    if (off >= capacity || n > capacity - off) return -1;
    memcpy(store + off, buf, n);
    if (store_path) {
        int fd = open(store_path, O_WRONLY | O_CREAT, 0644);
        if (fd < 0) return -1;
        if (pwrite(fd, buf, n, (off_t)off + (off_t)sizeof saved_meta) != (ssize_t)n) { close(fd); return -1; }
        close(fd);
    }
    return 0;
}
void port_model_sync(void) {}

int port_meta_load(fl_store_meta *m) {
    if (!have_meta) return -1;
    *m = saved_meta;
    return 0;
}
void port_meta_save(const fl_store_meta *m) {
    saved_meta = *m;
    have_meta = 1;
    if (store_path) {
        int fd = open(store_path, O_WRONLY | O_CREAT, 0644);
        if (fd >= 0) { if (pwrite(fd, m, sizeof *m, 0) != (ssize_t)sizeof *m) { /* reported on next load */ } close(fd); }
    }
}

static void load_store_file(void) {
    int fd;
    ssize_t n;
    if (!store_path) return;
    fd = open(store_path, O_RDONLY);
    if (fd < 0) return;
    if (read(fd, &saved_meta, sizeof saved_meta) == (ssize_t)sizeof saved_meta && saved_meta.magic == FL_STORE_MAGIC && saved_meta.have <= capacity) {
        n = pread(fd, store, saved_meta.have, (off_t)sizeof saved_meta);
        if (n == (ssize_t)saved_meta.have) have_meta = 1;
    }
    close(fd);
}

/* ---- virtual pins ----------------------------------------------------------------------------- */
static uint16_t pin_in[FL_PIN_COUNT], analog_in[16];
static uint8_t pin_md[FL_PIN_COUNT];
static uint16_t pin_out[FL_PIN_COUNT];
static struct timespec pins_mtime;

static void pins_refresh(void) {
    const char *p = getenv("FL_HOST_PINS");
    struct stat st;
    FILE *f;
    char name[16];
    long v;
    if (!p || stat(p, &st) != 0) return;
    if (st.st_mtim.tv_sec == pins_mtime.tv_sec && st.st_mtim.tv_nsec == pins_mtime.tv_nsec) return;
    pins_mtime = st.st_mtim;
    f = fopen(p, "r");
    if (!f) return;
    while (fscanf(f, "%15s %ld", name, &v) == 2) {
        if (name[0] == 'A') { int ch = atoi(name + 1); if (ch >= 0 && ch < 6) analog_in[ch] = (uint16_t)(v < 0 ? 0 : v > 1023 ? 1023 : v); }
        else if (name[0] == 'D') { int pin = atoi(name + 1); if (pin >= 0 && pin < (int)FL_PIN_COUNT) pin_in[pin] = v ? 1 : 0; }
    }
    fclose(f);
}

static void pins_dump(void) {
    const char *p = getenv("FL_HOST_PINS_OUT");
    char tmp[512];
    FILE *f;
    unsigned i;
    if (!p) return;
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    f = fopen(tmp, "w");
    if (!f) return;
    for (i = 0; i < FL_PIN_COUNT; i++)
        if (pin_md[i] == 0x01 || pin_md[i] == 0x03) fprintf(f, "%u %u %u\n", i, pin_md[i], pin_out[i]);
    fclose(f);
    rename(tmp, p);
}

/* pins 0, 1: the serial line; 2..13 digital (PWM on 3, 5, 6, 9, 10, 11); 14..19 = A0..A5 */
uint16_t port_pin_caps(uint8_t p) {
    if (p < 2 || p >= FL_PIN_COUNT) return 0;
    if (p >= 14) return FL_PIN_CAP_INPUT | FL_PIN_CAP_OUTPUT | FL_PIN_CAP_ANALOG | FL_PIN_CAP_PULLUP;
    if (p == 3 || p == 5 || p == 6 || p == 9 || p == 10 || p == 11) return FL_PIN_CAP_INPUT | FL_PIN_CAP_OUTPUT | FL_PIN_CAP_PWM | FL_PIN_CAP_PULLUP;
    return FL_PIN_CAP_INPUT | FL_PIN_CAP_OUTPUT | FL_PIN_CAP_PULLUP;
}
uint8_t port_pin_analog_channel(uint8_t p) { return p >= 14 && p < 20 ? (uint8_t)(p - 14) : 127; }
void port_pin_mode(uint8_t p, uint8_t mode) { if (p < FL_PIN_COUNT) { pin_md[p] = mode; pins_dump(); } }
void port_pin_write(uint8_t p, uint16_t v) { if (p < FL_PIN_COUNT) { pin_out[p] = v; pins_dump(); } }
uint8_t port_pin_read(uint8_t p) {
    pins_refresh();
    if (p >= FL_PIN_COUNT) return 0;
    if (p >= 14 && !pin_in[p]) return analog_in[p - 14] >= 512;
    return (uint8_t)pin_in[p];
}
uint16_t port_analog_read(uint8_t ch) { pins_refresh(); return ch < 16 ? analog_in[ch] : 0; }

/* ---- direct mode ---------------------------------------------------------------------------- */
static long read_file(const char *path, uint8_t *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f) return -1;
    n = fread(buf, 1, cap, f);
    if (!feof(f)) { fclose(f); return -2; }
    fclose(f);
    return (long)n;
}

static int load_model(const char *path) {
    long n = read_file(path, store, capacity);
    if (n == -1) { fprintf(stderr, "fl-host: cannot read %s\n", path); return -1; }
    if (n == -2) { fprintf(stderr, "fl-host: TOO_LARGE: %s is larger than the model store (%u bytes)\n", path, capacity); return -1; }
    if (fl_prepare((uint32_t)n)) { fprintf(stderr, "fl-host: %s: %s\n", fl_err_code, fl_err_msg); return -2; }
    return 0;
}

static int direct(int argc, char **argv, int check) {
    static float x[FL_MAX_FRAME / 4];
    long n;
    FILE *f;
    int r = load_model(argv[0]);
    if (r) return r == -1 ? 1 : 2;
    if (check) {
        memset(x, 0, sizeof x);
        fl_eval(x);
        printf("ok arena=%u tables=%u peak_scratch=%u in=%u out=%u prepare=%u\n", fl_m.plan_arena, fl_m.tables_bytes, fl_m.peak_scratch, fl_m.in_numel, fl_m.out_numel, fl_m.prep_bytes);
        return 0;
    }
    if (argc < 3) { fprintf(stderr, "fl-host: --run needs MODEL IN OUT\n"); return 1; }
    {
        /* several samples: one inference per in_numel floats */
        static uint8_t all[16u << 20];
        uint32_t k, count, per = fl_m.in_numel * 4u;
        n = read_file(argv[1], all, sizeof all);
        if (n < 0) { fprintf(stderr, "fl-host: cannot read %s (or larger than 16 MiB)\n", argv[1]); return 1; }
        if (n == 0 || (uint32_t)n % per) { fprintf(stderr, "fl-host: BAD_INPUT: %s has %ld bytes, not a multiple of %u (f32 x %u)\n", argv[1], n, per, fl_m.in_numel); return 1; }
        f = fopen(argv[2], "wb");
        if (!f) { fprintf(stderr, "fl-host: cannot write %s\n", argv[2]); return 1; }
        count = (uint32_t)n / per;
        for (k = 0; k < count; k++) {
            memcpy(x, all + (size_t)k * per, per);
            fl_eval(x);
            fwrite(fl_output(), 4, fl_m.out_numel, f);
        }
    }
    fclose(f);
    return 0;
}

/* ---- serve -------------------------------------------------------------------------------------- */
static void on_usr1(int s) { (void)s; glitch = 1; }

static int open_pty(void) {
    struct termios t;
    char *name;
    master_fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_fd < 0 || grantpt(master_fd) || unlockpt(master_fd) || !(name = ptsname(master_fd))) { perror("fl-host: pty"); return -1; }
    /* keep the slave open ourselves: raw mode from the start (no echo of the device's input back
     * to it) and no EIO on the master while no client has the line open */
    slave_fd = open(name, O_RDWR | O_NOCTTY);
    if (slave_fd < 0) { perror("fl-host: pty slave"); return -1; }
    tcgetattr(slave_fd, &t);
    cfmakeraw(&t);
    tcsetattr(slave_fd, TCSANOW, &t);
    fcntl(master_fd, F_SETFL, fcntl(master_fd, F_GETFL) | O_NONBLOCK);
    printf("pty %s\n", name);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    int i;
    const char *preload = NULL;
    nomap = getenv("FL_HOST_NOMAP") && getenv("FL_HOST_NOMAP")[0] == '1';
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--flash") && i + 1 < argc) {
            unsigned long v = strtoul(argv[++i], NULL, 0);
            if (v == 0 || v > FL_HOST_STORE_MAX) { fprintf(stderr, "fl-host: --flash must be 1..%u\n", FL_HOST_STORE_MAX); return 1; }
            capacity = (uint32_t)v;
        } else if (!strcmp(argv[i], "--store") && i + 1 < argc) store_path = argv[++i];
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) preload = argv[++i];
        else if (!strcmp(argv[i], "--run") && i + 3 < argc + 0 && argc - i - 1 >= 3) return direct(argc - i - 1, argv + i + 1, 0);
        else if (!strcmp(argv[i], "--check") && i + 1 < argc) return direct(argc - i - 1, argv + i + 1, 1);
        else {
            fprintf(stderr, "usage: fl-host [--flash BYTES] [--store FILE] [--model MODEL.flm] | --run MODEL.flm IN.bin OUT.bin | --check MODEL.flm\n");
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
    }
    load_store_file();
    if (preload) {
        long n = read_file(preload, store, capacity);
        fl_store_meta m;
        if (n < 0) { fprintf(stderr, "fl-host: cannot read %s (or larger than the store)\n", preload); return 1; }
        m.magic = FL_STORE_MAGIC; m.size = (uint32_t)n; m.have = (uint32_t)n; m.ready = 1;
        m.crc = fl_crc32(store, (uint32_t)n);
        if (store_path) { int fd = open(store_path, O_WRONLY | O_CREAT, 0644); if (fd >= 0) { if (pwrite(fd, store, (size_t)n, (off_t)sizeof m) != n) perror("fl-host: store"); close(fd); } }
        port_meta_save(&m);
    }
    if (open_pty()) return 1;
    if (setjmp(reset_jmp)) {
        /* a reset: volatile state starts over, and bytes that arrived during it are lost */
        uint8_t junk[256];
        in_len = in_pos = 0;
        while (read(master_fd, junk, sizeof junk) > 0) {}
    }
    jmp_ready = 1;
    fl_boot();
    for (;;) {
        int c;
        if (glitch) { glitch = 0; boots++; longjmp(reset_jmp, 1); }
        c = port_getc();
        if (c < 0) { fl_firmata_tick(); port_idle(); continue; }
        {
            /* feed the byte through the core's receive path */
            extern void fl_rx_byte(uint8_t c);
            fl_rx_byte((uint8_t)c);
        }
    }
}
