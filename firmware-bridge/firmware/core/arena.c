/* arena.c: the state the model reader and the kernels share: the prepared model's tables and the
 * one arena (activations and scratch at its start, the tables at its end). Defined apart from both
 * so that neither calls into the other for it. */
#include "fl.h"

fl_model fl_m;
static union { uint64_t a; uint8_t b[FL_ARENA_BYTES]; } arena_store;
uint8_t *fl_arena = arena_store.b;
