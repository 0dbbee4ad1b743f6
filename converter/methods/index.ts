// The registry of decomposition methods, built from their modules (one file per method), and of
// every parametric runtime kind the converter trains and exports. A new method is a new module
// listed here; test/converter/methods/registry.test.ts fails when one misses a part.
import type { OpName } from '../../runtime/ir.js';
import type { LayerShape, RankSpec } from '../rank/candidates.js';
import type { Target } from '../rank/target.js';
import { adtn } from './adtn.js';
import { cp } from './cp.js';
import { decouple } from './decouple.js';
import { dwlr } from './dwlr.js';
import type { ConverterKind, FactorMethod, MethodName, RankSlot } from './method.js';
import { PLAIN_KINDS } from './plain.js';
import { rcp } from './rcp.js';
import { rtk } from './rtk.js';
import { rtr } from './rtr.js';
import { rtt } from './rtt.js';
import { svd } from './svd.js';
import { tr } from './tr.js';
import { tt } from './tt.js';
import { ttl } from './ttl.js';
import { tucker2 } from './tucker2.js';

export type { ConverterKind, DecomposeContext, Decomposed, FactorMethod, FromNodeContext, MethodName, RankSlot, SpecOf, TfliteEmitter, TfliteOut } from './method.js';
export { isPointwise, matrixDims } from './method.js';

/**
 * Every method, in the order `auto` offers them to a layer (Tucker-2, SVD, CP for a convolution;
 * SVD, TT, TR, TTL for a dense layer; dwlr for a depthwise convolution). The reshaped methods rcp, rtk, rtt and rtr come last; they
 * take both shapes but `auto` does not offer them (their `applies` is false): --method names them.
 */
export const FACTOR_METHODS: readonly FactorMethod[] =
  // Each record takes only its own specs; lookups go by spec.method, so widening the spec type is safe.
  [tucker2, svd, cp, tt, tr, ttl, rcp, rtk, rtt, rtr, adtn, dwlr] as unknown as readonly FactorMethod[];

/**
 * Whether a method may stand for a layer of this shape: a depthwise convolution takes only the
 * methods marked `depthwise` (dwlr), every other shape only the others, and then as `layers` says.
 */
export function methodFits(m: FactorMethod, s: LayerShape): boolean {
  const dw = s.kind === 'conv' && s.depthwise === true;
  return dw === (m.depthwise === true) && m.layers.includes(s.kind);
}

/** The method of a depthwise convolution under any --method family. */
export const DEPTHWISE_METHOD: MethodName = 'dwlr';

const BY_NAME = new Map<string, FactorMethod>(FACTOR_METHODS.map((m) => [m.name, m]));

/** The method of a rank spec (never 'dense'). */
export function methodOf(name: MethodName): FactorMethod {
  const m = BY_NAME.get(name);
  if (!m) throw new Error(`no decomposition method ${name}`);
  return m;
}

export function findMethod(name: string): FactorMethod | undefined {
  return BY_NAME.get(name);
}

/**
 * What a --method family (the CLI's names) uses for each layer shape: `cp` of a dense layer is its
 * SVD (a CP of a matrix is its low-rank SVD); convolutions under tt and tr get Tucker-2 (there is
 * no TT convolution kind). A 1x1 convolution always gets SVD.
 */
export const FAMILIES: Readonly<Record<'svd' | 'cp' | 'tucker' | 'tt' | 'tr' | 'adtn', Readonly<Record<LayerShape['kind'], MethodName>>>> = {
  svd: { dense: 'svd', conv: 'svd' },
  cp: { dense: 'svd', conv: 'cp' },
  tucker: { dense: 'ttl', conv: 'tucker2' },
  tt: { dense: 'tt', conv: 'tucker2' },
  tr: { dense: 'tr', conv: 'tucker2' },
  adtn: { dense: 'adtn', conv: 'adtn' }, // a conv: adtn_conv2d or Tucker-2, whichever the fit measures lower (methods/adtn.ts)
};

/**
 * The converter parts of every parametric runtime kind: plain dense / conv2d, each factor method's
 * kinds, and flexact (the decouple method, which rewrites node pairs rather than one weight).
 */
export const CONVERTER_KINDS: readonly ConverterKind[] = [...PLAIN_KINDS, ...FACTOR_METHODS.flatMap((m) => m.kinds), ...decouple.kinds];

const KIND_BY_OP = new Map<OpName, ConverterKind>(CONVERTER_KINDS.map((k) => [k.op, k]));

/** The converter parts of a runtime kind, or undefined for a kind without weights to train. */
export function converterKind(op: OpName): ConverterKind | undefined {
  return KIND_BY_OP.get(op);
}

// ---- a rank spec of any method, 'dense' included ----

/** The ranks of a spec, in the order runtime/describe.ts layerRanks reports them. */
export function specRanks(spec: RankSpec): number[] {
  return spec.method === 'dense' ? [] : methodOf(spec.method).ranks(spec);
}

/** The same form with other ranks. */
export function withRanks(spec: RankSpec, r: number[]): RankSpec {
  return spec.method === 'dense' ? spec : methodOf(spec.method).withRanks(spec, r);
}

/** Parameters of a layer in the form `spec`, bias included. */
export function specParams(t: Target, spec: RankSpec): number {
  return spec.method === 'dense' ? t.denseParams : methodOf(spec.method).params(t, spec);
}

/**
 * Which ranks of a spec may move, and the largest value each may take. Tied ranks (a tensor
 * ring's closing rank r_d = r_0) move together; a tensor train's boundary ranks stay 1.
 */
export function rankSlots(t: Target, spec: RankSpec): RankSlot[] {
  return spec.method === 'dense' ? [] : methodOf(spec.method).rankSlots(t, spec);
}
