// Value lifetimes (docs/FORMAT.md section 7): first = defining node (-1 for a graph input),
// last = last reading node (the node count for a graph output, live to the end).
import type { Model } from '../ir.js';

export interface ValueLife {
  name: string;
  first: number;
  last: number;
  isInput: boolean;
}

/** Every activation value of the graph, graph inputs first, then node outputs in node order. */
export function valueLifetimes(model: Model): ValueLife[] {
  const { graph } = model;
  const lives = new Map<string, ValueLife>();
  for (const inp of graph.inputs) lives.set(inp.name, { name: inp.name, first: -1, last: -1, isInput: true });
  graph.nodes.forEach((node, k) => {
    for (const name of node.inputs) {
      const v = lives.get(name);
      if (v) v.last = k; // names that are not values are stored tensors
    }
    for (const o of node.outputs) lives.set(o, { name: o, first: k, last: k, isInput: false });
  });
  for (const o of graph.outputs) {
    const v = lives.get(o);
    if (v) v.last = graph.nodes.length;
  }
  for (const v of lives.values()) if (v.last < v.first) v.last = v.first;
  return [...lives.values()];
}
