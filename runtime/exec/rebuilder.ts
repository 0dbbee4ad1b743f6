// Row-tile weight rebuild, the contract: for every factor layer kind, write rows [r0, r1) of the layer's dense
// weight from the factors only, so that a layer can rebuild its weight one tile at a time into a
// bounded scratch buffer and multiply, instead of contracting the input through the factors.
//
// Rows are outputs: dense kinds give W [out, in]; conv kinds give W [O, I*kh*kw] (the row-major
// unfolding of [O, I, kh, kw]). The full weight never exists: a rebuilder holds only small,
// fixed work buffers (listed by `scratchFloats`), and reuses partial products between consecutive
// rows where they share a prefix of the output index (TT / TR / TTL). The products run on the
// session's kernels (GEMM calls on factor slices), so the rebuild is as fast as the GEMM.
// Each factor kind's rebuilder lives in its kind module (runtime/layers/<kind>.ts, `factor.rebuild`);
// prepareRebuild (runtime/exec/rebuild.ts) finds it by op.
import { numel, type GraphNode, type OpName } from '../ir.js';
import type { Weight } from '../layers/weight.js';

export type WeightLookup = (role: string) => Weight | undefined;

export class RebuildError extends Error {
  readonly code = 'REBUILD_INVALID';
  constructor(node: GraphNode, message: string) {
    super(`rebuild ${node.name} (${node.op}): ${message}`);
  }
}

/** A group of identical calls: `calls` GEMMs with `m` output rows (m 0: plain TypeScript loops). */
export interface RebuildWork {
  what: string;
  flops: number;
  calls: number;
  m: number;
}

export interface Rebuilder {
  readonly op: OpName;
  /** Rows of the dense weight (outputs / output channels). */
  readonly rows: number;
  /** Columns (inputs, or I*kh*kw for a conv). */
  readonly cols: number;
  /** Floats of work memory the rebuilder itself holds (besides the caller's tile). */
  readonly scratchFloats: number;
  /** FLOPs (a multiply-add counts 2) to rebuild rows [r0, r1) from a cold start. */
  flops(r0: number, r1: number): number;
  /** The work of rows [r0, r1) from a cold start, by kind of call (the cost model prices each). */
  work(r0: number, r1: number): RebuildWork[];
  /** Writes rows [r0, r1) as (r1 - r0) x cols floats at out[outOffset ..]. */
  rowsInto(r0: number, r1: number, out: Float32Array, outOffset?: number): void;
}

export function need(node: GraphNode, weight: WeightLookup, role: string, dims: number): Weight {
  const w = weight(role);
  if (!w) throw new RebuildError(node, `missing weight ${role}`);
  if (w.shape.length !== dims) throw new RebuildError(node, `${role} has shape [${w.shape}], expected ${dims}-D`);
  if (w.data.length < numel(w.shape)) throw new RebuildError(node, `${role} holds ${w.data.length} values for shape [${w.shape}]`);
  return w;
}

export function checkRange(b: { rows: number }, r0: number, r1: number, out: Float32Array, offset: number, cols: number): void {
  if (!(Number.isInteger(r0) && Number.isInteger(r1) && r0 >= 0 && r0 <= r1 && r1 <= b.rows)) {
    throw new RangeError(`rows [${r0}, ${r1}) outside [0, ${b.rows})`);
  }
  if (offset < 0 || offset + (r1 - r0) * cols > out.length) throw new RangeError(`tile of ${(r1 - r0) * cols} floats does not fit at ${offset} in ${out.length}`);
}

export function sumFlops(w: RebuildWork[]): number {
  return w.reduce((s, x) => s + x.flops, 0);
}

/** Distinct prefixes of length k+1 (digits i_0..i_k, `stride` rows each) among rows [r0, r1). */
export function distinct(r0: number, r1: number, stride: number): number {
  return r1 > r0 ? Math.floor((r1 - 1) / stride) - Math.floor(r0 / stride) + 1 : 0;
}

/** Row-major digits of `index` in the mixed radix `modes`. */
export function digits(index: number, modes: readonly number[], into: number[]): void {
  for (let k = modes.length - 1; k >= 0; k--) {
    into[k] = index % modes[k]!;
    index = Math.floor(index / modes[k]!);
  }
}
