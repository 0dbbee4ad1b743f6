// What a decomposition method is, converter side: one record per method, in one module per method
// (methods/<name>.ts), holding everything the converter knows of it. The registry (methods/index.ts)
// is the list of these records; compress.ts, train/fromModel.ts, train/arch.ts and export/onnx.ts
// look a method or a factor kind up there instead of switching on its name.
//
//   method (svd, tucker2, cp, tt, tr, ttl)
//     ├─ candidates   the rank ladder: every form it offers a layer, with params and estimated error
//     ├─ fromRanks    a form from ranks a user wrote (--ranks FILE)
//     ├─ ranks / withRanks / rankSlots   its ranks as a list, which of them may move and how far
//     ├─ params       parameter count of a form, bias included
//     ├─ decompose    the factors of a dense weight, as the stored tensors of a runtime kind
//     └─ kinds        per runtime kind it writes: the trainable form, the ONNX and the TFLite export
import type { AttrValue, GraphNode, OpName } from '../../runtime/ir.js';
import type { Emitter } from '../export/context.js';
import type { TfliteExporter, Val } from '../export/tfliteExporter.js';
import type { Candidate, LayerShape, RankSpec } from '../rank/candidates.js';
import type { Target } from '../rank/target.js';
import type { InitOptions, TrainLayer } from '../train/layers/layer.js';
import type { Conv2dParams } from '../train/ops/conv.js';

/** The methods that factorise (every RankSpec but 'dense'). */
export type MethodName = Exclude<RankSpec['method'], 'dense'>;
export type SpecOf<M extends MethodName> = Extract<RankSpec, { method: M }>;

/** A rank (or ranks tied together) that may move, and the largest value it may take. */
export interface RankSlot {
  idx: number[];
  cap: number;
}

export interface DecomposeContext {
  /** Seed of randomised fits (CP-ALS restarts). */
  seed: number;
  /** A short fit (the measured search's trials): an upper bound on the error of the full fit. */
  quick: boolean;
  /** Stores one factor under `<layer>.<role>`. */
  add(role: string, shape: number[], data: Float32Array): void;
  /** The node's attributes, to be completed (e.g. out_modes / in_modes). */
  attrs: Record<string, AttrValue>;
}

export interface Decomposed {
  op: OpName;
  /** Relative Frobenius error of the rebuilt weight. */
  relError: number;
  /**
   * Set when the factors are not a fit of the weight: 'random' = the fit captured nothing and the
   * layer starts from the random initialisation at the target variance (fine-tuning trains it).
   */
  init?: 'random';
  /** With init 'random': the error the fit itself reached before it was dropped. */
  fitError?: number;
}

/** What building a trainable layer from a stored node needs (train/fromModel.ts supplies it). */
export interface FromNodeContext {
  node: GraphNode;
  /** Shape of the stored weight under `role`; throws when there is none. */
  shape(role: string): number[];
  /** Throws a FromModelError naming the node when `cond` is false. */
  need(cond: boolean, what: string): void;
  /** The node's conv attributes, checked 2-D. */
  conv(): Conv2dParams;
  /** Start values and bias flag. */
  init: InitOptions;
}

/** Where a kind's TFLite chain ends: the value's name, its IR shape, and the activation its last op fuses (tflite Act). */
export interface TfliteOut {
  name: string;
  shape: number[];
  act: number;
}

/** One kind as a chain of TFLite builtins (export/tflite.ts walks the graph and calls it): `input(k)`
 *  is the node's k-th input as a TFLite value; returns the chain's output value. */
export type TfliteEmitter = (ex: TfliteExporter, node: GraphNode, input: (k: number) => Val, out: TfliteOut) => Val;

/** The converter's side of one runtime factor kind (or of a plain dense / conv2d layer). */
export interface ConverterKind {
  op: OpName;
  /** The trainable layer that computes what the runtime kind computes, started from stored factors. */
  trainable(ctx: FromNodeContext): TrainLayer;
  /** The ONNX export: the kind as a chain of standard ONNX ops over its factors. */
  onnx: Emitter;
  /** The TFLite export: the kind as a chain of TFLite builtins over its factors. */
  tflite: TfliteEmitter;
}

export interface FactorMethod<M extends MethodName = MethodName> {
  readonly name: M;
  /** The layer shapes it can decompose at all. */
  readonly layers: readonly LayerShape['kind'][];
  /** Takes depthwise convolutions (and only those); no other method does (index.ts methodFits). */
  readonly depthwise?: boolean;
  /** Whether the method may stand for a layer of this shape in a rank search. */
  applies(shape: LayerShape): boolean;
  /** The rank ladder: candidate forms with their parameters and estimated relative error. */
  candidates(t: Target): Candidate[];
  /** A form from ranks a user gave (one rank for all, or each); a string says what is wrong. */
  fromRanks(t: Target, ranks: number[]): SpecOf<M> | string;
  /** The ranks of a form, in the order runtime/describe.ts layerRanks reports them. */
  ranks(spec: SpecOf<M>): number[];
  withRanks(spec: SpecOf<M>, ranks: number[]): SpecOf<M>;
  rankSlots(t: Target, spec: SpecOf<M>): RankSlot[];
  /** Parameters of a layer in this form, bias included. */
  params(t: Target, spec: SpecOf<M>): number;
  /** The factors of the target's weight in this form. */
  decompose(t: Target, spec: SpecOf<M>, ctx: DecomposeContext): Decomposed;
  /**
   * The runtime kind and the stored factors' shapes of a form, without decomposing (at most the
   * spec's ranks): what the arena fit (rank/arenaFit.ts) sizes a device kernel's scratch from.
   * Optional: a form without it is checked once built.
   */
  shapes?(t: Target, spec: SpecOf<M>): FactorShapes;
  /** The runtime kinds this method writes. */
  readonly kinds: readonly ConverterKind[];
}

/** A form's runtime kind and its factors' shapes by role. */
export interface FactorShapes {
  op: OpName;
  roles: Record<string, number[]>;
}

/** Rows and columns of a layer's weight as a matrix [out, in·kh·kw]. */
export function matrixDims(shape: LayerShape): { rows: number; cols: number } {
  return shape.kind === 'dense' ? { rows: shape.out, cols: shape.in } : { rows: shape.O, cols: shape.I * shape.kh * shape.kw };
}

/** Whether the shape is a 1x1 convolution (only SVD applies to it). */
export function isPointwise(shape: LayerShape): boolean {
  return shape.kind === 'conv' && shape.kh === 1 && shape.kw === 1;
}
