// The .flm fuzz harness the project keeps: seed models touching every op kind and dtype (the factor
// kinds drawn from the runtime's registry, each made by its converter method), mutated
// raw (bytes, truncations, length fields) and by structure (the header decoded, one field of the
// graph, a tensor entry or a quant scale changed, re-encoded, the CRC made right so that the
// mutant reaches the schema and graph checks). Each mutant goes through readFlm, then, when it is
// accepted, a session and one inference on each kernel backend. Allowed outcomes: a model, or an
// error with a string `code` (FlmError, SessionError, LayerError, ...). Anything else -- a plain
// Error, a TypeError, a WebAssembly trap, a call slower than SLOW_MS -- is a finding, and the
// mutant is saved. With `firmware`, every `firmwareEvery`-th mutant also goes to the firmware's
// host build (fl-host --check) and the firmware must refuse whatever the reader refuses.
// Used by test/runtime/fuzzHarness.test.ts (a short run) and bench/fuzz.ts (the long run).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Packr, Unpackr } from 'msgpackr';
import { FACTOR_METHODS } from '../converter/methods/index.js';
import type { LayerShape } from '../converter/rank/candidates.js';
import { writeFlm } from '../converter/writer.js';
import { quantizeTensor } from '../runtime/format/dtype.js';
import { crc32, dataOffsetFor, decodePreamble, encodePreamble, PREAMBLE_SIZE, readFlm } from '../runtime/format/index.js';
import { numel, OP_IDS, type AttrValue, type GraphNode, type Model, type OpName, type StoredTensor } from '../runtime/ir.js';
import type { KernelBackend } from '../runtime/kernels/backend.js';
import { KINDS } from '../runtime/layers/registry.js';
import { Session } from '../runtime/session.js';

/** xorshift32: reproducible without a dependency. */
export function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s % n;
  };
}

const SLOW_MS = 5000;

type Dtype = 'f32' | 'f16' | 'i8';

/** A stored tensor of `data` in dtype `dtype` (1-D tensors stay f32). */
function stored(name: string, shape: number[], data: Float32Array, dtype: Dtype): StoredTensor {
  const f: StoredTensor = { name, dtype: 'f32', shape, data };
  return dtype === 'f32' || shape.length === 1 ? f : quantizeTensor(f, dtype, dtype === 'i8' ? { perChannelAxis: 0 } : {});
}

function tensor(name: string, shape: number[], dtype: Dtype, r: (n: number) => number): StoredTensor {
  return stored(name, shape, Float32Array.from({ length: numel(shape) }, () => (r(2001) - 1000) / 1000), dtype);
}

/** The runtime registry's factor kinds: the conv-shaped ones (with a factor.kernel) or the dense ones. */
export function factorKinds(conv: boolean): OpName[] {
  return KINDS.filter((k) => k.factor !== undefined && (k.factor.kernel !== undefined) === conv).map((k) => k.ops[0]);
}

/**
 * A node of factor kind `op` standing for a random layer of `shape`: the converter method that
 * writes the kind decomposes it at rank 2 and its factors (and a bias, with `bias`) are stored in
 * `dtype`. Every factor kind has such a method (test/converter/methods/registry.test.ts).
 */
function factorNode(
  op: OpName, name: string, input: string, shape: LayerShape, attrs: Record<string, AttrValue>, bias: boolean,
  dtype: Dtype, r: (n: number) => number, tensors: StoredTensor[],
): GraphNode {
  const method = FACTOR_METHODS.find((m) => m.layers.includes(shape.kind) && m.kinds.some((k) => k.op === op));
  if (!method) throw new Error(`fuzz seeds: no converter method writes ${op} for a ${shape.kind} layer`);
  const dims = shape.kind === 'dense' ? [shape.out, shape.in] : [shape.O, shape.I, shape.kh, shape.kw];
  const weight = Float32Array.from({ length: numel(dims) }, () => (r(2001) - 1000) / 1000);
  const node: GraphNode = { name, op: shape.kind === 'dense' ? 'dense' : 'conv2d', inputs: [input], outputs: [`${name}.o`], attrs: { ...attrs }, weights: {} };
  const target = { node, shape, weight, bias: 0, denseParams: numel(dims) };
  const spec = method.fromRanks(target, [2]);
  if (typeof spec === 'string') throw new Error(`fuzz seeds: ${op}: ${spec}`);
  const d = method.decompose(target, spec as never, {
    seed: 7, quick: true, attrs: node.attrs,
    add: (role, s, data) => {
      tensors.push(stored(`${name}.${role}`, s, data, dtype));
      node.weights[role] = `${name}.${role}`;
    },
  });
  if (d.op !== op) throw new Error(`fuzz seeds: ${method.name} wrote ${d.op} where ${op} was asked for`);
  if (bias) {
    const out = dims[0]!;
    tensors.push(tensor(`${name}.b`, [out], dtype, r));
    node.weights.bias = `${name}.b`;
  }
  return { ...node, op };
}

