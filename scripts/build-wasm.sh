#!/usr/bin/env bash
# Builds runtime/kernels/wasm/kernels.wasm from runtime/kernels/wasm/*.c (gemm, conv, winograd,
# depthwise.c: the lane-packed depthwise kernel, pool, int8.c:
# the int8-weight GEMM that runtime/kernels/int8.ts wraps, and convgrad.c / train.c: the trainer's
# gradients, which converter/train/kernels.ts wraps).
# Also builds runtime/kernels/wasm/kernels-mt.wasm, the same sources for WebAssembly threads:
# atomics, an imported shared memory, and SCRATCH buffers (kernels.h) thread-local, each instance
# setting up its own stack and TLS block (runtime/kernels/threads.ts), and
# runtime/kernels/wasm/kernels-relaxed.wasm: the same sources with -mrelaxed-simd -DFL_RELAXED (MADD
# is f32x4.relaxed_madd), which loads use where the engine validates relaxed SIMD, and
# runtime/kernels/wasm/kernels-mt-relaxed.wasm: threads and relaxed SIMD together.
# clang 14 emits the proposal's pre-standard opcodes, which engines reject, so that module needs
# clang 16 ($CLANG_RELAXED, default clang-16; Debian bookworm: apt-get install clang-16 lld-16).
#   scripts/build-wasm.sh           rebuild the four committed modules in place
#   scripts/build-wasm.sh --check   rebuild into a temp dir; fail if any differs from the committed one (CI)
#   scripts/build-wasm.sh --out F   build to F (the threaded and relaxed modules to F with -mt / -relaxed before .wasm)
# Needs Debian clang (wasm32 target) and lld (wasm-ld). The module exports its memory and
# __heap_base; runtime/kernels/wasmKernels.ts puts its operand arena above __heap_base and grows memory.
# Deterministic: no debug info, sources in sorted order, paths relative to the source folder.
# The output depends on the clang version (it is recorded in the module's "producers" section),
# so --check must run with the same clang as the commit (Debian bookworm: clang 14).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="$ROOT/runtime/kernels/wasm"
COMMITTED="$SRC/kernels.wasm"
COMMITTED_RELAXED="$SRC/kernels-relaxed.wasm"
CLANG="${CLANG:-clang}"
CLANG_RELAXED="${CLANG_RELAXED:-clang-16}"

mode=build
out="$COMMITTED"
out_relaxed="$COMMITTED_RELAXED"
case "${1:-}" in
  --check) mode=check ;;
  --out) out="${2:?--out needs a path}"; out_relaxed="${out%.wasm}-relaxed.wasm" ;;
  "") ;;
  *) echo "usage: $0 [--check | --out FILE]" >&2; exit 2 ;;
esac

for tool in "$CLANG" wasm-ld "$CLANG_RELAXED"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-wasm: $tool not found (apt-get install clang lld)" >&2; exit 3; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
[ "$mode" = check ] && out="$tmp/kernels.wasm" && out_relaxed="$tmp/kernels-relaxed.wasm"
out_mt="${out%.wasm}-mt.wasm"
COMMITTED_MT="$SRC/kernels-mt.wasm"
COMMITTED_MT_RELAXED="$SRC/kernels-mt-relaxed.wasm"
out_mt_relaxed="${out%.wasm}-mt-relaxed.wasm"

cd "$SRC"
mapfile -t sources < <(LC_ALL=C ls -1 *.c)
# A file-scope buffer the kernels write must be SCRATCH (thread-local in the threaded build).
if grep -nE '^static +(float|int|signed|unsigned|double|short|char)[^(=]*\[' "${sources[@]}" | grep -v SCRATCH; then
  echo "build-wasm: the static buffers above must be declared SCRATCH (kernels.h) for kernels-mt.wasm" >&2
  exit 1
fi
# -msimd128: f32x4 ops; -mbulk-memory: loops that clang turns into memset/memcpy become
# memory.fill/copy instead of calls to a libc we do not link.
COMMON=(--target=wasm32 -O3 -msimd128 -mbulk-memory -ffreestanding -nostdlib -std=c99
  -Wall -Wextra -Werror -fno-ident
  -Wl,--no-entry -Wl,--export-dynamic -Wl,--export=__heap_base -Wl,--strip-debug)
"$CLANG" "${COMMON[@]}" -o "$tmp/build.wasm" "${sources[@]}"
"$CLANG_RELAXED" "${COMMON[@]}" -mrelaxed-simd -DFL_RELAXED -o "$tmp/build-relaxed.wasm" "${sources[@]}"
# Threads: shared memory imported from JavaScript (4 GiB maximum, reserved, not committed), and
# the globals each instance sets for itself (stack pointer, TLS block).
"$CLANG" "${COMMON[@]}" -matomics -mmutable-globals -ftls-model=local-exec -DFACTORLITE_THREADS -DGEMM_NC=512 \
  -Wl,--import-memory -Wl,--shared-memory -Wl,--max-memory=4294967296 \
  -Wl,--export=__stack_pointer -Wl,--export=__wasm_init_tls -Wl,--export=__tls_size -Wl,--export=__tls_align \
  -o "$tmp/build-mt.wasm" "${sources[@]}"
# Threads and relaxed SIMD together (clang 16, as the relaxed build): kernels-mt-relaxed.wasm.
"$CLANG_RELAXED" "${COMMON[@]}" -mrelaxed-simd -DFL_RELAXED \
  -matomics -mmutable-globals -ftls-model=local-exec -DFACTORLITE_THREADS -DGEMM_NC=512 \
  -Wl,--import-memory -Wl,--shared-memory -Wl,--max-memory=4294967296 \
  -Wl,--export=__stack_pointer -Wl,--export=__wasm_init_tls -Wl,--export=__tls_size -Wl,--export=__tls_align \
  -o "$tmp/build-mt-relaxed.wasm" "${sources[@]}"

if [ "$mode" = check ]; then
  status=0
  for pair in "build.wasm:$COMMITTED" "build-relaxed.wasm:$COMMITTED_RELAXED" "build-mt.wasm:$COMMITTED_MT" \
    "build-mt-relaxed.wasm:$COMMITTED_MT_RELAXED"; do
    built="$tmp/${pair%%:*}" committed="${pair#*:}"
    if cmp -s "$built" "$committed"; then
      echo "build-wasm: $committed is up to date"
    else
      echo "build-wasm: $committed differs from a fresh build of $SRC/*.c; run scripts/build-wasm.sh and commit" >&2
      status=1
    fi
  done
  exit $status
else
  cp "$tmp/build.wasm" "$out"
  cp "$tmp/build-mt.wasm" "$out_mt"
  cp "$tmp/build-relaxed.wasm" "$out_relaxed"
  cp "$tmp/build-mt-relaxed.wasm" "$out_mt_relaxed"
  echo "build-wasm: wrote $out ($(wc -c <"$out") bytes), $out_relaxed ($(wc -c <"$out_relaxed") bytes), $out_mt ($(wc -c <"$out_mt") bytes) and $out_mt_relaxed ($(wc -c <"$out_mt_relaxed") bytes)"
fi
