// Shared by the export tests: seeded models, and one model run in both onnxruntime (on the
// export) and the factorlite runtime, compared relative to the output scale.
import * as ort from 'onnxruntime-node';
import type { Test } from 'tap';
import { exportOnnx, type ExportOptions } from '../../../converter/export/index.js';
import { quantizeTensor } from '../../../runtime/format/dtype.js';
import type { DType, GraphNode, Model, OpName, StoredTensor, Tensor } from '../../../runtime/ir.js';
import { numel } from '../../../runtime/ir.js';
import { Session } from '../../../runtime/session.js';

let seed = 20240611;
export function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
}
export function randArray(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand();
  return a;
}

/** A seeded random stored tensor, optionally re-encoded as f16 or int8. */
export function stored(name: string, shape: number[], dtype: DType = 'f32', perChannelAxis?: number): StoredTensor {
  const t: StoredTensor = { name, dtype: 'f32', shape, data: randArray(numel(shape)) };
  return dtype === 'f32' ? t : quantizeTensor(t, dtype, perChannelAxis === undefined ? {} : { perChannelAxis });
}

export interface NodeSpec {
  op: OpName;
  attrs?: GraphNode['attrs'];
  /** Role -> stored tensor. */
  weights?: Record<string, StoredTensor>;
  /** Defaults to the previous node's output; names of stored tensors are constant operands. */
  inputs?: string[];
  constants?: StoredTensor[];
}

/** A chain of nodes from input `x` ([-1, ...sample]) to output `y`. */
export function chainModel(sample: number[], specs: NodeSpec[]): Model {
  const tensors = new Map<string, StoredTensor>();
  let prev = 'x';
  const nodes: GraphNode[] = specs.map((s, i) => {
    const out = i === specs.length - 1 ? 'y' : `v${i}`;
    const weights: Record<string, string> = {};
    for (const [role, t] of Object.entries(s.weights ?? {})) {
      tensors.set(t.name, t);
      weights[role] = t.name;
    }
    for (const c of s.constants ?? []) tensors.set(c.name, c);
    const node: GraphNode = { name: `n${i}_${s.op}`, op: s.op, inputs: s.inputs ?? [prev], outputs: [out], attrs: s.attrs ?? {}, weights };
    prev = out;
    return node;
  });
  return { graph: { inputs: [{ name: 'x', shape: [-1, ...sample] }], outputs: ['y'], nodes }, tensors, metadata: {} };
}

export function single(op: OpName, sample: number[], weights: Record<string, StoredTensor>, attrs: GraphNode['attrs'] = {}): Model {
  return chainModel(sample, [{ op, weights, attrs }]);
}

export function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let scale = 1e-6;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d / scale;
}

export async function ortRun(session: ort.InferenceSession, input: string, x: Tensor): Promise<Tensor> {
  const out = await session.run({ [input]: new ort.Tensor('float32', x.data, x.shape) });
  const y = out[session.outputNames[0]!]!;
  return { shape: y.dims.map(Number), data: y.data as Float32Array };
}

export const TOL = 1e-4;

/** Exports `model`, runs both sides at batch 1 and 5, and checks shapes and values. */
export async function agree(t: Test, model: Model, opts: ExportOptions & { batches?: number[] } = {}): Promise<Uint8Array> {
  const bytes = exportOnnx(model, opts);
  const session = await ort.InferenceSession.create(bytes);
  t.same(session.inputNames, model.graph.inputs.map((i) => i.name), 'input names kept');
  t.same(session.outputNames, model.graph.outputs, 'output names kept');
  const ours = Session.create(model);
  const sample = model.graph.inputs[0]!.shape.slice(1);
  for (const batch of opts.batches ?? [1, 5]) {
    const shape = [batch, ...sample];
    const x = { shape, data: randArray(numel(shape)) };
    const want = ours.runBatch(x);
    const got = await ortRun(session, 'x', x);
    t.same(got.shape, want.shape, `shape at batch ${batch}`);
    const diff = maxRelDiff(got.data, want.data);
    t.ok(diff <= TOL, `batch ${batch}: max diff ${diff.toExponential(2)} of the output scale`);
  }
  await session.release();
  return bytes;
}