/** Seed models: between them every op kind with attributes, and each dtype. */
export function seedModels(): Uint8Array[] {
  const r = rng(7);
  const n = (name: string, op: OpName, inputs: string[], attrs: Record<string, AttrValue>, weights: Record<string, string> = {}): GraphNode =>
    ({ name, op, inputs, outputs: [`${name}.o`], attrs, weights });
  const seeds: Uint8Array[] = [];
  for (const dt of ['f32', 'f16', 'i8'] as const) {
    const T = (name: string, shape: number[]) => tensor(name, shape, dt, r);
    const conv = { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 };
    // The CNN: conv2d, then every conv-shaped factor kind (3 -> 3 channels, 3x3, on 8x8 maps), the
    // pools, then every dense factor kind: the first 48 -> 12, a reshape and transpose, the rest 12 -> 12.
    const tensors: StoredTensor[] = [T('c.w', [3, 2, 3, 3]), T('c.b', [3])];
    const nodes: GraphNode[] = [n('c', 'conv2d', ['x'], conv, { weight: 'c.w', bias: 'c.b' })];
    const last = () => nodes[nodes.length - 1]!.outputs[0]!;
    factorKinds(true).forEach((op, k) => nodes.push(factorNode(op, `k${k}`, last(), { kind: 'conv', O: 3, I: 3, kh: 3, kw: 3 }, conv, false, dt, r, tensors)));
    nodes.push(
      n('r', 'leaky_relu', [last()], { alpha: 0.1 }),
      n('m', 'max_pool', ['r.o'], { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil_mode: 0 }),
      n('a', 'avg_pool', ['m.o'], { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], ceil_mode: 0, count_include_pad: 0 }),
      n('f', 'flatten', ['a.o'], { axis: 1 }),
    );
    factorKinds(false).forEach((op, k) => {
      nodes.push(factorNode(op, `d${k}`, last(), { kind: 'dense', out: 12, in: k === 0 ? 48 : 12 }, {}, k % 2 === 0, dt, r, tensors));
      if (k === 0) {
        nodes.push(
          n('cl', 'clip', [last()], { min: -1, max: 1 }),
          n('rs', 'reshape', ['cl.o'], { shape: [-1, 3, 4] }),
          n('tp', 'transpose', ['rs.o'], { perm: [0, 2, 1] }),
          n('fl', 'flatten', ['tp.o'], { axis: 1 }),
        );
      }
    });
    nodes.push(n('sm', 'softmax', [last()], { axis: -1 }));
    const cnn: Model = {
      graph: { inputs: [{ name: 'x', shape: [-1, 2, 8, 8] }], outputs: ['sm.o'], nodes },
      tensors: new Map(tensors.map((x) => [x.name, x])),
      metadata: { 'source.model': 'fuzz-seed', 'convert.method': 'mixed' },
    };
    const mlp: Model = {
      graph: {
        inputs: [{ name: 'x', shape: [-1, 12] }], outputs: ['y.o'],
        nodes: [
          n('d', 'dense', ['x'], {}, { weight: 'd.w', bias: 'd.b' }),
          n('g', 'sigmoid', ['d.o'], {}),
          n('h', 'dense', ['g.o'], {}, { weight: 'h.w' }),
          n('ad', 'add', ['h.o', 'shift'], {}),
          n('mu', 'mul', ['ad.o', 'ad.o'], {}),
          n('th', 'tanh', ['mu.o'], {}),
          n('re', 'relu', ['th.o'], {}),
          n('y', 'identity', ['re.o'], {}),
        ],
      },
      tensors: new Map([T('d.w', [8, 12]), T('d.b', [8]), T('h.w', [5, 8]), T('shift', [5])].map((x) => [x.name, x])),
      metadata: {},
    };
    // The ops the ONNX importer added later: pad, conv_transpose2d, resize, slice, concat, prelu,
    // hard_sigmoid, hard_swish, log_softmax.
    const more: Model = {
      graph: {
        inputs: [{ name: 'x', shape: [-1, 2, 4, 4] }], outputs: ['ls.o'],
        nodes: [
          n('pd', 'pad', ['x'], { pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: 'constant', value: 0 }),
          n('ct', 'conv_transpose2d', ['pd.o'], { ...conv, output_padding: [0, 0] }, { weight: 'ct.w' }),
          n('rz', 'resize', ['ct.o'], { scales: [1, 1, 2, 2], mode: 'nearest', coord: 'asymmetric', nearest: 'floor' }),
          n('hs', 'hard_sigmoid', ['rz.o'], { alpha: 0.2, beta: 0.5 }),
          n('sl', 'slice', ['hs.o'], { axes: [2], starts: [1], ends: [5], steps: [1] }),
          n('cc', 'concat', ['sl.o', 'sl.o'], { axis: 1 }),
          n('pr', 'prelu', ['cc.o'], {}, { slope: 'pr.s' }),
          n('hw', 'hard_swish', ['pr.o'], {}),
          n('fl', 'flatten', ['hw.o'], { axis: 1 }),
          n('ls', 'log_softmax', ['fl.o'], { axis: -1 }),
        ],
      },
      tensors: new Map([T('ct.w', [2, 3, 3, 3]), T('pr.s', [6])].map((x) => [x.name, x])),
      metadata: {},
    };
    seeds.push(writeFlm(cnn), writeFlm(mlp), writeFlm(more));
  }
  return seeds;
}

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** A file's decoded header and its data section. */
export function split(file: Uint8Array): { header: any; data: Uint8Array } {
  const pre = decodePreamble(file);
  return { header: unpackr.unpack(file.subarray(PREAMBLE_SIZE, PREAMBLE_SIZE + pre.headerLen)), data: file.slice(dataOffsetFor(pre.headerLen)) };
}

