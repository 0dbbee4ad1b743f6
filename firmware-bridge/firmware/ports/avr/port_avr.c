/*
 * The ATmega2560 port (16 MHz): UART0 with an interrupt-driven receive ring, Timer1 as a cycle
 * and microsecond counter, the model store in program flash (written page by page by the
 * boot-section code in boot_spm.c, read with ELPM), the store description in EEPROM, the boot
 * count in .noinit SRAM, reset by the watchdog, and 13 GPIO pins for Firmata.
 */
#include <avr/eeprom.h>
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/pgmspace.h>
#include <avr/sleep.h>
#include <avr/wdt.h>
#include <stdint.h>
#include <string.h>

#include "port.h"
#include "boot_spm.h"

#if F_CPU != 16000000UL
#error "port_avr.c: port_micros() assumes F_CPU = 16 MHz"
#endif
#if SPM_PAGESIZE != FL_MODEL_PAGE
#error "FL_MODEL_PAGE must equal SPM_PAGESIZE"
#endif

/* ---- watchdog off at start-up -------------------------------------------------------------
 * After a watchdog reset the watchdog stays enabled at its shortest period; turn it off before
 * the C start-up code (clearing .bss takes longer than 15 ms on nothing but a slow clock, but be
 * safe). MCUSR is kept for the boot count's reset cause. */
uint8_t fl_avr_reset_cause __attribute__((section(".noinit")));
void fl_avr_wdt_off(void) __attribute__((naked, used, section(".init3")));
void fl_avr_wdt_off(void) {
    fl_avr_reset_cause = MCUSR;
    MCUSR = 0;
    wdt_disable();
    /* Paint the free SRAM between the last static byte and the stack with 0xA5, so that the
     * deepest stack use can be read back (the runner reports it: "stack USED FREE"). */
    extern uint8_t __heap_start;
    uint8_t *p = &__heap_start;
    uint8_t *sp = (uint8_t *)SP;
    while (p < sp - 8) *p++ = 0xA5;
}

#if FL_AVR_XMEM
/* External SRAM (firmware-xmem.elf): enable the XMEM interface before the C start-up code puts
 * .data and .bss there. No wait states: 0x2200-0xFFFF is one sector. */
void fl_avr_xmem_on(void) __attribute__((naked, used, section(".init1")));
void fl_avr_xmem_on(void) { XMCRA = _BV(SRE); }
#endif

/* ---- clock: Timer1 counts CPU cycles ------------------------------------------------------ */

static volatile uint32_t t1_overflows;

ISR(TIMER1_OVF_vect) { t1_overflows++; }

/* The cycle counter as (overflows, TCNT1), consistent even when TCNT1 just wrapped. */
static void read_cycles(uint32_t *hi, uint16_t *lo) {
    uint8_t sreg = SREG;
    cli();
    uint16_t l = TCNT1;
    uint32_t h = t1_overflows;
    if ((TIFR1 & _BV(TOV1)) && l < 0x8000u) h++;   /* overflow pending, not yet counted */
    SREG = sreg;
    *hi = h;
    *lo = l;
}

uint32_t port_cycles(void) {
    uint32_t h;
    uint16_t l;
    read_cycles(&h, &l);
    return (h << 16) | l;
}

uint32_t port_micros(void) {
    uint32_t h;
    uint16_t l;
    read_cycles(&h, &l);
    return (h << 12) | (l >> 4);                      /* 16 cycles per microsecond */
}

uint32_t port_clock_hz(void) { return F_CPU; }

/* ---- boot count, reset -------------------------------------------------------------------- */

#define BOOT_MAGIC 0x464c4254ul /* "FLBT" */
static struct {
    uint32_t magic, count, check;
} boot_state __attribute__((section(".noinit")));

uint32_t port_boot_count(void) { return boot_state.count; }

void port_reset(void) {
    cli();
    wdt_enable(WDTO_15MS);
    for (;;) {
    }
}

