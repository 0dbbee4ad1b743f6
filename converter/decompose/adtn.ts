// Fitting an ADTN (runtime/layers/adtnDense.ts) to a pretrained weight: there is no closed form, so
// the network's parameters are trained by the training engine's Adam on the relative squared error
// at the best scale, 1 - cos^2(W, W(theta)), from the random start of train/layers/adtn.ts, with a
// cosine schedule.
import { adtnLayout, adtnQubits, type AdtnLayout, type AdtnPairing } from '../../runtime/layers/adtnDense.js';
import { adtnDense, adtnWeightVar } from '../train/layers/adtn.js';
import { Optimizer, scheduledLr } from '../train/optim.js';
import { backward, constant, gradOf, result } from '../train/tensor.js';

export interface AdtnFitOptions {
  depth: number;
  arity?: number;
  pairing?: AdtnPairing;
  /** Adam steps (default 300). */
  steps?: number;
  /** Adam learning rate (default 0.02), cosine-scheduled to 0. */
  lr?: number;
  seed?: number;
  /**
   * Relative error above which the fit counts as having captured nothing of W: the network then
   * starts from the random initialisation at the target variance instead (relError is that start's
   * error, fitRelError the fit's). Absent: the fit is kept whatever its error.
   */
  fallbackAbove?: number;
  /** Gain of the random start of the fallback (target variance gain / in; default 2, He). */
  gain?: number;
}

export interface AdtnFit {
  layout: AdtnLayout;
  start: Float32Array;
  gates: Float32Array;
  /** ||W - W(theta)||_F / ||W||_F at the start and at the end, and the steps run. */
  relErrorStart: number;
  relError: number;
  steps: number;
  /** 'random' when the fit captured nothing (fallbackAbove) and the random start was kept instead. */
  init: 'fit' | 'random';
  /** The fit's own error (equal to relError unless init is 'random'). */
  fitRelError: number;
}

/** Relative error above which convert drops the fit for the random start (decompose/adtn.ts fallbackAbove). */
export const ADTN_FALLBACK_ERROR = 0.9;
/**
 * The fit gives up early when, a quarter of the way through, its error is still above this (it has
 * then captured under 1 - 0.99^2, about 2%, of W's energy; each step costs a whole 2^Q rebuild).
 */
export const ADTN_GIVE_UP_ERROR = 0.99;

function relErrorOf(w: Float32Array, v: Float32Array): number {
  let d2 = 0, n2 = 0;
  for (let i = 0; i < w.length; i++) {
    const d = w[i]! - v[i]!;
    d2 += d * d;
    n2 += w[i]! * w[i]!;
  }
  return Math.sqrt(d2 / (n2 || 1));
}

/** Fits start and gates of an ADTN to W [rows, cols] by gradient descent. */
export function fitAdtn(w: Float32Array, rows: number, cols: number, o: AdtnFitOptions): AdtnFit {
  const arity = o.arity ?? 2;
  const layout = adtnLayout(adtnQubits(rows * cols, arity), o.depth, arity, o.pairing ?? 'brickwall');
  const layer = adtnDense(cols, rows, { depth: o.depth, arity, pairing: layout.pairing }, { seed: o.seed ?? 0, bias: false, gain: 1 });
  const start = layer.params['start']!;
  const gates = layer.params['gates']!;
  // The fit runs on W / ||W|| (a state of norm about 1, as the random start is), and ||W|| is spread
  // evenly over the q start vectors at the end: Adam's steps are then of one size for every factor.
  let n2 = 0;
  for (const v of w) n2 += v * v;
  const norm = Math.sqrt(n2) || 1;
  const target = constant(Float32Array.from(w, (v) => v / norm), [rows, cols]);
  const spread = (c: number) => {
    const f = Math.abs(c) ** (1 / layout.q);
    for (let i = 0; i < start.data.length; i++) start.data[i] = start.data[i]! * f;
    if (c < 0) {
      start.data[0] = -start.data[0]!;
      start.data[1] = -start.data[1]!;
    }
  };
  {
    const w0 = adtnWeightVar(layout, start, gates, rows, cols).data;
    let m2 = 0;
    for (const v of w0) m2 += v * v;
    if (m2 > 0) spread(1 / Math.sqrt(m2));
  }
  // The loss is scale-free: 1 - cos^2(W, W(theta)), the relative squared error at the best scale of
  // W(theta). The plain ||W/|W| - W(theta)||^2 has the zero state as an attractor: every factor
  // shrinks together and the fit ends at error 1 having captured nothing. The state is brought back
  // to norm 1 after every step, and the best scale is put on at the end.
  const tData = target.data;
  const cosLoss = () => {
    const v = adtnWeightVar(layout, start, gates, rows, cols);
    const vd = v.data;
    let a = 0, b = 0;
    for (let i = 0; i < vd.length; i++) {
      a += tData[i]! * vd[i]!;
      b += vd[i]! * vd[i]!;
    }
    b = b || 1e-30;
    const loss = result(Float32Array.of(1 - (a * a) / b), [], [v], (g) => {
      const gv = gradOf(v);
      if (!gv) return;
      const ct = (-2 * a) / b, cv = (2 * a * a) / (b * b);
      for (let i = 0; i < vd.length; i++) gv[i] = gv[i]! + g[0]! * (ct * tData[i]! + cv * vd[i]!);
    });
    return { loss, a, b };
  };
  const steps = o.steps ?? 300;
  const lr = o.lr ?? 0.02;
  const opt = new Optimizer({ start, gates }, { kind: 'adam', lr });
  const fallback = o.fallbackAbove;
  const checkAt = fallback !== undefined && steps >= 8 ? Math.ceil(steps / 4) : -1;
  let first = NaN;
  let ran = 0;
  for (let s = 0; s < steps; s++) {
    opt.zeroGrad();
    const { loss, b } = cosLoss();
    const v = loss.data[0]!;
    if (s === 0) first = v;
    if (s === checkAt && Math.sqrt(Math.max(0, v)) > Math.max(ADTN_GIVE_UP_ERROR, fallback!)) break;
    backward(loss);
    opt.step(scheduledLr({ kind: 'cosine' }, lr, s, steps));
    spread(1 / Math.sqrt(b));
    ran = s + 1;
  }
  const end = cosLoss();
  const final = Math.max(0, end.loss.data[0]!);
  spread((end.a / end.b) * norm);
  if (steps === 0) first = final;
  const fitRelError = Math.sqrt(final);
  if (fallback !== undefined && fitRelError > fallback) {
    // Nothing captured: the trainer's random start at the target variance (as train --layer adtn
    // builds it) gives fine-tuning a state of the right scale, where the fit leaves one near zero.
    const r = adtnDense(cols, rows, { depth: o.depth, arity, pairing: layout.pairing }, { seed: o.seed ?? 0, bias: false, gain: o.gain ?? 2 });
    const rs = r.params['start']!, rg = r.params['gates']!;
    const wr = adtnWeightVar(layout, rs, rg, rows, cols).data;
    return {
      layout, start: Float32Array.from(rs.data), gates: Float32Array.from(rg.data), relErrorStart: Math.sqrt(first),
      relError: relErrorOf(w, wr), steps: ran, init: 'random', fitRelError,
    };
  }
  return { layout, start: Float32Array.from(start.data), gates: Float32Array.from(gates.data), relErrorStart: Math.sqrt(first), relError: fitRelError, steps: ran, init: 'fit', fitRelError };
}