/** A file from a header (packed here) and data, with a correct CRC: no graph check on the way. */
export function assemble(header: unknown, data: Uint8Array): Uint8Array {
  const h = packr.pack(header);
  const off = dataOffsetFor(h.length);
  const out = new Uint8Array(off + data.length);
  out.set(h, PREAMBLE_SIZE);
  out.set(data, off);
  out.set(encodePreamble({ version: 1, flags: 0, headerLen: h.length, crc32: crc32(out.subarray(PREAMBLE_SIZE)), dataLen: data.length }), 0);
  return out;
}

function fixCrc(b: Uint8Array): Uint8Array {
  if (b.length >= PREAMBLE_SIZE) new DataView(b.buffer, b.byteOffset).setUint32(12, crc32(b.subarray(PREAMBLE_SIZE)), true);
  return b;
}

const INTERESTING: unknown[] = [0, 1, -1, 2, 3, 65535, 65536, -65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 1.5, -0.5,
  Infinity, -Infinity, NaN, 'x', '', [], [0], [0, 0], [1, 1], [-1, -1], [0, 0, 0, 0], [2 ** 40, 1], [1, 2, 3], [1.5, 2], ['a'], null, true, {}];

const pick = <T>(r: (n: number) => number, xs: readonly T[]): T => xs[r(xs.length)]!;

