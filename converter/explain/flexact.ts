// What a flexact layer learned (flexible-activation decoupling, methods/decouple.ts): each branch's
// activation g_b over its fitted range (and a quarter of its width beyond, where the layer follows
// the tangent), evaluated by the runtime's own branch step so the picture is what the layer
// computes. Each branch's weight on the output, ‖w[:, b]‖ times the spread of g_b over its range,
// orders the panels (largest first). No data is needed: the range is stored with the layer.
import type { GraphNode, Model } from '../../runtime/ir.js';
import { attrNum } from '../../runtime/ir.js';
import { tensorToFloat32 } from '../../runtime/format/dtype.js';
import { flexactBranches } from '../../runtime/layers/flexact.js';

/** Points per curve. */
const POINTS = 97;

export interface FlexactBranchCurve {
  branch: number;
  /** The branch's fitted range, or [-3, 3] when the layer stores none (the polynomial everywhere). */
  lo: number;
  hi: number;
  ranged: boolean;
  /** z from lo − (hi − lo)/4 to hi + (hi − lo)/4, and g_b(z). */
  z: number[];
  g: number[];
  /** ‖w[:, b]‖ · (max − min of g_b over [lo, hi]). */
  importance: number;
}

export interface FlexactLayerCurves {
  layer: string;
  kind: 'flexact';
  branches: number;
  degree: number;
  inputs: number;
  outputs: number;
  /** Curves in panel order (most important branch first). */
  curves: FlexactBranchCurve[];
}

export function flexactNodes(model: Model): GraphNode[] {
  return model.graph.nodes.filter((n) => n.op === 'flexact');
}

export function explainFlexact(model: Model): FlexactLayerCurves[] {
  return flexactNodes(model).map((node) => {
    const get = (role: string) => {
      const t = model.tensors.get(node.weights[role] ?? '');
      if (!t) throw new Error(`explain: flexact layer ${node.name} has no ${role}`);
      return { shape: t.shape, data: tensorToFloat32(t) };
    };
    const v = get('v'), w = get('w'), coeffs = get('coeffs');
    const range = node.weights['range'] ? get('range').data : undefined;
    const [r, inputs] = v.shape as [number, number];
    const outputs = w.shape[0]!;
    const D = attrNum(node, 'degree');
    const curves: FlexactBranchCurve[] = [];
    for (let b = 0; b < r; b++) {
      const lo = range ? range[2 * b]! : -3;
      const hi = range ? range[2 * b + 1]! : 3;
      const span = hi > lo ? hi - lo : 1;
      const from = lo - span / 4, to = hi + span / 4;
      // One row per point, the other branches fed zeros: flexactBranches evaluates all r per row.
      const t = new Float32Array(POINTS * r);
      const z: number[] = [];
      for (let k = 0; k < POINTS; k++) {
        const x = from + ((to - from) * k) / (POINTS - 1);
        z.push(x);
        t[k * r + b] = x;
      }
      flexactBranches(t, coeffs.data, POINTS, r, D, range, node.attrs['basis'] === 'bspline' ? 'bspline' : 'poly');
      const g = z.map((_, k) => t[k * r + b]!);
      let gMin = Infinity, gMax = -Infinity;
      z.forEach((x, k) => {
        if (x >= lo && x <= hi) {
          gMin = Math.min(gMin, g[k]!);
          gMax = Math.max(gMax, g[k]!);
        }
      });
      let wn = 0;
      for (let i = 0; i < outputs; i++) wn += w.data[i * r + b]! ** 2;
      curves.push({ branch: b, lo, hi, ranged: range !== undefined, z, g, importance: Math.sqrt(wn) * (gMax > gMin ? gMax - gMin : 0) });
    }
    curves.sort((a, c) => c.importance - a.importance || a.branch - c.branch);
    return { layer: node.name, kind: 'flexact' as const, branches: r, degree: D, inputs, outputs, curves };
  });
}
