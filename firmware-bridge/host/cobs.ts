// COBS (consistent overhead byte stuffing): removes every 0x00 from a byte string so that 0x00
// can delimit frames on the line (docs/PROTOCOL.md section 1). Canonical form: a block of 254
// non-zero bytes (code 0xFF) is followed by a new block only when more input follows.
//
//   raw:     11 22 00 33            encoded: 03 11 22 02 33
//            ^^^^^ ^^ ^^                     ^^ block of 2, then "a zero was here", block of 1

export class CobsError extends Error {
  constructor(readonly code: 'COBS_ZERO' | 'COBS_TRUNCATED', message: string) {
    super(message);
  }
}

/** Worst-case encoded length of `n` raw bytes: one code byte per 254, at least one. */
export function cobsMaxEncodedLength(n: number): number {
  return n + Math.floor(n / 254) + 1;
}

export function cobsEncode(raw: Uint8Array): Uint8Array {
  const out = new Uint8Array(cobsMaxEncodedLength(raw.length));
  let codeAt = 0;
  let w = 1;
  let code = 1;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === 0) {
      out[codeAt] = code;
      codeAt = w++;
      code = 1;
      continue;
    }
    out[w++] = b;
    code++;
    if (code === 0xff) {
      out[codeAt] = code;
      code = 1;
      // A full block starts a new one only if more input follows (canonical COBS).
      if (i + 1 < raw.length) codeAt = w++;
      else return out.subarray(0, w);
    }
  }
  out[codeAt] = code;
  return out.subarray(0, w);
}

/** Decodes one COBS block sequence (without delimiters); throws CobsError on a zero or a short block. */
export function cobsDecode(enc: Uint8Array): Uint8Array {
  const out = new Uint8Array(enc.length);
  let w = 0;
  let i = 0;
  while (i < enc.length) {
    const code = enc[i++]!;
    if (code === 0) throw new CobsError('COBS_ZERO', `COBS: zero code byte at offset ${i - 1}`);
    const end = i + code - 1;
    if (end > enc.length) throw new CobsError('COBS_TRUNCATED', `COBS: block at offset ${i - 1} needs ${code - 1} bytes, ${enc.length - i} left`);
    for (; i < end; i++) {
      const b = enc[i]!;
      if (b === 0) throw new CobsError('COBS_ZERO', `COBS: zero data byte at offset ${i}`);
      out[w++] = b;
    }
    if (code < 0xff && i < enc.length) out[w++] = 0;
  }
  return out.subarray(0, w);
}
