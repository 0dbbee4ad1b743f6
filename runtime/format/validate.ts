// Checks shared by the reader (on hostile bytes) and the writer (on a Model before it is written),
// so that a file the writer produces is exactly a file the reader accepts.

import {
  DTYPE_IDS, DTYPE_SIZE, FACTOR_OPS, OP_IDS,
  type DType, type Graph, type OpName,
} from '../ir.js';
import { checkNodeAttrs } from './attrs.js';
import { FlmError } from './errors.js';
import { MAX_DEPTH, MAX_DIM, MAX_RANK } from './layout.js';

export const OP_BY_ID: ReadonlyMap<number, OpName> = new Map(
  (Object.entries(OP_IDS) as [OpName, number][]).map(([name, id]) => [id, name]),
);
export const DTYPE_BY_ID: ReadonlyMap<number, DType> = new Map(
  (Object.entries(DTYPE_IDS) as [DType, number][]).map(([name, id]) => [id, name]),
);

export function isOpName(s: string): s is OpName {
  return Object.prototype.hasOwnProperty.call(OP_IDS, s);
}

export function isDType(s: string): s is DType {
  return Object.prototype.hasOwnProperty.call(DTYPE_IDS, s);
}

/** Integer as msgpack may deliver it (number, or bigint for uint64/int64), else undefined. */
export function toSafeInt(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : undefined;
  if (typeof v === 'bigint') {
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : undefined;
  }
  return undefined;
}

/** A stored tensor's shape: rank <= MAX_RANK, each dim an integer in [0, MAX_DIM]. */
export function checkShape(shape: unknown, where: string): number[] {
  if (!Array.isArray(shape)) throw new FlmError('FLM_HEADER_SCHEMA', `${where}: shape must be an array`);
  if (shape.length > MAX_RANK) {
    throw new FlmError('FLM_BAD_SHAPE', `${where}: rank ${shape.length} exceeds the maximum ${MAX_RANK}`);
  }
  return shape.map((d: unknown, i) => {
    const n = toSafeInt(d);
    if (n === undefined || n < 0 || n > MAX_DIM) {
      throw new FlmError('FLM_BAD_SHAPE', `${where}: dim ${i} is ${String(d)}, allowed integers 0..${MAX_DIM}`);
    }
    return n;
  });
}

/** A graph input's shape: as a stored shape, but -1 marks a free (batch) dim. */
export function checkInputShape(shape: unknown, where: string): number[] {
  if (!Array.isArray(shape)) throw new FlmError('FLM_HEADER_SCHEMA', `${where}: shape must be an array`);
  if (shape.length > MAX_RANK) {
    throw new FlmError('FLM_BAD_SHAPE', `${where}: rank ${shape.length} exceeds the maximum ${MAX_RANK}`);
  }
  return shape.map((d: unknown, i) => {
    const n = toSafeInt(d);
    if (n === undefined || n < -1 || n > MAX_DIM) {
      throw new FlmError('FLM_BAD_SHAPE', `${where}: dim ${i} is ${String(d)}, allowed -1 or 0..${MAX_DIM}`);
    }
    return n;
  });
}

/** Element count with every step checked; a zero dim gives 0 whatever the others are. */
export function checkedNumel(shape: readonly number[], where: string): number {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    if (n > Math.floor(Number.MAX_SAFE_INTEGER / d)) {
      throw new FlmError('FLM_SIZE_OVERFLOW', `${where}: element count of [${shape.join(', ')}] overflows`);
    }
    n *= d;
  }
  return n;
}

export function checkedByteLength(shape: readonly number[], dtype: DType, where: string): number {
  const n = checkedNumel(shape, where);
  const size = DTYPE_SIZE[dtype];
  if (n > Math.floor(Number.MAX_SAFE_INTEGER / size)) {
    throw new FlmError('FLM_SIZE_OVERFLOW', `${where}: byte size of ${n} ${dtype} elements overflows`);
  }
  return n * size;
}

/**
 * int8 needs a scale; f32/f16 must have none. Scales are finite and positive once rounded to f32;
 * without axis there is exactly one, with axis (0 <= axis < rank) there are shape[axis].
 */
export function checkQuant(
  where: string, dtype: DType, shape: readonly number[],
  quant: { scale: ArrayLike<number>; axis?: number | undefined } | undefined,
): void {
  if (dtype !== 'i8') {
    if (quant !== undefined) throw new FlmError('FLM_BAD_QUANT', `${where}: ${dtype} tensor must not carry a quant scale`);
    return;
  }
  if (quant === undefined) throw new FlmError('FLM_BAD_QUANT', `${where}: i8 tensor needs a quant scale`);
  const { scale, axis } = quant;
  let want = 1;
  if (axis !== undefined) {
    if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length) {
      throw new FlmError('FLM_BAD_QUANT', `${where}: quant axis ${axis} is outside 0..${shape.length - 1}`);
    }
    want = shape[axis]!;
  }
  if (scale.length !== want) {
    throw new FlmError('FLM_BAD_QUANT',
      `${where}: ${scale.length} scales, expected ${want}${axis === undefined ? ' (per-tensor)' : ` (size of axis ${axis})`}`);
  }
  for (let i = 0; i < scale.length; i++) {
    const s = Math.fround(scale[i]!);
    if (!(Number.isFinite(s) && s > 0)) {
      throw new FlmError('FLM_BAD_QUANT', `${where}: scale[${i}] is ${scale[i]}, must be finite and > 0 as an f32`);
    }
  }
}

