// Per-channel output correction after factorisation (forward only, no training): a factorised layer
// stands in for a layer whose BatchNorm was folded into it, and its output channels drift in mean
// and spread from what the next layers were trained on. For each factorised layer, in graph order,
// run the source and the compressed model (with the corrections so far) on calibration inputs and
// map each output channel of the compressed layer onto the source's:
//   moments: y' = (sd_t / sd_s) (y - mu_s) + mu_t   (re-estimating the folded BatchNorm statistics)
//   affine:  y' = a y + b with the least-squares a, b of y_t on y per channel
// The scale is folded into the rows of the layer's output factor and the shift into its bias, so the
// written model has no extra node. Kinds whose output index is spread over several factors (TT, TR,
// TTL, reshaped nets) take the shift only.
import type { GraphNode, Model, OpName, StoredTensor, Tensor } from '../runtime/ir.js';
import { FACTOR_OPS, numel } from '../runtime/ir.js';
import { tensorToFloat32 } from '../runtime/format/dtype.js';
import { Session } from '../runtime/session.js';

export type CorrectMode = 'moments' | 'affine';

/** The factor whose rows are the output channels, per kind (others take the shift only). */
const OUTPUT_FACTOR: Partial<Record<OpName, string>> = {
  svd_dense: 'u', svd_conv2d: 'u', tucker2_conv2d: 'u_out', cp_conv2d: 'a_out',
};

const CONV_KINDS: ReadonlySet<OpName> = new Set<OpName>(['svd_conv2d', 'tucker2_conv2d', 'cp_conv2d', 'rcp_conv2d', 'rtk_conv2d', 'rtt_conv2d', 'rtr_conv2d']);

export interface LayerCorrection {
  name: string;
  op: OpName;
  channels: number;
  /** False when only the shift was applied (no single output factor). */
  scaled: boolean;
  /** Smallest and largest channel scale applied. */
  scaleMin: number;
  scaleMax: number;
  /** RMS over channels of (mu_s - mu_t) / sd_t before the correction. */
  meanDrift: number;
}

export interface CorrectReport {
  mode: CorrectMode;
  samples: number;
  layers: LayerCorrection[];
  seconds: number;
  /** Fit to the source on the calibration samples without and with the correction (when compared). */
  before?: { agreement: number | null; outputError: number };
  after?: { agreement: number | null; outputError: number };
  /** Whether the compressed model returned is the corrected one (compressModel). */
  kept?: boolean;
}

export interface CorrectOptions {
  mode?: CorrectMode;
  /** Channel scales are clamped to [1/maxScale, maxScale] (a near-dead channel is not blown up). Default 4. */
  maxScale?: number;
  /** Samples per forward run (memory bound). Default 64. */
  chunk?: number;
  log?: (msg: string) => void;
}

/** Per-channel sums of y_s, y_t, y_s^2, y_t^2, y_s y_t over every position. */
class ChannelStats {
  readonly s: Float64Array;
  readonly t: Float64Array;
  readonly ss: Float64Array;
  readonly tt: Float64Array;
  readonly st: Float64Array;
  n = 0;
  constructor(readonly channels: number) {
    this.s = new Float64Array(channels);
    this.t = new Float64Array(channels);
    this.ss = new Float64Array(channels);
    this.tt = new Float64Array(channels);
    this.st = new Float64Array(channels);
  }

  /** Adds one batch; `axis` is the channel axis of both outputs (same shape). */
  add(ys: Tensor, yt: Tensor, axis: number): void {
    const C = this.channels;
    const inner = numel(ys.shape.slice(axis + 1));
    const outer = numel(ys.shape.slice(0, axis));
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < C; c++) {
        const base = (o * C + c) * inner;
        let s = 0, t = 0, ss = 0, tt = 0, st = 0;
        for (let k = 0; k < inner; k++) {
          const a = ys.data[base + k]!;
          const b = yt.data[base + k]!;
          s += a; t += b; ss += a * a; tt += b * b; st += a * b;
        }
        this.s[c]! += s; this.t[c]! += t; this.ss[c]! += ss; this.tt[c]! += tt; this.st[c]! += st;
      }
    }
    this.n += outer * inner;
  }
}

function batches(x: Tensor, chunk: number): Tensor[] {
  const n = x.shape[0]!;
  const per = numel(x.shape.slice(1));
  const out: Tensor[] = [];
  for (let i = 0; i < n; i += chunk) {
    const m = Math.min(chunk, n - i);
    out.push({ shape: [m, ...x.shape.slice(1)], data: x.data.subarray(i * per, (i + m) * per) });
  }
  return out;
}

/** Values of one node's output for every batch (the session keeps them all with `true`). */
function outputsOf(model: Model, value: string, xs: Tensor[]): Tensor[] {
  const s = Session.create(model, { retainWeights: false });
  try {
    return xs.map((x) => {
      const v = s.run({ [s.inputNames[0]!]: x }, true)[value];
      if (!v) throw new Error(`value ${value} not produced`);
      return { shape: [...v.shape], data: v.data.slice() };
    });
  } finally {
    s.dispose();
  }
}

