// Streamed fusion (docs/FORMAT.md section 7, "Fused values"): a chain of consecutive nodes
//   producer -> [one elementwise unary activation] -> consumer
// whose intermediate values are read by the chain alone runs as one step at the consumer, which
// computes each of its outputs from the producer's outputs it needs, one at a time, so the
// intermediates are never stored (their plan entries are `fused`, 0 bytes). The dense chain
// (a dense producer -> [act] -> dense, one row): h_j = act(row_j . x + b_j), y += W2[:, j] h_j.
// The conv-pool chain (a conv kind -> [act] -> max_pool | avg_pool; which kinds produce and
// consume each chain is their `mcu` part): each pooled output from the conv outputs of its window, activated; a factorised
// conv's stages before its last 1x1 stay in its scratch as unfused.
// A profile lists the chain kinds its kernels stream (`fuses`); a plan may fuse only those.
import { numel, type Model } from '../ir.js';
import type { ChainName } from '../layers/kind.js';
import { LAYER_KINDS } from '../layers/registry.js';
import type { InferredShapes } from './shapes.js';

/** Activations a fused chain may apply between producer and consumer. */
export const FUSE_ACTS: ReadonlySet<string> = new Set([...LAYER_KINDS.values()].filter((k) => k.mcu?.chainAct).map((k) => k.ops[0]));

/** A kind of chain a profile's kernels stream. */
export interface FuseRule {
  name: string;
  producers: ReadonlySet<string>;
  consumers: ReadonlySet<string>;
  /** The intermediates must be one row (numel = the last axis): batch 1, no leading axes. */
  oneRow: boolean;
  /** The activations the chain may apply between producer and consumer (default FUSE_ACTS). */
  acts?: ReadonlySet<string>;
}

/** The ops whose kind's `mcu` part produces (or consumes) chain `name`. */
function chainOps(name: ChainName, end: 'produces' | 'consumes'): ReadonlySet<string> {
  return new Set([...LAYER_KINDS.values()].filter((k) => k.mcu?.[end] === name).map((k) => k.ops[0]));
}

/** A dense producer (dense, svd_dense) -> [act] -> dense on one row (the firmware's run_dense_chain). */
export const DENSE_CHAIN: FuseRule = {
  name: 'dense',
  producers: chainOps('dense', 'produces'),
  consumers: chainOps('dense', 'consumes'),
  oneRow: true,
};

/** conv kinds -> [act] -> max_pool | avg_pool (the firmware's run_conv_chain). */
export const CONV_POOL_CHAIN: FuseRule = {
  name: 'conv-pool',
  producers: chainOps('conv-pool', 'produces'),
  consumers: chainOps('conv-pool', 'consumes'),
  oneRow: false,
};

export interface FusedChain {
  rule: string;
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
 * The chain of one of `rules` whose producer is node `p`, when nodes p, p+1 (, p+2) form one:
 * each intermediate value is not a graph input or output and has exactly one reader, the next
 * node, which reads it as its only input (one row when the rule says so); the node after the
 * producer is the consumer or one activation followed by the consumer.
 */
export function chainAt(
  model: Model, shapes: InferredShapes, p: number, rules: readonly FuseRule[], reads = readers(model),
): FusedChain | undefined {
  const nodes = model.graph.nodes;
  const outputs = new Set(model.graph.outputs);
  const inputs = new Set(model.graph.inputs.map((i) => i.name));
  const prod = nodes[p];
  if (!prod || prod.inputs.length !== 1 || prod.outputs.length !== 1) return undefined;
  const rule = rules.find((r) => r.producers.has(prod.op));
  if (!rule) return undefined;
  const chain: FusedChain = { rule: rule.name, nodes: [p], values: [] };
  let v = prod.outputs[0]!;
  for (let k = p + 1; k < nodes.length; k++) {
    const node = nodes[k]!;
    const shape = shapes.values.get(v);
    if (!shape || shape.length < 1) return undefined;
    if (rule.oneRow && numel(shape) !== shape[shape.length - 1]) return undefined;
    if (outputs.has(v) || inputs.has(v)) return undefined;
    const r = reads.get(v) ?? [];
    if (r.length !== 1 || r[0] !== k || node.inputs.length !== 1 || node.inputs[0] !== v || node.outputs.length !== 1) return undefined;
    chain.values.push(v);
    chain.nodes.push(k);
    if (rule.consumers.has(node.op)) return chain;
    if (!(rule.acts ?? FUSE_ACTS).has(node.op) || chain.nodes.length > 2) return undefined;
    v = node.outputs[0]!;
  }
  return undefined;
}

/** Every chain of `rules` in the graph (disjoint, in node order). */
export function fusableChains(model: Model, shapes: InferredShapes, rules: readonly FuseRule[]): FusedChain[] {
  const reads = readers(model);
  const out: FusedChain[] = [];
  const n = model.graph.nodes.length;
  for (let p = 0; p < n; p++) {
    const c = chainAt(model, shapes, p, rules, reads);
    if (!c) continue;
    out.push(c);
    p = c.nodes[c.nodes.length - 1]!; // a consumer's output is stored: it starts no chain
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
