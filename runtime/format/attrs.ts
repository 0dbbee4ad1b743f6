// Attributes per op, checked by the reader's graph check (and the writer's): a file whose node
// attributes no kernel could run is refused here with a typed code, so the session, the SIMD
// kernels and the firmware only ever see valid attributes. One entry per op kind: a new op adds
// its line to OP_ATTRS (and test/runtime/format/attrs.test.ts walks every entry).
//
//   FLM_ATTR_MISSING  a required attribute is absent
//   FLM_ATTR_TYPE     a number where a list is due, a list where a number is due, a string, a
//                     non-integer where an integer is due
//   FLM_ATTR_LENGTH   a list of the wrong length (strides of 3 values, 9 tt modes, ...)
//   FLM_ATTR_RANGE    a value outside its range (a stride or dilation of 0, a negative pad, a
//                     kernel over ATTR_INT_MAX, a perm that is not a permutation, two -1 in a shape)
import type { AttrValue, GraphNode, OpName } from '../ir.js';
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

const strides = { type: 'ints', len: 2, min: 1, max: ATTR_INT_MAX } as const;
const pads = { type: 'ints', len: 4, min: 0, max: ATTR_INT_MAX } as const;
const dilations = { type: 'ints', len: 2, min: 1, max: ATTR_INT_MAX } as const;
const kernel = { type: 'ints', len: 2, min: 1, max: ATTR_INT_MAX, required: true } as const;
const flag = { type: 'int', min: 0, max: 1 } as const;
const conv = { strides, pads, dilations, group: { type: 'int', min: 1, max: ATTR_INT_MAX } } as const;
const modes = { type: 'ints', len: [1, MAX_MODES], min: 1, max: MAX_DIM, required: true } as const;
const axis = { type: 'int', min: -MAX_RANK, max: MAX_RANK } as const;
/** Slice bounds: the importer clamps ONNX's int64 bounds to 32 bits. */
const bounds = { type: 'ints', len: [1, MAX_RANK], min: -(2 ** 31), max: 2 ** 31 - 1, required: true } as const;
const finite = { type: 'number', finite: true } as const;

/**
 * What each op reads. Attributes not listed are ignored by every kernel (a converter may keep
 * extra ones); listed ones must match. Cross-attribute rules are in CROSS below.
 */
