// GELU (exact and tanh form), erf, and layer normalisation over the trailing axes.
import { attrNum, type GraphNode } from '../ir.js';
import { firstInput, LayerError, type LayerKind, type PreparedLayer } from './kind.js';

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

function elementwise(node: GraphNode, f: (v: number) => number): PreparedLayer {
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

export const gelu: LayerKind = {
  ops: ['gelu'],
  prepare: (node) => elementwise(node, approximateOf(node) === 'tanh' ? geluTanh : geluExact),
};

export const erfLayer: LayerKind = {
  ops: ['erf'],
  prepare: (node) => elementwise(node, erf),
};

/**
 * layer_norm{axis, epsilon}: each row of D = prod(shape[axis:]) values becomes
 * (x - mean) / sqrt(var + epsilon) * scale + bias, var the biased variance; scale and bias [D].
 */
export const layerNorm: LayerKind = {
  ops: ['layer_norm'],
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
