// The contract of a layer kind: one record per op, in one module per kind (or per family of
// simple ops), listed in registry.ts. The record holds everything the runtime knows of the kind:
//   attrs / checkAttrs   what the reader accepts (runtime/format/attrs.ts)
//   outputShape          shape inference (runtime/plan/shapes.ts)
//   prepare / bind       execution: prepare() validates a node once and precomputes; bind() ties the
//                        prepared layer to the buffers of one batch (input and output views in the
//                        session's arena, and its scratch view) and checks the shapes; the function
//                        bind() returns only computes, writing the output, allocating nothing
//   scratchFloats        the "node" plan profile's scratch (runtime/plan/profiles.ts)
//   inPlace              its output may take its dying input's bytes (runtime/plan/types.ts)
//   mcu                  the firmware runs it: its scratch at batch 1 and its part in streamed
//                        chains (runtime/plan/mcu.ts, runtime/plan/fuse.ts)
//   factor               factor kinds: ranks (describe.ts), cost (runtime/cost/model.ts), row-tile
//                        rebuild (runtime/exec/)
// test/runtime/kinds.test.ts walks every record and fails on a missing part.
import type { AttrCheck, AttrSpec } from '../format/attrSpec.js';
import type { PlanStrategy } from '../format/planTypes.js';
import type { GraphNode, OpName, Tensor } from '../ir.js';
import type { ContractInfo, ShapeLookup } from '../cost/steps.js';
import type { Rebuilder, WeightLookup } from '../exec/rebuilder.js';
import type { KernelBackend } from '../kernels/backend.js';
import type { Weight, WeightShape } from './weight.js';

export type { Weight, WeightShape } from './weight.js';

export interface LayerContext {
  /** A required weight of this node, as f32 (dequantised once at prepare if stored as f16/int8). */
  weight(role: string): Weight;
  optionalWeight(role: string): Weight | undefined;
  /** The kernels this session runs on (reference or a faster backend). */
  kernels: KernelBackend;
  /** Declares an array the layer made at prepare (a rearranged factor) constant, like a weight. */
  retain(data: Float32Array): void;
}

/** Computes the bound output from the bound inputs; allocates nothing. */
export type BoundRun = () => void;

export interface PreparedLayer {
  /**
   * Ties the layer to buffers: `inputs` (activations and constant operands, shapes known),
   * `output` (its shape from shape inference, its data a view the layer fills; for the in-place
   * ops of docs/FORMAT.md section 7 it may be the input's own memory), and `scratch` (at least
   * the kind's scratchFloats). Validates shapes; throws LayerError on a mismatch.
   */
  bind(inputs: Tensor[], output: Tensor, scratch: Float32Array, strategy?: PlanStrategy): BoundRun;
  /**
   * Makes what `strategy` needs that outlives a batch (e.g. the rebuilder of a factor layer), so
   * that bind() itself touches no memory a kernel backend could grow. The session calls it before
   * it makes any view.
   */
  prepareStrategy?(strategy: PlanStrategy): void;
}


/** A weight's shape by role; throws (a typed error) when the node has no such weight. */
export type RequiredShape = (role: string) => number[];

/** Chain roles in the firmware's streamed fusion (runtime/plan/fuse.ts). */
export type ChainName = 'dense' | 'conv-pool';

export interface McuPart {
  /** Floats of scratch the firmware's kernel takes for this node at batch 1 (core/ops.c's scratch_need); absent: none. */
  scratchFloats?(node: GraphNode, inputShapes: number[][], outputShape: number[], weightShape: RequiredShape): number;
  /** The chain it starts in the firmware's streamed fusion. */
  produces?: ChainName;
  /** The chain it ends. */
  consumes?: ChainName;
  /** An activation a streamed chain may apply between its producer and consumer. */
  chainAct?: true;
  /** Why the firmware refuses this node although it runs the kind (an attribute outside what the device takes); absent or undefined: it runs it. */
  unsupported?(node: GraphNode): string | undefined;
}

