// Measured compute of a layer form, for `--prefer speed`: the form is built as a one-node model
// (its runtime kind, factors of its shapes filled with seeded values, the layer's conv attributes)
// and run by a Session on the kernels the runtime would use, at batch 1; the price is the fastest
// of a few timed runs. The cost model (rank/compute.ts) counts multiply-adds and prices them at
// fixed rates, which misses what the kernels make of a shape: Winograd for a dense 3x3, 1x1
// products with few channels over wide maps running at a third of the GEMM rate, CP's depthwise
// stages. Timing the form itself prices all of that. Equal shapes are timed once (a cache).
import type { KernelBackend } from '../../runtime/kernels/backend.js';
import { numel, type GraphNode, type Model, type StoredTensor } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import { findMethod } from '../methods/index.js';
import type { RankSpec } from './candidates.js';
import type { Target } from './target.js';

/** Prices a form of a layer in microseconds per sample at batch 1; undefined when it cannot run it. */
export type FormTimer = (t: Target, spec: RankSpec, sample: readonly number[]) => number | undefined;

/** The one-node graph of a form: its op and each weight role's shape. */
export function formNode(t: Target, spec: RankSpec): { node: GraphNode; roles: Record<string, number[]> } | undefined {
  const base = { ...t.node, inputs: ['x'], outputs: ['y'] };
  if (spec.method === 'dense') {
    const s = t.shape;
    const shape = s.kind === 'conv' ? [s.O, s.depthwise ? 1 : s.I, s.kh, s.kw] : [s.out, s.in];
    return { node: { ...base, weights: { weight: 'weight' } }, roles: { weight: shape } };
  }
  const f = findMethod(spec.method)?.shapes?.(t, spec as never);
  if (!f) return undefined;
  return { node: { ...base, op: f.op, weights: Object.fromEntries(Object.keys(f.roles).map((r) => [r, r])) }, roles: f.roles };
}

/** Fastest of `runs` timed calls (after `warmup` untimed ones) of a one-node model, µs. */
function timeForm(kernels: KernelBackend, node: GraphNode, roles: Record<string, number[]>, sample: readonly number[], warmup: number, runs: number): number {
  const tensors = new Map<string, StoredTensor>();
  let seed = 1;
  for (const [role, shape] of Object.entries(roles)) {
    const data = new Float32Array(numel(shape));
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(seed++ * 0.731) * 0.1;
    tensors.set(role, { name: role, dtype: 'f32', shape: [...shape], data });
  }
  const model: Model = { graph: { inputs: [{ name: 'x', shape: [1, ...sample] }], outputs: ['y'], nodes: [node] }, tensors, metadata: {} };
  const session = Session.create(model, { backend: kernels });
  try {
    const x = { shape: [1, ...sample], data: new Float32Array(numel(sample)).map((_, i) => Math.cos(i * 0.37)) };
    const y = new Float32Array(numel(session.outputShapesFor([x.shape])[0]!));
    for (let i = 0; i < warmup; i++) session.runInto([x], [y]);
    let best = Infinity;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      session.runInto([x], [y]);
      best = Math.min(best, performance.now() - t0);
    }
    return best * 1000;
  } finally {
    session.dispose();
  }
}

export interface KernelTimerOptions {
  /** Timed runs per form (fastest kept); default 30. */
  runs?: number;
  /** Untimed runs first; default 5. */
  warmup?: number;
}

/**
 * A FormTimer on `kernels` (a wasm-simd backend for the runtime's speed). Each distinct form
 * (op, factor shapes, conv attributes, input shape) is timed once.
 */
export function kernelTimer(kernels: KernelBackend, opts: KernelTimerOptions = {}): FormTimer & { timed: () => number } {
  const cache = new Map<string, number | undefined>();
  const runs = opts.runs ?? 30;
  const warmup = opts.warmup ?? 5;
  const timer = (t: Target, spec: RankSpec, sample: readonly number[]): number | undefined => {
    const form = formNode(t, spec);
    if (!form) return undefined;
    const key = JSON.stringify([form.node.op, form.roles, form.node.attrs, sample]);
    if (cache.has(key)) return cache.get(key);
    let us: number | undefined;
    try {
      us = timeForm(kernels, form.node, form.roles, sample, warmup, runs);
    } catch {
      us = undefined;  // a form the runtime cannot run at this shape: the caller prices it by model
    }
    cache.set(key, us);
    return us;
  };
  return Object.assign(timer, { timed: () => cache.size });
}
