/* arena.c: the state the model reader and the kernels share: the prepared model's tables and the
 * one arena (activations and scratch at its start, the tables at its end), and the frame buffer
 * (the protocol's input, where the int8-full path also quantises the graph input). Defined apart
 * from all of them so that none calls into another for it. */
#include "fl.h"

fl_model fl_m;
static union { uint64_t a; uint8_t b[FL_ARENA_BYTES]; } arena_store;
uint8_t *fl_arena = arena_store.b;

static union { uint32_t a; uint8_t b[(FL_FRAME_BUF + 3u) & ~3u]; } frame_store;
uint8_t *fl_frame = frame_store.b;
