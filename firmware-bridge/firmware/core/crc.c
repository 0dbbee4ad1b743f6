/* crc.c: CRC32 (IEEE, reflected), for the model store and the frames. */
#include "fl.h"

/* ---- CRC32 (IEEE, reflected 0xEDB88320), nibble table: 64 bytes of constants ------------- */
static const uint32_t crc_nib[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t fl_crc32_update(uint32_t c, const uint8_t *p, uint32_t n) {
    while (n--) {
        c ^= *p++;
        c = (c >> 4) ^ crc_nib[c & 15];
        c = (c >> 4) ^ crc_nib[c & 15];
    }
    return c;
}

uint32_t fl_crc32(const uint8_t *p, uint32_t n) { return fl_crc32_update(0xFFFFFFFFu, p, n) ^ 0xFFFFFFFFu; }
