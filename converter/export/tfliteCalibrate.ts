// Calibration for the int8 TFLite export: the float32 export is imported back (converter/tflite) and
// run by the factorlite runtime on the calibration set, so every TFLite activation tensor has an IR
// value to measure (a rank-4 tensor's NCHW twin has the same values).
//
// Clipping (optional): an activation's range is the one that minimises the expected squared
// quantisation error (rounding inside, clipping outside) over a histogram of its calibration values,
// instead of the extreme values.
import type { Model, Tensor } from '../../runtime/ir.js';
import { numel } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import { imagesAsInput } from '../data/layout.js';
import { importTfliteValues } from '../tflite/import.js';
import { ExportError } from './errors.js';
import type { TfliteBuilder } from './tfliteBuilder.js';

const BINS = 2048;

/** Runs the calibration set through the runtime on the imported float export; calls `visit` with every value of each batch. */
function run(imported: Model, x: Tensor, batch: number, visit: (name: string, t: Tensor) => void): void {
  const session = Session.create(imported);
  try {
    const n = x.shape[0] ?? 0;
    if (n < 1) throw new ExportError('EXPORT_BAD_OPTIONS', 'tflite int8 export: the calibration set is empty');
    const per = numel(x.shape.slice(1));
    const input = imported.graph.inputs[0]!;
    const inShape = input.shape.slice(1);
    if (numel(inShape) !== per) throw new ExportError('EXPORT_BAD_OPTIONS', `tflite int8 export: calibration samples of shape [${x.shape.slice(1)}] do not fit input [${inShape}]`);
    for (let s = 0; s < n; s += batch) {
      const k = Math.min(batch, n - s);
      const feed = imagesAsInput(input.shape, x.shape.slice(1), x.data.subarray(s * per, (s + k) * per), k);
      const all = session.run({ [input.name]: { shape: [k, ...inShape], data: feed.data } }, true);
      for (const [name, t] of Object.entries(all)) visit(name, t);
    }
  } finally {
    session.dispose();
  }
}

/** The range [lo, hi] (containing 0) that minimises rounding plus clipping error over a histogram. */
function mseRange(hist: Float64Array, lo: number, hi: number): [number, number] {
  const width = (hi - lo) / BINS;
  let best: [number, number] = [lo, hi];
  let bestErr = Infinity;
  for (let f = 1; f >= 0.3; f -= 0.01) {
    const a = lo * f;
    const z = hi * f;
    const step = (z - a) / 255;
    let err = 0;
    for (let i = 0; i < BINS; i++) {
      const c = hist[i]!;
      if (c === 0) continue;
      const v = lo + (i + 0.5) * width;
      if (v < a) err += c * (a - v) ** 2;
      else if (v > z) err += c * (v - z) ** 2;
      else err += (c * step * step) / 12;
    }
    if (err < bestErr) {
      bestErr = err;
      best = [a, z];
    }
  }
  return best;
}

interface ChannelStats { sum: Float64Array; lo: Float64Array; hi: Float64Array; count: number }

/** Adds a batch of value `name` to its per-channel sums and ranges (axis 1 of rank 4, else the last axis). */
function addChannelStats(stats: Map<string, ChannelStats>, name: string, t: Tensor): void {
  const rank = t.shape.length;
  if (rank < 2) return;
  const ch = rank === 4 ? t.shape[1]! : t.shape[rank - 1]!;
  const inner = rank === 4 ? t.shape[2]! * t.shape[3]! : 1;
  let s = stats.get(name);
  if (!s) {
    s = { sum: new Float64Array(ch), lo: new Float64Array(ch).fill(Infinity), hi: new Float64Array(ch).fill(-Infinity), count: 0 };
    stats.set(name, s);
  }
  if (s.sum.length !== ch) return;
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    const c = Math.floor(i / inner) % ch;
    const v = d[i]!;
    s.sum[c]! += v;
    if (v < s.lo[c]!) s.lo[c] = v;
    if (v > s.hi[c]!) s.hi[c] = v;
  }
  s.count += d.length / ch;
}

