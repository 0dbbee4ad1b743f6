// Constant folding: evaluates the shape arithmetic exporters emit (Shape -> Gather -> Unsqueeze ->
// Concat -> Reshape, Slice, Cast, ...) and simple ops on constants. A free (symbolic) dim stays a
// symbol through Gather/Slice/Concat/Squeeze/Unsqueeze/Cast; arithmetic on it gives a fresh symbol.

import onnxProto from 'onnx-proto';
import { sliceIndices } from '../../runtime/layers/reshapeData.js';
import { findAttr, attrInt, attrInts } from './attributes.js';
import { OnnxImportError } from './errors.js';
import { type Dim, type Symbols, normAxis, reshapeOut } from './shapes.js';
import { type Const, constFromProto, constInts, isFloatType, numelOf, toNum } from './tensors.js';

type INodeProto = onnxProto.onnx.INodeProto;
const DT = onnxProto.onnx.TensorProto.DataType;

/** Ops this module evaluates when all their inputs are known (Shape: when the input's shape is). */
export const FOLDABLE = new Set([
  'Constant', 'Identity', 'Dropout', 'Shape', 'Size', 'Gather', 'Concat', 'Unsqueeze', 'Squeeze', 'Slice',
  'Cast', 'Reshape', 'Transpose', 'Flatten', 'Add', 'Sub', 'Mul', 'Div', 'Neg', 'Sqrt', 'Reciprocal',
  'ConstantOfShape', 'Range', 'Floor', 'Ceil',
  'Expand', 'Tile', 'Exp', 'Log', 'Abs', 'Equal', 'Where',
]);

export interface FoldContext {
  opset: number;
  symbols: Symbols;
  where: string;
  /** Shape of an input that is an activation (for Shape/Size). */
  shapeOf(name: string): Dim[] | undefined;
}

function fail(where: string, msg: string): never {
  throw new OnnxImportError('ONNX_UNSUPPORTED_ATTR', `${where}: ${msg}`);
}

function bad(where: string, msg: string): never {
  throw new OnnxImportError('ONNX_BAD_MODEL', `${where}: ${msg}`);
}

/** Folded values are shapes and small constants; a larger one means a hostile or odd file. */
const MAX_FOLDED = 1 << 24;

function capped(n: number, where: string): number {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_FOLDED) fail(where, `folded constant of ${n} elements is too large`);
  return n;
}

function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1]! * dims[i + 1]!;
  return s;
}

function unionSrc(...cs: (Const | undefined)[]): Set<string> {
  const s = new Set<string>();
  for (const c of cs) if (c) for (const n of c.src) s.add(n);
  return s;
}

/** New constant with the same kind whose element k is `c.data[idx[k]]`. */
function take(c: Const, dims: number[], idx: readonly number[]): Const {
  if (c.kind === 'float') {
    const data = new Float32Array(idx.length);
    for (let k = 0; k < idx.length; k++) data[k] = c.data[idx[k]!]!;
    return { kind: 'float', dims, data, src: new Set(c.src) };
  }
  const data = idx.map((i) => c.data[i]!);
  return c.float ? { kind: 'int', dims, data, src: new Set(c.src), float: true } : { kind: 'int', dims, data, src: new Set(c.src) };
}

function withDims(c: Const, dims: number[]): Const {
  return c.kind === 'float' ? { ...c, dims, data: c.data } : { ...c, dims, data: c.data };
}

function ints(values: Dim[], src: Set<string> = new Set()): Const {
  return { kind: 'int', dims: [values.length], data: values, src };
}

