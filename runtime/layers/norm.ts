// GELU (exact and tanh form), erf, and layer normalisation over the trailing axes.
import { attrInts, attrNum, type GraphNode } from '../ir.js';
import { elementwiseLayer } from './activations.js';
import { axis, flag } from '../format/attrSpec.js';
import { MAX_RANK } from '../format/layout.js';
import { firstInput, LayerError, type LayerKind, type PreparedLayer } from './kind.js';
import { sameShape } from './shapeRules.js';

/**
 * erfc(z) for z >= 0 by the Chebyshev-fitted form of Numerical Recipes (erfcc): fractional error
 * below 1.2e-7 everywhere, so 1 + erf(x) = erfc(-x) keeps its relative accuracy far into the tail.
 */
function erfcPos(z: number): number {
  const t = 1 / (1 + 0.5 * z);
  const p = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * Math.exp(p);
}

/** erfc on the whole line. */
export function erfc(x: number): number {
  return x >= 0 ? erfcPos(x) : 2 - erfcPos(-x);
}

export function erf(x: number): number {
  return x >= 0 ? 1 - erfcPos(x) : erfcPos(-x) - 1;
}

const SQRT1_2 = Math.SQRT1_2;
const SQRT_2_PI = Math.sqrt(2 / Math.PI);

/** gelu(x) = x Phi(x) = x erfc(-x / sqrt 2) / 2; the tanh form as in PyTorch's approximate='tanh'. */
export function geluExact(x: number): number {
  return 0.5 * x * erfc(-x * SQRT1_2);
}

export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_PI * (x + 0.044715 * x * x * x)));
}

function approximateOf(node: GraphNode): 'none' | 'tanh' {
  const a = node.attrs['approximate'] ?? 'none';
  if (a !== 'none' && a !== 'tanh') throw new LayerError(node, `approximate must be 'none' or 'tanh'`);
  return a;
}

export const gelu: LayerKind = {
  ops: ['gelu'],
  mcu: {},
  inPlace: 'elementwise',
  attrs: { approximate: { type: 'string', oneOf: ['none', 'tanh'] } },
  outputShape: (node, ins) => sameShape(node, ins),
  prepare: (node) => elementwiseLayer(node, approximateOf(node) === 'tanh' ? geluTanh : geluExact),
};

export const erfLayer: LayerKind = {
  ops: ['erf'],
  mcu: {},
  inPlace: 'elementwise',
  attrs: {},
  outputShape: (node, ins) => sameShape(node, ins),
  prepare: (node) => elementwiseLayer(node, erf),
};

/**
 * layer_norm{axis, epsilon}: each row of D = prod(shape[axis:]) values becomes
 * (x - mean) / sqrt(var + epsilon) * scale + bias, var the biased variance; scale and bias [D].
 */
export const layerNorm: LayerKind = {
  ops: ['layer_norm'],
  mcu: {},
  attrs: { axis, epsilon: { type: 'number', finite: true } },
  checkAttrs(a, fail) {
    const eps = a['epsilon'];
    if (typeof eps === 'number' && eps < 0) fail('FLM_ATTR_RANGE', `epsilon ${eps} is negative`);
  },
  outputShape: (node, ins) => sameShape(node, ins),
  prepare(node, ctx) {
    const eps = attrNum(node, 'epsilon', 1e-5);
    const axisAttr = attrNum(node, 'axis', -1);
    const scale = ctx.optionalWeight('scale');
    const bias = ctx.optionalWeight('bias');
    return {
      bind(inputs, output) {
        const x = firstInput(node, inputs);
        const r = x.shape.length;
        const axis = axisAttr < 0 ? axisAttr + r : axisAttr;
        if (axis < 0 || axis >= r) throw new LayerError(node, `axis ${axisAttr} out of range for [${x.shape}]`);
        const D = x.shape.slice(axis).reduce((a, b) => a * b, 1);
        const xd = x.data;
        const y = output.data;
        if (xd.length !== y.length) throw new LayerError(node, `output has ${y.length} floats, input ${xd.length}`);
        for (const [role, w] of [['scale', scale], ['bias', bias]] as const) {
          if (w && w.data.length !== D) throw new LayerError(node, `${role} has ${w.data.length} values for rows of ${D}`);
        }
        const s = scale?.data;
        const b = bias?.data;
        const rows = D === 0 ? 0 : xd.length / D;
        return () => {
          for (let row = 0; row < rows; row++) {
            const o = row * D;
            let mean = 0;
            for (let i = 0; i < D; i++) mean += xd[o + i]!;
            mean /= D;
            let v = 0;
            for (let i = 0; i < D; i++) {
              const d = xd[o + i]! - mean;
              v += d * d;
            }
            const inv = 1 / Math.sqrt(v / D + eps);
            for (let i = 0; i < D; i++) {
              let t = (xd[o + i]! - mean) * inv;
              if (s) t *= s[i]!;
              if (b) t += b[i]!;
              y[o + i] = t;
            }
          }
        };
      },
    };
  },
};

