/* Sizes of the host port (a Linux process on a pty). */
#ifndef FL_PORT_CONFIG_H
#define FL_PORT_CONFIG_H
#define FL_ARENA_BYTES (4u * 1024u * 1024u)
#define FL_MAX_FRAME 32768u
#define FL_MAX_RESPONSE 16384u
#define FL_TEXT_LINE 128u
#define FL_BOARD_NAME "host"
#define FL_PORT_HAS_CYCLES 0
#define FL_PIN_COUNT 20u
#ifndef FL_FAST_KERNELS
#define FL_FAST_KERNELS 1           /* core/ops/rows.c (make host-ref: the portable loops) */
#endif
#define FL_HOST_STORE_MAX (16u * 1024u * 1024u)
#endif
