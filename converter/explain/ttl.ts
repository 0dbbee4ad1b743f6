// TTL importance (Calvi, Mandic et al. 2019): over a data set, how strongly the loss (softmax
// cross-entropy against the true labels) depends on each row of each factor matrix of every
// ttl_dense layer. Row i of input-mode factor k stands for input-mode index i, so its score is the
// importance of that index; for a first layer over 28x28 images the per-mode scores multiply into a
// per-pixel map (pixel j = row-major digits of j over in_modes).
//
// Two scores per row, both accumulated per batch (the gradient of the full-data mean loss is ~0 at
// a trained optimum, so magnitudes are taken batch by batch and then averaged):
//   gradNorm[i]   = sqrt(mean over batches of ||dL/dU[i,:]||^2)   (the raw gradient magnitude)
//   importance[i] = mean over batches of sum_r |U[i,r] * dL/dU[i,r]| (first-order Taylor saliency:
//                   the gradient magnitude weighted by the factor entry it multiplies)
// The pixel map uses `importance`: a factor row of zeros (an input index that cannot reach the
// output) scores exactly 0 there, whereas its raw gradient generally is not 0.
import type { GraphNode, Model } from '../../runtime/ir.js';
import { attrInts, numel } from '../../runtime/ir.js';
import type { Dataset } from '../data/datasets.js';
import { fromModel, type TrainableModel } from '../train/fromModel.js';
import { softmaxCrossEntropy } from '../train/ops/loss.js';
import { backward, constant, type Var } from '../train/tensor.js';

export interface ModeImportance {
  /** 'out' modes come first in the layer's factor list (factor.0 .. factor.{p-1}), then 'in'. */
  side: 'out' | 'in';
  /** Position among the modes of that side. */
  mode: number;
  /** Stored tensor role, e.g. 'factor.2'. */
  role: string;
  size: number;
  gradNorm: number[];
  importance: number[];
}

export interface TtlLayerImportance {
  layer: string;
  kind: 'ttl';
  outModes: number[];
  inModes: number[];
  modes: ModeImportance[];
  /** Per-pixel importance in [0, 1], row-major over the 28x28 image, when the layer reads the pixels. */
  pixelMap?: { width: number; height: number; values: number[] };
}

export interface TtlExplainOptions {
  batch?: number;
  onProgress?: (done: number, total: number) => void;
}

/** The ttl_dense nodes of a model, in graph order. */
export function ttlNodes(model: Model): GraphNode[] {
  return model.graph.nodes.filter((n) => n.op === 'ttl_dense');
}

/** True when `node` reads the graph input directly or through flatten / reshape / identity only. */
function readsGraphInput(model: Model, node: GraphNode): boolean {
  const producer = new Map<string, GraphNode>();
  for (const n of model.graph.nodes) for (const o of n.outputs) producer.set(o, n);
  const inputs = new Set(model.graph.inputs.map((i) => i.name));
  let value = node.inputs[0];
  for (let hops = 0; value !== undefined && hops < model.graph.nodes.length; hops++) {
    if (inputs.has(value)) return true;
    const p = producer.get(value);
    if (!p || !['flatten', 'reshape', 'identity'].includes(p.op)) return false;
    value = p.inputs[0];
  }
  return false;
}

/** Factor parameters of one ttl_dense node in the trainable model: factor.0 .. factor.{p+q-1}. */
function factorsOf(tm: TrainableModel, node: GraphNode): Var[] {
  const p = attrInts(node, 'out_modes').length;
  const q = attrInts(node, 'in_modes').length;
  return Array.from({ length: p + q }, (_, k) => {
    const name = node.weights[`factor.${k}`];
    const v = name === undefined ? undefined : tm.params[name];
    if (!v) throw new Error(`explain: ttl_dense ${node.name} has no factor.${k}`);
    return v;
  });
}

/** dL/dU for every factor of every ttl_dense node, on one batch (L = mean cross-entropy). */
export function ttlGradients(tm: TrainableModel, nodes: GraphNode[], x: Float32Array, shape: number[], labels: ArrayLike<number>): Float32Array[][] {
  for (const v of Object.values(tm.params)) v.zeroGrad();
  const logits = tm.forward(constant(x, shape));
  const loss = softmaxCrossEntropy(logits, labels);
  backward(loss);
  return nodes.map((n) => factorsOf(tm, n).map((f) => Float32Array.from(f.grad ?? new Float32Array(f.size))));
}

