// Pointwise activations. Each backward uses what its forward kept (input or output).
import { trainWasm } from '../kernels.js';
import { gradOf, result, type Var } from '../tensor.js';

/** Tensors at least this big take relu on the wasm kernels (SIMD, no branch per value) when the trainer uses them. */
const WASM_MIN_VALUES = 1024;

export function relu(x: Var): Var {
  const xd = x.data;
  const out = new Float32Array(x.size);
  const big = out.length >= WASM_MIN_VALUES;
  if (!(big && trainWasm()?.relu(xd, out))) for (let i = 0; i < out.length; i++) out[i] = xd[i]! > 0 ? xd[i]! : 0;
  return result(out, x.shape, [x], (g) => {
    const gx = gradOf(x);
    if (!gx || (big && trainWasm()?.reluGrad(xd, g, gx))) return;
    for (let i = 0; i < g.length; i++) if (xd[i]! > 0) gx[i]! += g[i]!;
  });
}

export function leakyRelu(x: Var, alpha = 0.01): Var {
  const xd = x.data;
  const out = new Float32Array(x.size);
  for (let i = 0; i < out.length; i++) out[i] = xd[i]! > 0 ? xd[i]! : alpha * xd[i]!;
  return result(out, x.shape, [x], (g) => {
    const gx = gradOf(x);
    if (gx) for (let i = 0; i < g.length; i++) gx[i]! += xd[i]! > 0 ? g[i]! : alpha * g[i]!;
  });
}

export function tanh(x: Var): Var {
  const out = new Float32Array(x.size);
  for (let i = 0; i < out.length; i++) out[i] = Math.tanh(x.data[i]!);
  return result(out, x.shape, [x], (g) => {
    const gx = gradOf(x);
    if (gx) for (let i = 0; i < g.length; i++) gx[i]! += g[i]! * (1 - out[i]! * out[i]!);
  });
}

export function sigmoid(x: Var): Var {
  const out = new Float32Array(x.size);
  for (let i = 0; i < out.length; i++) out[i] = 1 / (1 + Math.exp(-x.data[i]!));
  return result(out, x.shape, [x], (g) => {
    const gx = gradOf(x);
    if (gx) for (let i = 0; i < g.length; i++) gx[i]! += g[i]! * out[i]! * (1 - out[i]!);
  });
}

/** erf: Maclaurin series below 2 (near f64 exact), Abramowitz & Stegun 7.1.26 above (|error| < 1.5e-7). */
export function erf(x: number): number {
  const s = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  if (a >= 2) {
    if (a > 6) return s;
    const t = 1 / (1 + 0.3275911 * a);
    const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return s * (1 - poly * Math.exp(-a * a));
  }
  // erf(a) = 2/sqrt(pi) sum_n (-1)^n a^(2n+1) / (n! (2n+1)), alternating and fast for a < 2.
  let term = a;
  let sum = a;
  const a2 = a * a;
  for (let n = 1; n < 60; n++) {
    term *= -a2 / n;
    const next = term / (2 * n + 1);
    sum += next;
    if (Math.abs(next) < 1e-17) break;
  }
  return (s * 2 * sum) / Math.sqrt(Math.PI);
}

const INV_SQRT2 = 1 / Math.SQRT2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** GELU, exact (erf) form as PyTorch's default: x Phi(x). */
export function gelu(x: Var): Var {
  const xd = x.data;
  const cdf = new Float64Array(x.size);
  const out = new Float32Array(x.size);
  for (let i = 0; i < out.length; i++) {
    const v = xd[i]!;
    const c = 0.5 * (1 + erf(v * INV_SQRT2));
    cdf[i] = c;
    out[i] = v * c;
  }
  return result(out, x.shape, [x], (g) => {
    const gx = gradOf(x);
    if (!gx) return;
    for (let i = 0; i < g.length; i++) {
      const v = xd[i]!;
      gx[i]! += g[i]! * (cdf[i]! + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v));
    }
  });
}
