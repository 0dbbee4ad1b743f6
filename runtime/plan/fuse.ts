// Streamed fusion (docs/FORMAT.md section 7, "Fused values"): a chain of consecutive nodes
//   producer (dense | svd_dense) -> [one elementwise unary activation] -> consumer (dense)
// whose intermediate values are read by the chain alone runs one hidden unit at a time:
// h_j = act(row_j . x + b_j), y += W2[:, j] * h_j. The intermediate vectors are never stored
// (their plan entries are `fused`, 0 bytes). Only a plan whose profile streams such chains
// (`fuses`: the firmware's "mcu") may fuse, and only chains this module recognises.
import { numel, type Model } from '../ir.js';
import type { InferredShapes } from './shapes.js';

/** Activations a fused chain may apply to the hidden unit. */
export const FUSE_ACTS: ReadonlySet<string> = new Set(['relu', 'leaky_relu', 'clip', 'sigmoid', 'tanh']);
const PRODUCERS: ReadonlySet<string> = new Set(['dense', 'svd_dense']);

export interface FusedChain {
  /** Node indices in order: producer, the activation when there is one, consumer (consecutive). */
  nodes: number[];
  /** The values never stored: the producer's output and, with an activation, its output. */
  values: string[];
}

function readers(model: Model): Map<string, number[]> {
  const r = new Map<string, number[]>();
  model.graph.nodes.forEach((node, k) => {
    for (const name of node.inputs) {
      const list = r.get(name);
      if (list) list.push(k);
      else r.set(name, [k]);
    }
  });
  return r;
}

/**
 * The chain whose producer is node `p`, when nodes p, p+1 (, p+2) form one: the producer is dense
 * or svd_dense on one row (its output's numel is its last axis), each intermediate value has
 * exactly one reader, the next node, which reads it as its only input and is not a graph output's
 * definer for an intermediate; the consumer is a dense on that one row.
 */
export function chainAt(model: Model, shapes: InferredShapes, p: number, reads = readers(model)): FusedChain | undefined {
  const nodes = model.graph.nodes;
  const outputs = new Set(model.graph.outputs);
  const prod = nodes[p];
  if (!prod || !PRODUCERS.has(prod.op) || prod.inputs.length !== 1 || prod.outputs.length !== 1) return undefined;
  const chain: FusedChain = { nodes: [p], values: [] };
  let v = prod.outputs[0]!;
  for (let k = p + 1; k < nodes.length; k++) {
    const node = nodes[k]!;
    const shape = shapes.values.get(v);
    if (!shape || shape.length < 1 || numel(shape) !== shape[shape.length - 1]) return undefined; // one row
    if (outputs.has(v) || model.graph.inputs.some((i) => i.name === v)) return undefined;
    const r = reads.get(v) ?? [];
    if (r.length !== 1 || r[0] !== k || node.inputs.length !== 1 || node.inputs[0] !== v || node.outputs.length !== 1) return undefined;
    chain.values.push(v);
    chain.nodes.push(k);
    if (node.op === 'dense') return chain;
    if (!FUSE_ACTS.has(node.op) || chain.nodes.length > 2) return undefined;
    v = node.outputs[0]!;
  }
  return undefined;
}

/** Every chain of the graph that can be fused (disjoint, in node order). */
export function fusableChains(model: Model, shapes: InferredShapes): FusedChain[] {
  const reads = readers(model);
  const out: FusedChain[] = [];
  const n = model.graph.nodes.length;
  for (let p = 0; p < n; p++) {
    const c = chainAt(model, shapes, p, reads);
    if (!c) continue;
    out.push(c);
    p = c.nodes[c.nodes.length - 1]!; // a consumer does not start another chain: its output is stored
  }
  return out;
}

/**
 * Lifetime widening for the overlap rule: a chain runs as one step, so a buffer live at any node
 * of a chain is live over the whole chain (the producer's input is read, the consumer's output
 * written, while the chain's other nodes "run"). Maps [first, last] to the widened span.
 */
export function chainSpan(chains: readonly FusedChain[]): (first: number, last: number) => [number, number] {
  const lo = new Map<number, number>();
  const hi = new Map<number, number>();
  for (const c of chains) {
    const a = c.nodes[0]!;
    const b = c.nodes[c.nodes.length - 1]!;
    for (const k of c.nodes) {
      lo.set(k, a);
      hi.set(k, b);
    }
  }
  return (first, last) => [lo.get(first) ?? first, hi.get(last) ?? last];
}
