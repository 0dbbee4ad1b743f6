import t from 'tap';
import { f16ArrayToF32, f16BitsToF32, f32ToF16Bits } from '../../../runtime/format/index.js';

t.test('every non-NaN half survives f16 -> f32 -> f16', async (t) => {
  let bad = 0;
  for (let h = 0; h < 65536; h++) {
    const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNaN) {
      if (!Number.isNaN(f16BitsToF32(h)) || (f32ToF16Bits(f16BitsToF32(h)) & 0x7fff) <= 0x7c00) bad++;
    } else if (f32ToF16Bits(f16BitsToF32(h)) !== h) bad++;
  }
  t.equal(bad, 0);
});

t.test('f32 -> f16 rounds to nearest even, saturates to infinity, keeps signed zero', async (t) => {
  const cases: [number, number][] = [
    [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [65519.99, 0x7bff], [65520, 0x7c00],
    [1e9, 0x7c00], [-Infinity, 0xfc00], [0, 0x0000], [-0, 0x8000],
    [2 ** -24, 0x0001], [2 ** -25, 0x0000], [3 * 2 ** -25, 0x0002], [2 ** -14, 0x0400], [2 ** -14 - 2 ** -25, 0x0400],
    [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [1 + 2 ** -11 + 2 ** -20, 0x3c01], [1e-10, 0x0000],
  ];
  for (const [v, want] of cases) t.equal(f32ToF16Bits(v), want, `${v} -> 0x${want.toString(16)}`);
  t.ok(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN))), 'NaN stays NaN');
});

t.test('f32 -> f16 is the nearest half for random values', async (t) => {
  let s = 7;
  let bad = 0;
  for (let i = 0; i < 20000; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const v = Math.fround(((s / 2 ** 32) - 0.5) * 2 ** ((i % 40) - 20));
    const h = f32ToF16Bits(v);
    const got = f16BitsToF32(h);
    if ((h & 0x7fff) >= 0x7c00) {
      if (Math.abs(v) < 65520) bad++; // IEEE: only |v| >= 65520 overflows to infinity
      continue;
    }
    // The neighbours of h are never closer than h itself.
    for (const n of [h - 1, h + 1]) {
      if ((n & 0x7fff) >= 0x7c00 || n < 0 || ((n ^ h) & 0x8000)) continue;
      if (Math.abs(f16BitsToF32(n) - v) < Math.abs(got - v)) bad++;
    }
  }
  t.equal(bad, 0);
});

t.test('f16ArrayToF32 uses the same conversion', async (t) => {
  const src = Uint16Array.of(0x3c00, 0xc000, 0x0001, 0x7bff);
  t.same(Array.from(f16ArrayToF32(src)), [1, -2, 2 ** -24, 65504]);
});
