// Ops that move data without arithmetic on it: pad, concat, slice. Each output index maps to one
// input index (or a constant), worked out per axis at bind.
import { attrInts, attrNum, type GraphNode, numel } from '../ir.js';
import { stridesOf } from '../kernels/reference.js';
import { ATTR_INT_MAX, axis, bounds, finite } from '../format/attrSpec.js';
import { MAX_DIM, MAX_RANK } from '../format/layout.js';
import { checkOutput, firstInput, LayerError, type LayerKind } from './kind.js';

/** Source index along one axis for output position `o` of a pad; -1 for the constant. */
export function padSource(o: number, begin: number, len: number, mode: string): number {
  let i = o - begin;
  if (i >= 0 && i < len) return i;
  if (mode === 'edge') return i < 0 ? 0 : len - 1;
  if (mode === 'reflect') {
    if (len === 1) return 0;
    const period = 2 * (len - 1);
    i = ((i % period) + period) % period;
    return i < len ? i : period - i;
  }
  return -1;
}

export function padShape(node: GraphNode, x: readonly number[]): number[] {
  const pads = attrInts(node, 'pads');
  const r = x.length;
  if (pads.length !== 2 * r) throw new LayerError(node, `pads [${pads}] do not fit rank ${r}`);
  const out = x.map((d, a) => d + pads[a]! + pads[a + r]!);
  if (out.some((d) => d < 0)) throw new LayerError(node, `pads [${pads}] crop [${x}] below zero`);
  return out;
}

/** Gathers `y` from `x` through one index list per axis (-1: the constant `fill`). */
function gatherAxes(x: Float32Array, xShape: readonly number[], maps: Int32Array[], y: Float32Array, fill: number): void {
  const r = xShape.length;
  const str = stridesOf(xShape);
  const dims = maps.map((m) => m.length);
  const idx = new Int32Array(r);
  for (let k = 0; k < y.length; k++) {
    let off = 0;
    let outside = false;
    for (let a = 0; a < r; a++) {
      const s = maps[a]![idx[a]!]!;
      if (s < 0) outside = true;
      off += s * str[a]!;
    }
    y[k] = outside ? fill : x[off]!;
    for (let a = r - 1; a >= 0; a--) {
      idx[a]!++;
      if (idx[a]! < dims[a]!) break;
      idx[a] = 0;
    }
  }
}

export const pad: LayerKind = {
  ops: ['pad'],
  mcu: {},
  attrs: {
    pads: { type: 'ints', len: [2, 2 * MAX_RANK], min: -MAX_DIM, max: ATTR_INT_MAX, required: true },
    mode: { type: 'string', oneOf: ['constant', 'reflect', 'edge'] },
    value: finite,
  },
  checkAttrs(a, fail) {
    if ((a['pads'] as number[]).length % 2 !== 0) fail('FLM_ATTR_LENGTH', 'pads must hold a begin and an end per axis');
  },
  outputShape: (node, ins) => padShape(node, ins[0]!),
  prepare(node) {
    const mode = typeof node.attrs.mode === 'string' ? node.attrs.mode : 'constant';
    if (!['constant', 'reflect', 'edge'].includes(mode)) throw new LayerError(node, `mode ${mode} is not constant, reflect or edge`);
    const value = attrNum(node, 'value', 0);
    return {
      bind(inputs, output) {
        const x = firstInput(node, inputs);
        const shape = padShape(node, x.shape);
        checkOutput(node, output, shape);
        const pads = attrInts(node, 'pads');
        if (mode === 'reflect' && x.shape.some((d, a) => pads[a]! >= d || pads[a + x.shape.length]! >= d)) {
          throw new LayerError(node, `reflect pads [${pads}] must be smaller than the dims [${x.shape}]`);
        }
        const maps = shape.map((d, a) => Int32Array.from({ length: d }, (_, o) => padSource(o, pads[a]!, x.shape[a]!, mode)));
        const xd = x.data;
        const xs = x.shape;
        const y = output.data;
        return () => gatherAxes(xd, xs, maps, y, value);
      },
    };
  },
};

/** Indices ONNX Slice takes along an axis of length `dim` (start/end clamped, negatives from the end). */
export function sliceIndices(dim: number, start: number, end: number, step: number): number[] {
  const idx: number[] = [];
  if (step === 0) return idx;
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
    for (let i = s; i < e; i += step) idx.push(i);
  } else {
    s = Math.min(Math.max(s, 0), dim - 1);
    e = Math.min(Math.max(e, -1), dim - 1);
    for (let i = s; i > e; i += step) idx.push(i);
  }
  return idx;
}

