// adtn_conv2d: a convolution whose kernel W [T, S, kh, kw] is the state of an ADTN circuit (as
// adtn_dense's W, runtime/layers/adtnDense.ts): the T*S*kh*kw entries, row-major, padded to 2^Q, are
// the first entries of the state of Q indices of dimension 2 after `depth` layers of local gates on a
// product of Q start vectors. Attributes: weight_shape [T, S, kh, kw], depth, arity, pairing, and the
// conv attributes (group 1). Parameters 2Q + 4^arity per gate, against T S kh kw.
//
// The runtime forms W once, at prepare, and then runs the plain convolution (the session's kernels:
// reference or WebAssembly, im2col + GEMM): a conv reuses each kernel entry OH*OW times per sample, so
// contracting the input with the circuit per call (adtn_dense's 'contract' path) never pays here. W is
// expanded from the exact MPS (adtnMatrix: expandMps) when adtnRuntimePlan counts that cheaper than the
// gate-by-gate rebuild, which it is for every conv kernel of LeNet-5 and DS-CNN size (bench/adtn.ts
// --conv-only measures both). It is not a factor kind (runtime/ir.ts NETWORK_OPS): no row-tile rebuild.
// The firmware (core/ops/adtnconv.c) forms W once at load into its tables, in f32.
import { conv as convAttrSpec, type AttrCheck } from '../format/attrSpec.js';
import { attrInts } from '../ir.js';
import { ADTN_PAIRINGS } from './adtnLayout.js';
import { adtnMatrix, nodeLayout, type AdtnRuntimeMode } from './adtnDense.js';
import { convBind, convParams } from './convAttrs.js';
import { expectShape, LayerError, type LayerKind } from './kind.js';
import { convShape } from './shapeRules.js';

/** What an adtn_conv2d does at load: expand W from the MPS, or rebuild the whole state gate by gate. */
export function adtnConvLoadMode(mode: AdtnRuntimeMode): 'expand' | 'rebuild' {
  return mode === 'rebuild' ? 'rebuild' : 'expand';
}

const checkAttrs: AttrCheck = (a, fail) => {
  const s = a['weight_shape'] as number[];
  if (s.reduce((x, y) => x * y, 1) > 2 ** 26) fail('FLM_ATTR_RANGE', `adtn weight_shape [${s}]: more than 2^26 weights`);
  if (((a['group'] as number | undefined) ?? 1) !== 1) fail('FLM_ATTR_RANGE', 'adtn_conv2d takes group 1');
};

/** ADTN convolution: W [T, S, kh, kw] formed from the circuit at prepare, then conv2d with it. */
export const adtnConv2d: LayerKind = {
  ops: ['adtn_conv2d'],
  attrs: {
    ...convAttrSpec,
    weight_shape: { type: 'ints', len: 4, min: 1, max: 2 ** 24, required: true },
    depth: { type: 'int', min: 1, max: 4096, required: true },
    arity: { type: 'int', min: 1, max: 4, required: true },
    pairing: { type: 'string', oneOf: ADTN_PAIRINGS, required: true },
  },
  checkAttrs,
  outputShape(node, ins) {
    const [T, , kh, kw] = attrInts(node, 'weight_shape') as [number, number, number, number];
    return convShape(node, ins[0]!, T, kh, kw);
  },
  // core/ops/adtnconv.c (arity 1..4): W lives in the node's tables (formed at load); the conv needs no scratch.
  mcu: {},
  prepare(node, ctx) {
    const p = convParams(node);
    if (p.group !== 1) throw new LayerError(node, `group ${p.group}: adtn_conv2d takes group 1`);
    const start = ctx.weight('start');
    const gates = ctx.weight('gates');
    const { l } = nodeLayout(node, (r) => (r === 'start' ? start.shape : r === 'gates' ? gates.shape : undefined), (m) => {
      throw new LayerError(node, m);
    });
    const shape = attrInts(node, 'weight_shape') as [number, number, number, number];
    const [T, S, kh, kw] = shape;
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [T]);
    const w = adtnMatrix(l, start.data, gates.data, T, S * kh * kw);
    ctx.retain(w);
    ctx.kernels.prepareConv?.(w, shape, p);
    return { bind: convBind(node, ctx.kernels, w, shape, S, b?.data, p) };
  },
  scratchFloats(node, _ins, outputShape) {
    const s = node.attrs['weight_shape'];
    if (!Array.isArray(s) || s.length !== 4) return 0;
    return (s[1] as number) * (s[2] as number) * (s[3] as number) * outputShape[2]! * outputShape[3]!;
  },
};
