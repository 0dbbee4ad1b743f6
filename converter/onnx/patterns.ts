// Subgraph recognition before import: the decompositions PyTorch's exporter writes for GELU
// (exact, through Erf; and the tanh form) and for LayerNorm below opset 17 become one node each,
// `Gelu` {approximate} and `LayerNormalization` {axis, epsilon}, which the emitters take like the
// standard ops of those names. A pattern is rewritten only when every value inside it is read
// by the pattern alone, so no other consumer loses a value.
import onnxProto from 'onnx-proto';
import { attrInt, attrInts } from './attributes.js';
import type { GraphParts } from './load.js';
import { constFromProto } from './tensors.js';

type INodeProto = onnxProto.onnx.INodeProto;
const AT = onnxProto.onnx.AttributeProto.AttributeType;

interface View {
  prod: Map<string, INodeProto>;
  cons: Map<string, INodeProto[]>;
  outputs: Set<string>;
  inits: Map<string, onnxProto.onnx.ITensorProto>;
}

function near(v: number | undefined, want: number, tol = 1e-4): boolean {
  return v !== undefined && Math.abs(v - want) <= tol * Math.max(1, Math.abs(want));
}

/** The value of a one-element float constant (an initializer or a Constant node), if it is one. */
function scalar(view: View, name: string): number | undefined {
  const data = constData(view, name);
  return data && data.length === 1 ? data[0] : undefined;
}

function constData(view: View, name: string): ArrayLike<number> | undefined {
  try {
    const init = view.inits.get(name);
    if (init) {
      const c = constFromProto(init, name);
      return c.kind === 'float' ? c.data : undefined;
    }
    const p = view.prod.get(name);
    if (p?.opType !== 'Constant') return undefined;
    for (const a of p.attribute ?? []) {
      if (a.name === 'value_float') return [a.f ?? 0];
      if (a.name === 'value' && a.t) {
        const c = constFromProto(a.t, name);
        return c.kind === 'float' ? c.data : undefined;
      }
    }
  } catch {
    return undefined;
  }
  return undefined;
}

function isConst(view: View, name: string): boolean {
  return view.inits.has(name) || view.prod.get(name)?.opType === 'Constant';
}

/** The only node reading `v`, when `v` is not a graph output. */
function sole(view: View, v: string | undefined, op: string): INodeProto | undefined {
  if (!v || view.outputs.has(v)) return undefined;
  const c = view.cons.get(v) ?? [];
  return c.length === 1 && c[0]!.opType === op ? c[0] : undefined;
}

/** The other input of a two-input node, given one of them. */
function other(n: INodeProto, v: string): string | undefined {
  const ins = n.input ?? [];
  if (ins.length !== 2) return undefined;
  if (ins[0] === v) return ins[1];
  if (ins[1] === v) return ins[0];
  return undefined;
}

function out(n: INodeProto): string {
  return n.output?.[0] ?? '';
}

/** Mul(x, c) with c a scalar near `want` (either order): the node, else undefined. */
function mulBy(view: View, n: INodeProto | undefined, x: string, want: number): boolean {
  if (n?.opType !== 'Mul') return false;
  const o = other(n, x);
  return o !== undefined && near(scalar(view, o), want);
}

/**
 * From `v` (the 1 + erf or 1 + tanh term), the Mul nodes that multiply it by x and by 0.5, in any
 * order and grouping PyTorch writes: the final node and those used on the way.
 */
function timesHalfX(view: View, v: string, x: string): { last: INodeProto; used: INodeProto[] } | undefined {
  let needX = true;
  let needHalf = true;
  let cur = v;
  const used: INodeProto[] = [];
  while (needX || needHalf) {
    const m = sole(view, cur, 'Mul');
    if (!m) return undefined;
    const o = other(m, cur);
    if (o === undefined) return undefined;
    const p = view.prod.get(o);
    if (o === x && needX) needX = false;
    else if (needHalf && near(scalar(view, o), 0.5)) needHalf = false;
    else if (needX && needHalf && p && mulBy(view, p, x, 0.5) && (view.cons.get(o)?.length === 1) && !view.outputs.has(o)) {
      needX = needHalf = false;
      used.push(p);
    } else return undefined;
    used.push(m);
    cur = out(m);
  }
  return { last: used[used.length - 1]!, used };
}

/** 1 + t as Add(t, 1) read only by the rest of the pattern. */
function plusOne(view: View, t: INodeProto): INodeProto | undefined {
  const a = sole(view, out(t), 'Add');
  return a && near(scalar(view, other(a, out(t)) ?? ''), 1) ? a : undefined;
}

