// A fitted decoupled function as the stored tensors of a flexact layer (runtime/ir.ts):
// v [r, in] (the solver's V [in, r] transposed), w [out, r], coeffs [r, D], bias [out],
// range [r, 2], in f32.
import type { DecoupledFunction } from './als.js';
import type { DecoupleBasis } from './basis.js';

export interface FlexactTensors {
  v: { shape: [number, number]; data: Float32Array };
  w: { shape: [number, number]; data: Float32Array };
  coeffs: { shape: [number, number]; data: Float32Array };
  bias: { shape: [number]; data: Float32Array };
  range: { shape: [number, number]; data: Float32Array };
  attrs: { basis: DecoupleBasis; degree: number };
}

export function flexactTensors(fn: DecoupledFunction): FlexactTensors {
  const { inputs: m, outputs: n, branches: r, degree: D } = fn;
  const v = new Float32Array(r * m);
  for (let j = 0; j < m; j++) for (let b = 0; b < r; b++) v[b * m + j] = fn.v[j * r + b]!;
  return {
    v: { shape: [r, m], data: v },
    w: { shape: [n, r], data: Float32Array.from(fn.w) },
    coeffs: { shape: [r, D], data: Float32Array.from(fn.coeffs) },
    bias: { shape: [n], data: Float32Array.from(fn.bias) },
    range: { shape: [r, 2], data: Float32Array.from(fn.range) },
    attrs: { basis: fn.basis, degree: D },
  };
}
