// Stored precision of a model's tensors (--quant). Weights and factors take the chosen dtype;
// biases and constant operands stay f32 (they are tiny and feed accumulators directly), and so do a
// flexact layer's branch coefficients and ranges (r x D and r x 2 numbers that a polynomial's
// high powers and its clamp points are sensitive to).
//   f32           as computed
//   f16           IEEE half
//   int8          symmetric int8, one scale per slice of axis 0 (output channel, or factor row);
//                 1-D tensors get one scale (same as int8-channel)
//   int8-channel  the same as int8, named explicitly
//   int8-tensor   symmetric int8 with one scale for the whole tensor
import { quantizeTensor } from '../runtime/format/dtype.js';
import type { Model, StoredTensor } from '../runtime/ir.js';

export const QUANTS = ['f32', 'f16', 'int8', 'int8-channel', 'int8-tensor'] as const;
export type QuantChoice = (typeof QUANTS)[number];

/** One stored tensor at the chosen precision. */
export function quantizeWeight(t: StoredTensor, quant: QuantChoice): StoredTensor {
  switch (quant) {
    case 'f32':
      return t.dtype === 'f32' ? t : quantizeTensor(t, 'f32');
    case 'f16':
      return quantizeTensor(t, 'f16');
    case 'int8-tensor':
      return quantizeTensor(t, 'i8');
    case 'int8':
    case 'int8-channel':
      return quantizeTensor(t, 'i8', t.shape.length >= 2 ? { perChannelAxis: 0 } : {});
  }
}

/** Roles whose tensors every --quant keeps in f32. */
const KEEP_F32_ROLES: ReadonlySet<string> = new Set(['bias', 'coeffs', 'range']);

export function quantizeModel(model: Model, quant: QuantChoice): Model {
  if (quant === 'f32') return model;
  const keep = new Set<string>();
  const weights = new Set<string>();
  for (const n of model.graph.nodes) {
    for (const [role, name] of Object.entries(n.weights)) (KEEP_F32_ROLES.has(role) ? keep : weights).add(name);
    for (const i of n.inputs) if (model.tensors.has(i)) keep.add(i);
  }
  const tensors = new Map(model.tensors);
  for (const name of weights) {
    if (keep.has(name)) continue;
    tensors.set(name, quantizeWeight(tensors.get(name)!, quant));
  }
  return { ...model, tensors, metadata: { ...model.metadata, 'convert.quant': quant } };
}
