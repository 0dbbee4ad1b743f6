// The int8 range of a classifier's logits, chosen for its top-1 rather than for its values.
//
// 256 codes over the full range of the logits put close top logits on the same code: the int8
// output ties and argmax takes the first class. What decides top-1 is the top of each row; logits far
// below the row's top may clamp without changing it. So the range is the one that minimises the
// expected number of top-1 changes over the calibration rows: a row's top logit t and another
// logit v (both clamped to [lo, hi]) share a code with probability max(0, 1 - (t - v) / step) for a
// uniformly placed grid, and a shared code changes the top-1 half the time (the lower index wins).
// [lo, hi] holds 0 (TFLite's zero point is an int8 code) and is searched on a grid from the
// calibration minimum / maximum; among equal scores the widest range wins.

const LO_STEPS = 48;
const HI_STEPS = 12;

/** Expected top-1 changes of `rows` x `cols` logits quantised to 256 codes over [lo, hi]. */
export function expectedTop1Changes(values: Float32Array, rows: number, cols: number, lo: number, hi: number): number {
  const step = (hi - lo) / 255;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let top = o;
    for (let j = o + 1; j < o + cols; j++) if (values[j]! > values[top]!) top = j;
    const t = Math.min(hi, Math.max(lo, values[top]!));
    let p = 0;
    for (let j = o; j < o + cols; j++) {
      if (j === top) continue;
      const gap = t - Math.min(hi, Math.max(lo, values[j]!));
      p += gap <= 0 ? 1 : Math.max(0, 1 - gap / step);
    }
    total += Math.min(1, p / 2);
  }
  return total;
}

/** The [lo, hi] (containing 0) for the int8 logits of a classifier, from calibration logits [rows, cols]. */
export function logitsRange(values: Float32Array, rows: number, cols: number): [number, number] {
  let min = 0;
  let max = 0;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!(max - min > 1e-12) || cols < 2 || rows < 1) return [min, max];
  let best: [number, number] = [min, max];
  let bestScore = expectedTop1Changes(values, rows, cols, min, max);
  for (let h = 0; h < HI_STEPS; h++) {
    const hi = max * (1 - h / (2 * HI_STEPS));
    for (let l = 0; l <= LO_STEPS; l++) {
      const lo = min * (1 - l / LO_STEPS);
      if (!(hi - lo > 1e-12)) continue;
      const score = expectedTop1Changes(values, rows, cols, lo, hi);
      // Strictly better only: the widest range wins ties (loops go from wide to narrow).
      if (score < bestScore - 1e-9) {
        bestScore = score;
        best = [lo, hi];
      }
    }
  }
  return best;
}
