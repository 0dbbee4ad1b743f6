// Tucker tensor layer (TTL): a dense weight [prod m, prod n] seen as the tensor [m..., n...] in
// Tucker form, in the ttl_dense layout of runtime/ir.ts.
import { numel } from '../../runtime/ir.js';
import { type RealArray, toF32, toF64 } from './linalg.js';
import { tucker, tuckerReconstruct, type TuckerOptions } from './tucker.js';

export interface TtlResult {
  /** [r_0 .. r_{p+q-1}] */
  core: Float32Array;
  /** factor.k [dim_k, r_k], dims = [...outModes, ...inModes]. */
  factors: Float32Array[];
  /** Ranks used, each clamped to its mode size. */
  ranks: number[];
  relError: number;
  hosvdRelError: number;
  hosvdBound: number;
}

/** Tucker (HOSVD + HOOI) of w [prod m, prod n] reshaped row-major to [m..., n...]. */
export function tuckerTensorLayer(
  w: RealArray,
  outModes: readonly number[],
  inModes: readonly number[],
  ranks: readonly number[],
  opts: TuckerOptions = {},
): TtlResult {
  const dims = [...outModes, ...inModes];
  if (ranks.length !== dims.length) throw new Error(`tuckerTensorLayer: ${ranks.length} ranks for ${dims.length} modes`);
  if (w.length !== numel(dims)) throw new Error(`tuckerTensorLayer: weight length ${w.length} != prod of modes ${numel(dims)}`);
  const res = tucker(toF64(w), dims, ranks, opts);
  return {
    core: toF32(res.core),
    factors: res.factors.map((f) => toF32(f!)),
    ranks: res.ranks,
    relError: res.relError,
    hosvdRelError: res.hosvdRelError,
    hosvdBound: res.hosvdBound,
  };
}

/** Dense W [prod m, prod n] from ttl_dense factors (tests and error reports only). */
export function reconstructTtl(
  f: { core: ArrayLike<number>; factors: readonly ArrayLike<number>[] },
  outModes: readonly number[],
  inModes: readonly number[],
): Float64Array {
  const dims = [...outModes, ...inModes];
  const ranks = f.factors.map((u, k) => u.length / dims[k]!);
  return tuckerReconstruct(f.core, ranks, f.factors, dims);
}
