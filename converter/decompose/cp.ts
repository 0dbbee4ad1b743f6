// CP of a conv kernel in the CPAC-Conv layout of the CP conv kind (converter/methods/cp.ts).
import { numel } from '../../runtime/ir.js';
import { cpAls, cpReconstruct, type CpOptions } from './cpAls.js';
import { type RealArray, toF32, toF64, transpose } from './linalg.js';

export interface CpConvResult {
  /** [R, I] */
  aIn: Float32Array;
  /** [R, kh] */
  kH: Float32Array;
  /** [R, kw] */
  kW: Float32Array;
  /** [O, R] */
  aOut: Float32Array;
  relError: number;
  /** Best relative error of each restart (the first is the SVD start; Infinity if stopped before one sweep). */
  restartErrors: number[];
  /** Restarts stopped because component norms blew up (a degenerate, border-rank fit). */
  degenerate: boolean[];
}

/** Rank-R CP of w [O, I, kh, kw] by ALS with restarts; W[o,i,y,x] = Σ_r aOut[o,r] aIn[r,i] kH[r,y] kW[r,x]. */
export function cpConv(
  w: RealArray,
  shape: readonly [number, number, number, number],
  rank: number,
  opts: CpOptions = {},
): CpConvResult {
  const [O, I, kh, kw] = shape;
  if (w.length !== numel(shape)) throw new Error(`cpConv: weight length ${w.length} != ${O}x${I}x${kh}x${kw}`);
  const res = cpAls(toF64(w), shape, rank, opts);
  const r = Math.max(1, Math.floor(rank));
  const [aOut, aIn, kH, kW] = res.factors as [Float64Array, Float64Array, Float64Array, Float64Array];
  return {
    aIn: toF32(transpose(aIn, I, r)),
    kH: toF32(transpose(kH, kh, r)),
    kW: toF32(transpose(kW, kw, r)),
    aOut: toF32(aOut),
    relError: res.relError,
    restartErrors: res.restartErrors,
    degenerate: res.degenerate,
  };
}

/** Dense W [O, I, kh, kw] from CP conv factors (tests and error reports only). */
export function reconstructCp(
  f: { aIn: ArrayLike<number>; kH: ArrayLike<number>; kW: ArrayLike<number>; aOut: ArrayLike<number> },
  shape: readonly [number, number, number, number],
): Float64Array {
  const [O, I, kh, kw] = shape;
  const r = f.aOut.length / O;
  const t = (a: ArrayLike<number>, cols: number) => transpose(Float64Array.from(a), r, cols);
  return cpReconstruct([f.aOut, t(f.aIn, I), t(f.kH, kh), t(f.kW, kw)], shape, r);
}