// ---- the plain element-wise ops users' graphs keep after the patterns ----

const mathOp = (op: 'sqrt' | 'exp' | 'log' | 'abs' | 'reciprocal', f: (v: number) => number): LayerKind => ({
  ops: [op],
  mcu: {},
  attrs: {},
  outputShape: (node, ins) => sameShape(node, ins),
  inPlace: 'elementwise',
  prepare: (node) => elementwiseLayer(node, f),
});
export const sqrt = mathOp('sqrt', Math.sqrt);
export const exp = mathOp('exp', Math.exp);
export const log = mathOp('log', Math.log);
export const abs = mathOp('abs', Math.abs);
export const reciprocal = mathOp('reciprocal', (v) => 1 / v);

/** pow{exponent}: x ** exponent (a constant exponent). */
export const pow: LayerKind = {
  ops: ['pow'],
  mcu: {},
  inPlace: 'elementwise',
  attrs: { exponent: { type: 'number', finite: true, required: true } },
  checkAttrs(a, fail) {
    const e = a['exponent'];
    if (typeof e === 'number' && e < 0) fail('FLM_ATTR_RANGE', `exponent ${e} is negative (a negative power is pow then reciprocal)`);
  },
  outputShape: (node, ins) => sameShape(node, ins),
  prepare(node) {
    const e = attrNum(node, 'exponent');
    const f = e === 2 ? (v: number) => v * v : e === 3 ? (v: number) => v * v * v : e === 0.5 ? Math.sqrt : (v: number) => v ** e;
    return elementwiseLayer(node, f);
  },
};

/** The kept axes of a reduce: the input shape with each reduced axis 1 (keepdims) or dropped. */
export function reduceShape(node: GraphNode, x: readonly number[]): number[] {
  const axes = reduceAxes(node, x.length);
  const keep = attrNum(node, 'keepdims', 1) !== 0;
  return keep ? x.map((d, a) => (axes.has(a) ? 1 : d)) : x.filter((_, a) => !axes.has(a));
}

function reduceAxes(node: GraphNode, r: number): Set<number> {
  const raw = attrInts(node, 'axes');
  const axes = new Set(raw.map((a) => (a < 0 ? a + r : a)));
  if ([...axes].some((a) => a < 0 || a >= r) || axes.size !== raw.length) throw new LayerError(node, `axes [${raw}] do not fit rank ${r}`);
  return axes;
}

/** reduce{op, axes, keepdims}: mean, sum or max over the listed axes. */
export const reduce: LayerKind = {
  ops: ['reduce'],
  mcu: {},
  attrs: {
    op: { type: 'string', oneOf: ['mean', 'sum', 'max'], required: true },
    axes: { type: 'ints', len: [1, MAX_RANK], min: -MAX_RANK, max: MAX_RANK - 1, required: true },
    keepdims: flag,
  },
  outputShape: (node, ins) => reduceShape(node, ins[0]!),
  prepare(node) {
    const op = node.attrs['op'];
    if (op !== 'mean' && op !== 'sum' && op !== 'max') throw new LayerError(node, `op must be mean, sum or max`);
    return {
      bind(inputs, output) {
        const x = firstInput(node, inputs);
        const r = x.shape.length;
        const axes = reduceAxes(node, r);
        const want = reduceShape(node, x.shape);
        const y = output.data;
        if (want.reduce((a, b) => a * b, 1) !== y.length) throw new LayerError(node, `output has ${y.length} floats, expected [${want}]`);
        // Output index of every input element: strides of the kept axes, 0 on the reduced ones.
        const outStrides = new Array<number>(r).fill(0);
        let s = 1;
        for (let a = r - 1; a >= 0; a--) {
          if (axes.has(a)) continue;
          outStrides[a] = s;
          s *= x.shape[a]!;
        }
        const count = [...axes].reduce((p, a) => p * x.shape[a]!, 1);
        const xd = x.data;
        const dims = x.shape;
        return () => {
          y.fill(op === 'max' ? -Infinity : 0);
          const idx = new Array<number>(r).fill(0);
          let o = 0;
          for (let i = 0; i < xd.length; i++) {
            const v = xd[i]!;
            if (op !== 'max') y[o] = y[o]! + v;
            else if (v > y[o]! || Number.isNaN(v)) y[o] = v;
            for (let a = r - 1; a >= 0; a--) {
              idx[a] = idx[a]! + 1;
              o += outStrides[a]!;
              if (idx[a]! < dims[a]!) break;
              o -= outStrides[a]! * dims[a]!;
              idx[a] = 0;
            }
          }
          if (op === 'mean') for (let j = 0; j < y.length; j++) y[j] = y[j]! / count;
        };
      },
    };
  },
};
