#!/usr/bin/env bash
# Builds bench/peak/simdpeak.wasm (SIMD128: f32x4.mul / f32x4.add chains) and
# bench/peak/simdpeak-relaxed.wasm (the same plus f32x4.relaxed_madd chains) from simdpeak.c, with
# clang 16 as scripts/build-wasm.sh builds the relaxed kernels (clang 14 emits the relaxed-SIMD
# proposal's pre-standard opcodes). Both modules are committed; bench/lib/simdPeak.ts loads them.
#   bench/peak/build.sh          rebuild both in place
#   bench/peak/build.sh --check  rebuild into a temp dir; fail if either differs from the committed one
set -euo pipefail
DIR="$(cd "$(dirname "$0")" && pwd)"
CLANG="${CLANG_RELAXED:-clang-16}"
command -v "$CLANG" >/dev/null 2>&1 || { echo "peak build: $CLANG not found (apt-get install clang-16 lld-16)" >&2; exit 3; }
command -v wasm-ld >/dev/null 2>&1 || { echo "peak build: wasm-ld not found (apt-get install lld)" >&2; exit 3; }
mode=build
case "${1:-}" in
  --check) mode=check ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$DIR"
FLAGS=(--target=wasm32 -O2 -msimd128 -ffreestanding -nostdlib -std=c99 -Wall -Wextra -Werror -fno-ident
  -Wl,--no-entry -Wl,--strip-debug)
"$CLANG" "${FLAGS[@]}" -o "$tmp/simdpeak.wasm" simdpeak.c
"$CLANG" "${FLAGS[@]}" -mrelaxed-simd -DPEAK_RELAXED -o "$tmp/simdpeak-relaxed.wasm" simdpeak.c
status=0
for f in simdpeak.wasm simdpeak-relaxed.wasm; do
  if [ "$mode" = check ]; then
    if cmp -s "$tmp/$f" "$DIR/$f"; then echo "peak build: $f is up to date"
    else echo "peak build: bench/peak/$f differs from a fresh build of simdpeak.c; run bench/peak/build.sh and commit" >&2; status=1; fi
  else
    cp "$tmp/$f" "$DIR/$f"
    echo "peak build: wrote bench/peak/$f ($(wc -c <"$DIR/$f") bytes)"
  fi
done
exit $status
