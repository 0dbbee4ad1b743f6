#!/bin/sh
# size.sh ELF MIN_STACK [avr-size] [avr-nm]: the AVR firmware's flash and SRAM use as one JSON
# object on stdout. Exits 1 (with a one-line reason on stderr) when the image runs into the model
# store's end or leaves less than MIN_STACK bytes of SRAM for the stack.
set -eu
elf=$1
min_stack=$2
size=${3:-avr-size}
nm=${4:-avr-nm}
sram_total=8192
flash_total=262144
store_end=$((0x3A000))   # flash strings from here (flashstr.h)
str_max=16384

sec() { $size -A "$elf" | awk -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print 0 }'; }
text=$(sec .text)
data=$(sec .data)
bss=$(sec .bss)
noinit=$(sec .noinit)
boot=$(sec .bootloader)
flashstr=$(sec .flashstr)
eeprom=$(sec .eeprom)
arena_hex=$($nm -S "$elf" | awk '$4 == "arena_store" { print $2; exit }')
arena=0
[ -n "$arena_hex" ] && arena=$((0x$arena_hex))

flash=$((text + data + boot + flashstr))
image_end=$((text + data))
store_base=$(( (image_end + 255) / 256 * 256 ))
store=$((store_end - store_base))
sram=$((data + bss + noinit))
stack=$((sram_total - sram))

cat <<EOF
{
  "port": "avr",
  "board": "atmega2560",
  "elf": "$elf",
  "flash": $flash,
  "flash_total": $flash_total,
  "text": $text,
  "data": $data,
  "bootloader": $boot,
  "flash_strings": $flashstr,
  "eeprom": $eeprom,
  "ram": $sram,
  "sram": $sram,
  "sram_total": $sram_total,
  "bss": $bss,
  "noinit": $noinit,
  "arena": $arena,
  "stack_left": $stack,
  "model_store": $store
}
EOF

if [ "$image_end" -gt "$store_end" ]; then
  echo "size.sh: the firmware image ($image_end bytes) runs into the no-read-while-write section at $store_end" >&2
  exit 1
fi
if [ "$flashstr" -gt "$str_max" ]; then
  echo "size.sh: the flash strings ($flashstr bytes) exceed their $str_max-byte region" >&2
  exit 1
fi
if [ "$stack" -lt "$min_stack" ]; then
  echo "size.sh: only $stack bytes of SRAM left for the stack (need $min_stack): lower FL_ARENA_BYTES" >&2
  exit 1
fi
