// Tucker-2 of a conv kernel over its channel modes, in the tucker2_conv2d layout of runtime/ir.ts.
import { numel } from '../../runtime/ir.js';
import { type RealArray, toF32, toF64, transpose } from './linalg.js';
import { tucker, tuckerReconstruct, type TuckerOptions } from './tucker.js';

export interface Tucker2Result {
  /** [rIn, I] */
  uIn: Float32Array;
  /** [rOut, rIn, kh, kw] */
  core: Float32Array;
  /** [O, rOut] */
  uOut: Float32Array;
  /** Ranks used, [rOut, rIn], each clamped to its channel count. */
  ranks: [number, number];
  relError: number;
  /** Error of the HOSVD start and the HOSVD bound, for reports and tests. */
  hosvdRelError: number;
  hosvdBound: number;
}

/** Tucker-2 of w [O, I, kh, kw] over modes O and I: HOSVD start, then HOOI sweeps. */
export function tucker2Conv(
  w: RealArray,
  shape: readonly [number, number, number, number],
  ranks: readonly [number, number],
  opts: TuckerOptions = {},
): Tucker2Result {
  const [O, I, kh, kw] = shape;
  if (w.length !== numel(shape)) throw new Error(`tucker2Conv: weight length ${w.length} != ${O}x${I}x${kh}x${kw}`);
  const res = tucker(toF64(w), shape, [ranks[0], ranks[1], null, null], opts);
  const [rOut, rIn] = res.ranks as [number, number];
  return {
    uIn: toF32(transpose(res.factors[1]!, I, rIn)),
    core: toF32(res.core),
    uOut: toF32(res.factors[0]!),
    ranks: [rOut, rIn],
    relError: res.relError,
    hosvdRelError: res.hosvdRelError,
    hosvdBound: res.hosvdBound,
  };
}

/** Dense W [O, I, kh, kw] from tucker2_conv2d factors (tests and error reports only). */
export function reconstructTucker2(
  f: { uIn: ArrayLike<number>; core: ArrayLike<number>; uOut: ArrayLike<number> },
  shape: readonly [number, number, number, number],
): Float64Array {
  const [O, I, kh, kw] = shape;
  const rOut = f.uOut.length / O;
  const rIn = f.uIn.length / I;
  const uIn = transpose(Float64Array.from(f.uIn), rIn, I);
  return tuckerReconstruct(f.core, [rOut, rIn, kh, kw], [f.uOut, uIn, null, null], shape);
}
