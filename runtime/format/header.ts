// The msgpack header's schema (docs/FORMAT.md, "The header"): turns the decoded, untrusted value
// into typed entries, with FLM_HEADER_SCHEMA for a missing, unknown or mistyped key.

import type { DType, Graph, GraphInput, GraphNode, AttrValue } from '../ir.js';
import type { MemoryPlan } from './planTypes.js';
import { FlmError } from './errors.js';
import { parseMemoryPlan } from './memoryPlan.js';
import { checkInputShape, checkShape, DTYPE_BY_ID, OP_BY_ID, toSafeInt } from './validate.js';

export interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  offset: number;
  length: number;
  quant?: { scale: Float32Array; axis?: number };
}

export interface Header {
  graph: Graph;
  tensors: TensorEntry[];
  metadata: unknown;
  memoryPlan?: MemoryPlan;
}

type Obj = Record<string, unknown>;

function schema(where: string, what: string): never {
  throw new FlmError('FLM_HEADER_SCHEMA', `${where}: ${what}`);
}

function asMap(v: unknown, where: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) schema(where, 'must be a map');
  return v as Obj;
}

/** Required keys must be present; with `strict`, no other keys may be. */
function keys(o: Obj, where: string, required: string[], optional: string[], strict = true): void {
  for (const k of required) if (!Object.hasOwn(o, k)) schema(where, `missing key ${JSON.stringify(k)}`);
  if (!strict) return;
  for (const k of Object.keys(o)) {
    if (!required.includes(k) && !optional.includes(k)) schema(where, `unknown key ${JSON.stringify(k)}`);
  }
}

function asArray(v: unknown, where: string): unknown[] {
  if (!Array.isArray(v)) schema(where, 'must be an array');
  return v;
}

function asString(v: unknown, where: string): string {
  if (typeof v !== 'string' || v.length === 0) schema(where, 'must be a non-empty string');
  return v;
}

function asStrings(v: unknown, where: string): string[] {
  return asArray(v, where).map((x, i) => asString(x, `${where}[${i}]`));
}

function asUint(v: unknown, where: string): number {
  const n = toSafeInt(v);
  if (n === undefined || n < 0) schema(where, `must be a non-negative integer, got ${String(v)}`);
  return n;
}

function asStringMap(v: unknown, where: string): Record<string, string> {
  const o = asMap(v, where);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(o)) out[k] = asString(x, `${where}.${k}`);
  return out;
}

/** msgpack int64/uint64 arrive as bigint; attrs hold plain numbers (types are checked by checkGraph). */
function attrNumber(x: unknown, where: string): unknown {
  if (typeof x !== 'bigint') return x;
  const n = toSafeInt(x);
  if (n === undefined) schema(where, 'integer out of range');
  return n;
}

function asAttrs(v: unknown, where: string): Record<string, AttrValue> {
  const o = asMap(v, where);
  const out: Record<string, AttrValue> = {};
  for (const [k, x] of Object.entries(o)) {
    const w = `${where}.${k}`;
    out[k] = (Array.isArray(x) ? x.map((e, j) => attrNumber(e, `${w}[${j}]`)) : attrNumber(x, w)) as AttrValue;
  }
  return out;
}

function parseTensor(v: unknown, i: number): TensorEntry {
  const where = `tensors[${i}]`;
  const o = asMap(v, where);
  keys(o, where, ['name', 'dtype', 'shape', 'offset', 'length'], ['quant']);
  const name = asString(o.name, `${where}.name`);
  const tw = `tensor ${JSON.stringify(name)}`;
  const dtypeId = asUint(o.dtype, `${tw} dtype`);
  const dtype = DTYPE_BY_ID.get(dtypeId);
  if (dtype === undefined) {
    throw new FlmError('FLM_BAD_DTYPE', `${tw}: dtype id ${dtypeId} is unknown (known: ${[...DTYPE_BY_ID.keys()].join(', ')})`);
  }
  const entry: TensorEntry = {
    name, dtype,
    shape: checkShape(o.shape, tw),
    offset: asUint(o.offset, `${tw} offset`),
    length: asUint(o.length, `${tw} length`),
  };
  if (o.quant !== undefined) {
    const q = asMap(o.quant, `${tw} quant`);
    keys(q, `${tw} quant`, ['scale'], ['axis']);
    const scale = asArray(q.scale, `${tw} quant.scale`).map((s, j) => {
      if (typeof s !== 'number') schema(`${tw} quant.scale[${j}]`, 'must be a number');
      return s;
    });
    entry.quant = { scale: Float32Array.from(scale) };
    if (q.axis !== undefined) entry.quant.axis = asUint(q.axis, `${tw} quant.axis`);
  }
  return entry;
}

function parseNode(v: unknown, i: number): GraphNode {
  const where = `graph.nodes[${i}]`;
  const o = asMap(v, where);
  keys(o, where, ['name', 'op', 'inputs', 'outputs', 'attrs', 'weights'], []);
  const opId = asUint(o.op, `${where}.op`);
  const op = OP_BY_ID.get(opId);
  if (op === undefined) throw new FlmError('FLM_UNKNOWN_OP', `${where}: op id ${opId} is not a known kind`);
  return {
    name: asString(o.name, `${where}.name`),
    op,
    inputs: asStrings(o.inputs, `${where}.inputs`),
    outputs: asStrings(o.outputs, `${where}.outputs`),
    attrs: asAttrs(o.attrs, `${where}.attrs`),
    weights: asStringMap(o.weights, `${where}.weights`),
  };
}

function parseGraph(v: unknown): Graph {
  const o = asMap(v, 'graph');
  keys(o, 'graph', ['inputs', 'outputs', 'nodes'], []);
  const inputs: GraphInput[] = asArray(o.inputs, 'graph.inputs').map((x, i) => {
    const w = `graph.inputs[${i}]`;
    const m = asMap(x, w);
    keys(m, w, ['name', 'shape'], []);
    return { name: asString(m.name, `${w}.name`), shape: checkInputShape(m.shape, w) };
  });
  return {
    inputs,
    outputs: asStrings(o.outputs, 'graph.outputs'),
    nodes: asArray(o.nodes, 'graph.nodes').map(parseNode),
  };
}

/** Top level: unknown keys are ignored (room for optional additions); `memory_plan` is parsed when present. */
export function parseHeader(v: unknown): Header {
  const o = asMap(v, 'header');
  keys(o, 'header', ['graph', 'tensors', 'metadata'], [], false);
  const header: Header = {
    tensors: asArray(o.tensors, 'tensors').map(parseTensor),
    graph: parseGraph(o.graph),
    metadata: o.metadata,
  };
  if (o.memory_plan !== undefined) header.memoryPlan = parseMemoryPlan(o.memory_plan);
  return header;
}