export interface CalibrationOptions {
  batch: number;
  /** MSE-optimal clipping of inner activations. */
  clip: boolean;
}

export interface Calibrated {
  /** Calibrated [min, max] of a TFLite tensor; `clip` false for graph outputs and logits. */
  range(idx: number, clip: boolean): [number, number];
  /** TFLite tensor index -> IR value (the int8 pass adds the interface tensors). */
  values: Map<number, string>;
  /** The calibration values of graph output `idx` as rows [rows, cols] (cols: its last axis). */
  outputRows(idx: number): { data: Float32Array; rows: number; cols: number } | undefined;
  /** Mean of a tensor per channel (axis 1 of a rank-4 NCHW value, else the last axis), or undefined. */
  channelMeans(idx: number): Float64Array | undefined;
  /** Per-channel [lo, hi] of a tensor (same axes as channelMeans), or undefined. */
  channelRanges(idx: number): { lo: Float64Array; hi: Float64Array } | undefined;
}

export function calibrate(b: TfliteBuilder, inputs: number[], outputs: number[], description: string, x: Tensor, o: CalibrationOptions): Calibrated {
  const bytes = b.finish(inputs, outputs, description);
  const { model: imported, values } = importTfliteValues(bytes);
  const outNames = new Set(outputs.map((i) => values.get(i)).filter((v): v is string => v !== undefined));
  const outParts = new Map<string, Float32Array[]>();
  const stats = new Map<string, ChannelStats>();
  const lo = new Map<string, number>();
  const hi = new Map<string, number>();
  run(imported, x, o.batch, (name, t) => {
    if (outNames.has(name)) outParts.set(name, [...(outParts.get(name) ?? []), t.data.slice()]); // one entry per batch
    addChannelStats(stats, name, t);
    let a = lo.get(name) ?? Infinity;
    let z = hi.get(name) ?? -Infinity;
    for (const v of t.data) {
      if (v < a) a = v;
      if (v > z) z = v;
    }
    lo.set(name, a);
    hi.set(name, z);
  });
  const clipped = new Map<string, [number, number]>();
  if (o.clip) {
    const hists = new Map<string, Float64Array>();
    run(imported, x, o.batch, (name, t) => {
      const a = Math.min(lo.get(name)!, 0);
      const z = Math.max(hi.get(name)!, 0);
      if (!(z > a)) return;
      const h = hists.get(name) ?? new Float64Array(BINS);
      const scale = BINS / (z - a);
      for (const v of t.data) h[Math.min(BINS - 1, Math.max(0, Math.floor((v - a) * scale)))]! += 1;
      hists.set(name, h);
    });
    for (const [name, h] of hists) clipped.set(name, mseRange(h, Math.min(lo.get(name)!, 0), Math.max(hi.get(name)!, 0)));
  }
  return {
    values,
    outputRows(idx) {
      const v = values.get(idx);
      const parts = v === undefined ? undefined : outParts.get(v);
      const shape = b.tensors[idx]?.shape;
      if (!parts || !shape || shape.length === 0) return undefined;
      const data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
      let off = 0;
      for (const p of parts) { data.set(p, off); off += p.length; }
      const cols = shape[shape.length - 1]!;
      return { data, rows: data.length / cols, cols };
    },
    channelMeans(idx) {
      const v = values.get(idx);
      const s = v === undefined ? undefined : stats.get(v);
      return s && s.count > 0 ? s.sum.map((e) => e / s.count) : undefined;
    },
    channelRanges(idx) {
      const v = values.get(idx);
      const s = v === undefined ? undefined : stats.get(v);
      return s && s.count > 0 ? { lo: s.lo, hi: s.hi } : undefined;
    },
    range(idx, clip) {
      const v = values.get(idx);
      const a = v === undefined ? undefined : lo.get(v);
      if (v === undefined || a === undefined) throw new ExportError('EXPORT_BAD_MODEL', `tflite int8 export: no calibration range for tensor ${b.tensors[idx]?.name}`);
      return (clip ? clipped.get(v) : undefined) ?? [a, hi.get(v)!];
    },
  };
}
