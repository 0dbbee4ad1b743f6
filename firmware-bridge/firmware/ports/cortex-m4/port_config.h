/* Sizes of the cortex-m4 port (QEMU mps2-an386, sized like an STM32F4: 192 KB SRAM, 256 KB for
 * the model in "flash"). The linker script caps RAM at 192 KB, so the arena, the buffers and the
 * stack must fit together. */
#ifndef FL_PORT_CONFIG_H
#define FL_PORT_CONFIG_H
#define FL_ARENA_BYTES (128u * 1024u)
#define FL_MAX_FRAME 4096u          /* f32 784-input (3136 B) or u8 input expanded in place */
#define FL_MAX_RESPONSE 1024u
#define FL_TEXT_LINE 96u
#define FL_BOARD_NAME "cortex-m4 (qemu mps2-an386)"
#define FL_PORT_HAS_CYCLES 1        /* virtual ns of SysTick time = instructions under -icount shift=0 */
#define FL_PIN_COUNT 4u
#define FL_MODEL_CAPACITY (256u * 1024u)
#define FL_CPU_HZ 25000000u
#endif