/** One structure-aware change to a decoded header (in place). */
function mutateHeader(h: any, r: (n: number) => number): void {
  const nodes: any[] = h?.graph?.nodes ?? [];
  const tensors: any[] = h?.tensors ?? [];
  const node = nodes.length ? pick(r, nodes) : undefined;
  const ten = tensors.length ? pick(r, tensors) : undefined;
  switch (r(12)) {
    case 0: case 1: case 2: { // an attribute: new value, or deleted
      if (!node) return;
      const keys = Object.keys(node.attrs ?? {});
      const key = keys.length && r(4) ? pick(r, keys) : pick(r, ['kernel', 'strides', 'pads', 'dilations', 'group', 'axis', 'shape', 'perm', 'out_modes', 'in_modes', 'alpha', 'min', 'max', 'ceil_mode', 'count_include_pad']);
      if (!node.attrs || typeof node.attrs !== 'object') node.attrs = {};
      if (r(5) === 0) delete node.attrs[key];
      else if (Array.isArray(node.attrs[key]) && r(2)) node.attrs[key] = node.attrs[key].map((v: unknown) => (r(3) ? v : pick(r, INTERESTING)));
      else node.attrs[key] = pick(r, INTERESTING);
      return;
    }
    case 3: // the op id
      if (node) node.op = r(3) ? r(Object.keys(OP_IDS).length + 2) : pick(r, INTERESTING);
      return;
    case 4: // inputs, outputs, weight roles
      if (!node) return;
      if (r(2)) node.inputs = r(2) ? [...(node.inputs ?? []), pick(r, nodes)?.outputs?.[0] ?? 'x'] : (node.inputs ?? []).slice(1);
      else if (node.weights && typeof node.weights === 'object') {
        const roles = Object.keys(node.weights);
        if (roles.length && r(2)) node.weights[pick(r, roles)] = ten?.name ?? 'nothing';
        else node.weights[pick(r, ['weight', 'bias', 'u', 'v', 'core', 'core.0', 'core.7', 'factor.9', 'a_in'])] = ten?.name ?? 'nothing';
      }
      return;
    case 5: // a tensor's shape (length and offsets left: the layout checks see it)
      if (ten && Array.isArray(ten.shape)) {
        if (ten.shape.length && r(3)) ten.shape[r(ten.shape.length)] = pick(r, [0, 1, 2, 3, 65535, 2 ** 31, -1]);
        else if (r(2)) ten.shape.push(1); else ten.shape.pop();
      }
      return;
    case 6: // a tensor's shape kept consistent with its byte length (a permutation): reaches the kernels
      if (ten && Array.isArray(ten.shape) && ten.shape.length > 1) {
        const i = r(ten.shape.length);
        const j = r(ten.shape.length);
        [ten.shape[i], ten.shape[j]] = [ten.shape[j], ten.shape[i]];
      }
      return;
    case 7: // quant: scale list items, axis, presence
      if (!ten) return;
      if (ten.quant && typeof ten.quant === 'object') {
        const q = ten.quant;
        const c = r(4);
        if (c === 0 && Array.isArray(q.scale) && q.scale.length) q.scale[r(q.scale.length)] = pick(r, INTERESTING);
        else if (c === 1) q.axis = pick(r, INTERESTING);
        else if (c === 2) delete ten.quant;
        else q.scale = pick(r, INTERESTING);
      } else {
        ten.quant = { scale: [pick(r, [0.5, 'x', -1, NaN, 1e39])] };
      }
      return;
    case 8: // dtype
      if (ten) ten.dtype = pick(r, [0, 1, 2, 3, -1, 'f32']);
      return;
    case 9: // graph inputs / outputs
      if (h?.graph?.inputs?.[0] && r(2)) h.graph.inputs[0].shape = pick(r, [[-1, 12], [1, 2, 8, 8], [-1, -1, 8, 8], [0, 12], [1], [], [2 ** 31, 12], 'x']);
      else if (h?.graph) h.graph.outputs = r(2) ? [pick(r, nodes)?.outputs?.[0] ?? 'x'] : [];
      return;
    case 10: // nodes reordered, dropped or duplicated
      if (nodes.length > 1) {
        const i = r(nodes.length);
        const c = r(3);
        if (c === 0) nodes.splice(i, 1);
        else if (c === 1) nodes.push({ ...nodes[i], name: `${nodes[i].name}2` });
        else [nodes[0], nodes[i]] = [nodes[i], nodes[0]];
      }
      return;
    default: // the memory plan, or metadata
      if (h?.memory_plan && r(2)) delete h.memory_plan;
      else if (h) h.metadata = pick(r, [{}, { 'a.b': 1 }, { Bad: 1 }, null, []]);
  }
}

/** A mutant of `seed`: raw (kind 0-3) or structure-aware (kind 4-9, CRC right). */
export function mutant(seed: Uint8Array, r: (n: number) => number): Uint8Array {
  const kind = r(10);
  if (kind >= 4) {
    const { header, data } = split(seed);
    const k = 1 + r(kind === 9 ? 4 : 1);
    for (let i = 0; i < k; i++) mutateHeader(header, r);
    try {
      return assemble(header, data);
    } catch {
      return new Uint8Array(seed); // msgpackr refused the value (e.g. a cycle): the seed itself
    }
  }
  const b = new Uint8Array(seed);
  const hlen = new DataView(b.buffer).getUint32(8, true);
  if (kind === 0) {
    for (let i = 1 + r(4); i > 0; i--) b[PREAMBLE_SIZE + r(hlen)] = r(256);
    return fixCrc(b);
  }
  if (kind === 1) {
    const at = r(b.length);
    b[at] = b[at]! ^ (1 << r(8));
    if (r(2)) fixCrc(b);
    return b;
  }
  if (kind === 2) return b.slice(0, r(b.length));
  const dv = new DataView(b.buffer);
  if (r(2)) dv.setUint32(8, r(2) ? r(hlen * 2) : 0xffffffff, true);
  else dv.setUint32(16, r(b.length * 2), true);
  return r(2) ? fixCrc(b) : b;
}