export function transposeConst(c: Const, perm: readonly number[]): Const {
  const inStr = stridesOf(c.dims);
  const dims = perm.map((p) => c.dims[p]!);
  const n = numelOf(dims);
  const idx = new Array<number>(n);
  const pos = new Array<number>(dims.length).fill(0);
  for (let k = 0; k < n; k++) {
    let off = 0;
    for (let a = 0; a < dims.length; a++) off += pos[a]! * inStr[perm[a]!]!;
    idx[k] = off;
    for (let a = dims.length - 1; a >= 0; a--) {
      pos[a]! += 1;
      if (pos[a]! < dims[a]!) break;
      pos[a] = 0;
    }
  }
  return take(c, dims, idx);
}

function broadcastDims(a: readonly number[], b: readonly number[], where: string): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = i < n - a.length ? 1 : a[i - (n - a.length)]!;
    const y = i < n - b.length ? 1 : b[i - (n - b.length)]!;
    if (x !== y && x !== 1 && y !== 1) bad(where, `cannot broadcast [${a.join(', ')}] with [${b.join(', ')}]`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Index into `dims` (right-aligned, broadcast) for each element of `out`. */
function broadcastIndex(dims: readonly number[], out: readonly number[]): number[] {
  const str = stridesOf(dims);
  const n = numelOf(out);
  const idx = new Array<number>(n);
  const pos = new Array<number>(out.length).fill(0);
  const lead = out.length - dims.length;
  for (let k = 0; k < n; k++) {
    let off = 0;
    for (let a = 0; a < dims.length; a++) if (dims[a] !== 1) off += pos[a + lead]! * str[a]!;
    idx[k] = off;
    for (let a = out.length - 1; a >= 0; a--) {
      pos[a]! += 1;
      if (pos[a]! < out[a]!) break;
      pos[a] = 0;
    }
  }
  return idx;
}

type Arith = (x: number, y: number) => number;
const ARITH: Record<string, Arith> = {
  Add: (x, y) => x + y,
  Sub: (x, y) => x - y,
  Mul: (x, y) => x * y,
  Div: (x, y) => x / y,
};

function binary(op: string, a: Const, b: Const, ctx: FoldContext): Const {
  const dims = broadcastDims(a.dims, b.dims, ctx.where);
  const ia = broadcastIndex(a.dims, dims);
  const ib = broadcastIndex(b.dims, dims);
  const f = ARITH[op]!;
  const src = unionSrc(a, b);
  const isFloat = a.kind === 'float' || b.kind === 'float' || !!a.float || !!b.float;
  const hasSym = (c: Const): boolean => c.kind === 'int' && c.data.some((v) => typeof v !== 'number');
  if (isFloat && !hasSym(a) && !hasSym(b)) {
    const data = new Float32Array(ia.length);
    for (let k = 0; k < ia.length; k++) {
      const x = a.data[ia[k]!]!;
      const y = b.data[ib[k]!]!;
      if (typeof x !== 'number' || typeof y !== 'number') fail(ctx.where, 'float arithmetic on a free dim');
      data[k] = f(x, y);
    }
    return { kind: 'float', dims, data, src };
  }
  const data: Dim[] = ia.map((i, k) => {
    const x = a.data[i]!;
    const y = b.data[ib[k]!]!;
    if (typeof x === 'number' && typeof y === 'number') {
      const r = f(x, y);
      return op === 'Div' && !isFloat ? Math.trunc(r) : r;
    }
    // Identities that keep a free dim itself: n*1, n/1, n+0, n-0.
    if (typeof x !== 'number' && typeof y === 'number' &&
      (((op === 'Mul' || op === 'Div') && y === 1) || ((op === 'Add' || op === 'Sub') && y === 0))) return x;
    if (typeof y !== 'number' && typeof x === 'number' && ((op === 'Mul' && x === 1) || (op === 'Add' && x === 0))) return y;
    return ctx.symbols.fresh();
  });
  return isFloat ? { kind: 'int', dims, data, src, float: true } : { kind: 'int', dims, data, src };
}

function unaryFloat(c: Const, f: (x: number) => number, ctx: FoldContext): Const {
  if (c.kind === 'int') {
    return { kind: 'int', dims: c.dims, src: new Set(c.src),
      data: c.data.map((v) => (typeof v === 'number' ? f(v) : ctx.symbols.fresh())) };
  }
  return { kind: 'float', dims: c.dims, data: c.data.map(f), src: new Set(c.src) };
}

/** Reads the `value*` attribute of a Constant node. */
function constantValue(node: INodeProto, ctx: FoldContext): Const {
  const src = new Set<string>();
  for (const a of node.attribute ?? []) {
    switch (a.name) {
      case 'value': {
        if (!a.t) bad(ctx.where, 'value attribute without a tensor');
        return constFromProto(a.t, `${ctx.where} value`);
      }
      case 'value_float': return { kind: 'float', dims: [], data: new Float32Array([a.f ?? 0]), src };
      case 'value_floats': return { kind: 'float', dims: [a.floats?.length ?? 0], data: Float32Array.from(a.floats ?? []), src };
      case 'value_int': return { kind: 'int', dims: [], data: [toNum(a.i)], src };
      case 'value_ints': return ints((a.ints ?? []).map(toNum), src);
      default: break;
    }
  }
  return fail(ctx.where, 'only value, value_float(s) and value_int(s) Constants are supported');
}

function axesInput(node: INodeProto, inputs: (Const | undefined)[], ctx: FoldContext): number[] | undefined {
  if (ctx.opset < 13) return attrInts(node, 'axes');
  const c = inputs[1];
  return c ? constInts(c, `${ctx.where} axes`) : undefined;
}

export function squeezeDims<T>(dims: readonly T[], axes: number[] | undefined, isOne: (d: T) => boolean, where: string): T[] {
  if (!axes) return dims.filter((d) => !isOne(d));
  const norm = axes.map((a) => normAxis(a, dims.length));
  for (const a of norm) if (a < 0 || a >= dims.length || !isOne(dims[a]!)) bad(where, `cannot squeeze axis ${a} of rank-${dims.length} value`);
  return dims.filter((_, i) => !norm.includes(i));
}

export function unsqueezeDims<T>(dims: readonly T[], axes: number[], one: T, where: string): T[] {
  const rank = dims.length + axes.length;
  const norm = axes.map((a) => normAxis(a, rank));
  if (norm.some((a) => a < 0 || a >= rank) || new Set(norm).size !== norm.length) bad(where, `bad unsqueeze axes [${axes.join(', ')}]`);
  const out: T[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(norm.includes(i) ? one : dims[k++]!);
  return out;
}

function slice(node: INodeProto, inputs: (Const | undefined)[], ctx: FoldContext): Const {
  const data = inputs[0]!;
  const starts = inputs[1] ? constInts(inputs[1], `${ctx.where} starts`) : attrInts(node, 'starts') ?? [];
  const ends = inputs[2] ? constInts(inputs[2], `${ctx.where} ends`) : attrInts(node, 'ends') ?? [];
  const axes = inputs[3] ? constInts(inputs[3], `${ctx.where} axes`) : attrInts(node, 'axes') ?? starts.map((_, i) => i);
  const steps = inputs[4] ? constInts(inputs[4], `${ctx.where} steps`) : starts.map(() => 1);
  const ranges = data.dims.map((d) => Array.from({ length: d }, (_, i) => i));
  axes.forEach((ax, k) => {
    const a = normAxis(ax, data.dims.length);
    if (a < 0 || a >= data.dims.length) bad(ctx.where, `slice axis ${ax} out of range`);
    ranges[a] = sliceIndices(data.dims[a]!, starts[k] ?? 0, ends[k] ?? 0, steps[k] ?? 1);
  });
  return gatherRanges(data, ranges);
}

/** Cartesian-product gather: output keeps one list of source indices per axis. */
function gatherRanges(c: Const, ranges: number[][]): Const {
  const str = stridesOf(c.dims);
  let idx = [0];
  ranges.forEach((r, a) => {
    const next: number[] = [];
    for (const base of idx) for (const i of r) next.push(base + i * str[a]!);
    idx = next;
  });
  return take(c, ranges.map((r) => r.length), idx);
}

function cast(c: Const, to: number, ctx: FoldContext): Const {
  if (isFloatType(to)) {
    if (c.kind === 'float') return c;
    // A free dim cast to float stays symbolic; it only matters if it comes back as a shape.
    if (c.data.some((v) => typeof v !== 'number')) return { ...c, float: true };
    return { kind: 'float', dims: c.dims, data: Float32Array.from(c.data as number[]), src: c.src };
  }
  const conv = (v: number): number => (to === DT.BOOL ? (v !== 0 ? 1 : 0) : Math.trunc(v));
  if (c.kind === 'float') return { kind: 'int', dims: c.dims, data: Array.from(c.data, conv), src: c.src };
  return { kind: 'int', dims: c.dims, data: c.data.map((v) => (typeof v === 'number' ? conv(v) : v)), src: c.src };
}

/** Evaluates a node; `inputs[i]` is undefined for an absent optional input. Returns its outputs. */
export function foldNode(node: INodeProto, inputs: (Const | undefined)[], ctx: FoldContext): Const[] {
  const op = node.opType ?? '';
  const x = inputs[0];
  const need = (c: Const | undefined): Const => c ?? bad(ctx.where, 'missing input');
  switch (op) {
    case 'Constant': return [constantValue(node, ctx)];
    case 'Identity': case 'Dropout': return [need(x)];
    case 'Shape': case 'Size': {
      const name = (node.input ?? [])[0] ?? '';
      const dims: Dim[] | undefined = x ? x.dims : ctx.shapeOf(name);
      if (!dims) bad(ctx.where, `shape of "${name}" is unknown`);
      if (op === 'Size') {
        const all = dims.every((d) => typeof d === 'number');
        return [{ kind: 'int', dims: [], data: [all ? numelOf(dims as number[]) : ctx.symbols.fresh()], src: new Set() }];
      }
      const r = dims.length;
      const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
      const start = clamp(attrInt(node, 'start', 0));
      const end = findAttr(node, 'end') ? clamp(attrInt(node, 'end', r)) : r;
      return [ints(dims.slice(start, Math.max(start, end)))];
    }
    case 'Gather': {
      const data = need(x);
      const indices = need(inputs[1]);
      const axis = normAxis(attrInt(node, 'axis', 0), data.dims.length);
      const dimA = data.dims[axis];
      if (dimA === undefined) bad(ctx.where, `gather axis out of range`);
      const idx = constInts(indices, `${ctx.where} indices`).map((i) => (i < 0 ? i + dimA : i));
      if (idx.some((i) => i < 0 || i >= dimA)) bad(ctx.where, 'gather index out of range');
      const outer = numelOf(data.dims.slice(0, axis));
      const inner = numelOf(data.dims.slice(axis + 1));
      const src: number[] = [];
      for (let o = 0; o < outer; o++) for (const i of idx) for (let n = 0; n < inner; n++) src.push((o * dimA + i) * inner + n);
      const out = take(data, [...data.dims.slice(0, axis), ...indices.dims, ...data.dims.slice(axis + 1)], src);
      out.src = unionSrc(data, indices);
      return [out];
    }
    case 'Concat': {
      const parts = inputs.filter((c): c is Const => c !== undefined);
      const first = parts[0] ?? bad(ctx.where, 'no inputs');
      const axis = normAxis(attrInt(node, 'axis', 0), first.dims.length);
      const outer = numelOf(first.dims.slice(0, axis));
      const isFloat = parts.some((p) => p.kind === 'float' || p.float);
      const vals: Dim[] = [];
      for (let o = 0; o < outer; o++) {
        for (const p of parts) {
          const inner = numelOf(p.dims.slice(axis));
          for (let n = 0; n < inner; n++) vals.push(p.data[o * inner + n]!);
        }
      }
      const dims = [...first.dims];
      dims[axis] = parts.reduce((s, p) => s + (p.dims[axis] ?? 0), 0);
      const src = unionSrc(...parts);
      const symbolic = vals.some((v) => typeof v !== 'number');
      if (isFloat && !symbolic) return [{ kind: 'float', dims, data: Float32Array.from(vals as number[]), src }];
      return [isFloat ? { kind: 'int', dims, data: vals, src, float: true } : { kind: 'int', dims, data: vals, src }];
    }
    case 'Unsqueeze': {
      const c = need(x);
      const axes = axesInput(node, inputs, ctx) ?? bad(ctx.where, 'Unsqueeze needs axes');
      return [withDims(c, unsqueezeDims(c.dims, axes, 1, ctx.where))];
    }
    case 'Squeeze': {
      const c = need(x);
      return [withDims(c, squeezeDims(c.dims, axesInput(node, inputs, ctx), (d) => d === 1, ctx.where))];
    }
    case 'Slice': return [slice(node, inputs, ctx)];
    case 'Cast': return [cast(need(x), attrInt(node, 'to', DT.FLOAT), ctx)];
    case 'Reshape': {
      const c = need(x);
      const target = constInts(need(inputs[1]), `${ctx.where} shape`);
      const allowZero = attrInt(node, 'allowzero', 0) === 1;
      const dims = allowZero ? target : reshapeOut(c.dims, target, ctx.symbols);
      if (!dims || !dims.every((d): d is number => typeof d === 'number' && d >= 0) || numelOf(dims) !== numelOf(c.dims)) {
        bad(ctx.where, `cannot reshape [${c.dims.join(', ')}] to [${target.join(', ')}]`);
      }
      return [withDims(c, dims)];
    }
    case 'Flatten': {
      const c = need(x);
      const axis = normAxis(attrInt(node, 'axis', 1), c.dims.length);
      return [withDims(c, [numelOf(c.dims.slice(0, axis)), numelOf(c.dims.slice(axis))])];
    }
    case 'Transpose': {
      const c = need(x);
      const perm = attrInts(node, 'perm') ?? c.dims.map((_, i) => c.dims.length - 1 - i);
      return [transposeConst(c, perm)];
    }
    case 'Add': case 'Sub': case 'Mul': case 'Div': return [binary(op, need(x), need(inputs[1]), ctx)];
    case 'Neg': return [unaryFloat(need(x), (v) => -v, ctx)];
    case 'Sqrt': return [unaryFloat(need(x), Math.sqrt, ctx)];
    case 'Reciprocal': return [unaryFloat(need(x), (v) => 1 / v, ctx)];
    case 'Floor': return [unaryFloat(need(x), Math.floor, ctx)];
    case 'Exp': return [unaryFloat(need(x), Math.exp, ctx)];
    case 'Log': return [unaryFloat(need(x), Math.log, ctx)];
    case 'Abs': return [unaryFloat(need(x), Math.abs, ctx)];
    case 'Expand': {
      // numpy broadcasting of the input against the shape (either side may be 1).
      const c = need(x);
      const dims = broadcastDims(c.dims, constInts(need(inputs[1]), `${ctx.where} shape`), ctx.where);
      capped(numelOf(dims), ctx.where);
      return [take(c, dims, broadcastIndex(c.dims, dims))];
    }
    case 'Tile': {
      const c = need(x);
      const reps = constInts(need(inputs[1]), `${ctx.where} repeats`);
      if (reps.length !== c.dims.length || reps.some((r) => r < 0)) bad(ctx.where, `repeats [${reps.join(', ')}] do not fit rank ${c.dims.length}`);
      const dims = c.dims.map((d, a) => d * reps[a]!);
      const n = capped(numelOf(dims), ctx.where);
      const str = stridesOf(c.dims);
      const idx = new Array<number>(n);
      const pos = new Array<number>(dims.length).fill(0);
      for (let k = 0; k < n; k++) {
        let off = 0;
        for (let a = 0; a < dims.length; a++) off += (pos[a]! % c.dims[a]!) * str[a]!;
        idx[k] = off;
        for (let a = dims.length - 1; a >= 0; a--) {
          pos[a]! += 1;
          if (pos[a]! < dims[a]!) break;
          pos[a] = 0;
        }
      }
      return [take(c, dims, idx)];
    }
    case 'Ceil': return [unaryFloat(need(x), Math.ceil, ctx)];
    case 'Equal': {
      // What x.expand(n, -1, -1) exports: Where(Equal(shape, -1), 1, shape). A free dim is never
      // negative, so it differs from any negative number; it equals only itself.
      const a = need(x);
      const b = need(inputs[1]);
      const dims = broadcastDims(a.dims, b.dims, ctx.where);
      const ia = broadcastIndex(a.dims, dims);
      const ib = broadcastIndex(b.dims, dims);
      const data: Dim[] = ia.map((i, k) => {
        const u = a.data[i]!;
        const v = b.data[ib[k]!]!;
        if (typeof u === 'number' && typeof v === 'number') return u === v ? 1 : 0;
        if (u === v) return 1;
        if ((typeof u === 'number' && u < 0) || (typeof v === 'number' && v < 0)) return 0;
        return fail(ctx.where, 'Equal between a free dim and a value it may take');
      });
      return [{ kind: 'int', dims, data, src: unionSrc(a, b) }];
    }
    case 'Where': {
      const c = need(x);
      const a = need(inputs[1]);
      const b = need(inputs[2]);
      const dims = broadcastDims(broadcastDims(c.dims, a.dims, ctx.where), b.dims, ctx.where);
      const [ic, ia, ib] = [c, a, b].map((t) => broadcastIndex(t.dims, dims));
      const vals: Dim[] = ic!.map((i, k) => {
        const cond = c.data[i]!;
        if (typeof cond !== 'number') return fail(ctx.where, 'Where on a free dim');
        return cond !== 0 ? a.data[ia![k]!]! : b.data[ib![k]!]!;
      });
      const src = unionSrc(a, b, c);
      const isFloat = a.kind === 'float' || b.kind === 'float';
      if (isFloat && vals.every((v) => typeof v === 'number')) return [{ kind: 'float', dims, data: Float32Array.from(vals as number[]), src }];
      return [isFloat ? { kind: 'int', dims, data: vals, src, float: true } : { kind: 'int', dims, data: vals, src }];
    }
    case 'ConstantOfShape': {
      const dims = constInts(need(x), `${ctx.where} shape`);
      const a = findAttr(node, 'value');
      const value = a?.t ? constFromProto(a.t, `${ctx.where} value`) : undefined;
      const n = capped(numelOf(dims), ctx.where);
      if (!value || value.kind === 'float') {
        return [{ kind: 'float', dims, data: new Float32Array(n).fill(value ? value.data[0] ?? 0 : 0), src: new Set() }];
      }
      return [{ kind: 'int', dims, data: new Array<Dim>(n).fill(value.data[0] ?? 0), src: new Set() }];
    }
    case 'Range': {
      const scalar = (i: number): number => {
        const v = need(inputs[i]).data[0];
        return typeof v === 'number' ? v : fail(ctx.where, 'Range over a free dim');
      };
      const [s, l, d] = [scalar(0), scalar(1), scalar(2)];
      const n = capped(Math.max(Math.ceil((l - s) / d), 0), ctx.where);
      const vals = Array.from({ length: n }, (_, i) => s + i * d);
      if (inputs[0]!.kind === 'float') return [{ kind: 'float', dims: [n], data: Float32Array.from(vals), src: new Set() }];
      return [ints(vals)];
    }
    default:
      return fail(ctx.where, `cannot fold ${op}`);
  }
}