/**
 * The factorised layers of `compressed` that stand for a layer of `source` with the same name and
 * output value (what compressModel produces).
 */
export function correctableLayers(source: Model, compressed: Model): GraphNode[] {
  const src = new Map(source.graph.nodes.map((n) => [n.name, n]));
  return compressed.graph.nodes.filter((n) => FACTOR_OPS.has(n.op) && src.get(n.name)?.outputs[0] === n.outputs[0]);
}

/**
 * Maps every factorised layer's output channels onto the source's on calibration inputs `x` (see
 * the file comment). Returns a new model (tensors of the input models are not modified).
 */
export function correctChannels(source: Model, compressed: Model, x: Tensor, opts: CorrectOptions = {}): { model: Model; report: CorrectReport } {
  const t0 = performance.now();
  const mode = opts.mode ?? 'moments';
  const maxScale = opts.maxScale ?? 4;
  const xs = batches(x, opts.chunk ?? 64);
  const tensors = new Map(compressed.tensors);
  const graph = { ...compressed.graph, nodes: compressed.graph.nodes.map((n) => ({ ...n, weights: { ...n.weights } })) };
  let model: Model = { ...compressed, graph, tensors };
  const layers: LayerCorrection[] = [];
  for (const target of correctableLayers(source, compressed)) {
    const node = graph.nodes.find((n) => n.name === target.name)!;
    const value = node.outputs[0]!;
    const teacher = outputsOf(source, value, xs);
    const student = outputsOf(model, value, xs);
    const shape = student[0]!.shape;
    const axis = CONV_KINDS.has(node.op) ? 1 : shape.length - 1;
    const C = shape[axis]!;
    const st = new ChannelStats(C);
    student.forEach((y, i) => st.add(y, teacher[i]!, axis));
    const factorRole = OUTPUT_FACTOR[node.op];
    const factor = factorRole ? tensors.get(node.weights[factorRole]!) : undefined;
    const scaled = factor !== undefined && factor.shape[0] === C;
    const scale = new Float64Array(C).fill(1);
    const shift = new Float64Array(C);
    let drift = 0;
    for (let c = 0; c < C; c++) {
      const ms = st.s[c]! / st.n;
      const mt = st.t[c]! / st.n;
      const vs = Math.max(st.ss[c]! / st.n - ms * ms, 0);
      const vt = Math.max(st.tt[c]! / st.n - mt * mt, 0);
      drift += vt > 0 ? (ms - mt) ** 2 / vt : 0;
      let a = 1;
      if (scaled && vs > 1e-12) {
        a = mode === 'moments' ? Math.sqrt(vt / vs) : (st.st[c]! / st.n - ms * mt) / vs;
        if (!(a >= 1 / maxScale)) a = 1 / maxScale;
        if (a > maxScale) a = maxScale;
      }
      scale[c] = a;
      // y' = a (y - mu_s) + mu_t = a y + (mu_t - a mu_s): the bias b becomes a b + mu_t - a mu_s.
      shift[c] = mt - a * ms;
    }
    if (scaled) {
      const f = tensorToFloat32(factor!);
      const row = numel(factor!.shape.slice(1));
      const g = new Float32Array(f.length);
      for (let c = 0; c < C; c++) for (let k = 0; k < row; k++) g[c * row + k] = f[c * row + k]! * scale[c]!;
      const name = node.weights[factorRole!]!;
      tensors.set(name, { name, dtype: 'f32', shape: [...factor!.shape], data: g });
    }
    const biasName = node.weights['bias'] ?? `${node.name}.bias`;
    const old = tensors.get(biasName);
    const b = old ? tensorToFloat32(old) : new Float32Array(C);
    if (b.length !== C) throw new Error(`layer ${node.name}: bias of ${b.length} values for ${C} output channels`);
    const nb = new Float32Array(C);
    for (let c = 0; c < C; c++) nb[c] = scale[c]! * b[c]! + shift[c]!;
    const bias: StoredTensor = { name: biasName, dtype: 'f32', shape: [C], data: nb };
    tensors.set(biasName, bias);
    node.weights['bias'] = biasName;
    model = { ...model, graph, tensors };
    let lo = Infinity, hi = -Infinity;
    for (const a of scale) { lo = Math.min(lo, a); hi = Math.max(hi, a); }
    const l: LayerCorrection = { name: node.name, op: node.op, channels: C, scaled, scaleMin: lo, scaleMax: hi, meanDrift: Math.sqrt(drift / C) };
    layers.push(l);
    opts.log?.(`  corrected ${l.name} (${l.op}, ${C} channels): mean drift ${l.meanDrift.toFixed(3)} sd, scale ${lo.toFixed(3)}..${hi.toFixed(3)}${scaled ? '' : ' (shift only)'}`);
  }
  return { model, report: { mode, samples: x.shape[0]!, layers, seconds: (performance.now() - t0) / 1000 } };
}