/** One index list per axis of `x`: the sliced axes per ONNX Slice, every other axis whole. */
function sliceMaps(node: GraphNode, x: readonly number[]): number[][] {
  const axes = attrInts(node, 'axes');
  const starts = attrInts(node, 'starts');
  const ends = attrInts(node, 'ends');
  const steps = attrInts(node, 'steps', starts.map(() => 1));
  if (starts.length !== axes.length || ends.length !== axes.length || steps.length !== axes.length) {
    throw new LayerError(node, 'axes, starts, ends and steps must have one entry each');
  }
  const maps = x.map((d) => Array.from({ length: d }, (_, i) => i));
  axes.forEach((a, k) => {
    if (!Number.isInteger(a) || a < 0 || a >= x.length) throw new LayerError(node, `axis ${a} out of range for [${x}]`);
    if (steps[k] === 0) throw new LayerError(node, 'a step is 0');
    maps[a] = sliceIndices(x[a]!, starts[k]!, ends[k]!, steps[k]!);
  });
  return maps;
}

export function sliceShape(node: GraphNode, x: readonly number[]): number[] {
  return sliceMaps(node, x).map((m) => m.length);
}

export const slice: LayerKind = {
  ops: ['slice'],
  mcu: {},
  attrs: {
    axes: { type: 'ints', len: [1, MAX_RANK], min: 0, max: MAX_RANK - 1, required: true },
    starts: bounds,
    ends: bounds,
    steps: { type: 'ints', len: [1, MAX_RANK], min: -(2 ** 31), max: 2 ** 31 - 1 },
  },
  checkAttrs(a, fail) {
    const n = (a['axes'] as number[]).length;
    const steps = a['steps'] as number[] | undefined;
    if ((a['starts'] as number[]).length !== n || (a['ends'] as number[]).length !== n || (steps && steps.length !== n)) {
      fail('FLM_ATTR_LENGTH', 'axes, starts, ends and steps must have as many values');
    }
    if (new Set(a['axes'] as number[]).size !== n) fail('FLM_ATTR_RANGE', 'an axis is sliced twice');
    if (steps?.some((x) => x === 0)) fail('FLM_ATTR_RANGE', 'a step is 0');
  },
  outputShape: (node, ins) => sliceShape(node, ins[0]!),
  prepare(node) {
    return {
      bind(inputs, output) {
        const x = firstInput(node, inputs);
        const maps = sliceMaps(node, x.shape).map((m) => Int32Array.from(m));
        checkOutput(node, output, maps.map((m) => m.length));
        const xd = x.data;
        const xs = x.shape;
        const y = output.data;
        return () => gatherAxes(xd, xs, maps, y, 0);
      },
    };
  },
};

export function concatShape(node: GraphNode, ins: readonly (readonly number[])[]): number[] {
  const first = ins[0];
  if (!first) throw new LayerError(node, 'no inputs');
  const raw = attrNum(node, 'axis', 1);
  const axis = raw < 0 ? raw + first.length : raw;
  if (axis < 0 || axis >= first.length) throw new LayerError(node, `axis ${raw} out of range for [${first}]`);
  const out = [...first];
  out[axis] = 0;
  for (const s of ins) {
    if (s.length !== first.length || s.some((d, a) => a !== axis && d !== first[a])) throw new LayerError(node, `cannot concatenate [${s}] with [${first}] on axis ${axis}`);
    out[axis]! += s[axis]!;
  }
  return out;
}

export const concat: LayerKind = {
  ops: ['concat'],
  mcu: {},
  attrs: { axis },
  outputShape: (node, ins) => concatShape(node, ins),
  prepare(node) {
    return {
      bind(inputs, output) {
        const shapes = inputs.map((t) => t.shape);
        const shape = concatShape(node, shapes);
        checkOutput(node, output, shape);
        const raw = attrNum(node, 'axis', 1);
        const axis = raw < 0 ? raw + shape.length : raw;
        const outer = numel(shape.slice(0, axis));
        const parts = inputs.map((t) => ({ data: t.data, block: numel(t.shape.slice(axis)) }));
        const row = numel(shape.slice(axis));
        const y = output.data;
        return () => {
          for (let o = 0; o < outer; o++) {
            let at = o * row;
            for (const p of parts) {
              y.set(p.data.subarray(o * p.block, (o + 1) * p.block), at);
              at += p.block;
            }
          }
        };
      },
    };
  },
};
