// The trainable ADTN dense layer (runtime kind adtn_dense, runtime/layers/adtnDense.ts): the weight
// is the state of a circuit of local gates applied to a product of Q start vectors, rebuilt on every
// forward pass from the parameters `start` [Q, 2] and `gates` [G, D, D] so that the loss's gradient
// reaches every gate. Two ops of its own (the product state, one gate on the state) with exact
// backward passes; test/converter/train/adtn.test.ts checks them against finite differences.
import { adtnLayout, adtnQubits, type AdtnLayout, type AdtnPairing } from '../../../runtime/layers/adtnDense.js';
import { contract } from '../ops/contract.js';
import { conv2d as conv2dOp, convParams, type Conv2dParams } from '../ops/conv.js';
import { linear } from '../ops/matmul.js';
import { reshape } from '../ops/shape.js';
import { gradOf, result, type Var } from '../tensor.js';
import { convAttrs } from './conv2d.js';
import { ParamMaker, type InitOptions, type TrainLayer } from './layer.js';

export const ADTN_DENSE_KIND = 'adtn_dense';
export const ADTN_CONV2D_KIND = 'adtn_conv2d';

/** The product state s[i_0 .. i_{q-1}] = prod_k start[k, i_k], as a vector of 2^q entries (outer products). */
export function productState(start: Var): Var {
  const q = start.shape[0]!;
  const row = (k: number) => slice2(start, k);
  let s = row(0);
  for (let k = 1; k < q; k++) s = reshape(contract(s, [], row(k), []), [2 ** (k + 1)]);
  return s;
}

/** start[k, :] as a vector of 2. */
function slice2(start: Var, k: number): Var {
  return result(start.data.slice(2 * k, 2 * k + 2), [2], [start], (g) => {
    const gs = gradOf(start);
    if (!gs) return;
    gs[2 * k] = gs[2 * k]! + g[0]!;
    gs[2 * k + 1] = gs[2 * k + 1]! + g[1]!;
  });
}

/**
 * Gate `gi` of `gates` [G, D, D] on the state [A * D * B]: out[a, g, b] = sum_h G[g, h] s[a, h, b].
 */
export function applyGate(s: Var, gates: Var, gi: number, A: number, D: number, B: number): Var {
  const sd = s.data;
  const G = gates.data;
  const off = gi * D * D;
  const out = new Float32Array(A * D * B);
  for (let a = 0; a < A; a++) {
    const base = a * D * B;
    for (let i = 0; i < D; i++) {
      const o = base + i * B;
      for (let h = 0; h < D; h++) {
        const w = G[off + i * D + h]!;
        const src = base + h * B;
        for (let b = 0; b < B; b++) out[o + b] = out[o + b]! + w * sd[src + b]!;
      }
    }
  }
  return result(out, s.shape, [s, gates], (g) => {
    const gs = gradOf(s);
    const gg = gradOf(gates);
    for (let a = 0; a < A; a++) {
      const base = a * D * B;
      for (let i = 0; i < D; i++) {
        const o = base + i * B;
        for (let h = 0; h < D; h++) {
          const src = base + h * B;
          if (gs) {
            const w = G[off + i * D + h]!;
            for (let b = 0; b < B; b++) gs[src + b] = gs[src + b]! + w * g[o + b]!;
          }
          if (gg) {
            let acc = 0;
            for (let b = 0; b < B; b++) acc += g[o + b]! * sd[src + b]!;
            gg[off + i * D + h] = gg[off + i * D + h]! + acc;
          }
        }
      }
    }
  });
}

/** The first rows*cols entries of a vector as a [rows, cols] matrix. */
export function headAsMatrix(v: Var, rows: number, cols: number): Var {
  const n = rows * cols;
  return result(v.data.slice(0, n), [rows, cols], [v], (g) => {
    const gv = gradOf(v);
    if (!gv) return;
    for (let i = 0; i < n; i++) gv[i] = gv[i]! + g[i]!;
  });
}

