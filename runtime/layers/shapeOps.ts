import { attrInts, attrNum, numel } from '../ir.js';
import { transpose as transposeKernel } from '../kernels/reference.js';
import { firstInput, LayerError, type LayerKind } from './kind.js';

// Shape ops share the input's data where the layout allows it (reshape, flatten).

export const flatten: LayerKind = {
  ops: ['flatten'],
  prepare(node) {
    const axis = attrNum(node, 'axis', 1);
    return (inputs) => {
      const x = firstInput(node, inputs);
      const a = axis < 0 ? axis + x.shape.length : axis;
      if (a < 0 || a > x.shape.length) throw new LayerError(node, `axis ${axis} out of range for [${x.shape}]`);
      return { data: x.data, shape: [numel(x.shape.slice(0, a)), numel(x.shape.slice(a))] };
    };
  },
};

export const reshape: LayerKind = {
  ops: ['reshape'],
  prepare(node) {
    const target = attrInts(node, 'shape');
    if (target.filter((d) => d === -1).length > 1) throw new LayerError(node, 'at most one -1 in shape');
    return (inputs) => {
      const x = firstInput(node, inputs);
      const shape = target.map((d, i) => (d === 0 ? x.shape[i]! : d));
      const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      const fixed = shape.map((d) => (d === -1 ? x.data.length / known : d));
      if (numel(fixed) !== x.data.length || fixed.some((d) => !Number.isInteger(d))) {
        throw new LayerError(node, `cannot reshape [${x.shape}] to [${target}]`);
      }
      return { data: x.data, shape: fixed };
    };
  },
};

export const transpose: LayerKind = {
  ops: ['transpose'],
  prepare(node) {
    const perm = attrInts(node, 'perm');
    return (inputs) => {
      const x = firstInput(node, inputs);
      if (perm.length !== x.shape.length) throw new LayerError(node, `perm [${perm}] does not fit [${x.shape}]`);
      return transposeKernel(x.data, x.shape, perm);
    };
  },
};
