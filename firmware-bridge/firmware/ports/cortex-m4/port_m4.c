/* port_m4.c: the cortex-m4 port for QEMU mps2-an386: CMSDK APB UART0 at 0x40004000 (RX
 * interrupt wakes WFI), SysTick on the 25 MHz CPU clock for microseconds and the "cycles" count,
 * the model store and its description in NOLOAD SSRAM that survives SYSRESETREQ, reset through
 * SCB AIRCR, and the FPGAIO LEDs / buttons as Firmata pins. */
#include <string.h>
#include "../../core/fl.h"

#define REG(a) (*(volatile uint32_t *)(a))
#define UART0 0x40004000u
#define U_DATA REG(UART0 + 0x00)
#define U_STATE REG(UART0 + 0x04)
#define U_CTRL REG(UART0 + 0x08)
#define U_INTCLR REG(UART0 + 0x0C)
#define U_BAUDDIV REG(UART0 + 0x10)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define NVIC_ISER0 REG(0xE000E100u)
#define SCB_AIRCR REG(0xE000ED0Cu)
#define FPGAIO_LED REG(0x40028000u)
#define FPGAIO_BUTTON REG(0x40028008u)

/* kept across resets: not loaded, not zeroed */
typedef struct {
    uint32_t magic, boots;
    fl_store_meta meta;
    uint32_t meta_valid;
} keep_t;
__attribute__((section(".model_store"))) static uint8_t store[FL_MODEL_CAPACITY];
__attribute__((section(".model_store"))) static keep_t keep;
#define KEEP_MAGIC 0x4b454550u

static volatile uint32_t wraps;

void SysTick_Handler(void) { wraps++; }
void UART0RX_Handler(void) { U_INTCLR = 2u; }

void port_init(void) {
    if (keep.magic != KEEP_MAGIC) { memset(&keep, 0, sizeof keep); keep.magic = KEEP_MAGIC; }
    keep.boots++;
    U_BAUDDIV = FL_CPU_HZ / 115200u;
    U_CTRL = 1u | 2u | 8u; /* TX, RX, RX interrupt */
    NVIC_ISER0 = 1u << 0;  /* UART0 RX is IRQ 0 */
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7u;         /* CPU clock, interrupt on wrap, enable */
}

/* SysTick ticks since boot (25 per microsecond), 64-bit */
static uint64_t ticks(void) {
    uint32_t w1, w2, v;
    do { w1 = wraps; v = SYST_CVR; w2 = wraps; } while (w1 != w2);
    return (uint64_t)w1 * 0x1000000u + (0xFFFFFFu - v);
}

uint32_t port_micros(void) { return (uint32_t)(ticks() / (FL_CPU_HZ / 1000000u)); }
/* virtual nanoseconds (40 per tick): with -icount shift=0 QEMU advances virtual time 1 ns per
 * instruction, so this counts emulated instructions */
uint32_t port_cycles(void) { return (uint32_t)(ticks() * (1000000000u / FL_CPU_HZ)); }
uint32_t port_clock_hz(void) { return FL_CPU_HZ; }
uint32_t port_boot_count(void) { return keep.boots; }

void port_reset(void) {
    __asm volatile("dsb");
    SCB_AIRCR = 0x05FA0004u; /* VECTKEY | SYSRESETREQ */
    __asm volatile("dsb");
    for (;;) {}
}

/* sleep until an interrupt, without losing a byte that arrived after the last port_getc: with
 * interrupts masked, WFI still wakes on a pending one */
void port_idle(void) {
    __asm volatile("cpsid i" ::: "memory");
    if (!(U_STATE & 2u)) __asm volatile("wfi");
    __asm volatile("cpsie i" ::: "memory");
}

int port_getc(void) {
    if (U_STATE & 2u) return (int)(U_DATA & 0xFFu);
    return -1;
}

void port_write(const uint8_t *buf, uint16_t n) {
    while (n--) {
        while (U_STATE & 1u) {}
        U_DATA = *buf++;
    }
}

void port_flush(void) { while (U_STATE & 1u) {} }

uint32_t port_model_capacity(void) { return FL_MODEL_CAPACITY; }
const uint8_t *port_model_ptr(void) { return store; }
void port_model_read(uint32_t off, uint8_t *buf, uint16_t n) { memcpy(buf, store + off, n); }
int port_model_write(uint32_t off, const uint8_t *buf, uint16_t n) {
    if (off > FL_MODEL_CAPACITY || n > FL_MODEL_CAPACITY - off) return -1;
    memcpy(store + off, buf, n);
    return 0;
}
void port_model_sync(void) {}
int port_meta_load(fl_store_meta *m) {
    if (keep.meta_valid != 1) return -1;
    *m = keep.meta;
    return 0;
}
void port_meta_save(const fl_store_meta *m) { keep.meta = *m; keep.meta_valid = 1; }

/* Firmata pins: 0, 1 = FPGAIO LED0, LED1 (outputs); 2, 3 = FPGAIO buttons 0, 1 (inputs) */
uint16_t port_pin_caps(uint8_t p) { return p < 2 ? FL_PIN_CAP_OUTPUT : p < 4 ? FL_PIN_CAP_INPUT : 0; }
uint8_t port_pin_analog_channel(uint8_t p) { (void)p; return 127; }
void port_pin_mode(uint8_t p, uint8_t mode) { (void)p; (void)mode; }
void port_pin_write(uint8_t p, uint16_t v) {
    if (p < 2) { if (v) FPGAIO_LED |= 1u << p; else FPGAIO_LED &= ~(1u << p); }
}
uint8_t port_pin_read(uint8_t p) { return p >= 2 && p < 4 ? (uint8_t)((FPGAIO_BUTTON >> (p - 2)) & 1u) : 0; }
uint16_t port_analog_read(uint8_t ch) { (void)ch; return 0; }

int main(void) {
    fl_run();
    return 0;
}