/** W [rows, cols] from start and gates, differentiable. */
export function adtnWeightVar(l: AdtnLayout, start: Var, gates: Var, rows: number, cols: number): Var {
  let s = productState(start);
  const D = 2 ** l.arity;
  let gi = 0;
  for (const layer of l.layers) {
    for (const p of layer) {
      s = applyGate(s, gates, gi, 2 ** p, D, 2 ** (l.q - p - l.arity));
      gi++;
    }
  }
  return headAsMatrix(s, rows, cols);
}

export interface AdtnOptions {
  depth: number;
  arity?: number;
  pairing?: AdtnPairing;
}

/**
 * ADTN dense layer: y = x W^T + b. Random start: gates near-orthogonal in expectation (entries
 * N(0, 1/D), so the state's norm is kept on average) and start vectors of equal norm, chosen so
 * that W's entries have the target variance gain / in.
 */
export function adtnDense(inF: number, outF: number, o: AdtnOptions, opts: InitOptions = {}): TrainLayer {
  const { l, start, gates, b } = adtnParamsFor(inF, outF, o, opts);
  return {
    op: ADTN_DENSE_KIND,
    attrs: { features: [outF, inF], depth: l.depth, arity: l.arity, pairing: l.pairing },
    params: { start, gates, ...(b ? { bias: b } : {}) },
    forward: (x: Var) => linear(x, adtnWeightVar(l, start, gates, outF, inF), b),
  };
}

/**
 * ADTN convolution (runtime kind adtn_conv2d): the kernel W [O, I, kh, kw] is the circuit's state
 * (its first O I kh kw entries, row-major, as a [O, I kh kw] matrix reshaped), rebuilt on every
 * forward pass, then the plain conv (group 1). Initialised as adtnDense with fan-in I kh kw.
 */
export function adtnConv2d(I: number, O: number, kernel: [number, number], o: AdtnOptions, conv: Partial<Conv2dParams> = {}, opts: InitOptions = {}): TrainLayer {
  const p = convParams(conv);
  if (p.group !== 1) throw new Error(`train: adtn_conv2d takes group 1, got ${p.group}`);
  const K = I * kernel[0] * kernel[1];
  const { l, start, gates, b } = adtnParamsFor(K, O, o, opts);
  return {
    op: ADTN_CONV2D_KIND,
    attrs: { ...convAttrs(p), weight_shape: [O, I, kernel[0], kernel[1]], depth: l.depth, arity: l.arity, pairing: l.pairing },
    params: { start, gates, ...(b ? { bias: b } : {}) },
    forward: (x: Var) => conv2dOp(x, reshape(adtnWeightVar(l, start, gates, O, K), [O, I, kernel[0], kernel[1]]), b, p),
  };
}

function adtnParamsFor(inF: number, outF: number, o: AdtnOptions, opts: InitOptions): { l: AdtnLayout; start: Var; gates: Var; b: Var | undefined } {
  const arity = o.arity ?? 2;
  const l = adtnLayout(adtnQubits(inF * outF, arity), o.depth, arity, o.pairing ?? 'brickwall');
  const D = 2 ** arity;
  const pm = new ParamMaker(opts);
  const start = pm.normalParam('start', [l.q, 2], 1);
  const gates = pm.normalParam('gates', [l.gates, D, D], 1 / Math.sqrt(D));
  if (!opts.weights?.['start']) {
    // The scale sqrt(target * 2^q) of the whole state, spread evenly over the q start vectors (one
    // vector carrying it alone would make Adam's steps on it far too small or far too large).
    const sc = Math.sqrt(pm.target(inF) * 2 ** l.q) ** (1 / l.q);
    for (let k = 0; k < l.q; k++) {
      const a = start.data[2 * k]!, b = start.data[2 * k + 1]!;
      const n = Math.hypot(a, b) || 1;
      start.data[2 * k] = (a / n) * sc;
      start.data[2 * k + 1] = (b / n) * sc;
    }
  }
  const b = pm.bias(outF);
  return { l, start, gates, b };
}
