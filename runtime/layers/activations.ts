import { attrNum, type GraphNode, type OpName } from '../ir.js';
import { finite } from '../format/attrSpec.js';
import { firstInput, LayerError, sameMemory, type KindParts, type LayerKind, type PreparedLayer } from './kind.js';
import { sameShape } from './shapeRules.js';

// Elementwise ops write out[i] from x[i] only, so the output may be the input's own memory.

/** A layer that writes y[i] = f(x[i]). */
export function elementwiseLayer(node: GraphNode, f: (v: number) => number): PreparedLayer {
  return {
    bind(inputs, output) {
      const x = firstInput(node, inputs).data;
      const y = output.data;
      if (x.length !== y.length) throw new LayerError(node, `output has ${y.length} floats, input ${x.length}`);
      return () => {
        for (let i = 0; i < y.length; i++) y[i] = f(x[i]!);
      };
    },
  };
}

function unary(op: OpName, parts: Omit<KindParts, 'outputShape'>, make: (node: GraphNode) => (v: number) => number): LayerKind {
  return { ops: [op], ...parts, outputShape: (node, ins) => sameShape(node, ins), inPlace: 'elementwise', prepare: (node) => elementwiseLayer(node, make(node)) };
}

export const relu: LayerKind = {
  ops: ['relu'],
  attrs: {},
  outputShape: (node, ins) => sameShape(node, ins),
  inPlace: 'elementwise',
  mcu: { chainAct: true },
  prepare: (node, ctx) => ({
    bind(inputs, output) {
      const x = firstInput(node, inputs).data;
      const y = output.data;
      if (x.length !== y.length) throw new LayerError(node, `output has ${y.length} floats, input ${x.length}`);
      return () => {
        ctx.kernels.relu(x, y);
      };
    },
  }),
};
export const leakyRelu = unary('leaky_relu', { attrs: { alpha: { type: 'number', finite: true } }, mcu: { chainAct: true } }, (n) => {
  const a = attrNum(n, 'alpha', 0.01);
  return (v) => (v >= 0 ? v : a * v);
});
export const sigmoid = unary('sigmoid', { attrs: {}, mcu: { chainAct: true } }, () => (v) => 1 / (1 + Math.exp(-v)));
export const tanh = unary('tanh', { attrs: {}, mcu: { chainAct: true } }, () => Math.tanh);
export const clip = unary('clip', {
  attrs: { min: { type: 'number' }, max: { type: 'number' } },
  checkAttrs(a, fail) {
    const lo = a['min'];
    const hi = a['max'];
    if (typeof lo === 'number' && typeof hi === 'number' && lo > hi) fail('FLM_ATTR_RANGE', `min ${lo} is above max ${hi}`);
  },
  mcu: { chainAct: true },
}, (n) => {
  const lo = attrNum(n, 'min', -Infinity);
  const hi = attrNum(n, 'max', Infinity);
  return (v) => (v < lo ? lo : v > hi ? hi : v);
});

/** The output is the input's data: nothing to do in place, else one copy. */
export function copyThrough(node: GraphNode, x: Float32Array, y: Float32Array): () => void {
  if (x.length !== y.length) throw new LayerError(node, `output has ${y.length} floats, input ${x.length}`);
  if (sameMemory(x, y)) return () => {};
  return () => {
    y.set(x);
  };
}

export const identity: LayerKind = {
  ops: ['identity'],
  attrs: {},
  outputShape: (node, ins) => sameShape(node, ins),
  inPlace: 'reshape',
  mcu: {},
  prepare: (node) => ({ bind: (inputs, output) => copyThrough(node, firstInput(node, inputs).data, output.data) }),
};

export const hardSigmoid = unary('hard_sigmoid', { attrs: { alpha: finite, beta: finite }, mcu: {} }, (n) => {
  const a = attrNum(n, 'alpha', 0.2);
  const b = attrNum(n, 'beta', 0.5);
  return (v) => Math.max(0, Math.min(1, a * v + b));
});
export const hardSwish = unary('hard_swish', { attrs: {}, mcu: {} }, () => (v) => v * Math.max(0, Math.min(1, v / 6 + 0.5)));

/** PReLU with one slope, or one per channel (axis 1). */
export const prelu: LayerKind = {
  ops: ['prelu'],
  mcu: {},
  attrs: {},
  outputShape: (node, ins) => sameShape(node, ins),
  inPlace: 'elementwise',
  prepare(node, ctx) {
    const slope = ctx.weight('slope');
    return {
      bind(inputs, output) {
        const x = firstInput(node, inputs);
        const y = output.data;
        if (x.data.length !== y.length) throw new LayerError(node, `output has ${y.length} floats, input ${x.data.length}`);
        const C = x.shape.length >= 2 ? x.shape[1]! : 1;
        const s = slope.data;
        if (s.length !== 1 && s.length !== C) throw new LayerError(node, `slope has ${s.length} values for ${C} channels`);
        const inner = x.shape.slice(2).reduce((p, q) => p * q, 1);
        const xd = x.data;
        const perChannel = s.length !== 1;
        return () => {
          for (let i = 0; i < y.length; i++) {
            const v = xd[i]!;
            y[i] = v >= 0 ? v : v * s[perChannel ? Math.floor(i / inner) % C : 0]!;
          }
        };
      },
    };
  },
};
