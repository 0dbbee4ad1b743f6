// The compute a form costs, for `--prefer speed`: each candidate of a layer priced at batch 1 by
// the runtime's cost model (runtime/cost/model.ts: the factor kind's own contraction, the
// rebuild path when the model says it is cheaper, Winograd where the kernels take it) from the
// factor shapes its method knows without decomposing. The dense form is priced as the plain
// conv2d / dense layer the runtime runs. A method that cannot size its factors unbuilt (tt, tr,
// ttl, the reshaped methods) is priced by its parameters: one multiply-add per weight and output
// position, a lower bound of its contraction.
import type { GraphNode, Model } from '../../runtime/ir.js';
import { DEFAULT_MACHINE, estimate, priceSteps, type Machine } from '../../runtime/cost/model.js';
import { convStep, gemm, winogradConv } from '../../runtime/cost/steps.js';
import { convGeometry, convParams } from '../../runtime/layers/convAttrs.js';
import { inferShapes } from '../../runtime/plan/shapes.js';
import { findMethod } from '../methods/index.js';
import type { Candidate, RankSpec } from './candidates.js';
import type { Target } from './target.js';
import type { FormTimer } from './kernelTime.js';

/** What one form of a layer costs per sample. */
export interface FormCost {
  /** Multiply-adds (the cost model's FLOPs / 2). */
  macs: number;
  /** Microseconds at batch 1: measured on the kernels when a FormTimer priced it, else predicted on the default machine constants. */
  us: number;
  /** Whether `us` was measured (rank/kernelTime.ts). */
  measured?: boolean;
}

/** Per target: its input shape per sample (no batch), [C, H, W] for a conv, [..., in] for a dense layer. */
export function targetSamples(model: Model, targets: readonly Target[]): number[][] {
  const shapes = inferShapes(model, 1);
  const index = new Map(model.graph.nodes.map((n, k) => [n.name, k]));
  return targets.map((t) => {
    const k = index.get(t.node.name);
    const x = k === undefined ? undefined : shapes.nodes[k]!.inputs[0];
    if (!x) throw new Error(`layer ${t.node.name}: its input shape is not known`);
    return x.slice(1);
  });
}

/** Output positions a weight is applied at: OH * OW for a conv, the leading dims for a dense layer. */
function positions(t: Target, sample: readonly number[]): number {
  const s = t.shape;
  if (s.kind === 'conv') {
    const { OH, OW } = convGeometry(t.node, sample[1]!, sample[2]!, s.kh, s.kw);
    return OH * OW;
  }
  return sample.slice(0, -1).reduce((a, b) => a * b, 1);
}

function denseCost(t: Target, sample: readonly number[], m: Machine): FormCost {
  const s = t.shape;
  if (s.kind === 'conv') {
    const [C, H, W] = sample as [number, number, number];
    const { OH, OW } = convGeometry(t.node, H, W, s.kh, s.kw);
    const p = convParams(t.node);
    const G = s.depthwise ? s.O : 1;
    const wino = winogradConv(C, s.O, s.kh, s.kw, G, p.strides, p.dilations, OH, OW);
    const e = priceSteps([convStep('conv', 1, C, H, W, s.O, G, s.kh, s.kw, OH, OW, wino)], m);
    return { macs: e.flops / 2, us: e.us };
  }
  const rows = positions(t, sample);
  const e = priceSteps([gemm('dense', 1, rows, s.out, s.in, rows * s.in + s.out * s.in + rows * s.out)], m);
  return { macs: e.flops / 2, us: e.us };
}

/** The cost of one form of a layer; `sample` is its input shape per sample. */
export function formCost(t: Target, spec: RankSpec, params: number, sample: readonly number[], m: Machine = DEFAULT_MACHINE, timer?: FormTimer): FormCost {
  const modelled = modelCost(t, spec, params, sample, m);
  const us = timer?.(t, spec, sample);
  return us === undefined ? modelled : { macs: modelled.macs, us, measured: true };
}

function modelCost(t: Target, spec: RankSpec, params: number, sample: readonly number[], m: Machine): FormCost {
  if (spec.method === 'dense') return denseCost(t, sample, m);
  const f = findMethod(spec.method)?.shapes?.(t, spec as never);
  if (f) {
    const node: GraphNode = { ...t.node, op: f.op, weights: Object.fromEntries(Object.keys(f.roles).map((r) => [r, r])) };
    try {
      const e = estimate(node, (role) => f.roles[role], 1, sample, { machine: m });
      const p = e.use === 'rebuild' ? e.rebuild : e.contract;
      return { macs: p.flops / 2, us: p.us };
    } catch {
      // A kind the cost model cannot price: by its parameters, below.
    }
  }
  // One multiply-add per stored weight and output position; priced at the GEMM rate.
  const macs = (params - t.bias) * positions(t, sample);
  return { macs, us: (2 * macs) / (m.gemmGflopsLarge * 1e3) + m.callUs };
}

/** Every candidate with its cost (`macs`, `us`) filled in; `timer` measures `us` on the kernels where it can. */
export function priceCompute(model: Model, targets: readonly Target[], cands: readonly Candidate[][], m: Machine = DEFAULT_MACHINE, timer?: FormTimer): Candidate[][] {
  const samples = targetSamples(model, targets);
  return cands.map((list, i) => list.map((c) => {
    const f = formCost(targets[i]!, c.spec, c.params, samples[i]!, m, timer);
    return { ...c, macs: f.macs, us: f.us };
  }));
}
