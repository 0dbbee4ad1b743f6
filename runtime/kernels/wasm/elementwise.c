// Elementwise kernels on same-shaped operands (the broadcasting cases stay in runtime/layers).
#include "kernels.h"

/* out[i] = a[i] + b[i] for i < n; out may be a or b (each element is read before it is written). */
EXPORT(add) void add(const float *a, const float *b, float *out, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const v128_t s0 = wasm_f32x4_add(wasm_v128_load(a + i), wasm_v128_load(b + i));
    const v128_t s1 = wasm_f32x4_add(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4));
    const v128_t s2 = wasm_f32x4_add(wasm_v128_load(a + i + 8), wasm_v128_load(b + i + 8));
    const v128_t s3 = wasm_f32x4_add(wasm_v128_load(a + i + 12), wasm_v128_load(b + i + 12));
    wasm_v128_store(out + i, s0);
    wasm_v128_store(out + i + 4, s1);
    wasm_v128_store(out + i + 8, s2);
    wasm_v128_store(out + i + 12, s3);
  }
  for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, wasm_f32x4_add(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  for (; i < n; i++) out[i] = a[i] + b[i];
}