export interface FactorPart {
  /** Ranks as stored, read off the factor shapes (ir.ts lists the layouts). */
  ranks(node: GraphNode, weightShape: WeightShape): number[];
  /** Conv kinds: kernel [kh, kw] from the factor shapes (undefined when a factor is absent). Dense kinds have none. */
  kernel?(weightShape: ShapeLookup): [number, number] | undefined;
  /** Estimation: the steps of the kind's own contraction for B rows (dense) or B samples (conv). */
  contract(node: GraphNode, shapes: ShapeLookup, B: number, sample: readonly number[]): ContractInfo;
  /** Execution: the row-tile rebuilder of its dense weight (runtime/exec/). */
  rebuild(node: GraphNode, weight: WeightLookup, kernels: KernelBackend): Rebuilder;
}

export interface LayerKind {
  /** The one op this record implements. */
  readonly ops: readonly [OpName];
  /** The attributes its kernels read; others are ignored. Checked when a file is read. */
  readonly attrs: Readonly<Record<string, AttrSpec>>;
  /** Rules between attributes, after each passed its spec. */
  readonly checkAttrs?: AttrCheck;
  /**
   * Its output may take exactly the bytes of its dying input (docs/FORMAT.md section 7):
   * 'elementwise' (out[i] from x[i] only) or 'reshape' (the same data, another shape).
   */
  readonly inPlace?: 'elementwise' | 'reshape';
  /** Output shape from the input shapes (stored operands included) and weight shapes; FlmError FLM_MEMORY_PLAN when they do not fit. */
  outputShape(node: GraphNode, inputShapes: number[][], weightShape: RequiredShape): number[];
  prepare(node: GraphNode, ctx: LayerContext): PreparedLayer;
  /**
   * Floats of scratch this kind's run needs at these shapes (absent: none). The planner's "node"
   * profile (runtime/plan/profiles.ts) sizes each node's scratch with it.
   */
  scratchFloats?(node: GraphNode, inputShapes: number[][], outputShape: number[], weightShape: WeightShape, strategy?: PlanStrategy): number;
  /** Present when the firmware runs this op. */
  readonly mcu?: McuPart;
  /** Present for the kinds whose weights are factors (FACTOR_OPS). */
  readonly factor?: FactorPart;
}

/** The declarative parts of a record, for helpers that build a family's records. */
export type KindParts = Pick<LayerKind, 'attrs' | 'checkAttrs' | 'outputShape' | 'mcu' | 'inPlace'>;

export class LayerError extends Error {
  readonly code = 'LAYER_INVALID';
  constructor(node: GraphNode, message: string) {
    super(`layer ${node.name} (${node.op}): ${message}`);
  }
}

/** Checks a weight's shape against an expectation; -1 in `expected` matches any size. */
export function expectShape(node: GraphNode, role: string, w: Weight, expected: readonly number[]): void {
  const ok = w.shape.length === expected.length && expected.every((d, i) => d === -1 || d === w.shape[i]);
  if (!ok) throw new LayerError(node, `${role} has shape [${w.shape}], expected [${expected.map((d) => (d === -1 ? '?' : d))}]`);
}

export function firstInput(node: GraphNode, inputs: Tensor[]): Tensor {
  const x = inputs[0];
  if (!x) throw new LayerError(node, 'missing input');
  return x;
}

/** True when two views start at the same byte of the same buffer (an in-place output). */
export function sameMemory(a: Float32Array, b: Float32Array): boolean {
  return a.buffer === b.buffer && a.byteOffset === b.byteOffset;
}

/** Checks that `scratch` holds `floats`; returns it. */
export function needScratch(node: GraphNode, scratch: Float32Array, floats: number): Float32Array {
  if (scratch.length < floats) throw new LayerError(node, `needs ${floats} floats of scratch, got ${scratch.length}`);
  return scratch;
}

/** Consecutive views of the given lengths at the start of `scratch` (made at bind time). */
export function carve(node: GraphNode, scratch: Float32Array, ...lengths: number[]): Float32Array[] {
  needScratch(node, scratch, lengths.reduce((a, b) => a + b, 0));
  const out: Float32Array[] = [];
  let at = 0;
  for (const n of lengths) {
    out.push(scratch.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** The output must have the size its shape says (the session's views always do). */
export function checkOutput(node: GraphNode, output: Tensor, shape: readonly number[]): void {
  let n = 1;
  for (const d of shape) n *= d;
  const ok = output.shape.length === shape.length && shape.every((d, i) => d === output.shape[i]) && output.data.length === n;
  if (!ok) throw new LayerError(node, `output is [${output.shape}] (${output.data.length} floats), expected [${shape}]`);
}
