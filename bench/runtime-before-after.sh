#!/bin/bash
# Our engine alone, before and after the arena session: the same .flm files (bench/out/, made by
# bench/runtime.ts), the same inputs, warm-up and iterations, each run in a process of its own.
#   bench/runtime-before-after.sh OLD_CHECKOUT   (e.g. `git archive c9d9be3 | tar -x -C OLD`, with node_modules linked)
# "before" runs OLD_CHECKOUT/cli/benchRunner.ts (its place then) through tsx; "after" runs this checkout's bench/lib/runner.ts
# through tsx and compiled (bench/out/js, made by bench/runtime.ts). Writes bench/results/runtime-before-after.txt.
set -euo pipefail
OLD="${1:?usage: $0 OLD_CHECKOUT}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/bench/results/runtime-before-after.txt"
cd "$ROOT"
{
  echo "# $0 $OLD ($(git -C "$ROOT" rev-parse --short HEAD) vs $(basename "$OLD")); $(date -u +%FT%TZ); $(nproc) cores"
  for spec in "lenet5_fashion_auto_r10 1 5000" "lenet5_fashion_auto_r10 32 200" "mlp_fashion_auto_r10 1 20000" "mlp_fashion_auto_r10 32 2000"; do
    set -- $spec
    job="{\"engine\":\"flm\",\"path\":\"$ROOT/bench/out/$1.flm\",\"shape\":[$2,1,28,28],\"warmup\":$3,\"iters\":500,\"seed\":1,\"backends\":[\"wasm-simd\"]}"
    b=$(cd "$OLD" && node --import tsx cli/benchRunner.ts "$job")
    at=$(node --import tsx bench/lib/runner.ts "$job")
    aj=$(node bench/out/js/bench/lib/runner.js "$job")
    python3 - "$1" "$2" "$3" "$b" "$at" "$aj" <<'PY'
import json, sys
name, batch, warm = sys.argv[1:4]
for label, raw in zip(['before (tsx)', 'after (tsx)', 'after (compiled)'], sys.argv[4:]):
    d = json.loads(raw)
    print(f"{name} batch {batch:>2} ({warm} warm-up, 500 timed) {label:17} p50 {d['p50Ms']:.4f} ms  p95 {d['p95Ms']:.4f} ms  peak RSS {d['peakRssMB']:.1f} MB")
PY
  done
} | tee "$OUT"
