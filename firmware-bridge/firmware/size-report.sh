#!/bin/sh
# size-report.sh SIZE_TOOL ELF PORT OUT.json: print the flash/RAM use of a build, write it as JSON.
# flash = text + data (code, constants, initialised data's load image); ram = data + bss.
set -e
tool=$1 elf=$2 port=$3 out=$4
set -- $($tool -B "$elf" | awk 'NR == 2 { print $1, $2, $3 }')
text=$1 data=$2 bss=$3
flash=$((text + data)) ram=$((data + bss))
printf '%s: text %s data %s bss %s -> flash %s bytes, ram %s bytes\n' "$port" "$text" "$data" "$bss" "$flash" "$ram"
printf '{"port":"%s","elf":"%s","text":%s,"data":%s,"bss":%s,"flash":%s,"ram":%s}\n' "$port" "$elf" "$text" "$data" "$bss" "$flash" "$ram" > "$out"
