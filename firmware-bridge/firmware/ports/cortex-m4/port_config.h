/* Sizes of the cortex-m4 port (QEMU mps2-an386). Two builds of the same port:
 *
 * - cortex-m4 (default): sized like an STM32F4 (192 KB SRAM, 256 KB for the model in "flash").
 * - cortex-m4-l4r5 (make cortex-m4-l4r5, -DFL_M4_L4R5=1): sized like the STM32L4R5ZI of the
 *   NUCLEO-L4R5ZI, the board of MLPerf Tiny's published Cortex-M4 results: 640 KB SRAM (SRAM1-3,
 *   contiguous from 0x20000000) and 2 MB flash, of which 1.5 MB hold the model and 512 KB the code.
 *   The frame buffer takes an f32 input of up to 28,000 floats (VWW's 3x96x96 = 27,648) in one
 *   frame, since it is also where the graph input lives during an inference; the response buffer
 *   takes 1,000 f32 outputs (AD's 640).
 *
 * The emulated board has 4 MB of SSRAM at 0x20000000, so both fit; the linker script of each
 * build caps RAM at the part's size, so the arena, the buffers and the stack must fit together. */
#ifndef FL_PORT_CONFIG_H
#define FL_PORT_CONFIG_H
#if defined(FL_M4_L4R5) && FL_M4_L4R5
#define FL_ARENA_BYTES (480u * 1024u)
#define FL_MAX_FRAME (112u * 1024u)  /* 114,688 raw bytes: 28,000 f32 plus the request's keys */
#define FL_MAX_RESPONSE 4096u
#define FL_BOARD_NAME "cortex-m4 l4r5 (qemu mps2-an386, 640 KB RAM / 2 MB flash like an STM32L4R5ZI)"
#define FL_MODEL_CAPACITY (1536u * 1024u)
#else
#define FL_ARENA_BYTES (128u * 1024u)
#define FL_MAX_FRAME 4096u          /* f32 784-input (3136 B) or u8 input expanded in place */
#define FL_MAX_RESPONSE 1024u
#define FL_BOARD_NAME "cortex-m4 (qemu mps2-an386)"
#define FL_MODEL_CAPACITY (256u * 1024u)
#endif
#define FL_TEXT_LINE 96u
#define FL_PORT_HAS_CYCLES 1        /* virtual ns of SysTick time = instructions under -icount shift=0 */
#define FL_PROFILE_STEPS 64u        /* stats.layers: instructions per step of the last inference */
#ifndef FL_FAST_KERNELS
#define FL_FAST_KERNELS 1           /* core/ops/rows.c: VMLA blocks (make cortex-m4-ref: the portable loops) */
#endif
#define FL_PIN_COUNT 4u
#define FL_CPU_HZ 25000000u
#endif
