import { attrNum, type GraphNode, type OpName } from '../ir.js';
import { firstInput, type LayerKind } from './kind.js';

function unary(op: OpName, make: (node: GraphNode) => (v: number) => number): LayerKind {
  return {
    ops: [op],
    prepare(node) {
      const f = make(node);
      return (inputs) => {
        const x = firstInput(node, inputs);
        const y = new Float32Array(x.data.length);
        for (let i = 0; i < y.length; i++) y[i] = f(x.data[i]!);
        return { data: y, shape: [...x.shape] };
      };
    },
  };
}

export const relu: LayerKind = {
  ops: ['relu'],
  prepare: (node, ctx) => (inputs) => {
    const x = firstInput(node, inputs);
    return { data: ctx.kernels.relu(x.data), shape: [...x.shape] };
  },
};
export const leakyRelu = unary('leaky_relu', (n) => {
  const a = attrNum(n, 'alpha', 0.01);
  return (v) => (v >= 0 ? v : a * v);
});
export const sigmoid = unary('sigmoid', () => (v) => 1 / (1 + Math.exp(-v)));
export const tanh = unary('tanh', () => Math.tanh);
export const clip = unary('clip', (n) => {
  const lo = attrNum(n, 'min', -Infinity);
  const hi = attrNum(n, 'max', Infinity);
  return (v) => (v < lo ? lo : v > hi ? hi : v);
});

export const identity: LayerKind = {
  ops: ['identity'],
  prepare: (node) => (inputs) => firstInput(node, inputs),
};
