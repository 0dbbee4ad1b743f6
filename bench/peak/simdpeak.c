// The WebAssembly SIMD peak of one core: independent f32x4 chains held in registers, no memory
// traffic inside the loop, so that the time is the engine's issue rate of f32x4.mul, f32x4.add
// (and, in the relaxed build, f32x4.relaxed_madd) and nothing else. bench/lib/simdPeak.ts times
// these; bench/kernels.ts divides the GEMM's GFLOP/s by the best of them.
//
// Each export runs `rounds` rounds; a round advances every chain one step (the loop is kept
// rolled: unrolled, clang groups each chain's steps together, and the engine then issues them in
// that order, which measured slower), then writes every chain's final value to out[] so that nothing is dead code. The
// multipliers and addends come in as arguments, so the compiler cannot fold x * 1 or x + 0 away;
// the bench passes values that keep the chains finite and normal (no denormal slow path); the
// test passes others and checks every lane against the same chain computed in JavaScript.
//
//   mul_add:  12 chains c = c * m + d, multiply then add (f32x4.mul, f32x4.add: the operations of
//             a GEMM in SIMD128, which has no fused multiply-add, one multiply per add). 14 live
//             vectors fit the 16 XMM registers the engine allocates from.
//   mul_only / add_only: 12 chains of one kind (how many multiplies, or adds, issue per cycle).
//   madd:     (relaxed build) 10 chains c = c * m + d in one f32x4.relaxed_madd.
// A chain needs (latency x pipes) independent copies to keep every pipe busy: 12 chains of a
// 3-cycle multiply then a 3-cycle add feed 2 + 2 pipes, 10 chains of a 4-cycle fused multiply-add
// 2 pipes (latencies and pipes: GCC's znver4/znver5 model, gcc/config/i386/zn4zn5.md).
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name), visibility("default")))

static v128_t lane_seed(int i) {
  float b = 1.0f + (float)i * 0.0625f;
  return wasm_f32x4_make(b, b + 0.25f, b + 0.5f, b + 0.75f);
}

EXPORT(mul_add) void mul_add(int rounds, float mf, float df, float *out) {
  v128_t m = wasm_f32x4_splat(mf), d = wasm_f32x4_splat(df);
  v128_t c0 = lane_seed(0), c1 = lane_seed(1), c2 = lane_seed(2), c3 = lane_seed(3), c4 = lane_seed(4), c5 = lane_seed(5);
  v128_t c6 = lane_seed(6), c7 = lane_seed(7), c8 = lane_seed(8), c9 = lane_seed(9), c10 = lane_seed(10), c11 = lane_seed(11);
#define MA(c) c = wasm_f32x4_add(wasm_f32x4_mul(c, m), d)
#pragma clang loop unroll(disable)
  for (int r = 0; r < rounds; r++) {
    MA(c0); MA(c1); MA(c2); MA(c3); MA(c4); MA(c5); MA(c6); MA(c7); MA(c8); MA(c9); MA(c10); MA(c11);
  }
  v128_t all[12] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
  for (int i = 0; i < 12; i++) wasm_v128_store(out + 4 * i, all[i]);
}

EXPORT(mul_only) void mul_only(int rounds, float mf, float *out) {
  v128_t m = wasm_f32x4_splat(mf);
  v128_t c0 = lane_seed(0), c1 = lane_seed(1), c2 = lane_seed(2), c3 = lane_seed(3), c4 = lane_seed(4), c5 = lane_seed(5);
  v128_t c6 = lane_seed(6), c7 = lane_seed(7), c8 = lane_seed(8), c9 = lane_seed(9), c10 = lane_seed(10), c11 = lane_seed(11);
#pragma clang loop unroll(disable)
  for (int r = 0; r < rounds; r++) {
    c0 = wasm_f32x4_mul(c0, m); c1 = wasm_f32x4_mul(c1, m); c2 = wasm_f32x4_mul(c2, m);
    c3 = wasm_f32x4_mul(c3, m); c4 = wasm_f32x4_mul(c4, m); c5 = wasm_f32x4_mul(c5, m);
    c6 = wasm_f32x4_mul(c6, m); c7 = wasm_f32x4_mul(c7, m); c8 = wasm_f32x4_mul(c8, m);
    c9 = wasm_f32x4_mul(c9, m); c10 = wasm_f32x4_mul(c10, m); c11 = wasm_f32x4_mul(c11, m);
  }
  v128_t all[12] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
  for (int i = 0; i < 12; i++) wasm_v128_store(out + 4 * i, all[i]);
}

EXPORT(add_only) void add_only(int rounds, float df, float *out) {
  v128_t d = wasm_f32x4_splat(df);
  v128_t c0 = lane_seed(0), c1 = lane_seed(1), c2 = lane_seed(2), c3 = lane_seed(3), c4 = lane_seed(4), c5 = lane_seed(5);
  v128_t c6 = lane_seed(6), c7 = lane_seed(7), c8 = lane_seed(8), c9 = lane_seed(9), c10 = lane_seed(10), c11 = lane_seed(11);
#pragma clang loop unroll(disable)
  for (int r = 0; r < rounds; r++) {
    c0 = wasm_f32x4_add(c0, d); c1 = wasm_f32x4_add(c1, d); c2 = wasm_f32x4_add(c2, d);
    c3 = wasm_f32x4_add(c3, d); c4 = wasm_f32x4_add(c4, d); c5 = wasm_f32x4_add(c5, d);
    c6 = wasm_f32x4_add(c6, d); c7 = wasm_f32x4_add(c7, d); c8 = wasm_f32x4_add(c8, d);
    c9 = wasm_f32x4_add(c9, d); c10 = wasm_f32x4_add(c10, d); c11 = wasm_f32x4_add(c11, d);
  }
  v128_t all[12] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
  for (int i = 0; i < 12; i++) wasm_v128_store(out + 4 * i, all[i]);
}

#ifdef PEAK_RELAXED
#define RMADD(acc) __builtin_wasm_relaxed_madd_f32x4((acc), m, d)
EXPORT(madd) void madd(int rounds, float mf, float df, float *out) {
  v128_t m = wasm_f32x4_splat(mf), d = wasm_f32x4_splat(df);
  v128_t c0 = lane_seed(0), c1 = lane_seed(1), c2 = lane_seed(2), c3 = lane_seed(3), c4 = lane_seed(4);
  v128_t c5 = lane_seed(5), c6 = lane_seed(6), c7 = lane_seed(7), c8 = lane_seed(8), c9 = lane_seed(9);
#pragma clang loop unroll(disable)
  for (int r = 0; r < rounds; r++) {
    c0 = RMADD(c0); c1 = RMADD(c1); c2 = RMADD(c2); c3 = RMADD(c3); c4 = RMADD(c4);
    c5 = RMADD(c5); c6 = RMADD(c6); c7 = RMADD(c7); c8 = RMADD(c8); c9 = RMADD(c9);
  }
  v128_t all[10] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9};
  for (int i = 0; i < 10; i++) wasm_v128_store(out + 4 * i, all[i]);
}
#endif
