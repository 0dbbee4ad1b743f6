// Batch normalisation over axis 1 of [N, C, ...] (BatchNorm1d on [N, C], BatchNorm2d on NCHW).
// Train mode normalises by the batch statistics and updates the running ones as PyTorch does
// (momentum on the mean and on the unbiased variance); eval mode uses the running ones.
import { numel } from '../../../runtime/ir.js';
import { gradOf, result, type Var } from '../tensor.js';

export class BatchNormState {
  readonly runningMean: Float32Array;
  readonly runningVar: Float32Array;
  constructor(channels: number, readonly momentum = 0.1, readonly eps = 1e-5) {
    this.runningMean = new Float32Array(channels);
    this.runningVar = new Float32Array(channels).fill(1);
  }
}

export function batchNorm(x: Var, gamma: Var, beta: Var, state: BatchNormState, training: boolean): Var {
  if (x.shape.length < 2) throw new Error(`train: batchNorm needs [N, C, ...], got [${x.shape}]`);
  const N = x.shape[0]!;
  const C = x.shape[1]!;
  if (gamma.size !== C || beta.size !== C || state.runningMean.length !== C) throw new Error(`train: batchNorm parameters do not have ${C} channels`);
  const inner = numel(x.shape.slice(2));
  const M = N * inner;
  const xd = x.data;
  const gd = gamma.data;
  const bd = beta.data;
  const mean = new Float64Array(C);
  const invStd = new Float64Array(C);
  if (training) {
    if (M < 2) throw new Error('train: batchNorm in train mode needs more than one value per channel');
    const sq = new Float64Array(C);
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const o = (n * C + c) * inner;
        let s = 0;
        for (let j = 0; j < inner; j++) s += xd[o + j]!;
        mean[c]! += s;
      }
    }
    for (let c = 0; c < C; c++) mean[c]! /= M;
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const o = (n * C + c) * inner;
        const mu = mean[c]!;
        let s = 0;
        for (let j = 0; j < inner; j++) {
          const d = xd[o + j]! - mu;
          s += d * d;
        }
        sq[c]! += s;
      }
    }
    const mom = state.momentum;
    for (let c = 0; c < C; c++) {
      const v = sq[c]! / M;
      invStd[c] = 1 / Math.sqrt(v + state.eps);
      state.runningMean[c] = (1 - mom) * state.runningMean[c]! + mom * mean[c]!;
      state.runningVar[c] = (1 - mom) * state.runningVar[c]! + mom * (sq[c]! / (M - 1));
    }
  } else {
    for (let c = 0; c < C; c++) {
      mean[c] = state.runningMean[c]!;
      invStd[c] = 1 / Math.sqrt(state.runningVar[c]! + state.eps);
    }
  }
  const xhat = new Float32Array(x.size);
  const out = new Float32Array(x.size);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const o = (n * C + c) * inner;
      const mu = mean[c]!;
      const is = invStd[c]!;
      const ga = gd[c]!;
      const be = bd[c]!;
      for (let j = 0; j < inner; j++) {
        const h = (xd[o + j]! - mu) * is;
        xhat[o + j] = h;
        out[o + j] = ga * h + be;
      }
    }
  }
  return result(out, x.shape, [x, gamma, beta], (g) => {
    const gx = gradOf(x);
    const gg = gradOf(gamma);
    const gb = gradOf(beta);
    // Per channel: sum(g) and sum(g * xhat) feed dbeta, dgamma and the train-mode dx.
    const sg = new Float64Array(C);
    const sgh = new Float64Array(C);
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const o = (n * C + c) * inner;
        let a = 0;
        let b = 0;
        for (let j = 0; j < inner; j++) {
          a += g[o + j]!;
          b += g[o + j]! * xhat[o + j]!;
        }
        sg[c]! += a;
        sgh[c]! += b;
      }
    }
    if (gb) for (let c = 0; c < C; c++) gb[c]! += sg[c]!;
    if (gg) for (let c = 0; c < C; c++) gg[c]! += sgh[c]!;
    if (!gx) return;
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const o = (n * C + c) * inner;
        const k = gd[c]! * invStd[c]!;
        if (training) {
          // dx = gamma invstd (g - mean(g) - xhat mean(g xhat))
          const mg = sg[c]! / M;
          const mgh = sgh[c]! / M;
          for (let j = 0; j < inner; j++) gx[o + j]! += k * (g[o + j]! - mg - xhat[o + j]! * mgh);
        } else {
          for (let j = 0; j < inner; j++) gx[o + j]! += k * g[o + j]!;
        }
      }
    }
  });
}
