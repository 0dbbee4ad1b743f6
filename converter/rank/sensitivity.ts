// Calibration for --ratio: run the model once, price every candidate in layer-output error from the
// layer's real inputs, and measure how much each layer's output error moves the logits.
import type { Model, Tensor } from '../../runtime/ir.js';
import { attrInts, numel } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import type { TruncatedSvdResult } from '../decompose/svd.js';
import { mulberry32 } from '../decompose/prng.js';
import { fullSvd, type Target } from './target.js';
import { paretoFront, type Candidate } from './candidates.js';
import { inputMoment, OutputErrorCurve } from './dataAware.js';
import { runAllOutputs } from '../check.js';

/** Uniform [0, 1) inputs of the model's input shape, batch 32, when no calibration set is given. */
export function randomInputs(model: Model, seed: number): Tensor {
  const input = model.graph.inputs[0];
  if (!input || model.graph.inputs.length !== 1) throw new Error('calibration needs a model with one input');
  const shape = input.shape.map((d, i) => (d < 0 ? (i === 0 ? 32 : NaN) : d));
  if (shape.some((d) => Number.isNaN(d))) throw new Error(`input ${input.name} has free dims other than the batch; give --calib`);
  const rnd = mulberry32(seed);
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = rnd();
  return { shape, data };
}

function withWeight(model: Model, name: string, data: Float32Array): Model {
  const tensors = new Map(model.tensors);
  const old = model.tensors.get(name)!;
  tensors.set(name, { name, dtype: 'f32', shape: [...old.shape], data });
  return { ...model, tensors };
}

function relChange(y: Float32Array, base: Float32Array, baseEnergy: number): number {
  let d = 0;
  for (let i = 0; i < y.length; i++) d += (y[i]! - base[i]!) ** 2;
  return baseEnergy > 0 ? d / baseEnergy : 0;
}

/** W_r from the leading r terms of a full SVD (u [rows, k], v [k, cols], sqrt(s) in both). */
function leadingTerms(svd: TruncatedSvdResult, r: number): Float32Array {
  const k = svd.rank;
  const rows = svd.u.length / k;
  const cols = svd.v.length / k;
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let p = 0; p < r; p++) {
      const a = svd.u[i * k + p]!;
      if (a === 0) continue;
      const vo = p * cols;
      const wo = i * cols;
      for (let j = 0; j < cols; j++) w[wo + j]! += a * svd.v[vo + j]!;
    }
  }
  return w;
}

/** Piecewise-linear y(x) through sorted points, flat beyond the last one. */
function interpolate(xs: number[], ys: number[], x: number): number {
  if (x <= xs[0]!) return ys[0]! * (xs[0]! > 0 ? x / xs[0]! : 1);
  for (let i = 1; i < xs.length; i++) {
    if (x <= xs[i]!) {
      const f = (x - xs[i - 1]!) / Math.max(xs[i]! - xs[i - 1]!, 1e-30);
      return ys[i - 1]! + f * (ys[i]! - ys[i - 1]!);
    }
  }
  return ys[ys.length - 1]!;
}

const PROBES = [0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.85];

/**
 * For each target, the network's response to that layer's error, measured rather than linearised:
 * swap in SVD truncations whose layer-output errors sit at a ladder of levels (and an all-zero
 * weight), record the relative change of the logits, and interpolate. Each candidate's `err` becomes
 * sqrt(predicted relative logit change), so the allocator trades parameters against what the
 * network loses; `sensitivity` is the logit change per unit of layer-output error energy at the
 * middle probe, for the report.
 */
export function dataAwareCandidates(
  model: Model, targets: Target[], cands: Candidate[][], x: Tensor,
): { candidates: Candidate[][]; sensitivity: number[]; priced: Candidate[][]; base: Float32Array } {
  const session = Session.create(model, { retainWeights: false });
  const values = session.run({ [session.inputNames[0]!]: x }, true);
  // Every output, sample by sample (as runAllOutputs gives them).
  const base = runAllOutputs({ inputNames: session.inputNames, outputNames: session.outputNames, run: () => values }, x).data;
  const baseEnergy = base.reduce((s, v) => s + v * v, 0);
  const sensitivity: number[] = [];
  const priced: Candidate[][] = [];
  const candidates = targets.map((t, i) => {
    const input = values[t.node.inputs[0]!]!;
    const conv = t.shape.kind === 'conv'
      ? { strides: attrInts(t.node, 'strides', [1, 1]), pads: attrInts(t.node, 'pads', [0, 0, 0, 0]), dilations: attrInts(t.node, 'dilations', [1, 1]) }
      : undefined;
    const svd = fullSvd(t);
    const curve = new OutputErrorCurve(svd, inputMoment(input, t.shape, conv));
    const respond = (w: Float32Array) => relChange(runAllOutputs(Session.create(withWeight(model, t.node.weights["weight"]!, w), { retainWeights: false }), x).data, base, baseEnergy);
    const xs: number[] = [0];
    const ys: number[] = [0];
    for (const level of PROBES) {
      // The smallest rank whose layer-output error is at most this level.
      let r = 0;
      while (r < curve.outErr.length - 1 && curve.atRank(r) > level) r++;
      const e = curve.atRank(r);
      if (e <= xs[xs.length - 1]! + 1e-6) continue;
      xs.push(e);
      ys.push(respond(leadingTerms(svd, r)));
    }
    xs.push(1);
    ys.push(respond(new Float32Array(t.weight.length)));
    // Keep the response monotone so a better candidate is never priced worse.
    for (let k = 1; k < ys.length; k++) ys[k] = Math.max(ys[k]!, ys[k - 1]!);
    sensitivity.push(interpolate(xs, ys, 0.35) / 0.35 ** 2);
    const all = curve.reprice(cands[i]!).map((c) => ({ ...c, err: Math.sqrt(interpolate(xs, ys, c.err)) }));
    priced.push(all);
    return paretoFront(all);
  });
  return { candidates, sensitivity, priced, base };
}
