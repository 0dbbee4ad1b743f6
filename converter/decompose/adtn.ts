// Fitting an ADTN (runtime/layers/adtnDense.ts) to a pretrained weight: there is no closed form, so
// the network's parameters are trained by the training engine's Adam on the relative squared error
// ||W - W(theta)||^2 / ||W||^2, from the random start of train/layers/adtn.ts, with a cosine schedule.
import { adtnLayout, adtnQubits, type AdtnLayout, type AdtnPairing } from '../../runtime/layers/adtnDense.js';
import { adtnDense, adtnWeightVar } from '../train/layers/adtn.js';
import { mul, sub, sum } from '../train/ops/elementwise.js';
import { Optimizer, scheduledLr } from '../train/optim.js';
import { backward, constant } from '../train/tensor.js';

export interface AdtnFitOptions {
  depth: number;
  arity?: number;
  pairing?: AdtnPairing;
  /** Adam steps (default 300). */
  steps?: number;
  /** Adam learning rate (default 0.02), cosine-scheduled to 0. */
  lr?: number;
  seed?: number;
}

export interface AdtnFit {
  layout: AdtnLayout;
  start: Float32Array;
  gates: Float32Array;
  /** ||W - W(theta)||_F / ||W||_F at the start and at the end, and the steps run. */
  relErrorStart: number;
  relError: number;
  steps: number;
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
  const lossOf = () => {
    const d = sub(adtnWeightVar(layout, start, gates, rows, cols), target);
    return sum(mul(d, d));
  };
  const steps = o.steps ?? 300;
  const lr = o.lr ?? 0.02;
  const opt = new Optimizer({ start, gates }, { kind: 'adam', lr });
  let first = NaN;
  for (let s = 0; s < steps; s++) {
    opt.zeroGrad();
    const loss = lossOf();
    const v = loss.data[0]!;
    if (s === 0) first = v;
    backward(loss);
    opt.step(scheduledLr({ kind: 'cosine' }, lr, s, steps));
  }
  const final = lossOf().data[0]!;
  spread(norm);
  if (steps === 0) first = final;
  return { layout, start: Float32Array.from(start.data), gates: Float32Array.from(gates.data), relErrorStart: Math.sqrt(first), relError: Math.sqrt(final), steps };
}