/* ---- UART0 -------------------------------------------------------------------------------- */

static uint8_t rx_ring[FL_AVR_RX_RING];
static volatile uint8_t rx_head, rx_tail;
#define RX_MASK ((uint8_t)(FL_AVR_RX_RING - 1u))

/* One received byte into the ring. When the ring is full the byte is left in the UART and the
 * interrupt is switched off until port_getc makes room: on the emulator the UART's FIFO then
 * fills and the runner holds further bytes back, so none is lost (on a real part, the UART's
 * two-byte buffer overruns instead, as it would with any firmware that falls behind). */
ISR(USART0_RX_vect) {
    uint8_t h = rx_head;
    uint8_t n = (uint8_t)((h + 1u) & RX_MASK);
    if (n == rx_tail) {
        UCSR0B &= (uint8_t)~_BV(RXCIE0);
        return;
    }
    rx_ring[h] = UDR0;
    rx_head = n;
}

int port_getc(void) {
    uint8_t t = rx_tail;
    if (t == rx_head) return -1;
    uint8_t c = rx_ring[t];
    rx_tail = (uint8_t)((t + 1u) & RX_MASK);
    if (!(UCSR0B & _BV(RXCIE0))) {
        uint8_t sreg = SREG;
        cli();
        UCSR0B |= _BV(RXCIE0);
        SREG = sreg;
    }
    return c;
}

static uint8_t tx_pending; /* a byte was written since the last port_flush finished */

void port_write(const uint8_t *buf, uint16_t n) {
    if (n) tx_pending = 1;
    while (n--) {
        while (!(UCSR0A & _BV(UDRE0))) {
        }
        UCSR0A |= _BV(TXC0);              /* clear "transmit complete" (written as one) */
        UDR0 = (uint8_t)fl_avr_rd((const char *)buf); /* a string literal of the core is in flash */
        buf++;
    }
}

void port_flush(void) {
    if (!tx_pending || !(UCSR0B & _BV(TXEN0))) return;
    /* TXC0 was cleared with every byte written; it rises when the last one has left. */
    while (!(UCSR0A & _BV(TXC0))) {
    }
    tx_pending = 0;
}

void port_idle(void) {
    /* Sleep (idle mode: timers and UART keep running) until the next interrupt, unless a byte
     * came in since the caller looked. sei; sleep runs the sleep before any interrupt. */
    cli();
    if (rx_head == rx_tail) {
        set_sleep_mode(SLEEP_MODE_IDLE);
        sleep_enable();
        sei();
        sleep_cpu();
        sleep_disable();
    }
    sei();
}

/* ---- model store: program flash between the firmware image and the NRWW section ---------- */

extern char __data_load_end; /* linker: end of the flash image (.text + .data initialisers) */
static uint32_t store_base;     /* flash byte address of store offset 0 (page aligned) */

uint32_t port_model_capacity(void) { return FL_AVR_STORE_END - store_base; }

uint32_t fl_avr_store_base(void); /* the int8-full kernels' flash reads (qavr.c) */
uint32_t fl_avr_store_base(void) { return store_base; }

const uint8_t *port_model_ptr(void) { return NULL; }

void port_model_read(uint32_t off, uint8_t *buf, uint16_t n) {
    memcpy_PF(buf, (uint_farptr_t)(store_base + off), n);
}

/* The page being filled: store offset of its first byte (or -1), bytes already in the AVR's
 * temporary page buffer (a whole number of words), and an even-offset byte waiting for its odd
 * partner (or -1). next_off is the store offset the next written byte is expected at. */
static int32_t pg_off = -1;
static uint16_t pg_fill;
static int16_t pg_pend = -1;
static uint32_t next_off;

