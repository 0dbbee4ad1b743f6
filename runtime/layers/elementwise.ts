import { attrNum, type GraphNode, type Tensor } from '../ir.js';
import { broadcastBinary, matmul as matmulKernel, softmax as softmaxKernel } from '../kernels/reference.js';
import { firstInput, LayerError, type LayerKind } from './kind.js';

function pair(node: GraphNode, inputs: Tensor[]): [Tensor, Tensor] {
  const a = inputs[0];
  const b = inputs[1];
  if (!a || !b) throw new LayerError(node, 'needs two inputs');
  return [a, b];
}

export const add: LayerKind = {
  ops: ['add'],
  prepare: (node) => (inputs) => {
    const [a, b] = pair(node, inputs);
    return broadcastBinary(a.data, a.shape, b.data, b.shape, (x, y) => x + y);
  },
};

export const mul: LayerKind = {
  ops: ['mul'],
  prepare: (node) => (inputs) => {
    const [a, b] = pair(node, inputs);
    return broadcastBinary(a.data, a.shape, b.data, b.shape, (x, y) => x * y);
  },
};

export const matmul: LayerKind = {
  ops: ['matmul'],
  prepare: (node) => (inputs) => {
    const [a, b] = pair(node, inputs);
    return matmulKernel(a.data, a.shape, b.data, b.shape);
  },
};

export const softmax: LayerKind = {
  ops: ['softmax'],
  prepare(node) {
    const axis = attrNum(node, 'axis', -1);
    return (inputs) => {
      const x = firstInput(node, inputs);
      if (axis >= x.shape.length || axis < -x.shape.length) throw new LayerError(node, `axis ${axis} out of range`);
      return { data: softmaxKernel(x.data, x.shape, axis), shape: [...x.shape] };
    };
  },
};
