// The top-1 range of int8 classifier outputs (converter/export/tfliteLogits.ts), checked by
// quantising fresh rows (not the calibration rows) the way TFLite does and counting top-1 changes.
import t from 'tap';
import { expectedTop1Changes, logitsRange } from '../../../converter/export/tfliteLogits.js';
import { mulberry32 } from '../../../shared/prng.js';

const C = 10;

/** Logit rows like a trained classifier's: a top near 6, a runner-up close below it, the rest far below. */
function rows(n: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const out = new Float32Array(n * C);
  for (let r = 0; r < n; r++) {
    const top = 6 + normal();
    const cls = Math.floor(rnd() * C);
    const second = (cls + 1 + Math.floor(rnd() * (C - 1))) % C;
    for (let j = 0; j < C; j++) out[r * C + j] = j === cls ? top : j === second ? top - rnd() * 0.6 : -12 + 5 * normal();
  }
  return out;
}

/** TFLite's int8 quantisation over [lo, hi], then argmax (first index on ties), against the float argmax. */
function top1Changes(v: Float32Array, n: number, [lo0, hi0]: [number, number]): number {
  const lo = Math.min(lo0, 0);
  const hi = Math.max(hi0, 0);
  const scale = (hi - lo) / 255;
  const zp = Math.max(-128, Math.min(127, Math.round(-128 - lo / scale)));
  let changed = 0;
  for (let r = 0; r < n; r++) {
    let f = 0;
    let q = 0;
    let qBest = -Infinity;
    for (let j = 0; j < C; j++) {
      const x = v[r * C + j]!;
      if (x > v[r * C + f]!) f = j;
      const code = Math.max(-128, Math.min(127, Math.round(x / scale) + zp));
      if (code > qBest) { qBest = code; q = j; }
    }
    if (q !== f) changed++;
  }
  return changed;
}

t.test('the top-1 range keeps more top-1s than min/max on rows it was not chosen on', (t) => {
  const cal = rows(1000, 1);
  const test = rows(5000, 2);
  let min = Infinity;
  let max = -Infinity;
  for (const v of cal) { min = Math.min(min, v); max = Math.max(max, v); }
  const range = logitsRange(cal, 1000, C);
  t.ok(range[0] <= 0 && range[1] >= 0, `range [${range.map((x) => x.toFixed(2))}] holds 0 (an int8 zero point)`);
  t.ok(range[0] > min && range[0] >= min && range[1] <= max, `narrower than the calibration min/max [${min.toFixed(2)}, ${max.toFixed(2)}]`);
  const full = top1Changes(test, 5000, [min, max]);
  const top1 = top1Changes(test, 5000, range);
  t.ok(top1 * 2 < full, `top-1 changes on 5000 fresh rows: ${top1} with the top-1 range, ${full} with min/max`);
  const predicted = expectedTop1Changes(test, 5000, C, min, max);
  t.ok(Math.abs(predicted - full) <= 0.25 * full + 10, `the expected count (${predicted.toFixed(1)}) predicts the measured one (${full})`);
  t.end();
});

t.test('rows whose top logits are far apart keep the full range', (t) => {
  const v = new Float32Array(200 * C);
  for (let r = 0; r < 200; r++) for (let j = 0; j < C; j++) v[r * C + j] = j === r % C ? 20 : -20 + j;
  t.same(logitsRange(v, 200, C), [-20, 20], 'no top-1 is at risk: min/max');
  t.end();
});

t.test('degenerate inputs', (t) => {
  t.same(logitsRange(new Float32Array(10), 1, 10), [0, 0], 'all zeros');
  const one = Float32Array.of(-3, 4, 1);
  t.same(logitsRange(one, 3, 1), [-3, 4], 'one column: min/max');
  t.end();
});
