// Shape ops: reshape and flatten share the data (a view), permute and transpose copy.
import { numel } from '../../../runtime/ir.js';
import { gradOf, result, type Var } from '../tensor.js';

export { stridesOf } from '../../../runtime/kernels/reference.js';
import { stridesOf } from '../../../runtime/kernels/reference.js';

/**
 * dst[out index] (+)= src[in index] where out axis i is in axis perm[i].
 * The innermost output axis runs as a strided loop; the outer ones step an odometer.
 */
export function permuteData(
  src: Float32Array, shape: readonly number[], perm: readonly number[], dst: Float32Array, accumulate: boolean,
): void {
  const r = shape.length;
  const total = src.length;
  if (r === 0 || total === 0) {
    if (total === 1) dst[0] = accumulate ? dst[0]! + src[0]! : src[0]!;
    return;
  }
  const inStrides = stridesOf(shape);
  const outShape = perm.map((p) => shape[p]!);
  const st = perm.map((p) => inStrides[p]!);
  const inner = outShape[r - 1]!;
  const innerStride = st[r - 1]!;
  const idx = new Array<number>(r).fill(0);
  let base = 0;
  for (let o = 0; o < total; o += inner) {
    if (accumulate) {
      for (let j = 0, s = base; j < inner; j++, s += innerStride) dst[o + j]! += src[s]!;
    } else {
      for (let j = 0, s = base; j < inner; j++, s += innerStride) dst[o + j] = src[s]!;
    }
    for (let d = r - 2; d >= 0; d--) {
      idx[d]!++;
      base += st[d]!;
      if (idx[d]! < outShape[d]!) break;
      base -= st[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
}

export function inversePerm(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => { inv[p] = i; });
  return inv;
}

function checkPerm(perm: readonly number[], rank: number): void {
  const seen = new Set(perm);
  if (perm.length !== rank || seen.size !== rank || perm.some((p) => !Number.isInteger(p) || p < 0 || p >= rank)) {
    throw new Error(`train: permutation [${perm}] is not a permutation of ${rank} axes`);
  }
}

/** out = x with axes reordered: out axis i is x axis perm[i]. */
export function permute(x: Var, perm: readonly number[]): Var {
  checkPerm(perm, x.shape.length);
  if (perm.every((p, i) => p === i)) return x;
  const outShape = perm.map((p) => x.shape[p]!);
  const out = new Float32Array(x.size);
  permuteData(x.data, x.shape, perm, out, false);
  const inv = inversePerm(perm);
  return result(out, outShape, [x], (g) => {
    const gx = gradOf(x);
    if (gx) permuteData(g, outShape, inv, gx, true);
  });
}

/** Swaps two axes (default: the last two). */
export function transpose(x: Var, a = -2, b = -1): Var {
  const r = x.shape.length;
  const aa = a < 0 ? a + r : a;
  const bb = b < 0 ? b + r : b;
  const perm = [...Array(r).keys()];
  perm[aa] = bb;
  perm[bb] = aa;
  return permute(x, perm);
}

/** Same data, new shape; one -1 is inferred. */
export function reshape(x: Var, shape: readonly number[]): Var {
  const s = [...shape];
  const free = s.indexOf(-1);
  if (free >= 0) {
    const known = s.reduce((a, d, i) => (i === free ? a : a * d), 1);
    s[free] = known === 0 ? 0 : x.size / known;
  }
  if (numel(s) !== x.size || s.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`train: cannot reshape [${x.shape}] to [${shape}]`);
  }
  return result(x.data, s, [x], (g) => {
    const gx = gradOf(x);
    if (gx) for (let i = 0; i < g.length; i++) gx[i]! += g[i]!;
  });
}

/** [d0, .., d_{axis-1}, rest] -> [prod(d0..d_{axis-1}), prod(rest)], as ONNX Flatten. */
export function flatten(x: Var, axis = 1): Var {
  const outer = numel(x.shape.slice(0, axis));
  return reshape(x, [outer, outer === 0 ? 0 : x.size / outer]);
}