function geluErf(view: View, e: INodeProto): Match | undefined {
  const arg = e.input?.[0] ?? '';
  const pre = view.prod.get(arg);
  if (!pre || view.cons.get(arg)?.length !== 1) return undefined;
  let x: string | undefined;
  if (pre.opType === 'Div' && near(scalar(view, pre.input?.[1] ?? ''), Math.SQRT2)) x = pre.input?.[0];
  else if (pre.opType === 'Mul') {
    for (const i of pre.input ?? []) if (near(scalar(view, i), Math.SQRT1_2)) x = other(pre, i);
  }
  if (!x) return undefined;
  const a = plusOne(view, e);
  if (!a) return undefined;
  const tail = timesHalfX(view, out(a), x);
  if (!tail) return undefined;
  return { nodes: [pre, e, a, ...tail.used], last: tail.last, fused: fusedNode('Gelu', tail.last, [x], [strAttr('approximate', 'none')]) };
}

/** x^3 as Pow(x, 3), Mul(x, Mul(x, x)) or Mul(Mul(x, x), x). */
function cube(view: View, v: string, x: string): INodeProto[] | undefined {
  const p = view.prod.get(v);
  if (!p || view.cons.get(v)?.length !== 1) return undefined;
  if (p.opType === 'Pow' && p.input?.[0] === x && near(scalar(view, p.input?.[1] ?? ''), 3)) return [p];
  if (p.opType !== 'Mul') return undefined;
  const o = other(p, x);
  const sq = o === undefined ? undefined : view.prod.get(o);
  if (sq?.opType === 'Mul' && sq.input?.[0] === x && sq.input?.[1] === x && view.cons.get(o!)?.length === 1) return [sq, p];
  return undefined;
}

function geluTanh(view: View, t: INodeProto): Match | undefined {
  const arg = t.input?.[0] ?? '';
  const pre = view.prod.get(arg);
  if (pre?.opType !== 'Mul' || view.cons.get(arg)?.length !== 1) return undefined;
  const k = (pre.input ?? []).find((i) => near(scalar(view, i), Math.sqrt(2 / Math.PI)));
  const u = k === undefined ? undefined : other(pre, k);
  const add = u === undefined ? undefined : view.prod.get(u);
  if (add?.opType !== 'Add' || view.cons.get(u!)?.length !== 1) return undefined;
  for (const x of add.input ?? []) {
    const w = other(add, x);
    const wn = w === undefined ? undefined : view.prod.get(w);
    if (wn?.opType !== 'Mul' || view.cons.get(w!)?.length !== 1) continue;
    const c = (wn.input ?? []).find((i) => near(scalar(view, i), 0.044715));
    const cu = c === undefined ? undefined : cube(view, other(wn, c) ?? '', x);
    if (!cu) continue;
    const a = plusOne(view, t);
    if (!a) return undefined;
    const tail = timesHalfX(view, out(a), x);
    if (!tail) return undefined;
    return { nodes: [...cu, wn, add, pre, t, a, ...tail.used], last: tail.last, fused: fusedNode('Gelu', tail.last, [x], [strAttr('approximate', 'tanh')]) };
  }
  return undefined;
}

/** ReduceMean's axes (attribute below opset 18, input from 18), when constant. */
function reduceAxes(view: View, n: INodeProto): number[] | undefined {
  const a = attrInts(n, 'axes');
  if (a) return a;
  const name = n.input?.[1];
  const d = name ? constIntData(view, name) : undefined;
  return d;
}

function constIntData(view: View, name: string): number[] | undefined {
  try {
    const init = view.inits.get(name);
    const t = init ?? view.prod.get(name)?.attribute?.find((a) => a.name === 'value')?.t;
    if (!t || (!init && view.prod.get(name)?.opType !== 'Constant')) return undefined;
    const c = constFromProto(t, name);
    return c.kind === 'int' && c.data.every((v) => typeof v === 'number') ? (c.data as number[]) : undefined;
  } catch {
    return undefined;
  }
}