const METADATA_KEY = /^[a-z][a-z0-9_]*(\.[a-z0-9][a-z0-9_]*)*$/;

function checkPlainValue(v: unknown, where: string, depth: number): void {
  if (depth > MAX_DEPTH - 2) throw new FlmError('FLM_BAD_METADATA', `${where}: nested too deep`);
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return;
  if (typeof v === 'bigint') {
    if (v >= -(2n ** 63n) && v < 2n ** 64n) return;
    throw new FlmError('FLM_BAD_METADATA', `${where}: bigint ${v} does not fit 64 bits`);
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkPlainValue(x, `${where}[${i}]`, depth + 1));
    return;
  }
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v);
    if (proto === Object.prototype || proto === null) {
      for (const [k, x] of Object.entries(v)) {
        if (k === '__proto__') throw new FlmError('FLM_BAD_METADATA', `${where}: key __proto__ is not allowed`);
        checkPlainValue(x, `${where}.${k}`, depth + 1);
      }
      return;
    }
  }
  throw new FlmError('FLM_BAD_METADATA',
    `${where}: ${typeof v === 'object' ? Object.prototype.toString.call(v) : typeof v} is not plain msgpack data ` +
    '(allowed: null, boolean, number, bigint, string, array, plain object)');
}

/** Keys dotted lower_snake_case (e.g. 'convert.method'); values plain data. */
export function checkMetadata(md: unknown): Record<string, unknown> {
  if (md === null || typeof md !== 'object' || Array.isArray(md)) {
    throw new FlmError('FLM_HEADER_SCHEMA', 'metadata must be a map');
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(md)) {
    if (!METADATA_KEY.test(k)) {
      throw new FlmError('FLM_BAD_METADATA', `metadata key ${JSON.stringify(k)} is not dotted lower_snake_case`);
    }
    checkPlainValue(v, `metadata ${k}`, 1);
    out[k] = v;
  }
  return out;
}

function checkKey(k: string, where: string): void {
  if (k.length === 0 || k === '__proto__') {
    throw new FlmError('FLM_HEADER_SCHEMA', `${where}: key ${JSON.stringify(k)} is not allowed`);
  }
}

function checkAttrValue(v: unknown, where: string): void {
  const okNum = (x: unknown) => typeof x === 'number' && !Number.isNaN(x);
  if (okNum(v) || typeof v === 'string') return;
  if (Array.isArray(v) && v.every(okNum)) return;
  throw new FlmError('FLM_HEADER_SCHEMA', `${where}: attribute must be a number, a list of numbers, or a string`);
}

/**
 * Every value is defined once (graph input or node output, never also a stored tensor name);
 * node inputs name a graph input, an earlier output, or a stored tensor; weight roles name stored
 * tensors; factorised ops carry no `weight`; graph outputs name defined values.
 */
export function checkGraph(graph: Graph, tensorNames: ReadonlySet<string>): void {
  const defined = new Set<string>();
  const define = (name: string, where: string) => {
    if (typeof name !== 'string' || name.length === 0) {
      throw new FlmError('FLM_BAD_GRAPH', `${where}: value name must be a non-empty string`);
    }
    if (defined.has(name)) throw new FlmError('FLM_BAD_GRAPH', `${where}: value ${JSON.stringify(name)} is defined twice`);
    if (tensorNames.has(name)) {
      throw new FlmError('FLM_BAD_GRAPH', `${where}: value ${JSON.stringify(name)} is also a stored tensor name`);
    }
    defined.add(name);
  };
  graph.inputs.forEach((inp, i) => define(inp.name, `graph input ${i}`));
  const nodeNames = new Set<string>();
  graph.nodes.forEach((node, i) => {
    const where = `node ${i} (${JSON.stringify(node.name)})`;
    if (!isOpName(node.op)) throw new FlmError('FLM_UNKNOWN_OP', `${where}: op ${JSON.stringify(node.op)} is not a known kind`);
    if (typeof node.name !== 'string' || node.name.length === 0 || nodeNames.has(node.name)) {
      throw new FlmError('FLM_BAD_GRAPH', `${where}: node name must be non-empty and unique`);
    }
    nodeNames.add(node.name);
    for (const name of node.inputs) {
      if (!defined.has(name) && !tensorNames.has(name)) {
        throw new FlmError('FLM_BAD_GRAPH',
          `${where}: input ${JSON.stringify(name)} is not a graph input, an earlier output, or a stored tensor`);
      }
    }
    for (const [k, v] of Object.entries(node.attrs)) {
      checkKey(k, `${where} attrs`);
      checkAttrValue(v, `${where} attr ${k}`);
    }
    checkNodeAttrs(node, where);
    if (FACTOR_OPS.has(node.op) && Object.prototype.hasOwnProperty.call(node.weights, 'weight')) {
      throw new FlmError('FLM_DENSE_WEIGHT_IN_FACTOR_LAYER',
        `${where}: factorised op ${node.op} carries a dense 'weight'; only factors may be stored`);
    }
    for (const [role, tensor] of Object.entries(node.weights)) {
      checkKey(role, `${where} weights`);
      if (!tensorNames.has(tensor)) {
        throw new FlmError('FLM_MISSING_TENSOR', `${where}: weight ${role} names tensor ${JSON.stringify(tensor)}, which is not stored`);
      }
    }
    node.outputs.forEach((name) => define(name, where));
  });
  graph.outputs.forEach((name, i) => {
    if (!defined.has(name)) {
      throw new FlmError('FLM_BAD_GRAPH', `graph output ${i}: ${JSON.stringify(name)} is not a defined value`);
    }
  });
}
