// The set of layer kinds is this list of records; each module owns one kind (or a family of simple
// ops sharing code). Everything generic finds a kind here by op: shape inference, the attribute
// check, the plan profiles, the cost model, the row-tile rebuild, describe. See kind.ts for the parts.
import type { OpName } from '../ir.js';
import { FACTOR_OPS, OP_IDS } from '../ir.js';
import { clip, hardSigmoid, hardSwish, identity, leakyRelu, prelu, relu, sigmoid, tanh } from './activations.js';
import { adtnDense } from './adtnDense.js';
import { adtnConv2d } from './adtnConv2d.js';
import { convTranspose2d } from './convTranspose2d.js';
import { conv2d } from './conv2d.js';
import { cpConv2d } from './cpConv2d.js';
import { dense } from './dense.js';
import { dwlrConv2d } from './dwlrConv2d.js';
import { flexact } from './flexact.js';
import { add, logSoftmax, matmul, mul, softmax } from './elementwise.js';
import type { LayerKind } from './kind.js';
import { avgPool, globalAvgPool, maxPool } from './pooling.js';
import { concat, pad, slice } from './reshapeData.js';
import { rcpConv2d, rcpDense, rtkConv2d, rtkDense, rtrConv2d, rtrDense, rttConv2d, rttDense } from './reshapedNet.js';
import { resize } from './resize.js';
import { abs, erfLayer, exp, gelu, layerNorm, log, pow, reciprocal, reduce, sqrt } from './norm.js';
import { flatten, reshape, transpose } from './shapeOps.js';
import { svdConv2d } from './svdConv2d.js';
import { svdDense } from './svdDense.js';
import { trDense, ttDense } from './ttDense.js';
import { ttlDense } from './ttlDense.js';
import { tucker2Conv2d } from './tucker2Conv2d.js';

export const KINDS: readonly LayerKind[] = [
  dense, conv2d, svdDense, svdConv2d, tucker2Conv2d, cpConv2d, ttDense, trDense, ttlDense,
  matmul, relu, leakyRelu, sigmoid, tanh, clip, maxPool, avgPool, globalAvgPool,
  flatten, reshape, transpose, softmax, add, mul, identity,
  pad, concat, slice, resize, convTranspose2d, prelu, hardSigmoid, hardSwish, logSoftmax,
  gelu, layerNorm, erfLayer, sqrt, exp, log, abs, reciprocal, pow, reduce, flexact,
  rcpDense, rcpConv2d, rtkDense, rtkConv2d, rttDense, rttConv2d, rtrDense, rtrConv2d, adtnDense, dwlrConv2d, adtnConv2d,
];

export const LAYER_KINDS: ReadonlyMap<OpName, LayerKind> = new Map(KINDS.map((k) => [k.ops[0], k] as const));

/**
 * What a kind record lacks, as a list of sentences (empty: complete). Every kind has attrs, a shape
 * rule and prepare; a factor kind (FACTOR_OPS) has its factor part (ranks, contract, rebuild; a
 * kernel exactly when it is conv-shaped) and a scratch size; a kind the firmware runs may say
 * its scratch. test/runtime/kinds.test.ts runs this over every record.
 */
export function kindProblems(kind: LayerKind): string[] {
  const op = kind.ops[0];
  const out: string[] = [];
  const fn = (v: unknown) => typeof v === 'function';
  if (!(op in OP_IDS)) out.push(`${op} has no id in OP_IDS (runtime/ir.ts)`);
  if (kind.ops.length !== 1) out.push(`${op}: a record implements exactly one op`);
  if (typeof kind.attrs !== 'object' || kind.attrs === null) out.push(`${op}: no attrs spec`);
  if (!fn(kind.outputShape)) out.push(`${op}: no outputShape`);
  if (!fn(kind.prepare)) out.push(`${op}: no prepare`);
  if (kind.checkAttrs !== undefined && !fn(kind.checkAttrs)) out.push(`${op}: checkAttrs is not a function`);
  if (kind.mcu?.scratchFloats !== undefined && !fn(kind.mcu.scratchFloats)) out.push(`${op}: mcu.scratchFloats is not a function`);
  if (kind.mcu?.unsupported !== undefined && !fn(kind.mcu.unsupported)) out.push(`${op}: mcu.unsupported is not a function`);
  const isFactor = FACTOR_OPS.has(op);
  if (isFactor !== (kind.factor !== undefined)) out.push(`${op}: ${isFactor ? 'in FACTOR_OPS but has no factor part' : 'has a factor part but is not in FACTOR_OPS'}`);
  if (kind.factor) {
    for (const part of ['ranks', 'contract', 'rebuild'] as const) if (!fn(kind.factor[part])) out.push(`${op}: factor.${part} missing`);
    const conv = 'strides' in kind.attrs;
    if (conv !== fn(kind.factor.kernel)) out.push(`${op}: ${conv ? 'a conv-shaped factor kind needs factor.kernel' : 'factor.kernel on a kind that is not conv-shaped'}`);
    if (!fn(kind.scratchFloats)) out.push(`${op}: a factor kind sizes its scratch (scratchFloats)`);
  }
  return out;
}

// Every op id in ir.ts must have a kind here; fail at import rather than at first use.
for (const op of Object.keys(OP_IDS) as OpName[]) {
  if (!LAYER_KINDS.has(op)) throw new Error(`runtime: no layer kind implements op ${op}`);
}
