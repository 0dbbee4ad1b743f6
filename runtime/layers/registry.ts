// The set of layer kinds is this list of files; each file owns one kind (or a family sharing code).
import type { OpName } from '../ir.js';
import { OP_IDS } from '../ir.js';
import { clip, hardSigmoid, hardSwish, identity, leakyRelu, prelu, relu, sigmoid, tanh } from './activations.js';
import { convTranspose2d } from './convTranspose2d.js';
import { conv2d } from './conv2d.js';
import { cpConv2d } from './cpConv2d.js';
import { dense } from './dense.js';
import { add, logSoftmax, matmul, mul, softmax } from './elementwise.js';
import type { LayerKind } from './kind.js';
import { avgPool, globalAvgPool, maxPool } from './pooling.js';
import { concat, pad, slice } from './reshapeData.js';
import { resize } from './resize.js';
import { flatten, reshape, transpose } from './shapeOps.js';
import { svdConv2d } from './svdConv2d.js';
import { svdDense } from './svdDense.js';
import { trDense, ttDense } from './ttDense.js';
import { ttlDense } from './ttlDense.js';
import { tucker2Conv2d } from './tucker2Conv2d.js';

const KINDS: readonly LayerKind[] = [
  dense, conv2d, svdDense, svdConv2d, tucker2Conv2d, cpConv2d, ttDense, trDense, ttlDense,
  matmul, relu, leakyRelu, sigmoid, tanh, clip, maxPool, avgPool, globalAvgPool,
  flatten, reshape, transpose, softmax, add, mul, identity,
  pad, concat, slice, resize, convTranspose2d, prelu, hardSigmoid, hardSwish, logSoftmax,
];

export const LAYER_KINDS: ReadonlyMap<OpName, LayerKind> = new Map(KINDS.flatMap((k) => k.ops.map((op) => [op, k] as const)));

// Every op id in ir.ts must have a kind here; fail at import rather than at first use.
for (const op of Object.keys(OP_IDS) as OpName[]) {
  if (!LAYER_KINDS.has(op)) throw new Error(`runtime: no layer kind implements op ${op}`);
}

