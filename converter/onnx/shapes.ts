// Symbolic shapes: a dim is a number or a symbol (a string such as 'batch' or '?3').
// Enough algebra to follow PyTorch's `x.view(x.size(0), -1)` chains with a free batch dim.

export type Dim = number | string;

export class Symbols {
  private n = 0;
  fresh(): string {
    this.n += 1;
    return `?${this.n}`;
  }
}

export const isNum = (d: Dim): d is number => typeof d === 'number';

/** Product of dims as a number times a sorted list of symbols. */
export function symProduct(dims: readonly Dim[]): { num: number; syms: string[] } {
  let num = 1;
  const syms: string[] = [];
  for (const d of dims) {
    if (isNum(d)) num *= d;
    else syms.push(d);
  }
  syms.sort();
  return { num, syms };
}

/** Flatten-style product of dims: a number, the single symbol itself, or a fresh symbol. */
export function dimProduct(dims: readonly Dim[], symbols: Symbols): Dim {
  const p = symProduct(dims);
  if (p.syms.length === 0) return p.num;
  if (p.syms.length === 1 && p.num === 1) return p.syms[0]!;
  return symbols.fresh();
}

/** Numpy broadcasting; null when the shapes cannot broadcast. */
export function broadcastShapes(a: readonly Dim[], b: readonly Dim[]): Dim[] | null {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = i < n - a.length ? 1 : a[i - (n - a.length)]!;
    const y = i < n - b.length ? 1 : b[i - (n - b.length)]!;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else if (!isNum(x) && isNum(y)) out.push(y);
    else if (isNum(x) && !isNum(y)) out.push(x);
    else if (!isNum(x) && !isNum(y)) out.push(x);
    else return null;
  }
  return out;
}

/**
 * Output size of a conv or pool window along one axis. With ceil_mode, a last window that would
 * start inside the end padding is dropped (as onnxruntime and PyTorch do).
 */
export function windowOut(
  inDim: Dim, kernel: number, stride: number, dilation: number, padBegin: number, padEnd: number,
  ceilMode: boolean, symbols: Symbols,
): Dim {
  if (!isNum(inDim)) return symbols.fresh();
  const span = inDim + padBegin + padEnd - ((kernel - 1) * dilation + 1);
  if (!ceilMode) return Math.floor(span / stride) + 1;
  let out = Math.ceil(span / stride) + 1;
  if ((out - 1) * stride >= inDim + padBegin) out -= 1;
  return out;
}

/** Output shape of a reshape whose target uses ONNX conventions (0 copies, -1 infers). */
export function reshapeOut(inShape: readonly Dim[], target: readonly number[], symbols: Symbols): Dim[] | null {
  const out: Dim[] = [];
  let inferAt = -1;
  for (let i = 0; i < target.length; i++) {
    const t = target[i]!;
    if (t === 0) {
      if (i >= inShape.length) return null;
      out.push(inShape[i]!);
    } else if (t === -1) {
      if (inferAt >= 0) return null;
      inferAt = i;
      out.push(-1);
    } else if (t > 0) out.push(t);
    else return null;
  }
  const total = symProduct(inShape);
  const known = symProduct(out.filter((d, i) => i !== inferAt));
  const rest = [...total.syms];
  for (const s of known.syms) {
    const k = rest.indexOf(s);
    if (k < 0) return inferAt >= 0 ? fill(symbols.fresh()) : out;
    rest.splice(k, 1);
  }
  if (inferAt < 0) return out;
  if (rest.length === 0) {
    if (known.num === 0 || total.num % known.num !== 0) return null;
    return fill(total.num / known.num);
  }
  if (rest.length === 1 && total.num === known.num) return fill(rest[0]!);
  return fill(symbols.fresh());

  function fill(d: Dim): Dim[] {
    out[inferAt] = d;
    return out;
  }
}

/**
 * A runtime reshape target for a fully or partly symbolic output shape: a symbol at a position
 * where the input has the same symbol becomes 0 (copy), one other symbol becomes -1.
 * Null when that cannot express the shape.
 */
export function reshapeTarget(inShape: readonly Dim[], outShape: readonly Dim[]): number[] | null {
  let inferred = false;
  const target: number[] = [];
  for (let i = 0; i < outShape.length; i++) {
    const d = outShape[i]!;
    if (isNum(d)) {
      if (d === -1) {
        if (inferred) return null;
        inferred = true;
      }
      target.push(d);
    } else if (i < inShape.length && inShape[i] === d) {
      target.push(0);
    } else {
      if (inferred) return null;
      inferred = true;
      target.push(-1);
    }
  }
  return target;
}

export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