static void page_begin(uint32_t off) {
    fl_spm_discard();
    pg_off = (int32_t)(off & ~(uint32_t)(FL_MODEL_PAGE - 1u));
    pg_fill = 0;
    pg_pend = -1;
    uint16_t upto = (uint16_t)(off - (uint32_t)pg_off);
    uint32_t a = store_base + (uint32_t)pg_off;
    /* Bytes before off in this page were programmed earlier (a synced partial page): they go
     * back into the page buffer, since the page is erased and written whole. */
    while ((uint16_t)(pg_fill + 2u) <= upto) {
        fl_spm_fill(a + pg_fill, pgm_read_word_far(a + pg_fill));
        pg_fill += 2u;
    }
    if (upto & 1u) pg_pend = (int16_t)pgm_read_byte_far(a + pg_fill);
}

static void page_program(void) {
    if (pg_off < 0) return;
    uint32_t a = store_base + (uint32_t)pg_off;
    if (pg_pend >= 0) {
        fl_spm_fill(a + pg_fill, (uint16_t)(0xFF00u | (uint8_t)pg_pend));
        pg_fill += 2u;
        pg_pend = -1;
    }
    /* Fill the rest of the page buffer with erased words. A real part writes 0xFFFF for words
     * never filled; libsimavr 1.6 writes 0x00FF there, so the port never leaves one unfilled. */
    while (pg_fill < FL_MODEL_PAGE) {
        fl_spm_fill(a + pg_fill, 0xFFFFu);
        pg_fill += 2u;
    }
    fl_spm_program(a);
    pg_off = -1;
}

int port_model_write(uint32_t off, const uint8_t *buf, uint16_t n) {
    if (off > port_model_capacity() || n > port_model_capacity() - off) return -1;
    if (pg_off >= 0 && off != next_off) {
        /* Not a continuation: whatever was buffered belongs to an abandoned upload. */
        fl_spm_discard();
        pg_off = -1;
    }
    while (n--) {
        if (pg_off < 0) page_begin(off);
        uint8_t b = *buf++;
        if (pg_pend < 0) {
            pg_pend = b;
        } else {
            fl_spm_fill(store_base + (uint32_t)pg_off + pg_fill, (uint16_t)((uint8_t)pg_pend | ((uint16_t)b << 8)));
            pg_fill += 2u;
            pg_pend = -1;
            if (pg_fill == FL_MODEL_PAGE) page_program();
        }
        off++;
    }
    next_off = off;
    return 0;
}

void port_model_sync(void) {
    if (pg_off >= 0 && (pg_fill > 0 || pg_pend >= 0)) page_program();
}

/* The store description lives in EEPROM, with the store's flash address (a rebuilt firmware
 * moves the store) and a check word. */
typedef struct {
    fl_store_meta m;
    uint32_t base;
    uint32_t check;
} ee_meta;
static ee_meta ee_slot EEMEM;

static uint32_t meta_check(const ee_meta *e) {
    const uint8_t *p = (const uint8_t *)e;
    uint32_t h = 2166136261ul;                 /* FNV-1a over everything but the check word */
    for (uint8_t i = 0; i < offsetof(ee_meta, check); i++) h = (h ^ p[i]) * 16777619ul;
    return h;
}

int port_meta_load(fl_store_meta *m) {
    ee_meta e;
    eeprom_read_block(&e, &ee_slot, sizeof e);
    if (e.check != meta_check(&e) || e.base != store_base || e.m.magic != FL_STORE_MAGIC) return -1;
    *m = e.m;
    return 0;
}

void port_meta_save(const fl_store_meta *m) {
    port_model_sync(); /* an EEPROM write would spoil a half-filled page buffer on a real part */
    ee_meta e;
    e.m = *m;
    e.base = store_base;
    e.check = meta_check(&e);
    eeprom_update_block(&e, &ee_slot, sizeof e);
}

/* ---- GPIO for Firmata --------------------------------------------------------------------- */

uint16_t port_pin_caps(uint8_t p) {
    if (p < 8u) return FL_PIN_CAP_INPUT | FL_PIN_CAP_OUTPUT | FL_PIN_CAP_PULLUP;
    if (p < 12u) return FL_PIN_CAP_INPUT | FL_PIN_CAP_ANALOG;
    if (p == 12u) return FL_PIN_CAP_OUTPUT | FL_PIN_CAP_PWM;
    return 0;
}

