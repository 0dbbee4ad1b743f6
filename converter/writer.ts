// writeFlm: a Model in, the bytes of a .flm file out (docs/FORMAT.md). The model is checked with
// the reader's own rules first, so whatever this writes, readFlm accepts.

import { Packr } from 'msgpackr';
import { DTYPE_IDS, OP_IDS, type Model, type StoredTensor } from '../runtime/ir.js';
import {
  FlmError, FORMAT_VERSION, MAX_HEADER_LEN, PREAMBLE_SIZE, alignUp, checkGraph, checkInputShape,
  checkMetadata, checkPlainMsgpack, checkQuant, checkShape, checkedByteLength, crc32, dataOffsetFor,
  encodePreamble, isDType,
} from '../runtime/format/index.js';
import { encodeMemoryPlan } from '../runtime/format/memoryPlan.js';
import { checkPlan } from '../runtime/plan/check.js';
import { planArena } from '../runtime/plan/planner.js';
import { allProfiles, getProfile } from '../runtime/plan/profiles.js';
import type { ArenaPlan, MemoryPlan } from '../runtime/plan/types.js';
import { writeFileAtomic } from './atomicWrite.js';

export interface WriteOptions {
  /**
   * "auto" (default): plan afresh for the graph being written: the "node" plan at batch 1, and a
   * plan for every other registered profile (e.g. "mcu") that runs every op of the graph.
   * "keep": write `model.memoryPlan` as it is, after checking each plan against its profile.
   * "none": no `memory_plan`.
   */
  memoryPlan?: 'auto' | 'keep' | 'none';
}

/** The plans "auto" stores; undefined when the graph cannot be planned (its shapes do not work out). */
export function planModel(model: Model): MemoryPlan | undefined {
  const plans: ArenaPlan[] = [];
  for (const profile of allProfiles()) {
    if (!model.graph.nodes.every((n) => profile.supports?.(n, model) ?? true)) continue;
    try {
      plans.push(planArena(model, profile));
    } catch (e) {
      if (profile.name === 'node') return undefined; // shapes that do not infer: a graph no runtime can run
      void e; // another profile that cannot plan this graph simply gets no plan
    }
  }
  return plans.length ? { version: 1, plans } : undefined;
}