/** The mean cross-entropy of the model on one batch (no gradient use; for checks). */
export function batchLoss(tm: TrainableModel, x: Float32Array, shape: number[], labels: ArrayLike<number>): number {
  return softmaxCrossEntropy(tm.forward(constant(x, shape)), labels).data[0]!;
}

/**
 * Per-pixel map from per-mode input importances: pixel j (row-major digits d_k over in_modes) gets
 * prod_k imp_k[d_k] / max_k, normalised to [0, 1] (all zeros stay zeros).
 */
export function pixelMapOf(inModes: number[], perMode: number[][]): number[] {
  const n = numel(inModes);
  const scaled = perMode.map((v) => {
    const m = Math.max(0, ...v);
    return v.map((x) => (m > 0 ? x / m : 0));
  });
  const out = new Array<number>(n).fill(0);
  let max = 0;
  for (let j = 0; j < n; j++) {
    let rest = j;
    let prod = 1;
    for (let k = inModes.length - 1; k >= 0; k--) {
      const d = rest % inModes[k]!;
      rest = Math.floor(rest / inModes[k]!);
      prod *= scaled[k]![d]!;
    }
    out[j] = prod;
    if (prod > max) max = prod;
  }
  return max > 0 ? out.map((v) => v / max) : out;
}

/** TTL importance of every ttl_dense layer of `model` over `ds` (in batches). */
export function explainTtl(model: Model, ds: Dataset, opts: TtlExplainOptions = {}): TtlLayerImportance[] {
  const nodes = ttlNodes(model);
  if (nodes.length === 0) return [];
  const batch = opts.batch ?? 32;
  const tm = fromModel(model, { trainConstants: false });
  const per = numel(ds.shape);
  const factors = nodes.map((n) => factorsOf(tm, n));
  const sq = factors.map((fs) => fs.map((f) => new Float64Array(f.shape[0]!)));
  const taylor = factors.map((fs) => fs.map((f) => new Float64Array(f.shape[0]!)));
  let batches = 0;
  for (let start = 0; start < ds.count; start += batch) {
    const B = Math.min(batch, ds.count - start);
    const x = ds.images.slice(start * per, (start + B) * per);
    const grads = ttlGradients(tm, nodes, x, [B, ...ds.shape], ds.labels.subarray(start, start + B));
    grads.forEach((gs, l) => gs.forEach((g, k) => {
      const f = factors[l]![k]!;
      const [rows, r] = f.shape as [number, number];
      for (let i = 0; i < rows; i++) {
        let s = 0, t = 0;
        for (let c = 0; c < r; c++) {
          const gv = g[i * r + c]!;
          s += gv * gv;
          t += Math.abs(gv * f.data[i * r + c]!);
        }
        sq[l]![k]![i]! += s;
        taylor[l]![k]![i]! += t;
      }
    }));
    batches++;
    opts.onProgress?.(start + B, ds.count);
  }
  const nb = Math.max(1, batches);
  return nodes.map((node, l) => {
    const outModes = attrInts(node, 'out_modes');
    const inModes = attrInts(node, 'in_modes');
    const p = outModes.length;
    const modes: ModeImportance[] = factors[l]!.map((f, k) => ({
      side: k < p ? 'out' : 'in',
      mode: k < p ? k : k - p,
      role: `factor.${k}`,
      size: f.shape[0]!,
      gradNorm: Array.from(sq[l]![k]!, (s) => Math.sqrt(s / nb)),
      importance: Array.from(taylor[l]![k]!, (t) => t / nb),
    }));
    const res: TtlLayerImportance = { layer: node.name, kind: 'ttl', outModes, inModes, modes };
    if (numel(inModes) === 784 && per === 784 && readsGraphInput(model, node)) {
      const inImp = modes.filter((m) => m.side === 'in').map((m) => m.importance);
      res.pixelMap = { width: 28, height: 28, values: pixelMapOf(inModes, inImp) };
    }
    return res;
  });
}
