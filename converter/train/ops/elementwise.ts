// add / sub / mul with numpy broadcasting, a per-channel bias, scaling and reductions.
// Broadcast gradients are summed back over the broadcast axes.
import { numel } from '../../../runtime/ir.js';
import { gradOf, result, type Var } from '../tensor.js';
import { stridesOf } from './shape.js';

export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`train: cannot broadcast [${a}] with [${b}]`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** For each element of the broadcast output, the linear index it reads in a source of shape `src`. */
export function broadcastIndex(out: readonly number[], src: readonly number[]): Int32Array {
  const r = out.length;
  const padded = [...new Array<number>(r - src.length).fill(1), ...src];
  const st = stridesOf(padded).map((s, i) => (padded[i] === 1 ? 0 : s));
  const total = numel(out);
  const map = new Int32Array(total);
  const idx = new Array<number>(r).fill(0);
  let at = 0;
  for (let i = 0; i < total; i++) {
    map[i] = at;
    for (let d = r - 1; d >= 0; d--) {
      idx[d]!++;
      at += st[d]!;
      if (idx[d]! < out[d]!) break;
      at -= st[d]! * out[d]!;
      idx[d] = 0;
    }
  }
  return map;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

type BinaryKind = 'add' | 'sub' | 'mul';

function binary(a: Var, b: Var, kind: BinaryKind): Var {
  const ad = a.data;
  const bd = b.data;
  if (sameShape(a.shape, b.shape)) {
    const n = ad.length;
    const out = new Float32Array(n);
    if (kind === 'add') for (let i = 0; i < n; i++) out[i] = ad[i]! + bd[i]!;
    else if (kind === 'sub') for (let i = 0; i < n; i++) out[i] = ad[i]! - bd[i]!;
    else for (let i = 0; i < n; i++) out[i] = ad[i]! * bd[i]!;
    return result(out, a.shape, [a, b], (g) => {
      const ga = gradOf(a);
      const gb = gradOf(b);
      if (kind === 'mul') {
        if (ga) for (let i = 0; i < n; i++) ga[i]! += g[i]! * bd[i]!;
        if (gb) for (let i = 0; i < n; i++) gb[i]! += g[i]! * ad[i]!;
      } else {
        if (ga) for (let i = 0; i < n; i++) ga[i]! += g[i]!;
        if (gb) {
          if (kind === 'add') for (let i = 0; i < n; i++) gb[i]! += g[i]!;
          else for (let i = 0; i < n; i++) gb[i]! -= g[i]!;
        }
      }
    });
  }
  const shape = broadcastShape(a.shape, b.shape);
  const ia = broadcastIndex(shape, a.shape);
  const ib = broadcastIndex(shape, b.shape);
  const n = ia.length;
  const out = new Float32Array(n);
  if (kind === 'add') for (let i = 0; i < n; i++) out[i] = ad[ia[i]!]! + bd[ib[i]!]!;
  else if (kind === 'sub') for (let i = 0; i < n; i++) out[i] = ad[ia[i]!]! - bd[ib[i]!]!;
  else for (let i = 0; i < n; i++) out[i] = ad[ia[i]!]! * bd[ib[i]!]!;
  return result(out, shape, [a, b], (g) => {
    const ga = gradOf(a);
    const gb = gradOf(b);
    if (kind === 'mul') {
      if (ga) for (let i = 0; i < n; i++) ga[ia[i]!]! += g[i]! * bd[ib[i]!]!;
      if (gb) for (let i = 0; i < n; i++) gb[ib[i]!]! += g[i]! * ad[ia[i]!]!;
    } else {
      if (ga) for (let i = 0; i < n; i++) ga[ia[i]!]! += g[i]!;
      const sign = kind === 'add' ? 1 : -1;
      if (gb) for (let i = 0; i < n; i++) gb[ib[i]!]! += sign * g[i]!;
    }
  });
}

export const add = (a: Var, b: Var): Var => binary(a, b, 'add');
export const sub = (a: Var, b: Var): Var => binary(a, b, 'sub');
export const mul = (a: Var, b: Var): Var => binary(a, b, 'mul');

/**
 * x + b with b [C] added along `axis` (1 for NCHW, -1 for [.., features]).
 * The common case of a broadcast add, without index maps.
 */
export function addBias(x: Var, b: Var, axis = -1): Var {
  const ax = axis < 0 ? axis + x.shape.length : axis;
  const C = x.shape[ax]!;
  if (b.size !== C) throw new Error(`train: bias of ${b.size} values for axis ${ax} of [${x.shape}]`);
  const inner = numel(x.shape.slice(ax + 1));
  const outer = x.size / (C * inner);
  const xd = x.data;
  const bd = b.data;
  const out = new Float32Array(x.size);
  for (let o = 0, i = 0; o < outer; o++) {
    for (let c = 0; c < C; c++) {
      const bv = bd[c]!;
      for (let j = 0; j < inner; j++, i++) out[i] = xd[i]! + bv;
    }
  }
  return result(out, x.shape, [x, b], (g) => {
    const gx = gradOf(x);
    const gb = gradOf(b);
    if (gx) for (let i = 0; i < g.length; i++) gx[i]! += g[i]!;
    if (gb) {
      for (let o = 0, i = 0; o < outer; o++) {
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let j = 0; j < inner; j++, i++) s += g[i]!;
          gb[c]! += s;
        }
      }
    }
  });
}

/** x * c for a constant number c. */
export function scale(x: Var, c: number): Var {
  const out = new Float32Array(x.size);
  for (let i = 0; i < out.length; i++) out[i] = x.data[i]! * c;
  return result(out, x.shape, [x], (g) => {
    const gx = gradOf(x);
    if (gx) for (let i = 0; i < g.length; i++) gx[i]! += g[i]! * c;
  });
}

/** Sum of every element, as a scalar of shape []. */
export function sum(x: Var): Var {
  let s = 0;
  for (let i = 0; i < x.size; i++) s += x.data[i]!;
  return result(Float32Array.of(s), [], [x], (g) => {
    const gx = gradOf(x);
    const gv = g[0]!;
    if (gx) for (let i = 0; i < gx.length; i++) gx[i]! += gv;
  });
}

export function mean(x: Var): Var {
  return scale(sum(x), 1 / x.size);
}