export const OP_ATTRS: Readonly<Record<OpName, Readonly<Record<string, AttrSpec>>>> = {
  dense: {},
  conv2d: conv,
  svd_dense: {},
  svd_conv2d: conv,
  tucker2_conv2d: conv,
  cp_conv2d: conv,
  tt_dense: { out_modes: modes, in_modes: modes },
  tr_dense: { out_modes: modes, in_modes: modes },
  ttl_dense: { out_modes: modes, in_modes: modes },
  matmul: {},
  relu: {},
  leaky_relu: { alpha: { type: 'number', finite: true } },
  sigmoid: {},
  tanh: {},
  clip: { min: { type: 'number' }, max: { type: 'number' } },
  max_pool: { kernel, strides, pads, dilations, ceil_mode: flag },
  avg_pool: { kernel, strides, pads, ceil_mode: flag, count_include_pad: flag },
  global_avg_pool: {},
  flatten: { axis },
  reshape: { shape: { type: 'ints', len: [0, MAX_RANK], min: -1, max: MAX_DIM, required: true } },
  transpose: { perm: { type: 'ints', len: [0, MAX_RANK], min: 0, max: MAX_RANK - 1, required: true } },
  softmax: { axis },
  add: {},
  mul: {},
  identity: {},
  pad: {
    pads: { type: 'ints', len: [2, 2 * MAX_RANK], min: -MAX_DIM, max: ATTR_INT_MAX, required: true },
    mode: { type: 'string', oneOf: ['constant', 'reflect', 'edge'] },
    value: finite,
  },
  concat: { axis },
  slice: {
    axes: { type: 'ints', len: [1, MAX_RANK], min: 0, max: MAX_RANK - 1, required: true },
    starts: bounds,
    ends: bounds,
    steps: { type: 'ints', len: [1, MAX_RANK], min: -(2 ** 31), max: 2 ** 31 - 1 },
  },
  resize: {
    scales: { type: 'numbers', len: [1, MAX_RANK], above: 0, required: true },
    mode: { type: 'string', oneOf: ['nearest', 'linear'] },
    coord: { type: 'string', oneOf: ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn'] },
    nearest: { type: 'string', oneOf: ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'] },
  },
  conv_transpose2d: { ...conv, output_padding: { type: 'ints', len: 2, min: 0, max: ATTR_INT_MAX } },
  prelu: {},
  hard_sigmoid: { alpha: finite, beta: finite },
  hard_swish: {},
  log_softmax: { axis },
};

type Fail = (code: 'FLM_ATTR_LENGTH' | 'FLM_ATTR_RANGE', msg: string) => never;

/** Rules between attributes of one node, per op. */
const CROSS: Partial<Record<OpName, (attrs: Record<string, AttrValue>, fail: Fail) => void>> = {
  tt_dense: (a, fail) => {
    if ((a['out_modes'] as number[]).length !== (a['in_modes'] as number[]).length) fail('FLM_ATTR_LENGTH', 'out_modes and in_modes must have as many modes');
  },
  tr_dense: (a, fail) => {
    if ((a['out_modes'] as number[]).length !== (a['in_modes'] as number[]).length) fail('FLM_ATTR_LENGTH', 'out_modes and in_modes must have as many modes');
  },
  reshape: (a, fail) => {
    if ((a['shape'] as number[]).filter((d) => d === -1).length > 1) fail('FLM_ATTR_RANGE', 'shape has more than one -1');
  },
  transpose: (a, fail) => {
    const perm = a['perm'] as number[];
    const seen = new Set(perm);
    if (seen.size !== perm.length || perm.some((p) => p >= perm.length)) fail('FLM_ATTR_RANGE', `perm [${perm}] is not a permutation of 0..${perm.length - 1}`);
  },
  pad: (a, fail) => {
    if ((a['pads'] as number[]).length % 2 !== 0) fail('FLM_ATTR_LENGTH', 'pads must hold a begin and an end per axis');
  },
  slice: (a, fail) => {
    const n = (a['axes'] as number[]).length;
    const steps = a['steps'] as number[] | undefined;
    if ((a['starts'] as number[]).length !== n || (a['ends'] as number[]).length !== n || (steps && steps.length !== n)) {
      fail('FLM_ATTR_LENGTH', 'axes, starts, ends and steps must have as many values');
    }
    if (new Set(a['axes'] as number[]).size !== n) fail('FLM_ATTR_RANGE', 'an axis is sliced twice');
    if (steps?.some((x) => x === 0)) fail('FLM_ATTR_RANGE', 'a step is 0');
  },
  clip: (a, fail) => {
    const lo = a['min'];
    const hi = a['max'];
    if (typeof lo === 'number' && typeof hi === 'number' && lo > hi) fail('FLM_ATTR_RANGE', `min ${lo} is above max ${hi}`);
  },
};
// Products of modes must stay addressable (a layer of more than MAX_DIM inputs or outputs cannot be stored).
for (const op of ['tt_dense', 'tr_dense', 'ttl_dense'] as const) {
  const before = CROSS[op];
  CROSS[op] = (a, fail) => {
    before?.(a, fail);
    for (const key of ['out_modes', 'in_modes']) {
      let p = 1;
      for (const m of a[key] as number[]) p *= m;
      if (p > MAX_DIM) fail('FLM_ATTR_RANGE', `the product of ${key} exceeds ${MAX_DIM}`);
    }
  };
}

function checkOne(where: string, key: string, spec: AttrSpec, v: AttrValue | undefined): void {
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

/** Refuses a node whose attributes its op could not run with (codes above). */
export function checkNodeAttrs(node: GraphNode, where: string): void {
  const specs = OP_ATTRS[node.op];
  for (const [key, spec] of Object.entries(specs)) checkOne(where, key, spec, node.attrs[key]);
  CROSS[node.op]?.(node.attrs, (code, msg) => {
    throw new FlmError(code, `${where}: ${msg}`);
  });
}
