// Shared builders for the explain tests: a seeded RNG and one-node ttl_dense models.
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export function randArray(n: number, r: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/** input [-1, ...inShape] -> (flatten when inShape has >1 axis) -> ttl_dense -> output 'y'. */
export function ttlModel(inShape: number[], outModes: number[], inModes: number[], ranks: number[], seed = 1): Model {
  const r = rng(seed);
  const tensors = new Map<string, StoredTensor>();
  const add = (name: string, shape: number[], scale = 0.5) => {
    const n = shape.reduce((a, b) => a * b, 1);
    tensors.set(name, { name, dtype: 'f32', shape, data: randArray(n, r, scale) });
  };
  const dims = [...outModes, ...inModes];
  const weights: Record<string, string> = { core: 'ttl.core', bias: 'ttl.bias' };
  add('ttl.core', ranks, 0.8);
  dims.forEach((d, k) => {
    add(`ttl.factor.${k}`, [d, ranks[k]!], 0.8);
    weights[`factor.${k}`] = `ttl.factor.${k}`;
  });
  add('ttl.bias', [outModes.reduce((a, b) => a * b, 1)], 0.1);
  const nodes: GraphNode[] = [];
  let value = 'x';
  if (inShape.length > 1) {
    nodes.push({ name: 'flat', op: 'flatten', inputs: ['x'], outputs: ['f'], attrs: { axis: 1 }, weights: {} });
    value = 'f';
  }
  nodes.push({ name: 'ttl', op: 'ttl_dense', inputs: [value], outputs: ['y'], attrs: { out_modes: outModes, in_modes: inModes }, weights });
  return { graph: { inputs: [{ name: 'x', shape: [-1, ...inShape] }], outputs: ['y'], nodes }, tensors, metadata: {} };
}
