// Stored precision of a model's tensors (--quant). Weights and factors take the chosen dtype;
// biases and constant operands stay f32 (they are tiny and feed accumulators directly).
import { quantizeTensor } from '../runtime/format/dtype.js';
import type { Model } from '../runtime/ir.js';

export const QUANTS = ['f32', 'f16', 'int8'] as const;
export type QuantChoice = (typeof QUANTS)[number];

export function quantizeModel(model: Model, quant: QuantChoice): Model {
  if (quant === 'f32') return model;
  const keep = new Set<string>();
  const weights = new Set<string>();
  for (const n of model.graph.nodes) {
    for (const [role, name] of Object.entries(n.weights)) (role === 'bias' ? keep : weights).add(name);
    for (const i of n.inputs) if (model.tensors.has(i)) keep.add(i);
  }
  const tensors = new Map(model.tensors);
  for (const name of weights) {
    if (keep.has(name)) continue;
    const t = tensors.get(name)!;
    // int8: one scale per slice of axis 0 (output channel, or factor row) when the tensor has one.
    const q = quant === 'f16'
      ? quantizeTensor(t, 'f16')
      : quantizeTensor(t, 'i8', t.shape.length >= 2 ? { perChannelAxis: 0 } : {});
    tensors.set(name, q);
  }
  return { ...model, tensors, metadata: { ...model.metadata, 'convert.quant': quant } };
}
