// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib) for a bundle, which carries no
// node_modules: stands in for the `crc-32` package with the one call the runtime makes, buf(),
// which returns the CRC as a signed 32-bit integer like that package does.
const TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c;
}

function buf(bytes, seed = 0) {
  let c = ~seed;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c;
}

export default { buf };
