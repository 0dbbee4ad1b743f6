#!/bin/sh
# size-report.sh SIZE_TOOL ELF PORT OUT.json: print the flash/RAM use of a build, write it as JSON.
# flash = text + data (code, constants, initialised data's load image); ram = data + bss (the
# arena, the buffers and, on the cortex-m4 port, the stack). A NOLOAD model store section
# (.store, the emulated board's model flash) is reported apart as model_store.
set -e
tool=$1 elf=$2 port=$3 out=$4
set -- $($tool -B "$elf" | awk 'NR == 2 { print $1, $2, $3 }')
text=$1 data=$2 bss=$3
store=$($tool -A "$elf" | awk '$1 == ".store" { print $2 }')
store=${store:-0}
bss=$((bss - store))
flash=$((text + data)) ram=$((data + bss))
printf '%s: text %s data %s bss %s -> flash %s bytes, ram %s bytes' "$port" "$text" "$data" "$bss" "$flash" "$ram"
[ "$store" -gt 0 ] && printf ', model store %s bytes' "$store"
printf '\n'
printf '{"port":"%s","elf":"%s","text":%s,"data":%s,"bss":%s,"flash":%s,"ram":%s,"model_store":%s}\n' "$port" "$elf" "$text" "$data" "$bss" "$flash" "$ram" "$store" > "$out"
