import { attrInts, numel } from '../ir.js';
import { stridesOf } from '../kernels/reference.js';
import { copyThrough } from './activations.js';
import { checkOutput, firstInput, LayerError, type LayerKind } from './kind.js';

// Reshape and flatten keep the data: in place (the planner gives them their input's bytes) they
// do nothing, else they copy once.

export const flatten: LayerKind = {
  ops: ['flatten'],
  prepare(node) {
    return {
      bind(inputs, output) {
        const x = firstInput(node, inputs);
        if (numel(output.shape) !== numel(x.shape)) throw new LayerError(node, `cannot flatten [${x.shape}] to [${output.shape}]`);
        return copyThrough(node, x.data, output.data);
      },
    };
  },
};

export const reshape: LayerKind = {
  ops: ['reshape'],
  prepare(node) {
    const target = attrInts(node, 'shape');
    if (target.filter((d) => d === -1).length > 1) throw new LayerError(node, 'at most one -1 in shape');
    return {
      bind(inputs, output) {
        const x = firstInput(node, inputs);
        if (numel(output.shape) !== numel(x.shape)) throw new LayerError(node, `cannot reshape [${x.shape}] to [${target}]`);
        return copyThrough(node, x.data, output.data);
      },
    };
  },
};

export const transpose: LayerKind = {
  ops: ['transpose'],
  prepare(node) {
    const perm = attrInts(node, 'perm');
    return {
      bind(inputs, output) {
        const x = firstInput(node, inputs);
        const r = x.shape.length;
        if (perm.length !== r || [...perm].sort().some((p, i) => p !== i)) throw new LayerError(node, `perm [${perm}] does not fit [${x.shape}]`);
        const outShape = perm.map((p) => x.shape[p]!);
        checkOutput(node, output, outShape);
        const inStrides = stridesOf(x.shape);
        const step = perm.map((p) => inStrides[p]!);
        const idx = new Int32Array(r);
        const src = x.data;
        const dst = output.data;
        return () => {
          idx.fill(0);
          let s = 0;
          for (let i = 0; i < dst.length; i++) {
            dst[i] = src[s]!;
            for (let d = r - 1; d >= 0; d--) {
              idx[d]!++;
              s += step[d]!;
              if (idx[d]! < outShape[d]!) break;
              s -= step[d]! * outShape[d]!;
              idx[d] = 0;
            }
          }
        };
      },
    };
  },
};
