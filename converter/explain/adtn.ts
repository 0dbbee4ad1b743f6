// ADTN gate significance: an adtn_dense layer's weight W is the state of a circuit (runtime/layers/
// adtnDense.ts). Each gate is read by what the weight loses without it: the gate replaced by the
// identity gives W_g, and its significance is ||W - W_g||_F / ||W||_F (0: the gate does nothing the
// weight needs; W is linear in every gate, so a gate c * I reads |1 - 1/c|). Drawn as a heat map of
// layers (rows) by gate position (columns), each cell normalised by the largest. No data is needed:
// these are properties of the stored network. adtn_conv2d's kernel [T, S, kh, kw] is read the same
// way (as the [T, S kh kw] matrix). Cost: one W per gate, expanded from the exact MPS (adtnMatrix:
// expandMps; the 2^Q rebuild only where the MPS is not small).
import type { GraphNode, Model } from '../../runtime/ir.js';
import { tensorToFloat32 } from '../../runtime/format/dtype.js';
import { adtnMatrix, adtnRuntimePlan, nodeLayout } from '../../runtime/layers/adtnDense.js';

export interface AdtnLayerSignificance {
  layer: string;
  kind: 'adtn';
  /** adtn_dense or adtn_conv2d. */
  op: string;
  q: number;
  depth: number;
  arity: number;
  pairing: string;
  /** Per gate, in stored order: its layer, its first index, ||W - W_g|| / ||W||. */
  gates: { layer: number; index: number; significance: number }[];
  /** depth x (q - arity + 1) grid, row m, column p: the significance of the gate of layer m at index p (0 where none). */
  grid: { rows: number; cols: number; values: number[] };
}

export function adtnNodes(model: Model): GraphNode[] {
  return model.graph.nodes.filter((n) => n.op === 'adtn_dense' || n.op === 'adtn_conv2d');
}

function tensorOf(model: Model, node: GraphNode, role: string): { data: Float32Array; shape: number[] } {
  const name = node.weights[role];
  const t = name === undefined ? undefined : model.tensors.get(name);
  if (!t) throw new Error(`layer ${node.name} (${node.op}): no ${role}`);
  return { data: tensorToFloat32(t), shape: t.shape };
}

/** Gate significance of every adtn_dense layer; onGate(done, total) after each rebuild. */
export function explainAdtn(model: Model, onGate?: (done: number, total: number) => void): AdtnLayerSignificance[] {
  const nodes = adtnNodes(model);
  const total = nodes.reduce((s, n) => s + tensorOf(model, n, 'gates').shape[0]!, 0);
  let done = 0;
  return nodes.map((node) => {
    const start = tensorOf(model, node, 'start');
    const gates = tensorOf(model, node, 'gates');
    const { l, out, inF } = nodeLayout(node, (r) => (r === 'start' ? start.shape : r === 'gates' ? gates.shape : undefined), (m) => {
      throw new Error(`layer ${node.name} (${node.op}): ${m}`);
    });
    const D = 2 ** l.arity;
    const plan = adtnRuntimePlan(l, out, inF);
    const w = adtnMatrix(l, start.data, gates.data, out, inF, plan);
    let n2 = 0;
    for (const v of w) n2 += v * v;
    const norm = Math.sqrt(n2) || 1;
    const cols = l.q - l.arity + 1;
    const values = new Array<number>(l.depth * cols).fill(0);
    const list: AdtnLayerSignificance['gates'] = [];
    const g = Float32Array.from(gates.data);
    let gi = 0;
    l.layers.forEach((layer, m) => {
      for (const p of layer) {
        const off = gi * D * D;
        const saved = g.slice(off, off + D * D);
        for (let i = 0; i < D * D; i++) g[off + i] = i % (D + 1) === 0 ? 1 : 0;
        const wg = adtnMatrix(l, start.data, g, out, inF, plan);
        g.set(saved, off);
        let d2 = 0;
        for (let i = 0; i < w.length; i++) d2 += (w[i]! - wg[i]!) ** 2;
        const s = Math.sqrt(d2) / norm;
        list.push({ layer: m, index: p, significance: s });
        values[m * cols + p] = s;
        gi++;
        onGate?.(++done, total);
      }
    });
    return { layer: node.name, kind: 'adtn', op: node.op, q: l.q, depth: l.depth, arity: l.arity, pairing: l.pairing, gates: list, grid: { rows: l.depth, cols, values } };
  });
}