export interface FuzzResult {
  mutants: number;
  accepted: number;
  /** Reader refusals by code. */
  refused: Record<string, number>;
  /** Session or inference refusals (typed) by code, per backend. */
  sessionRefused: Record<string, number>;
  inferences: number;
  firmwareChecked: number;
  firmwareAgreed: number;
  /** Untyped errors, slow calls, firmware disagreements: each with the saved mutant. */
  findings: Array<{ index: number; what: string; file?: string }>;
  seconds: number;
}

export interface FuzzOptions {
  count: number;
  seed: number;
  backends: KernelBackend[];
  /** fl-host built from the firmware (host port); undefined: no differential check. */
  firmware?: string;
  firmwareEvery?: number;
  /** Where failing mutants are saved. */
  saveDir: string;
  onProgress?: (done: number, r: FuzzResult) => void;
}

const codeOf = (e: unknown): string | undefined => {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' && c.length > 0 ? c : undefined;
};

export function fuzzFlm(o: FuzzOptions): FuzzResult {
  const r = rng(o.seed);
  const seeds = seedModels();
  const res: FuzzResult = { mutants: 0, accepted: 0, refused: {}, sessionRefused: {}, inferences: 0, firmwareChecked: 0, firmwareAgreed: 0, findings: [], seconds: 0 };
  const t0 = performance.now();
  const save = (i: number, what: string, bytes: Uint8Array) => {
    let file: string | undefined;
    if (res.findings.length < 50) {
      mkdirSync(o.saveDir, { recursive: true });
      file = join(o.saveDir, `finding-${o.seed}-${i}.flm`);
      writeFileSync(file, bytes);
    }
    res.findings.push({ index: i, what, ...(file ? { file } : {}) });
  };
  const fwFile = join(o.saveDir, `fw-${process.pid}.flm`);
  for (let i = 0; i < o.count; i++) {
    const bytes = mutant(seeds[r(seeds.length)]!, r);
    res.mutants++;
    let model: Model | undefined;
    let t = performance.now();
    try {
      model = readFlm(bytes);
      res.accepted++;
    } catch (e) {
      const c = codeOf(e);
      if (!c || !c.startsWith('FLM_')) save(i, `reader threw without an FLM code: ${String(e)}`, bytes);
      else res.refused[c] = (res.refused[c] ?? 0) + 1;
    }
    if (performance.now() - t > SLOW_MS) save(i, `reader took ${(performance.now() - t).toFixed(0)} ms`, bytes);
    if (model) {
      for (const backend of o.backends) {
        t = performance.now();
        try {
          const s = Session.create(model, { backend });
          try {
            const x = model.graph.inputs.map((inp) => {
              const shape = inp.shape.map((d) => (d < 0 ? 1 : d));
              return { shape, data: new Float32Array(numel(shape)).fill(0.25) };
            });
            s.run(Object.fromEntries(model.graph.inputs.map((inp, k) => [inp.name, x[k]!])));
            res.inferences++;
          } finally {
            s.dispose();
          }
        } catch (e) {
          const c = codeOf(e);
          if (!c) save(i, `${backend.name}: untyped ${String(e).slice(0, 200)}`, bytes);
          else res.sessionRefused[`${backend.name}:${c}`] = (res.sessionRefused[`${backend.name}:${c}`] ?? 0) + 1;
        }
        if (performance.now() - t > SLOW_MS) save(i, `${backend.name}: session + inference took ${(performance.now() - t).toFixed(0)} ms`, bytes);
      }
    }
    if (o.firmware && i % (o.firmwareEvery ?? 1) === 0) {
      mkdirSync(o.saveDir, { recursive: true });
      writeFileSync(fwFile, bytes);
      const fw = spawnSync(o.firmware, ['--check', fwFile], { encoding: 'utf8', timeout: 20000 });
      res.firmwareChecked++;
      const named = /^fl-host: ([A-Z][A-Z0-9_]+): /.exec(fw.stderr);
      const clean = fw.signal === null && ((fw.status === 0 && /^ok /.test(fw.stdout)) || (fw.status === 2 && named !== null));
      if (!clean) save(i, `firmware: status ${fw.status} signal ${fw.signal}: ${(fw.stdout + fw.stderr).slice(0, 200)}`, bytes);
      else if (!model && fw.status !== 2) save(i, 'firmware accepts a file the reader refuses', bytes);
      else res.firmwareAgreed++;
    }
    if (o.onProgress && (i + 1) % 1000 === 0) o.onProgress(i + 1, res);
  }
  res.seconds = (performance.now() - t0) / 1000;
  return res;
}
