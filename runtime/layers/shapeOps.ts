import { MAX_DIM, MAX_RANK } from '../format/layout.js';
import { axis } from '../format/attrSpec.js';
import { attrInts, attrNum, numel } from '../ir.js';
import { stridesOf } from '../kernels/reference.js';
import { copyThrough } from './activations.js';
import { checkOutput, firstInput, LayerError, type LayerKind } from './kind.js';
import { shapeFail } from './shapeRules.js';

// Reshape and flatten keep the data: in place (the planner gives them their input's bytes) they
// do nothing, else they copy once.

export const flatten: LayerKind = {
  ops: ['flatten'],
  inPlace: 'reshape',
  attrs: { axis },
  outputShape(node, ins) {
    const x = ins[0]!;
    const axis = attrNum(node, 'axis', 1);
    const a = axis < 0 ? axis + x.length : axis;
    if (a < 0 || a > x.length) shapeFail(node, `axis ${axis} out of range for [${x}]`);
    return [numel(x.slice(0, a)), numel(x.slice(a))];
  },
  mcu: {},
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
  inPlace: 'reshape',
  attrs: { shape: { type: 'ints', len: [0, MAX_RANK], min: -1, max: MAX_DIM, required: true } },
  checkAttrs(a, fail) {
    if ((a['shape'] as number[]).filter((d) => d === -1).length > 1) fail('FLM_ATTR_RANGE', 'shape has more than one -1');
  },
  outputShape(node, ins) {
    const x = ins[0]!;
    const target = attrInts(node, 'shape');
    const shape = target.map((d, i) => (d === 0 ? x[i]! : d));
    const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const fixed = shape.map((d) => (d === -1 ? numel(x) / known : d));
    if (numel(fixed) !== numel(x) || fixed.some((d) => !Number.isInteger(d) || d < 0)) shapeFail(node, `cannot reshape [${x}] to [${target}]`);
    return fixed;
  },
  mcu: {},
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
  attrs: { perm: { type: 'ints', len: [0, MAX_RANK], min: 0, max: MAX_RANK - 1, required: true } },
  checkAttrs(a, fail) {
    const perm = a['perm'] as number[];
    const seen = new Set(perm);
    if (seen.size !== perm.length || perm.some((p) => p >= perm.length)) fail('FLM_ATTR_RANGE', `perm [${perm}] is not a permutation of 0..${perm.length - 1}`);
  },
  outputShape(node, ins) {
    const x = ins[0]!;
    const perm = attrInts(node, 'perm');
    if (perm.length !== x.length) shapeFail(node, `perm [${perm}] does not fit [${x}]`);
    return perm.map((p) => x[p]!);
  },
  mcu: {},
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