function layerNorm(view: View, m1: INodeProto): Match | undefined {
  const axes = reduceAxes(view, m1);
  if (!axes || axes.length === 0 || attrInt(m1, 'keepdims', 1) !== 1) return undefined;
  const sorted = [...axes].sort((p, q) => p - q);
  const k = sorted.length;
  if (!sorted.every((a, i) => a === i - k)) return undefined;
  const x = m1.input?.[0] ?? '';
  const sub = sole(view, out(m1), 'Sub');
  if (!sub || sub.input?.[0] !== x || sub.input?.[1] !== out(m1)) return undefined;
  const d = out(sub);
  const dc = view.cons.get(d) ?? [];
  if (view.outputs.has(d) || dc.length !== 2) return undefined;
  const sq = dc.find((n) => (n.opType === 'Pow' && n.input?.[0] === d && near(scalar(view, n.input?.[1] ?? ''), 2)) ||
    (n.opType === 'Mul' && n.input?.[0] === d && n.input?.[1] === d));
  const div = dc.find((n) => n.opType === 'Div' && n.input?.[0] === d);
  if (!sq || !div) return undefined;
  const m2 = sole(view, out(sq), 'ReduceMean');
  const m2Axes = m2 ? reduceAxes(view, m2) : undefined;
  if (!m2 || !m2Axes || [...m2Axes].sort((p, q) => p - q).join() !== sorted.join() || attrInt(m2, 'keepdims', 1) !== 1) return undefined;
  const addEps = sole(view, out(m2), 'Add');
  const eps = addEps ? scalar(view, other(addEps, out(m2)) ?? '') : undefined;
  if (!addEps || eps === undefined || !(eps >= 0)) return undefined;
  const sqrt = sole(view, out(addEps), 'Sqrt');
  if (!sqrt || sole(view, out(sqrt), 'Div') !== div || div.input?.[1] !== out(sqrt)) return undefined;
  const nodes = [m1, sub, sq, m2, addEps, sqrt, div];
  let last = div;
  let scale = '';
  let bias = '';
  const mul = sole(view, out(last), 'Mul');
  const w = mul ? other(mul, out(last)) : undefined;
  if (mul && w !== undefined && isConst(view, w)) {
    scale = w;
    nodes.push(mul);
    last = mul;
  }
  const add = sole(view, out(last), 'Add');
  const b = add ? other(add, out(last)) : undefined;
  if (add && b !== undefined && isConst(view, b)) {
    bias = b;
    nodes.push(add);
    last = add;
  }
  const attrs = [
    { name: 'axis', type: AT.INT, i: -k },
    { name: 'epsilon', type: AT.FLOAT, f: eps },
  ];
  return { nodes, last, fused: fusedNode('LayerNormalization', last, [x, scale, bias], attrs) };
}

interface Match {
  nodes: INodeProto[];
  last: INodeProto;
  fused: INodeProto;
}

function strAttr(name: string, s: string): onnxProto.onnx.IAttributeProto {
  return { name, type: AT.STRING, s: new TextEncoder().encode(s) };
}

function fusedNode(opType: string, last: INodeProto, input: string[], attribute: onnxProto.onnx.IAttributeProto[]): INodeProto {
  while (input.length > 1 && input[input.length - 1] === '') input.pop();
  return { opType, name: last.name ?? '', input, output: [out(last)], attribute };
}

const MATCHERS: Record<string, (view: View, n: INodeProto) => Match | undefined> = {
  Erf: geluErf,
  Tanh: geluTanh,
  ReduceMean: layerNorm,
};

/** Rewrites the recognised subgraphs of `parts.node` in place. */
export function fusePatterns(parts: GraphParts): void {
  if (!parts.node.some((n) => (n.opType ?? '') in MATCHERS)) return;
  const view: View = { prod: new Map(), cons: new Map(), outputs: new Set(parts.output.map((o) => o.name ?? '')), inits: new Map() };
  for (const t of parts.initializer) view.inits.set(t.name ?? '', t);
  for (const n of parts.node) {
    for (const o of n.output ?? []) if (o) view.prod.set(o, n);
    for (const i of n.input ?? []) if (i) view.cons.set(i, [...(view.cons.get(i) ?? []), n]);
  }
  const removed = new Set<INodeProto>();
  const replaced = new Map<INodeProto, INodeProto>();
  for (const n of parts.node) {
    const matcher = MATCHERS[n.opType ?? ''];
    if (!matcher || removed.has(n)) continue;
    const m = matcher(view, n);
    if (!m || m.nodes.some((p) => removed.has(p))) continue;
    const inside = new Set(m.nodes);
    // Every value made inside the pattern, but the last, must be read only inside it.
    const closed = m.nodes.every((p) => p === m.last ||
      (p.output ?? []).every((o) => !view.outputs.has(o) && (view.cons.get(o) ?? []).every((c) => inside.has(c))));
    if (!closed) continue;
    for (const p of m.nodes) if (p !== m.last) removed.add(p);
    replaced.set(m.last, m.fused);
  }
  if (removed.size === 0) return;
  const next = parts.node.filter((n) => !removed.has(n)).map((n) => replaced.get(n) ?? n);
  parts.node.splice(0, parts.node.length, ...next);
}
