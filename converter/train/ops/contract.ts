// General pairwise tensor contraction (einsum for two operands): any factor network is a
// sequence of these. It is written as permute -> matrix product -> permute, so its gradient is
// the composition of theirs.
import { numel } from '../../../runtime/ir.js';
import type { Var } from '../tensor.js';
import { matmul } from './matmul.js';
import { permute, reshape } from './shape.js';

/**
 * Sums a's axes `aAxes` against b's axes `bAxes` (pairwise, equal sizes). The result's axes are
 * a's free axes in order, then b's free axes in order, then reordered by `outOrder` if given
 * (result axis i = natural axis outOrder[i]). With no contracted axes it is the outer product.
 */
export function contract(a: Var, aAxes: readonly number[], b: Var, bAxes: readonly number[], outOrder?: readonly number[]): Var {
  const norm = (axes: readonly number[], r: number) => axes.map((x) => (x < 0 ? x + r : x));
  const ca = norm(aAxes, a.shape.length);
  const cb = norm(bAxes, b.shape.length);
  if (ca.length !== cb.length) throw new Error(`train: contract pairs ${ca.length} axes of a with ${cb.length} of b`);
  if (new Set(ca).size !== ca.length || new Set(cb).size !== cb.length) throw new Error('train: contract names an axis twice');
  ca.forEach((x, i) => {
    const y = cb[i]!;
    if (a.shape[x] === undefined || b.shape[y] === undefined) throw new Error(`train: contract axis out of range: a[${x}] / b[${y}]`);
    if (a.shape[x] !== b.shape[y]) {
      throw new Error(`train: contract a axis ${x} (${a.shape[x]}) with b axis ${y} (${b.shape[y]}): sizes differ`);
    }
  });
  const freeA = [...a.shape.keys()].filter((x) => !ca.includes(x));
  const freeB = [...b.shape.keys()].filter((x) => !cb.includes(x));
  const K = numel(ca.map((x) => a.shape[x]!));
  const freeShapeA = freeA.map((x) => a.shape[x]!);
  const freeShapeB = freeB.map((x) => b.shape[x]!);
  const am = reshape(permute(a, [...freeA, ...ca]), [numel(freeShapeA), K]);
  const bm = reshape(permute(b, [...cb, ...freeB]), [K, numel(freeShapeB)]);
  const c = reshape(matmul(am, bm), [...freeShapeA, ...freeShapeB]);
  return outOrder ? permute(c, outOrder) : c;
}