function plansToWrite(model: Model, mode: NonNullable<WriteOptions['memoryPlan']>): MemoryPlan | undefined {
  if (mode === 'none') return undefined;
  if (mode === 'auto') return planModel(model);
  const mp = model.memoryPlan;
  if (!mp) return undefined;
  for (const plan of mp.plans) {
    const profile = getProfile(plan.profile);
    if (!profile) throw new FlmError('FLM_MEMORY_PLAN', `plan for unknown profile ${JSON.stringify(plan.profile)}`);
    checkPlan(model, plan, { ...profile, batch: plan.batch });
  }
  return mp;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

const ARRAY_FOR = { f32: Float32Array, f16: Uint16Array, i8: Int8Array } as const;

interface Placed {
  t: StoredTensor;
  offset: number;
  length: number;
}

function checkTensor(key: string, t: StoredTensor): number {
  if (typeof t.name !== 'string' || t.name.length === 0 || t.name !== key) {
    throw new FlmError('FLM_HEADER_SCHEMA', `tensors map key ${JSON.stringify(key)} differs from the tensor's name ${JSON.stringify(t.name)}`);
  }
  const where = `tensor ${JSON.stringify(key)}`;
  if (!isDType(t.dtype)) throw new FlmError('FLM_BAD_DTYPE', `${where}: dtype ${JSON.stringify(t.dtype)} is unknown`);
  const shape = checkShape(t.shape, where);
  const length = checkedByteLength(shape, t.dtype, where);
  const Ctor = ARRAY_FOR[t.dtype];
  if (!(t.data instanceof Ctor)) {
    throw new FlmError('FLM_BAD_DTYPE', `${where}: ${t.dtype} data must be a ${Ctor.name}, got ${Object.prototype.toString.call(t.data)}`);
  }
  if (t.data.byteLength !== length) {
    throw new FlmError('FLM_LENGTH_MISMATCH', `${where}: ${t.data.length} elements, but [${shape.join(', ')}] needs ${length / Ctor.BYTES_PER_ELEMENT}`);
  }
  checkQuant(where, t.dtype, shape, t.quant);
  return length;
}

function tensorEntry(p: Placed): Record<string, unknown> {
  const { t } = p;
  const entry: Record<string, unknown> = {
    name: t.name, dtype: DTYPE_IDS[t.dtype], shape: [...t.shape], offset: p.offset, length: p.length,
  };
  // Plain number arrays: a Float32Array would be packed as a msgpack extension.
  if (t.quant) {
    entry.quant = t.quant.axis === undefined
      ? { scale: Array.from(t.quant.scale) }
      : { scale: Array.from(t.quant.scale), axis: t.quant.axis };
  }
  return entry;
}

function buildHeader(model: Model, placed: Placed[], metadata: Record<string, unknown>, plan: MemoryPlan | undefined): Record<string, unknown> {
  const g = model.graph;
  const header: Record<string, unknown> = {
    graph: {
      inputs: g.inputs.map((inp) => ({ name: inp.name, shape: [...inp.shape] })),
      outputs: [...g.outputs],
      nodes: g.nodes.map((n) => ({
        name: n.name,
        op: OP_IDS[n.op],
        inputs: [...n.inputs],
        outputs: [...n.outputs],
        attrs: Object.fromEntries(Object.entries(n.attrs).map(([k, v]) => [k, Array.isArray(v) ? [...v] : v])),
        weights: { ...n.weights },
      })),
    },
    tensors: placed.map(tensorEntry),
    metadata,
  };
  if (plan) header.memory_plan = encodeMemoryPlan(plan);
  return header;
}

function copyData(out: Uint8Array, at: number, t: StoredTensor): void {
  const d = t.data;
  if (LITTLE_ENDIAN_HOST || d instanceof Int8Array) {
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    return;
  }
  const dv = new DataView(out.buffer, out.byteOffset + at, d.byteLength);
  if (d instanceof Float32Array) d.forEach((v, i) => dv.setFloat32(4 * i, v, true));
  else d.forEach((v, i) => dv.setUint16(2 * i, v, true));
}

/** Validate `model` and encode it as a version-1 .flm file, with its memory plans. Throws FlmError. */
export function writeFlm(model: Model, opts: WriteOptions = {}): Uint8Array {
  const metadata = checkMetadata(model.metadata);
  const placed: Placed[] = [];
  let end = 0;
  for (const [key, t] of model.tensors) {
    const length = checkTensor(key, t);
    const offset = alignUp(end);
    placed.push({ t, offset, length });
    end = offset + length;
  }
  model.graph.inputs.forEach((inp, i) => checkInputShape(inp.shape, `graph input ${i}`));
  checkGraph(model.graph, new Set(model.tensors.keys()));

  const plan = plansToWrite(model, opts.memoryPlan ?? 'auto');
  const header = new Packr({ useRecords: false }).pack(buildHeader(model, placed, metadata, plan));
  // The writer's own output must be in the plain subset a C reader parses.
  checkPlainMsgpack(header);
  if (header.length > MAX_HEADER_LEN) {
    throw new FlmError('FLM_HEADER_TOO_LARGE', `header is ${header.length} bytes, the cap is ${MAX_HEADER_LEN}`);
  }
  const dataOffset = dataOffsetFor(header.length);
  const out = new Uint8Array(dataOffset + end); // zero-filled: every padding byte is 0
  out.set(header, PREAMBLE_SIZE);
  for (const p of placed) copyData(out, dataOffset + p.offset, p.t);
  out.set(encodePreamble({
    version: FORMAT_VERSION, flags: 0, headerLen: header.length, crc32: crc32(out.subarray(PREAMBLE_SIZE)), dataLen: end,
  }), 0);
  return out;
}

/** Writes atomically (converter/atomicWrite.ts): a failure never leaves a half file. */
export async function writeFlmFile(model: Model, path: string, opts: WriteOptions = {}): Promise<void> {
  const bytes = writeFlm(model, opts);
  try {
    await writeFileAtomic(path, bytes);
  } catch (e) {
    throw new FlmError('FLM_IO', `cannot write ${path}`, { cause: e });
  }
}
