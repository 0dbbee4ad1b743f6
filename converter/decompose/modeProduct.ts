// N-way tensor operations on row-major Float64 data: mode products, mode Gram matrices and
// axis permutations. A mode k is seen as the middle axis of [left, dim_k, right].
import { numel } from '../../runtime/ir.js';

function splitAt(shape: readonly number[], mode: number): { left: number; dim: number; right: number } {
  const dim = shape[mode];
  if (dim === undefined) throw new Error(`mode ${mode} out of range for shape [${shape.join(',')}]`);
  return { left: numel(shape.slice(0, mode)), dim, right: numel(shape.slice(mode + 1)) };
}

/** y = x ×_mode M with M [newDim, dim_mode]: y[l,p,r] = Σ_q M[p,q] x[l,q,r]. */
export function modeMultiply(
  x: Float64Array,
  shape: readonly number[],
  mode: number,
  m: Float64Array,
  newDim: number,
): { data: Float64Array; shape: number[] } {
  const { left, dim, right } = splitAt(shape, mode);
  const y = new Float64Array(left * newDim * right);
  for (let l = 0; l < left; l++) {
    const xl = l * dim * right;
    const yl = l * newDim * right;
    for (let p = 0; p < newDim; p++) {
      const yp = yl + p * right;
      for (let q = 0; q < dim; q++) {
        const mpq = m[p * dim + q]!;
        if (mpq === 0) continue;
        const xq = xl + q * right;
        for (let r = 0; r < right; r++) y[yp + r]! += mpq * x[xq + r]!;
      }
    }
  }
  const outShape = shape.slice();
  outShape[mode] = newDim;
  return { data: y, shape: outShape };
}

/** Gram matrix of the mode unfolding, G [dim, dim] = X_(mode) X_(mode)ᵀ; its eigenvalues are the squared mode singular values. */
export function modeGram(x: Float64Array, shape: readonly number[], mode: number): Float64Array {
  const { left, dim, right } = splitAt(shape, mode);
  const g = new Float64Array(dim * dim);
  for (let l = 0; l < left; l++) {
    const base = l * dim * right;
    for (let p = 0; p < dim; p++) {
      const xp = base + p * right;
      for (let q = p; q < dim; q++) {
        const xq = base + q * right;
        let s = 0;
        for (let r = 0; r < right; r++) s += x[xp + r]! * x[xq + r]!;
        g[p * dim + q]! += s;
      }
    }
  }
  for (let p = 0; p < dim; p++) for (let q = 0; q < p; q++) g[p * dim + q] = g[q * dim + p]!;
  return g;
}

/** y = x with axes reordered: y's axis k is x's axis perm[k]. */
export function permuteAxes(x: ArrayLike<number>, shape: readonly number[], perm: readonly number[]): Float64Array {
  const n = shape.length;
  const strides = new Array<number>(n);
  let acc = 1;
  for (let k = n - 1; k >= 0; k--) {
    strides[k] = acc;
    acc *= shape[k]!;
  }
  const outShape = perm.map((p) => shape[p]!);
  const outStrides = perm.map((p) => strides[p]!);
  const y = new Float64Array(acc);
  const idx = new Array<number>(n).fill(0);
  let src = 0;
  for (let dst = 0; dst < acc; dst++) {
    y[dst] = x[src]!;
    // Odometer over the output index, tracking the source offset incrementally.
    for (let k = n - 1; k >= 0; k--) {
      idx[k]!++;
      src += outStrides[k]!;
      if (idx[k]! < outShape[k]!) break;
      src -= outStrides[k]! * outShape[k]!;
      idx[k] = 0;
    }
  }
  return y;
}
