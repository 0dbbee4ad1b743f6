// The vocabulary of attribute specs: what a layer kind declares it reads (`attrs` and
// `checkAttrs` in runtime/layers/<kind>.ts), and the check of one value against its spec. The
// reader's graph check (runtime/format/attrs.ts) applies every kind's specs.
//
//   FLM_ATTR_MISSING  a required attribute is absent
//   FLM_ATTR_TYPE     a number where a list is due, a list where a number is due, a string, a
//                     non-integer where an integer is due
//   FLM_ATTR_LENGTH   a list of the wrong length (strides of 3 values, 9 tt modes, ...)
//   FLM_ATTR_RANGE    a value outside its range (a stride or dilation of 0, a negative pad, a
//                     kernel over ATTR_INT_MAX, a perm that is not a permutation, two -1 in a shape)
import type { AttrValue } from '../ir.js';
import { FlmError } from './errors.js';
import { MAX_DIM, MAX_RANK } from './layout.js';

/** Largest kernel, stride, pad or dilation: as the firmware (FL_ATTR_MAX in core/fl.h). */
export const ATTR_INT_MAX = 65535;
/** Most modes per side of a tt/tr/ttl layer: as the firmware (FL_MAX_MODES). */
export const MAX_MODES = 8;

export type AttrSpec =
  /** An integer list: `len` values (or a length in [len[0], len[1]]), each in [min, max]. */
  | { type: 'ints'; len: number | readonly [number, number]; min: number; max: number; required?: boolean }
  /** One integer in [min, max]. */
  | { type: 'int'; min: number; max: number; required?: boolean }
  /** One number, not NaN (infinities allowed: clip bounds); `finite`: finite once rounded to f32. */
  | { type: 'number'; finite?: boolean; required?: boolean }
  /** A list of numbers: `len` values, each finite as an f32 and above `above` when given. */
  | { type: 'numbers'; len: number | readonly [number, number]; above?: number; required?: boolean }
  /** One string out of `oneOf`. */
  | { type: 'string'; oneOf: readonly string[]; required?: boolean };

export const strides = { type: 'ints', len: 2, min: 1, max: ATTR_INT_MAX } as const;
export const pads = { type: 'ints', len: 4, min: 0, max: ATTR_INT_MAX } as const;
export const dilations = { type: 'ints', len: 2, min: 1, max: ATTR_INT_MAX } as const;
export const kernel = { type: 'ints', len: 2, min: 1, max: ATTR_INT_MAX, required: true } as const;
export const flag = { type: 'int', min: 0, max: 1 } as const;
export const conv = { strides, pads, dilations, group: { type: 'int', min: 1, max: ATTR_INT_MAX } } as const;
export const modes = { type: 'ints', len: [1, MAX_MODES], min: 1, max: MAX_DIM, required: true } as const;
export const axis = { type: 'int', min: -MAX_RANK, max: MAX_RANK } as const;
/** Slice bounds: the importer clamps ONNX's int64 bounds to 32 bits. */
export const bounds = { type: 'ints', len: [1, MAX_RANK], min: -(2 ** 31), max: 2 ** 31 - 1, required: true } as const;
export const finite = { type: 'number', finite: true } as const;

export type AttrFail = (code: 'FLM_ATTR_LENGTH' | 'FLM_ATTR_RANGE', msg: string) => never;

/** A rule between attributes of one node (after each attribute passed its own spec). */
export type AttrCheck = (attrs: Record<string, AttrValue>, fail: AttrFail) => void;

/** tt / tr / ttl: products of modes must stay addressable (a layer of more than MAX_DIM inputs or outputs cannot be stored). */
export function checkModeProducts(a: Record<string, AttrValue>, fail: AttrFail): void {
  for (const key of ['out_modes', 'in_modes']) {
    let p = 1;
    for (const m of a[key] as number[]) p *= m;
    if (p > MAX_DIM) fail('FLM_ATTR_RANGE', `the product of ${key} exceeds ${MAX_DIM}`);
  }
}

export function checkOne(where: string, key: string, spec: AttrSpec, v: AttrValue | undefined): void {
  const w = `${where} attribute ${key}`;
  if (v === undefined) {
    if (spec.required) throw new FlmError('FLM_ATTR_MISSING', `${w} is missing`);
    return;
  }
  if (spec.type === 'number') {
    if (typeof v !== 'number' || Number.isNaN(v)) throw new FlmError('FLM_ATTR_TYPE', `${w} must be a number`);
    if (spec.finite && !Number.isFinite(Math.fround(v))) throw new FlmError('FLM_ATTR_RANGE', `${w} is ${v}, must be finite as an f32`);
    return;
  }
  if (spec.type === 'string') {
    if (typeof v !== 'string') throw new FlmError('FLM_ATTR_TYPE', `${w} must be a string`);
    if (!spec.oneOf.includes(v)) throw new FlmError('FLM_ATTR_RANGE', `${w} is '${v}', allowed ${spec.oneOf.join(', ')}`);
    return;
  }
  if (spec.type === 'numbers') {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw new FlmError('FLM_ATTR_TYPE', `${w} must be a list of numbers`);
    const [lo, hi] = typeof spec.len === 'number' ? [spec.len, spec.len] : spec.len;
    if (v.length < lo || v.length > hi) throw new FlmError('FLM_ATTR_LENGTH', `${w} has ${v.length} values, expected ${lo === hi ? lo : `${lo}..${hi}`}`);
    v.forEach((x, i) => {
      if (!Number.isFinite(Math.fround(x)) || (spec.above !== undefined && !(x > spec.above))) {
        throw new FlmError('FLM_ATTR_RANGE', `${w}[${i}] is ${x}, must be finite${spec.above !== undefined ? ` and above ${spec.above}` : ''}`);
      }
    });
    return;
  }
  if (spec.type === 'int') {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new FlmError('FLM_ATTR_TYPE', `${w} must be an integer`);
    if (v < spec.min || v > spec.max) throw new FlmError('FLM_ATTR_RANGE', `${w} is ${v}, allowed ${spec.min}..${spec.max}`);
    return;
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) {
    throw new FlmError('FLM_ATTR_TYPE', `${w} must be a list of integers`);
  }
  const [lo, hi] = typeof spec.len === 'number' ? [spec.len, spec.len] : spec.len;
  if (v.length < lo || v.length > hi) {
    throw new FlmError('FLM_ATTR_LENGTH', `${w} has ${v.length} values, expected ${lo === hi ? lo : `${lo}..${hi}`}`);
  }
  v.forEach((x, i) => {
    if (x < spec.min || x > spec.max) throw new FlmError('FLM_ATTR_RANGE', `${w}[${i}] is ${x}, allowed ${spec.min}..${spec.max}`);
  });
}