uint8_t port_pin_analog_channel(uint8_t p) { return (p >= 8u && p < 12u) ? (uint8_t)(p - 8u) : 127u; }

void port_pin_mode(uint8_t p, uint8_t mode) {
    if (p < 8u) {
        uint8_t bit = _BV(p);
        if (mode == 0x01) { DDRA |= bit; }
        else if (mode == 0x0B) { DDRA &= (uint8_t)~bit; PORTA |= bit; }
        else { DDRA &= (uint8_t)~bit; PORTA &= (uint8_t)~bit; }
    } else if (p < 12u) {
        uint8_t bit = _BV(p - 8u);
        DDRF &= (uint8_t)~bit;
        PORTF &= (uint8_t)~bit;
    } else if (p == 12u) {
        DDRB |= _BV(PB7);
        if (mode == 0x03) {
            TCCR0A = _BV(COM0A1) | _BV(WGM01) | _BV(WGM00); /* fast PWM on OC0A */
            TCCR0B = _BV(CS01) | _BV(CS00);
        } else {
            TCCR0A = 0;
            TCCR0B = 0;
        }
    }
}

void port_pin_write(uint8_t p, uint16_t value) {
    if (p < 8u) {
        if (value) PORTA |= _BV(p);
        else PORTA &= (uint8_t)~_BV(p);
    } else if (p == 12u) {
        if (TCCR0A & _BV(COM0A1)) OCR0A = value > 255u ? 255u : (uint8_t)value;
        else if (value) PORTB |= _BV(PB7);
        else PORTB &= (uint8_t)~_BV(PB7);
    }
}

uint8_t port_pin_read(uint8_t p) {
    if (p < 8u) return (PINA >> p) & 1u;
    if (p < 12u) return (PINF >> (p - 8u)) & 1u;
    if (p == 12u) return (PINB >> PB7) & 1u;
    return 0;
}

uint16_t port_analog_read(uint8_t ch) {
    if (ch > 15u) return 0;
    ADMUX = (uint8_t)(_BV(REFS0) | (ch & 7u));               /* AVCC reference */
    if (ch & 8u) ADCSRB |= _BV(MUX5);
    else ADCSRB &= (uint8_t)~_BV(MUX5);
    ADCSRA = _BV(ADEN) | _BV(ADSC) | _BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0); /* 125 kHz */
    while (ADCSRA & _BV(ADSC)) {
    }
    return ADC;
}

/* ---- setup -------------------------------------------------------------------------------- */

void port_init(void) {
    cli();
    if (boot_state.magic != BOOT_MAGIC || boot_state.check != ~boot_state.count) {
        boot_state.magic = BOOT_MAGIC;
        boot_state.count = 0;
    }
    boot_state.count++;
    boot_state.check = ~boot_state.count;

    /* UART0, 8N1, double speed. */
    uint16_t ubrr = (uint16_t)((F_CPU + 4ul * FL_AVR_BAUD) / (8ul * FL_AVR_BAUD) - 1ul);
    UBRR0H = (uint8_t)(ubrr >> 8);
    UBRR0L = (uint8_t)ubrr;
    UCSR0A = _BV(U2X0);
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);
    UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
    rx_head = rx_tail = 0;

    /* Timer1: normal mode, no prescaler, overflow interrupt every 65536 cycles. */
    TCCR1A = 0;
    TCCR1B = _BV(CS10);
    TCNT1 = 0;
    t1_overflows = 0;
    TIFR1 = _BV(TOV1);
    TIMSK1 = _BV(TOIE1);

    /* The store starts on the first whole page after the firmware image. */
    store_base = (pgm_get_far_address(__data_load_end) + FL_MODEL_PAGE - 1u) & ~(uint32_t)(FL_MODEL_PAGE - 1u);
    pg_off = -1;
    sei();
}
